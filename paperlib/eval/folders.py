"""Evaluate folders of predicted masks against ground truth (``paperlib eval-masks``).

Predictions and ground truth are matched by file stem. A prediction of another size than its
ground truth is resized bilinearly to it (and counted). A prediction without ground truth is an
error; ground truth without a prediction is an error unless ``allow_missing`` (then the
intersection is evaluated and the number left out is reported).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import InputError, check_dir, require
from ..images import atomic_path, list_images, read_mask_levels, resize_mask
from .metrics import SaliencyMetrics, SaliencyScores


@dataclass(frozen=True)
class FolderEval:
    """Scores of one folder of predictions, with what was matched and resized."""

    scores: SaliencyScores
    n_images: int
    n_resized: int      # predictions resized to their ground truth's size
    n_missing: int      # ground-truth masks without a prediction (only with allow_missing)

    def summary(self) -> dict:
        """The JSON summary: acc, iou, max_fbeta, mae, n_images, plus the bookkeeping counts."""
        out = self.scores.as_dict()
        out.update(n_images=self.n_images, n_resized=self.n_resized, n_missing=self.n_missing)
        return out


def match_stems(pred: dict[str, Path], gt: dict[str, Path], *, pred_dir, gt_dir,
                allow_missing: bool) -> tuple[list[str], int]:
    """Stems to evaluate and the number of ground-truth masks left without a prediction."""
    require(len(gt) > 0, f"--gt: no mask images found in {gt_dir}")
    require(len(pred) > 0, f"--pred: no mask images found in {pred_dir}")
    extra = sorted(set(pred) - set(gt))
    if extra:
        raise InputError(f"{pred[extra[0]]}: no ground truth with stem {extra[0]!r} in {gt_dir} "
                         f"({len(extra)} prediction(s) without ground truth)")
    missing = sorted(set(gt) - set(pred))
    if missing and not allow_missing:
        raise InputError(f"{gt[missing[0]]}: no prediction with stem {missing[0]!r} in {pred_dir} "
                         f"({len(missing)} of {len(gt)} missing; pass --allow-missing to evaluate "
                         f"the {len(gt) - len(missing)} that match)")
    return sorted(set(pred) & set(gt)), len(missing)


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, *, allow_missing: bool = False,
                     per_image_csv: str | Path | None = None, progress: bool = True) -> FolderEval:
    """Score every prediction in ``pred_dir`` against its mask in ``gt_dir``.

    The metrics are those of docs/paper_and_code.md#saliency-metrics.
    """
    from tqdm.auto import tqdm

    pred = list_images(check_dir("--pred", pred_dir))
    gt = list_images(check_dir("--gt", gt_dir))
    stems, n_missing = match_stems(pred, gt, pred_dir=pred_dir, gt_dir=gt_dir,
                                   allow_missing=allow_missing)
    metrics = SaliencyMetrics()
    rows, n_resized = [], 0
    for stem in tqdm(stems, desc="evaluate", disable=not progress, unit="img"):
        target = read_mask_levels(gt[stem])        # 8-bit files as their levels: one histogram each
        p = read_mask_levels(pred[stem])
        if p.shape != target.shape:
            p = resize_mask(p / np.float32(255) if p.dtype == np.uint8 else p, target.shape)
            n_resized += 1
        try:
            image_scores = metrics.update(p if p.dtype == np.uint8 else p.clip(0.0, 1.0), target)
        except InputError as err:           # a NaN map, say: name the file it came from
            raise InputError(f"{gt[stem] if str(err).startswith('gt') else pred[stem]}: {err}") from None
        rows.append({"stem": stem, **image_scores._asdict()})
    if per_image_csv is not None:
        write_csv(per_image_csv, rows)
    return FolderEval(scores=metrics.compute(), n_images=len(stems), n_resized=n_resized,
                      n_missing=n_missing)


def write_csv(path: str | Path, rows: list[dict]) -> None:
    """Write rows to a CSV file, atomically. The columns are every key of the rows, in order of
    first appearance; a row without one leaves its cell empty (e.g. ``erased`` exists for
    refined rows only)."""
    require(len(rows) > 0, f"{path}: nothing to write")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: str | Path, data: dict) -> None:
    """Write a dict as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
