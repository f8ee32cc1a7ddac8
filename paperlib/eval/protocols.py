"""One set of predictions scored under every evaluation convention, and under other codebases' protocols.

Much of "the numbers do not reproduce" is the evaluation protocol, not the method. This module
scores the predictions of one method on one saliency dataset under paperlib's default protocol
(docs/paper_and_code.md#saliency-metrics), under each convention below changed **one at a time**
from it, and under the named protocols of other codebases, so the change each makes to Acc, IoU
and max F-beta can be read off one table.

    ScoringProtocol                        how (pred, gt) pairs become Acc, IoU, max F-beta
    CONVENTIONS, NAMED_PROTOCOLS           the single changes, and the other codebases' protocols
    center_frame(image, pred, gt, crop)    the released code's centre crop of a pair (320 of 335)
    prepare_pair(pred, gt, protocol)       the pair a protocol scores: frame, 8 bits, stretch, GT rule
    ProtocolScorer                         one protocol's streaming scores
    protocols_for(method, names)           the protocols that apply to a method
    score_protocols(dataset, method, ...)  every protocol from one pass of predictions
    protocol_table(scores), plot_protocol_deltas(table)   the table of changes and its figure
    batch_order_spread(dataset, method, ...), spread_summary(frame)   Sempart: shuffled batch orders

The conventions (option -> values; default first):

1. ``thresholds``: 255 (``pred > k/255``, k = 0..254; TokenCut) or 256 (pysodmetrics'
   ``uint8(255 pred) >= t``, t = 0..255; PySODEvalToolkit issue 14).
2. ``fmax``: 'curve' (max of the dataset-mean F curve) or 'per_image' (mean of each image's max).
3. ``beta2``: 0.3 or 0.09 (``beta_square ** 2`` in SelfMask's and FOUND's code).
4. ``empty_precision``: 1 or 0, the precision of a threshold at which nothing is predicted.
5. ``gt_rule``: ground truth binarised at 'ge128' (>= 128 of 255, i.e. > 0.5), 'gt0' (> 0),
   'gt128' (> 128) or 'eq255' (== 255); ``gt_rule_f`` binarises F's ground truth alone.
6. ``stretch``: predictions min-max stretched to [0, 1] per image, or not.
7. ``frame``: 'full' (the ground truth's resolution) or 'center320' (short side 335, central
   320 x 320 crop of prediction and ground truth: the released code's frame,
   :func:`paperlib.methods.sempart.center_crop_view`; for a Sempart head trained at another
   input size s, short side s + 15 and an s x s crop, as the released code would run it).
8. Sempart heads only (``head``, fields of :class:`paperlib.methods.sempart.EvalProtocol`; these
   predict again): BatchNorm in train vs eval mode, polarity per batch of 8 vs per image; and
   :func:`batch_order_spread`, the scores over shuffled batch orders in either BatchNorm mode.

Ground-truth rules are applied to the [0, 1] mask at half-level midpoints (``gt0`` is
``gt > 0.5/255``), which for 8-bit masks is exactly the rule on the levels and, on the resized
ground truth of the 'center320' frame, the rule on its rounded 8-bit levels (what PIL's 8-bit
resize in the released code gives). Images whose binarised ground truth is empty are counted
(``ProtocolScores.n_empty_gt``), not modelled: the codebases disagree there (recall 1 or 0, IoU 1,
0 or NaN) and DUTS-TE, DUT-OMRON and ECSSD have none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..checks import check_choice, check_int, check_positive, require
from ..methods.base import REFINEMENTS, Method
from ..methods.refined import refine_prediction
from ..methods.sempart import PROTOCOLS, RELEASED_EVAL_MARGIN, SempartMethod, center_crop_view
from ..refine.masks import RefineSettings
from .metrics import (
    BETA2_PAPER,
    BETA2_SQUARED,
    N_THRESHOLDS,
    N_THRESHOLDS_PYSOD,
    SaliencyMetrics,
)

# Ground-truth rules -> the [0, 1] value a foreground pixel must exceed (half-level midpoints).
GT_RULES = {"ge128": 0.5,            # >= 128 of 255: paperlib, the released code's Acc / IoU
            "gt0": 0.5 / 255,        # > 0: TokenCut, SelfMask, the released code's F-max
            "gt128": 128.5 / 255,    # > 128: pysodmetrics
            "eq255": 254.5 / 255}    # == 255: FOUND
FMAX_RULES = ("curve", "per_image")
FRAMES = ("full", "center320")
METRICS = ("acc", "iou", "max_fbeta")
METRIC_LABELS = {"acc": "Acc", "iou": "IoU", "max_fbeta": "max F-beta"}


@dataclass(frozen=True)
class ScoringProtocol:
    """How predictions and ground truth become Acc, IoU and max F-beta (defaults: paperlib's).

    Attributes:
        thresholds: 255 (``pred > k/255``, k = 0..254) or 256 (``uint8(255 pred) >= t``).
        fmax: 'curve': max over thresholds of the image-averaged F curve; 'per_image': the mean
            over images of each image's own max.
        beta2: beta^2 of eq. 9.
        empty_precision: precision where a threshold predicts nothing (1 or 0).
        gt_rule: binarisation of the ground truth (a key of :data:`GT_RULES`).
        gt_rule_f: F-beta's own ground-truth rule where it differs from Acc / IoU's; None: gt_rule.
        stretch: min-max stretch each prediction to [0, 1] (when it is not constant).
        quantize: round the prediction to 8 bits first, as a saved PNG holds it.
        frame: 'full' or 'center320' (:func:`paperlib.methods.sempart.center_crop_view`).
        head: (field, value) pairs of :class:`paperlib.methods.sempart.EvalProtocol` for a
            Sempart head; non-empty means the head predicts again under them.
    """

    thresholds: int = N_THRESHOLDS
    fmax: str = "curve"
    beta2: float = BETA2_PAPER
    empty_precision: float = 1.0
    gt_rule: str = "ge128"
    gt_rule_f: str | None = None
    stretch: bool = False
    quantize: bool = False
    frame: str = "full"
    head: tuple = ()

    def __post_init__(self) -> None:
        require(self.thresholds in (N_THRESHOLDS, N_THRESHOLDS_PYSOD),
                f"thresholds must be {N_THRESHOLDS} or {N_THRESHOLDS_PYSOD}, got {self.thresholds!r}")
        check_choice("fmax", self.fmax, FMAX_RULES)
        check_positive("beta2", self.beta2)
        check_choice("gt_rule", self.gt_rule, GT_RULES)
        if self.gt_rule_f is not None:
            check_choice("gt_rule_f", self.gt_rule_f, GT_RULES)
        check_choice("frame", self.frame, FRAMES)
        require(self.empty_precision in (0, 1), f"empty_precision must be 0 or 1, got {self.empty_precision!r}")


@dataclass(frozen=True)
class Convention:
    """A protocol in the table: what it changes, where the fact comes from, and to which methods it applies."""

    label: str
    protocol: ScoringProtocol
    source: str
    sempart_only: bool = False


DEFAULT = ScoringProtocol()
_OFFICIAL_HEAD = tuple(asdict(PROTOCOLS["official"]).items())   # bn train, batch polarity, 335 + 320 crop

# Each changes one thing from DEFAULT.
CONVENTIONS: dict[str, Convention] = {
    "default": Convention("paperlib's default", DEFAULT, "docs/paper_and_code.md#saliency-metrics"),
    "thresholds_256": Convention("256 thresholds, uint8(255 p) >= t", replace(DEFAULT, thresholds=N_THRESHOLDS_PYSOD),
                                 "lartpang/PySODMetrics py_sod_metrics/sod_metrics.py; PySODEvalToolkit issue 14"),
    "fmax_per_image": Convention("max F per image, then the mean", replace(DEFAULT, fmax="per_image"),
                                 "NoelShin/selfmask evaluator.py"),
    "beta2_0.09": Convention("beta^2 = 0.09", replace(DEFAULT, beta2=BETA2_SQUARED),
                             "NoelShin/selfmask metrics/f_measure.py"),
    "empty_precision_0": Convention("empty prediction: precision 0", replace(DEFAULT, empty_precision=0.0),
                                    "lartpang/PySODMetrics py_sod_metrics/sod_metrics.py"),
    "gt_gt0": Convention("GT > 0", replace(DEFAULT, gt_rule="gt0"),
                         "YangtaoWANG95/TokenCut unsupervised_saliency_detection/metric.py"),
    "gt_gt128": Convention("GT > 128", replace(DEFAULT, gt_rule="gt128"), "lartpang/PySODMetrics py_sod_metrics/utils.py"),
    "gt_eq255": Convention("GT == 255", replace(DEFAULT, gt_rule="eq255"), "valeoai/FOUND datasets/datasets.py"),
    "gt_f_gt0": Convention("GT > 0 for F-beta only", replace(DEFAULT, gt_rule_f="gt0"),
                           "alpErenSari/segmentation-tricks token_metric.py, sempart_main.py"),
    "stretch": Convention("prediction min-max stretched", replace(DEFAULT, stretch=True),
                          "lartpang/PySODMetrics py_sod_metrics/utils.py"),
    "quantize": Convention("prediction saved as 8 bits", replace(DEFAULT, quantize=True),
                           "lartpang/PySODMetrics (uint8 inputs)"),
    "center320": Convention("335 resize + 320 centre crop", replace(DEFAULT, frame="center320"),
                            "alpErenSari/segmentation-tricks utils_data.py"),
    "bn_train": Convention("BatchNorm in train mode", replace(DEFAULT, head=(("bn_mode", "train"),)),
                           "alpErenSari/segmentation-tricks sempart_main.py", sempart_only=True),
    "polarity_image": Convention("polarity per image", replace(DEFAULT, head=(("polarity", "image"),)),
                                 "docs/paper_and_code.md#evaluation-protocol", sempart_only=True),
}

# Other codebases' protocols, each fact from the file named (read for facts only; see the notes).
NAMED_PROTOCOLS: dict[str, Convention] = {
    # The paper's released code (alpErenSari/segmentation-tricks): token_metric.py is TokenCut's
    # metric (255 thresholds, curve max, beta^2 0.3, empty precision 1); utils_data.py resizes image
    # and GT (short side img_size + 15 = 335) and centre-crops 320; sempart_main.py scores the GT
    # as loaded, in [0, 1]: accuracy and IoU threshold it at > 0.5, my_Fmax's precision_recall
    # casts it to bool, i.e. > 0. A Sempart head is also run as PROTOCOLS['official'] (BatchNorm in
    # train mode, batch polarity, prediction on the crop).
    "official": Convention("the paper's released code", replace(DEFAULT, gt_rule_f="gt0", frame="center320",
                                                                head=_OFFICIAL_HEAD),
                           "alpErenSari/segmentation-tricks token_metric.py, sempart_main.py, utils_data.py"),
    # TokenCut (YangtaoWANG95/TokenCut): unsupervised_saliency_detection/get_saliency.py reads the GT
    # as 8-bit levels and passes them to metric.py unscaled, where IoU / accuracy test `> 0.5` and
    # precision_recall `.to(torch.bool)`: both level >= 1. metric.metrics: np.arange(0, 1, 1/255)
    # thresholds, `pred > t`, precision 1 when empty, beta^2 0.3, F averaged over images then max.
    # The mask is resized to the image's size (object_discovery.ncut). An image with both masks
    # empty has IoU NaN there (not modelled).
    "tokencut": Convention("TokenCut's evaluation", replace(DEFAULT, gt_rule="gt0"),
                           "YangtaoWANG95/TokenCut unsupervised_saliency_detection/metric.py, get_saliency.py"),
    # SelfMask (NoelShin/selfmask): metrics/f_measure.py FMeasure: n_bins 255,
    # torch.arange(0, 1, 1/255) thresholds, `pred > t`, precision tp / (tp + fp + 1e-7) (0 when
    # empty), F with `beta_square ** 2` (0.3 ** 2 = 0.09), the per-image max; evaluator.py
    # averages it over images (AverageMeter) and scores predictions upsampled and cut to the GT's
    # size; datasets/base_dataset.py and duts.py binarise the GT with `m > 0`. The eps terms
    # (1e-7) are left out: they move F by less than 1e-6.
    "selfmask": Convention("SelfMask's evaluation", replace(DEFAULT, gt_rule="gt0", fmax="per_image",
                                                            beta2=BETA2_SQUARED, empty_precision=0.0),
                           "NoelShin/selfmask metrics/f_measure.py, evaluator.py, datasets/base_dataset.py"),
    # FOUND (valeoai/FOUND): evaluation/metrics/f_measure.py is SelfMask's FMeasure (beta_square ** 2,
    # eps, 255 thresholds); evaluation/saliency.py averages each image's max (`f_maxs`, the number it
    # prints), scores IoU and accuracy at pred > 0.5, at full size (batch 1, predictions upsampled
    # and cut to the GT); datasets/datasets.py binarises the GT with `mask_gt == 255`. Its 'single'
    # mode first keeps one connected component: a prediction step, not scoring (not applied here).
    "found": Convention("FOUND's evaluation", replace(DEFAULT, gt_rule="eq255", fmax="per_image",
                                                      beta2=BETA2_SQUARED, empty_precision=0.0),
                        "valeoai/FOUND evaluation/saliency.py, evaluation/metrics/f_measure.py, datasets/datasets.py"),
    # pysodmetrics 1.6.2 with its defaults (lartpang/PySODMetrics): utils.py prepare_data binarises
    # the GT at > 128 and divides an 8-bit prediction by 255, min-max stretching it unless constant;
    # sod_metrics.py Fmeasure (beta 0.3, used as beta^2) builds 256 thresholds on
    # uint8(255 pred) >= t with precision 0 where nothing is predicted; the mean curve's max is
    # maxF (examples/metric_recorder.py). Acc and IoU: fmeasurev2.py's OverallAccuracyHandler and
    # IOUHandler with with_binary=True (pred > 0.5 after the stretch, averaged over images).
    "pysodmetrics": Convention("pysodmetrics' defaults", replace(DEFAULT, thresholds=N_THRESHOLDS_PYSOD,
                                                                 empty_precision=0.0, gt_rule="gt128",
                                                                 stretch=True, quantize=True),
                               "lartpang/PySODMetrics py_sod_metrics/utils.py, sod_metrics.py, fmeasurev2.py"),
}


# ----------------------------------------------------------------------------- one pair


def center_frame(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, *,
                 crop: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and ground truth in the released code's frame: short side ``crop + 15`` (335),
    central ``crop`` (320) square.

    Both are resized as :func:`paperlib.methods.sempart.center_crop_view` resizes a mask
    (bilinear, antialiased, float) with the image's geometry. The released evaluation ties both
    sizes to its input size (``Resize(img_size + 15)``, then a centre crop of ``img_size``): a head
    trained at another size is scored in the frame of that size (:func:`score_protocols` passes it).

    Args:
        image: (H, W, 3) uint8, the image both masks belong to.
        pred: (H, W) prediction in [0, 1].
        gt: (H, W) ground truth in [0, 1].
        crop: the side of the central square (the model's input size; 320 in the paper).

    Returns:
        (pred (crop, crop) float32, gt (crop, crop) float32).
    """
    require(image is not None and image.shape[:2] == gt.shape == pred.shape,
            "the 'center320' frame needs the (H, W, 3) image the (H, W) masks belong to")
    short = crop + RELEASED_EVAL_MARGIN
    return (center_crop_view(image, np.clip(pred, 0.0, 1.0).astype(np.float32), resize_short=short, crop=crop).mask,
            center_crop_view(image, gt.astype(np.float32), resize_short=short, crop=crop).mask)


class PreparedPair(NamedTuple):
    """A (prediction, ground truth) pair as a protocol scores it."""

    pred: np.ndarray   # (H', W') float in [0, 1] (float64 m / 255 after quantize)
    fg: np.ndarray     # (H', W') bool: Acc and IoU's ground truth
    fg_f: np.ndarray   # (H', W') bool: F-beta's ground truth


def prepare_pair(pred: np.ndarray, gt: np.ndarray, protocol: ScoringProtocol, *,
                 image: np.ndarray | None = None, cropped: bool = False) -> PreparedPair:
    """The pair ``protocol`` scores: in its frame, 8-bit if asked, stretched if asked, GT binarised.

    Args:
        pred: (H, W) float prediction in [0, 1].
        gt: (H, W) ground truth in [0, 1] (8-bit masks as m / 255).
        protocol: the :class:`ScoringProtocol`.
        image: (H, W, 3) uint8, needed for the 'center320' frame (it sets the crop's geometry).
        cropped: the pair is already in the 'center320' frame (a Sempart head under
            ``resolution='center320'`` predicts on the crop); no second crop.

    Returns:
        PreparedPair(pred (H', W'), fg (H', W') bool, fg_f (H', W') bool); H' = W' = 320 for
        'center320', else (H, W).
    """
    pred, gt = np.asarray(pred), np.asarray(gt, dtype=np.float32)
    require(pred.shape == gt.shape and pred.ndim == 2,
            f"pred and gt must be (H, W) arrays of one shape, got {pred.shape} and {gt.shape}")
    if protocol.frame == "center320" and not cropped:
        pred, gt = center_frame(image, pred, gt)                                     # (320, 320) each
    if protocol.quantize:   # an 8-bit PNG as paperlib.images.write_mask_png stores it, read back as m / 255
        pred = np.rint(np.clip(pred.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8) / 255
    if protocol.stretch:    # pysodmetrics' prepare_data: im2double, then mapminmax unless constant
        pred = pred.astype(np.float64)
        if pred.max() != pred.min():
            pred = (pred - pred.min()) / (pred.max() - pred.min())
    fg = gt > GT_RULES[protocol.gt_rule]
    fg_f = fg if protocol.gt_rule_f in (None, protocol.gt_rule) else gt > GT_RULES[protocol.gt_rule_f]
    return PreparedPair(pred, fg, fg_f)


class ProtocolScores(NamedTuple):
    """One protocol's dataset-level scores."""

    acc: float
    iou: float
    max_fbeta: float   # by the protocol's fmax rule
    n_images: int
    n_empty_gt: int    # images whose binarised ground truth is empty (conventions disagree there)


class ProtocolScorer:
    """Streaming scores of one :class:`ScoringProtocol` (constant memory, like SaliencyMetrics).

    Args:
        protocol: the protocol.
    """

    def __init__(self, protocol: ScoringProtocol) -> None:
        require(isinstance(protocol, ScoringProtocol),
                f"protocol must be a ScoringProtocol, got {type(protocol).__name__}")
        self.protocol = protocol
        options = {"beta2": protocol.beta2, "n_thresholds": protocol.thresholds,
                   "empty_precision": protocol.empty_precision}
        self._f = SaliencyMetrics(**options)
        # Acc and IoU from a second accumulator only when their ground truth differs from F's.
        self._binary = None if protocol.gt_rule_f in (None, protocol.gt_rule) else SaliencyMetrics(**options)
        self.n_empty_gt = 0

    def update(self, pred: np.ndarray, gt: np.ndarray, *, image: np.ndarray | None = None,
               cropped: bool = False) -> None:
        """Add one image (arguments as :func:`prepare_pair`)."""
        pair = prepare_pair(pred, gt, self.protocol, image=image, cropped=cropped)
        self._f.update(pair.pred, pair.fg_f)
        if self._binary is not None:
            self._binary.update(pair.pred, pair.fg)
        self.n_empty_gt += int(not pair.fg.any() or not pair.fg_f.any())

    def compute(self) -> ProtocolScores:
        """The scores of the images added so far."""
        f = self._f.compute()
        binary = f if self._binary is None else self._binary.compute()
        fmax = f.max_fbeta if self.protocol.fmax == "curve" else f.fmax_per_image
        return ProtocolScores(acc=binary.acc, iou=binary.iou, max_fbeta=fmax, n_images=f.n_images,
                              n_empty_gt=self.n_empty_gt)


# ----------------------------------------------------------------------------- a dataset


def protocols_for(method: Method, names: Sequence[str] | None = None) -> dict[str, ScoringProtocol]:
    """The protocols of :data:`CONVENTIONS` and :data:`NAMED_PROTOCOLS` that apply to ``method``.

    The Sempart-only conventions are left out for other methods, and a named protocol's head
    settings are dropped for them (TokenCut and saved masks have no BatchNorm or polarity).

    Args:
        method: from :func:`paperlib.methods.registry.build_method`.
        names: the protocols wanted (None: every convention, then every named protocol).

    Returns:
        name -> ScoringProtocol, in order, 'default' first.
    """
    catalogue = {**CONVENTIONS, **NAMED_PROTOCOLS}
    names = list(catalogue) if names is None else list(dict.fromkeys(["default", *names]))
    for name in names:
        check_choice("protocol", name, catalogue)
    sempart = isinstance(method, SempartMethod)
    return {name: (catalogue[name].protocol if sempart else replace(catalogue[name].protocol, head=()))
            for name in names if sempart or not catalogue[name].sempart_only}


def _variant(method: Method, head: tuple) -> Method:
    """The method predicting under a head's EvalProtocol changes (itself when there are none)."""
    if not head:
        return method
    require(isinstance(method, SempartMethod),
            f"head settings {dict(head)} apply to Sempart heads only, not to method {method.name!r}")
    return SempartMethod(method.model, protocol=replace(method.protocol, **dict(head)))


def _predicted(dataset, method: Method, order: Sequence[int], refine: str, settings):
    """(image, gt, pred) in the method's frame, for the images of ``order`` in chunks of its batch size."""
    step = method.batch_size
    for start in range(0, len(order), step):
        samples = [dataset[i] for i in order[start:start + step]]
        views = [method.view(s.image, s.mask) for s in samples]
        preds = method.predict_batch([v.image for v in views], image_ids=[s.stem for s in samples])
        for view, pred in zip(views, preds):
            yield view.image, view.mask, refine_prediction(view.image, pred, refine=refine, settings=settings)


def _input_size(method: Method) -> int:
    """The side of the released frame's crop for ``method``: a Sempart head's input size (the
    released evaluation crops ``img_size``), else the paper's 320."""
    return method.model.image_size if isinstance(method, SempartMethod) else 320


def _crops_itself(method: Method) -> bool:
    return isinstance(method, SempartMethod) and method.protocol.resolution == "center320"


def score_protocols(dataset, method: Method, protocols: Mapping[str, ScoringProtocol], *,
                    refine: str = "none", settings: RefineSettings | None = None, limit: int | None = None,
                    progress: bool = True) -> dict[str, ProtocolScores]:
    """Score one method's predictions on a dataset under every protocol.

    Each image is predicted once per distinct ``head`` (once in all for TokenCut or saved masks)
    and that prediction is scored under every protocol sharing it, so the rows differ by the
    protocol alone.

    Args:
        dataset: a :class:`paperlib.data.saliency.SaliencyDataset` (samples with ``stem``,
            ``image`` (H, W, 3) uint8 and ``mask`` (H, W) in [0, 1]).
        method: from :func:`paperlib.methods.registry.build_method`; a Sempart head is the
            starting point its protocols' ``head`` settings change.
        protocols: name -> ScoringProtocol (:func:`protocols_for`).
        refine: 'none', 'gf' or 'bf', applied to every prediction before scoring.
        settings: the refinement's parameters (default: the paper's).
        limit: score only the first ``limit`` images.
        progress: a progress bar.

    Returns:
        name -> :class:`ProtocolScores`, in the order of ``protocols``.
    """
    require(len(protocols) > 0, "protocols is empty")
    check_choice("refine", refine, REFINEMENTS)
    n = len(dataset) if limit is None else min(check_int("limit", limit, low=1), len(dataset))
    require(n > 0, "the dataset is empty")
    scorers = {name: ProtocolScorer(p) for name, p in protocols.items()}
    groups: dict[tuple, list[str]] = {}
    for name, p in protocols.items():
        groups.setdefault(p.head, []).append(name)
    variants = {head: _variant(method, head) for head in groups}
    bar = tqdm(total=n * len(groups), desc=f"protocols {method.name}", disable=not progress, unit="img")
    for head, names in groups.items():
        variant = variants[head]
        for image, gt, pred in _predicted(dataset, variant, range(n), refine, settings):
            crop = None   # the 'center320' pair, cropped once for every protocol that scores it
            for name in names:
                if protocols[name].frame == "center320" and not _crops_itself(variant):
                    crop = crop or center_frame(image, pred, gt, crop=_input_size(method))
                    scorers[name].update(*crop, cropped=True)
                else:
                    scorers[name].update(pred, gt, image=image, cropped=_crops_itself(variant))
            bar.update(1)
    bar.close()
    return {name: scorer.compute() for name, scorer in scorers.items()}


def protocol_table(scores: Mapping[str, ProtocolScores], *, base: str = "default") -> pd.DataFrame:
    """Each protocol's scores and its change from ``base``, with what it changes and its source.

    Args:
        scores: from :func:`score_protocols`.
        base: the row the changes are taken from.

    Returns:
        DataFrame indexed by protocol name: ``what``, ``kind`` ('convention' or 'named'),
        ``acc``, ``iou``, ``max_fbeta``, ``d_acc``, ``d_iou``, ``d_max_fbeta``, ``n_images``,
        ``n_empty_gt`` (images whose binarised ground truth is empty), ``source``.
    """
    require(base in scores, f"base {base!r} is not among the scored protocols: {', '.join(scores)}")
    rows = {}
    for name, s in scores.items():
        entry = CONVENTIONS.get(name) or NAMED_PROTOCOLS.get(name)
        row = {"what": entry.label if entry else name,
               "kind": "convention" if name in CONVENTIONS else "named" if name in NAMED_PROTOCOLS else "other"}
        row.update({m: getattr(s, m) for m in METRICS})
        row.update({f"d_{m}": getattr(s, m) - getattr(scores[base], m) for m in METRICS})
        row.update(n_images=s.n_images, n_empty_gt=s.n_empty_gt, source=entry.source if entry else "")
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_protocol_deltas(table: pd.DataFrame, *, title: str = "", base: str = "default"):
    """Horizontal bars of each protocol's change in Acc, IoU and max F-beta from ``base``.

    Args:
        table: from :func:`protocol_table`.
        title: the figure's title.
        base: the row the changes are taken from (left out of the bars).

    Returns:
        matplotlib Figure, one panel per metric; conventions in one colour, named protocols in
        another, a line at 0 (no change).
    """
    import matplotlib.pyplot as plt

    rows = table.drop(index=base, errors="ignore")
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 0.32 * len(rows) + 1.6),
                             sharey=True, squeeze=False, layout="constrained")
    y = np.arange(len(rows))[::-1]
    colours = ["C1" if kind == "named" else "C0" for kind in rows["kind"]]
    for ax, metric in zip(axes[0], METRICS):
        ax.barh(y, rows[f"d_{metric}"], color=colours)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{METRIC_LABELS[metric]}: change from {base}", fontsize=10)
        ax.set_xlabel(f"{METRIC_LABELS[metric]} change (0-1 scale)")
    axes[0][0].set_yticks(y, [f"{name}: {what}" for name, what in zip(rows.index, rows["what"])], fontsize=8)
    axes[0][0].set_ylabel("protocol (blue: one convention changed; orange: another codebase's)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----------------------------------------------------------------------------- Sempart batch orders


def batch_order_spread(dataset, method: SempartMethod, *, orders: int = 5, seed: int = 0,
                       bn_modes: Sequence[str] = ("train", "eval"), limit: int | None = None,
                       refine: str = "none", settings: RefineSettings | None = None,
                       progress: bool = True) -> pd.DataFrame:
    """Default-protocol scores of a Sempart head over shuffled image orders, per BatchNorm mode.

    With BatchNorm in train mode a prediction depends on the other images of its batch of 8
    (docs/paper_and_code.md#evaluation-protocol), and so does the batch polarity rule in either
    mode: the score depends on the order the images come in. Order 0 is the dataset's sorted
    order (the released code's); orders 1.. are permutations from ``seed``.

    Args:
        dataset: as in :func:`score_protocols`.
        method: a :class:`paperlib.methods.sempart.SempartMethod`.
        orders: how many orders (>= 2).
        seed: the permutations' seed.
        bn_modes: BatchNorm modes to compare ('train', 'eval').
        limit: the first ``limit`` images only.
        refine, settings: as in :func:`score_protocols`.
        progress: a progress bar.

    Returns:
        DataFrame with one row per (bn_mode, order): ``bn_mode``, ``order``, ``acc``, ``iou``,
        ``max_fbeta``.
    """
    require(isinstance(method, SempartMethod), f"batch orders matter for Sempart heads, not {method.name!r}")
    check_int("orders", orders, low=2)
    n = len(dataset) if limit is None else min(check_int("limit", limit, low=1), len(dataset))
    rng = np.random.default_rng(seed)
    permutations = [np.arange(n)] + [rng.permutation(n) for _ in range(orders - 1)]
    rows = []
    bar = tqdm(total=n * orders * len(bn_modes), desc="batch orders", disable=not progress, unit="img")
    for bn_mode in bn_modes:
        variant = _variant(method, (("bn_mode", bn_mode),))
        for k, order in enumerate(permutations):
            scorer = ProtocolScorer(DEFAULT)
            for image, gt, pred in _predicted(dataset, variant, order, refine, settings):
                scorer.update(pred, gt, image=image, cropped=_crops_itself(variant))
                bar.update(1)
            s = scorer.compute()
            rows.append({"bn_mode": bn_mode, "order": k, **{m: getattr(s, m) for m in METRICS}})
    bar.close()
    return pd.DataFrame(rows)


def spread_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1), min, max and range of each metric per BatchNorm mode.

    Args:
        frame: from :func:`batch_order_spread`.

    Returns:
        DataFrame indexed by bn_mode, columns (metric, statistic).
    """
    stats = frame.groupby("bn_mode", sort=False)[list(METRICS)].agg(["mean", "std", "min", "max"])
    for m in METRICS:
        stats[(m, "range")] = stats[(m, "max")] - stats[(m, "min")]
    return stats.sort_index(axis=1, level=0, sort_remaining=False)
