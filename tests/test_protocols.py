"""Tests of paperlib.eval.protocols: each convention and named protocol against an independent reference.

References: pysodmetrics 1.6.2 (its Fmeasure with defaults, its 256-threshold curve, its
prepare_data, FmeasureV2's binary IoU and accuracy), plain per-threshold loops written from each
codebase's documented facts (TokenCut, SelfMask, FOUND, the released code), OpenCV's PNG round
trip, and :func:`paperlib.methods.sempart.center_crop_view` / ``SaliencyMetrics`` for the parts
paperlib already tests.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from figure_checks import stray_outputs
from notebook_runs import run
from sempart_heads import contract_dict, method_for, photo, random_head, write

from paperlib.checks import InputError
from paperlib.data.saliency import Sample, open_dataset
from paperlib.eval import protocols as protocols_module
from paperlib.eval.datasets import evaluate_dataset
from paperlib.eval.metrics import SaliencyMetrics
from paperlib.eval.protocols import (
    CONVENTIONS,
    DEFAULT,
    GT_RULES,
    NAMED_PROTOCOLS,
    ProtocolScorer,
    ScoringProtocol,
    batch_order_spread,
    center_frame,
    plot_protocol_deltas,
    prepare_pair,
    protocol_table,
    protocols_for,
    score_protocols,
    spread_summary,
)
from paperlib.images import read_mask_levels, write_mask_png
from paperlib.methods.centre import CentrePrior
from paperlib.methods.sempart import PROTOCOLS, SempartMethod, center_crop_view

py_sod_metrics = pytest.importorskip("py_sod_metrics")

# Levels that separate every ground-truth rule: 0 | 1 | 127 | 128 | 129 | 254 | 255.
EDGE_LEVELS = np.array([0, 1, 127, 128, 129, 254, 255])


# ---------------------------------------------------------------------------------------------
# Data and independent references
# ---------------------------------------------------------------------------------------------

def random_case(rng, shape):
    """(pred float64 in [0, 1], gt uint8 levels): a disc with grey edges at every rule's boundary."""
    H, W = shape
    yy, xx = np.mgrid[:H, :W]
    cy, cx, r = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W, rng.uniform(0.15, 0.35) * min(H, W)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) - r
    gt = np.where(d < -1, 255, 0).astype(np.uint8)
    ring = np.abs(d) <= 1.5
    gt[ring] = rng.choice(EDGE_LEVELS, size=int(ring.sum()))
    gt[int(cy), int(cx)] = 255
    pred = np.clip(0.55 * (gt / 255) + rng.normal(0.2, 0.2, size=shape), 0, 1)
    return pred, gt


def cases(rng, n=6, quantised=False):
    out = [random_case(rng, (int(rng.integers(20, 40)), int(rng.integers(20, 40)))) for _ in range(n)]
    if quantised:
        out = [(np.rint(p * 255) / 255, g) for p, g in out]
    return out


def scored(protocol, pairs):
    scorer = ProtocolScorer(protocol)
    for pred, gt in pairs:
        scorer.update(pred, gt / 255.0)
    return scorer.compute()


def naive(pairs, *, fg_rule, thresholds=None, above=np.greater, beta2=0.3, empty_precision=1.0,
          per_image=False, eps=0.0, fg_binary_rule=None):
    """Acc, IoU, max F written out per threshold and per image (a codebase's facts, not our code).

    fg_rule(levels) -> bool is F's ground truth, fg_binary_rule Acc / IoU's (default: the same);
    eps: SelfMask / FOUND's 1e-7 in precision, recall and F's denominators.
    """
    fg_binary_rule = fg_binary_rule or fg_rule
    thresholds = np.arange(255) / 255 if thresholds is None else thresholds    # paperlib's t_k
    curves, accs, ious = [], [], []
    for pred, gt in pairs:
        fg, fgb = fg_rule(gt), fg_binary_rule(gt)
        f = []
        for t in thresholds:
            p_bin = above(pred, t)
            tp = float((p_bin & fg).sum())
            n_pred, n_fg = float(p_bin.sum()), float(fg.sum())
            if eps:
                P, R = tp / (n_pred + eps), tp / (n_fg + eps)
                f.append((1 + beta2) * P * R / (beta2 * P + R + eps))
            else:
                P = tp / n_pred if n_pred else empty_precision
                R = tp / n_fg if n_fg else 1.0
                f.append((1 + beta2) * P * R / (beta2 * P + R) if beta2 * P + R > 0 else 0.0)
        curves.append(f)
        binary = pred > 0.5
        accs.append(float((binary == fgb).mean()))
        ious.append(float((binary & fgb).sum() / (binary | fgb).sum()))
    curves = np.array(curves)
    fmax = curves.max(axis=1).mean() if per_image else curves.mean(axis=0).max()
    return {"acc": np.mean(accs), "iou": np.mean(ious), "max_fbeta": fmax}


def assert_scores(got, ref, atol=1e-12):
    for key in ("acc", "iou", "max_fbeta"):
        assert getattr(got, key) == pytest.approx(ref[key], abs=atol), key


def pysod_defaults(pairs_u8):
    """pysodmetrics with its defaults on 8-bit (pred, gt): maxF of Fmeasure's mean curve (as its
    examples/metric_recorder.py reads it), and FmeasureV2's binary (pred > 0.5) IoU and accuracy."""
    from py_sod_metrics import FmeasureV2, IOUHandler, OverallAccuracyHandler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = py_sod_metrics.Fmeasure()
    binary = FmeasureV2(metric_handlers={
        "iou": IOUHandler(with_dynamic=False, with_adaptive=False, with_binary=True),
        "acc": OverallAccuracyHandler(with_dynamic=False, with_adaptive=False, with_binary=True)})
    for pred, gt in pairs_u8:
        fm.step(pred, gt)
        binary.step(pred, gt)
    res = binary.get_results()
    return {"max_fbeta": float(fm.get_results()["fm"]["curve"].max()), "iou": float(res["iou"]["binary"]),
            "acc": float(res["acc"]["binary"])}


# ---------------------------------------------------------------------------------------------
# The default and each convention
# ---------------------------------------------------------------------------------------------

def test_the_default_protocol_is_saliency_metrics(rng):
    pairs = cases(rng)
    ref = SaliencyMetrics()
    for pred, gt in pairs:
        ref.update(pred, gt / 255.0)
    s = ref.compute()
    got = scored(DEFAULT, pairs)
    assert (got.acc, got.iou, got.max_fbeta, got.n_images) == (s.acc, s.iou, s.max_fbeta, len(pairs))
    assert CONVENTIONS["default"].protocol == DEFAULT == ScoringProtocol()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gt_rules_are_the_8bit_level_comparisons(dtype):
    levels = np.arange(256)
    gt = (levels / 255).astype(dtype)[None]
    expected = {"gt0": levels > 0, "ge128": levels >= 128, "gt128": levels > 128, "eq255": levels == 255}
    assert set(GT_RULES) == set(expected)
    for rule, fg in expected.items():
        pair = prepare_pair(np.zeros_like(gt), gt, replace(DEFAULT, gt_rule=rule))
        assert np.array_equal(pair.fg[0], fg), rule
    # 'ge128' is paperlib's `gt > 0.5` on [0, 1], and pysodmetrics' `gt > 128` its 'gt128'
    assert np.array_equal(prepare_pair(gt, gt, DEFAULT).fg, gt > 0.5)
    _, pysod_gt = py_sod_metrics.utils.prepare_data(levels.astype(np.uint8)[None], levels.astype(np.uint8)[None])
    assert np.array_equal(prepare_pair(gt, gt, replace(DEFAULT, gt_rule="gt128")).fg, pysod_gt)


@pytest.mark.parametrize("rule", ["gt0", "gt128", "eq255"])
def test_gt_rule_conventions_against_loops(rng, rule):
    pairs = cases(rng)
    fg_rule = {"gt0": lambda g: g > 0, "gt128": lambda g: g > 128, "eq255": lambda g: g == 255}[rule]
    assert_scores(scored(CONVENTIONS[f"gt_{rule}"].protocol, pairs), naive(pairs, fg_rule=fg_rule))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_256_thresholds_are_pysodmetrics_curve(rng, dtype):
    """pysodmetrics' Fmeasure (normalize=False: float pred, bool GT) gives the same 256-point curves."""
    pairs = [(p.astype(dtype), g) for p, g in cases(rng)]
    pairs.append((np.zeros_like(pairs[0][0]), pairs[0][1]))             # nothing predicted anywhere
    ours = SaliencyMetrics(n_thresholds=256, empty_precision=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = py_sod_metrics.Fmeasure()
    for pred, gt in pairs:
        ours.update(pred, gt >= 128)
        theirs.step(pred, gt >= 128, normalize=False)
    s, ref = ours.compute(), theirs.get_results()
    # theirs is ordered by level >= 255, 254, ..., 0; ours by t = 0..255
    np.testing.assert_allclose(s.fbeta_curve, np.flip(ref["fm"]["curve"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.precision_curve, np.flip(ref["pr"]["p"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.recall_curve, np.flip(ref["pr"]["r"]), rtol=0, atol=1e-12)
    assert s.thresholds.shape == (256,) and s.thresholds[-1] == 1.0
    # the convention itself (empty precision left at 1: F is the same, see below)
    assert scored(CONVENTIONS["thresholds_256"].protocol, pairs).max_fbeta == pytest.approx(
        float(ref["fm"]["curve"].max()), abs=1e-12)


def test_256_thresholds_add_the_all_foreground_point_to_255(rng):
    """On 8-bit predictions t = k + 1 of the 256 curve is k of the 255 curve; t = 0 marks every pixel."""
    pairs = cases(rng, quantised=True)
    c255, c256 = SaliencyMetrics(), SaliencyMetrics(n_thresholds=256)
    for pred, gt in pairs:
        c255.update(pred, gt / 255.0)
        c256.update(pred, gt / 255.0)
    a, b = c255.compute(), c256.compute()
    np.testing.assert_allclose(b.fbeta_curve[1:], a.fbeta_curve, rtol=0, atol=1e-12)
    everything = naive(pairs, fg_rule=lambda g: g >= 128, thresholds=[0.0], above=np.greater_equal)
    assert b.fbeta_curve[0] == pytest.approx(everything["max_fbeta"], abs=1e-12)


def test_per_image_max_is_the_mean_of_each_images_max(rng):
    pairs = cases(rng)
    got = scored(CONVENTIONS["fmax_per_image"].protocol, pairs)
    assert_scores(got, naive(pairs, fg_rule=lambda g: g >= 128, per_image=True))
    assert got.max_fbeta >= scored(DEFAULT, pairs).max_fbeta          # every image picks its own threshold


def test_beta2_squared_again(rng):
    pairs = cases(rng)
    # SelfMask / FOUND's F: (1 + beta_square ** 2) P R / (beta_square ** 2 P + R), beta_square = 0.3
    assert_scores(scored(CONVENTIONS["beta2_0.09"].protocol, pairs),
                  naive(pairs, fg_rule=lambda g: g >= 128, beta2=0.3 ** 2))


def test_empty_precision_moves_the_precision_curve_and_f_only_for_empty_ground_truth():
    pred = np.array([[0.1, 0.3], [0.2, 0.25]])
    gt = np.array([[True, False], [False, False]])
    one, zero = SaliencyMetrics(), SaliencyMetrics(empty_precision=0.0)
    one.update(pred, gt)
    zero.update(pred, gt)
    a, b = one.compute(), zero.compute()
    nothing = np.arange(255) / 255 >= 0.3                                # no pixel is above t_k
    assert np.all(a.precision_curve[nothing] == 1) and np.all(b.precision_curve[nothing] == 0)
    assert np.array_equal(a.precision_curve[~nothing], b.precision_curve[~nothing])
    assert np.array_equal(a.fbeta_curve, b.fbeta_curve)               # recall is 0 there: F is 0 either way
    # an empty ground truth: recall 1, so F = 1 with precision 1 and 0 with precision 0
    empty = np.zeros_like(gt)
    one.update(np.zeros_like(pred), empty)
    zero.update(np.zeros_like(pred), empty)
    assert one.compute().fbeta_curve[0] == pytest.approx((a.fbeta_curve[0] + 1) / 2)
    assert zero.compute().fbeta_curve[0] == pytest.approx(a.fbeta_curve[0] / 2)


def test_stretch_is_pysodmetrics_prepare_data(rng):
    for pred, gt in cases(rng, quantised=True):
        pred_u8 = np.rint(pred * 255).astype(np.uint8)
        ref_pred, ref_gt = py_sod_metrics.utils.prepare_data(pred_u8, gt)
        pair = prepare_pair(pred_u8 / 255, gt / 255, replace(DEFAULT, stretch=True, gt_rule="gt128"))
        assert np.array_equal(pair.pred, ref_pred) and np.array_equal(pair.fg, ref_gt)
        assert pair.pred.min() == 0 and pair.pred.max() == 1
    flat = np.full((3, 4), 0.25)
    assert np.array_equal(prepare_pair(flat, flat, CONVENTIONS["stretch"].protocol).pred, flat)   # constant: kept


def test_quantize_is_the_8bit_png_round_trip(rng, tmp_path):
    pred, gt = random_case(rng, (17, 23))
    write_mask_png(tmp_path / "p.png", pred)
    pair = prepare_pair(pred, gt / 255, CONVENTIONS["quantize"].protocol)
    assert np.array_equal(pair.pred, read_mask_levels(tmp_path / "p.png") / 255)     # m / 255, float64


def test_center320_is_the_released_frame_of_both_masks(rng):
    image = photo(48, 70, seed=1)
    pred, gt = random_case(rng, (48, 70))
    pair = prepare_pair(pred, gt / 255, CONVENTIONS["center320"].protocol, image=image)
    assert pair.pred.shape == pair.fg.shape == (320, 320)
    np.testing.assert_array_equal(pair.pred, center_crop_view(image, pred.astype(np.float32)).mask)
    np.testing.assert_array_equal(pair.fg, center_crop_view(image, (gt / 255).astype(np.float32)).mask > 0.5)
    assert np.array_equal(center_frame(image, pred, gt / 255)[0], pair.pred)
    with pytest.raises(InputError, match="needs the \\(H, W, 3\\) image"):
        prepare_pair(pred, gt / 255, CONVENTIONS["center320"].protocol)


def test_the_released_codes_f_uses_gt_above_0_and_acc_iou_above_half(rng):
    pairs = cases(rng)
    official = replace(NAMED_PROTOCOLS["official"].protocol, frame="full", head=())
    ref = naive(pairs, fg_rule=lambda g: g > 0, fg_binary_rule=lambda g: g >= 128)
    assert_scores(scored(official, pairs), ref)
    assert_scores(scored(CONVENTIONS["gt_f_gt0"].protocol, pairs), ref)


# ---------------------------------------------------------------------------------------------
# Named protocols
# ---------------------------------------------------------------------------------------------

def test_pysodmetrics_protocol_equals_pysodmetrics_defaults(rng):
    pairs = cases(rng, n=8, quantised=True)
    pairs.append((np.full_like(pairs[0][0], 100 / 255), pairs[0][1]))    # constant: not stretched
    u8 = [(np.rint(p * 255).astype(np.uint8), g) for p, g in pairs]
    assert_scores(scored(NAMED_PROTOCOLS["pysodmetrics"].protocol, pairs), pysod_defaults(u8))
    # soft float predictions: pysodmetrics reads them from the 8-bit PNG paperlib would write
    soft = cases(rng)
    assert_scores(scored(NAMED_PROTOCOLS["pysodmetrics"].protocol, soft),
                  pysod_defaults([(np.rint(p * 255).astype(np.uint8), g) for p, g in soft]))


def test_tokencut_protocol(rng):
    """TokenCut's metric.py on 8-bit GT levels: `> 0.5` and `.to(bool)` are level >= 1; 255 thresholds
    np.arange(0, 1, 1/255), `pred > t`, precision 1 when empty, beta^2 0.3, curve mean then max."""
    pairs = cases(rng)
    ref = naive(pairs, fg_rule=lambda g: g > 0.5, thresholds=np.arange(0.0, 1.0, 1.0 / 255))
    assert_scores(scored(NAMED_PROTOCOLS["tokencut"].protocol, pairs), ref)


@pytest.mark.parametrize("name, fg_rule", [("selfmask", lambda g: g > 0), ("found", lambda g: g == 255)])
def test_selfmask_and_found_protocols(rng, name, fg_rule):
    """FMeasure of SelfMask (and FOUND's copy): eps 1e-7 in P, R and F, beta_square ** 2, per-image max
    averaged; GT `m > 0` (SelfMask) or `== 255` (FOUND). Equal up to the eps terms."""
    pairs = cases(rng)
    pairs.append((np.zeros_like(pairs[0][0]), pairs[0][1]))             # empty prediction: precision 0
    ref = naive(pairs, fg_rule=fg_rule, beta2=0.09, per_image=True, eps=1e-7)
    assert_scores(scored(NAMED_PROTOCOLS[name].protocol, pairs), ref, atol=1e-6)


def test_every_named_protocol_and_convention_cites_its_source():
    for name, entry in {**CONVENTIONS, **NAMED_PROTOCOLS}.items():
        assert entry.label and entry.source, name
    assert set(NAMED_PROTOCOLS) == {"official", "tokencut", "selfmask", "found", "pysodmetrics"}
    assert dict(NAMED_PROTOCOLS["official"].protocol.head) == vars(PROTOCOLS["official"])


# ---------------------------------------------------------------------------------------------
# A dataset, a method, the table and the figure
# ---------------------------------------------------------------------------------------------

def tiny_dataset(n=5, size=(40, 56), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        _, gt = random_case(rng, size)
        out.append(Sample(f"im{i}", photo(*size, seed=i), (gt / 255).astype(np.float32), "", ""))
    return out


def test_score_protocols_scores_one_prediction_under_each(rng):
    data = tiny_dataset()
    method = CentrePrior()
    chosen = protocols_for(method)
    assert "bn_train" not in chosen and "polarity_image" not in chosen and chosen["official"].head == ()
    scores = score_protocols(data, method, chosen, progress=False)
    assert list(scores) == list(chosen)
    ev = evaluate_dataset(data, method, progress=False)["none"].scores
    assert (scores["default"].acc, scores["default"].iou, scores["default"].max_fbeta) == (ev.acc, ev.iou, ev.max_fbeta)
    preds = [(method.predict(s.image).mask, s.image, s.mask) for s in data]
    for name in ("center320", "official", "pysodmetrics"):
        scorer = ProtocolScorer(chosen[name])
        for pred, image, gt in preds:
            scorer.update(pred, gt, image=image)
        assert scorer.compute() == scores[name], name
    table = protocol_table(scores)
    assert table.loc["default", ["d_acc", "d_iou", "d_max_fbeta"]].tolist() == [0, 0, 0]
    assert table.loc["center320", "d_iou"] == pytest.approx(scores["center320"].iou - scores["default"].iou)
    assert set(table["kind"]) == {"convention", "named"} and (table["n_empty_gt"] == 0).all()
    fig = plot_protocol_deltas(table, title="t")
    panels = fig.axes
    assert len(panels) == 3 and all(ax.get_title() and "(" in ax.get_xlabel() for ax in panels)
    assert len(panels[0].get_yticklabels()) == len(table) - 1 and "(" in panels[0].get_ylabel()


SMALL_BATCH = replace(PROTOCOLS["default"], batch_size=2)   # two batches of four images: the order matters


def test_a_folder_of_saved_masks_under_pysodmetrics(rng, tmp_path):
    """build_method('masks'): the saved PNGs are the predictions; pysodmetrics on the same files agrees."""
    from paperlib.methods.registry import build_method

    data = tiny_dataset(n=3)
    for s in data:
        write_mask_png(tmp_path / f"{s.stem}.png", random_case(rng, s.mask.shape)[0])
    method = build_method("masks", masks=str(tmp_path))
    scores = score_protocols(data, method, protocols_for(method, ["pysodmetrics"]), progress=False)
    u8 = [(read_mask_levels(tmp_path / f"{s.stem}.png"), np.rint(s.mask * 255).astype(np.uint8)) for s in data]
    assert_scores(scores["pysodmetrics"], pysod_defaults(u8))


def test_sempart_rows_predict_again_under_their_head_settings(tmp_path):
    data = tiny_dataset(n=4)
    method = method_for(tmp_path, random_head(), protocol=replace(SMALL_BATCH, batch_size=4))
    chosen = protocols_for(method, ["bn_train", "polarity_image", "official"])
    assert list(chosen) == ["default", "bn_train", "polarity_image", "official"]
    scores = score_protocols(data, method, chosen, progress=False)
    for name, changes in (("default", {}), ("bn_train", {"bn_mode": "train"}), ("polarity_image", {"polarity": "image"}),
                          ("official", vars(PROTOCOLS["official"]))):
        variant = SempartMethod(method.model, protocol=replace(method.protocol, **changes))
        ev = evaluate_dataset(data, variant, progress=False)["none"].scores
        assert (scores[name].acc, scores[name].iou) == (ev.acc, ev.iou), name   # the released Acc / IoU: GT > 0.5
        if name != "official":                                                 # its F takes GT > 0
            assert scores[name].max_fbeta == ev.max_fbeta, name
    with pytest.raises(InputError, match="apply to Sempart heads only"):
        score_protocols(data, CentrePrior(), {"bn_train": CONVENTIONS["bn_train"].protocol}, progress=False)


def test_a_head_at_another_size_is_scored_in_its_own_released_frame(tmp_path, monkeypatch):
    """The released evaluation resizes to img_size + 15 and crops img_size: a head trained at
    64 is cropped 64 of 79 (not 64 of 335, a far smaller central part), by the official protocol
    (which predicts on that crop) and by the 'center320' scoring convention alike."""
    data = tiny_dataset(n=2, size=(60, 90))
    method = method_for(tmp_path, random_head(), protocol=replace(SMALL_BATCH, batch_size=2))
    size = method.model.image_size
    assert size != 320
    official = SempartMethod(method.model, protocol=replace(method.protocol, **vars(PROTOCOLS["official"])))
    sample = data[0]
    view = official.view(sample.image, sample.mask)
    expected = center_crop_view(sample.image, sample.mask, resize_short=size + 15, crop=size)
    np.testing.assert_array_equal(view.image, expected.image)
    crops = []
    real = protocols_module.center_frame

    def spy(image, pred, gt, *, crop=320):
        crops.append(crop)
        return real(image, pred, gt, crop=crop)

    monkeypatch.setattr(protocols_module, "center_frame", spy)
    score_protocols(data, method, protocols_for(method, ["center320"]), progress=False)
    assert crops == [size, size]
    got = spy(sample.image, sample.mask, sample.mask, crop=size)[1]
    np.testing.assert_array_equal(got, expected.mask)


def test_batch_orders_do_not_matter_with_eval_batchnorm_and_per_image_polarity(tmp_path):
    data = tiny_dataset(n=4)
    head = random_head()
    per_image = method_for(tmp_path, head, protocol=replace(SMALL_BATCH, polarity="image"))
    frame = batch_order_spread(data, per_image, orders=2, progress=False)
    assert list(frame.columns) == ["bn_mode", "order", "acc", "iou", "max_fbeta"] and len(frame) == 4
    summary = spread_summary(frame)
    assert list(summary.index) == ["train", "eval"]
    for metric in ("acc", "iou", "max_fbeta"):     # the same masks, summed in another order
        assert summary.loc["eval", (metric, "range")] == pytest.approx(0, abs=1e-12)
    # order 0 is the dataset's own order: the default protocol's score
    ev = evaluate_dataset(data, SempartMethod(per_image.model, protocol=replace(per_image.protocol, bn_mode="train")),
                          progress=False)["none"].scores
    order0 = frame[(frame["bn_mode"] == "train") & (frame["order"] == 0)].iloc[0]
    assert (order0["acc"], order0["iou"], order0["max_fbeta"]) == (ev.acc, ev.iou, ev.max_fbeta)
    with pytest.raises(InputError, match="Sempart heads"):
        batch_order_spread(data, CentrePrior(), progress=False)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"thresholds": 100}, "thresholds must be 255 or 256"),
    ({"fmax": "mean"}, "fmax"),
    ({"gt_rule": "gt5"}, "gt_rule"),
    ({"gt_rule_f": "x"}, "gt_rule_f"),
    ({"frame": "crop"}, "frame"),
    ({"empty_precision": 0.5}, "empty_precision must be 0 or 1"),
])
def test_bad_protocols_are_refused_by_name(kwargs, message):
    with pytest.raises(InputError, match=message):
        ScoringProtocol(**kwargs)


def test_metric_options_are_checked_and_merge_only_alike():
    with pytest.raises(InputError, match="n_thresholds must be 255"):
        SaliencyMetrics(n_thresholds=300)
    with pytest.raises(InputError, match="empty_precision must be 1"):
        SaliencyMetrics(empty_precision=0.5)
    with pytest.raises(InputError, match="cannot merge metrics with n_thresholds=256"):
        SaliencyMetrics().merge(SaliencyMetrics(n_thresholds=256))
    with pytest.raises(InputError, match="unknown|protocol"):
        protocols_for(CentrePrior(), ["no_such"])


# ---------------------------------------------------------------------------------------------
# The real DUTS-TE sample and the notebook
# ---------------------------------------------------------------------------------------------

@pytest.mark.realdata
def test_real_sample_tokencut_against_pysodmetrics_on_saved_pngs(real_data_root, tmp_path):
    """TokenCut (offline backbone) on 4 DUTS-TE images: the default row is `paperlib eval`'s, and the
    pysodmetrics row is pysodmetrics run on the 8-bit PNGs of the predictions and the GT files."""
    from paperlib.methods.registry import build_method

    data = open_dataset("duts-te", real_data_root)
    method = build_method("tokencut", backbone="offline", device="cpu")
    chosen = protocols_for(method, ["pysodmetrics", "tokencut"])
    scores = score_protocols(data, method, chosen, limit=4, progress=False)
    evals = evaluate_dataset(data, method, limit=4, progress=False, save_masks=tmp_path / "masks")["none"]
    assert (scores["default"].acc, scores["default"].iou, scores["default"].max_fbeta) == (
        evals.scores.acc, evals.scores.iou, evals.scores.max_fbeta)
    import cv2

    u8 = [(cv2.imread(str(tmp_path / "masks" / f"{data[i].stem}.png"), cv2.IMREAD_GRAYSCALE),
           cv2.imread(data[i].mask_path, cv2.IMREAD_GRAYSCALE)) for i in range(4)]
    assert_scores(scores["pysodmetrics"], pysod_defaults(u8))
    preds = [p / 255 for p, _ in u8]        # TokenCut's masks are hard: the PNG holds them exactly
    assert_scores(scores["tokencut"], naive(list(zip(preds, [g for _, g in u8])), fg_rule=lambda g: g > 0))


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("protocols_notebook")   # the synthetic set is written once


def test_protocols_notebook_runs_offline(notebook_dir):
    import pandas as pd

    done = run("protocols", notebook_dir, {"max_images": 2})
    assert not stray_outputs(done.executed)
    figures = notebook_dir / "figures"
    table = pd.read_csv(figures / "protocols_tokencut_offline_smoke.csv", index_col=0)
    assert list(table.index[:2]) == ["default", "thresholds_256"] and "pysodmetrics" in table.index
    assert "bn_train" not in table.index and (table["n_images"] == 2).all()
    assert (figures / "protocols_tokencut_offline_smoke.png").is_file()
    assert (figures / "protocols_tokencut_offline_smoke.md").read_text().startswith("*[smoke] synthetic DUTS-TE")


def test_protocols_notebook_scores_a_sempart_head_and_its_batch_orders(notebook_dir):
    import pandas as pd

    checkpoint = write(notebook_dir, contract_dict(random_head()))
    run("protocols", notebook_dir, {"max_images": 4, "method": "sempart", "checkpoint": str(checkpoint),
                                    "orders": 2, "protocols": ["bn_train", "polarity_image", "official"]},
        tag="smoke_sempart")
    figures = notebook_dir / "figures"
    table = pd.read_csv(figures / "protocols_sempart_smoke_sempart.csv", index_col=0)
    assert list(table.index) == ["default", "bn_train", "polarity_image", "official"]
    spread = pd.read_csv(figures / "protocols_sempart_smoke_sempart_batch_orders.csv", header=[0, 1], index_col=0)
    assert list(spread.index) == ["train", "eval"]


@pytest.mark.realdata
def test_protocols_notebook_on_the_real_sample(notebook_dir, real_data_root):
    import pandas as pd

    run("protocols", notebook_dir, {"data_root": str(real_data_root), "max_images": 3}, tag="sample")
    table = pd.read_csv(notebook_dir / "figures" / "protocols_tokencut_offline_sample.csv", index_col=0)
    assert len(table) == len(CONVENTIONS) + len(NAMED_PROTOCOLS) - 2 and (table["n_images"] == 3).all()
