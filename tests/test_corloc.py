"""CorLoc: mask -> box, IoU, the accumulator and the evaluation loop (the ground-truth readers are
tested in test_box_datasets.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.data.boxes import CorLocItem
from paperlib.eval.corloc import CorLoc, best_iou, box_iou, corloc_evaluate
from paperlib.images import write_image
from paperlib.methods.boxes import mask_to_box

# ----------------------------------------------------------------------------- helpers


def _raster(box, shape) -> np.ndarray:
    """The pixels [y0, y1) x [x0, x1) of an integer box: an independent IoU reference."""
    m = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    m[y0:y1, x0:x1] = True
    return m


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- box_iou


def test_box_iou_identical_disjoint_touching():
    a = np.array([10.0, 20.0, 50.0, 60.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, [60.0, 20.0, 90.0, 60.0]) == 0.0  # disjoint
    assert box_iou(a, [50.0, 20.0, 90.0, 60.0]) == 0.0  # shares an edge only: no area
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # empty union


def test_box_iou_matches_pixel_count_and_is_symmetric(rng):
    corners = rng.integers(0, 40, size=(30, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 1], axis=1)  # (30, 4) x0 y0 x1 y1
    boxes = boxes[:, [0, 1, 2, 3]].astype(np.float64)
    iou = box_iou(boxes[:12], boxes[12:])
    assert iou.shape == (12, 18)
    np.testing.assert_allclose(iou, box_iou(boxes[12:], boxes[:12]).T, rtol=0, atol=0)
    for i in range(12):
        for k in range(18):
            a, b = _raster(boxes[i], (41, 41)), _raster(boxes[12 + k], (41, 41))
            ref = (a & b).sum() / (a | b).sum()
            assert iou[i, k] == pytest.approx(ref, abs=1e-12)
    assert np.all((iou >= 0) & (iou <= 1))


def test_box_iou_shapes_and_torch_input():
    a = np.array([0.0, 0.0, 10.0, 10.0])
    many = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert isinstance(box_iou(a, a), float)
    # (5 * 10) / (100 + 100 - 50) = 1/3 for the half-shifted box
    np.testing.assert_allclose(box_iou(a, many), [1.0, 1 / 3, 0.0])
    assert box_iou(many, a).shape == (3,)
    assert box_iou(many, many).shape == (3, 3)
    np.testing.assert_allclose(box_iou(torch.tensor(a), torch.tensor(many)), [1.0, 1 / 3, 0.0])


@pytest.mark.parametrize("bad, match", [
    (np.zeros(3), "xyxy boxes"),
    (np.zeros((2, 5)), "xyxy boxes"),
    (np.array([10.0, 0.0, 5.0, 5.0]), "x1 >= x0"),  # xywh-style or swapped corners
    (np.array([0.0, 0.0, np.nan, 5.0]), "non-finite"),
])
def test_box_iou_rejects_bad_boxes(bad, match):
    with pytest.raises(InputError, match=match):
        box_iou(bad, np.array([0.0, 0.0, 1.0, 1.0]))


# ----------------------------------------------------------------------------- CorLoc


def test_ground_truth_boxes_as_predictions_give_corloc_one(rng):
    acc = CorLoc()
    for _ in range(20):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, size=(k, 2))
        gt = np.concatenate([xy, xy + rng.uniform(1, 100, size=(k, 2))], axis=1)
        assert acc.update(gt[int(rng.integers(k))], gt)
    assert acc.value == 1.0 and acc.n_images == 20 and acc.n_hits == 20


def test_shifted_box_hit_and_miss_around_iou_half():
    gt = np.array([[0.0, 0.0, 100.0, 100.0]])
    # Shift by dx along x: inter = (100 - dx) * 100, union = 2 * 100^2 - inter,
    # IoU = (100 - dx) / (100 + dx); IoU = 0.5 at dx = 100/3.
    # dx = 33: 67 / 133 = 0.50376 (hit); dx = 34: 66 / 134 = 0.49254 (miss).
    inside, outside = np.array([33.0, 0, 133.0, 100.0]), np.array([34.0, 0, 134.0, 100.0])
    assert best_iou(inside, gt) == pytest.approx(67 / 133)
    assert best_iou(outside, gt) == pytest.approx(66 / 134)
    acc = CorLoc()
    assert acc.update(inside, gt) is True
    assert acc.update(outside, gt) is False
    assert acc.value == 0.5
    # Exactly 0.5 is a hit (IoU >= 0.5): (1, 0, 4, 1) vs (0, 0, 3, 1): inter 2, union 4.
    assert CorLoc().update(np.array([1.0, 0.0, 4.0, 1.0]), np.array([[0.0, 0.0, 3.0, 1.0]]))


def test_any_of_many_ground_truth_boxes():
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 90.0, 90.0], [0.0, 60.0, 20.0, 100.0]])
    acc = CorLoc()
    assert acc.update(np.array([52.0, 50.0, 92.0, 90.0]), gt)  # only the second box matches
    assert not acc.update(np.array([20.0, 20.0, 45.0, 45.0]), gt)  # overlaps none enough
    assert not acc.update(None, gt)  # no prediction: a miss
    assert not acc.update(np.array([0.0, 0.0, 10.0, 10.0]), np.zeros((0, 4)))  # no ground truth
    assert acc.n_images == 4 and acc.n_hits == 1 and acc.value == 0.25


def test_corloc_merge_and_empty_value():
    a, b = CorLoc(), CorLoc()
    assert math.isnan(a.value)
    box = np.array([0.0, 0.0, 1.0, 1.0])
    a.update(box, box[None])
    b.update(None, box[None])
    b.update(box, box[None])
    assert a.merge(b) is a and (a.n_images, a.n_hits) == (3, 2)
    assert a.value == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="same iou_threshold"):
        a.merge(CorLoc(iou_threshold=0.7))


def test_corloc_custom_threshold():
    gt = np.array([[0.0, 0.0, 100.0, 100.0]])
    box = np.array([10.0, 0.0, 110.0, 100.0])  # IoU = 90 / 110 = 0.818
    assert CorLoc(iou_threshold=0.8).update(box, gt)
    assert not CorLoc(iou_threshold=0.85).update(box, gt)
    with pytest.raises(InputError, match="iou_threshold"):
        CorLoc(iou_threshold=0.0)


# ----------------------------------------------------------------------------- mask_to_box


def test_mask_to_box_picks_largest_component_scales_and_clips():
    m = np.zeros((6, 8), dtype=bool)
    m[0:2, 0:2] = True  # 4 cells
    m[2, 2] = True  # touches the block above only at a corner: its own 4-component
    m[3:6, 5:8] = True  # 9 cells, the largest; reaches the grid's last row and column
    # patch 16: cols 5..7 -> x 80..128, rows 3..5 -> y 48..96; image 90 x 120 clips both maxima
    box = mask_to_box(m, patch_size=16, image_size=(90, 120))
    np.testing.assert_array_equal(box, [80.0, 48.0, 120.0, 90.0])
    box = mask_to_box(m, patch_size=16, image_size=(200, 200))  # no clipping
    np.testing.assert_array_equal(box, [80.0, 48.0, 128.0, 96.0])
    # separate y / x scales (a mask computed on a resized image)
    box = mask_to_box(m, patch_size=(10.0, 5.0), image_size=(1000, 1000))
    np.testing.assert_array_equal(box, [25.0, 30.0, 40.0, 60.0])


def test_mask_to_box_four_connectivity():
    # a diagonal of 5 cells is 5 components of 1 cell under 4-connectivity: the first one wins
    m = np.eye(5, dtype=bool)
    np.testing.assert_array_equal(mask_to_box(m, patch_size=8, image_size=(40, 40)), [0, 0, 8, 8])


def test_mask_to_box_largest_area_vs_largest_box():
    m = np.zeros((10, 10), dtype=bool)
    m[0, :] = True
    m[:, 0] = True  # an L: 19 cells, box 10 x 10 = 100
    m[3:9, 3:9] = True  # a block: 36 cells, box 6 x 6 = 36
    np.testing.assert_array_equal(mask_to_box(m, patch_size=1, image_size=(10, 10)), [3, 3, 9, 9])
    np.testing.assert_array_equal(mask_to_box(m, patch_size=1, image_size=(10, 10), select="largest_box"),
                                  [0, 0, 10, 10])


def test_mask_to_box_matches_skimage_regionprops(rng):
    from skimage.measure import label, regionprops

    for _ in range(25):
        m = rng.uniform(size=(12, 15)) > 0.6
        regions = regionprops(label(m, connectivity=1))
        big = max(regions, key=lambda r: (r.area, -r.label))  # ties: the first label (row-major)
        r0, c0, r1, c1 = big.bbox  # exclusive maxima
        box = mask_to_box(m, patch_size=8, image_size=(96, 120))
        np.testing.assert_array_equal(box, [c0 * 8, r0 * 8, c1 * 8, r1 * 8])


def test_mask_to_box_float_threshold_torch_and_empty():
    m = np.zeros((4, 4), dtype=np.float32)
    m[1:3, 1:3] = 0.9
    m[0, 3] = 0.5  # not > 0.5: background
    assert mask_to_box(m, patch_size=8, image_size=(32, 32)).tolist() == [8, 8, 24, 24]
    assert mask_to_box(torch.from_numpy(m), patch_size=8, image_size=(32, 32)).tolist() == [8, 8, 24, 24]
    assert mask_to_box(m, patch_size=8, image_size=(32, 32), threshold=0.95) is None
    empty = mask_to_box(np.zeros((4, 4), dtype=bool), patch_size=8, image_size=(32, 32))
    assert empty is None
    acc = CorLoc()
    assert not acc.update(empty, np.array([[0.0, 0.0, 32.0, 32.0]]))  # no box: a miss
    assert acc.value == 0.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask_patch=np.zeros(4), patch_size=8, image_size=(8, 8)), "2-D"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=0, image_size=(8, 8)), "patch_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=(8, 8, 8), image_size=(8, 8)), "patch_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=8, image_size=(8,)), "image_size"),
    (dict(mask_patch=np.zeros((2, 2)), patch_size=8, image_size=(8, 8), select="biggest"), "select"),
])
def test_mask_to_box_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        mask_to_box(**kwargs)


# ----------------------------------------------------------------------------- evaluation


def _fake_items(root: Path) -> tuple[list[CorLocItem], dict[str, np.ndarray]]:
    """Three 30x40 images with 0-based xyxy boxes, as a plain list of items."""
    boxes = {"synth_00000": [(4, 4, 20, 30)], "synth_00001": [(0, 0, 40, 10), (19, 14, 40, 30)],
             "synth_00002": [(9, 1, 25, 12)]}
    items = []
    for i, (stem, bxs) in enumerate(boxes.items()):
        write_image(root / f"{stem}.jpg", _image(30, 40, i))
        items.append(CorLocItem(stem, root / f"{stem}.jpg", np.array(bxs, dtype=np.float64)))
    return items, {it.image_id: it.boxes for it in items}


def test_evaluate_misses_limit_and_bad_predictions(tmp_path):
    ds, expected = _fake_items(tmp_path)
    # None for the first image, a far box for the second, the gt for the third: 1/3
    answers = {"synth_00000": None, "synth_00001": np.array([0.0, 25.0, 5.0, 30.0]),
               "synth_00002": torch.tensor(expected["synth_00002"][0])}
    result = corloc_evaluate(ds, lambda im, i: answers[i], progress=False)
    assert result.corloc == pytest.approx(1 / 3) and [r.hit for r in result.rows] == [False, False, True]
    assert result.rows[0].pred_box is None and result.rows[0].best_iou == 0.0
    limited = corloc_evaluate(ds, lambda im, i: answers[i], progress=False, limit=2)
    assert limited.n_images == 2 and limited.corloc == 0.0
    with pytest.raises(InputError, match="predict_box_fn returned .* synth_00000"):
        corloc_evaluate(ds, lambda im, i: (1, 2, 3), progress=False)
    with pytest.raises(InputError, match="x1 >= x0"):
        corloc_evaluate(ds, lambda im, i: (10, 0, 5, 5), progress=False)
    with pytest.raises(InputError, match="limit"):
        corloc_evaluate(ds, lambda im, i: None, progress=False, limit=0)
    # Batched: chunks of 2 over 3 images, same rows as one at a time.
    chunks = []

    def batch_fn(images, ids):
        chunks.append(list(ids))
        return [answers[i] for i in ids]

    batched = corloc_evaluate(ds, None, progress=False, batch_size=2, predict_batch_fn=batch_fn)
    assert chunks == [["synth_00000", "synth_00001"], ["synth_00002"]]
    assert [r.hit for r in batched.rows] == [r.hit for r in result.rows]
    with pytest.raises(InputError, match="returned 1 boxes for 2 images"):
        corloc_evaluate(ds, None, progress=False, batch_size=2, predict_batch_fn=lambda im, ids: [None])


def test_evaluate_accepts_any_sequence_of_items(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, _image(16, 16, 0))
    items = [CorLocItem("a", path, np.array([[0.0, 0.0, 16.0, 16.0]]))]
    full = mask_to_box(np.ones((2, 2), bool), patch_size=8, image_size=(16, 16))
    assert corloc_evaluate(items, lambda im, i: full, progress=False).corloc == 1.0
