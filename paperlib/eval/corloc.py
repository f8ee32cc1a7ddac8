"""Single-object discovery: box IoU and CorLoc (a method's box is :mod:`paperlib.methods.boxes`).

Paper section 5.2 ("Evaluation"): the predicted mask is split into connected parts, one part's
bounding box is the prediction, and an image counts as correctly localised (a hit) when that
box has IoU >= 0.5 with a ground-truth box; CorLoc = hits / images. The details
(docs/paper_and_code.md#single-object-discovery) follow LOST/TokenCut's evaluation code:

- Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates: pixel column ``c`` spans
  ``[c, c + 1)``, so a box covering columns 0..W-1 is ``(0, ., W, .)`` and its width is
  ``x1 - x0`` (no "+1").
- IoU = intersection / union with areas ``(x1 - x0) * (y1 - y0)``, as LOST's ``bbox_iou``
  (whose 1e-7 guard vanishes in its float32 arithmetic for boxes over 2 px); here in float64,
  and 0 when the union is empty.
- A hit is IoU >= 0.5 with *any* ground-truth box; no predicted box, or an image without
  ground-truth boxes, is a miss and still counts as an image (TokenCut counts every image).

Ground-truth boxes come from :mod:`paperlib.data.boxes` (VOC, COCO20K, folders) as
:class:`~paperlib.data.boxes.CorLocItem` rows.

Public API:
    box_iou(boxes_a, boxes_b), best_iou(pred_box, gt_boxes)   IoU of xyxy boxes.
    CorLoc                                                    running hits / images.
    corloc_evaluate(dataset, predict_box_fn) -> CorLocResult  score a box predictor (CorLocRow per image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..checks import require
from ..data.boxes import CorLocItem
from ..images import read_image
from ..methods.boxes import as_numpy

IOU_THRESHOLD = 0.5  # CorLoc's hit threshold (LOST, TokenCut, paper section 5.2)


# ----------------------------------------------------------------------------- boxes

def _check_boxes(name: str, boxes) -> np.ndarray:
    boxes = as_numpy(boxes).astype(np.float64)
    require(boxes.ndim in (1, 2) and boxes.shape[-1] == 4,
            f"{name} must be (4,) or (K, 4) xyxy boxes, got shape {boxes.shape}")
    require(bool(np.isfinite(boxes).all()), f"{name} holds a non-finite coordinate")
    ok = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
    require(bool(np.all(ok)), f"{name} must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0 "
                              f"(xywh boxes must be converted first)")
    return boxes


def box_iou(boxes_a, boxes_b) -> np.ndarray | float:
    """Intersection over union of xyxy boxes, every box of ``a`` with every box of ``b``.

    docs/paper_and_code.md#single-object-discovery; continuous coordinates, areas
    ``(x1 - x0) * (y1 - y0)`` without "+1", as LOST/TokenCut's ``bbox_iou``. An empty union gives 0.

    Args:
        boxes_a: (M, 4) or (4,) boxes.
        boxes_b: (K, 4) or (4,) boxes.

    Returns:
        (M, K) float64 array; a 1-D input drops its axis ((K,), (M,), or a float for two boxes).
    """
    a, b = _check_boxes("boxes_a", boxes_a), _check_boxes("boxes_b", boxes_b)
    A, B = a.reshape(-1, 1, 4), b.reshape(1, -1, 4)  # (M, 1, 4), (1, K, 4)
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0.0, None)  # (M, K)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])  # (M, 1)
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])  # (1, K)
    union = area_a + area_b - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # (M, K)
    if a.ndim == 1:
        iou = iou[0]
    if b.ndim == 1:
        iou = iou[..., 0]
    return float(iou) if iou.ndim == 0 else iou


def best_iou(pred_box, gt_boxes) -> float:
    """The largest IoU of a predicted box with any ground-truth box; 0 without a box on either side.

    Args:
        pred_box: (4,) xyxy box or None.
        gt_boxes: (K, 4) xyxy boxes, K may be 0.

    Returns:
        A float in [0, 1].
    """
    gt = as_numpy(gt_boxes)
    if pred_box is None or gt.size == 0:
        return 0.0
    return float(np.max(box_iou(pred_box, gt.reshape(-1, 4))))


# ----------------------------------------------------------------------------- CorLoc

class CorLoc:
    """Running CorLoc: ``update`` once per image, ``value`` = hits / images.

    Paper section 5.2: a hit is IoU >= ``iou_threshold`` (0.5) with any ground-truth box; an
    image without a predicted box, or without ground-truth boxes, is a miss.
    """

    def __init__(self, *, iou_threshold: float = IOU_THRESHOLD):
        require(0.0 < iou_threshold <= 1.0, f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
        self.iou_threshold = float(iou_threshold)
        self.n_images = 0
        self.n_hits = 0

    def update(self, pred_box, gt_boxes) -> bool:
        """Score one image. ``pred_box`` (4,) or None, ``gt_boxes`` (K, 4); returns the hit."""
        hit = pred_box is not None and best_iou(pred_box, gt_boxes) >= self.iou_threshold
        self.n_images += 1
        self.n_hits += int(hit)
        return hit

    def merge(self, other: "CorLoc") -> "CorLoc":
        """Add another accumulator's counts (e.g. from another worker) to this one; returns self."""
        require(isinstance(other, CorLoc) and other.iou_threshold == self.iou_threshold,
                "merge needs another CorLoc with the same iou_threshold")
        self.n_images += other.n_images
        self.n_hits += other.n_hits
        return self

    @property
    def value(self) -> float:
        """hits / images in [0, 1]; NaN before the first update."""
        return self.n_hits / self.n_images if self.n_images else math.nan


class CorLocRow(NamedTuple):
    """One image's outcome: the predicted box (a 4-tuple or None), its best IoU, the hit."""

    image_id: str
    pred_box: tuple[float, float, float, float] | None
    best_iou: float
    hit: bool
    n_gt: int


@dataclass(frozen=True)
class CorLocResult:
    """CorLoc of a dataset (in [0, 1]; the paper's tables print 100x) and its per-image rows."""

    corloc: float
    n_images: int
    n_hits: int
    rows: tuple[CorLocRow, ...]


def _check_pred(box, image_id: str, shape: tuple[int, ...]) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    arr = as_numpy(box).astype(np.float64)
    require(arr.shape == (4,) and bool(np.isfinite(arr).all()) and arr[2] >= arr[0] and arr[3] >= arr[1],
            f"predict_box_fn returned {box!r} for image {image_id} ({shape[0]}x{shape[1]}); "
            f"expected None or an xyxy box (x0, y0, x1, y1) with x1 >= x0, y1 >= y0")
    return tuple(float(v) for v in arr)


def corloc_evaluate(dataset: Sequence[CorLocItem], predict_box_fn: Callable[[np.ndarray, str], object], *,
                    progress: bool = True, limit: int | None = None,
                    iou_threshold: float = IOU_THRESHOLD, batch_size: int = 1,
                    predict_batch_fn: Callable[[list, list], list] | None = None) -> CorLocResult:
    """Run a box predictor over a CorLoc dataset and score it.

    Paper section 5.2, Tables 2 and 4. Images are read as RGB uint8 at their own size; the
    predictor may return any xyxy box in that image's pixels (e.g. from :func:`mask_to_box`).

    Args:
        dataset: ``len`` and ``dataset[i] -> CorLocItem`` (:func:`~paperlib.data.boxes.open_corloc_dataset`).
        predict_box_fn: ``(image (H, W, 3) uint8, image_id) -> (4,) box or None`` (may be
            None when ``predict_batch_fn`` is given).
        progress: show a tqdm progress bar.
        limit: score only the first ``limit`` images (a quick look; not the paper's protocol).
        iou_threshold: the hit threshold (0.5 in the paper).
        batch_size, predict_batch_fn: for methods whose prediction depends on the batch (the
            Sempart protocol's polarity and BatchNorm rules): ``predict_batch_fn(images, ids) ->
            boxes`` is called on consecutive chunks of ``batch_size`` images instead of
            ``predict_box_fn`` on each.

    Returns:
        :class:`CorLocResult` with ``corloc`` in [0, 1] and one :class:`CorLocRow` per image.
    """
    from tqdm.auto import tqdm

    require(callable(predict_box_fn) or callable(predict_batch_fn),
            "predict_box_fn must be callable (image, image_id) -> box or None")
    n = len(dataset)
    if limit is not None:
        require(isinstance(limit, int) and limit >= 1, f"limit must be an integer >= 1, got {limit!r}")
        n = min(n, limit)
    require(n > 0, "the dataset holds no images")
    require(isinstance(batch_size, int) and batch_size >= 1, f"batch_size must be an int >= 1, got {batch_size!r}")
    step = batch_size if predict_batch_fn is not None else 1
    acc = CorLoc(iou_threshold=iou_threshold)
    rows = []
    bar = tqdm(total=n, desc="corloc", disable=not progress, unit="img")
    for start in range(0, n, step):
        items = [dataset[i] for i in range(start, min(n, start + step))]
        images = [read_image(item.image_path) for item in items]
        if predict_batch_fn is None:
            boxes = [predict_box_fn(images[0], items[0].image_id)]
        else:
            boxes = list(predict_batch_fn(images, [item.image_id for item in items]))
            require(len(boxes) == len(items), f"predict_batch_fn returned {len(boxes)} boxes for "
                                              f"{len(items)} images")
        for item, image, raw in zip(items, images, boxes):
            box = _check_pred(raw, item.image_id, image.shape)
            hit = acc.update(box, item.boxes)
            rows.append(CorLocRow(item.image_id, box, best_iou(box, item.boxes), hit, len(item.boxes)))
        bar.update(len(items))
    bar.close()
    return CorLocResult(corloc=acc.value, n_images=acc.n_images, n_hits=acc.n_hits, rows=tuple(rows))
