"""Tests of paperlib.paper.experiments: the ablation runs and their scores, checked against the commands."""

from __future__ import annotations

import csv
import json

import pytest

from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.paper.experiments import (
    ablation_runs,
    corloc_ablation,
    run_dir,
    saliency_ablation,
    table1_rows,
    table2_rows,
    table3_frame,
    table4_frame,
)

TINY = dict(image_size=32, resize_short=36, batch_size=4, max_steps=3, val_fraction=0.1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    synthesize(root, n=12, seed=1, split="te", progress=False)   # batches of 8: one full, one partial
    out = tmp_path_factory.mktemp("runs")
    runs = ablation_runs(root, out, backbones=("filterbank",), preset="smoke", progress=False, **TINY)
    return root, out, runs


def _log_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_run_per_crop_and_finished_runs_are_reused(setup):
    root, out, runs = setup
    assert set(runs) == {("filterbank", "none"), ("filterbank", "paper")}
    for (backbone, crop), path in runs.items():
        assert path == run_dir(out, backbone, crop) / "last.pt" and path.is_file()
        rows = _log_rows(path.parent / "log.csv")
        assert len(rows) == 3
        assert (float(rows[0]["eq"]) > 0) == (crop == "paper")   # trick 2 on in one run only
    again = ablation_runs(root, out, backbones=("filterbank",), preset="smoke", progress=False, **TINY)
    assert again == runs
    assert len(_log_rows(runs[("filterbank", "none")].parent / "log.csv")) == 3   # not retrained
    with pytest.raises(InputError, match="lr"):   # a different config is refused, not mixed in
        ablation_runs(root, out, backbones=("filterbank",), preset="smoke", progress=False, lr=0.5, **TINY)
    with pytest.raises(InputError, match="crop"):
        ablation_runs(root, out, crops=("official",))


def test_saliency_scores_equal_the_eval_command(setup, tmp_path):
    root, _, runs = setup
    results = saliency_ablation(runs, ["duts-te"], root, progress=False)
    assert set(results) == {(b, c, r) for (b, c) in runs for r in ("none", "gf", "bf")}
    out = tmp_path / "e.json"
    assert main(["-q", "eval", "--method", "sempart", "--checkpoint", str(runs[("filterbank", "paper")]),
                 "--dataset", "duts-te", "--root", str(root), "--refine", "none,gf", "--json", str(out)]) == 0
    command = json.loads(out.read_text())["scores"]
    for refine in ("none", "gf"):
        ours = results[("filterbank", "paper", refine)]["duts-te"]
        assert ours.iou == pytest.approx(command[refine]["iou"], abs=1e-12)
        assert ours.max_fbeta == pytest.approx(command[refine]["max_fbeta"], abs=1e-12)
    rows = table1_rows(results, backbone="filterbank")
    assert list(rows) == ["Sempart*", "Ours", "Sempart* + BF", "Ours + BF"]
    assert rows["Ours"] is results[("filterbank", "paper", "gf")]
    frame = table3_frame(results)
    assert list(frame.index) == [("filterbank", False, False), ("filterbank", True, False),
                                 ("filterbank", False, True), ("filterbank", True, True)]
    assert frame.loc[("filterbank", True, True), ("duts-te", "iou")] == results[("filterbank", "paper", "gf")][
        "duts-te"].iou


def test_corloc_equals_the_corloc_command(setup, tmp_path):
    root, _, runs = setup
    results = corloc_ablation(runs, ["synth"], root, progress=False)
    for refine in ("none", "gf"):
        out = tmp_path / f"{refine}.json"
        assert main(["-q", "corloc", "--method", "sempart", "--checkpoint", str(runs[("filterbank", "none")]),
                     "--dataset", "synth", "--root", str(root), "--refine", refine, "--json", str(out)]) == 0
        command = json.loads(out.read_text())
        ours = results[("filterbank", "none", refine)]["synth"]
        assert ours["corloc"] == pytest.approx(100 * command["corloc"]) and ours["n_images"] == 12
    assert list(table2_rows(results, backbone="filterbank")) == ["Sempart*", "Ours"]
    frame = table4_frame(results, backbone="filterbank")
    assert list(frame.index) == [(False, False), (True, False), (False, True), (True, True)]
    with pytest.raises(InputError, match="no raw"):
        table4_frame(results, backbone="dino_vits8")


def test_resolve_runs_takes_given_checkpoints_or_trains(setup, tmp_path):
    from paperlib.paper.experiments import resolve_runs

    root, out, runs = setup
    given = {"filterbank/paper": str(runs[("filterbank", "paper")])}
    assert resolve_runs(given, root, tmp_path / "unused") == {("filterbank", "paper"): runs[("filterbank", "paper")]}
    assert not (tmp_path / "unused").exists()
    assert resolve_runs(None, root, out, backbones=("filterbank",), preset="smoke", progress=False, **TINY) == runs
    with pytest.raises(InputError, match="<backbone>/<crop>"):
        resolve_runs({"filterbank": "x.pt"}, root, out)
    with pytest.raises(InputError, match="does not exist"):
        resolve_runs({"filterbank/none": str(tmp_path / "x.pt")}, root, out)


def test_papermill_strings_and_mislabelled_checkpoints_are_refused(setup, tmp_path):
    from paperlib.paper.experiments import resolve_runs

    root, out, runs = setup
    with pytest.raises(InputError, match="-y"):     # `-p backbones '["dino_vits8"]'` arrives as a string
        ablation_runs(root, out, backbones='["filterbank"]')
    with pytest.raises(InputError, match="weights must be a mapping"):
        saliency_ablation(runs, ["duts-te"], root, weights='{"filterbank": "x"}')
    with pytest.raises(InputError, match="trained on 'filterbank', not on 'dino_vits8'"):
        resolve_runs({"dino_vits8/paper": str(runs[("filterbank", "paper")])}, root, out)


def test_main_backbone_and_the_paper_order_of_table3():
    from paperlib.paper.experiments import main_backbone

    assert main_backbone({("ibot_vits16", "none"): 1, ("dino_vits8", "none"): 2}) == "dino_vits8"
    assert main_backbone({("filterbank", "none"): 1}) == "filterbank"
    # Backbones keep the order they were given in (ViT-S/8 before ViT-S/16, not alphabetical).
    results = {(b, c, r): {"duts-te": {"iou": 0.1}} for b in ("dino_vits8", "dino_vits16")
               for c in ("none", "paper") for r in ("none", "gf")}
    assert [k[0] for k in table3_frame(results).index] == ["dino_vits8"] * 4 + ["dino_vits16"] * 4
