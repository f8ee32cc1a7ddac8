"""Tests of paperlib.eval.metrics: hand-computed cases, a naive loop reference, pysodmetrics, properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from paperlib.checks import InputError
from paperlib.eval.metrics import (
    BETA2_SQUARED,
    ImageScores,
    SaliencyMetrics,
    SaliencyScores,
    _threshold_levels,
)
from paperlib.images import read_mask

py_sod_metrics = pytest.importorskip("py_sod_metrics")


# ---------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------

def naive_scores(pred: np.ndarray, fg: np.ndarray, beta2: float = 0.3) -> dict:
    """The protocol written as plainly as possible: one Python loop step per threshold."""
    thresholds = (np.arange(255) / 255).astype(pred.dtype)
    n_fg = int(fg.sum())
    precision, recall, fbeta = [], [], []
    for t in thresholds:
        predicted = pred > t
        tp = int((predicted & fg).sum())
        p = tp / predicted.sum() if predicted.sum() > 0 else 1.0
        r = tp / n_fg if n_fg > 0 else 1.0
        precision.append(p)
        recall.append(r)
        fbeta.append((1 + beta2) * p * r / (beta2 * p + r) if beta2 * p + r > 0 else 0.0)
    binary = pred > 0.5
    inter, union = (binary & fg).sum(), (binary | fg).sum()
    return {"acc": float((binary == fg).mean()), "iou": inter / union if union else 1.0,
            "mae": float(np.abs(pred.astype(np.float64) - fg).mean()),
            "precision": np.array(precision), "recall": np.array(recall), "fbeta": np.array(fbeta)}


def pysod_evaluate(preds: list[np.ndarray], fgs: list[np.ndarray], beta2: float = 0.3) -> dict:
    """pysodmetrics 1.6.2 on the same images, with its curves put in our threshold order.

    Apples-to-apples mapping. With ``normalize=False`` pysodmetrics takes float predictions in
    [0, 1] and bool ground truth; its dynamic curves binarise ``uint8(pred * 255) >= v`` for
    v = 255, 254, ..., 0 (curve index i = 255 - v). We feed predictions that are exact multiples
    m/255 (float64), for which ``uint8(pred * 255) == m`` (asserted below), and ours tests
    ``m/255 > k/255``, i.e. m >= k + 1. So our threshold k is its v = k + 1, index 254 - k:
    ``ours = theirs[254::-1]``; its v = 0 (everything foreground) has no counterpart here.
    Its precision is 0 where nothing is predicted (ours: 1), hence the returned
    ``n_nothing_predicted`` per threshold. Its binary scores use ``pred > 0.5`` as ours.
    """
    from py_sod_metrics import (
        MAE,
        FmeasureHandler,
        FmeasureV2,
        IOUHandler,
        OverallAccuracyHandler,
        PrecisionHandler,
        RecallHandler,
    )

    fm = FmeasureV2(metric_handlers={
        "fm": FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=beta2),
        "pre": PrecisionHandler(with_dynamic=True, with_adaptive=False),
        "rec": RecallHandler(with_dynamic=True, with_adaptive=False),
        "iou": IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
        "acc": OverallAccuracyHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
    })
    mae = MAE()
    n_nothing = np.zeros(255)
    for pred, fg in zip(preds, fgs):
        m = np.rint(pred * 255)
        assert np.array_equal((pred * 255).astype(np.uint8), m)  # the mapping's premise
        fm.step(pred, fg, normalize=False)
        mae.step(pred, fg, normalize=False)
        n_nothing += m.max() <= np.arange(255)  # nothing is above t_k when max(m) <= k
    res = fm.get_results()
    per_image_f = np.array(fm._metric_handlers["fm"].dynamic_results)[:, 254::-1]  # (n, 255)
    return {"fbeta": res["fm"]["dynamic"][254::-1], "precision": res["pre"]["dynamic"][254::-1],
            "recall": res["rec"]["dynamic"][254::-1], "iou": float(res["iou"]["binary"]),
            "acc": float(res["acc"]["binary"]), "mae": float(mae.get_results()["mae"]),
            "fmax_per_image": float(per_image_f.max(axis=1).mean()),
            "n_nothing_predicted": n_nothing}


def random_pair(rng, shape, *, quantised: bool, dtype=np.float64):
    """A prediction correlated with a random blob ground truth (never an empty GT)."""
    H, W = shape
    yy, xx = np.mgrid[:H, :W]
    cy, cx, r = rng.uniform(0.2, 0.8) * H, rng.uniform(0.2, 0.8) * W, rng.uniform(0.1, 0.4) * min(H, W)
    fg = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    fg[int(cy), int(cx)] = True
    pred = np.clip(0.6 * fg + rng.normal(0.2, 0.25, size=shape), 0, 1)
    if quantised:
        pred = np.rint(pred * 255) / 255
    return pred.astype(dtype), fg


def check_against_pysod(preds, fgs, gts_for_us, beta2):
    ours = SaliencyMetrics(beta2=beta2)
    for p, g in zip(preds, gts_for_us):
        ours.update(p, g)
    s = ours.compute()
    ref = pysod_evaluate(preds, fgs, beta2)
    n = len(preds)
    np.testing.assert_allclose(s.fbeta_curve, ref["fbeta"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(s.recall_curve, ref["recall"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(s.precision_curve, ref["precision"] + ref["n_nothing_predicted"] / n,
                               atol=1e-6, rtol=0)
    assert s.max_fbeta == pytest.approx(ref["fbeta"].max(), abs=1e-6)
    assert s.fmax_per_image == pytest.approx(ref["fmax_per_image"], abs=1e-6)
    assert s.mae == pytest.approx(ref["mae"], abs=1e-6)
    assert s.iou == pytest.approx(ref["iou"], abs=1e-6)
    assert s.acc == pytest.approx(ref["acc"], abs=1e-6)
    return s


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hand_computed_2x2(dtype):
    pred = np.array([[0.9, 0.2], [0.6, 0.4]], dtype=dtype)
    gt = np.array([[True, False], [False, True]])
    m = SaliencyMetrics()
    img = m.update(pred, gt)
    # At 0.5: predicted {0.9, 0.6}, GT {0.9, 0.4}: TP 1, FP 1, FN 1, TN 1.
    assert img.acc == pytest.approx(0.5)
    assert img.iou == pytest.approx(1 / 3)
    assert img.mae == pytest.approx((0.1 + 0.2 + 0.6 + 0.6) / 4)
    assert img.fg_ratio == 0.5
    # pred > k/255: 0.2 for k <= 50 (51/255 == 0.2 exactly), 0.4 for k <= 101, 0.6 for
    # k <= 152, 0.9 for k <= 229 (229.5 = 0.9 * 255). Per region: (TP, FP) -> (P, R) -> F.
    f = lambda p, r: 1.3 * p * r / (0.3 * p + r)
    expected = np.concatenate([
        np.full(51, f(2 / 4, 1.0)),  # k 0..50: all four predicted        -> 0.5652
        np.full(51, f(2 / 3, 1.0)),  # k 51..101: 0.9, 0.6, 0.4            -> 0.7222
        np.full(51, f(1 / 2, 1 / 2)),  # k 102..152: 0.9, 0.6              -> 0.5
        np.full(77, f(1.0, 1 / 2)),  # k 153..229: 0.9 only                -> 0.8125
        np.zeros(25),  # k 230..254: nothing predicted, P = 1, R = 0 -> F = 0
    ])
    s = m.compute()
    np.testing.assert_allclose(s.fbeta_curve, expected, rtol=1e-12)
    assert s.max_fbeta == pytest.approx(0.8125)
    assert s.best_threshold == 153 / 255
    assert img.fbeta_max == pytest.approx(0.8125)
    assert s.precision_curve[0] == 0.5 and s.precision_curve[-1] == 1.0
    assert s.recall_curve[0] == 1.0 and s.recall_curve[-1] == 0.0


@pytest.mark.parametrize("pred_value, gt_value, acc, iou, fmax, mae", [
    (0.0, 1, 0.5, 0.0, 0.0, 0.5),  # empty prediction: P = 1, R = 0 everywhere
    (1.0, 1, 0.5, 0.5, 1.3 * 0.5 / (0.3 * 0.5 + 1), 0.5),  # full prediction: P = 0.5, R = 1
    (0.0, 0, 1.0, 1.0, 1.0, 0.0),  # both empty: P = 1, R = 1 (empty GT), IoU = 1 by convention
    (1.0, 0, 0.0, 0.0, 0.0, 1.0),  # empty GT, full prediction: P = 0, R = 1 -> F = 0
])
def test_empty_and_full(pred_value, gt_value, acc, iou, fmax, mae):
    # A 4x4 image whose GT is the left half (gt_value=1) or empty (gt_value=0).
    gt = np.zeros((4, 4), bool)
    gt[:, :2] = bool(gt_value)
    pred = np.full((4, 4), pred_value)
    m = SaliencyMetrics()
    img = m.update(pred, gt)
    s = m.compute()
    assert (img.acc, img.iou, img.mae) == pytest.approx((acc, iou, mae))
    assert s.max_fbeta == pytest.approx(fmax)
    assert np.ptp(s.fbeta_curve) == 0  # a constant map gives a flat curve
    assert s.best_threshold == 0.0  # ties go to the first threshold
    assert naive_scores(pred, gt)["fbeta"].max() == pytest.approx(fmax)


def test_binary_threshold_is_strict_and_best_threshold_can_be_last():
    # 0.5 itself is background; 254/255 is above t_k only for k <= 253.
    gt = np.array([[True, False, False]])
    pred = np.array([[1.0, 0.5, 254 / 255]])
    m = SaliencyMetrics()
    img = m.update(pred, gt)
    assert img.iou == 0.5 and img.acc == pytest.approx(2 / 3)
    s = m.compute()
    assert s.max_fbeta == 1.0 and s.best_threshold == 254 / 255
    assert s.fbeta_curve[253] == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1))  # P = 1/2, R = 1


def test_size_bins_hand_computed():
    # 20 pixels: fg ratios 0, 0.05 (edge of bin 1), 0.15 (edge of bin 3), 0.95, 1.0 (last bin).
    m = SaliencyMetrics(n_size_bins=20)
    for n_fg, expected_bin in [(0, 0), (1, 1), (3, 3), (19, 19), (20, 19), (2, 2)]:
        gt = np.zeros((4, 5), bool)
        gt.flat[:n_fg] = True
        before = m._bin_counts.copy()
        m.update(gt.astype(np.float64), gt)
        assert np.flatnonzero(m._bin_counts - before).tolist() == [expected_bin]
    by_size = m.compute().iou_by_size
    assert by_size.counts.sum() == 6
    np.testing.assert_array_equal(by_size.edges, np.arange(21) / 20)
    assert np.isnan(by_size.mean_iou[5])  # no image there
    assert by_size.mean_iou[1] == 1.0  # a perfect prediction


# ---------------------------------------------------------------------------------------------
# Exactness of the vectorised threshold counting
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_levels_exact(rng, dtype):
    t = (np.arange(255) / 255).astype(dtype)
    values = np.concatenate([t, np.nextafter(t, dtype(2)), np.nextafter(t, dtype(-1)),
                             np.arange(256, dtype=dtype) / dtype(255), [dtype(0), dtype(1)],
                             rng.random(200_000).astype(dtype)])
    values = values[(values >= 0) & (values <= 1)].astype(dtype)
    # The premise of the fast path: ceil(255 * t_L), rounded in dtype, never exceeds L.
    assert (np.ceil(t * dtype(255)) <= np.arange(255)).all()
    level = _threshold_levels(values[None, :])
    # Reference 1: a sorted search over the same thresholds.
    np.testing.assert_array_equal(level, np.searchsorted(t, values, side="left"))
    # Reference 2: the definition, count of k with pred > t_k, on the edge values.
    edge = values[:1000]
    np.testing.assert_array_equal(level[:1000], (edge[:, None] > t[None, :]).sum(1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_naive_reference(rng, dtype):
    m = SaliencyMetrics()
    refs = []
    for i, shape in enumerate([(17, 23), (30, 20), (8, 8), (25, 31), (12, 40)]):
        pred, fg = random_pair(rng, shape, quantised=False, dtype=dtype)
        if i == 2:
            fg[:] = False  # an empty ground truth, whose recall is 1 by convention
        if i == 3:
            pred[:3] = (np.arange(255) / 255).astype(dtype)[:pred.shape[1]]  # exact threshold values
        img = m.update(pred, fg)
        ref = naive_scores(pred, fg)
        assert (img.acc, img.iou, img.mae) == pytest.approx((ref["acc"], ref["iou"], ref["mae"]),
                                                            abs=1e-12)
        assert img.fbeta_max == pytest.approx(ref["fbeta"].max(), abs=1e-12)
        refs.append(ref)
    s = m.compute()
    for key, curve in [("precision", s.precision_curve), ("recall", s.recall_curve),
                       ("fbeta", s.fbeta_curve)]:
        np.testing.assert_allclose(curve, np.mean([r[key] for r in refs], axis=0), atol=1e-12)
    assert s.max_fbeta == pytest.approx(np.mean([r["fbeta"] for r in refs], axis=0).max())
    assert s.fmax_per_image == pytest.approx(np.mean([r["fbeta"].max() for r in refs]))


# ---------------------------------------------------------------------------------------------
# pysodmetrics
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("beta2", [0.3, BETA2_SQUARED])
def test_matches_pysodmetrics_random(rng, beta2):
    pairs = [random_pair(rng, (int(rng.integers(20, 60)), int(rng.integers(20, 60))), quantised=True)
             for _ in range(12)]
    pairs.append((np.zeros((10, 10)), np.eye(10, dtype=bool)))  # nothing predicted at all
    pairs.append((np.ones((10, 10)), np.eye(10, dtype=bool)))  # everything predicted
    preds, fgs = map(list, zip(*pairs))
    check_against_pysod(preds, fgs, fgs, beta2)


def test_beta2_variant_changes_the_score(rng):
    pairs = [random_pair(rng, (30, 30), quantised=True) for _ in range(5)]
    scores = {}
    for beta2 in (0.3, BETA2_SQUARED):
        m = SaliencyMetrics(beta2=beta2)
        for p, g in pairs:
            m.update(p, g)
        scores[beta2] = m.compute()
    assert BETA2_SQUARED == pytest.approx(0.09)
    assert scores[0.3].max_fbeta != pytest.approx(scores[BETA2_SQUARED].max_fbeta, abs=1e-4)
    np.testing.assert_array_equal(scores[0.3].precision_curve, scores[BETA2_SQUARED].precision_curve)


@pytest.mark.realdata
def test_matches_pysodmetrics_real_masks(real_data_root):
    paths = sorted((real_data_root / "DUTS-TE" / "DUTS-TE-Mask").glob("*.png"))[:20]
    assert len(paths) == 20
    preds, fgs, gts = [], [], []
    for i, path in enumerate(paths):
        gt = read_mask(path)  # float32 in [0, 1], anti-aliased edges
        shifted = np.roll(gt.astype(np.float64), shift=(3 * (i % 5) - 6, 2 * (i % 7) - 6), axis=(0, 1))
        blurred = ndimage.gaussian_filter(shifted, sigma=1 + i % 4)
        preds.append(np.rint(np.clip(blurred, 0, 1) * 255) / 255)  # exact multiples of 1/255
        fgs.append(gt > 0.5)
        gts.append(gt)  # we binarise the raw float mask ourselves
    s = check_against_pysod(preds, fgs, gts, 0.3)
    assert 0.3 < s.iou < 1 and 0.3 < s.max_fbeta < 1
    assert s.iou_by_size.counts.sum() == 20


# ---------------------------------------------------------------------------------------------
# Properties and the streaming API
# ---------------------------------------------------------------------------------------------

def test_metrics_lie_in_unit_interval(rng):
    m = SaliencyMetrics()
    for _ in range(20):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        pred = rng.random(shape) ** rng.uniform(0.2, 5)
        gt = rng.random(shape) < rng.uniform(0, 1)
        img = m.update(pred, gt)
        assert all(0 <= v <= 1 for v in img)
    s = m.compute()
    for v in (s.acc, s.iou, s.max_fbeta, s.mae, s.fmax_per_image, s.best_threshold):
        assert 0 <= v <= 1
    for curve in (s.precision_curve, s.recall_curve, s.fbeta_curve):
        assert curve.shape == (255,) and (curve >= 0).all() and (curve <= 1).all()
    assert s.max_fbeta <= s.fmax_per_image + 1e-12  # max of a mean <= mean of maxima
    assert np.all(np.diff(s.recall_curve) <= 1e-12)  # recall never grows with the threshold


def test_iou_equals_direct_numpy(rng):
    m = SaliencyMetrics()
    ious = []
    for _ in range(10):
        pred, fg = random_pair(rng, (40, 50), quantised=False)
        img = m.update(pred, fg)
        binary = pred > 0.5
        direct = np.logical_and(binary, fg).sum() / np.logical_or(binary, fg).sum()
        assert img.iou == pytest.approx(direct, abs=1e-15)
        ious.append(direct)
    assert m.compute().iou == pytest.approx(np.mean(ious), abs=1e-15)


def test_merge_equals_sequential(rng):
    pairs = [random_pair(rng, (30, 40), quantised=False) for _ in range(9)]
    sequential, a, b = SaliencyMetrics(), SaliencyMetrics(), SaliencyMetrics()
    for i, (p, g) in enumerate(pairs):
        sequential.update(p, g)
        (a if i < 4 else b).update(p, g)
    merged = a.merge(b).compute()
    s = sequential.compute()
    assert merged.n_images == s.n_images == 9
    for name in ("acc", "iou", "max_fbeta", "best_threshold", "mae", "fmax_per_image"):
        assert getattr(merged, name) == pytest.approx(getattr(s, name), abs=1e-12)
    for name in ("precision_curve", "recall_curve", "fbeta_curve"):
        np.testing.assert_allclose(getattr(merged, name), getattr(s, name), atol=1e-12)
    np.testing.assert_array_equal(merged.iou_by_size.counts, s.iou_by_size.counts)
    np.testing.assert_allclose(merged.iou_by_size.mean_iou, s.iou_by_size.mean_iou, atol=1e-12)


def test_size_bins_match_per_image_scores(rng):
    m = SaliencyMetrics(n_size_bins=5)
    rows = []
    for _ in range(30):
        gt = rng.random((10, 10)) < rng.uniform(0, 1)
        rows.append(m.update(np.clip(gt + rng.normal(0, 0.4, gt.shape), 0, 1), gt))
    by_size = m.compute().iou_by_size
    assert by_size.counts.sum() == m.n_images == 30
    ratios = np.array([r.fg_ratio for r in rows])
    bins = np.minimum((ratios * 100).round().astype(int) * 5 // 100, 4)  # 100 pixels per image
    for b in range(5):
        ious = [r.iou for r, rb in zip(rows, bins) if rb == b]
        assert by_size.counts[b] == len(ious)
        if ious:
            assert by_size.mean_iou[b] == pytest.approx(np.mean(ious))
        else:
            assert np.isnan(by_size.mean_iou[b])


def test_ground_truth_encodings_agree(rng):
    gt_float = rng.random((20, 30)).astype(np.float32)  # anti-aliased-like values
    pred = rng.random((20, 30))
    fg = gt_float > 0.5
    gt_uint8 = np.where(fg, 200, 30).astype(np.uint8)
    reference = SaliencyMetrics().update(pred, fg)
    for gt in (gt_float, gt_uint8, torch.from_numpy(gt_float), torch.from_numpy(fg),
               torch.from_numpy(gt_uint8)):
        assert SaliencyMetrics().update(pred, gt) == reference
    assert SaliencyMetrics().update(torch.from_numpy(pred).float(), fg) == pytest.approx(reference)
    half = torch.rand(20, 30, dtype=torch.bfloat16)  # half precision is widened to float32
    assert SaliencyMetrics().update(half, fg) == SaliencyMetrics().update(half.float().numpy(), fg)
    assert SaliencyMetrics().update(fg, fg) == SaliencyMetrics().update(fg.astype(np.float32), fg)
    # uint8 binarises at 128 = 0.502 of [0, 1]; 127 = 0.498 is background.
    edge = SaliencyMetrics().update(np.ones((1, 2)), np.array([[128, 127]], np.uint8))
    assert edge.fg_ratio == 0.5


def test_update_batch_equals_update(rng):
    preds = torch.rand(3, 1, 16, 12, dtype=torch.float64)
    gts = torch.rand(3, 1, 16, 12) > 0.5
    batched, single = SaliencyMetrics(), SaliencyMetrics()
    rows = batched.update_batch(preds, gts)
    assert rows == [single.update(preds[i, 0], gts[i, 0]) for i in range(3)]
    assert all(isinstance(r, ImageScores) for r in rows)
    listed = SaliencyMetrics()
    listed.update_batch([p[0].numpy() for p in preds], [g[0].numpy() for g in gts])
    assert listed.compute().max_fbeta == batched.compute().max_fbeta


def test_as_dict_is_json(rng):
    m = SaliencyMetrics()
    pred, fg = random_pair(rng, (20, 20), quantised=False)
    m.update(pred, fg)
    s = m.compute()
    assert isinstance(s, SaliencyScores)
    d = json.loads(json.dumps(s.as_dict(), allow_nan=False))
    assert {"acc", "iou", "max_fbeta", "mae", "n_images", "best_threshold", "fmax_per_image",
            "beta2", "curves", "iou_by_size"} <= d.keys()
    assert d["n_images"] == 1 and d["max_fbeta"] == s.max_fbeta
    assert len(d["curves"]["fbeta"]) == 255 and d["iou_by_size"]["mean_iou"].count(None) == 19


@pytest.mark.parametrize("pred, gt, match", [
    (np.zeros((4, 5)), np.zeros((5, 4)), r"pred \(4, 5\) and gt \(5, 4\)"),
    (np.full((2, 2), 1.5), np.zeros((2, 2)), r"pred must lie in \[0, 1\]"),
    (np.array([[0.1, np.nan]]), np.zeros((1, 2)), "pred contains NaN"),
    (np.zeros((1, 2)), np.array([[0.1, np.nan]]), "gt contains NaN"),
    (np.zeros((1, 2)), np.array([[-0.1, 0.0]]), r"gt must lie in \[0, 1\]"),
    (np.zeros((2, 2), np.int16), np.zeros((2, 2)), "or 8-bit levels, got dtype int16"),
    (np.zeros((2, 2)), np.zeros((2, 2), np.int64), "gt dtype int64 is ambiguous"),
    (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), r"2-D \(H, W\)"),
    (np.zeros((0, 3)), np.zeros((0, 3)), "non-empty"),
    ([[0.5]], np.zeros((1, 1)), "pred must be a numpy array or a torch.Tensor, got list"),
])
def test_input_errors(pred, gt, match):
    with pytest.raises(InputError, match=match):
        SaliencyMetrics().update(pred, gt)


def test_api_errors():
    with pytest.raises(InputError, match="call update"):
        SaliencyMetrics().compute()
    with pytest.raises(InputError, match="beta2 must be > 0"):
        SaliencyMetrics(beta2=0)
    with pytest.raises(InputError, match="n_size_bins"):
        SaliencyMetrics(n_size_bins=0)
    with pytest.raises(InputError, match="cannot merge"):
        SaliencyMetrics().merge(SaliencyMetrics(beta2=BETA2_SQUARED))
    with pytest.raises(InputError, match="got 2 and 1"):
        SaliencyMetrics().update_batch(np.zeros((2, 3, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(InputError, match=r"\(B, H, W\) or \(B, 1, H, W\)"):
        SaliencyMetrics().update_batch(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(TypeError):
        SaliencyMetrics(0.3)  # hyper-parameters are keyword-only


def test_eight_bit_levels_score_as_their_float_values(rng):
    """uint8 m is read as m / 255: every score equals the float path's on the same maps, from
    one histogram (the path eval-masks takes on 8-bit PNGs)."""
    for trial in range(6):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        m = rng.integers(0, 256, shape).astype(np.uint8)
        if trial == 0:
            m[:] = 128                                    # exactly on the 0.5 boundary: 128/255 > 0.5
        gt = rng.random(shape) > (0.5 if trial < 5 else 1.1)       # the last: empty ground truth
        eight, floating = SaliencyMetrics(), SaliencyMetrics()
        a = eight.update(m, gt)
        b = floating.update(m.astype(np.float32) / 255, gt)
        for key in ("acc", "iou", "fbeta_max", "fg_ratio"):
            assert getattr(a, key) == getattr(b, key), key
        assert a.mae == pytest.approx(b.mae, abs=1e-7)
        x, y = eight.compute(), floating.compute()
        np.testing.assert_array_equal(x.fbeta_curve, y.fbeta_curve)
        np.testing.assert_array_equal(x.precision_curve, y.precision_curve)


def test_a_uint8_map_of_zeros_and_ones_is_refused_not_scored_as_empty():
    """0/1 stored as uint8 would be levels 0 and 1/255: a near-empty prediction (a reviewer's case)."""
    gt = np.zeros((4, 4), bool)
    gt[1:3, 1:3] = True
    with pytest.raises(InputError, match="only 0 and 1"):
        SaliencyMetrics().update(gt.astype(np.uint8), gt)
    assert SaliencyMetrics().update(gt.astype(np.uint8) * 255, gt).iou == 1.0
