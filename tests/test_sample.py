"""paperlib.data.sample (every K-th pair of a full set, in the official layout) and
paperlib.data.release.verify.dataset_kind (synthetic, sample or full).

Full sets here are small hand-made folders in the official layouts, or paperlib.data.synth's DUTS
layout; the realdata tests sample ../shared/data and check the documented offsets against it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import paperlib.data.sample
from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.data.release.sources import DETECTION_SETS
from paperlib.data.release.verify import DatasetKind, dataset_kind, verify
from paperlib.data.saliency import DATASETS, SAMPLE_MARKER, open_dataset
from paperlib.data.sample import SAMPLE_DEFAULTS, sample_dataset
from paperlib.data.synth import synthesize


def image_bytes(seed: int, fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (6, 8, 3) if mode == "RGB" else (6, 8), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def write_full_set(root: Path, name: str, stems, *, base: str = "") -> Path:
    """A hand-made set in ``name``'s official layout under ``root/base``; returns the dataset folder."""
    spec = DATASETS[name]
    for i, stem in enumerate(stems):
        for folder, suffix, fmt, mode in ((spec.image_dir, spec.image_suffix, "JPEG", "RGB"),
                                          (spec.mask_dir, spec.mask_suffix, "PNG", "L")):
            path = root / base / folder / f"{stem}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image_bytes(i, fmt, mode))
    return root / base / Path(spec.image_dir).parts[0]


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: SHA-256 and modification time, to show that nothing was written."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


STEMS = [f"img_{i:03d}" for i in range(23)]


@pytest.fixture
def full(tmp_path) -> Path:
    root = tmp_path / "full"
    write_full_set(root, "duts-te", STEMS, base="DUTS")  # the official zip's own DUTS/ parent
    return root


# ---------------------------------------------------------------- which pairs, where


def test_sample_takes_every_kth_pair_by_stem_and_copies_it(full, tmp_path):
    before = tree_digest(full)
    report = sample_dataset("duts-te", full, tmp_path / "sample", every=5, offset=2)
    want = STEMS[2::5]                                              # indices 2, 7, 12, 17, 22
    ds = open_dataset("duts-te", tmp_path / "sample")
    assert list(ds.stems) == want and (report.taken, report.full_count) == (5, 23)
    src = full / "DUTS" / "DUTS-TE"
    for stem in want:
        for sub, suffix in (("DUTS-TE-Image", ".jpg"), ("DUTS-TE-Mask", ".png")):
            copy, original = report.folder / sub / f"{stem}{suffix}", src / sub / f"{stem}{suffix}"
            assert copy.read_bytes() == original.read_bytes()
            assert not os.path.samefile(copy, original)               # a copy, not a link
    marker = json.loads((report.folder / SAMPLE_MARKER).read_text())
    assert {k: marker[k] for k in ("sample_of", "every", "offset", "full_count", "taken", "first", "last")} == dict(
        sample_of="duts-te", every=5, offset=2, full_count=23, taken=5, first="img_002", last="img_022")
    assert marker["source"] == str(src.resolve()) and marker["source_root"] == str(full.resolve())
    assert report.folder == (tmp_path / "sample" / "DUTS-TE").resolve()
    assert tree_digest(full) == before                               # the source is only read
    assert not list((tmp_path / "sample").glob(".paperlib-sample-*"))
    assert "took 5 of 23 pairs (1 in 5, from index 2)" in report.lines()[0]


@pytest.mark.parametrize("name, n", [("duts-te", 25), ("duts-tr", 60)])
def test_the_defaults_are_the_shared_samples_rule(tmp_path, name, n):
    stems = [f"s{i:03d}" for i in range(n)]
    write_full_set(tmp_path / "full", name, stems)
    every, offset = SAMPLE_DEFAULTS[name]
    report = sample_dataset(name, tmp_path / "full", tmp_path / "sample")
    assert (report.every, report.offset) == (every, offset)
    assert list(open_dataset(name, tmp_path / "sample").stems) == stems[offset::every]
    # an explicit --every other than the default starts at 0
    assert sample_dataset(name, tmp_path / "full", tmp_path / "other", every=4).offset == 0


def test_other_saliency_sets_take_a_tenth_from_the_first_pair(tmp_path):
    write_full_set(tmp_path / "full", "ecssd", [f"{i:04d}" for i in range(1, 26)])  # ECSSD's 0001.jpg names
    report = sample_dataset("ecssd", tmp_path / "full", tmp_path / "sample")
    assert (report.every, report.offset, report.taken) == (10, 0, 3)
    assert sorted(p.name for p in (tmp_path / "sample" / "ECSSD" / "images").iterdir()) == [
        "0001.jpg", "0011.jpg", "0021.jpg"]


def test_a_sample_of_synthetic_data_stays_synthetic(tmp_path):
    synthesize(tmp_path / "full", n=6, seed=0, size_range=(32, 40), progress=False)
    sample_dataset("duts-te", tmp_path / "full", tmp_path / "sample", every=2)
    assert dataset_kind("duts-te", tmp_path / "sample").kind == "synthetic"
    assert open_dataset("duts-te", tmp_path / "sample").is_synthetic


def test_link_shares_the_files_and_leaves_the_source_alone(full, tmp_path):
    before = tree_digest(full)
    report = sample_dataset("duts-te", full, tmp_path / "sample", every=10, link=True)  # offset 3: 3, 13
    assert report.linked == 2 * report.taken == 4
    image = "DUTS-TE-Image/img_013.jpg"
    assert os.path.samefile(report.folder / image, full / "DUTS" / "DUTS-TE" / image)
    assert tree_digest(full) == before


# ---------------------------------------------------------------- refusals and atomicity


def test_sample_refuses_places_that_touch_the_source(full, tmp_path):
    src = full / "DUTS" / "DUTS-TE"
    for out, message in ((full, "is where the source root keeps duts-te"),
                         (full / "DUTS", "is where the source root keeps duts-te"),
                         (src, "inside the source dataset folder"),
                         (src / "DUTS-TE-Image", "inside the source dataset folder")):
        with pytest.raises(InputError, match=message):
            sample_dataset("duts-te", full, out)
    real = tmp_path / "elsewhere"
    write_full_set(real, "duts-te", ["x"])                           # a dataset without SAMPLE.json
    before = tree_digest(real)
    with pytest.raises(InputError, match="holds no SAMPLE.json, so it may be a full dataset"):
        sample_dataset("duts-te", full, real)
    assert tree_digest(real) == before


def test_sample_refuses_bad_numbers_and_unpaired_sets(full, tmp_path):
    out = tmp_path / "sample"
    for kwargs, message in ((dict(every=0), "every must be an integer >= 1"),
                            (dict(every=5, offset=5), "offset must be smaller than every"),
                            (dict(every=True), "every must be an integer"),
                            (dict(every=30, offset=25), "offset 25 is past the 23 pairs")):
        with pytest.raises(InputError, match=message):
            sample_dataset("duts-te", full, out, **kwargs)
    with pytest.raises(InputError, match="dataset must be one of"):
        sample_dataset("voc07", full, out)
    (full / "DUTS" / "DUTS-TE" / "DUTS-TE-Mask" / "img_004.png").unlink()
    with pytest.raises(InputError, match="1 stem.* have only an image or only a mask"):
        sample_dataset("duts-te", full, out)
    assert not out.exists()


def test_an_interrupted_sample_leaves_the_earlier_one(full, tmp_path, monkeypatch):
    out = tmp_path / "sample"
    first = sample_dataset("duts-te", full, out, every=5)
    before = tree_digest(first.folder)
    copies = []

    def copy_then_fail(src, dst):
        if len(copies) == 3:
            raise OSError("disk full")
        copies.append(dst)
        return Path(dst).write_bytes(Path(src).read_bytes())

    monkeypatch.setattr(paperlib.data.sample.shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        sample_dataset("duts-te", full, out, every=2)
    assert tree_digest(first.folder) == before                        # the earlier sample, whole
    assert [p.name for p in out.iterdir()] == ["DUTS-TE"]             # no staging folder left
    monkeypatch.undo()
    again = sample_dataset("duts-te", full, out, every=2)             # replaces the earlier sample
    assert again.taken == 12 and len(open_dataset("duts-te", out)) == 12


def test_the_sample_command(full, tmp_path, capsys):
    assert main(["-q", "data", "sample", "duts-te", "--root", str(full), "--out", str(tmp_path / "s"),
                 "--every", "4", "--offset", "1"]) == 0
    assert "took 6 of 23 pairs (1 in 4, from index 1)" in capsys.readouterr().out
    assert main(["-q", "data", "sample", "duts-te", "--root", str(full), "--out", str(full)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is where the source root keeps duts-te" in err[0]


# ---------------------------------------------------------------- dataset_kind and verify


def test_dataset_kind_of_saliency_sets(full, tmp_path, monkeypatch):
    assert dataset_kind("duts-te", full) == DatasetKind("sample", 23, 5019, None)   # fewer than official
    monkeypatch.setitem(DATASETS, "duts-te", replace(DATASETS["duts-te"], n_images=23))
    assert dataset_kind("duts-te", full) == DatasetKind("full", 23, 23, None)
    sample_dataset("duts-te", full, tmp_path / "all", every=1)
    kind = dataset_kind("duts-te", tmp_path / "all")                  # every pair, but marked
    assert kind.kind == "sample" and kind.images == 23 and kind.marker.name == SAMPLE_MARKER
    synthesize(tmp_path / "synth", n=3, seed=0, size_range=(32, 40), progress=False)
    assert dataset_kind("duts-te", tmp_path / "synth").kind == "synthetic"
    with pytest.raises(InputError, match="duts-tr not found"):
        dataset_kind("duts-tr", full)


def test_dataset_kind_of_a_voc_layout(tmp_path, monkeypatch):
    base = tmp_path / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "JPEGImages").mkdir()
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("000005\n000007\n000009\n")
    for i in ("000005", "000007"):                                     # one listed image is missing
        (base / "JPEGImages" / f"{i}.jpg").write_bytes(image_bytes(0, "JPEG"))
    assert dataset_kind("voc07", tmp_path) == DatasetKind("sample", 2, 5011, None)
    monkeypatch.setitem(DETECTION_SETS, "voc07", replace(DETECTION_SETS["voc07"], n_images=2))
    assert dataset_kind("voc07", tmp_path).kind == "full"
    (base / SAMPLE_MARKER).write_text("{}")
    assert dataset_kind("voc07", tmp_path).kind == "sample"
    (tmp_path / "SYNTHETIC.json").write_text("{}")
    assert dataset_kind("voc07", tmp_path).kind == "synthetic"


def test_verify_names_a_sample(full, tmp_path):
    sample_dataset("duts-te", full, tmp_path / "sample", every=5)
    report = verify("duts-te", tmp_path / "sample", expect_complete=False)
    assert report.sample and report.ok and any("a SAMPLE of duts-te" in line for line in report.lines())
    marked = verify("duts-te", tmp_path / "sample")          # no --subset: the marker says it is one
    assert marked.ok and marked.lines()[-1] == "  verdict: OK as a subset"
    assert not verify("duts-te", full, expect_complete=False).sample


# ---------------------------------------------------------------- the shared samples (real DUTS)

# The first ten names of the official folders (DUTS-TE-Mask and DUTS-TR-Image as `ls` lists them),
# as quoted in public listings of a DUTS download; the evidence for SAMPLE_DEFAULTS' offsets.
OFFICIAL_HEADS = {
    "duts-te": [f"ILSVRC2012_test_{i:08d}" for i in (3, 23, 25, 26, 34, 38, 64, 86, 105, 128)],
    "duts-tr": [f"ILSVRC2012_test_{i:08d}" for i in (4, 18, 19, 22, 30, 72, 82, 108, 130, 172)],
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["duts-te", "duts-tr"])
def test_the_default_offsets_reproduce_the_shared_samples(real_data_root, name):
    every, offset = SAMPLE_DEFAULTS[name]
    shared = open_dataset(name, real_data_root).stems
    head = OFFICIAL_HEADS[name]
    assert shared[0] == head[offset]                                 # the first pair taken ...
    assert not set(head[:offset]) & set(shared)                     # ... and none before it
    assert math.ceil((DATASETS[name].n_images - offset) / every) == len(shared)  # 502, 422
    assert dataset_kind(name, real_data_root) == DatasetKind("sample", len(shared), DATASETS[name].n_images, None)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["duts-te", "duts-tr"])
def test_every_1_copies_every_shared_pair_byte_for_byte(real_data_root, tmp_path, name, capsys):
    assert main(["-q", "data", "sample", name, "--root", str(real_data_root), "--out", str(tmp_path),
                 "--every", "1"]) == 0
    source, sample = open_dataset(name, real_data_root), open_dataset(name, tmp_path)
    assert sample.stems == source.stems and len(sample) in (502, 422)
    for (_, image, mask), (_, image_copy, mask_copy) in zip(source.pairs, sample.pairs):
        assert image_copy.read_bytes() == image.read_bytes() and mask_copy.read_bytes() == mask.read_bytes()
    marker = json.loads((sample.folders.images_dir.parent / SAMPLE_MARKER).read_text())
    assert (marker["every"], marker["offset"], marker["full_count"], marker["taken"]) == (1, 0, len(source),
                                                                                          len(source))
