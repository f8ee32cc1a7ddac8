"""The interface every backbone implements: :class:`Backbone` and the :class:`Features` it returns.

Paper section 3: a frozen feature extractor turns images into patch features for the head.
A backbone takes **(B, 3, H, W) float RGB in [0, 1]** (H, W multiples of its patch size),
applies its own normalisation and returns the last block's keys, the final tokens and the
patch grid. :mod:`paperlib.backbones.vit` (the ViTs, built by :func:`~paperlib.backbones.registry.load_backbone`)
and :mod:`paperlib.backbones.filterbank` (the offline filter bank) implement it.

Public API:
    IMAGENET_MEAN, IMAGENET_STD, normalise   the ImageNet input normalisation (the constants'
                                             home is :mod:`paperlib.backbones.catalog`).
    image_tensor, tensor_image, resize_bilinear   uint8 images <-> (1, 3, H, W) tensors, resizing.
    Features   NamedTuple (keys (B, D, h, w), tokens (B, N, D), grid (h, w)).
    Backbone   nn.Module base: validates the images, runs ``_extract`` (or ``_extract_keys`` for
               :meth:`Backbone.keys`) without gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_tensor, require
from .catalog import IMAGENET_MEAN, IMAGENET_STD

# Inputs outside [-0.25, 1.25] are not [0, 1] images: they are 0..255 or already normalised.
# The slack lets through the overshoot of a bicubic resize.
_RANGE_SLACK = 0.25


def image_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device).float() / 255.0


def tensor_image(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8 RGB, rounded as PIL rounds."""
    return (x[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def resize_bilinear(x: torch.Tensor, size: tuple[int, int], *, antialias: bool) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to ``size`` = (H', W'), ``align_corners=False``; x itself if equal.

    ``antialias=True`` matches PIL's bilinear and torchvision's ``Resize`` on images (the Sempart
    head's input); ``antialias=False`` is the head's own up-sampling of features and images.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation: the Sempart head's image input (paper appendix; docs/paper_and_code.md#head).

    Args:
        images: (B, 3, H, W) float RGB in [0, 1].

    Returns:
        (B, 3, H, W) ``(images - IMAGENET_MEAN) / IMAGENET_STD`` per channel.
    """
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


class Features(NamedTuple):
    """What a backbone returns for a batch of images.

    Attributes:
        keys: (B, D, h, w) float32, the last block's keys (docs/paper_and_code.md#backbone-features).
        tokens: (B, N, D) float32, the final normed patch tokens, row-major over (h, w).
        grid: (h, w), the patch grid.
    """

    keys: torch.Tensor
    tokens: torch.Tensor
    grid: tuple[int, int]


class Backbone(nn.Module):
    """A frozen feature extractor: (B, 3, H, W) images in [0, 1] -> :class:`Features`.

    Attributes:
        name: the registry name (``dino_vits8``, ``filterbank``, ...).
        patch_size: pixels per token side.
        dim: D, channels of a key token.
        mean, std: the per-channel normalisation the backbone applies to its [0, 1] input.
        weights_id: what the weights were: ``sha256:<hex>`` of a file, ``hub:<timm name>``,
            ``filterbank:...`` (its settings) or ``random-init``.
        config_id: weights_id plus any option that changes the features; caches key on it.
    """

    def __init__(self, name: str, *, patch_size: int, dim: int, mean: tuple[float, ...],
                 std: tuple[float, ...], weights_id: str):
        super().__init__()
        self.name = name
        self.patch_size = patch_size
        self.dim = dim
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.weights_id = weights_id

    @property
    def config_id(self) -> str:
        """Everything besides the input that fixes the features: the weights and any option."""
        return self.weights_id

    def train(self, mode: bool = True) -> "Backbone":
        """Stay in eval mode whatever a parent module asks: the backbone is frozen."""
        return super().train(False)

    def features(self, images: torch.Tensor, *, autocast: torch.dtype | None = None) -> Features:
        """Features of a batch of images, without gradients.

        Paper section 3 (frozen DINO features); docs/paper_and_code.md#backbone-features.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1], **not** normalised; H and W multiples of
                ``patch_size`` (use :func:`resize_to_multiple`).
            autocast: run under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16``);
                the outputs are float32 either way.

        Returns:
            :class:`Features` with keys (B, D, h, w), tokens (B, N, D) and grid (h, w).
        """
        h, w = self._check_images(images)
        with torch.no_grad(), torch.autocast(images.device.type, dtype=autocast or torch.bfloat16,
                                             enabled=autocast is not None):
            keys, tokens = self._extract(images)
        return Features(keys.float().contiguous(), tokens.float().contiguous(), (h, w))

    def keys(self, images: torch.Tensor, *, autocast: torch.dtype | None = None) -> torch.Tensor:
        """The last block's keys alone: ``features(images).keys``, without the work after them.

        A ViT stops at the last block's qkv projection: the block's attention and MLP and the
        final norm are skipped (7 % of ViT-S/8's arithmetic at 320 px; 1.16x faster on a CPU,
        where attention costs more than its FLOPs). Training runs two such passes per image.

        Args:
            images: as :meth:`features`.
            autocast: as :meth:`features`.

        Returns:
            (B, D, h, w) float32 keys, equal to ``features(images, autocast=autocast).keys``.
        """
        self._check_images(images)
        with torch.no_grad(), torch.autocast(images.device.type, dtype=autocast or torch.bfloat16,
                                             enabled=autocast is not None):
            keys = self._extract_keys(images)
        return keys.float().contiguous()

    def _check_images(self, images: torch.Tensor) -> tuple[int, int]:
        """Validate a batch for :meth:`features`; returns the patch grid (h, w)."""
        check_tensor("images", images, ndim=4, channels=3, floating=True)
        B, _, H, W = images.shape
        p = self.patch_size
        require(B > 0, "images: the batch is empty")
        require(H % p == 0 and W % p == 0,
                f"images: {self.name} needs H and W that are multiples of its patch size {p}, got "
                f"{H}x{W}; resize first, e.g. paperlib.backbones.registry.resize_to_multiple(images, {p})")
        lo, hi = (float(v) for v in torch.aminmax(images.detach()))
        require(lo >= -_RANGE_SLACK and hi <= 1.0 + _RANGE_SLACK,
                f"images must be RGB in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; pass them "
                f"un-normalised (the backbone applies its own mean/std)")
        return H // p, W // p

    def forward(self, images: torch.Tensor) -> Features:
        """Same as :meth:`features`."""
        return self.features(images)

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement _extract")

    def _extract_keys(self, images: torch.Tensor) -> torch.Tensor:
        """Keys (B, D, h, w); subclasses that can stop early override it."""
        return self._extract(images)[0]

    def extra_repr(self) -> str:
        return f"name={self.name!r}, patch_size={self.patch_size}, dim={self.dim}, weights={self.weights_id!r}"
