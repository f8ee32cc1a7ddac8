"""No command writes over what it reads (issue 10): one output guard, driven through the CLI.

Each case names an output that is, holds, or lies inside an input, or is a file where a folder
is needed. The command must stop with one line naming the option, exit 2, and leave every input
byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from paperlib.checks import InputError, check_output_dir
from paperlib.cli.main import main
from paperlib.data.synth import synthesize
from paperlib.images import write_image, write_mask_png


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path, rng):
    """Images, ground truth and predictions as a user keeps them, and a synthetic dataset root."""
    img, gt, pred = tmp_path / "img", tmp_path / "gt", tmp_path / "pred"
    for i in range(2):
        mask = np.zeros((32, 40))
        mask[6:24, 8:30] = 1.0
        write_image(img / f"im{i}.png", rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))
        write_mask_png(gt / f"im{i}.png", mask)
        write_mask_png(pred / f"im{i}.png", np.roll(mask, 2, axis=1) * 0.8)
    synthesize(tmp_path / "data", n=2, seed=0, split="te", progress=False)
    shutil.copytree(tmp_path / "data" / "DUTS-TE" / "DUTS-TE-Mask", tmp_path / "synthpred")  # a method's masks
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path


CASES = {
    # the cases: outputs that replaced inputs and exited 0
    "refine --out = --images": ["refine", "--images", "{t}/img", "--masks", "{t}/pred", "--out", "{t}/img"],
    "refine --out = --masks": ["refine", "--images", "{t}/img", "--masks", "{t}/pred", "--out", "{t}/pred"],
    "refine --out inside --images": ["refine", "--images", "{t}/img", "--masks", "{t}/pred", "--out", "{t}/img/gf"],
    "refine --out holds --masks": ["refine", "--images", "{t}/img", "--masks", "{t}/pred", "--out", "{t}"],
    "refine --out is a file": ["refine", "--images", "{t}/img", "--masks", "{t}/pred", "--out", "{t}/a_file"],
    "degrade --out = --masks": ["data", "degrade", "--masks", "{t}/gt", "--out", "{t}/gt"],
    "segment DIR --out DIR": ["segment", "{t}/img", "--out", "{t}/img", "--backbone", "filterbank"],
    "segment --out is a file": ["segment", "{t}/img", "--out", "{t}/a_file", "--backbone", "filterbank"],
    "eval --save-masks into the ground truth": [
        "eval", "--dataset", "duts-te", "--root", "{t}/data", "--backbone", "filterbank",
        "--save-masks", "{t}/data/DUTS-TE/DUTS-TE-Mask"],
    "eval --save-masks is a file": [
        "eval", "--dataset", "duts-te", "--root", "{t}/data", "--backbone", "filterbank",
        "--save-masks", "{t}/a_file"],
    # found by a hostile-input probe after the first round
    "segment --out inside the input folder": ["segment", "{t}/img", "--out", "{t}/img/masks", "--backbone",
                                              "filterbank"],
    "eval --save-masks = the --masks it scores": [
        "eval", "--dataset", "duts-te", "--root", "{t}/data", "--method", "masks", "--masks", "{t}/synthpred",
        "--save-masks", "{t}/synthpred"],
    "eval --save-masks inside the dataset": [
        "eval", "--dataset", "duts-te", "--root", "{t}/data", "--backbone", "filterbank",
        "--save-masks", "{t}/data/DUTS-TE/saved"],
    "train --out inside the training set": [
        "train", "--preset", "smoke", "--data-root", "{t}/data", "--dataset", "duts-te", "--test-dataset", "duts-te",
        "--device", "cpu", "--batch-size", "1", "--out", "{t}/data/DUTS-TE/run"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_output_over_an_input_is_refused_and_nothing_changes(tree, case, capsys):
    before = _digest(tree)
    argv = ["-q"] + [a.format(t=tree) for a in CASES[case]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("paperlib: error: --") and "Traceback" not in err[0]
    assert ("--save-masks" if "save-masks" in case else "--out") in err[0]
    assert _digest(tree) == before                      # not one input byte touched, nothing added


def test_a_segment_folder_can_be_passed_on(tree, capsys):
    """Masks alone in the output (overlays in overlays/), so refine and eval-masks take it as it is."""
    out = tree / "seg"
    assert main(["-q", "segment", str(tree / "img"), "--out", str(out), "--backbone", "filterbank"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["im0.png", "im1.png"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["im0.jpg", "im1.jpg"]
    assert main(["-q", "refine", "--images", str(tree / "img"), "--masks", str(out), "--out", str(tree / "gf")]) == 0
    assert main(["-q", "eval-masks", "--pred", str(out), "--gt", str(tree / "gt")]) == 0


def test_the_guard_itself(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"")
    assert check_output_dir("--out", tmp_path / "out", inputs={"--in": tmp_path / "in"}) == tmp_path / "out"
    assert not (tmp_path / "out").exists()                  # it checks, it creates nothing
    (tmp_path / "link").symlink_to(tmp_path / "in")
    with pytest.raises(InputError, match="is the input folder of --in"):
        check_output_dir("--out", tmp_path / "link", inputs={"--in": tmp_path / "in"})   # resolved
    with pytest.raises(InputError, match="holds the input file of --in"):
        check_output_dir("--out", tmp_path / "in", inputs={"--in": tmp_path / "in" / "x.png"})
    with pytest.raises(InputError, match="lies inside the input folder"):
        check_output_dir("--out", tmp_path / "in" / ".." / "in" / "sub", inputs={"--in": tmp_path / "in"})
    check_output_dir("--out", tmp_path / "sibling", inputs={"--in": tmp_path / "in", "--none": None})


REPORT_CASES = {
    "eval-masks --json into the ground truth": (["eval-masks", "--pred", "{t}/pred", "--gt", "{t}/gt",
                                                 "--json", "{t}/gt/scores.json"], "--json"),
    "eval-masks --per-image over a prediction": (["eval-masks", "--pred", "{t}/pred", "--gt", "{t}/gt",
                                                  "--per-image", "{t}/pred/im0.png"], "--per-image"),
    "eval --json inside the dataset": (["eval", "--dataset", "duts-te", "--root", "{t}/data", "--backbone",
                                        "filterbank", "--json", "{t}/data/DUTS-TE/s.json"], "--json"),
    "gf-sweep --csv into the masks": (["gf-sweep", "--dataset", "duts-te", "--root", "{t}/data", "--radii", "2",
                                       "--eps", "0.001", "--csv", "{t}/data/DUTS-TE/DUTS-TE-Mask/sweep.csv"],
                                      "--csv"),
    "eval-masks --json is a folder": (["eval-masks", "--pred", "{t}/pred", "--gt", "{t}/gt", "--json", "{t}/img"],
                                      "--json"),
}


@pytest.mark.parametrize("case", sorted(REPORT_CASES))
def test_a_report_file_among_the_inputs_is_refused(tree, case, capsys):
    """--json, --csv, --per-image may not join the data they describe (found by a hostile probe)."""
    argv, option = REPORT_CASES[case]
    before = _digest(tree)
    assert main(["-q"] + [a.format(t=tree) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"paperlib: error: {option} "), err
    assert _digest(tree) == before
    outside = tree / "reports" / "scores.json"                 # the same command with the report elsewhere
    if argv[0] == "eval-masks":
        good = [a.format(t=tree) for a in argv[:-2]] + [argv[-2], str(outside)]
        assert main(["-q"] + good) == 0 and outside.is_file()


def test_the_dataset_folder_is_the_shared_parent_only(tmp_path):
    """Images and masks side by side: their parent is the dataset; unrelated folders have none
    (not '/', which would refuse every output), and relative and absolute paths mix."""
    from paperlib.checks import dataset_folder

    (tmp_path / "set" / "img").mkdir(parents=True)
    (tmp_path / "set" / "gt").mkdir()
    (tmp_path / "labels").mkdir()
    assert dataset_folder(tmp_path / "set" / "img", tmp_path / "set" / "gt") == (tmp_path / "set").resolve()
    assert dataset_folder(tmp_path / "set" / "img", tmp_path / "labels") is None
    import os
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert dataset_folder("set/img", tmp_path / "set" / "gt") == (tmp_path / "set").resolve()
    finally:
        os.chdir(here)
