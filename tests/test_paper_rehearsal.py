"""The dress rehearsal of `make paper`, and every notebook command the README and notebooks print.

What a GPU reader does, on this CPU: official-format archives of every dataset (built from the
real DUTS images), passed through the same archive / SHA-256 / unpack / verify path as a
download; official-format DINO ViT-S/8, ViT-S/16 and iBOT files (random values); the README's
`make paper` command with a `sample_rehearsal` tag and shrunk numbers (2 steps, 64 px, 3 images); then
each printed `paperlib notebook run` / `paperlib eval` command with the same substitutions. Only
the weights' values and the GPU differ (the CUDA-only lines: tests/test_train_cuda_paths.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from doc_commands import REPO, documented
from official_archives import build_all, file_digests
from official_weights import write_official_weights

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

TAG = "sample_rehearsal"   # a run on a few images of each set is a sample, and says so
SHRINK = {"max_steps": "2", "limit": "3", "max_images": "3"}          # -p name value, where declared
TRAIN_SHRINK = {"image_size": 64, "resize_short": 72, "batch_size": 2}   # TrainConfig fields
NOTEBOOKS = ("tables_1_3_saliency", "tables_2_4_corloc", "table5_gf_vs_bf", "figs_6_8_iou_by_size", "train",
             "theory", "gf_explorer", "crop_zoom_explorer")
PAPERLIB = [sys.executable, "-m", "paperlib.cli"]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")


@pytest.fixture(scope="module")
def rehearsal(real_data_root, tmp_path_factory):
    """The README's `make paper` command, rehearsed: returns (workdir, data, weights, stdout)."""
    base = tmp_path_factory.mktemp("rehearsal")
    archives = build_all(real_data_root / "DUTS-TE", base / "archives", n=4)
    digests = {f: d for by_file in file_digests(archives).values() for f, d in by_file.items()}
    write_official_weights(base / "weights", ["dino_vits8", "dino_vits16", "ibot_vits16"])
    (command,) = [c for _, c in documented(("make paper",))]
    assert "DATA=~/datasets" in command and "WEIGHTS=~/weights" in command
    args = (["--tag", TAG, "--max-steps", "2", "--limit", "3", "--workdir", str(base / "work")]
            + [f"--set={k}={v}" for k, v in TRAIN_SHRINK.items()] + [f"--sha256={f}={d}" for f, d in digests.items()])
    (base / "work").mkdir()
    # The Makefile's recipe, with the documented variables substituted: what `make paper` runs.
    recipe = subprocess.run(["make", "-s", "-n", "paper", f"DATA={base / 'data'}", f"WEIGHTS={base / 'weights'}",
                             f"ARCHIVES={base / 'archives'}", "STAMP=", f"PAPER_ARGS={shlex.join(args)}"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    argv = shlex.split(recipe.replace("\\\n", " "))
    assert argv[0].endswith("paperlib") and argv[1] == "paper"
    done = subprocess.run(PAPERLIB + ["-q"] + argv[1:], cwd=REPO, capture_output=True, text=True, env=_env(),
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    # Another method's saved masks, where the printed Table 5 command expects MOVE's (move/<dataset>):
    # the ground truth at 1/16 resolution stands in for them.
    for name, masks in (("dut-omron", "DUT-OMRON/pixelwiseGT-new-PNG"), ("duts-te", "DUTS-TE/DUTS-TE-Mask"),
                        ("ecssd", "ECSSD/ground_truth_mask")):
        subprocess.run(PAPERLIB + ["-q", "data", "degrade", "--masks", str(base / "data" / masks), "--out",
                                   str(base / "work" / "move" / name), "--degradation", "down16"], check=True,
                       env=_env(), capture_output=True)
    return base / "work", base / "data", base / "weights", done.stdout


def test_the_paper_pipeline_runs_every_step(rehearsal):
    work, data, _, stdout = rehearsal
    assert "cost estimate, measured on cpu" in stdout
    summary = json.loads((work / "results" / "notebooks" / TAG / "PAPER_RUN.json").read_text())
    assert [s["step"] for s in summary["steps"]] == list(NOTEBOOKS[:3]) + ["eval files for Figs. 6-8"] + \
        list(NOTEBOOKS[3:]) + ["book"]
    assert {s["status"] for s in summary["steps"]} == {"done", "built"}
    # Every dataset came through the archive path: recorded in the download ledger, verified.
    ledger = json.loads((data / ".paperlib-downloads.json").read_text())["files"]
    assert {key.split("/")[0] for key in ledger} == {"duts-tr", "duts-te", "dut-omron", "ecssd", "voc07", "voc12",
                                                     "coco20k"}
    assert summary["data"]["voc12"] == {"kind": "sample", "images": 4}
    for name in NOTEBOOKS:
        executed = work / "results" / "notebooks" / TAG / f"{name}.ipynb"
        record = json.loads(executed.with_name(executed.name + ".provenance.json").read_text())
        assert record["tag"] == TAG and record["notebook"] == name
    runs = work / "results" / "notebooks" / TAG / "ablation"
    assert sorted(p.name for p in runs.iterdir()) == sorted(f"{b}-crop_{c}" for b in ("dino_vits8", "dino_vits16",
                                                                                   "ibot_vits16")
                                                          for c in ("none", "paper"))
    # The tables name what they were computed on: a sample, DINO weights by their SHA-256.
    record = json.loads((work / "figures" / f"table1_{TAG}.csv.provenance.json").read_text())
    assert {d["kind"] for d in record["data"]} == {"sample"}
    assert set(record["backbones"]) == {"dino_vits8", "dino_vits16", "ibot_vits16"}
    assert all(w.startswith("sha256:") for w in record["backbones"].values())
    assert (work / "figures" / f"figs_6_8_iou_by_size_{TAG}.png").is_file()
    assert (work / "results" / "book" / TAG / "index.html").is_file()


def test_the_paper_tag_refuses_a_sample_before_any_training(rehearsal, tmp_path):
    work, data, weights, _ = rehearsal
    done = subprocess.run(PAPERLIB + ["-q", "paper", "--data-root", str(data), "--weights-dir", str(weights),
                                      "--workdir", str(tmp_path), "--no-estimate"],
                          cwd=REPO, capture_output=True, text=True, env=_env())
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("paperlib: error: tag 'paper' needs the full duts-tr")
    assert not (tmp_path / "results" / "notebooks" / "paper").exists()


def test_a_dry_run_checks_weights_first_and_fetches_nothing(rehearsal, tmp_path):
    _, _, weights, _ = rehearsal
    missing = subprocess.run(PAPERLIB + ["-q", "paper", "--data-root", str(tmp_path / "nodata"), "--weights-dir",
                                         str(tmp_path / "noweights"), "--dry-run"],
                             cwd=REPO, capture_output=True, text=True, env=_env())
    assert missing.returncode == 2 and missing.stderr.strip().startswith("paperlib: error: --weights-dir: missing ")
    dry = subprocess.run(PAPERLIB + ["-q", "paper", "--data-root", str(tmp_path / "nodata"), "--weights-dir",
                                     str(weights), "--tag", TAG, "--dry-run", "--workdir", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, env=_env())
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would be fetched: downloading") == 7 and "paperlib notebook run" in dry.stdout
    assert not (tmp_path / "nodata").exists() and not (tmp_path / "results").exists()
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / "DUTS-TR.zp").write_bytes(b"x")
    near = subprocess.run(PAPERLIB + ["-q", "paper", "--data-root", str(tmp_path / "nodata"), "--weights-dir",
                                      str(weights), "--archives", str(tmp_path / "archives"), "--dry-run"],
                          cwd=REPO, capture_output=True, text=True, env=_env())
    assert near.returncode == 2
    assert "none of its files (DUTS-TR.zip) is there; the folder holds DUTS-TR.zp" in near.stderr


def _declared(notebook: str) -> set[str]:
    from paperlib.notebook.run import notebook_parameters

    return {s.name for s in notebook_parameters(notebook)}


def _rehearse(command: str, data: Path, weights: Path, photo: Path, mask: Path, work: Path) -> list[str]:
    """A printed command with the rehearsal's data, weights, tag and sizes."""
    text = (command.replace("~/datasets", str(data)).replace("~/duts-sample", str(data))
            .replace("~/weights/", f"{weights}/")
            .replace("--tag paper", f"--tag {TAG}").replace("results/notebooks/paper/", f"results/notebooks/{TAG}/")
            .replace("photo_mask.png", str(mask)).replace("photo.jpg", str(photo)))
    argv = shlex.split(text)
    if argv[:3] == ["paperlib", "notebook", "run"]:
        declared = _declared(argv[3])
        for name, value in SHRINK.items():
            if name in declared:
                argv += ["-p", name, value]
        if "train_overrides" in declared:
            argv += ["-y", "train_overrides: " + json.dumps(TRAIN_SHRINK)]
        argv += [x for k, v in TRAIN_SHRINK.items() if k in declared for x in ("-p", k, str(v))]
        argv += ["--workdir", str(work)]
    elif argv[:2] == ["paperlib", "eval"]:
        argv += ["--limit", "3"]
    return PAPERLIB + ["-q"] + argv[1:]


def _expand_make(command: str) -> str:
    """`make notebook NB=... ARGS=...` as the command its recipe runs."""
    recipe = subprocess.run(shlex.split(command)[:1] + ["-s", "-n", "STAMP="] + shlex.split(command)[1:], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    argv = shlex.split(recipe)
    assert argv[0].endswith("/paperlib"), recipe
    return shlex.join(["paperlib"] + argv[1:])


@pytest.mark.parametrize("where, command", documented(("paperlib notebook", "paperlib eval --dataset dut-omron",
                                                       "make notebook ")),
                         ids=lambda x: x if len(x) < 40 else re.sub(r"\s+", " ", x)[:60])
def test_every_printed_notebook_command_runs(rehearsal, where, command):
    """Each command a reader copies, as printed, with only paths, tag and sizes swapped for the rehearsal's."""
    work, data, weights, _ = rehearsal
    if "--root" in command and "~/datasets" not in command and "~/duts-sample" not in command:
        pytest.skip("scores a folder of the reader's own (the README's other sections test those)")
    if "runs/offline-" in command:
        pytest.skip("needs the offline heads the README trains beside it: tests/test_baselines.py runs it")
    photo = next((data / "DUTS-TE" / "DUTS-TE-Image").iterdir())
    mask = data / "DUTS-TE" / "DUTS-TE-Mask" / f"{photo.stem}.png"
    if command.startswith("make notebook "):
        command = _expand_make(command)
    argv = _rehearse(command, data, weights, photo, mask, work)
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, f"{where}: {shlex.join(argv)}\n{done.stderr[-3000:]}"
