"""TokenCut (Wang et al. 2022): a training-free foreground mask from one normalized cut of tokens.

Stages, each a function (docs/paper_and_code.md#tokencut):

1. :func:`tokencut_patch_mask`: keys (D, h, w) -> binary affinity (tau 0.2, eps 1e-5) ->
   second-smallest generalised eigenvector -> :func:`bipartition`: split at mean(v), the side of
   the seed argmax |v| is foreground, keep the seed's 4-connected component.
2. :func:`tokencut_saliency`: the saliency protocol at full resolution: resize the image so
   each side is the nearest multiple of the patch size, take the backbone's keys, cut, upsample
   the patch mask (nearest) to the original size. Refinement (+GF, +BF) starts from this
   binary mask.
3. :func:`tokencut_box`: the object-discovery box (CorLoc) of the seed's component.
4. :class:`TokenCut`: the stages as a :class:`paperlib.methods.base.Method` (``--method tokencut``).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones.cache import cached_features
from ..backbones.features import Features
from ..backbones.registry import multiple_size
from ..checks import InputError, check_choice, check_positive, check_tensor, require
from ..devices import backbone_device
from ..images import resize_mask
from ..losses.ncut import affinity, second_smallest_eigenvector
from ..losses.settings import TOKENCUT_AFFINITY, check_affinity
from .base import ImageByImage, Prediction


class TokenCutResult(NamedTuple):
    """TokenCut's cut of one image on its h x w patch grid."""

    mask: np.ndarray             # (h, w) bool, the object: the seed's 4-connected component
                                 # (polarity "seed") or the whole side (polarity "border")
    bipartition: np.ndarray      # (h, w) bool, the seed's side v > mean(v), all components
    eigvec: np.ndarray           # (h, w) float64, second eigenvector, signed so the object is v > mean(v)
    seed: tuple[int, int]        # (row, col) of argmax |v| (seed rule) or of the object side's max v (border)
    component_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) of mask in patches, x1/y1 exclusive


class TokenCutSaliency(NamedTuple):
    """TokenCut's saliency output for one image."""

    mask: np.ndarray              # (H, W) float32 in {0, 1} at the original image size
    patch: TokenCutResult         # the cut on the patch grid of the resized image
    input_size: tuple[int, int]   # (H', W') the image was resized to, multiples of the patch size


class FeatureBackbone(Protocol):
    """What :func:`tokencut_saliency` needs from a backbone (paperlib.backbones.registry provides it)."""

    patch_size: int

    def features(self, images: torch.Tensor):
        """images (B, 3, H, W) RGB in [0, 1] -> an object whose ``.keys`` is (B, D, h, w)."""


POLARITIES = ("seed", "border")
# Keys whose every channel varies less than this over the tokens are taken as one region.
FLAT_KEYS = 1e-6


def bipartition(v, grid: tuple[int, int], *, polarity: str = "seed") -> TokenCutResult:
    """Split an eigenvector into TokenCut's foreground (docs/paper_and_code.md#tokencut).

    The tokens are split at ``mean(v)``; which side is the object is the polarity rule:

    - ``"seed"`` (TokenCut's, the default, and the paper's with DINO keys): the side of the seed
      ``argmax |v|`` (the first on ties), restricted to the seed's 4-connected component.
    - ``"border"`` (for offline features, whose extreme token is as often background): the side
      holding fewer tokens of the grid's outer ring (first and last row and column), the smaller
      side on a tie, the side of argmax |v| on a tie of both; the whole side is the mask (a photo may hold several objects), and the
      seed is that side's most extreme token, whose component gives the box.

    Either rule fixes the sign of ``v`` itself, so ``v`` and ``-v`` give the same result.

    Args:
        v: (N,) or (h, w) eigenvector, torch tensor or numpy array, N = h * w, not constant.
        grid: (h, w) patch grid; tokens are row-major, node ``n = row * w + col``.
        polarity: ``"seed"`` or ``"border"``.

    Returns:
        TokenCutResult with (h, w) arrays.
    """
    from scipy import ndimage

    h, w = (int(x) for x in grid)
    require(h >= 1 and w >= 1, f"grid must be two positive sizes (h, w), got {grid!r}")
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    require(v.size == h * w, f"v must hold h * w = {h * w} values for grid {(h, w)}, got {v.size}")
    require(bool(np.isfinite(v).all()), "v must be finite")
    require(bool(v.max() > v.min()), "v is constant: it does not split the tokens")

    check_choice("polarity", polarity, POLARITIES)
    if polarity == "border":
        above, below = (v > v.mean()).reshape(h, w), (v < v.mean()).reshape(h, w)
        ring = np.zeros((h, w), bool)
        ring[[0, -1]] = True
        ring[:, [0, -1]] = True
        ties = ((int((above & ring).sum()), int((below & ring).sum())), (int(above.sum()), int(below.sum())))
        tied = [a for a, b in ties if a != b]
        if tied:            # fewer ring tokens, then fewer tokens: the object's side
            take_above = next(a < b for a, b in ties if a != b)
        else:               # a perfect tie either way: the side of the largest |v|, as the seed rule
            take_above = bool(v[np.argmax(np.abs(v))] > v.mean())
        if not take_above:
            v = -v          # the object's side is v > mean(v) from here on
        seed = int(np.argmax(v))          # the object side's most extreme token
    else:
        seed = int(np.argmax(np.abs(v)))
        if v[seed] < 0:
            v = -v
    side = (v > v.mean()).reshape(h, w)  # v[seed] = max(v) > mean(v): the seed is on this side
    components, _ = ndimage.label(side)  # scipy's default structure: 4-connectivity in 2-D
    row, col = divmod(seed, w)
    component = components == components[row, col]
    mask = side if polarity == "border" else component
    rows, cols = np.nonzero(component)
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    return TokenCutResult(mask=mask, bipartition=side, eigvec=v.reshape(h, w),
                          seed=(row, col), component_box=box)


def tokencut_patch_mask(keys: torch.Tensor, *, tau: float = TOKENCUT_AFFINITY.tau,
                        eps: float = TOKENCUT_AFFINITY.eps, binary: bool = True,
                        solver: str = "auto", polarity: str = "seed") -> TokenCutResult:
    """TokenCut on one image's keys: affinity -> eigenvector -> bipartition (docs/paper_and_code.md#tokencut).

    Args:
        keys: (1, D, h, w) or (D, h, w) features (last-block keys).
        tau: affinity threshold, 0.2 (TokenCut).
        eps: weight of unlinked pairs, 1e-5 (TokenCut).
        binary: binary graph (TokenCut's default) or TokenCut's soft ablation, see ncut.affinity.
        solver: eigen solver, see ncut.second_smallest_eigenvector.
        polarity: which side is the object, ``"seed"`` or ``"border"`` (:func:`bipartition`).

    Returns:
        TokenCutResult on the (h, w) grid.
    """
    check_tensor("keys", keys, ndim=(3, 4), floating=True)
    if keys.ndim == 3:
        keys = keys[None]
    require(keys.shape[0] == 1,
            f"keys must hold one image (1, D, h, w), got shape {tuple(keys.shape)}")
    _, _, h, w = keys.shape
    require(h * w >= 2, f"keys need at least 2 tokens, got a {h} x {w} grid")
    if float(keys.detach().flatten(2).std(dim=-1).max()) < FLAT_KEYS:
        # Every token alike (a blank image on a backbone that standardises per image): the graph
        # has no cut worth the name, so nothing is foreground rather than a split of noise.
        empty = np.zeros((h, w), bool)
        return TokenCutResult(mask=empty, bipartition=empty, eigvec=np.zeros((h, w)), seed=(0, 0),
                              component_box=(0, 0, 0, 0))
    # float64 like TokenCut's NumPy graph (eps = 1e-5 exactly); the solvers run in float64 anyway.
    W = affinity(keys.detach().double(), tau=tau, eps=eps, binary=binary)  # (1, N, N)
    v, _ = second_smallest_eigenvector(W[0], solver=solver)                # (N,) float64
    return bipartition(v, (h, w), polarity=polarity)


def tokencut_saliency(image: np.ndarray, backbone: FeatureBackbone, *,
                      tau: float = TOKENCUT_AFFINITY.tau, eps: float = TOKENCUT_AFFINITY.eps,
                      binary: bool = True, solver: str = "auto", polarity: str = "seed") -> TokenCutSaliency:
    """TokenCut's unsupervised saliency mask of an image at full resolution (docs/paper_and_code.md#tokencut).

    As TokenCut's ``get_saliency.py``: the image is resized (PIL Lanczos, on the uint8 image)
    so that each side is rounded to the nearest multiple of the patch size,
    ``round(H / p) * p`` with Python's ``round`` (halves to even; ``backbones.multiple_size``),
    at least one patch, no crop, no padding; the keys of that image are cut
    (:func:`tokencut_patch_mask`); the seed component's patch mask is upsampled with nearest
    neighbours straight from the h x w grid to the original H x W (TokenCut's
    ``F.interpolate(mode="nearest")``). No refinement here: GF / BF take this binary mask as
    their input.

    Args:
        image: (H, W, 3) uint8 RGB.
        backbone: has ``patch_size`` and ``features(images)``, images (1, 3, H', W') RGB in
            [0, 1] (the backbone normalises); the result's ``.keys`` is (1, D, H'/p, W'/p). The
            images are built on ``backbone.device`` if it has one, else on the device of its
            first parameter or buffer, else on the CPU.
        tau, eps, binary, solver, polarity: see :func:`tokencut_patch_mask`.

    Returns:
        TokenCutSaliency(mask (H, W) float32 in {0, 1}, patch result, (H', W')).
    """
    from PIL import Image

    require(isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3,
            f"image must be a uint8 (H, W, 3) RGB array, got "
            f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    p = getattr(backbone, "patch_size", None)
    require(isinstance(p, int) and p > 0, "backbone must have an int patch_size > 0")
    check_positive("eps", eps)
    H, W = image.shape[:2]
    Hr, Wr = multiple_size(H, W, p, rounding="round")
    resized = np.asarray(Image.fromarray(image).resize((Wr, Hr), resample=Image.LANCZOS))
    x = torch.from_numpy(resized.copy()).permute(2, 0, 1)[None]  # (1, 3, H', W') uint8
    x = x.to(backbone_device(backbone), torch.float32) / 255.0
    with torch.no_grad():
        keys = backbone.features(x).keys  # (1, D, h, w)
    if keys.shape[-2:] != (Hr // p, Wr // p):
        raise InputError(f"backbone returned a {tuple(keys.shape[-2:])} grid for a {Hr} x {Wr} "
                         f"image with patch {p}; expected {(Hr // p, Wr // p)}")
    patch = tokencut_patch_mask(keys, tau=tau, eps=eps, binary=binary, solver=solver, polarity=polarity)
    m = torch.from_numpy(patch.mask.astype(np.float32))[None, None]  # (1, 1, h, w)
    mask = F.interpolate(m, size=(H, W), mode="nearest")[0, 0].numpy()  # (H, W)
    return TokenCutSaliency(mask=mask, patch=patch, input_size=(Hr, Wr))


def tokencut_box(result: TokenCutResult, patch_size: int,
                 image_size: tuple[int, int]) -> np.ndarray:
    """TokenCut's object-discovery box: the seed component's extent in pixels (CorLoc).

    The component's patch box is scaled by the patch size and its right / bottom edges clipped
    to the image, as TokenCut's ``detect_box`` (the image there is zero-padded to multiples of
    the patch size, so the last patches may overhang it).

    Args:
        result: TokenCutResult of the image.
        patch_size: the backbone's patch size p.
        image_size: (H, W) of the image before padding.

    Returns:
        (4,) int64 box (x0, y0, x1, y1) in pixels, x1 / y1 exclusive.
    """
    require(isinstance(result, TokenCutResult), "result must be a TokenCutResult")
    check_positive("patch_size", patch_size)
    H, W = image_size
    x0, y0, x1, y1 = (c * patch_size for c in result.component_box)
    return np.array([min(x0, W), min(y0, H), min(x1, W), min(y1, H)], dtype=np.int64)


# ----------------------------------------------------------------------------- the method

class TokenCut(ImageByImage):
    """TokenCut (Wang et al.): training-free, one normalized cut of the last-block keys.

    Saliency follows TokenCut's protocol (image resized to multiples of the patch size, patch
    mask upsampled with nearest neighbours); object discovery pads the image to multiples of
    the patch size and boxes the seed's connected component, as TokenCut's CorLoc code does.

    The cut works on an N x N affinity, N = tokens, so memory grows with the fourth power of the
    image side: a 4000 x 3000 photo at patch 16 would need 17 GB. Images whose long side exceeds
    ``max_side`` are first shrunk to it (the benchmarks' images, at most 640 px, never are); the
    mask and the box come back at the original size.

    ``polarity`` (:func:`bipartition`) defaults to the backbone's ``tokencut_polarity``: the seed
    rule for DINO keys (the paper's), the border rule for the ``offline`` backbone.
    """

    name = "tokencut"

    def __init__(self, backbone, *, tau: float = TOKENCUT_AFFINITY.tau, eps: float = TOKENCUT_AFFINITY.eps,
                 solver: str = "auto", polarity: str | None = None,
                 cache=None, max_side: int | None = 1024):
        require(max_side is None or (isinstance(max_side, int) and max_side >= backbone.patch_size),
                f"max_side must be None or an int >= the patch size {backbone.patch_size}, got {max_side!r}")
        check_affinity(tau, eps)   # before any image: a bad --tau is one line naming it
        # The rule the backbone's features call for: TokenCut's seed for DINO keys, the border
        # rule for the offline backbone (its ``tokencut_polarity``).
        self.polarity = polarity if polarity is not None else getattr(backbone, "tokencut_polarity", "seed")
        check_choice("polarity", self.polarity, POLARITIES)
        self.backbone = backbone
        self.patch_size = int(backbone.patch_size)
        self.tau, self.eps, self.solver = tau, eps, solver
        self.cache = cache      # a paperlib.backbones.cache.FeatureCache, or None
        self.max_side = max_side

    def _shrunk(self, image: np.ndarray) -> np.ndarray:
        """The image with its long side at most ``max_side`` (PIL Lanczos), else itself."""
        height, width = image.shape[:2]
        if self.max_side is None or max(height, width) <= self.max_side:
            return image
        scale = self.max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return np.array(Image.fromarray(image).resize(size, resample=Image.LANCZOS))

    def _keys_source(self, image_id: str | None):
        """The backbone, or the backbone seen through the feature cache for this image."""
        if self.cache is None or image_id is None:
            return self.backbone
        return _CachedBackbone(self.backbone, self.cache, image_id)

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        small = self._shrunk(image)
        out = tokencut_saliency(small, self._keys_source(image_id), tau=self.tau, eps=self.eps,
                                solver=self.solver, polarity=self.polarity)
        mask = resize_mask(out.mask, image.shape[:2], mode="nearest")
        return Prediction(mask=mask.astype(np.float32),
                          patch_mask=out.patch.mask.astype(np.float32), box=None)

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        small = self._shrunk(image)
        box = self._discover(small, image_id)
        if small is image:
            return box
        sy, sx = image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]
        return np.minimum(box * [sx, sy, sx, sy], [image.shape[1], image.shape[0]] * 2)

    def _discover(self, image: np.ndarray, image_id: str | None) -> np.ndarray:
        height, width = image.shape[:2]
        p = self.patch_size
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        # Pad bottom / right to multiples of the patch as TokenCut's object discovery does: with
        # zeros after normalisation, i.e. with the normalisation's mean colour before it.
        mean = torch.tensor(getattr(self.backbone, "mean", (0.0, 0.0, 0.0)))[None, :, None, None]
        x = F.pad(x - mean, (0, (-width) % p, 0, (-height) % p)) + mean   # (1, 3, H', W')
        source = self._keys_source(image_id)
        with torch.no_grad():
            keys = source.features(x.to(backbone_device(self.backbone))).keys  # (1, D, h, w)
        result = tokencut_patch_mask(keys, tau=self.tau, eps=self.eps, solver=self.solver, polarity=self.polarity)
        return tokencut_box(result, p, (height, width)).astype(np.float64)


class _CachedBackbone:
    """A backbone whose keys for one image id are read from (or written to) a feature cache."""

    def __init__(self, backbone, cache, image_id: str):
        self.backbone, self.cache, self.image_id = backbone, cache, image_id
        self.patch_size = backbone.patch_size
        self.device = backbone_device(backbone)

    def features(self, images):
        keys = cached_features(self.backbone, images, [self.image_id], self.cache)  # (1, D, h, w)
        return Features(keys=keys, tokens=keys.flatten(2).transpose(1, 2),
                        grid=tuple(keys.shape[-2:]))
