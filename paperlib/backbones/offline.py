"""The ``offline`` backbone: colour per patch and a border-contrast prior, shaped like ViT keys.

The best features this project computes without weights for TokenCut on real photos. Photos
are framed around their subject, so the image border is mostly background; a patch whose
colour is far from the border's, and far from it along every path across the image, is likely
object. That classic cue (background priors: geodesic saliency, Wei et al., ECCV 2012; border
contrast) carries half of the feature variance here; patch colour carries the rest, so that the
normalized cut follows colour boundaries around the prior's blob.

Keys (D = 10 on the 8 x 8 patch grid, h = H // 8, w = W // 8):

=========  ====  =====================================================================  =====
group      dims  what                                                                  share
=========  ====  =====================================================================  =====
colour        3  mean L*a*b* / 100 of the patch                                         0.25
context       3  the same averaged over the 3 x 3 neighbouring patches (mirrored edge)  0.20
spread        3  standard deviation of L*a*b* / 100 over the patch                      0.05
prior         1  border-contrast prior, centred at its Otsu threshold                   0.50
=========  ====  =====================================================================  =====

Colour channels are standardised per image; the prior p is shifted by its Otsu threshold (not
its mean) and divided by its standard deviation, so that the cut's split at mean(v) falls on
the prior's own object / background boundary rather than at a mean that would make about half
of the tokens foreground. Each group is then scaled by sqrt(share / dims).

The prior, on a grid of patch colours m (3, h, w): ``geo`` is the geodesic distance of each patch
from the outer ring of patches (Dijkstra on the 4-neighbour grid, edge weight = the distance of
the 3 x 3-averaged colours), ``contrast`` the mean of each patch's 10 % smallest colour distances
to the ring's patches; q = n(n(geo) * n(contrast)) with n = min-max to [0, 1]. p = n(q on the
8-pixel grid + q on the 16-pixel grid upsampled), the coarser grid skipped below 3 x 3.

Measured on the DUTS-TE sample (502 images, TokenCut with the ``border`` polarity rule of
:func:`paperlib.methods.tokencut.bipartition`): README "Offline segmentation".

Public API:
    border_prior(colours) -> ndarray       the prior p (h, w) in [0, 1] from patch colours (3, h, w).
    otsu_threshold(values, bins=64)        Otsu's threshold of an array's values.
    Offline(patch_size=8, name=None)       the :class:`~paperlib.backbones.features.Backbone`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import require
from .features import Backbone
from .filterbank import rgb_to_lab

# Each group's share of the key variance, and its channel count.
SHARES = {"colour": (0.25, 3), "context": (0.20, 3), "spread": (0.05, 3), "prior": (0.50, 1)}
CONTRAST_FRACTION = 0.10   # the share of ring patches whose colour distances are averaged


def _unit(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant array gives zeros."""
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 1e-12 else np.zeros_like(x)


def _ring(h: int, w: int) -> np.ndarray:
    """(h, w) bool, True on the first and last row and column."""
    ring = np.zeros((h, w), bool)
    ring[[0, -1]] = True
    ring[:, [0, -1]] = True
    return ring


def _context(colours: np.ndarray) -> np.ndarray:
    """(C, h, w) -> the mean over each patch's 3 x 3 neighbourhood, mirrored at the edges."""
    import cv2

    return np.stack([cv2.blur(c.astype(np.float32), (3, 3), borderType=cv2.BORDER_REFLECT) for c in colours])


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of the values of an array: the histogram split of largest between-class
    variance (``bins`` bins over [min, max]; the bin centre below the split is returned, as
    scikit-image's ``threshold_otsu``). A constant array gives its value."""
    x = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(x, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(hist)                                   # pixels at or below each bin
    above = np.cumsum(hist[::-1])[::-1]                       # pixels at or above each bin
    mean_below = np.cumsum(hist * centres) / np.maximum(below, 1)
    mean_above = (np.cumsum((hist * centres)[::-1]) / np.maximum(above[::-1], 1))[::-1]
    between = below[:-1] * above[1:] * (mean_below[:-1] - mean_above[1:]) ** 2
    return float(centres[:-1][np.argmax(between)])


def _geodesic_from_ring(colours: np.ndarray) -> np.ndarray:
    """(C, h, w) -> (h, w) shortest-path distance to the ring, 4-neighbour edges |c_i - c_j|."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    C, h, w = colours.shape
    index = np.arange(h * w).reshape(h, w)
    a = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])   # left and upper ends
    b = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])     # right and lower ends
    flat = colours.reshape(C, -1).astype(np.float64)
    weight = np.linalg.norm(flat[:, a] - flat[:, b], axis=0) + 1e-6       # > 0: a connected graph
    graph = coo_matrix((np.concatenate([weight, weight]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                       shape=(h * w, h * w)).tocsr()
    distance = dijkstra(graph, directed=False, indices=np.flatnonzero(_ring(h, w).ravel()), min_only=True)
    return distance.reshape(h, w)


def _border_contrast(colours: np.ndarray) -> np.ndarray:
    """(C, h, w) -> (h, w) mean of each patch's smallest colour distances to the ring's patches."""
    C, h, w = colours.shape
    flat = colours.reshape(C, -1).T.astype(np.float64)                     # (N, C)
    ring = flat[_ring(h, w).ravel()]                                        # (R, C)
    squared = (flat ** 2).sum(1)[:, None] + (ring ** 2).sum(1)[None] - 2 * flat @ ring.T
    distance = np.sqrt(np.maximum(squared, 0.0))                            # (N, R)
    k = max(1, int(CONTRAST_FRACTION * ring.shape[0]))
    return np.partition(distance, k - 1, axis=1)[:, :k].mean(axis=1).reshape(h, w)


def _prior_one_grid(colours: np.ndarray) -> np.ndarray:
    return _unit(_unit(_geodesic_from_ring(_context(colours))) * _unit(_border_contrast(colours)))


def border_prior(colours: np.ndarray) -> np.ndarray:
    """The border-contrast prior of one image from its patch colours (module docstring).

    Args:
        colours: (3, h, w) mean L*a*b* / 100 per patch, h, w >= 3.

    Returns:
        (h, w) float64 in [0, 1]: high where a patch differs from the image border.
    """
    import cv2

    C, h, w = colours.shape
    require(h >= 3 and w >= 3, f"the border prior needs a grid of at least 3 x 3 patches, got {h} x {w}")
    prior = _prior_one_grid(colours)
    h2, w2 = h // 2, w // 2
    if min(h2, w2) >= 3:
        coarse = colours[:, :2 * h2, :2 * w2].reshape(C, h2, 2, w2, 2).mean(axis=(2, 4))
        prior = prior + cv2.resize(_prior_one_grid(coarse).astype(np.float32), (w, h),
                                   interpolation=cv2.INTER_LINEAR)
    return _unit(prior)


def _standardise(f: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per channel over the grid (a flat channel stays ~0)."""
    return (f - f.mean(axis=(1, 2), keepdims=True)) / np.sqrt(f.var(axis=(1, 2), keepdims=True) + 1e-10)


class Offline(Backbone):
    """Offline backbone for real photos: patch colour and a border-contrast prior (module docstring).

    Deterministic, no weights, float32 keys on the images' device (computed on the CPU with NumPy,
    SciPy and OpenCV: Dijkstra and the prior have no GPU form here). TokenCut uses the
    ``border`` polarity rule on it (:attr:`tokencut_polarity`): the cut's side that touches the
    image border less is the object. Grids smaller than 3 x 3 patches are refused.

    Args:
        patch_size: the token grid's cell, 8 to match ViT-S/8's grid.
        name: the registry name (default 'offline', or 'offline<patch>').
    """

    tokencut_polarity = "border"

    def __init__(self, *, patch_size: int = 8, name: str | None = None):
        require(patch_size >= 1, f"patch_size must be >= 1, got {patch_size}")
        dim = sum(n for _, n in SHARES.values())
        super().__init__(name or f"offline{'' if patch_size == 8 else patch_size}", patch_size=patch_size,
                         dim=dim, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                         weights_id=f"offline-border-prior:p{patch_size}:v1")
        self.eval()

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(images.device.type, enabled=False):
            p = self.patch_size
            lab = rgb_to_lab(images.float()) / 100.0                          # (B, 3, H, W)
            mean = F.avg_pool2d(lab, p)                                       # (B, 3, h, w)
            spread = (F.avg_pool2d(lab ** 2, p) - mean ** 2).clamp_min(0.0).sqrt()
        keys = [self._keys(m, s) for m, s in zip(mean.cpu().double().numpy(), spread.cpu().double().numpy())]
        keys = torch.from_numpy(np.stack(keys)).to(images.device, torch.float32)   # (B, D, h, w)
        return keys, keys.flatten(2).transpose(1, 2)                          # (B, N, D)

    @staticmethod
    def _keys(colours: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """(3, h, w) patch colours and spreads -> (D, h, w) keys of one image."""
        prior = border_prior(colours)
        groups = {"colour": _standardise(colours), "context": _standardise(_context(colours).astype(np.float64)),
                  "spread": _standardise(spread),
                  "prior": ((prior - otsu_threshold(prior)) / max(float(prior.std()), 1e-6))[None]}
        return np.concatenate([groups[name] * math.sqrt(share / n) for name, (share, n) in SHARES.items()])
