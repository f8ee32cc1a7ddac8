"""Object silhouettes for the synthetic set: random shapes and their placement in an image.

A silhouette is a tight bool template, about 256 px on its longer side: a smooth radial-Fourier
blob, a thresholded smooth noise field, an ellipse, star, superellipse or polygon, or the horse
bundled with scikit-image; randomly rotated, holes filled, one 4-connected component. Placing it
scales it to a target visible area and drops it at a random position, cut by the image border
when it is larger than the image.

Public API
----------
``shape_template(kind, rng) -> ndarray``
    a tight bool (th, tw) silhouette of one of :data:`SHAPE_KINDS`.
``place_silhouette(template, height, width, area, rng) -> tuple[ndarray, bool]``
    the (H, W) bool support of the scaled, placed silhouette, and whether the border cut it.
``SHAPE_KINDS``
    the silhouette kinds.

:func:`paperlib.data.synth_sample.make_sample` draws from these; any change here that alters the
silhouettes for a given rng state must bump :data:`paperlib.data.synth.SYNTH_VERSION`.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_choice
from .skimage_sources import load_source

SHAPE_KINDS = ("blob", "noise", "ellipse", "star", "superellipse", "polygon", "horse")


def _tight(m: np.ndarray) -> np.ndarray:
    """Crop a bool mask to its bounding box."""
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _largest_component(m: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a bool mask (all False if the mask is empty)."""
    from scipy import ndimage as ndi

    labels, count = ndi.label(m)  # default structure: 4-connectivity
    if count <= 1:
        return m.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _polygon_template(xs: np.ndarray, ys: np.ndarray, size: int = 256) -> np.ndarray:
    """Rasterise a closed polygon given in [-1, 1] coordinates on a size x size canvas."""
    import cv2

    half = (size - 1) / 2
    # cv2.fillPoly with 4 fractional bits: sub-pixel vertices, fast for hundreds of vertices
    pts = np.rint(np.stack([half + xs * half * 0.98, half + ys * half * 0.98], axis=-1) * 16)
    m = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(m, [pts.astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def shape_template(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A tight bool silhouette of the given kind, about 256 px on its longer side.

    Not from the paper: the object shapes of the offline synthetic set.

    Args:
        kind: one of :data:`SHAPE_KINDS`.
        rng: the only source of randomness.

    Returns:
        bool (th, tw), cropped to its bounding box: one 4-connected component without holes.
    """
    from scipy import ndimage as ndi

    check_choice("kind", kind, SHAPE_KINDS)
    theta = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
    if kind == "blob":  # radial Fourier blob: r(theta) = 1 + sum_k a_k cos(k theta + phi_k)
        k = np.arange(1, int(rng.integers(2, 7)) + 1)
        a = rng.uniform(0.0, 1.0, k.size) / k ** 1.2
        phi = rng.uniform(0.0, 2 * np.pi, k.size)
        pert = (a[:, None] * np.cos(k[:, None] * theta + phi[:, None])).sum(0)  # (K, T) -> (T,)
        r = 1.0 + pert * rng.uniform(0.15, 0.5) / max(np.abs(pert).max(), 1e-9)  # r >= 0.5
        r /= r.max()
        m = _polygon_template(r * np.cos(theta), r * np.sin(theta))
    elif kind == "noise":  # smooth noise under a radial window, thresholded at a quantile
        import cv2

        field = ndi.gaussian_filter(rng.standard_normal((48, 48)), sigma=rng.uniform(1.5, 3.0),
                                    mode="wrap")
        field = cv2.resize(field.astype(np.float32), (192, 192), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[-1:1:192j, -1:1:192j]
        field = field / field.std() - 2.5 * (xx ** 2 + yy ** 2)
        m = field > np.quantile(field, 1.0 - rng.uniform(0.25, 0.45))
    elif kind == "ellipse":
        m = _polygon_template(np.cos(theta), rng.uniform(0.35, 1.0) * np.sin(theta))
    elif kind == "star":
        spikes = int(rng.integers(5, 9))
        t = np.linspace(0.0, 2 * np.pi, 2 * spikes, endpoint=False)
        r = np.where(np.arange(2 * spikes) % 2 == 0, 1.0, rng.uniform(0.4, 0.7))
        m = _polygon_template(r * np.cos(t), r * np.sin(t))
    elif kind == "superellipse":  # |x|^p + |y|^p = 1: a rounded rectangle for p in [2.5, 6]
        p = rng.uniform(2.5, 6.0)
        c, s = np.cos(theta), np.sin(theta)
        m = _polygon_template(np.sign(c) * np.abs(c) ** (2 / p),
                              rng.uniform(0.4, 1.0) * np.sign(s) * np.abs(s) ** (2 / p))
    elif kind == "polygon":
        sides = int(rng.integers(3, 7))
        t = np.linspace(0.0, 2 * np.pi, sides, endpoint=False) + rng.uniform(0.0, 2 * np.pi)
        m = _polygon_template(np.cos(t), np.sin(t))
    else:  # "horse": the bundled real silhouette, mirrored half of the time
        m = load_source("horse")
        if rng.random() < 0.5:
            m = m[:, ::-1]
    angle = rng.uniform(-20.0, 20.0) if kind == "horse" else rng.uniform(0.0, 360.0)
    m = ndi.rotate(m.astype(np.float32), angle, reshape=True, order=1) > 0.5
    return _tight(_largest_component(ndi.binary_fill_holes(m)))


def place_silhouette(template: np.ndarray, height: int, width: int, area: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Scale a silhouette to cover about ``area`` pixels and drop it at a random place.

    Not from the paper. The scale is corrected twice against the measured visible area;
    objects larger than the image are cut by its border.

    Args:
        template: bool (th, tw) silhouette, as :func:`shape_template` gives.
        height, width: image size H x W.
        area: target number of visible object pixels.
        rng: the only source of randomness.

    Returns:
        The object's (H, W) bool support (one 4-connected component) and whether the border
        cut it.
    """
    import cv2
    from scipy import ndimage as ndi

    th, tw = template.shape
    aspect = tw / th * float(np.exp(rng.uniform(-0.35, 0.35)))
    u_y, u_x = rng.uniform(size=2)  # relative position, kept while the scale is corrected
    scale = float(np.sqrt(area / (template.mean() * aspect)))  # box height giving `area`
    for _ in range(3):
        bh = int(np.clip(round(scale), 4, round(1.4 * height)))
        bw = int(np.clip(round(scale * aspect), 4, round(1.4 * width)))
        interp = cv2.INTER_AREA if bh < th else cv2.INTER_LINEAR
        obj = cv2.resize(template.astype(np.float32), (bw, bh), interpolation=interp) > 0.5
        y0, x0 = int(round(u_y * (height - bh))), int(round(u_x * (width - bw)))  # < 0 if larger
        ys, xs = slice(max(y0, 0), min(y0 + bh, height)), slice(max(x0, 0), min(x0 + bw, width))
        support = np.zeros((height, width), dtype=bool)
        support[ys, xs] = obj[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        truncated = bool(support.sum() < obj.sum())
        support = _largest_component(ndi.binary_fill_holes(support))
        visible = max(int(support.sum()), 1)
        if abs(visible - area) <= 0.1 * area:
            break
        scale *= float(np.sqrt(area / visible))
    return support, truncated
