"""``paperlib segment``: masks and overlays for your own images.

    collect_images(paths)                      files and folders -> image files, sorted
    overlay(image, mask)                       side-by-side picture: image | mask tinted + outline
    segment_paths(paths, out, method, ...)     <stem>.png masks, overlays/<stem>.jpg pictures
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.ndimage import binary_erosion
from tqdm.auto import tqdm

from ..checks import InputError, check_choice, check_output_dir, require
from ..images import IMAGE_SUFFIXES, read_image, write_image, write_mask_png
from ..refine.masks import RefineSettings, erased, warn_erased
from .base import REFINEMENTS, Method
from .refined import refine_prediction

# Sub-folder of a segment output for the overlay pictures: the output itself holds only masks.
OVERLAYS = "overlays"


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
    erased: tuple[str, ...] = ()     # stems whose object the refinement wiped out (warned about)


def segment_paths(paths: Sequence[str | Path], out_dir: str | Path, method: Method, *,
                  refine: str = "gf", settings: RefineSettings | None = None,
                  overlays: bool = True, progress: bool = True) -> SegmentReport:
    """Segment images: ``out/<stem>.png`` (8-bit mask at the image's size), ``out/overlays/<stem>.jpg``.

    The overlays sit in their own sub-folder, so ``out`` holds nothing but masks and can be given
    as it is to ``paperlib refine --masks`` or ``eval-masks --pred``.
    """
    check_choice("refine", refine, REFINEMENTS)
    files = collect_images(paths)
    out_dir = check_output_dir("--out", out_dir, inputs={f"input {i + 1}": p for i, p in enumerate(paths)})
    # Methods with a batch protocol (Sempart) see the files in chunks of their batch size.
    step = method.batch_size
    bar = tqdm(total=len(files), desc=f"segment ({method.name}, refine={refine})",
               disable=not progress, unit="img")
    wiped = []
    for start in range(0, len(files), step):
        chunk = files[start:start + step]
        images = [read_image(path) for path in chunk]
        try:
            preds = method.predict_batch(images, image_ids=[path.stem for path in chunk])
        except InputError as err:           # an image too small for the backbone, say: name it
            where = str(chunk[0]) if len(chunk) == 1 else f"{chunk[0]} (or another of {len(chunk)} in its batch)"
            raise InputError(f"{where}: {err}") from None
        for path, image, pred in zip(chunk, images, preds):
            mask = refine_prediction(image, pred, refine=refine, settings=settings)
            if refine != "none" and erased(pred.mask, mask):
                wiped.append(path.stem)
            write_mask_png(out_dir / f"{path.stem}.png", mask)
            if overlays:
                write_image(out_dir / OVERLAYS / f"{path.stem}.jpg", overlay(image, mask))
        bar.update(len(chunk))
    bar.close()
    warn_erased(refine, wiped, len(files))
    return SegmentReport(n_images=len(files), out_dir=out_dir, refine=refine, erased=tuple(wiped))
