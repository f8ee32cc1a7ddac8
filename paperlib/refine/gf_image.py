"""The guided filter on one image, in float32 with OpenCV's box filter: the path masks take.

``guided_filter_image(guide, src, *, radius, eps, border) -> ndarray``
    q = GF(src, guide) for a gray guide (H, W) and an input (H, W), both float32, with the
    window means, border rules and centering of :func:`paperlib.refine.guided_filter.guided_filter`
    (equal to it within float32 rounding, about 1e-6 on masks in [0, 1]; tested).

Why a second implementation: ``refine``, ``segment`` and ``eval --refine gf`` filter one photo
at a time on the CPU, where torch's cumulative-sum box means cost about five times OpenCV's
``ximgproc.guidedFilter`` and importing torch alone takes seconds. Here every window sum is
``cv2.boxFilter`` (running sums in double precision inside OpenCV, so float32 loses nothing to
long sums) and the rest is a handful of NumPy operations written into scratch arrays kept per
thread. The torch filter stays the one to differentiate through, batch and run on a GPU.

Border rules (:data:`paperlib.refine.settings.BORDERS`): ``"count"`` divides each window's sum by
the number of its pixels inside the image (the paper's): OpenCV's mean with zeros outside,
rescaled in the bands within r of the border; ``"reflect"`` and ``"reflect_101"`` are OpenCV's
``BORDER_REFLECT`` and ``BORDER_REFLECT_101`` means.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from ..checks import require
from .settings import PAPER_GF, check_settings


@lru_cache(maxsize=16)
def _border_factors(n: int, radius: int) -> np.ndarray:
    """(2r+1) / (pixels of each window inside an axis of n): per axis, the count border's factor
    (the 2-D factor of a pixel is its row's times its column's). 1 except within r of the ends."""
    i = np.arange(n)
    factors = ((2 * radius + 1) / (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1)).astype(np.float32)
    factors.flags.writeable = False
    return factors


def _count_border(mean: np.ndarray, radius: int) -> None:
    """Rescale, in place, the bands within r of the border where windows are cut."""
    H, W = mean.shape
    rows, cols = _border_factors(H, radius)[:, None], _border_factors(W, radius)[None, :]
    if min(H, W) <= 2 * radius:            # the bands meet: every pixel is near a border
        mean *= rows
        mean *= cols
        return
    r = radius
    mean[:r] *= rows[:r] * cols
    mean[H - r:] *= rows[H - r:] * cols
    mean[r:H - r, :r] *= cols[:, :r]
    mean[r:H - r, W - r:] *= cols[:, W - r:]


# Scratch arrays, one set per thread and image shape (the last few shapes): a filter call writes
# into arrays that are already mapped, where fresh ones would cost a page fault per 4 KiB.
_scratch = threading.local()
_SCRATCH_SHAPES = 2


def _workspace(shape: tuple[int, int], n: int) -> list[np.ndarray]:
    sets = getattr(_scratch, "sets", None)
    if sets is None:
        sets = _scratch.sets = {}
    if shape in sets:
        sets[shape] = sets.pop(shape)      # the most recently used last
    else:
        while len(sets) >= _SCRATCH_SHAPES:
            sets.pop(next(iter(sets)))     # the least recently used
        sets[shape] = [np.empty(shape, np.float32) for _ in range(n)]
    return sets[shape]


def guided_filter_image(guide: np.ndarray, src: np.ndarray, *, radius: int = PAPER_GF.radius,
                        eps: float = PAPER_GF.eps, border: str = PAPER_GF.border) -> np.ndarray:
    """Filter ``src`` with the guided filter of He et al., steered by the gray ``guide``.

    Paper Sec. 3; the same q as :func:`paperlib.refine.guided_filter.guided_filter` on a
    (1, 1, H, W) batch, computed in float32 with OpenCV.

    Args:
        guide: (H, W) gray guide I, real (the paper's: the image's R, G, B in [0, 1], averaged).
        src: (H, W) input p, real (a soft mask in [0, 1]).
        radius: r >= 0, windows are (2r+1) x (2r+1); default ``PAPER_GF.radius``.
        eps: regularisation added to var_I (> 0); default ``PAPER_GF.eps``.
        border: ``"count"`` (the paper's, default), ``"reflect"`` or ``"reflect_101"``.

    Returns:
        q: (H, W) float32, a new array.
    """
    import cv2

    guide, src = np.asarray(guide), np.asarray(src)
    require(guide.ndim == 2 and src.shape == guide.shape,
            f"guide and src must be (H, W) arrays of one shape, got {guide.shape} and {src.shape}")
    require(guide.size > 0, f"guide and src must have at least one row and column, got shape {guide.shape}")
    check_settings(radius, eps, border)
    radius, eps = int(radius), float(eps)
    size = (2 * radius + 1, 2 * radius + 1)
    rule = {"count": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT,
            "reflect_101": cv2.BORDER_REFLECT_101}[border]

    def box(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        cv2.boxFilter(x, cv2.CV_32F, size, dst=out, normalize=True, borderType=rule)
        if border == "count":
            _count_border(out, radius)
        return out

    p = np.ascontiguousarray(src, dtype=np.float32)
    I, mean_I, mean_p, a, var, tmp = _workspace(guide.shape, 6)
    # Centering I on any constant is exact (a and q do not change; the box weights sum to 1), and
    # near its mean it keeps var_I = mean(I^2) - mean_I^2 clear of cancellation in float32.
    np.subtract(guide, np.float32(guide[::7, ::7].mean(dtype=np.float64)), out=I, casting="unsafe")
    box(I, mean_I)
    box(p, mean_p)
    box(np.multiply(I, p, out=tmp), a)
    a -= np.multiply(mean_I, mean_p, out=tmp)              # cov_Ip
    box(np.multiply(I, I, out=tmp), var)
    var -= np.multiply(mean_I, mean_I, out=tmp)
    var += np.float32(eps)
    a /= var                                               # a = cov_Ip / (var_I + eps)
    mean_p -= np.multiply(a, mean_I, out=tmp)              # b = mean_p - a mean_I
    q = np.empty(guide.shape, np.float32)
    box(a, q)
    q *= I
    q += box(mean_p, tmp)                                  # q = mean_a I + mean_b
    return q
