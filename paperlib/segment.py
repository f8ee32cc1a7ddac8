"""``paperlib segment``: masks and overlays for your own images, and ``paperlib eval`` on a dataset.

    collect_images(paths)                      files and folders -> image files, sorted
    overlay(image, mask)                       side-by-side picture: image | mask tinted + outline
    segment_paths(paths, out, method, ...)     <stem>.png masks and <stem>_overlay.jpg pictures
    evaluate_dataset(dataset, method, ...)     Table 1 metrics of one method on one dataset
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .images import IMAGE_SUFFIXES, read_image, write_image, write_mask_png
from .metrics import SaliencyMetrics, SaliencyScores
from .methods import Method, refine_prediction
from .refine import RefineSettings
from .validation import InputError, require


def collect_images(paths: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (not recursively) in the given folders."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not p.name.startswith("."))
            require(len(found) > 0, f"{path}: no images in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems and stems[f.stem] != f:
            raise InputError(f"{f}: same stem as {stems[f.stem]}; outputs are named by stem")
        stems[f.stem] = f
    return list(dict.fromkeys(files))


def overlay(image: np.ndarray, mask: np.ndarray, *, color=(255, 40, 40), alpha: float = 0.45
            ) -> np.ndarray:
    """The image beside a copy with the mask (> 0.5) tinted and outlined; uint8 (H, 2W + 8, 3)."""
    from scipy.ndimage import binary_erosion

    fg = mask > 0.5
    tinted = image.astype(np.float32)
    tinted[fg] = (1 - alpha) * tinted[fg] + alpha * np.asarray(color, np.float32)
    edge = fg & ~binary_erosion(fg, iterations=2, border_value=0)
    tinted[edge] = color
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([image, gap, tinted.clip(0, 255).astype(np.uint8)], axis=1)


@dataclass(frozen=True)
class SegmentReport:
    """What :func:`segment_paths` wrote."""

    n_images: int
    out_dir: Path
    refine: str


def segment_paths(paths: Sequence[str | Path], out_dir: str | Path, method: Method, *,
                  refine: str = "gf", settings: RefineSettings | None = None,
                  overlays: bool = True, progress: bool = True) -> SegmentReport:
    """Segment images: ``<stem>.png`` (8-bit mask at the image's size) and an overlay each."""
    from tqdm.auto import tqdm

    from .methods import REFINEMENTS
    from .validation import check_choice

    check_choice("refine", refine, REFINEMENTS)
    files = collect_images(paths)
    out_dir = Path(out_dir)
    # Methods with a batch protocol (Sempart) see the files in chunks of their batch size.
    batched = hasattr(method, "predict_batch")
    step = getattr(getattr(method, "protocol", None), "batch_size", 1) if batched else 1
    bar = tqdm(total=len(files), desc=f"segment ({method.name}, refine={refine})",
               disable=not progress, unit="img")
    for start in range(0, len(files), step):
        chunk = files[start:start + step]
        images = [read_image(path) for path in chunk]
        preds = (method.predict_batch(images) if batched
                 else [method.predict(images[0], image_id=chunk[0].stem)])
        for path, image, pred in zip(chunk, images, preds):
            mask = refine_prediction(image, pred, refine=refine, settings=settings)
            write_mask_png(out_dir / f"{path.stem}.png", mask)
            if overlays:
                write_image(out_dir / f"{path.stem}_overlay.jpg", overlay(image, mask))
        bar.update(len(chunk))
    bar.close()
    return SegmentReport(n_images=len(files), out_dir=out_dir, refine=refine)


@dataclass(frozen=True)
class DatasetEval:
    """One method's scores on one dataset, with per-image rows for the figures."""

    scores: SaliencyScores
    rows: list[dict]
    method: str
    refine: str


def evaluate_dataset(dataset, method: Method, *, refines: Sequence[str] = ("none",),
                     settings: RefineSettings | None = None, limit: int | None = None,
                     save_masks: str | Path | None = None, progress: bool = True
                     ) -> dict[str, DatasetEval]:
    """Score a method on a saliency dataset (Table 1 metrics at the ground truth's resolution).

    Each image is predicted once and every refinement in ``refines`` is scored from that
    prediction, so ``refines=("none", "gf", "bf")`` gives a Table 5 block in one pass.

    Args:
        dataset: a :class:`paperlib.data.SaliencyDataset` (or any sequence of samples with
            ``stem``, ``image`` (H, W, 3) uint8 and ``mask`` (H, W) in [0, 1]).
        method: from :func:`paperlib.methods.build_method`.
        refines: any of 'none', 'gf', 'bf'.
        settings: guided-filter / bilateral-solver parameters (default: the paper's).
        limit: score only the first ``limit`` images.
        save_masks: folder for the predicted masks (8-bit PNGs named by stem); with several
            refinements, one sub-folder per refinement.

    Returns:
        refinement -> DatasetEval.
    """
    from tqdm.auto import tqdm

    from .methods import REFINEMENTS
    from .validation import check_choice

    refines = tuple(dict.fromkeys(refines))
    require(len(refines) > 0, "refines must name at least one of none, gf, bf")
    for r in refines:
        check_choice("refine", r, REFINEMENTS)
    require(limit is None or limit >= 1, f"limit must be >= 1, got {limit}")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    require(n > 0, "the dataset is empty")
    metrics = {r: SaliencyMetrics() for r in refines}
    rows: dict[str, list[dict]] = {r: [] for r in refines}
    # Methods with a batch protocol (Sempart: polarity per batch, BatchNorm in train mode, the
    # released code's centre crop) see the images in chunks of their batch size, in order.
    batched = hasattr(method, "predict_batch") and hasattr(method, "view")
    step = getattr(getattr(method, "protocol", None), "batch_size", 1) if batched else 1
    bar = tqdm(total=n, desc=f"eval {method.name}", disable=not progress, unit="img")
    for start in range(0, n, step):
        samples = [dataset[i] for i in range(start, min(n, start + step))]
        if batched:
            views = [method.view(s.image, s.mask) for s in samples]
            frames = [(s.stem, v.image, v.mask) for s, v in zip(samples, views)]
            preds = method.predict_batch([image for _, image, _ in frames])
        else:
            frames = [(s.stem, s.image, s.mask) for s in samples]
            preds = [method.predict(s.image, image_id=s.stem) for s in samples]
        for (stem, image, target), pred in zip(frames, preds):
            for r in refines:
                mask = refine_prediction(image, pred, refine=r, settings=settings)
                scores = metrics[r].update(mask, target)
                rows[r].append({"stem": stem, **scores._asdict()})
                if save_masks is not None:
                    folder = Path(save_masks) / r if len(refines) > 1 else Path(save_masks)
                    write_mask_png(folder / f"{stem}.png", mask)
        bar.update(len(samples))
    bar.close()
    return {r: DatasetEval(scores=metrics[r].compute(), rows=rows[r], method=method.name, refine=r)
            for r in refines}

