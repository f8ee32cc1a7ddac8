"""An on-disk cache of backbone keys, so that evaluation and TokenCut run the ViT once per image.

An entry is keyed by the backbone name, its configuration (``Backbone.config_id``: the SHA-256
of the weights file or ``hub:<timm name>``, plus the position-embedding rule; the filter bank's
settings), the image id, the input size fed to the backbone and the compute precision. Files are written atomically
(:func:`paperlib.images.atomic_path`) and read with ``torch.load(weights_only=True)``.

Only for deterministic inputs: an image id must always name the same pixels at a given size.
Each entry stores an 8x8 thumbnail of the input, and :func:`cached_features` refuses an entry
whose thumbnail disagrees with the image (a flipped or cropped view under the same id).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from ..checks import InputError, check_tensor, require
from ..images import atomic_path
from .features import Backbone

# Thumbnails of the same pixels agree to float rounding; different views differ by far more.
_FINGERPRINT_SIZE = 8
_FINGERPRINT_ATOL = 1e-3


class CacheKey(NamedTuple):
    """Everything that determines one image's keys.

    Attributes:
        backbone: the backbone's registry name.
        config: ``Backbone.config_id`` (weights and options).
        image_id: the image's stem or path.
        size: (H, W) of the input fed to the backbone.
        precision: 'float32', or the autocast dtype's name ('bfloat16').
    """

    backbone: str
    config: str
    image_id: str
    size: tuple[int, int]
    precision: str = "float32"


def _slug(text: str, keep: int = 40) -> str:
    """A file-name-safe, collision-free name: readable tail of ``text`` plus a short hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-keep:].lstrip(".")
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def image_fingerprint(images: torch.Tensor) -> torch.Tensor:
    """8x8 average-pooled thumbnails that tell apart two views stored under one id.

    Args:
        images: (B, 3, H, W) float.

    Returns:
        (B, 3, 8, 8) float32 on the CPU.
    """
    return F.adaptive_avg_pool2d(images.detach().float(), _FINGERPRINT_SIZE).cpu()


class FeatureCache:
    """Backbone keys on disk, one ``.pt`` file per :class:`CacheKey`.

    Layout: ``root/<backbone>/<config>/<H>x<W>-<precision>/<image id>.pt``.

    Args:
        root: the cache folder (created on the first write).
        half: store float16 (half the disk; keys are O(1), so the rounding is ~1e-3 relative).
    """

    def __init__(self, root: str | Path, *, half: bool = False):
        self.root = Path(root)
        self.half = half

    def path(self, key: CacheKey) -> Path:
        """Where the entry for ``key`` lives."""
        H, W = key.size
        return (self.root / _slug(key.backbone) / _slug(key.config) / f"{H}x{W}-{key.precision}"
                / f"{_slug(key.image_id)}.pt")

    def get(self, key: CacheKey, *, fingerprint: torch.Tensor | None = None) -> torch.Tensor | None:
        """The stored keys (D, h, w) as float32 on the CPU, or None when absent or unreadable.

        Args:
            key: the entry.
            fingerprint: (3, 8, 8) thumbnail of the input (:func:`image_fingerprint`); when given,
                an entry stored for different pixels raises :class:`InputError`.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # unreadable (another torch version, a damaged disk): recompute it
            return None
        if not isinstance(entry, dict) or tuple(entry.get("key", ())) != _plain(key):
            return None  # a file from another layout, or a hash collision
        stored = entry.get("fingerprint")
        if fingerprint is not None and stored is not None and not torch.allclose(
                stored.float(), fingerprint.float().cpu(), atol=_FINGERPRINT_ATOL, rtol=0.0):
            raise InputError(f"feature cache {path}: image id {key.image_id!r} was cached for "
                             f"different pixels at size {key.size}; the cache needs deterministic "
                             f"inputs (no random augmentation), or delete the stale entry")
        return entry["keys"].float()

    def put(self, key: CacheKey, keys: torch.Tensor, *, fingerprint: torch.Tensor | None = None) -> Path:
        """Store one image's keys atomically; returns the file written.

        Args:
            key: the entry.
            keys: (D, h, w) float.
            fingerprint: (3, 8, 8) thumbnail of the input, kept to check later reads.
        """
        check_tensor("keys", keys, ndim=3, floating=True)
        dtype = torch.float16 if self.half else torch.float32
        # A fresh contiguous copy: saving a view of a batch would save the whole batch's storage.
        entry = {"key": _plain(key), "keys": keys.detach().to("cpu", dtype).contiguous().clone()}
        if fingerprint is not None:
            entry["fingerprint"] = fingerprint.detach().float().cpu().contiguous().clone()
        path = self.path(key)
        with atomic_path(path) as tmp:
            torch.save(entry, tmp)
        return path


def _plain(key: CacheKey) -> tuple:
    """The key as builtins only, so that ``torch.load(weights_only=True)`` reads it back."""
    return (str(key.backbone), str(key.config), str(key.image_id),
            (int(key.size[0]), int(key.size[1])), str(key.precision))


def cached_features(backbone: Backbone, images: torch.Tensor, ids: Sequence[str],
                    cache: FeatureCache | None, *, autocast: torch.dtype | None = None) -> torch.Tensor:
    """The backbone's keys for a batch, computing only the images missing from the cache.

    Paper section 3: the backbone is frozen, so its keys for a fixed input never change.

    Args:
        backbone: a loaded :class:`~paperlib.backbones.registry.Backbone` (not a random initialisation).
        images: (B, 3, H, W) float RGB in [0, 1], H and W multiples of the patch size.
        ids: B image ids (stems or paths), one per image.
        cache: the cache, or None to compute everything.
        autocast: passed to :meth:`Backbone.features`; part of the cache key.

    Returns:
        (B, D, h, w) float32 keys on the images' device.
    """
    check_tensor("images", images, ndim=4, channels=3, floating=True)
    ids = [str(i) for i in ids]
    require(len(ids) == images.shape[0], f"ids: got {len(ids)} ids for {images.shape[0]} images")
    if cache is None:
        return backbone.features(images, autocast=autocast).keys
    require(backbone.weights_id != "random-init",
            f"{backbone.name}: a randomly initialised backbone cannot be cached")

    precision = "float32" if autocast is None else str(autocast).removeprefix("torch.")
    size = (int(images.shape[-2]), int(images.shape[-1]))
    cache_keys = [CacheKey(backbone.name, backbone.config_id, i, size, precision) for i in ids]
    prints = image_fingerprint(images)                                   # (B, 3, 8, 8)
    found = [cache.get(k, fingerprint=fp) for k, fp in zip(cache_keys, prints)]

    missing = [b for b, keys in enumerate(found) if keys is None]
    if missing:
        computed = backbone.features(images[missing], autocast=autocast).keys  # (M, D, h, w)
        stored_dtype = torch.float16 if cache.half else torch.float32
        for b, keys in zip(missing, computed):
            cache.put(cache_keys[b], keys, fingerprint=prints[b])
            found[b] = keys.to(stored_dtype)  # the first run returns what later runs will read
    return torch.stack([keys.to(images.device, torch.float32) for keys in found])  # (B, D, h, w)
