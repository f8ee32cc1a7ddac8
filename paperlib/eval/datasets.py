"""Scoring a method on a saliency dataset: Table 1's metrics, raw and refined, in one pass.

    evaluate_dataset(dataset, method, refines=...)   refinement -> DatasetEval
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from ..checks import check_choice, check_output_dir, dataset_folder, require
from ..images import write_mask_png
from ..methods.base import REFINEMENTS, Method
from ..methods.refined import refine_prediction
from ..refine.masks import RefineSettings, erased, warn_erased
from .metrics import SaliencyMetrics, SaliencyScores


@dataclass(frozen=True)
class DatasetEval:
    """One method's scores on one dataset, with per-image rows for the figures."""

    scores: SaliencyScores
    rows: list[dict]
    method: str
    refine: str
    seconds: float = 0.0        # the method's predictions plus this refinement, summed over the images

    @property
    def images_per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("nan")


def evaluate_dataset(dataset, method: Method, *, refines: Sequence[str] = ("none",),
                     settings: RefineSettings | None = None, limit: int | None = None,
                     save_masks: str | Path | None = None, progress: bool = True
                     ) -> dict[str, DatasetEval]:
    """Score a method on a saliency dataset (Table 1 metrics at the ground truth's resolution).

    Each image is predicted once and every refinement in ``refines`` is scored from that
    prediction, so ``refines=("none", "gf", "bf")`` gives a Table 5 block in one pass.

    Args:
        dataset: a :class:`paperlib.data.saliency.SaliencyDataset` (or any sequence of samples with
            ``stem``, ``image`` (H, W, 3) uint8 and ``mask`` (H, W) in [0, 1]).
        method: from :func:`paperlib.methods.registry.build_method`.
        refines: any of 'none', 'gf', 'bf'.
        settings: guided-filter / bilateral-solver parameters (default: the paper's).
        limit: score only the first ``limit`` images.
        save_masks: folder for the predicted masks (8-bit PNGs named by stem); with several
            refinements, one sub-folder per refinement.

    Returns:
        refinement -> DatasetEval. Each row holds the image's scores and, for a refinement,
        ``erased`` (the refinement wiped the prediction's object out: warned about once per
        refinement, :func:`paperlib.refine.masks.warn_erased`); ``seconds`` is the time of the
        predictions plus that refinement (reading the files not included).
    """
    refines = tuple(dict.fromkeys(refines))
    require(len(refines) > 0, "refines must name at least one of none, gf, bf")
    for r in refines:
        check_choice("refine", r, REFINEMENTS)
    require(limit is None or limit >= 1, f"limit must be >= 1, got {limit}")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    require(n > 0, "the dataset is empty")
    if save_masks is not None:   # never into (or around) the dataset being scored, nor what the method reads
        folders = getattr(dataset, "folders", None)
        inputs = {} if folders is None else {
            "the dataset": dataset_folder(folders.images_dir, folders.masks_dir),
            "the dataset's images": folders.images_dir, "the dataset's masks": folders.masks_dir}
        inputs["--masks"] = getattr(method, "folder", None)        # a folder of another method's masks
        save_masks = check_output_dir("--save-masks", save_masks, inputs=inputs)
    metrics = {r: SaliencyMetrics() for r in refines}
    rows: dict[str, list[dict]] = {r: [] for r in refines}
    seconds = dict.fromkeys(refines, 0.0)
    # Methods with a batch protocol (Sempart: polarity per batch, BatchNorm in train mode, the
    # released code's centre crop) see the images in chunks of their batch size, in order.
    step = method.batch_size
    bar = tqdm(total=n, desc=f"eval {method.name}", disable=not progress, unit="img")
    for start in range(0, n, step):
        samples = [dataset[i] for i in range(start, min(n, start + step))]
        views = [method.view(s.image, s.mask) for s in samples]
        frames = [(s.stem, v.image, v.mask) for s, v in zip(samples, views)]
        started = time.perf_counter()
        preds = method.predict_batch([image for _, image, _ in frames],
                                     image_ids=[stem for stem, _, _ in frames])
        predicting = time.perf_counter() - started
        for r in refines:
            seconds[r] += predicting
        for (stem, image, target), pred in zip(frames, preds):
            for r in refines:
                started = time.perf_counter()
                mask = refine_prediction(image, pred, refine=r, settings=settings)
                seconds[r] += time.perf_counter() - started
                scores = metrics[r].update(mask, target)
                extra = {} if r == "none" else {"erased": erased(pred.mask, mask)}
                rows[r].append({"stem": stem, **scores._asdict(), **extra})
                if save_masks is not None:
                    folder = Path(save_masks) / r if len(refines) > 1 else Path(save_masks)
                    write_mask_png(folder / f"{stem}.png", mask)
        bar.update(len(samples))
    bar.close()
    for r in refines:
        if r != "none":
            warn_erased(r, [row["stem"] for row in rows[r] if row["erased"]], len(rows[r]))
    return {r: DatasetEval(scores=metrics[r].compute(), rows=rows[r], method=method.name, refine=r,
                           seconds=seconds[r]) for r in refines}

