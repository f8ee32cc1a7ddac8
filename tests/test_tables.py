"""Tests of paperlib.paper.tables: our scores as the paper's tables, beside the paper's numbers."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from figure_checks import assert_labelled_plot

from paperlib.checks import InputError
from paperlib.eval.metrics import SaliencyMetrics
from paperlib.paper.reported import paper_table
from paperlib.paper.tables import (
    beside_paper,
    describe_change,
    gains,
    plot_gains,
    read_eval_json,
    scores_table,
    write_table,
)


def _scores(seed: int):
    rng = np.random.default_rng(seed)
    metrics = SaliencyMetrics()
    for _ in range(3):
        gt = rng.random((20, 30)) > 0.6
        metrics.update(np.clip(gt + rng.normal(0, 0.4, gt.shape), 0, 1), gt)
    return metrics.compute()


@pytest.fixture(scope="module")
def results():
    return {"TokenCut": {"duts-te": _scores(0), "ecssd": _scores(1)},
            "TokenCut + GF": {"duts-te": _scores(2)}}


def test_scores_table_lays_out_rows_by_dataset_and_metric(results):
    table = scores_table(results)
    assert list(table.index) == ["TokenCut", "TokenCut + GF"]
    assert list(table.columns) == [(d, m) for d in ("duts-te", "ecssd") for m in ("acc", "iou", "max_fbeta")]
    assert table.loc["TokenCut", ("ecssd", "iou")] == results["TokenCut"]["ecssd"].iou
    assert np.isnan(table.loc["TokenCut + GF", ("ecssd", "acc")])  # not scored there
    # The JSON-ready dicts give the same table.
    as_dicts = {k: {d: s.as_dict() for d, s in v.items()} for k, v in results.items()}
    pd.testing.assert_frame_equal(scores_table(as_dicts), table)


def test_read_eval_json_of_the_eval_command(tmp_path):
    from paperlib.cli.main import main
    from paperlib.data.saliency import open_dataset
    from paperlib.data.synth import synthesize

    synthesize(tmp_path, n=3, seed=0, split="te", progress=False)
    masks = tmp_path / "DUTS-TE" / "DUTS-TE-Mask"
    out = tmp_path / "e.json"
    assert main(["-q", "eval", "--method", "masks", "--masks", str(masks), "--dataset", "duts-te",
                 "--root", str(tmp_path), "--refine", "none,gf", "--json", str(out)]) == 0
    scores = read_eval_json(out)
    assert set(scores) == {"none", "gf"}
    table = scores_table({"exact": {"duts-te": scores["none"]}})
    assert table.loc["exact", ("duts-te", "iou")] == pytest.approx(1.0)
    assert len(open_dataset("duts-te", tmp_path)) == scores["none"]["n_images"]
    (tmp_path / "bad.json").write_text(json.dumps({"iou": 1}))
    with pytest.raises(InputError, match="bad.json"):
        read_eval_json(tmp_path / "bad.json")


def test_beside_paper_puts_the_papers_cells_under_ours(results):
    table = beside_paper(scores_table(results), 5)
    assert list(table.index) == [("TokenCut", "ours"), ("TokenCut", "paper"),
                                 ("TokenCut + GF", "ours"), ("TokenCut + GF", "paper")]
    assert table.loc[("TokenCut + GF", "paper"), ("duts-te", "iou")] == paper_table(5).loc["TokenCut + GF",
                                                                                           ("duts-te", "iou")]
    mine = beside_paper(scores_table({"Mine": results["TokenCut"]}), 5)
    assert mine.loc[("Mine", "paper")].isna().all()     # a row the paper does not have
    with pytest.raises(InputError, match="indexed by"):
        beside_paper(scores_table(results), 3)           # the ablation tables are indexed by switches
    switches = pd.DataFrame({("duts-te", "iou"): [0.5, 0.6]},
                            index=pd.MultiIndex.from_tuples([("dino_vits8", False, False), ("dino_vits8", True, True)],
                                                            names=["backbone", "crop", "gf"]))
    table3 = beside_paper(switches, 3)
    assert table3.loc[("dino_vits8", True, True, "paper"), ("duts-te", "iou")] == 0.787
    assert table3.loc[("dino_vits8", False, False, "ours"), ("duts-te", "iou")] == 0.5


def test_gains_are_differences_to_the_base_row(results):
    table = scores_table(results)
    g = gains(table, "TokenCut")
    assert list(g.index) == ["TokenCut + GF"]
    assert g.loc["TokenCut + GF", ("duts-te", "iou")] == pytest.approx(
        results["TokenCut + GF"]["duts-te"].iou - results["TokenCut"]["duts-te"].iou)
    with pytest.raises(InputError, match="base row"):
        gains(table, "MOVE")
    with pytest.raises(InputError, match="not in the table"):
        gains(table, "TokenCut", ["MOVE + GF"])


def test_describe_change_reads_a_row_against_another(results):
    flat = pd.DataFrame({"acc": [0.61, 0.55], "iou": [0.2, 0.2], "mae": [0.5, 0.45], "n_images": [24, 24]},
                        index=["init", "last"])
    assert describe_change(flat, "init", "last") == (
        "last against init: Acc 0.550 vs 0.610 (-0.060, worse), IoU 0.200 vs 0.200 (+0.000, unchanged), "
        "MAE 0.450 vs 0.500 (-0.050, better).")                 # lower MAE is better; n_images is no metric
    assert describe_change(flat, "init", "last", metrics=["iou"]).endswith("(+0.000, unchanged).")
    table = scores_table(results)                               # (dataset, metric) columns; NaN cells skipped
    text = describe_change(table, "TokenCut", "TokenCut + GF")
    assert text.count("duts-te") == 3 and "ecssd" not in text
    gain = table.loc["TokenCut + GF", ("duts-te", "iou")] - table.loc["TokenCut", ("duts-te", "iou")]
    assert f"({gain:+.3f}, {'better' if round(gain, 3) > 0 else 'worse'})" in text
    ablation = paper_table(4)   # rows keyed by switches, CorLoc in %; 74.2 / 71.7: paper_results.csv
    assert describe_change(ablation, (False, False), (True, False)).startswith(
        "crop=True, gf=False against crop=False, gf=False: voc07 CorLoc 74.2 vs 71.7 (+2.5, better)")
    with pytest.raises(InputError, match="'MOVE' is not in the table"):
        describe_change(table, "MOVE", "TokenCut")
    with pytest.raises(InputError, match="no metric to compare"):
        describe_change(flat, "init", "last", metrics=["corloc"])


def test_plot_and_write(results, tmp_path):
    table = scores_table(results)
    ours = gains(table, "TokenCut")
    fig = plot_gains(ours, gains(paper_table(5).reindex(columns=table.columns), "TokenCut", ["TokenCut + GF"]),
                     base="TokenCut", title="Table 5")
    assert len(fig.axes) == 3                                   # acc, iou, max_fbeta
    assert len(fig.axes[1].containers) == 2                     # ours and the paper's bars
    for ax, name in zip(fig.axes, ("Acc", "IoU", "max F-beta")):
        assert_labelled_plot(ax)
        assert ax.get_ylabel() == f"{name} gain (0-1 scale)" and "over TokenCut" in ax.get_title()
        assert ax.get_xlabel() == "test set"
    assert fig.get_suptitle() == "Table 5"
    corloc = pd.DataFrame({("voc07", "corloc"): [60.0, 62.5]}, index=["Sempart*", "Ours"])
    corloc.columns.names = ["dataset", "metric"]
    (ax,) = plot_gains(gains(corloc, "Sempart*")).axes
    assert ax.get_ylabel() == "CorLoc gain (percentage points)" and "the base row" in ax.get_title()
    write_table(beside_paper(table, 5), tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", header=[0, 1], index_col=[0, 1])
    assert back.shape == (4, 6)
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0].startswith("| method | source | duts-te acc") and len(md) == 2 + 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]   # no temporary files
    with pytest.raises(InputError, match=".csv"):
        write_table(table, tmp_path / "t.txt")
