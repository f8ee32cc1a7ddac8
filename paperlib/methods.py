"""Segmentation methods behind one interface, so every command takes ``--method NAME``.

A method turns an RGB image into a :class:`Prediction`: a soft or hard mask at the image's
size (before any refinement) and, where the method defines one, its own object box for CorLoc.
TokenCut is here; the trained Sempart head joins as ``sempart`` with ``--checkpoint FILE``, and
any other method's saved masks as ``masks`` with ``--masks DIR`` (:mod:`paperlib.mask_method`).

    build_method(name, backbone=..., weights=..., device=...)   -> a method
    method.predict(image)                                        -> Prediction
    method.discover(image)                                       -> box for CorLoc
    refine_prediction(image, prediction, refine=...)             -> the refined mask
    predict_refined(method, image, refine=...)                   -> both at once
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from .refine import RefineSettings, refine_mask
from .validation import check_choice, require

REFINEMENTS = ("none", "gf", "bf")


@dataclass(frozen=True)
class Prediction:
    """One image's prediction before refinement."""

    mask: np.ndarray                 # (H, W) float32 in [0, 1] at the image's size
    patch_mask: np.ndarray | None    # (h, w) float32 in [0, 1] on the backbone's patch grid
    box: np.ndarray | None           # (4,) xyxy pixels, x1 / y1 exclusive: the method's own box
    # Where the method wants trick 1 applied, if not at the image's size: (image (S, S, 3) uint8,
    # mask (S, S) float32) in the model's own frame (Sempart: the 320 x 320 input, SPEC "Guided filter").
    refine_frame: tuple[np.ndarray, np.ndarray] | None = None


class Method(Protocol):
    """What commands need from a segmentation method."""

    name: str
    patch_size: int

    def predict(self, image: np.ndarray, *, image_id: str | None = None) -> Prediction:
        """image (H, W, 3) uint8 RGB -> Prediction at (H, W); ``image_id`` keys the feature cache."""

    def discover(self, image: np.ndarray, *, image_id: str | None = None) -> np.ndarray | None:
        """image (H, W, 3) uint8 RGB -> the object box (4,) xyxy for CorLoc, or None."""


class TokenCut:
    """TokenCut (Wang et al.): training-free, one normalized cut of the last-block keys.

    Saliency follows TokenCut's protocol (image resized to multiples of the patch size, patch
    mask upsampled with nearest neighbours); object discovery pads the image to multiples of
    the patch size and boxes the seed's connected component, as TokenCut's CorLoc code does.

    The cut works on an N x N affinity, N = tokens, so memory grows with the fourth power of the
    image side: a 4000 x 3000 photo at patch 16 would need 17 GB. Images whose long side exceeds
    ``max_side`` are first shrunk to it (the benchmarks' images, at most 640 px, never are); the
    mask and the box come back at the original size.
    """

    name = "tokencut"

    def __init__(self, backbone, *, tau: float = 0.2, eps: float = 1e-5, solver: str = "auto",
                 cache=None, max_side: int | None = 1024):
        require(max_side is None or (isinstance(max_side, int) and max_side >= backbone.patch_size),
                f"max_side must be None or an int >= the patch size {backbone.patch_size}, got {max_side!r}")
        self.backbone = backbone
        self.patch_size = int(backbone.patch_size)
        self.tau, self.eps, self.solver = tau, eps, solver
        self.cache = cache      # a paperlib.feature_cache.FeatureCache, or None
        self.max_side = max_side

    def _shrunk(self, image: np.ndarray) -> np.ndarray:
        """The image with its long side at most ``max_side`` (PIL Lanczos), else itself."""
        from PIL import Image

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
        from .images import resize_mask
        from .tokencut import tokencut_saliency

        small = self._shrunk(image)
        out = tokencut_saliency(small, self._keys_source(image_id), tau=self.tau, eps=self.eps,
                                solver=self.solver)
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
        import torch
        import torch.nn.functional as F

        from .tokencut import backbone_device, tokencut_box, tokencut_patch_mask

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
        result = tokencut_patch_mask(keys, tau=self.tau, eps=self.eps, solver=self.solver)
        return tokencut_box(result, p, (height, width)).astype(np.float64)


class _CachedBackbone:
    """A backbone whose keys for one image id are read from (or written to) a feature cache."""

    def __init__(self, backbone, cache, image_id: str):
        from .tokencut import backbone_device

        self.backbone, self.cache, self.image_id = backbone, cache, image_id
        self.patch_size = backbone.patch_size
        self.device = backbone_device(backbone)

    def features(self, images):
        from .backbones import Features
        from .feature_cache import cached_features

        keys = cached_features(self.backbone, images, [self.image_id], self.cache)  # (1, D, h, w)
        return Features(keys=keys, tokens=keys.flatten(2).transpose(1, 2),
                        grid=tuple(keys.shape[-2:]))


METHODS = ("tokencut", "sempart", "masks")


def build_method(name: str, *, backbone: str = "dino_vits16", weights: str | None = None,
                 device: str | None = None, cache_dir: str | None = None,
                 checkpoint: str | None = None, protocol: str = "default",
                 protocol_options: dict | None = None, masks: str | None = None, **options) -> Method:
    """A method by name, with its backbone loaded (see :func:`paperlib.backbones.load_backbone`).

    Args:
        name: 'tokencut'.
        backbone: backbone name; 'filterbank' needs no weights.
        weights: official checkpoint file of the backbone, or None (hub / $PAPERLIB_WEIGHTS_DIR).
        device: 'cpu', 'cuda', ... (default: CUDA when available, else CPU).
        cache_dir: folder of the on-disk feature cache (keys reused across runs), or None.
        checkpoint: 'sempart' only: the trained head (.pt). Its own backbone name is used and
            ``weights`` is that backbone's file.
        protocol: 'sempart' only: evaluation protocol, 'default' or 'official' (SPEC).
        protocol_options: 'sempart' only: fields of the protocol to change (bn_mode, polarity,
            resolution, batch_size); None values are ignored.
        masks: 'masks' only: the folder of another method's predicted masks, one per image
            stem (:class:`paperlib.mask_method.MaskFolder`); no backbone is loaded.
        options: method options (TokenCut: tau, eps, solver).
    """
    from .backbones import load_backbone
    from .feature_cache import FeatureCache

    check_choice("method", name, METHODS)
    if name == "masks":
        from .mask_method import MaskFolder

        require(masks is not None, "method 'masks' needs --masks DIR (a folder of predicted masks)")
        return MaskFolder(masks)
    if name == "sempart":
        from .sempart import PROTOCOLS, load_sempart
        from .sempart_method import SempartMethod

        require(checkpoint is not None, "method 'sempart' needs --checkpoint FILE (a trained head)")
        check_choice("protocol", protocol, PROTOCOLS)
        model = load_sempart(checkpoint, backbone_weights=weights, device=resolve_device(device))
        changes = {k: v for k, v in (protocol_options or {}).items() if v is not None}
        return SempartMethod(model, protocol=replace(PROTOCOLS[protocol], **changes))
    net = load_backbone(backbone, weights=weights, device=resolve_device(device))
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    return TokenCut(net, cache=cache, **options)


def resolve_device(device: str | None):
    """The given device, or CUDA when available, else the CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def refine_prediction(image: np.ndarray, pred: Prediction, *, refine: str = "none",
                      settings: RefineSettings | None = None) -> np.ndarray:
    """A prediction's mask refined with its image: trick 1 (``gf``), ``bf``, or ``none``.

    The filter runs where the prediction asks (``pred.refine_frame``: Sempart's 320 x 320 input,
    where the paper sets r = 9) and the result is resized bilinearly to the image's size;
    otherwise it runs on the mask at the image's size (TokenCut, any folder of masks).

    Args:
        image: (H, W, 3) uint8 RGB.
        pred: the method's Prediction (mask after the polarity flip, for Sempart).
        refine: 'none', 'gf' or 'bf'.
        settings: filter parameters (default: the paper's); its ``method`` is replaced by ``refine``.

    Returns:
        (H, W) float32 in [0, 1]; the mask itself for 'none'.
    """
    from .images import resize_mask

    check_choice("refine", refine, REFINEMENTS)
    if refine == "none":
        return pred.mask
    settings = replace(settings or RefineSettings(), method=refine)
    if pred.refine_frame is None:
        return refine_mask(image, pred.mask, settings)
    frame_image, frame_mask = pred.refine_frame
    refined = refine_mask(frame_image, frame_mask, settings)                  # (S, S)
    return np.clip(resize_mask(refined, image.shape[:2]), 0.0, 1.0).astype(np.float32)


def predict_refined(method: Method, image: np.ndarray, *, refine: str = "none",
                    settings: RefineSettings | None = None, image_id: str | None = None
                    ) -> tuple[Prediction, np.ndarray]:
    """Predict one image and refine the mask (trick 1: ``gf``; ``bf``; or ``none``).

    Returns:
        (the raw Prediction, the refined mask (H, W) float32 in [0, 1]).
    """
    check_choice("refine", refine, REFINEMENTS)
    require(image.ndim == 3 and image.shape[2] == 3, f"image must be (H, W, 3), got {image.shape}")
    pred = method.predict(image, image_id=image_id)
    return pred, refine_prediction(image, pred, refine=refine, settings=settings)


def refined_box(image: np.ndarray, pred: Prediction, *, refine: str = "none",
                settings: RefineSettings | None = None) -> np.ndarray | None:
    """The CorLoc box of a prediction after trick 1 (paper Table 4's GF rows).

    With ``refine='none'`` it is the method's own box (TokenCut: the seed's component; Sempart:
    the largest component of its patch-resolution mask). Otherwise the refined mask is averaged
    over the prediction's patch grid and boxed like Sempart's raw box: threshold 0.5, largest
    4-connected component, scaled to the image (:func:`paperlib.corloc.mask_to_box`). Where the
    prediction has a model frame (Sempart: the 320 x 320 input), the filter runs there and its
    output is pooled over that frame's exact patches, as the raw box pools the raw mask;
    otherwise the refined mask at the image's size is averaged onto ``patch_mask``'s grid (the
    pixel grid when there is none).

    Args:
        image: (H, W, 3) uint8 RGB.
        pred: the method's Prediction for ``image``.
        refine: 'none', 'gf' or 'bf'.
        settings: filter parameters (default: the paper's).

    Returns:
        (4,) float64 xyxy box in the image's pixels, or None when nothing is foreground.
    """
    import torch
    import torch.nn.functional as F

    from .corloc import mask_to_box

    check_choice("refine", refine, REFINEMENTS)
    H, W = image.shape[:2]
    if refine == "none" and pred.box is not None:
        return pred.box
    h, w = pred.patch_mask.shape if pred.patch_mask is not None else (H, W)
    if pred.refine_frame is not None:
        frame_image, frame_mask = pred.refine_frame
        mask = (frame_mask if refine == "none"                                  # (S, S)
                else refine_mask(frame_image, frame_mask, replace(settings or RefineSettings(), method=refine)))
    else:
        mask = refine_prediction(image, pred, refine=refine, settings=settings)  # (H, W)
    cells = F.adaptive_avg_pool2d(torch.from_numpy(mask)[None, None], (h, w))[0, 0].numpy()  # (h, w)
    return mask_to_box(cells, patch_size=(H / h, W / w), image_size=(H, W), threshold=0.5)
