"""The frozen ViT backbone: the last block's keys, with the position embedding resampled to the input.

Paper, section 3 and appendix: the head reads the **keys of the last block** of a frozen
self-supervised ViT (DINO ViT-S/8 by default). docs/paper_and_code.md#backbone-features pins
them down: the output of the last block's qkv linear (bias included) applied to its LayerNorm'd
input, the key third, heads concatenated, the CLS token dropped, reshaped to (B, D, h, w).

Position embeddings are resampled from the 224-pixel grid to the input's grid by one of two
rules (``pos_interpolation``). 'dino' (default) is the rule of DINO's ``vision_transformer.py``,
which the paper's released code carries ("the official DINO", paper section 4): bicubic
(a = -0.75, no antialiasing) with ``scale_factor=((h + 0.1) / g, (w + 0.1) / g)`` on the g x g
grid, and no resampling at the g x g grid itself. 'timm' is timm's
``resample_abs_pos_embed``: bicubic to the exact size with antialiasing, which in PyTorch is a
different kernel (a = -0.5) even when the grid grows. The two differ by a few hundredths of a
unit-scale embedding.

Build one by name, with its weights, through :func:`paperlib.backbones.registry.load_backbone`.

Public API:
    ViTBackbone(name, model, *, patch_size, weights_id, ...)   the :class:`~paperlib.backbones.features.Backbone`.
    resample_pos_embed(pos_embed, grid, *, style="dino")       (1, 1 + g * g, D) -> (1, 1 + h * w, D).
    POS_INTERPOLATIONS                                         the two rules, 'dino' and 'timm'.
    (the default input normalisation, IMAGENET_MEAN / IMAGENET_STD, is paperlib.backbones.catalog's.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_choice, require
from .catalog import IMAGENET_MEAN, IMAGENET_STD
from .features import Backbone

POS_INTERPOLATIONS = ("dino", "timm")  # see resample_pos_embed


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

    Build it with :func:`~paperlib.backbones.registry.load_backbone`. The forward pass is timm's
    ``forward_features`` spelt out (patch embedding, CLS token, resampled position embedding,
    blocks, final norm) so that the position embedding follows ``pos_interpolation``. The keys
    are read by a forward hook on the last block's qkv linear: exactly what that block's
    attention uses, fused (``scaled_dot_product_attention``) or not.

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

