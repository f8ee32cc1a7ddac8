"""The guided filter on one image, in float32, by a compiled kernel or OpenCV: the path masks take.

``guided_filter_image(guide, src, *, radius, eps, border, out=None) -> ndarray``
    q = GF(src, guide) for a gray guide (H, W) and an input (H, W), both float32, with the
    window means, border rules and centering of :func:`paperlib.refine.guided_filter.guided_filter`
    (equal to it within float32 rounding, about 1e-6 on masks in [0, 1]; tested).
``guided_filter_images(guides, srcs, *, radius, eps, border, out=None) -> ndarray``
    the same for a stack (n, H, W) (a batch's path): image by image through the kernel, or four
    images at a time as the channels of one through OpenCV.
``guided_filter_image_vjp(guide, src, grad, *, radius, eps, need_guide) -> (grad_guide, grad_src)``
    the gradients of that filter (count border), so that
    :func:`paperlib.refine.guided_filter.guided_filter` keeps this speed when it is differentiated.

Why a second implementation: ``refine``, ``segment`` and ``eval --refine gf`` filter one photo
at a time on the CPU, where torch's cumulative-sum box means cost about five times OpenCV's
``ximgproc.guidedFilter`` and importing torch alone takes seconds. The torch filter stays the one
for colour guides, float64, reflect borders under autograd and GPUs; on a CPU the count-border
gray filter is differentiated here too.

Two paths give the same q (within float32 rounding; both tested):

- the compiled kernel ``paperlib/refine/_gf_count.c`` for the count border (the paper's): the
  six window sums as running sums in double precision, a, b and q formed row by row, the image
  read twice; built at install when a C compiler is there (``setup.py``), 0.55-0.67x the time of
  OpenCV's guided filter (README "Benchmarks"). :data:`KERNEL` says whether this install has it.
- OpenCV otherwise (no compiler, or the reflect borders): every window sum is ``cv2.boxFilter``
  (running sums in double precision inside OpenCV) and the rest a handful of NumPy operations
  written into scratch arrays kept per thread; a batch goes four images at a time as the
  channels of one.

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

try:        # built by setup.py where a C compiler was found at install; optional
    from . import _gf_count
except ImportError:
    _gf_count = None

# Whether this install has the compiled count-border kernel (see the module docstring).
KERNEL = _gf_count is not None


@lru_cache(maxsize=16)
def _border_factors(n: int, radius: int) -> np.ndarray:
    """(2r+1) / (pixels of each window inside an axis of n): per axis, the count border's factor
    (the 2-D factor of a pixel is its row's times its column's). 1 except within r of the ends."""
    i = np.arange(n)
    factors = ((2 * radius + 1) / (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1)).astype(np.float32)
    factors.flags.writeable = False
    return factors


@lru_cache(maxsize=64)
def _border_plan(planes: int, H: int, W: int, radius: int, channels: int = 1) -> tuple[np.ndarray, ...]:
    """The count border's factors for ``planes`` stacked (H, W) means, or (H, W, channels) means
    with their channels interleaved, both sides > 2r: (top band (r, W c), bottom band (r, W c),
    runs (planes H - 1, 2 r c)), c = ``channels``.

    The top and bottom bands are contiguous rows and carry their rows' and columns' factors (the
    corners included). The left and right bands are cut into row boundaries: in memory the last
    r c entries of a row and the first r c of the next one are one contiguous run of 2 r c, so
    every side band of every plane is a single strided (planes H - 1, 2 r c) view of the stack. A
    run's entries that lie in a top or bottom band (already scaled) get the factor 1."""
    rows = _border_factors(H, radius)[:, None]
    cols = np.repeat(_border_factors(W, radius), channels)     # (W c,): each channel of a pixel alike
    r, band = radius, radius * channels
    top, bottom = rows[:r] * cols, rows[H - r:] * cols
    # One run per row k of the stack (the boundary above it; the first is dropped): its second
    # half is row k's left band, its first half row k-1's right band, where those rows lie
    # between the top and bottom bands of their plane (r > 0, so a plane's first row never does).
    runs = np.ones((planes, H, 2 * band), np.float32)
    runs[:, r:H - r, band:] = cols[:band]
    runs[:, r + 1:H - r + 1, :band] = cols[len(cols) - band:]
    runs = runs.reshape(planes * H, 2 * band)[1:]
    for table in (top, bottom, runs):
        table.flags.writeable = False
    return top, bottom, runs


def _count_border(means: np.ndarray, radii: tuple[int, int], channels: int = 1) -> None:
    """Rescale, in place, the bands within r of the border where windows are cut, in one
    (H, W) mean or a stack (..., H, W) of them, or with ``channels`` > 1 one (H, W, channels)
    mean or a stack (..., H, W, channels) (fastest C-contiguous in float32); ``radii``: the
    windows' (rows, columns) radii (:func:`_count_radii`)."""
    import cv2

    H, W = means.shape[-3:-1] if channels > 1 else means.shape[-2:]
    r_rows, r_cols = radii
    if r_rows == r_cols == 0:
        return
    if (r_rows != r_cols or min(H, W) <= 2 * r_rows       # the bands meet: every pixel is near a border
            or not means.flags.c_contiguous or means.dtype != np.float32):
        tail = (None,) if channels > 1 else ()
        means *= _border_factors(H, r_rows)[(slice(None), None, *tail)]
        means *= _border_factors(W, r_cols)[(None, slice(None), *tail)]
        return
    radius = r_rows
    r, width = radius, W * channels
    planes = means.size // (H * width)
    top, bottom, runs = _border_plan(planes, H, W, radius, channels)
    rows = means.reshape(planes, H, width)
    rows[:, :r] *= top
    rows[:, H - r:] *= bottom
    # Runs k = 1 .. planes H - 1 start at flat index k W c - r c: one strided view over the stack.
    band = r * channels
    side = np.ndarray((planes * H - 1, 2 * band), np.float32, buffer=means, offset=(width - band) * 4,
                      strides=(width * 4, 4))
    cv2.multiply(side, runs, dst=side)     # in place (OpenCV walks the rows by their stride)


# Scratch memory, one buffer per thread, grown to the largest call so far and viewed in the shape
# each call needs: a filter call writes into pages that are already mapped, where fresh arrays
# would cost a page fault per 4 KiB (photos of a folder come in many sizes). A call's workspace
# is only valid until the next call that takes one.
_scratch = threading.local()


def _workspace(shape: tuple[int, ...]) -> np.ndarray:
    size = int(np.prod(shape))
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _scratch.buffer = np.empty(size, np.float32)
    return buffer[:size].reshape(shape)


def guided_filter_image(guide: np.ndarray, src: np.ndarray, *, radius: int = PAPER_GF.radius,
                        eps: float = PAPER_GF.eps, border: str = PAPER_GF.border,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Filter ``src`` with the guided filter of He et al., steered by the gray ``guide``.

    Paper Sec. 3; the same q as :func:`paperlib.refine.guided_filter.guided_filter` on a
    (1, 1, H, W) batch, computed in float32 with OpenCV.

    Args:
        guide: (H, W) gray guide I, real (the paper's: the image's R, G, B in [0, 1], averaged).
        src: (H, W) input p, real (a soft mask in [0, 1]).
        radius: r >= 0, windows are (2r+1) x (2r+1); default ``PAPER_GF.radius``.
        eps: regularisation added to var_I (> 0); default ``PAPER_GF.eps``.
        border: ``"count"`` (the paper's, default), ``"reflect"`` or ``"reflect_101"``.
        out: an (H, W) C-contiguous float32 array to write q into (a batch's slice: no copy),
            or None for a new array. It must not share memory with ``guide`` or ``src``.

    Returns:
        q: (H, W) float32, ``out`` when given.
    """
    guide, src = np.asarray(guide), np.asarray(src)
    require(guide.ndim == 2 and src.shape == guide.shape,
            f"guide and src must be (H, W) arrays of one shape, got {guide.shape} and {src.shape}")
    require(guide.size > 0, f"guide and src must have at least one row and column, got shape {guide.shape}")
    check_settings(radius, eps, border)
    radius, eps = int(radius), float(eps)
    p = np.require(src, np.float32, "CA")               # C-contiguous and aligned, as the kernel reads it
    if out is None:
        q = np.empty(guide.shape, np.float32)
    else:
        _check_out(out, guide.shape, guide, src)
        q = out
    if border == "count" and _gf_count is not None:
        # The kernel centres the guide itself (on the same constant) and needs a and b: 2 H W.
        # It cuts the radius to each axis as _count_radii does.
        _gf_count.filter(np.require(guide, np.float32, "CA"), p, q, _workspace((2,) + guide.shape),
                         radius, eps, float(_centre(guide)))
        return q
    radii = _count_radii(radius, guide.shape) if border == "count" else (radius, radius)
    scratch = _workspace((6,) + guide.shape)
    I = scratch[5]
    # Centering I on any constant is exact (a and q do not change; the box weights sum to 1), and
    # near its mean it keeps var_I = mean(I^2) - mean_I^2 clear of cancellation in float32.
    np.subtract(guide, _centre(guide), out=I, casting="unsafe")
    _filter(I, p, q, scratch[:5], radii, eps, border, channels=1)
    return q


def guided_filter_images(guides: np.ndarray, srcs: np.ndarray, *, radius: int = PAPER_GF.radius,
                         eps: float = PAPER_GF.eps, border: str = PAPER_GF.border,
                         out: np.ndarray | None = None) -> np.ndarray:
    """:func:`guided_filter_image` on a stack of n images of one size.

    The count border with the compiled kernel (:data:`KERNEL`) filters image by image. Otherwise
    four images go through OpenCV as the four channels of one image: its box filter sums four
    interleaved channels in a quarter less time than four single ones, and every other step is
    elementwise, so the channels never need to be taken apart until q. Each q equals the single
    image's (the same operations on the same numbers; tested). A remainder of 1-3 images is
    filtered one by one.

    Args:
        guides: (n, H, W) gray guides.
        srcs: (n, H, W) inputs.
        radius, eps, border: as :func:`guided_filter_image`.
        out: an (n, H, W) C-contiguous float32 array for q, or None for a new one; it must not
            share memory with ``guides`` or ``srcs``.

    Returns:
        q: (n, H, W) float32, ``out`` when given.
    """
    import cv2

    guides, srcs = np.asarray(guides), np.asarray(srcs)
    require(guides.ndim == 3 and srcs.shape == guides.shape,
            f"guides and srcs must be (n, H, W) arrays of one shape, got {guides.shape} and {srcs.shape}")
    require(guides.shape[1] > 0 and guides.shape[2] > 0,
            f"guides and srcs must have at least one row and column, got shape {guides.shape}")
    check_settings(radius, eps, border)
    radius, eps = int(radius), float(eps)
    radii = _count_radii(radius, guides.shape) if border == "count" else (radius, radius)
    if out is None:
        out = np.empty(guides.shape, np.float32)
    else:
        _check_out(out, guides.shape, guides, srcs)
    n, H, W = guides.shape
    if border == "count" and _gf_count is not None:     # the kernel: one image at a time
        for i in range(n):
            guided_filter_image(guides[i], srcs[i], radius=radius, eps=eps, border=border, out=out[i])
        return out
    k = _STACK
    if n >= k:          # the stack's scratch only when a group of four is there to use it
        scratch = _workspace((8, H, W, k))
        I, p, q = scratch[5], scratch[6], scratch[7]
        planes = scratch[4].reshape(k, H, W)   # _filter's scratch, free until it runs
    for first in range(0, n - n % k, k):
        for j in range(k):      # each guide centred on its own constant (see guided_filter_image)
            guide = guides[first + j]
            np.subtract(guide, _centre(guide), out=planes[j], casting="unsafe")
        # Interleaving by OpenCV's merge and taking apart by its split: a third of the time of
        # NumPy's strided copies.
        cv2.merge(list(planes), dst=I)
        cv2.merge([np.ascontiguousarray(srcs[first + j], np.float32) for j in range(k)], dst=p)
        _filter(I, p, q, scratch[:5], radii, eps, border, channels=k)
        cv2.split(q, list(out[first:first + k]))           # into the (H, W) slices of out
    for i in range(n - n % k, n):
        guided_filter_image(guides[i], srcs[i], radius=radius, eps=eps, border=border, out=out[i])
    return out


_STACK = 4   # images filtered together as the channels of one (measured: four pays, two does not)


def _centre(guide: np.ndarray) -> np.float32:
    """A constant near the guide's mean (a sparse sample's mean: centering needs no more)."""
    return np.float32(guide[::7, ::7].mean(dtype=np.float64))


def _check_out(out, shape: tuple[int, ...], *inputs: np.ndarray) -> None:
    require(isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32
            and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable,
            f"out must be a writeable, aligned, C-contiguous float32 array of shape {shape}")
    require(not any(np.shares_memory(out, x) for x in inputs),
            "out must not share memory with the guide or src")


# OpenCV's normalised box filter computes 1 / (kx * ky) with kx * ky in a 32-bit int: past this
# (from 46341 x 46341, r = 23170) it divides by an overflowed count. Wider windows are summed
# and scaled here.
_LARGEST_NORMALISED = 2 ** 31 - 1


def _box_mean(x: np.ndarray, radii: tuple[int, int], rule: int, out: np.ndarray | None = None) -> np.ndarray:
    """The (2 r_rows + 1) x (2 r_cols + 1) window mean of x with zeros (``cv2.BORDER_CONSTANT``)
    or mirror images outside, float32, into ``out`` when given."""
    import cv2

    size = (2 * radii[1] + 1, 2 * radii[0] + 1)                # OpenCV's (width, height)
    if size[0] * size[1] <= _LARGEST_NORMALISED:
        return cv2.boxFilter(x, cv2.CV_32F, size, dst=out, normalize=True, borderType=rule)
    out = cv2.boxFilter(x, cv2.CV_32F, size, dst=out, normalize=False, borderType=rule)
    out *= np.float32(1 / (size[0] * size[1]))
    return out


def _count_radii(radius: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """The count border's (rows, columns) radii: a window past both ends of an axis holds all of
    it already, so along each axis a larger radius gives the same means and the radius is cut
    to the axis (exactly the same q; OpenCV's box filter needs memory in the window's size)."""
    H, W = shape[-2:]
    return min(radius, H - 1), min(radius, W - 1)


def _filter(I: np.ndarray, p: np.ndarray, q: np.ndarray, scratch: np.ndarray, radii: tuple[int, int],
            eps: float, border: str, *, channels: int) -> None:
    """q = GF(p, I) for a centred float32 guide I and input p, each (H, W) or (H, W, channels)
    with one image per channel, into q; ``radii``: (rows, columns); ``scratch``: (5,) + I.shape
    float32, overwritten."""
    import cv2

    rule = {"count": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT,
            "reflect_101": cv2.BORDER_REFLECT_101}[border]

    def box(x: np.ndarray, out: np.ndarray) -> None:
        _box_mean(x, radii, rule, out)

    means = scratch[:4]                                    # one stack: one border rescale for four
    mean_I, mean_p, corr_Ip, var = means
    tmp = scratch[4]
    box(I, mean_I)
    box(p, mean_p)
    box(np.multiply(I, p, out=tmp), corr_Ip)
    box(np.multiply(I, I, out=tmp), var)                   # mean(I^2); sqrBoxFilter is slower
    if border == "count":
        _count_border(means, radii, channels)
    a = corr_Ip
    a -= np.multiply(mean_I, mean_p, out=tmp)              # cov_Ip
    var -= np.multiply(mean_I, mean_I, out=tmp)
    var += np.float32(eps)
    a /= var                                               # a = cov_Ip / (var_I + eps)
    b = mean_p
    b -= np.multiply(a, mean_I, out=tmp)                   # b = mean_p - a mean_I
    box(a, q)
    q *= I
    box(b, tmp)
    q += tmp                                               # q = mean_a I + mean_b
    if border == "count":                                  # both means carry the same factor
        _count_border(q, radii, channels)


def guided_filter_image_vjp(guide: np.ndarray, src: np.ndarray, grad: np.ndarray, *,
                            radius: int = PAPER_GF.radius, eps: float = PAPER_GF.eps,
                            need_guide: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients of sum(grad * q) for q = ``guided_filter_image(guide, src)``, count border.

    The filter's forward quantities are recomputed (nothing is kept between the two calls), then
    the chain rule runs backwards through q = mean_a I + mean_b, b = mean_p - a mean_I,
    a = cov_Ip / (var_I + eps) and the four window means. A count-border box mean is
    B x = f * Z x, with Z the zero-padded box mean (a symmetric operator) and f the border
    factors, so its adjoint is B^T y = Z (f * y): one more OpenCV box filter.

    Args:
        guide, src: as :func:`guided_filter_image`, (H, W).
        grad: (H, W), the gradient reaching q.
        radius, eps: as :func:`guided_filter_image`.
        need_guide: also return the guide's gradient (two more box filters).

    Returns:
        (gradient of the guide or None, gradient of src), each (H, W) float32.
    """
    import cv2

    guide, src, grad = np.asarray(guide), np.asarray(src), np.asarray(grad)
    require(guide.ndim == 2 and src.shape == guide.shape and grad.shape == guide.shape,
            f"guide, src and grad must be (H, W) arrays of one shape, got {guide.shape}, "
            f"{src.shape} and {grad.shape}")
    check_settings(radius, eps, "count")
    radii, eps = _count_radii(int(radius), guide.shape), float(eps)

    def box(x: np.ndarray) -> np.ndarray:               # B x: the count-border mean
        out = _box_mean(x, radii, cv2.BORDER_CONSTANT)
        _count_border(out, radii)
        return out

    def box_t(y: np.ndarray) -> np.ndarray:             # B^T y = Z (f * y)
        scaled = np.array(y, dtype=np.float32)
        _count_border(scaled, radii)
        return _box_mean(scaled, radii, cv2.BORDER_CONSTANT)

    # q does not change when I moves by a constant, so neither do the gradients: centre it.
    I = np.asarray(guide, np.float32) - _centre(guide)
    p = np.ascontiguousarray(src, dtype=np.float32)
    g = np.ascontiguousarray(grad, dtype=np.float32)
    mean_I, mean_p = box(I), box(p)
    var = box(I * I) - mean_I * mean_I + np.float32(eps)          # var_I + eps
    a = (box(I * p) - mean_I * mean_p) / var
    g_b = box_t(g)                                                # q = mean_a I + mean_b
    g_a = box_t(g * I) - g_b * mean_I                             # b = mean_p - a mean_I
    g_cov = g_a / var                                             # a = cov_Ip / (var_I + eps)
    grad_src = box_t(g_b - g_cov * mean_I) + I * box_t(g_cov)     # via mean_p, then corr_Ip
    if not need_guide:
        return None, grad_src
    g_var = -g_cov * a
    g_mean_I = -g_b * a - g_cov * mean_p - 2 * g_var * mean_I
    grad_guide = g * box(a) + box_t(g_mean_I) + p * box_t(g_cov) + 2 * I * box_t(g_var)
    return grad_guide, grad_src
