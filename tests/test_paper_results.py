"""Tests of paperlib.paper.reported: the paper's reported numbers, checked against the paper itself."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.paper.reported import TABLE_CAPTIONS, paper_results, paper_table

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "two-tricks-paper.txt"


def test_every_table_is_complete():
    # rows x datasets x metrics as printed: 15 x 3 x 3, 7 x 3, 12 x 3, 4 x 3, 6 x 3 x 3.
    counts = paper_results().groupby("table").size().to_dict()
    assert counts == {1: 135, 2: 21, 3: 36, 4: 12, 5: 54}
    for t in TABLE_CAPTIONS:
        assert not paper_table(t).isna().any().any(), t
    assert paper_table(1).shape == (15, 9) and paper_table(3).shape == (12, 3)


def test_values_read_by_eye_from_the_paper():
    t1, t2, t3, t5 = paper_table(1), paper_table(2), paper_table(3), paper_table(5)
    assert t1.loc["Ours", ("duts-te", "iou")] == 0.787
    assert t1.loc["FOUND - single", ("ecssd", "max_fbeta")] == 0.946
    assert t2.loc["Ours", ("coco20k", "corloc")] == 63.4
    assert t3.loc[("ibot_vits16", True, True), ("ecssd", "iou")] == 0.811
    assert t5.loc["TokenCut + BF", ("dut-omron", "max_fbeta")] == 0.697


def test_units_and_ranges():
    frame = paper_results()
    fractions = frame[frame.metric != "corloc"].value
    assert ((fractions > 0.3) & (fractions < 1)).all()
    corloc = frame[frame.metric == "corloc"].value
    assert ((corloc > 40) & (corloc < 100)).all()


def test_the_tables_agree_with_each_other():
    t1, t2, t3, t4, t5 = (paper_table(t) for t in range(1, 6))
    # Table 2's arrows: the gain of Ours over Sempart* (up 2.7, 1.1, 2.1).
    np.testing.assert_allclose(t2.loc["Ours"] - t2.loc["Sempart*"], [2.7, 1.1, 2.1], atol=1e-9)
    # Tables 3 and 4 start from Sempart* (no trick) and end at Ours (both) with DINO ViT-S/8.
    iou1 = t1.xs("iou", axis=1, level="metric")
    iou3 = t3.xs("iou", axis=1, level="metric")
    np.testing.assert_array_equal(iou3.loc[("dino_vits8", False, False)], iou1.loc["Sempart*"])
    np.testing.assert_array_equal(iou3.loc[("dino_vits8", True, True)], iou1.loc["Ours"])
    np.testing.assert_array_equal(t4.loc[(False, False)], t2.loc["Sempart*"])
    np.testing.assert_array_equal(t4.loc[(True, True)], t2.loc["Ours"])
    # Table 5 repeats Table 1's TokenCut, MOVE and MOVE + BF rows.
    for row in ("TokenCut", "MOVE", "MOVE + BF"):
        np.testing.assert_array_equal(t5.loc[row], t1.loc[row])


def test_bad_table_is_refused():
    with pytest.raises(InputError, match="table"):
        paper_table(6)
    with pytest.raises(InputError, match="table"):
        paper_results(0)


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper's text is not beside the project")
def test_the_data_file_equals_the_numbers_printed_in_the_paper():
    # An independent reading of the text: every number of every tab-separated table row, in
    # order of appearance (Tables 1, 2, 3, 4 and 5 appear in that order), ignoring the arrows
    # of Table 2 and the citation brackets.
    printed = []
    for line in PAPER.read_text(encoding="utf-8").splitlines():
        cells = line.split("\t")
        if len(cells) < 4:
            continue
        cells = [re.sub(r"\(\$\\uparrow [\d.]+\$\)", "", c) for c in cells]
        numbers = [float(m) for c in cells for m in re.findall(r"(?<![\w\[/-])(\d*\.\d+)(?![\]\w])", c)]
        if numbers and len(numbers) >= 3:
            printed.extend(numbers)
    ours = paper_results()
    assert len(printed) == len(ours)
    np.testing.assert_array_equal(np.array(printed), ours.value.to_numpy())
