"""The backbone registry and :func:`load_backbone`: a name and a weights source in, a frozen backbone out.

Paper section 3 / Table 4: the head reads the last block's keys of a frozen self-supervised ViT
(DINO ViT-S/8 by default; ViT-S/16, B/8, B/16 and iBOT ViT-S/16 compared). :data:`BACKBONES`
names each one, with its timm architecture, patch size, key dimension and official weight file;
the ViT itself and its position-embedding resampling are :mod:`paperlib.backbones.vit`, the reading of
official weight files is :mod:`paperlib.backbones.weights`.

Every backbone takes images as **(B, 3, H, W) float RGB in [0, 1]** and applies its own
normalisation (``backbone.mean`` / ``backbone.std``); H and W must be multiples of
``backbone.patch_size`` (:func:`resize_to_multiple` gets them there).

Weights never come from a silent random initialisation. :func:`load_backbone` takes them, in
order, from ``weights=FILE`` (an official checkpoint), from ``$PAPERLIB_WEIGHTS_DIR/<official
file name>``, or from timm's hub; when none is available it raises one :class:`InputError` that
says which file to download and how to pass it, and names ``--backbone offline``. ``offline``
(patch colour and a border-contrast prior, :mod:`paperlib.backbones.offline`) and ``filterbank``
(colour and texture statistics, :mod:`paperlib.backbones.filterbank`) need no weights at all, so
the whole pipeline runs offline.

Public API: :func:`load_backbone`, :func:`multiple_size`, :func:`resize_to_multiple`; the registry
:data:`BACKBONES` and its :class:`BackboneInfo` live in the torch-free
:mod:`paperlib.backbones.catalog` (imported here too). The interface every backbone implements
(:class:`Backbone`, :class:`Features`) is :mod:`paperlib.backbones.features`.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checks import InputError, check_choice, check_tensor, require
from .catalog import BACKBONES, BackboneInfo
from .features import Backbone
from .filterbank import FilterBank
from .offline import Offline
from .vit import POS_INTERPOLATIONS, ViTBackbone
from .weights import file_sha256, load_weights_file

WEIGHTS_DIR_ENV = "PAPERLIB_WEIGHTS_DIR"  # a folder holding official files under their own names


# --------------------------------------------------------------------------------------------
# Sizes

def multiple_size(height: int, width: int, patch: int, *, rounding: str = "round") -> tuple[int, int]:
    """The nearest (H, W) that are multiples of ``patch``, at least one patch each.

    ``round`` is TokenCut's saliency rule (``int(round(w / 16)) * 16``, Python's rounding);
    ``floor`` and ``ceil`` are offered for crops and pads.

    Args:
        height, width: the image size in pixels.
        patch: the backbone's patch size.
        rounding: 'round', 'floor' or 'ceil'.

    Returns:
        (H, W), both multiples of ``patch``.
    """
    check_choice("rounding", rounding, ("round", "floor", "ceil"))
    to_int = {"round": round, "floor": math.floor, "ceil": math.ceil}[rounding]
    return tuple(max(1, int(to_int(side / patch))) * patch for side in (height, width))


def resize_to_multiple(images: torch.Tensor, patch: int, *, rounding: str = "round") -> torch.Tensor:
    """Resize images so that H and W are multiples of ``patch`` (TokenCut's preprocessing).

    Bicubic with antialiasing (TokenCut resizes with PIL's Lanczos), clamped back to [0, 1].
    Images already at a multiple come back unchanged.

    Args:
        images: (B, 3, H, W) float RGB in [0, 1].
        patch: the backbone's patch size.
        rounding: 'round', 'floor' or 'ceil' (see :func:`multiple_size`).

    Returns:
        (B, 3, H', W') with H', W' multiples of ``patch``.
    """
    check_tensor("images", images, ndim=4, floating=True)
    size = multiple_size(images.shape[-2], images.shape[-1], patch, rounding=rounding)
    if size == tuple(images.shape[-2:]):
        return images
    out = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Loading

def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the timm hub (huggingface.co) answers; saves timm's minute of retries offline."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return True  # the user asked for the local Hugging Face cache: let timm look there
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _no_weights_error(name: str, info: BackboneInfo, reason: str) -> InputError:
    return InputError(
        f"{name} needs pretrained weights and {reason}. Download {info.weights_url} and pass it "
        f"with --weights FILE (weights=FILE in Python), or save it as "
        f"${WEIGHTS_DIR_ENV}/{info.weights_file}; without weights, --backbone offline segments "
        f"real photos from colour and a border-contrast prior")


def weights_dir_file(name: str) -> Path | None:
    """``$PAPERLIB_WEIGHTS_DIR/<official file name>`` of a backbone, if that file exists."""
    info = BACKBONES[name]
    if not (os.environ.get(WEIGHTS_DIR_ENV) and info.weights_file):
        return None
    candidate = Path(os.environ[WEIGHTS_DIR_ENV]).expanduser() / info.weights_file
    return candidate if candidate.is_file() else None


def load_backbone(name: str, *, weights: str | Path | None = None,
                  device: torch.device | str | None = None, pos_interpolation: str = "dino",
                  _random_init: bool = False) -> Backbone:
    """Build a frozen backbone by name, with its pretrained weights.

    Paper section 3 / Table 4 (DINO ViT-S/8, S/16, B/8, B/16 and iBOT ViT-S/16).

    Args:
        name: one of :data:`BACKBONES`: 'dino_vits8', 'dino_vits16', 'dino_vitb8', 'dino_vitb16',
            'ibot_vits16', 'dinov2_vits14', 'filterbank' (patch 8) or 'filterbank16'.
        weights: an official checkpoint file (see :func:`read_state_dict`), or 'hub' for timm's
            download. None: ``$PAPERLIB_WEIGHTS_DIR/<official file name>`` if it exists, else
            timm's hub, else an :class:`InputError` naming the file to download.
        device: where to put the model (default: CPU).
        pos_interpolation: 'dino' (DINO's released rule, default) or 'timm'; see
            :func:`resample_pos_embed`. Ignored by the filter bank.
        _random_init: tests only: random weights, no file, no download.

    Returns:
        A frozen :class:`Backbone` in eval mode.
    """
    check_choice("backbone", name, BACKBONES)
    check_choice("pos_interpolation", pos_interpolation, POS_INTERPOLATIONS)
    info = BACKBONES[name]
    if info.timm_name is None:
        require(weights is None, f"{name} has no weights; got weights={str(weights)!r}")
        backbone: Backbone = (Offline(patch_size=info.patch_size, name=name) if name.startswith("offline")
                              else FilterBank(patch_size=info.patch_size, name=name))
        return backbone.to(device) if device is not None else backbone

    import timm

    kwargs = dict(num_classes=0, dynamic_img_size=True)
    if _random_init:
        require(weights is None, "_random_init=True takes no weights")
        model, weights_id = timm.create_model(info.timm_name, pretrained=False, **kwargs), "random-init"
    else:
        weights = weights if weights is not None else weights_dir_file(name)
        if weights is not None and str(weights) != "hub":
            path = Path(weights).expanduser()
            require(path.is_file(), f"weights file {path} does not exist (for {name}, download "
                                    f"{info.weights_url})")
            with torch.device("meta"):  # no random init to throw away: the file fills every parameter
                model = timm.create_model(info.timm_name, pretrained=False, **kwargs)
            model = load_weights_file(model, path, name)
            weights_id = f"sha256:{file_sha256(path)}"
        else:
            if not info.on_hub:
                raise _no_weights_error(name, info, "timm's hub does not have them")
            if not _hub_reachable():
                raise _no_weights_error(name, info, "timm's hub (huggingface.co) cannot be reached; if "
                                        "the weights are in your Hugging Face cache, set HF_HUB_OFFLINE=1")
            try:
                model = timm.create_model(info.timm_name, pretrained=True, **kwargs)
            except Exception as err:  # network, cache and hub errors come in many classes
                raise _no_weights_error(name, info, f"timm's download failed ({err.__class__.__name__}: "
                                        f"{str(err).splitlines()[0] if str(err) else ''})") from err
            weights_id = f"hub:{info.timm_name}"

    backbone = ViTBackbone(name, model, patch_size=info.patch_size, weights_id=weights_id,
                           mean=info.mean, std=info.std, pos_interpolation=pos_interpolation)
    return backbone.to(device) if device is not None else backbone
