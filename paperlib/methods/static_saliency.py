"""Two classic static saliency baselines: ``--method spectral`` and ``--method finegrained``.

OpenCV's contrib module ``saliency`` ships both; users of the core ``opencv-python-headless``
install lack it, so they are written here on numpy and core OpenCV, and
tests/test_static_saliency.py compares them with ``cv2.saliency`` where it is installed.
Neither reads a backbone or a training set; each returns a soft map in [0, 1] at the
image's size, like the centre prior (:mod:`paperlib.methods.centre`).

Spectral residual (Hou and Zhang, CVPR 2007). The log amplitude spectrum of a natural image
is nearly smooth; what sticks out of its local average marks the unexpected parts of the image.
On the gray image shrunk to 64 x 64 (OpenCV's default working size):

    L = log(A + 1)                     A, P: amplitude and phase of the 2-D DFT
    R = L - mean_3x3(L)                the spectral residual
    S = blur(|IDFT(exp(R) e^{iP})|)^2  5 x 5 Gaussian, sigma 8; S / max(S), resized back

Three details follow OpenCV rather than the paper, so that the maps agree: the +1 inside the
log (the paper takes log A), the blur before the square (the paper blurs the squared map),
and the phase from ``cv2.cartToPolar``, which OpenCV documents as accurate to about 0.3
degrees (an exact ``atan2`` moves the map by about 4e-5, measured). One deliberate difference: when
the 64 x 64 image is constant, every amplitude but the mean's is zero, the +1 turns their
logs into a flat spectrum of zero phase and OpenCV answers with a peak in the top-left
corner; here the answer is a flat map of zeros.

Fine grained (Montabone and Soto, Image and Vision Computing 2010). Centre-surround
differences of intensity at full resolution, with box sums from an integral image. The gray
image is smoothed by two 3 x 3 binomial filters (8-bit after each); a pixel's surround at
scale s is the window rows y - s + 1 .. y + s, columns x - s + 1 .. x + s (clipped to the
image, the pixel itself left out), for s in 12, 24, 28, 48, 56, 112; at each scale the
on-centre value is max(c - mean, 0) and the off-centre value max(mean - c, 0), each truncated
to an integer; on and off are summed over the scales, each sum is scaled to 0..255
(truncated) and the two are added, capped at 255. The integral image and the window means are
float32, and a window's sum is (bottom-right + top-left) - bottom-left - top-right of its
corners in that order: in large photos the float32 corners round, and this order is the one
whose rounding agrees with OpenCV's. The result is an 8-bit map, returned divided by 255.
These details (smoothing, window bounds, truncations, float32 order) are not in OpenCV's
documentation; they were read off ``cv2.saliency``'s outputs on probe images (impulses, lines,
steps, noise) and are pinned by the bit-for-bit tests.

Public API: :func:`spectral_residual`, :func:`fine_grained`, :class:`SpectralResidual`,
:class:`FineGrained`, :data:`SPECTRAL_SIZE`, :data:`SPECTRAL_BLUR`, :data:`FINE_GRAINED_SCALES`.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..checks import require
from .base import ImageByImage, Prediction
from .boxes import mask_to_box

SPECTRAL_SIZE = 64                             # working side, OpenCV's default (setImageWidth/Height)
SPECTRAL_BLUR = 8.0                            # sigma of the 5 x 5 Gaussian on |IDFT|, OpenCV's
FINE_GRAINED_SCALES = (12, 24, 28, 48, 56, 112)  # surround half-sides, as OpenCV's (measured)


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 gray of an (H, W) gray or (H, W, 3) RGB uint8 image; anything else refused."""
    require(isinstance(image, np.ndarray) and image.dtype == np.uint8,
            f"image must be a uint8 numpy array (RGB or gray), got "
            f"{getattr(image, 'dtype', type(image).__name__)}")
    require(image.ndim != 3 or image.shape[2] != 4,
            f"image has 4 channels {image.shape}: RGBA is not read; drop or composite the alpha "
            f"channel first (image[..., :3])")
    require(image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3)),
            f"image must be (H, W) gray or (H, W, 3) RGB, got shape {image.shape}")
    require(image.shape[0] >= 1 and image.shape[1] >= 1, f"image is empty: shape {image.shape}")
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)   # OpenCV's weights, as cv2.saliency's


def spectral_residual(image: np.ndarray) -> np.ndarray:
    """Hou and Zhang's spectral residual saliency, as OpenCV computes it (module docstring).

    Args:
        image: (H, W, 3) uint8 RGB or (H, W) uint8 gray, H, W >= 1.

    Returns:
        (H, W) float32 in [0, 1]; zeros when the 64 x 64 working image is constant.
    """
    I = _gray(image)
    H, W = I.shape
    n = SPECTRAL_SIZE
    # The bit-exact linear resize is the one whose result equals cv2.saliency's at every size.
    small = cv2.resize(I, (n, n), interpolation=cv2.INTER_LINEAR_EXACT)         # (n, n) uint8
    if small.min() == small.max():
        return np.zeros((H, W), np.float32)
    F = cv2.dft(small.astype(np.float64), flags=cv2.DFT_COMPLEX_OUTPUT)          # (n, n, 2)
    A, P = cv2.cartToPolar(F[..., 0], F[..., 1])                                  # (n, n) each
    L = np.log(A + 1.0)
    R = L - cv2.blur(L, (3, 3))                   # 3 x 3 mean, borders reflected (OpenCV's default)
    re, im = cv2.polarToCart(np.exp(R), P)
    z = cv2.idft(np.dstack([re, im]))                                             # (n, n, 2)
    S = cv2.GaussianBlur(np.hypot(z[..., 0], z[..., 1]), (5, 5), SPECTRAL_BLUR) ** 2
    S = (S / S.max()).astype(np.float32)
    return cv2.resize(S, (W, H), interpolation=cv2.INTER_LINEAR)                 # (H, W)


def _to_255(x: np.ndarray) -> np.ndarray:
    """x / max(x) on 0..255, truncated; zeros when x is all zero (x >= 0)."""
    top = x.max()
    return np.floor(x * 255.0 / top) if top > 0 else np.zeros_like(x)


def fine_grained(image: np.ndarray) -> np.ndarray:
    """Montabone and Soto's fine-grained saliency, as OpenCV computes it (module docstring).

    Args:
        image: (H, W, 3) uint8 RGB or (H, W) uint8 gray, H, W >= 1.

    Returns:
        (H, W) float32 in [0, 1], multiples of 1/255; zeros for a constant image.
    """
    c8 = cv2.GaussianBlur(cv2.GaussianBlur(_gray(image), (3, 3), 0), (3, 3), 0)  # (H, W) uint8
    H, W = c8.shape
    c = c8.astype(np.float32)
    # Integral image, its edges repeated P times: ii_P[P + i] = ii[clip(i, 0, H)], so every clipped
    # window corner is a slice.
    P = max(FINE_GRAINED_SCALES)
    ii_P = np.pad(cv2.integral(c8, sdepth=cv2.CV_32F), P, mode="edge")          # (H+1+2P, W+1+2P)
    y, x = np.arange(H), np.arange(W)
    on = np.zeros((H, W), np.float64)
    off = np.zeros((H, W), np.float64)
    for s in FINE_GRAINED_SCALES:
        lo, hi = P - s + 1, P + s + 1   # offsets in ii_P of the window's first and one-past-last line
        top, bottom = ii_P[lo:lo + H], ii_P[hi:hi + H]                            # (H, W + 1 + 2P) each
        left, right = slice(lo, lo + W), slice(hi, hi + W)
        box = ((bottom[:, right] + top[:, left]) - bottom[:, left]) - top[:, right]  # (H, W) window sums
        rows = np.clip(y + s + 1, 0, H) - np.clip(y - s + 1, 0, H)                 # (H,)
        cols = np.clip(x + s + 1, 0, W) - np.clip(x - s + 1, 0, W)                 # (W,)
        count = (rows[:, None] * cols[None, :]).astype(np.float32)                 # (H, W)
        # The surround leaves the centre out; a 1 x 1 image has no surround (difference 0).
        mean = np.divide(box - c, count - 1, out=c.copy(), where=count > 1)
        d = (c - mean).astype(np.float64)
        on += np.floor(np.maximum(d, 0.0))
        off += np.floor(np.maximum(-d, 0.0))
    S = np.minimum(_to_255(on) + _to_255(off), 255.0)                           # (H, W) 0..255
    return S.astype(np.float32) * np.float32(1 / 255)   # OpenCV's float32 scaling, bit for bit


class _StaticSaliency(ImageByImage):
    """A saliency map as a method: the map is the mask; its CorLoc box is the > 0.5 region's."""

    patch_size = 1   # boxes for CorLoc are taken at pixel resolution

    def _map(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        """The saliency map (H, W) in [0, 1] of an (H, W, 3) uint8 RGB image."""
        return Prediction(mask=self._map(image), patch_mask=None, box=None)

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """The box (4,) xyxy of the map's largest 4-connected > 0.5 region, or None."""
        return mask_to_box(self._map(image), patch_size=1, image_size=image.shape[:2])


class SpectralResidual(_StaticSaliency):
    """Spectral residual saliency (:func:`spectral_residual`) as ``--method spectral``."""

    name = "spectral"
    label = "spectral residual (Hou & Zhang 2007, OpenCV's StaticSaliencySpectralResidual)"

    def _map(self, image: np.ndarray) -> np.ndarray:
        return spectral_residual(image)


class FineGrained(_StaticSaliency):
    """Fine-grained saliency (:func:`fine_grained`) as ``--method finegrained``."""

    name = "finegrained"
    label = "fine grained (Montabone & Soto 2010, OpenCV's StaticSaliencyFineGrained)"

    def _map(self, image: np.ndarray) -> np.ndarray:
        return fine_grained(image)
