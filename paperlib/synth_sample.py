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
    quantile function of the foreground-ratio distribution (stratified by :mod:`paperlib.synth`).
``load_source(name) -> ndarray``
    one bundled scikit-image picture, cached; never downloads.
``SKIMAGE_SOURCES``, ``BACKGROUND_SOURCES``, ``FILL_SOURCES``, ``SILHOUETTE_SOURCES``,
``SHAPE_KINDS``
    the loader names used and the silhouette kinds.

Boxes are ``(xmin, ymin, xmax, ymax)``, 0-based with exclusive maxima (``xmax - xmin`` is the
width). :func:`paperlib.synth.synthesize` writes these samples to disk; any change here that
alters the samples for a given rng state must bump :data:`paperlib.synth.SYNTH_VERSION`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .validation import check_choice, require

# skimage.data loaders whose files ship inside the scikit-image wheel (checked offline with
# scikit-image 0.25; the optional-pooch ones such as lily, eagle or brain are left out).
BACKGROUND_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                      "stereo_motorcycle", "immunohistochemistry", "camera", "moon", "coins",
                      "brick", "grass", "gravel")
FILL_SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                "stereo_motorcycle", "immunohistochemistry", "colorwheel", "brick", "grass",
                "gravel", "camera", "moon")
SILHOUETTE_SOURCES = ("horse",)
SKIMAGE_SOURCES = tuple(sorted(set(BACKGROUND_SOURCES + FILL_SOURCES + SILHOUETTE_SOURCES)))

SHAPE_KINDS = ("blob", "noise", "ellipse", "star", "superellipse", "polygon", "horse")
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


@functools.lru_cache(maxsize=None)
def load_source(name: str) -> np.ndarray:
    """Load one bundled scikit-image picture by loader name (cached; never downloads).

    Args:
        name: one of :data:`SKIMAGE_SOURCES`.

    Returns:
        uint8 (h, w, 3) for colour pictures, (h, w) for grey ones, bool (h, w) for the horse
        silhouette (True on the horse).
    """
    import skimage.data

    check_choice("source", name, SKIMAGE_SOURCES)
    if name == "horse":
        return np.ascontiguousarray(~skimage.data.horse())  # the file is a black horse on white
    if name == "stereo_motorcycle":
        return np.ascontiguousarray(skimage.data.stereo_motorcycle()[0])  # (left, right, disparity)
    return np.ascontiguousarray(getattr(skimage.data, name)(), dtype=np.uint8)


# ----------------------------------------------------------------------------- silhouettes

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


def _shape_template(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A tight bool silhouette of the given kind, about 256 px on its longer side."""
    from scipy import ndimage as ndi

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


def _place(template: np.ndarray, height: int, width: int, area: float,
           rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Scale a silhouette to cover about ``area`` pixels and drop it at a random place.

    The scale is corrected twice against the measured visible area; objects larger than the
    image are cut by its border. Returns the object's (H, W) bool support (one 4-connected
    component) and whether the border cut it.
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
        require(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 32,
                f"{name} must be an integer >= 32, got {v!r}")
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
        template = _shape_template(kind, rng)
        taken = (ndi.binary_dilation(np.any(supports, axis=0), np.ones((3, 3), bool), iterations=_GAP)
                 if supports else None)
        for _ in range(20):
            support, cut = _place(template, height, width, share * ratio * height * width, rng)
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
