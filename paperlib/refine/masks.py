"""Trick 1 as a tool: refine any method's masks with the guided filter (or the bilateral solver).

The guided filter runs at each image's own resolution with the paper's settings: the guide is
the mean of the image's R, G, B in [0, 1], and radius, eps and border rule default to
:data:`paperlib.refine.settings.PAPER_GF` (radius 9, a 19 x 19 window; eps 1e-3; windows
truncated at the borders). A mask of another size than its image is first resized bilinearly
to the image. Outputs are clipped to [0, 1]. The filter is
:func:`paperlib.refine.gf_image.guided_filter_image` (float32, the compiled kernel or OpenCV's
box filter; no torch); photos from a megapixel up are filtered in row strips on as many threads
as OpenCV is allowed (``cv2.setNumThreads``).

    refine_mask(image, mask, ...)            one image, numpy in and out
    refine_folder(images, masks, out, ...)   a folder of masks, PNGs out, a report back
    erased(before, after) -> bool            did a refinement wipe the mask's object out?
    warn_erased(method, stems, total)        say so, once per run

Where each refinement pays (README, "Where does the guided filter pay?"): on soft coarse masks the
bilateral solver pulls small objects below 0.5 until they vanish, where the guided filter keeps
them; every command that refines counts the images where that happened and warns.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..checks import InputError, check_choice, check_dir, check_output_dir, require
from ..images import list_images, read_image, read_mask, resize_mask, write_mask_png
from .bilateral_solver import PRESETS, bilateral_solve
from .gf_image import guided_filter_image
from .settings import PAPER_GF, GuidedFilterSettings

METHODS = ("gf", "bf")
NAMES = {"gf": "the guided filter (gf)", "bf": "the bilateral solver (bf)"}

# A refinement erases a mask's object when less than this share of its foreground (pixels >= 0.5,
# counted as a share of the image, so sizes may differ) is left after it.
ERASED_SHARE = 0.1


def erased(before: np.ndarray, after: np.ndarray) -> bool:
    """True when ``before`` has a foreground (>= 0.5) and under :data:`ERASED_SHARE` of its
    share of the image is left in ``after`` (either may be at any size)."""
    before, after = np.asarray(before), np.asarray(after)
    share = np.count_nonzero(before >= 0.5) / max(before.size, 1)     # counted: a mean of bools
    return share > 0 and np.count_nonzero(after >= 0.5) / max(after.size, 1) < ERASED_SHARE * share


def warn_erased(method: str, stems: list[str], total: int) -> None:
    """One warning for a run where ``method`` erased the object of ``stems`` (of ``total`` images)."""
    if not stems:
        return
    shown = ", ".join(stems[:3]) + (", ..." if len(stems) > 3 else "")
    advice = ("; the guided filter (gf) keeps small soft objects (README: Where does the guided filter pay?)"
              if method == "bf" else "")
    warnings.warn(f"{NAMES.get(method, method)} left under {ERASED_SHARE:.0%} of the mask's foreground "
                  f"on {len(stems)} of {total} image(s) ({shown}){advice}", stacklevel=2)


@dataclass(frozen=True)
class RefineSettings:
    """How masks are refined. The guided filter's fields default to :data:`PAPER_GF`."""

    method: str = "gf"          # "gf": guided filter (trick 1); "bf": fast bilateral solver
    radius: int = PAPER_GF.radius   # the paper's guided filter: reasons in GuidedFilterSettings
    eps: float = PAPER_GF.eps
    border: str = PAPER_GF.border
    bs_preset: str = "tokencut"  # bilateral solver preset: TokenCut's sigma 16/16/8, lambda 256

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        # Building the filter's settings applies its rules (radius, eps, border), even for "bf".
        GuidedFilterSettings(radius=self.radius, eps=self.eps, border=self.border)

    @property
    def gf(self) -> GuidedFilterSettings:
        """The guided filter's part of these settings (validated by its constructor)."""
        return GuidedFilterSettings(radius=self.radius, eps=self.eps, border=self.border)


def refine_mask(image: np.ndarray, mask: np.ndarray, settings: RefineSettings = RefineSettings()
                ) -> np.ndarray:
    """Refine one soft mask with its image as guide (paper Sec. 4, "Guided Filtering").

    Args:
        image: RGB uint8 (H, W, 3).
        mask: float (h, w) in [0, 1]; resized bilinearly to (H, W) when h, w differ.
        settings: method and its parameters.

    Returns:
        float32 (H, W), clipped to [0, 1].
    """
    image = np.asarray(image)
    require(image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8,
            f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    mask = np.asarray(mask, dtype=np.float32)
    require(mask.ndim == 2, f"mask must be 2-D (H, W), got shape {mask.shape}")
    require(bool(np.isfinite(mask).all()), "mask has non-finite values")
    height, width = image.shape[:2]
    mask = resize_mask(mask, (height, width))
    if settings.method == "gf":
        out = _guided(image, mask, settings)
    else:
        out = bilateral_solve(image, mask, params=PRESETS[settings.bs_preset]).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


# Pixels filtered at once. Larger images go through in row strips, each with a 2r-row halo on
# both sides: an output pixel depends on inputs at most 2r rows away (the mean of a and b over
# a window of windows), so the strips give the whole-image result, in bounded memory (the
# filter holds four to eight float32 copies of what it filters: 32-64 MiB a strip, where a whole
# 12000 x 9000 photo would take 3.5 GB).
TILE_PIXELS = 1 << 21
# Images from this size up are cut into as many strips as OpenCV may use threads
# (cv2.getNumThreads(); one thread: one strip per tile) and filtered side by side: the
# compiled filter and OpenCV release the GIL. A strip keeps at least 8r rows, so that its halo
# adds at most half again.
PARALLEL_PIXELS = 1 << 20
# The paper's guide as one matrix: (R + G + B) / 3 / 255 (cv2.transform: 30x faster than a NumPy
# mean over the colour axis).
_GRAY_MEAN = np.full((1, 3), 1 / 765, np.float32)


def _guided(image: np.ndarray, mask: np.ndarray, settings: RefineSettings, *,
            tile_pixels: int = TILE_PIXELS, threads: int | None = None) -> np.ndarray:
    gf = settings.gf
    H, W = mask.shape
    halo = 2 * gf.radius
    rows = max(1, tile_pixels // W)
    threads = max(1, cv2.getNumThreads() if threads is None else threads)
    if threads > 1 and H * W >= PARALLEL_PIXELS:
        rows = min(rows, max(4 * halo, -(-H // threads)))

    def strip(top: int) -> np.ndarray:
        lo, hi = max(0, top - halo), min(H, top + rows + halo)
        # The paper's guide: R, G, B rescaled to [0, 1], then averaged (Sec. 5.1).
        guide = cv2.transform(image[lo:hi].astype(np.float32), _GRAY_MEAN)          # (h, W)
        q = guided_filter_image(guide, mask[lo:hi], radius=gf.radius, eps=gf.eps, border=gf.border)
        return q[top - lo:top - lo + rows]

    tops = range(0, H, rows)
    if len(tops) == 1:      # one strip covers the image: the filter's own result, no copy
        return strip(0)
    out = np.empty((H, W), np.float32)
    if threads == 1:
        for top in tops:
            out[top:top + rows] = strip(top)
        return out
    with ThreadPoolExecutor(min(threads, len(tops))) as pool:
        for top, q in zip(tops, pool.map(strip, tops)):
            out[top:top + rows] = q
    return out


@dataclass
class RefineReport:
    """What :func:`refine_folder` did."""

    n_written: int = 0
    n_resized: int = 0                   # masks whose size differed from their image's
    unused_images: int = 0               # images in the folder without a mask (ignored)
    out_dir: Path | None = None
    stems: list[str] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)   # stems whose object the refinement wiped out


def refine_folder(images_dir: str | Path, masks_dir: str | Path, out_dir: str | Path,
                  settings: RefineSettings = RefineSettings(), *, progress: bool = True
                  ) -> RefineReport:
    """Refine every mask in ``masks_dir`` with its image (matched by stem) from ``images_dir``.

    Writes ``out_dir/<stem>.png`` (8-bit, the image's size) for each mask. A mask without an
    image is an error; images without a mask are counted and ignored. Masks whose object the
    refinement erased (:func:`erased`) are listed in the report and warned about once.
    """
    from tqdm.auto import tqdm

    images = list_images(check_dir("--images", images_dir))
    masks = list_images(check_dir("--masks", masks_dir))
    require(len(masks) > 0, f"--masks: no mask images found in {masks_dir}")
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise InputError(f"{Path(masks_dir) / masks[orphans[0]].name}: no image with stem "
                         f"{orphans[0]!r} in {images_dir} ({len(orphans)} mask(s) without an image)")
    out_dir = check_output_dir("--out", out_dir, inputs={"--images": images_dir, "--masks": masks_dir})
    report = RefineReport(unused_images=len(set(images) - set(masks)), out_dir=out_dir)
    for stem in tqdm(sorted(masks), desc=f"refine ({settings.method})", disable=not progress,
                     unit="img"):
        image = read_image(images[stem])
        mask = read_mask(masks[stem])
        report.n_resized += mask.shape != image.shape[:2]
        try:
            refined = refine_mask(image, mask, settings)
        except InputError as err:           # a mask with NaN, say: name the file it came from
            raise InputError(f"{masks[stem]}: {err}") from None
        write_mask_png(out_dir / f"{stem}.png", refined)
        report.n_written += 1
        report.stems.append(stem)
        if erased(mask, refined):
            report.erased.append(stem)
    warn_erased(settings.method, report.erased, report.n_written)
    return report
