"""Provenance records, the manifest, and the notebook session's honest labels."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from paperlib.backbones.weights import file_sha256
from paperlib.checks import InputError
from paperlib.notebook.provenance import (
    code_state,
    read_manifest,
    sidecar_path,
    weights_identity,
    write_record,
)
from paperlib.notebook.session import NotebookSession, repo_root_from


def test_write_record_puts_a_sidecar_beside_each_output_and_lists_them(tmp_path):
    (tmp_path / "figures").mkdir()
    a, b = tmp_path / "figures" / "t.csv", tmp_path / "figures" / "t.png"
    a.write_text("x\n1\n")
    b.write_bytes(b"\x89PNG fake")
    manifest = tmp_path / "results" / "MANIFEST.json"
    write_record([a, b], {"notebook": "nb", "tag": "smoke", "code": {"commit": "abc"}}, manifest=manifest)
    for path in (a, b):
        record = json.loads(sidecar_path(path).read_text())
        assert record["notebook"] == "nb"
        assert record["outputs"] == [{"path": "figures/t.csv", "sha256": file_sha256(a)},
                                     {"path": "figures/t.png", "sha256": file_sha256(b)}]
    entries = read_manifest(manifest)
    assert set(entries) == {"figures/t.csv", "figures/t.png"} and entries["figures/t.png"]["commit"] == "abc"
    # A second record keeps the first one's entries and replaces its own.
    a.write_text("x\n2\n")
    write_record([a], {"notebook": "nb2"}, manifest=manifest)
    entries = read_manifest(manifest)
    assert entries["figures/t.csv"]["notebook"] == "nb2" and entries["figures/t.csv"]["sha256"] == file_sha256(a)
    assert entries["figures/t.png"]["notebook"] == "nb"


def _record_one(args):
    root, i = args
    path = Path(root) / "figures" / f"f{i}.txt"
    path.write_text(str(i))
    write_record([path], {"notebook": f"n{i}"}, manifest=Path(root) / "results" / "MANIFEST.json")


def test_parallel_notebooks_share_one_manifest_without_losing_entries(tmp_path):
    (tmp_path / "figures").mkdir()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_record_one, [(str(tmp_path), i) for i in range(16)]))
    assert set(read_manifest(tmp_path / "results" / "MANIFEST.json")) == {f"figures/f{i}.txt" for i in range(16)}


def test_weights_identity(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPERLIB_WEIGHTS_DIR", raising=False)
    assert weights_identity("filterbank16", None) == "none"
    assert weights_identity("dino_vits16", None) == "hub:vit_small_patch16_224.dino"
    path = tmp_path / "dino_deitsmall16_pretrain.pth"
    path.write_bytes(b"weights")
    assert weights_identity("dino_vits16", str(path)) == f"sha256:{file_sha256(path)}"
    monkeypatch.setenv("PAPERLIB_WEIGHTS_DIR", str(tmp_path))
    assert weights_identity("dino_vits16", None) == f"sha256:{file_sha256(path)}"


def test_code_state_tells_a_dirty_tree(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run(git + ["add", "a.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    clean = code_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "t.png").write_text("1")
    subprocess.run(git + ["add", "figures/t.png"], check=True)
    subprocess.run(git + ["commit", "-qm", "a figure"], check=True)
    clean = code_state(tmp_path)
    (tmp_path / "figures" / "t.png").write_text("2")      # a run rewrote a committed result: still clean
    assert code_state(tmp_path) == clean
    (tmp_path / "a.txt").write_text("2")
    assert code_state(tmp_path) == {"commit": clean["commit"], "dirty": True}
    assert code_state(tmp_path / "nowhere") == {"commit": None, "dirty": None}


# --------------------------------------------------------------------------------------------
# The session: what a tag may claim

@pytest.fixture
def synthetic_root(tmp_path):
    from paperlib.data.synth import synthesize

    synthesize(tmp_path / "data", n=4, seed=0, split="te", progress=False)
    return tmp_path / "data"


def test_synthetic_data_is_only_ever_tagged_smoke(synthetic_root):
    from paperlib.data.saliency import open_dataset

    session = NotebookSession("nb", {"tag": "smoke"})
    session.use_dataset(open_dataset("duts-te", synthetic_root), used=2)
    assert session.label == "[smoke] synthetic DUTS-TE, 2 of 4 images"
    for tag in ("paper", "sample", "mine"):
        with pytest.raises(InputError, match="the synthetic set is tagged with .smoke."):
            NotebookSession("nb", {"tag": tag}).use_dataset(open_dataset("duts-te", synthetic_root))


def test_a_sample_is_labelled_and_refused_under_the_paper_tag(synthetic_root, tmp_path):
    from paperlib.data.saliency import open_dataset

    (synthetic_root / "DUTS-TE" / "SYNTHETIC.json").unlink()      # now it looks like real data
    session = NotebookSession("nb", {"tag": "sample"})
    session.use_dataset(open_dataset("duts-te", synthetic_root))
    assert session.data[0].kind == "sample" and session.label == "[sample] sample DUTS-TE, 4 images"
    for tag in ("paper", "mine", "paper_sample"):         # a sample is named a sample, and never the paper
        with pytest.raises(InputError, match="a sample, or part of a dataset"):
            NotebookSession("nb", {"tag": tag}).use_dataset(open_dataset("duts-te", synthetic_root))


def test_part_of_a_full_set_is_a_sample_and_the_paper_needs_all_of_it(synthetic_root, monkeypatch):
    from paperlib.data.saliency import open_dataset

    (synthetic_root / "DUTS-TE" / "SYNTHETIC.json").unlink()
    monkeypatch.setattr("paperlib.notebook.session._official", lambda name: 4)   # as if 4 were the whole set
    full = NotebookSession("nb", {"tag": "paper"})
    full.use_dataset(open_dataset("duts-te", synthetic_root))
    assert full.data[0].kind == "full" and full.label == "[paper] full DUTS-TE, 4 images"
    with pytest.raises(InputError, match="a sample, or part of a dataset"):
        NotebookSession("nb", {"tag": "paper"}).use_dataset(open_dataset("duts-te", synthetic_root), used=2)
    NotebookSession("nb", {"tag": "sample"}).use_dataset(open_dataset("duts-te", synthetic_root), used=2)


def test_the_paper_tag_needs_a_pretrained_backbone():
    for name in ("filterbank16", "offline"):              # every weight-free backbone, the newest included
        with pytest.raises(InputError, match=f"{name} is the offline stand-in"):
            NotebookSession("nb", {"tag": "paper"}).use_backbone(name)
    session = NotebookSession("nb", {"tag": "paper"})
    session.use_backbone("dino_vits16", "hub")
    assert session.backbones == {"dino_vits16": "hub:vit_small_patch16_224.dino"}


def test_the_synthetic_set_is_written_only_when_asked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = NotebookSession("nb", {"tag": "smoke"})
    with pytest.raises(InputError, match="does not exist"):
        session.data_root(str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()
    root = session.data_root("synthetic", splits=("te",))
    assert (tmp_path / root / "DUTS-TE" / "SYNTHETIC.json").is_file()


def test_a_notebook_opened_from_notebooks_runs_at_the_repository_root(tmp_path):
    (tmp_path / "paperlib").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert repo_root_from(tmp_path / "notebooks") == tmp_path
    assert repo_root_from(tmp_path) is None and repo_root_from(tmp_path / "paperlib") is None
