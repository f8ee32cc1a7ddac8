"""Frozen backbones that turn images into patch features: DINO/iBOT ViTs and an offline filter bank.

Paper, section 3 and appendix: the head reads the **keys of the last block** of a frozen
self-supervised ViT (DINO ViT-S/8 by default). SPEC "Backbone features" pins them down: the
output of the last block's qkv linear (bias included) applied to its LayerNorm'd input, the key
third, heads concatenated, the CLS token dropped, reshaped to (B, D, h, w).

Every backbone takes images as **(B, 3, H, W) float RGB in [0, 1]** and applies its own
normalisation (``backbone.mean`` / ``backbone.std``); H and W must be multiples of
``backbone.patch_size`` (:func:`resize_to_multiple` gets them there).

Weights never come from a silent random initialisation. :func:`load_backbone` takes them, in
order, from ``weights=FILE`` (an official checkpoint), from ``$PAPERLIB_WEIGHTS_DIR/<official
file name>``, or from timm's hub; when none is available it raises one :class:`InputError` that
says which file to download and how to pass it. ``filterbank`` needs no weights at all: colour
and texture statistics per patch (:mod:`paperlib.filterbank`), so the whole pipeline runs offline.

Position embeddings are resampled from the 224-pixel grid to the input's grid by one of two
rules (``pos_interpolation``). 'dino' (default) is the rule of DINO's ``vision_transformer.py``,
which the paper's released code carries ("the official DINO", paper section 4): bicubic
(a = -0.75, no antialiasing) with ``scale_factor=((h + 0.1) / g, (w + 0.1) / g)`` on the g x g
grid, and no resampling at the g x g grid itself. 'timm' is timm's
``resample_abs_pos_embed``: bicubic to the exact size with antialiasing, which in PyTorch is a
different kernel (a = -0.5) even when the grid grows. The two differ by a few hundredths of a
unit-scale embedding.

Public API: :data:`BACKBONES` (the registry), :func:`load_backbone`, :class:`ViTBackbone`,
:func:`resample_pos_embed`, :func:`read_state_dict`, :func:`file_sha256`, :func:`multiple_size`,
:func:`resize_to_multiple`, ``IMAGENET_MEAN`` / ``IMAGENET_STD``; the interface
:class:`Backbone` / :class:`Features` comes from :mod:`paperlib.features` and the offline
:class:`FilterBank` from :mod:`paperlib.filterbank`.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .features import Backbone, Features  # the interface every backbone here implements
from .filterbank import FilterBank
from .validation import InputError, check_choice, check_tensor, require

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINO's and timm's input normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)

WEIGHTS_DIR_ENV = "PAPERLIB_WEIGHTS_DIR"  # a folder holding official files under their own names


@dataclass(frozen=True)
class BackboneInfo:
    """How to build one named backbone and where its official weights live.

    Attributes:
        timm_name: the timm model (architecture.tag); None for the filter bank.
        patch_size: pixels per token side.
        dim: D, channels of a key token (384 for ViT-S, 768 for ViT-B).
        weights_file: official checkpoint file name, looked up in $PAPERLIB_WEIGHTS_DIR.
        weights_url: where to download it.
        on_hub: whether timm can download the pretrained weights itself.
        mean, std: the input normalisation the weights were trained with (ImageNet for all of
            them; set here, not read from timm, whose default config for an untagged
            architecture such as iBOT's may carry other constants).
    """

    timm_name: str | None
    patch_size: int
    dim: int
    weights_file: str | None = None
    weights_url: str | None = None
    on_hub: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


_DINO_URL = "https://dl.fbaipublicfiles.com/dino/{0}/{0}.pth"

BACKBONES: dict[str, BackboneInfo] = {
    # The paper's backbones (Table 4 compares them); ViT-S/8 is the default.
    "dino_vits8": BackboneInfo("vit_small_patch8_224.dino", 8, 384, "dino_deitsmall8_pretrain.pth",
                               _DINO_URL.format("dino_deitsmall8_pretrain"), on_hub=True),
    "dino_vits16": BackboneInfo("vit_small_patch16_224.dino", 16, 384, "dino_deitsmall16_pretrain.pth",
                                _DINO_URL.format("dino_deitsmall16_pretrain"), on_hub=True),
    "dino_vitb8": BackboneInfo("vit_base_patch8_224.dino", 8, 768, "dino_vitbase8_pretrain.pth",
                               _DINO_URL.format("dino_vitbase8_pretrain"), on_hub=True),
    "dino_vitb16": BackboneInfo("vit_base_patch16_224.dino", 16, 768, "dino_vitbase16_pretrain.pth",
                                _DINO_URL.format("dino_vitbase16_pretrain"), on_hub=True),
    # iBOT ViT-S/16 has the DINO ViT-S/16 architecture; timm has no iBOT weights, so local file only.
    "ibot_vits16": BackboneInfo(
        "vit_small_patch16_224", 16, 384, "ibot_vits16_checkpoint_teacher.pth",
        "https://lf3-nlp-opensource.bytetos.com/obj/nlp-opensource/archive/2022/ibot/vits_16/"
        "checkpoint_teacher.pth"),
    # Beyond the paper: DINOv2 ViT-S/14 (no register tokens, LayerScale in every block).
    "dinov2_vits14": BackboneInfo("vit_small_patch14_dinov2.lvd142m", 14, 384, "dinov2_vits14_pretrain.pth",
                                  "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
                                  on_hub=True),
    # Offline backbones: colour + texture statistics per patch, no weights.
    "filterbank": BackboneInfo(None, 8, 16),
    "filterbank16": BackboneInfo(None, 16, 16),
}


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
# ViT backbones

POS_INTERPOLATIONS = ("dino", "timm")


def resample_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], *,
                       style: str = "dino") -> torch.Tensor:
    """Resample a ViT position embedding (CLS first) from its square grid to ``grid``.

    Paper section 3 (DINO features at 320x320, beyond the 224 pre-training size).

    Args:
        pos_embed: (1, 1 + g * g, D), the CLS position then the g x g patch grid, row-major.
        grid: (h, w), the target patch grid.
        style: 'dino': DINO's released rule, bicubic with scale factors (h + 0.1) / g and
            (w + 0.1) / g, no antialiasing; 'timm': timm's resample_abs_pos_embed (bicubic to
            the size, antialiased).

    Returns:
        (1, 1 + h * w, D).
    """
    check_choice("pos_interpolation", style, POS_INTERPOLATIONS)
    _, T, D = pos_embed.shape
    g = math.isqrt(T - 1)
    h, w = grid
    if (h, w) == (g, g):
        return pos_embed
    if style == "timm":
        from timm.layers import resample_abs_pos_embed

        return resample_abs_pos_embed(pos_embed, new_size=[h, w], old_size=[g, g], num_prefix_tokens=1)
    patch_pos = pos_embed[:, 1:].reshape(1, g, g, D).permute(0, 3, 1, 2)   # (1, D, g, g)
    # The 0.1 offset makes the output size floor((h + 0.1) / g * g) = h despite float error.
    patch_pos = F.interpolate(patch_pos.float(), scale_factor=((h + 0.1) / g, (w + 0.1) / g),
                              mode="bicubic", align_corners=False)         # (1, D, h, w)
    patch_pos = patch_pos.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, h * w, D)
    return torch.cat((pos_embed[:, :1], patch_pos), dim=1)                 # (1, 1 + h * w, D)


class ViTBackbone(Backbone):
    """A frozen timm ViT whose features are the last block's keys.

    Build it with :func:`load_backbone`. The forward pass is timm's ``forward_features`` spelt
    out (patch embedding, CLS token, resampled position embedding, blocks, final norm) so that
    the position embedding follows ``pos_interpolation``. The keys are read by a forward hook on
    the last block's qkv linear: exactly what that block's attention uses, fused
    (``scaled_dot_product_attention``) or not.

    Args:
        name: the registry name.
        model: a timm VisionTransformer with one CLS token, no register tokens.
        patch_size: its patch size.
        weights_id: what its weights are (see :class:`Backbone`).
        mean, std: the input normalisation of its weights.
        pos_interpolation: 'dino' or 'timm' (:func:`resample_pos_embed`).
    """

    def __init__(self, name: str, model: nn.Module, *, patch_size: int, weights_id: str,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 pos_interpolation: str = "dino"):
        check_choice("pos_interpolation", pos_interpolation, POS_INTERPOLATIONS)
        # The spelt-out forward covers ViTs with one CLS token whose position is embedded too.
        require(model.cls_token is not None and model.reg_token is None and not model.no_embed_class,
                f"{name}: only ViTs with a CLS token and no register tokens are supported")
        super().__init__(name, patch_size=patch_size, dim=model.embed_dim, mean=mean, std=std,
                         weights_id=weights_id)
        self.pos_interpolation = pos_interpolation
        self.model = model
        self.model.requires_grad_(False)
        self.eval()

    @property
    def config_id(self) -> str:
        return f"{self.weights_id}+pos:{self.pos_interpolation}"

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> patch tokens with CLS and position embedding, (B, 1 + N, D)."""
        model = self.model
        B, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        param = model.cls_token
        mean = images.new_tensor(self.mean, dtype=param.dtype).view(1, 3, 1, 1)
        std = images.new_tensor(self.std, dtype=param.dtype).view(1, 3, 1, 1)
        x = (images.to(param.dtype) - mean) / std
        x = model.patch_embed(x).reshape(B, h * w, -1)                     # (B, h, w, D) -> (B, N, D)
        pos = resample_pos_embed(model.pos_embed, (h, w), style=self.pos_interpolation)
        return model.norm_pre(torch.cat((model.cls_token.expand(B, -1, -1), x), dim=1) + pos)

    def _split_keys(self, qkv: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The last block's qkv output (B, 1 + N, 3D), q | k | v -> keys (B, D, h, w)."""
        B, D = qkv.shape[0], qkv.shape[-1] // 3
        k = qkv[:, 1:, D:2 * D]                        # (B, N, D), heads concatenated, CLS dropped
        return k.transpose(1, 2).reshape(B, D, *grid)  # (B, N, D) -> (B, D, h, w)

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        grid = (images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size)
        captured: list[torch.Tensor] = []
        handle = model.blocks[-1].attn.qkv.register_forward_hook(
            lambda module, inputs, output: captured.append(output))
        try:
            x = model.norm(model.blocks(self._embed(images)))              # (B, 1 + N, D)
        finally:
            handle.remove()
        return self._split_keys(captured[0], grid), x[:, 1:]              # keys, tokens (B, N, D)

    def _extract_keys(self, images: torch.Tensor) -> torch.Tensor:
        # timm's Block feeds norm1(x) to its attention, whose first layer is qkv: stop there.
        model = self.model
        grid = (images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size)
        x = model.blocks[:-1](self._embed(images))                         # (B, 1 + N, D)
        last = model.blocks[-1]
        return self._split_keys(last.attn.qkv(last.norm1(x)), grid)       # (B, 1 + N, 3D) -> keys


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Wrappers of released checkpoints, tried in this order: DINO and iBOT evaluate the teacher.
_WRAPPER_KEYS = ("teacher", "model", "state_dict", "student")
# Parameters used only in pre-training: classification/projection heads, iBOT's masked-patch
# embedding and DINOv2's mask token.
_DROPPED_PREFIXES = ("head.", "head_dist.")
_DROPPED_KEYS = ("masked_embed", "mask_token")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint as a timm-named backbone state dict.

    Accepts a plain state dict or one wrapped in {'teacher'|'model'|'state_dict'|'student': ...}
    (the teacher wins when both are present), with optional 'module.' and 'backbone.' prefixes;
    drops the head and pre-training-only keys. Loaded with ``torch.load(weights_only=True)``.

    Args:
        path: the checkpoint file.

    Returns:
        The state dict, key names as in timm's VisionTransformer.
    """
    path = Path(path)
    require(path.is_file(), f"weights file {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or "global" in str(err).lower():
            raise InputError(f"{path}: holds Python objects besides tensors"
                             f"{f' ({found.group(1)})' if found else ''}, so it cannot be loaded safely; "
                             f"a full training checkpoint? use the backbone-only release") from None
        raise InputError(f"{path}: not a readable torch checkpoint") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise InputError(f"{path}: not a readable torch checkpoint ({err.__class__.__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'empty or truncated'})") from None

    for _ in range(3):  # unwrap {'teacher': {'state_dict': ...}} and the like
        if isinstance(ckpt, dict) and not any(isinstance(v, torch.Tensor) for v in ckpt.values()):
            key = next((k for k in _WRAPPER_KEYS if isinstance(ckpt.get(k), dict)), None)
            if key is None:
                break
            ckpt = ckpt[key]
    require(isinstance(ckpt, dict) and any(isinstance(v, torch.Tensor) for v in ckpt.values()),
            f"{path}: no state dict found (top-level keys: "
            f"{sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__})")

    state = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):  # a DINO/iBOT wrapper: backbone + head
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return {k: v for k, v in state.items()
            if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_KEYS}


def _load_weights_file(model: nn.Module, path: Path, name: str) -> nn.Module:
    """Check ``path`` against ``model`` (built on the meta device) and load it in place."""
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("keys of the wrong shape", wrong_shape)):
            if keys:
                more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
                parts.append(f"{label} {', '.join(keys[:4])}{more}")
        raise InputError(f"{path}: not a {name} checkpoint: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True, assign=True)  # the file's tensors become the parameters
    return model.float()


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
        f"${WEIGHTS_DIR_ENV}/{info.weights_file}")


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
        backbone: Backbone = FilterBank(patch_size=info.patch_size, name=name)
        return backbone.to(device) if device is not None else backbone

    import timm

    kwargs = dict(num_classes=0, dynamic_img_size=True)
    if _random_init:
        require(weights is None, "_random_init=True takes no weights")
        model, weights_id = timm.create_model(info.timm_name, pretrained=False, **kwargs), "random-init"
    else:
        if weights is None and os.environ.get(WEIGHTS_DIR_ENV):
            candidate = Path(os.environ[WEIGHTS_DIR_ENV]) / info.weights_file
            weights = candidate if candidate.is_file() else None
        if weights is not None and str(weights) != "hub":
            path = Path(weights)
            require(path.is_file(), f"weights file {path} does not exist (for {name}, download "
                                    f"{info.weights_url})")
            with torch.device("meta"):  # no random init to throw away: the file fills every parameter
                model = timm.create_model(info.timm_name, pretrained=False, **kwargs)
            model = _load_weights_file(model, path, name)
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
