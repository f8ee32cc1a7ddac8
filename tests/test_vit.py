"""paperlib.backbones.vit: the keys are the last block's qkv key slice, and the position embedding is
resampled by DINO's rule (or timm's) to the input's grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from random_vit import random_images, vit  # noqa: F401 (vit is a fixture)

from paperlib.backbones.catalog import BACKBONES, IMAGENET_MEAN, IMAGENET_STD
from paperlib.backbones.registry import load_backbone
from paperlib.backbones.vit import ViTBackbone, resample_pos_embed


def _manual_keys(model, images: torch.Tensor, patch: int, interpolate=None):
    """The last block's keys, by hand (docs/paper_and_code.md#backbone-features), not through the hook.

    Patch embedding as a strided conv, CLS prepended, position embedding added (resampled with
    ``interpolate`` unless the grid is the checkpoint's g x g), blocks[:-1], then the last block's norm1 and its
    qkv weights: the middle third of the output channels, CLS dropped.
    """
    B, _, H, W = images.shape
    h, w = H // patch, W // patch
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = F.conv2d((images - mean) / std, model.patch_embed.proj.weight, model.patch_embed.proj.bias,
                 stride=patch)                                        # (B, D, h, w)
    D = x.shape[1]
    x = x.flatten(2).transpose(1, 2)                                  # (B, N, D)
    pos_cls, pos = model.pos_embed[:, :1], model.pos_embed[:, 1:]
    g = int(math.sqrt(pos.shape[1]))
    if (h, w) != (g, g):
        grid = pos.reshape(1, g, g, D).permute(0, 3, 1, 2)
        pos = interpolate(grid, (h, w)).permute(0, 2, 3, 1).reshape(1, h * w, D)
    x = torch.cat((model.cls_token.expand(B, -1, -1), x), dim=1) + torch.cat((pos_cls, pos), dim=1)
    for blk in model.blocks[:-1]:
        x = blk(x)
    last = model.blocks[-1]
    qkv = F.linear(last.norm1(x), last.attn.qkv.weight, last.attn.qkv.bias)  # (B, 1 + N, 3D)
    k = qkv[:, 1:, D:2 * D]                                           # (B, N, D)
    return k.reshape(B, h, w, D).permute(0, 3, 1, 2)


def _dino_rule(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """DINO's released rule (its interpolate_pos_encoding): bicubic, scale factors (h + 0.1) / g."""
    g = grid.shape[-1]
    return F.interpolate(grid, scale_factor=((size[0] + 0.1) / g, (size[1] + 0.1) / g), mode="bicubic")


def _timm_forward_tokens(model, images):
    """timm's own forward_features on normalised images: patch tokens (B, N, D)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return model.forward_features((images - mean) / std)[:, 1:]


@pytest.mark.parametrize("fused", [True, False])
def test_keys_are_the_last_blocks_qkv_key_slice(vit, fused):
    # Both attention paths of timm (scaled_dot_product_attention or explicit softmax) give the
    # keys computed by hand; 64x96 pixels -> a 4x6 grid, the position embedding resampled.
    for blk in vit.model.blocks:
        blk.attn.fused_attn = fused
    try:
        images = random_images(1, 64, 96)
        feats = vit.features(images)
        with torch.no_grad():
            expected = _manual_keys(vit.model, images, 16, _dino_rule)
    finally:
        for blk in vit.model.blocks:
            blk.attn.fused_attn = True
    assert feats.grid == (4, 6) and feats.tokens.shape == (2, 24, 384)
    assert feats.keys.shape == (2, 384, 4, 6) and feats.keys.dtype == torch.float32
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)
    assert not feats.keys.requires_grad


def test_at_the_pretraining_size_nothing_is_resampled(vit):
    # 224x224: the 14x14 grid of the checkpoint, used as is.
    images = random_images(1, 224, 224, B=1)
    feats = vit.features(images)
    with torch.no_grad():
        expected = _manual_keys(vit.model, images, 16)
    assert feats.grid == (14, 14)
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)


def _cubic_weights(src: np.ndarray, g: int, a: float = -0.75) -> np.ndarray:
    """(len(src), g) weights of Keys' cubic convolution (PyTorch's bicubic, a = -0.75) at
    positions ``src`` of a g-sample signal, neighbours beyond the border clamped to it."""
    W = np.zeros((len(src), g))
    for i, s in enumerate(src):
        f = math.floor(s)
        for k in range(-1, 3):
            d = abs(s - (f + k))
            if d <= 1:
                wk = (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
            elif d < 2:
                wk = a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
            else:
                wk = 0.0
            W[i, min(max(f + k, 0), g - 1)] += wk
    return W


def test_dino_rule_samples_where_dinos_scale_factor_puts_the_points():
    # Reference written from the definition: separable cubic convolution at DINO's sample points
    # src_i = (i + 0.5) * g / (h + 0.1) - 0.5 (the scale factor (h + 0.1) / g, half-pixel centres).
    g, h, w, D = 14, 20, 40, 3
    pos = torch.randn(1, 1 + g * g, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = resample_pos_embed(pos, (h, w))
    assert out.shape == (1, 1 + h * w, D)
    assert torch.equal(out[:, 0], pos[:, 0])                                # CLS position kept
    Wr = _cubic_weights((np.arange(h) + 0.5) * g / (h + 0.1) - 0.5, g)      # (h, g)
    Wc = _cubic_weights((np.arange(w) + 0.5) * g / (w + 0.1) - 0.5, g)      # (w, g)
    grid = pos[0, 1:].reshape(g, g, D).numpy()
    expected = np.einsum("ia,abd,jb->ijd", Wr, grid, Wc)                    # (h, w, D)
    np.testing.assert_allclose(out[0, 1:].reshape(h, w, D).numpy(), expected, atol=1e-5)
    assert resample_pos_embed(pos, (g, g)) is pos


def test_position_embedding_follows_dinos_rule(vit):
    # 288x288 with patch 16: the 14x14 grid grows to 18x18.
    images = random_images(2, 288, 288, B=1)
    feats = vit.features(images)
    with torch.no_grad():
        expected = _manual_keys(vit.model, images, 16, _dino_rule)
    assert feats.grid == (18, 18) and vit.pos_interpolation == "dino"
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)
    # The check can tell the rules apart: resampling to the size instead moves the embedding.
    grid = vit.model.pos_embed[:, 1:].reshape(1, 14, 14, 384).permute(0, 3, 1, 2)
    to_size = F.interpolate(grid, size=(18, 18), mode="bicubic", align_corners=False)
    assert (to_size - _dino_rule(grid, (18, 18))).abs().max() > 1e-3


def test_timm_rule_matches_timms_own_forward(vit):
    timm_style = ViTBackbone("dino_vits16", vit.model, patch_size=16, weights_id="random-init",
                                pos_interpolation="timm")
    images = random_images(3, 96, 160, B=1)                                   # 6x10 tokens
    feats = timm_style.features(images)
    with torch.no_grad():
        antialiased = lambda g, size: F.interpolate(g, size=size, mode="bicubic", align_corners=False,
                                                    antialias=True)
        expected = _manual_keys(vit.model, images, 16, antialiased)
        tokens = _timm_forward_tokens(vit.model, images)
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(feats.tokens, tokens, atol=1e-5, rtol=1e-5)
    assert timm_style.config_id != vit.config_id


def test_non_square_input(vit):
    images = random_images(3, 160, 240, B=1)
    feats = vit.features(images)
    with torch.no_grad():
        expected = _manual_keys(vit.model, images, 16, _dino_rule)
    assert feats.keys.shape == (1, 384, 10, 15) and feats.tokens.shape == (1, 150, 384)
    assert feats.grid == (10, 15)
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n, info in BACKBONES.items() if info.timm_name])
def test_every_vit_gives_the_grid_and_width_of_its_registry_entry(name):
    # Shapes only, on the meta device (no weights, no compute): 40p x 30p pixels -> 40 x 30 tokens.
    import timm

    info = BACKBONES[name]
    with torch.device("meta"):
        model = timm.create_model(info.timm_name, pretrained=False, num_classes=0, dynamic_img_size=True)
    backbone = ViTBackbone(name, model, patch_size=info.patch_size, weights_id="meta")
    p = info.patch_size
    keys, tokens = backbone._extract(torch.empty(2, 3, 40 * p, 30 * p, device="meta"))
    assert model.patch_embed.patch_size == (p, p) and backbone.dim == info.dim
    assert keys.shape == (2, info.dim, 40, 30) and tokens.shape == (2, 1200, info.dim)


@pytest.mark.slow
def test_patch8_at_320_gives_a_40x40_grid():
    torch.manual_seed(0)
    vits8 = load_backbone("dino_vits8", _random_init=True)
    feats = vits8.features(random_images(4, 320, 320, B=1))
    assert feats.keys.shape == (1, 384, 40, 40) and feats.grid == (40, 40)
    assert torch.isfinite(feats.keys).all()


def test_dinov2_keys():
    # DINOv2 ViT-S/14 in timm: a 37x37 position grid, LayerScale, no register tokens; 56x70 -> 4x5.
    torch.manual_seed(0)
    dinov2 = load_backbone("dinov2_vits14", _random_init=True)
    images = random_images(5, 56, 70, B=1)
    feats = dinov2.features(images)
    with torch.no_grad():
        expected = _manual_keys(dinov2.model, images, 14, _dino_rule)
    assert dinov2.model.num_prefix_tokens == 1 and feats.keys.shape == (1, 384, 4, 5)
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)


def test_frozen_and_in_eval_mode(vit):
    assert not any(p.requires_grad for p in vit.parameters())
    vit.train()
    assert not vit.training and not vit.model.training
    images = random_images(6, 32, 32, B=1).requires_grad_(True)
    assert not vit.features(images).keys.requires_grad


def test_bf16_autocast_stays_close_to_float32(vit):
    images = random_images(7, 64, 64, B=1)
    exact = vit.features(images).keys
    approx = vit.features(images, autocast=torch.bfloat16).keys
    assert approx.dtype == torch.float32
    cos = F.cosine_similarity(exact.flatten(2), approx.flatten(2), dim=1)
    assert cos.min() > 0.99


def test_float64_model_gives_float32_keys(vit):
    images = random_images(7, 32, 48, B=1)
    single = vit.features(images).keys
    try:
        double = vit.to(torch.float64).features(images).keys
    finally:
        vit.to(torch.float32)
    assert double.dtype == torch.float32
    torch.testing.assert_close(double, single, atol=1e-4, rtol=1e-4)


def test_normalisation_is_exposed(vit):
    assert vit.mean == IMAGENET_MEAN and vit.std == IMAGENET_STD
    assert (vit.name, vit.patch_size, vit.dim) == ("dino_vits16", 16, 384)

