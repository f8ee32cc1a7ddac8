"""Figs. 6-8 (paperlib.paper.size_figures): IoU by object size read back, tabled and drawn."""

from __future__ import annotations

import csv
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from figure_checks import assert_labelled_plot

from paperlib.backbones.weights import file_sha256
from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.eval.metrics import SaliencyMetrics
from paperlib.paper.size_figures import (
    is_synthetic,
    plot_iou_by_size,
    plot_iou_by_size_datasets,
    read_iou_by_size,
    size_table,
)

SIDE = 20  # hand-made masks are 20 x 20 = 400 pixels
# Foreground pixel counts: three images in bin 0 (one empty), ratios exactly on the edges 0.05 and
# 0.25 (bins 1 and 5), a full mask (ratio 1: the last bin), and the bins between left empty.
FG_PIXELS = (0, 3, 7, 20, 37, 95, 100, 210, 398, 400)


def _hand_made(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pred, gt) pairs: gt holds the first k pixels in raster order, pred is noisy around it."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in FG_PIXELS:
        gt = np.zeros(SIDE * SIDE, bool)
        gt[:k] = True
        pred = np.where(gt, rng.uniform(0.3, 1.0, gt.size), rng.uniform(0.0, 0.7, gt.size))
        if k == 0:
            pred[:] = 0.0  # empty ground truth, empty prediction: IoU 1 by the metrics' convention
        pairs.append((pred.reshape(SIDE, SIDE), gt.reshape(SIDE, SIDE)))
    return pairs


def _reference(pairs, n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Counts and mean IoU per bin, computed here with exact fractions and plain numpy."""
    bins, ious = [], []
    for pred, gt in pairs:
        ratio = Fraction(int(gt.sum()), gt.size)
        bins.append(min(int(ratio * n_bins), n_bins - 1))  # floor, the ratio 1 in the last bin
        p = pred > 0.5
        union = np.logical_or(p, gt).sum()
        ious.append(1.0 if union == 0 else np.logical_and(p, gt).sum() / union)
    counts = np.bincount(bins, minlength=n_bins)
    sums = np.bincount(bins, weights=ious, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        return counts, np.where(counts > 0, sums / counts, np.nan)


def _scores(pairs, n_size_bins: int = 20):
    metrics = SaliencyMetrics(n_size_bins=n_size_bins)
    for pred, gt in pairs:
        metrics.update(pred, gt)
    return metrics.compute()


def _at(path) -> str:
    """A file path as a regular expression that matches it literally."""
    return re.escape(str(path))


@pytest.fixture(scope="module")
def two_results():
    """Two named results on the same hand-made ground truth, and their independent reference."""
    a, b = _hand_made(0), _hand_made(1)
    return {"baseline": _scores(a), "improved": _scores(b)}, {"baseline": _reference(a),
                                                              "improved": _reference(b)}


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    """`paperlib eval --json --per-image` on a tiny synthetic DUTS-TE, as a user would run it."""
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n=8, seed=3, size_range=(96, 128), progress=False)
    out, per_image = root / "eval.json", root / "eval.csv"
    assert main(["-q", "eval", "--dataset", "duts-te", "--root", str(root), "--backbone", "filterbank",
                 "--device", "cpu", "--refine", "none,gf", "--json", str(out),
                 "--per-image", str(per_image)]) == 0
    return root, out, per_image


def test_table_equals_numpy_reference(two_results):
    scores, reference = two_results
    table = size_table(scores)
    assert list(table.columns) == ["name", "bin", "lo", "hi", "count", "mean_iou"]
    assert len(table) == 2 * 20
    for name, (counts, mean_iou) in reference.items():
        rows = table[table["name"] == name]
        np.testing.assert_array_equal(rows["bin"], np.arange(20))
        np.testing.assert_allclose(rows["lo"], np.arange(20) / 20)
        np.testing.assert_allclose(rows["hi"], np.arange(1, 21) / 20)
        np.testing.assert_array_equal(rows["count"], counts)
        np.testing.assert_allclose(rows["mean_iou"], mean_iou, rtol=1e-12, equal_nan=True)
    # bins 0, 0, 0, 1, 1, 4, 5, 10, 19, 19 hold the hand-made images; the rest are NaN
    counts = reference["baseline"][0]
    np.testing.assert_array_equal(np.flatnonzero(counts), [0, 1, 4, 5, 10, 19])
    assert table.loc[table["count"] == 0, "mean_iou"].isna().all()
    assert table.loc[table["count"] > 0, "mean_iou"].notna().all()


def test_dataset_column(two_results):
    table = size_table(two_results[0], dataset="ecssd")
    assert list(table.columns)[:2] == ["dataset", "name"] and set(table["dataset"]) == {"ecssd"}


def test_every_source_gives_the_same_table(two_results, tmp_path):
    scores = two_results[0]["baseline"]
    as_dict = scores.as_dict()
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(as_dict))
    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps({"dataset": "duts-te", "synthetic": False,
                                     "scores": {"none": as_dict}}))

    class Holder:  # like segment.DatasetEval / evaluate.FolderEval: the scores as .scores
        pass

    holder = Holder()
    holder.scores = scores
    expected = size_table({"r": scores})
    for source in (scores.iou_by_size, as_dict, as_dict["iou_by_size"], summary, str(summary),
                   eval_file, (eval_file, "none"), [str(eval_file), "none"], holder):
        pd.testing.assert_frame_equal(size_table({"r": source}), expected)
        by_size = read_iou_by_size(source)
        np.testing.assert_array_equal(by_size.counts, scores.iou_by_size.counts)
        assert by_size.counts.dtype == np.int64


def test_eval_command_json_matches_its_per_image_rows_and_the_library(eval_run):
    from paperlib.data.saliency import open_dataset
    from paperlib.eval.datasets import evaluate_dataset
    from paperlib.methods.registry import build_method

    root, out, per_image = eval_run
    with open(per_image, newline="") as f:
        rows = list(csv.DictReader(f))
    in_process = evaluate_dataset(open_dataset("duts-te", root),
                                  build_method("tokencut", backbone="filterbank", device="cpu"),
                                  refines=("none", "gf"), progress=False)
    for refine in ("none", "gf"):
        by_size = read_iou_by_size(out, entry=refine, dataset="duts-te")
        # Independent: bin the per-image CSV's foreground ratios and average its IoUs with numpy.
        ratio = np.array([float(r["fg_ratio"]) for r in rows if r["refine"] == refine])
        iou = np.array([float(r["iou"]) for r in rows if r["refine"] == refine])
        bins = np.minimum(np.floor(ratio * 20).astype(int), 19)
        counts = np.bincount(bins, minlength=20)
        np.testing.assert_array_equal(by_size.counts, counts)
        assert counts.sum() == 8 and (counts == 0).sum() > 0  # 8 images leave some bins empty
        with np.errstate(invalid="ignore"):
            expected = np.bincount(bins, weights=iou, minlength=20) / counts
        np.testing.assert_allclose(by_size.mean_iou, expected, rtol=1e-9, equal_nan=True)
        # The file read back equals the library's own result, from the DatasetEval and as_dict.
        from_file = size_table({"TokenCut": (out, refine)})
        pd.testing.assert_frame_equal(from_file, size_table({"TokenCut": in_process[refine]}))
        as_dict = in_process[refine].scores.as_dict()
        pd.testing.assert_frame_equal(from_file, size_table({"TokenCut": as_dict}))
    assert is_synthetic(out) and is_synthetic((out, "gf"))
    assert not is_synthetic(in_process["gf"].scores)


def test_file_errors_name_the_file(two_results, eval_run, tmp_path):
    scores = two_results[0]["baseline"]
    _, out, _ = eval_run
    with pytest.raises(InputError, match=rf"{_at(out)}.*'gf', 'none'.*choose one"):
        read_iou_by_size(out)
    with pytest.raises(InputError, match=rf"{_at(out)}.*no refinement\(s\) 'bf'"):
        read_iou_by_size(out, entry="bf")
    with pytest.raises(InputError, match=rf"{_at(out)}.*dataset 'duts-te', not 'ecssd'"):
        size_table({"a": (out, "gf")}, dataset="ecssd")

    no_key = tmp_path / "old.json"
    no_key.write_text(json.dumps({k: v for k, v in scores.as_dict().items() if k != "iou_by_size"}))
    with pytest.raises(InputError, match=rf"{_at(no_key)}: no iou_by_size"):
        size_table({"a": scores, "b": no_key})
    old_eval = tmp_path / "old_eval.json"
    old_eval.write_text(json.dumps({"dataset": "duts-te", "scores": {
        "gf": {k: v for k, v in scores.as_dict().items() if k != "iou_by_size"}}}))
    with pytest.raises(InputError, match=rf"{_at(old_eval)}: scores\['gf'\] has no iou_by_size"):
        read_iou_by_size(old_eval)

    twenty, ten = tmp_path / "twenty.json", tmp_path / "ten.json"
    twenty.write_text(json.dumps(scores.as_dict()))
    ten.write_text(json.dumps(_scores(_hand_made(0), n_size_bins=10).as_dict()))
    with pytest.raises(InputError, match=rf"{_at(ten)}: its 10 size bins differ from the 20 "
                                         rf"bins of {_at(twenty)}"):
        size_table({"a": twenty, "b": ten})

    broken = scores.as_dict()
    broken["iou_by_size"]["counts"] = broken["iou_by_size"]["counts"][:-1]
    bad_len = tmp_path / "bad_len.json"
    bad_len.write_text(json.dumps(broken))
    with pytest.raises(InputError, match=rf"{_at(bad_len)}: .*21 edges.*20 values"):
        read_iou_by_size(bad_len)
    broken = scores.as_dict()
    broken["iou_by_size"]["mean_iou"][0] = None  # bin 0 holds images
    bad_nan = tmp_path / "bad_nan.json"
    bad_nan.write_text(json.dumps(broken))
    with pytest.raises(InputError, match=rf"{_at(bad_nan)}: .*null exactly where"):
        read_iou_by_size(bad_nan)
    not_json = tmp_path / "notes.json"
    not_json.write_text("acc 0.9\n")
    with pytest.raises(InputError, match=rf"{_at(not_json)}: not a JSON file"):
        read_iou_by_size(not_json)
    with pytest.raises(InputError, match=rf"{_at(tmp_path / 'missing.json')}: file not found"):
        read_iou_by_size(tmp_path / "missing.json")
    with pytest.raises(InputError, match="holds one result, so entry 'gf' does not apply"):
        read_iou_by_size(twenty, entry="gf")
    with pytest.raises(InputError, match="at least one name"):
        size_table({})


def _bars(container) -> tuple[np.ndarray, np.ndarray]:
    """Bin index under each bar's centre, and each bar's height."""
    x = np.array([r.get_x() + r.get_width() / 2 for r in container.patches])
    return np.rint(x).astype(int), np.array([r.get_height() for r in container.patches])


def test_figure_draws_gaps_not_zeros(two_results, tmp_path):
    import matplotlib.pyplot as plt

    scores, reference = two_results
    table = size_table(scores, dataset="dut-omron")
    path = tmp_path / "fig6.png"
    fig = plot_iou_by_size(table, path=path)
    ax_iou, ax_count = fig.axes
    assert len(ax_iou.containers) == 2 and len(ax_count.containers) == 1
    assert "DUT-OMRON" in ax_iou.get_title()
    assert_labelled_plot(ax_iou, x=False)                        # the x axis is shared with the counts
    assert ax_count.get_ylabel() and "(" in ax_count.get_xlabel()  # the size ratio and what it is
    for container, name in zip(ax_iou.containers, ("baseline", "improved")):
        counts, mean_iou = reference[name]
        bins, heights = _bars(container)
        np.testing.assert_array_equal(bins, np.flatnonzero(counts))  # no bar in an empty bin
        np.testing.assert_allclose(heights, mean_iou[counts > 0], rtol=1e-12)
    bins, heights = _bars(ax_count.containers[0])
    np.testing.assert_array_equal(bins, np.arange(20))
    np.testing.assert_array_equal(heights, reference["baseline"][0])
    labels = [t.get_text() for t in ax_count.get_xticklabels()]
    assert labels[0] == "0.00-0.05" and labels[-1] == "0.95-1.00" and len(labels) == 20
    plt.close(fig)

    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 500
    assert [p.name for p in tmp_path.iterdir()] == ["fig6.png"]  # no temporary file left


def test_figure_with_different_counts_per_result(two_results):
    import matplotlib.pyplot as plt

    scores, _ = two_results
    cropped = _scores([(p[2:-2, 2:-2], g[2:-2, 2:-2]) for p, g in _hand_made(2)])  # other ratios
    fig = plot_iou_by_size(size_table({"full": scores["baseline"], "crop": cropped}), dataset="duts-te")
    assert len(fig.axes[0].containers) == 2 and len(fig.axes[1].containers) == 2
    plt.close(fig)


def test_three_datasets_side_by_side(two_results, tmp_path):
    import matplotlib.pyplot as plt

    scores, _ = two_results
    table = pd.concat([size_table(scores, dataset=d) for d in ("dut-omron", "duts-te", "ecssd")])
    path = tmp_path / "figs_6_8.png"
    fig = plot_iou_by_size_datasets(table, path=path)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["DUT-OMRON", "DUTS-TE", "ECSSD"]
    assert [len(ax.containers) for ax in fig.axes] == [2, 2, 2, 1, 1, 1]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="pass dataset= to choose one"):
        plot_iou_by_size(table)
    one = plot_iou_by_size(table, dataset="ecssd")
    assert "ECSSD" in one.axes[0].get_title()
    with pytest.raises(InputError, match="pass dataset= to name"):
        plot_iou_by_size(size_table(scores))
    with pytest.raises(InputError, match="needs a dataset column"):
        plot_iou_by_size_datasets(size_table(scores))
    plt.close("all")


def _run(tmp_path: Path, parameters: dict) -> None:
    """Execute the notebook with the runner in ``tmp_path``."""
    from notebook_runs import run

    run("figs_6_8_iou_by_size", tmp_path, parameters)


def test_notebook_offline_writes_a_smoke_figure(tmp_path):
    _run(tmp_path, {"max_images": 5})
    figures = tmp_path / "figures"
    stem = "figs_6_8_iou_by_size_tokencut_filterbank16_smoke"
    assert sorted(p.name for p in figures.iterdir()) == [f"{stem}.csv", f"{stem}.csv.provenance.json",
                                                         f"{stem}.png", f"{stem}.png.provenance.json"]
    table = pd.read_csv(figures / "figs_6_8_iou_by_size_tokencut_filterbank16_smoke.csv")
    assert list(table["name"].unique()) == ["TokenCut", "TokenCut + GF"]
    assert table.groupby("name")["count"].sum().tolist() == [5, 5]
    assert (tmp_path / "results" / "notebooks" / "data" / "DUTS-TE" / "SYNTHETIC.json").is_file()


def test_notebook_reads_eval_files(eval_run, tmp_path):
    _, out, _ = eval_run
    real = json.loads(out.read_text())
    real["synthetic"] = False  # as if scored on the real test set
    real_file = tmp_path / "real.json"
    real_file.write_text(json.dumps(real))
    results = {"duts-te": {"TokenCut": [str(real_file), "none"],
                           "TokenCut + GF": [str(real_file), "gf"]}}
    _run(tmp_path, {"results": results, "tag": "sample"})
    figures = tmp_path / "figures"
    assert sorted(p.name for p in figures.iterdir() if not p.name.endswith(".provenance.json")) == \
        ["figs_6_8_iou_by_size_sample.csv", "figs_6_8_iou_by_size_sample.png"]
    expected = size_table({"TokenCut": (out, "none"), "TokenCut + GF": (out, "gf")}, dataset="duts-te")
    pd.testing.assert_frame_equal(pd.read_csv(figures / "figs_6_8_iou_by_size_sample.csv"), expected,
                                  check_dtype=False)
    assert not (tmp_path / "results" / "notebooks" / "data").exists()  # nothing computed, nothing synthesized
    record = json.loads((figures / "figs_6_8_iou_by_size_sample.png.provenance.json").read_text())
    assert record["data"][0]["root"] == str(real_file) and record["data"][0]["kind"] == "sample"
    assert record["data"][0]["sha256"] == file_sha256(real_file)


@pytest.mark.realdata
def test_real_duts_sample(real_data_root, tmp_path):
    """TokenCut (filterbank16) without and with GF on 24 real DUTS-TE images, drawn as Fig. 7."""
    import matplotlib.pyplot as plt

    from paperlib.data.saliency import open_dataset
    from paperlib.eval.datasets import evaluate_dataset
    from paperlib.methods.registry import build_method

    evals = evaluate_dataset(open_dataset("duts-te", real_data_root),
                             build_method("tokencut", backbone="filterbank16", device="cpu"),
                             refines=("none", "gf"), limit=24, progress=False)
    table = size_table({"TokenCut": evals["none"], "TokenCut + GF": evals["gf"]}, dataset="duts-te")
    for name, r in (("TokenCut", "none"), ("TokenCut + GF", "gf")):
        rows = table[table["name"] == name]
        ratio = np.array([row["fg_ratio"] for row in evals[r].rows])
        iou = np.array([row["iou"] for row in evals[r].rows])
        bins = np.minimum(np.floor(ratio * 20).astype(int), 19)
        counts = np.bincount(bins, minlength=20)
        np.testing.assert_array_equal(rows["count"], counts)
        with np.errstate(invalid="ignore"):
            expected = np.bincount(bins, weights=iou, minlength=20) / counts
        np.testing.assert_allclose(rows["mean_iou"], expected, rtol=1e-9, equal_nan=True)
    fig = plot_iou_by_size(table, path=tmp_path / "fig7.png")
    assert len(fig.axes[0].containers) == 2 and (tmp_path / "fig7.png").stat().st_size > 10_000
    plt.close(fig)
