"""One synthetic composite in memory, built only from images that ship with scikit-image.

No file is downloaded. A background is a random crop of one of scikit-image's bundled photos or
textures; each foreground object is a silhouette (a smooth radial-Fourier blob, a thresholded
smooth noise field, an ellipse, star, superellipse or polygon, or the bundled horse) filled with a
patch of a *different* bundled image, colour-shifted when its mean colour is too close to the
background around it. The object's edge is softened in the image (a one-pixel alpha ramp inside
the support) while the mask is exactly the support. Two objects never touch, so each object is
exactly one connected component of the mask and its box is that component's box.

Public API
----------
``make_sample(rng, *, height, width, fg_ratio=None, n_objects=None, two_object_prob=0.4,
min_contrast=60.0) -> SynthSample``
    one composite: image, exact mask, one box per object.
``SynthSample``
    frozen result: ``image`` (H, W, 3) uint8, ``mask`` (H, W) bool, ``boxes``, ``truncated``,
    ``shapes``, and the ``fg_ratio`` property.
``fg_ratio_quantile(u) -> ndarray``
    quantile function of the foreground-ratio distribution (stratified by :mod:`paperlib.data.synth`).
``load_source``, ``SKIMAGE_SOURCES``, ``SHAPE_KINDS``
    re-exported from :mod:`paperlib.data.skimage_sources` (the bundled pictures) and
    :mod:`paperlib.data.silhouettes` (the shapes and their placement), where they live.

Boxes are ``(xmin, ymin, xmax, ymax)``, 0-based with exclusive maxima (``xmax - xmin`` is the
width). :func:`paperlib.data.synth.synthesize` writes these samples to disk; any change here that
alters the samples for a given rng state must bump :data:`paperlib.data.synth.SYNTH_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_int, require
from .silhouettes import SHAPE_KINDS, place_silhouette, shape_template
from .skimage_sources import BACKGROUND_SOURCES, FILL_SOURCES, load_source

# one probability per SHAPE_KINDS entry, in its order
_SHAPE_PROBS = (0.30, 0.22, 0.10, 0.10, 0.08, 0.08, 0.12)  # smooth shapes first, some real ones

_ALPHA_RAMP = 2.0  # alpha = min(1, distance-to-background / 2): edge pixels are a 50 % mix
_GAP = 2  # dilation (3x3, iterations) kept free around an object: objects never 8-touch


@dataclass(frozen=True, eq=False)
class SynthSample:
    """One composite: the image, its exact mask and one box per object.

    ``boxes[k]`` is ``(xmin, ymin, xmax, ymax)``, 0-based, maxima exclusive, the bounding box of
    object k; ``truncated[k]`` says whether the image border cut object k; ``shapes[k]`` names
    its silhouette kind (one of :data:`SHAPE_KINDS`).
    """

    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, the union of the objects' supports
    boxes: tuple[tuple[int, int, int, int], ...]
    truncated: tuple[bool, ...]
    shapes: tuple[str, ...]

    @property
    def fg_ratio(self) -> float:
        """Fraction of the pixels that are foreground."""
        return float(self.mask.mean())


# ----------------------------------------------------------------------------- appearance

def _crop_resize(src: np.ndarray, height: int, width: int, rng: np.random.Generator,
                 *, min_scale: float) -> np.ndarray:
    """A random crop of ``src`` with the aspect of (height, width), resized to it, randomly
    mirrored; grey sources get a random colour tint. Returns float32 (height, width, 3)."""
    import cv2

    sh, sw = src.shape[:2]
    crop_h = min(sh, sw * height / width) * rng.uniform(min_scale, 1.0)
    ch = int(np.clip(round(crop_h), 1, sh))
    cw = int(np.clip(round(crop_h * width / height), 1, sw))
    y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw])
    interp = cv2.INTER_AREA if ch > height else cv2.INTER_LINEAR
    out = cv2.resize(crop, (width, height), interpolation=interp).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if out.ndim == 2:
        tint = rng.uniform(0.35, 1.0, 3)
        out = out[..., None] * (tint / tint.max()).astype(np.float32)
    return np.ascontiguousarray(out)


def _contrasted(fill: np.ndarray, refs: list[np.ndarray], min_contrast: float,
                rng: np.random.Generator) -> np.ndarray:
    """Return ``fill`` (P, 3) unchanged if its mean colour lies at least ``min_contrast`` (RGB
    Euclidean, 0-255) from every reference mean; else its texture at 60 % contrast around the
    candidate colour farthest from the references."""
    mean_f = fill.mean(0)
    if min(float(np.linalg.norm(mean_f - r)) for r in refs) >= min_contrast:
        return fill
    candidates = rng.uniform(30.0, 225.0, (64, 3))
    dist = np.min([np.linalg.norm(candidates - r, axis=1) for r in refs], axis=0)  # (64,)
    target = candidates[int(np.argmax(dist))]
    return np.clip((fill - mean_f) * 0.6 + target, 0.0, 255.0)


def fg_ratio_quantile(u: np.ndarray) -> np.ndarray:
    """Quantile function of the foreground-ratio distribution the samples are drawn from.

    Not from the paper: 35 % log-uniform on [0.01, 0.1] (small objects are common in saliency
    data), 65 % uniform on [0.1, 0.7]; increasing, 0.01 at u = 0, 0.1 at u = 0.35, 0.7 at u = 1.

    Args:
        u: probabilities in [0, 1], any shape.

    Returns:
        Foreground ratios, the shape of ``u``.
    """
    return np.where(u < 0.35, 0.01 * 10.0 ** (u / 0.35), 0.1 + 0.6 * (u - 0.35) / 0.65)


def make_sample(rng: np.random.Generator, *, height: int, width: int,
                fg_ratio: float | None = None, n_objects: int | None = None,
                two_object_prob: float = 0.4, min_contrast: float = 60.0) -> SynthSample:
    """Compose one synthetic image with its exact foreground mask and per-object boxes.

    Not from the paper: the offline stand-in for a saliency / single-object-discovery dataset.

    Args:
        rng: the only source of randomness (the same state gives the same sample).
        height, width: image size H x W, at least 32 each.
        fg_ratio: target fraction of foreground pixels in [0.001, 0.9]; drawn from the
            stratified size distribution when None. The result lies near it, not exactly on it.
        n_objects: 1 or 2; when None, two objects with probability ``two_object_prob`` if the
            target ratio is at most 0.35 (about 60 % of the drawn ratios, so about a quarter of
            the samples by default). Two objects are placed only where they fit without
            touching; otherwise the sample has one.
        two_object_prob: see ``n_objects``.
        min_contrast: least RGB distance (0-255) between an object's mean fill colour and the
            mean background colour around it and over the whole image.

    Returns:
        :class:`SynthSample` with image uint8 (H, W, 3), mask bool (H, W) and boxes
        ``(xmin, ymin, xmax, ymax)`` 0-based with exclusive maxima, one per object.
    """
    from scipy import ndimage as ndi

    require(isinstance(rng, np.random.Generator),
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    for name, v in (("height", height), ("width", width)):
        check_int(name, v, low=32)
    require(fg_ratio is None or 0.001 <= fg_ratio <= 0.9,
            f"fg_ratio must lie in [0.001, 0.9] or be None, got {fg_ratio!r}")
    require(n_objects in (None, 1, 2), f"n_objects must be 1, 2 or None, got {n_objects!r}")
    require(0.0 <= two_object_prob <= 1.0, f"two_object_prob must lie in [0, 1], got {two_object_prob!r}")
    require(0.0 <= min_contrast <= 200.0, f"min_contrast must lie in [0, 200], got {min_contrast!r}")
    height, width = int(height), int(width)

    ratio = float(fg_ratio_quantile(rng.uniform())) if fg_ratio is None else float(fg_ratio)
    if n_objects is None:
        n_objects = 2 if ratio <= 0.35 and rng.random() < two_object_prob else 1
    first = rng.uniform(0.5, 0.75) if n_objects == 2 else 1.0  # the larger object's share
    shares = [first] if n_objects == 1 else [first, 1.0 - first]

    # 1. silhouettes: each object is one 4-connected component, kept _GAP pixels from the others
    supports: list[np.ndarray] = []
    truncated: list[bool] = []
    shapes: list[str] = []
    for share in shares:
        kind = str(rng.choice(SHAPE_KINDS, p=_SHAPE_PROBS))
        template = shape_template(kind, rng)
        taken = (ndi.binary_dilation(np.any(supports, axis=0), np.ones((3, 3), bool), iterations=_GAP)
                 if supports else None)
        for _ in range(20):
            support, cut = place_silhouette(template, height, width, share * ratio * height * width, rng)
            if taken is None or not (support & taken).any():
                supports.append(support)
                truncated.append(cut)
                shapes.append(kind)
                break
    mask = np.any(supports, axis=0)

    # 2. appearance: background and fills from different bundled pictures
    bg_name = str(rng.choice(BACKGROUND_SOURCES))
    image = _crop_resize(load_source(bg_name), height, width, rng, min_scale=0.45)
    mean_out = image[~mask].mean(0) if (~mask).any() else image.reshape(-1, 3).mean(0)
    fill_img = np.zeros_like(image)
    alpha = np.zeros((height, width), dtype=np.float32)
    boxes: list[tuple[int, int, int, int]] = []
    for support in supports:
        ys, xs = ndi.find_objects(support.astype(np.int32))[0]
        boxes.append((xs.start, ys.start, xs.stop, ys.stop))
        fill_name = str(rng.choice([s for s in FILL_SOURCES if s != bg_name]))
        patch = _crop_resize(load_source(fill_name), ys.stop - ys.start, xs.stop - xs.start, rng,
                             min_scale=0.25)
        ring = ndi.binary_dilation(support, np.ones((3, 3), bool), iterations=4) & ~mask
        refs = [mean_out] + ([image[ring].mean(0)] if ring.any() else [])
        inside = support[ys, xs]
        patch[inside] = _contrasted(patch[inside], refs, min_contrast, rng)
        fill_img[ys, xs][inside] = patch[inside]
        # soft edge inside the support only, so the mask stays exactly the support
        dist = ndi.distance_transform_edt(np.pad(support[ys, xs], 1))[1:-1, 1:-1]
        alpha[ys, xs] = np.where(inside, np.minimum(dist / _ALPHA_RAMP, 1.0), alpha[ys, xs])
    image = image * (1.0 - alpha[..., None]) + fill_img * alpha[..., None]
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return SynthSample(image=image, mask=mask, boxes=tuple(boxes), truncated=tuple(truncated),
                       shapes=tuple(shapes))
