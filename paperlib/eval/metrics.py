"""Saliency-segmentation metrics: Acc, IoU, max F-beta, MAE and IoU by object size.

The evaluation protocol of the paper (Sec. 5.2, eq. 9) as docs/paper_and_code.md#saliency-metrics
fixes it, accumulated one image at a time so memory does not grow with the number of images:

- **Acc**: per image, the fraction of pixels where ``pred > 0.5`` agrees with ``gt > 0.5``;
  then the mean over images (TokenCut's and MOVE's ``accuracy``, averaged per image).
- **IoU**: per image at 0.5, then the mean over images. An image whose ground truth and
  thresholded prediction are both empty scores IoU = 1 (the prediction is exactly right);
  pysodmetrics scores it 0 and TokenCut's code gives NaN. Saliency benchmarks (DUTS-TE,
  ECSSD, DUT-OMRON) have no empty ground truth, so this only matters for custom data.
- **max F-beta** (eq. 9, beta^2 = 0.3): thresholds t_k = k/255, k = 0..254, foreground where
  ``pred > t_k``. Per image, precision = TP / (TP + FP), 1 when nothing is predicted, and
  recall = TP / (TP + FN), 1 when the ground truth is empty (TokenCut's conventions); F = 0
  when precision and recall are both 0. F is averaged over images at each threshold and the
  max is taken over that dataset-level curve (``max_fbeta``). ``fmax_per_image`` is the
  per-image max then the mean, and ``beta2=BETA2_SQUARED`` (0.09) is the "beta^2 squared
  again" variant of some later papers: named variants, not comparable with the paper.
- **MAE**: per image, the mean of |pred - (gt > 0.5)|, then the mean over images.
- **IoU by size** (Appendix B.1, Figs. 6-8): images binned by their ground-truth foreground ratio
  into ``n_size_bins`` equal bins of [0, 1] (bin i is [i/n, (i+1)/n), the last one includes 1);
  count and mean IoU per bin.

Thresholds are compared in the prediction's own precision: t_k is k/255 rounded to float32 for a
float32 prediction and to float64 for a float64 one, so a prediction stored as m/255 in either
precision (an 8-bit PNG read back as float) counts as above t_k exactly when m > k, as the
8-bit level m would. Half-precision predictions are widened to float32 first.

Two keyword options exist for :mod:`paperlib.eval.protocols`, which compares conventions; their
defaults are the protocol above and change nothing:

- ``n_thresholds=256`` (``N_THRESHOLDS_PYSOD``): pysodmetrics' dynamic curve
  (lartpang/PySODMetrics, ``py_sod_metrics/sod_metrics.py`` ``Fmeasure.cal_pr`` and
  ``fmeasurev2.py`` ``dynamically_binarizing``; PySODEvalToolkit issue 14): the prediction is
  truncated to a level ``uint8(pred * 255)`` in its own precision, and foreground at threshold
  t = 0..255 is ``level >= t``. Its t = 0 marks every pixel; its t = t'+1 equals our k = t' for
  8-bit predictions.
- ``empty_precision=0.0``: precision 0 where nothing is predicted (pysodmetrics, SelfMask, FOUND)
  instead of 1 (TokenCut, the released code, here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ..checks import InputError, check_positive, require

BETA2_PAPER = 0.3  # beta^2 of eq. 9 (Achanta et al. 2009; the paper, TokenCut, Sempart)
BETA2_SQUARED = 0.3 ** 2  # 0.09: beta^2 squared again by some later papers; a named variant only
N_THRESHOLDS = 255  # t_k = k/255, k = 0..254 (TokenCut's 255 probability bins)
N_THRESHOLDS_PYSOD = 256  # uint8(255 pred) >= t, t = 0..255: pysodmetrics' curve (a named variant)
_LEVELS = np.arange(256) / 255.0   # the value m / 255 of each 8-bit level


class ImageScores(NamedTuple):
    """Scores of one image (a row of a per-image CSV)."""

    acc: float  # pixel accuracy at 0.5
    iou: float  # IoU at 0.5
    mae: float  # mean |pred - gt|
    fbeta_max: float  # max over the 255 thresholds of this image's F-beta
    fg_ratio: float  # ground-truth foreground fraction, the x-axis of Figs. 6-8


@dataclass(frozen=True, eq=False)
class IouBySize:
    """Mean IoU per ground-truth size bin (the paper's Figs. 6-8)."""

    edges: np.ndarray  # (n_size_bins + 1,) bin edges i / n_size_bins
    counts: np.ndarray  # (n_size_bins,) images per bin, int64
    mean_iou: np.ndarray  # (n_size_bins,) mean IoU per bin, NaN for an empty bin


@dataclass(frozen=True, eq=False)
class SaliencyScores:
    """Dataset-level saliency scores; curves are indexed by threshold k = 0..254 (t = 0..255
    with ``n_thresholds=256``)."""

    acc: float
    iou: float
    max_fbeta: float  # max over thresholds of the image-averaged F-beta curve
    best_threshold: float  # t_k at that max (the first, if tied)
    mae: float
    fmax_per_image: float  # mean over images of each image's own max F-beta (variant)
    n_images: int
    beta2: float
    thresholds: np.ndarray  # (255,) t_k = k / 255, float64 (256: t / 255, foreground level >= t)
    precision_curve: np.ndarray  # (255,) mean per-image precision at t_k
    recall_curve: np.ndarray  # (255,) mean per-image recall at t_k
    fbeta_curve: np.ndarray  # (255,) mean per-image F-beta at t_k
    iou_by_size: IouBySize

    def as_dict(self) -> dict:
        """Plain JSON-ready dict: scalars, the curves as lists, NaN written as None."""
        def listed(a: np.ndarray) -> list:
            return [None if np.isnan(v) else float(v) for v in np.asarray(a, dtype=np.float64)]

        return {
            "acc": self.acc, "iou": self.iou, "max_fbeta": self.max_fbeta, "mae": self.mae,
            "n_images": self.n_images, "best_threshold": self.best_threshold,
            "fmax_per_image": self.fmax_per_image, "beta2": self.beta2,
            "curves": {"thresholds": listed(self.thresholds),
                       "precision": listed(self.precision_curve),
                       "recall": listed(self.recall_curve),
                       "fbeta": listed(self.fbeta_curve)},
            "iou_by_size": {"edges": listed(self.iou_by_size.edges),
                            "counts": [int(c) for c in self.iou_by_size.counts],
                            "mean_iou": listed(self.iou_by_size.mean_iou)},
        }


def _to_numpy(name: str, x) -> np.ndarray:
    """A numpy view of an array or a torch tensor (detached, on the CPU)."""
    if type(x).__module__.startswith("torch"):
        import torch

        require(isinstance(x, torch.Tensor), f"{name} must be a numpy array or a torch.Tensor, "
                                             f"got {type(x).__name__}")
        x = x.detach().cpu()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    require(isinstance(x, np.ndarray), f"{name} must be a numpy array or a torch.Tensor, "
                                       f"got {type(x).__name__}")
    return x


def _check_unit_range(name: str, x: np.ndarray) -> None:
    require(not np.isnan(x).any(), f"{name} contains NaN")
    lo, hi = x.min(), x.max()
    require(lo >= 0 and hi <= 1, f"{name} must lie in [0, 1], got values in [{lo}, {hi}]")


def _prepare(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Validate one (pred, gt) pair; return pred as float32/float64 (or its uint8 levels) and gt > 0.5 as bool."""
    pred, gt = _to_numpy("pred", pred), _to_numpy("gt", gt)
    require(pred.shape == gt.shape, f"pred and gt must have the same shape, "
                                    f"got pred {pred.shape} and gt {gt.shape}")
    require(pred.ndim == 2 and pred.size > 0, f"pred and gt must be non-empty 2-D (H, W) arrays, "
                                              f"got shape {pred.shape}")
    if pred.dtype == np.bool_:
        pred = pred.astype(np.float32)
    elif pred.dtype == np.float16:
        pred = pred.astype(np.float32)
    require(pred.dtype in (np.float32, np.float64, np.uint8),
            f"pred must be a float (or bool) array in [0, 1] or 8-bit levels, got dtype {pred.dtype}")
    if pred.dtype != np.uint8:
        _check_unit_range("pred", pred)
    else:
        require(int(pred.max()) > 1, "pred is a uint8 map holding only 0 and 1: as 8-bit levels that is "
                                     "0 and 1/255, nearly empty; pass it as bool or float, or as 0 and 255")

    if gt.dtype == np.bool_:
        fg = gt
    elif gt.dtype == np.uint8:
        fg = gt > 127  # gt / 255 > 0.5  <=>  gt >= 128
    elif gt.dtype in (np.float16, np.float32, np.float64):
        _check_unit_range("gt", gt)
        fg = gt > 0.5  # DUTS masks are anti-aliased (docs/paper_and_code.md#saliency-metrics)
    else:
        raise InputError(f"gt dtype {gt.dtype} is ambiguous: pass bool, uint8 in 0..255 "
                         f"or float in [0, 1]")
    return pred, fg


def _threshold_levels(pred: np.ndarray) -> np.ndarray:
    """For each pixel of a [0, 1] map, the number of thresholds t_k strictly below it: 0..255.

    ``pred > t_k`` holds exactly when ``k < level``. Equal to
    ``np.searchsorted(t, pred, side="left")`` with t_k = k/255 in pred's dtype, but about 8x
    faster. ceil(255 * pred), rounded in pred's dtype, is never above the level: for
    x <= t_L, round(255 x) <= round(255 t_L) <= L, the last checked for every L in float32
    and float64 by the tests. It can be one below it, when t_L < x by a few ulps; one
    comparison with the exact t_L corrects that.

    Args:
        pred: (H, W) float32 or float64 map in [0, 1].

    Returns:
        (H*W,) intp levels in 0..255.
    """
    x = pred.ravel()
    t = np.append(np.arange(N_THRESHOLDS) / 255, np.inf).astype(x.dtype)  # (256,), t[255] = inf
    level = np.ceil(x * x.dtype.type(255)).astype(np.intp)  # (H*W,) in 0..255
    level += t[level] < x  # one too few: t[level] is still below x
    return level


def _fbeta(precision: np.ndarray, recall: np.ndarray, beta2: float) -> np.ndarray:
    """Eq. 9, F = (1 + beta^2) P R / (beta^2 P + R), and 0 where P = R = 0."""
    num = (1 + beta2) * precision * recall
    den = beta2 * precision + recall
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


class SaliencyMetrics:
    """Streaming accumulator of the saliency metrics over a dataset (Sec. 5.2, eq. 9).

    Memory is constant: running sums of the per-image scores and of the 255-point curves.

    Args:
        beta2: beta^2 of eq. 9; 0.3 in the paper, ``BETA2_SQUARED`` (0.09) for the variant.
        n_size_bins: number of equal ground-truth size bins for :attr:`SaliencyScores.iou_by_size`.
        n_thresholds: 255 (the paper: ``pred > k/255``, k = 0..254) or ``N_THRESHOLDS_PYSOD``
            (256: pysodmetrics' ``uint8(pred * 255) >= t``, t = 0..255); a named variant.
        empty_precision: the precision of a threshold at which nothing is predicted: 1 (TokenCut,
            the paper) or 0 (pysodmetrics, SelfMask); a named variant.
    """

    def __init__(self, *, beta2: float = BETA2_PAPER, n_size_bins: int = 20,
                 n_thresholds: int = N_THRESHOLDS, empty_precision: float = 1.0) -> None:
        check_positive("beta2", beta2)
        require(isinstance(n_size_bins, (int, np.integer)) and n_size_bins >= 1,
                f"n_size_bins must be an integer >= 1, got {n_size_bins!r}")
        require(n_thresholds in (N_THRESHOLDS, N_THRESHOLDS_PYSOD),
                f"n_thresholds must be {N_THRESHOLDS} (pred > k/255) or {N_THRESHOLDS_PYSOD} "
                f"(pysodmetrics' uint8(255 pred) >= t), got {n_thresholds!r}")
        require(empty_precision in (0, 1), f"empty_precision must be 1 (TokenCut) or 0 (pysodmetrics), "
                                           f"got {empty_precision!r}")
        self.beta2 = float(beta2)
        self.n_size_bins = int(n_size_bins)
        self.n_thresholds = int(n_thresholds)
        self.empty_precision = float(empty_precision)
        self.n_images = 0
        self._sum = {"acc": 0.0, "iou": 0.0, "mae": 0.0, "fbeta_max": 0.0}
        self._sum_precision = np.zeros(self.n_thresholds)
        self._sum_recall = np.zeros(self.n_thresholds)
        self._sum_fbeta = np.zeros(self.n_thresholds)
        self._bin_counts = np.zeros(self.n_size_bins, dtype=np.int64)
        self._bin_iou = np.zeros(self.n_size_bins)

    def update(self, pred, gt) -> ImageScores:
        """Add one image and return its scores.

        Args:
            pred: (H, W) float prediction in [0, 1] (numpy or torch; bool is read as {0, 1}),
                or uint8 levels m read as m / 255 (an 8-bit PNG as stored: the same scores as
                the float m / 255, from one histogram).
            gt: (H, W) ground truth: bool, uint8 in 0..255, or float in [0, 1]; foreground is
                ``gt > 0.5`` of the [0, 1] scale (``gt >= 128`` for uint8).

        Returns:
            The image's :class:`ImageScores`.
        """
        pred, fg = _prepare(pred, gt)
        n_pixels = fg.size
        if pred.dtype == np.uint8:
            # 8-bit levels m (an 8-bit PNG as read): m / 255 > t_k exactly when m > k, so m is the
            # level and one histogram of (m, gt) pairs gives every score.
            index = pred.astype(np.intp).ravel()
            index[fg.ravel()] += 256
            hist = np.bincount(index, minlength=512).reshape(2, 256)   # (bg/fg, level)
            n_fg = int(hist[1].sum())
            tp, fp = int(hist[1, 128:].sum()), int(hist[0, 128:].sum())  # m / 255 > 0.5: m >= 128
            mae = float(hist[0] @ _LEVELS + hist[1] @ (1.0 - _LEVELS)) / n_pixels
        else:
            n_fg = int(np.count_nonzero(fg))
            pb = pred > 0.5                                  # binary scores at 0.5
            tp = int(np.count_nonzero(pb & fg))
            fp = int(np.count_nonzero(pb)) - tp
            mae = float(np.abs(pred.astype(np.float64) - fg).mean())
            # TP and FP at every threshold from one histogram of (level, gt) pairs.
            if self.n_thresholds == N_THRESHOLDS:
                level = _threshold_levels(pred)  # (H*W,) in 0..255
            else:   # pysodmetrics' level: 255 pred truncated to uint8, in pred's own precision
                level = (pred.ravel() * pred.dtype.type(255)).astype(np.uint8).astype(np.intp)
            hist = np.bincount(level + 256 * fg.ravel(), minlength=512).reshape(2, 256)  # (bg/fg, level)
        fn = n_fg - tp
        acc = (n_pixels - fp - fn) / n_pixels
        iou = tp / (tp + fp + fn) if tp + fp + fn > 0 else 1.0
        n = self.n_thresholds
        below_all, below_fg = np.cumsum(hist.sum(0)), np.cumsum(hist[1])   # (256,) pixels with level <= j
        if n == N_THRESHOLDS_PYSOD:   # foreground where level >= t: below t is level <= t - 1
            below_all, below_fg = np.append(0, below_all), np.append(0, below_fg)
        above = n_pixels - below_all[:n]  # (n,) pixels predicted foreground at each threshold
        tp_k = n_fg - below_fg[:n]  # (n,) of them, those in the ground truth's foreground
        precision = np.divide(tp_k, above, out=np.full(n, self.empty_precision), where=above > 0)
        recall = tp_k / n_fg if n_fg > 0 else np.ones(n)
        fbeta = _fbeta(precision, recall, self.beta2)

        fg_ratio = n_fg / n_pixels
        size_bin = min(n_fg * self.n_size_bins // n_pixels, self.n_size_bins - 1)  # exact integers
        scores = ImageScores(acc=acc, iou=iou, mae=mae, fbeta_max=float(fbeta.max()),
                             fg_ratio=fg_ratio)

        self.n_images += 1
        for key in self._sum:
            self._sum[key] += getattr(scores, key)
        self._sum_precision += precision
        self._sum_recall += recall
        self._sum_fbeta += fbeta
        self._bin_counts[size_bin] += 1
        self._bin_iou[size_bin] += iou
        return scores

    def update_batch(self, preds, gts) -> list[ImageScores]:
        """Add several images: (B, H, W) or (B, 1, H, W) arrays/tensors, or sequences of (H, W).

        Args:
            preds: B predictions, each as in :meth:`update`.
            gts: B ground truths, each as in :meth:`update`.

        Returns:
            B :class:`ImageScores`, in order.
        """
        def items(name: str, xs) -> Sequence:
            if hasattr(xs, "ndim"):
                require(xs.ndim in (3, 4) and (xs.ndim == 3 or xs.shape[1] == 1),
                        f"{name} must be (B, H, W) or (B, 1, H, W), got shape {tuple(xs.shape)}")
                return xs if xs.ndim == 3 else xs[:, 0]
            require(isinstance(xs, (list, tuple)), f"{name} must be an array, a tensor or a list "
                                                   f"of (H, W) arrays, got {type(xs).__name__}")
            return xs

        preds, gts = items("preds", preds), items("gts", gts)
        require(len(preds) == len(gts), f"preds and gts must hold as many images, "
                                        f"got {len(preds)} and {len(gts)}")
        return [self.update(p, g) for p, g in zip(preds, gts)]

    def merge(self, other: "SaliencyMetrics") -> "SaliencyMetrics":
        """Add the images of ``other`` (e.g. another worker's shard) to this one; returns self."""
        require(isinstance(other, SaliencyMetrics),
                f"can only merge a SaliencyMetrics, got {type(other).__name__}")
        require(other.beta2 == self.beta2 and other.n_size_bins == self.n_size_bins,
                f"cannot merge metrics with beta2={other.beta2}, n_size_bins={other.n_size_bins} "
                f"into beta2={self.beta2}, n_size_bins={self.n_size_bins}")
        require(other.n_thresholds == self.n_thresholds and other.empty_precision == self.empty_precision,
                f"cannot merge metrics with n_thresholds={other.n_thresholds}, empty_precision="
                f"{other.empty_precision} into n_thresholds={self.n_thresholds}, "
                f"empty_precision={self.empty_precision}")
        self.n_images += other.n_images
        for key in self._sum:
            self._sum[key] += other._sum[key]
        self._sum_precision += other._sum_precision
        self._sum_recall += other._sum_recall
        self._sum_fbeta += other._sum_fbeta
        self._bin_counts += other._bin_counts
        self._bin_iou += other._bin_iou
        return self

    def compute(self) -> SaliencyScores:
        """Dataset-level scores of all images added so far.

        Returns:
            :class:`SaliencyScores` with scalars and (255,) curves over t_k = k / 255 ((256,)
            over t / 255 with ``n_thresholds=256``).
        """
        require(self.n_images > 0, "no images to score: call update() before compute()")
        n = self.n_images
        thresholds = np.arange(self.n_thresholds) / 255
        fbeta_curve = self._sum_fbeta / n
        best = int(np.argmax(fbeta_curve))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_iou = np.where(self._bin_counts > 0, self._bin_iou / self._bin_counts, np.nan)
        by_size = IouBySize(edges=np.arange(self.n_size_bins + 1) / self.n_size_bins,
                            counts=self._bin_counts.copy(), mean_iou=mean_iou)
        return SaliencyScores(
            acc=self._sum["acc"] / n, iou=self._sum["iou"] / n,
            max_fbeta=float(fbeta_curve[best]), best_threshold=float(thresholds[best]),
            mae=self._sum["mae"] / n, fmax_per_image=self._sum["fbeta_max"] / n, n_images=n,
            beta2=self.beta2, thresholds=thresholds, precision_curve=self._sum_precision / n,
            recall_curve=self._sum_recall / n, fbeta_curve=fbeta_curve, iou_by_size=by_size)
