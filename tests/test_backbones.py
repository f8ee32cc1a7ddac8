"""Backbones: official checkpoints load, keys are the last block's qkv key slice, and missing weights
give one clear error (the filter bank's own tests are in test_filterbank.py)."""

from __future__ import annotations

import argparse
import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import paperlib.backbones as bb
from paperlib.backbones import (BACKBONES, load_backbone, multiple_size, read_state_dict,
                                resize_to_multiple)
from paperlib.validation import InputError


# --------------------------------------------------------------------------------------------
# Fixtures: one random ViT-S/16 saved in the official formats

@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return load_backbone("dino_vits16", _random_init=True)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, vit):
    """The random ViT-S/16 under its official file name, plain and wrapped."""
    folder = tmp_path_factory.mktemp("weights")
    state = vit.model.state_dict()
    torch.save(state, folder / "dino_deitsmall16_pretrain.pth")
    # A DINO full-checkpoint shape: teacher and student, 'module.backbone.' prefixes, a projection
    # head, an epoch counter. The student is a different network: loading it would change the keys.
    teacher = {f"module.backbone.{k}": v for k, v in state.items()}
    teacher["module.head.mlp.0.weight"] = torch.zeros(8, 384)
    student = {f"module.backbone.{k}": -v for k, v in state.items()}
    torch.save({"student": student, "teacher": teacher, "epoch": 100}, folder / "wrapped.pth")
    # iBOT's checkpoint_teacher.pth shape: {'state_dict': backbone.* + head.*}, a masked embedding.
    ibot = {f"backbone.{k}": v for k, v in state.items()}
    ibot["backbone.masked_embed"] = torch.zeros(1, 384)
    ibot["head.last_layer.weight"] = torch.zeros(8, 256)
    torch.save({"state_dict": ibot}, folder / "ibot_vits16_checkpoint_teacher.pth")
    return folder


@pytest.fixture(autouse=True)
def no_weights_dir(monkeypatch):
    monkeypatch.delenv(bb.WEIGHTS_DIR_ENV, raising=False)


def _images(seed: int, H: int, W: int, B: int = 2) -> torch.Tensor:
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _manual_keys(model, images: torch.Tensor, patch: int, interpolate=None):
    """The last block's keys computed by hand (SPEC "Backbone features"), not through the hook.

    Patch embedding as a strided conv, CLS prepended, position embedding added (resampled with
    ``interpolate`` unless the grid is the checkpoint's g x g), blocks[:-1], then the last block's norm1 and its
    qkv weights: the middle third of the output channels, CLS dropped.
    """
    B, _, H, W = images.shape
    h, w = H // patch, W // patch
    mean = torch.tensor(bb.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(bb.IMAGENET_STD).view(1, 3, 1, 1)
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


# --------------------------------------------------------------------------------------------
# Keys

def _dino_rule(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """DINO's released rule (its interpolate_pos_encoding): bicubic, scale factors (h + 0.1) / g."""
    g = grid.shape[-1]
    return F.interpolate(grid, scale_factor=((size[0] + 0.1) / g, (size[1] + 0.1) / g), mode="bicubic")


def _timm_forward_tokens(model, images):
    """timm's own forward_features on normalised images: patch tokens (B, N, D)."""
    mean = torch.tensor(bb.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(bb.IMAGENET_STD).view(1, 3, 1, 1)
    return model.forward_features((images - mean) / std)[:, 1:]


@pytest.mark.parametrize("fused", [True, False])
def test_keys_are_the_last_blocks_qkv_key_slice(vit, fused):
    # Both attention paths of timm (scaled_dot_product_attention or explicit softmax) give the
    # keys computed by hand; 64x96 pixels -> a 4x6 grid, the position embedding resampled.
    for blk in vit.model.blocks:
        blk.attn.fused_attn = fused
    try:
        images = _images(1, 64, 96)
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
    images = _images(1, 224, 224, B=1)
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
    out = bb.resample_pos_embed(pos, (h, w))
    assert out.shape == (1, 1 + h * w, D)
    assert torch.equal(out[:, 0], pos[:, 0])                                # CLS position kept
    Wr = _cubic_weights((np.arange(h) + 0.5) * g / (h + 0.1) - 0.5, g)      # (h, g)
    Wc = _cubic_weights((np.arange(w) + 0.5) * g / (w + 0.1) - 0.5, g)      # (w, g)
    grid = pos[0, 1:].reshape(g, g, D).numpy()
    expected = np.einsum("ia,abd,jb->ijd", Wr, grid, Wc)                    # (h, w, D)
    np.testing.assert_allclose(out[0, 1:].reshape(h, w, D).numpy(), expected, atol=1e-5)
    assert bb.resample_pos_embed(pos, (g, g)) is pos


def test_position_embedding_follows_dinos_rule(vit):
    # 288x288 with patch 16: the 14x14 grid grows to 18x18.
    images = _images(2, 288, 288, B=1)
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
    timm_style = bb.ViTBackbone("dino_vits16", vit.model, patch_size=16, weights_id="random-init",
                                pos_interpolation="timm")
    images = _images(3, 96, 160, B=1)                                   # 6x10 tokens
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
    images = _images(3, 160, 240, B=1)
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
    backbone = bb.ViTBackbone(name, model, patch_size=info.patch_size, weights_id="meta")
    p = info.patch_size
    keys, tokens = backbone._extract(torch.empty(2, 3, 40 * p, 30 * p, device="meta"))
    assert model.patch_embed.patch_size == (p, p) and backbone.dim == info.dim
    assert keys.shape == (2, info.dim, 40, 30) and tokens.shape == (2, 1200, info.dim)


@pytest.mark.slow
def test_patch8_at_320_gives_a_40x40_grid():
    torch.manual_seed(0)
    vits8 = load_backbone("dino_vits8", _random_init=True)
    feats = vits8.features(_images(4, 320, 320, B=1))
    assert feats.keys.shape == (1, 384, 40, 40) and feats.grid == (40, 40)
    assert torch.isfinite(feats.keys).all()


def test_dinov2_keys():
    # DINOv2 ViT-S/14 in timm: a 37x37 position grid, LayerScale, no register tokens; 56x70 -> 4x5.
    torch.manual_seed(0)
    dinov2 = load_backbone("dinov2_vits14", _random_init=True)
    images = _images(5, 56, 70, B=1)
    feats = dinov2.features(images)
    with torch.no_grad():
        expected = _manual_keys(dinov2.model, images, 14, _dino_rule)
    assert dinov2.model.num_prefix_tokens == 1 and feats.keys.shape == (1, 384, 4, 5)
    torch.testing.assert_close(feats.keys, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["dino_vits16", "dinov2_vits14", "filterbank"])
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_keys_alone_equal_the_features_keys(name, autocast):
    # keys() stops at the last block's qkv; what it computes up to there is the same arithmetic.
    torch.manual_seed(0)
    backbone = load_backbone(name, _random_init=True) if name != "filterbank" else load_backbone(name)
    p = backbone.patch_size
    images = _images(6, 3 * p, 4 * p, B=2)
    keys = backbone.keys(images, autocast=autocast)
    assert keys.dtype == torch.float32 and keys.shape == (2, backbone.dim, 3, 4)
    torch.testing.assert_close(keys, backbone.features(images, autocast=autocast).keys, rtol=0, atol=0)
    with pytest.raises(InputError, match="multiples"):
        backbone.keys(images[..., :-1])


def test_frozen_and_in_eval_mode(vit):
    assert not any(p.requires_grad for p in vit.parameters())
    vit.train()
    assert not vit.training and not vit.model.training
    images = _images(6, 32, 32, B=1).requires_grad_(True)
    assert not vit.features(images).keys.requires_grad


def test_bf16_autocast_stays_close_to_float32(vit):
    images = _images(7, 64, 64, B=1)
    exact = vit.features(images).keys
    approx = vit.features(images, autocast=torch.bfloat16).keys
    assert approx.dtype == torch.float32
    cos = F.cosine_similarity(exact.flatten(2), approx.flatten(2), dim=1)
    assert cos.min() > 0.99


def test_float64_model_gives_float32_keys(vit):
    images = _images(7, 32, 48, B=1)
    single = vit.features(images).keys
    try:
        double = vit.to(torch.float64).features(images).keys
    finally:
        vit.to(torch.float32)
    assert double.dtype == torch.float32
    torch.testing.assert_close(double, single, atol=1e-4, rtol=1e-4)


def test_normalisation_is_exposed(vit):
    assert vit.mean == bb.IMAGENET_MEAN and vit.std == bb.IMAGENET_STD
    assert (vit.name, vit.patch_size, vit.dim) == ("dino_vits16", 16, 384)


# --------------------------------------------------------------------------------------------
# Weights

def test_official_file_gives_identical_features(vit, weights_dir):
    path = weights_dir / "dino_deitsmall16_pretrain.pth"
    loaded = load_backbone("dino_vits16", weights=path)
    images = _images(8, 64, 64)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)
    assert loaded.weights_id == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert not any(p.requires_grad for p in loaded.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())


@pytest.mark.parametrize("name,file", [("dino_vits16", "wrapped.pth"),
                                       ("ibot_vits16", "ibot_vits16_checkpoint_teacher.pth")])
def test_wrapped_checkpoints_load_the_teacher_backbone(vit, weights_dir, name, file):
    loaded = load_backbone(name, weights=weights_dir / file)
    images = _images(9, 48, 48, B=1)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)


def test_read_state_dict_strips_wrappers_prefixes_and_heads(weights_dir, vit):
    state = read_state_dict(weights_dir / "wrapped.pth")
    assert set(state) == set(vit.model.state_dict())
    assert torch.equal(state["cls_token"], vit.model.cls_token)  # the teacher, not the student


def test_weights_dir_env_is_used_offline(vit, weights_dir, monkeypatch):
    monkeypatch.setenv(bb.WEIGHTS_DIR_ENV, str(weights_dir))
    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: pytest.fail("hub consulted"))
    loaded = load_backbone("dino_vits16")
    images = _images(10, 32, 32, B=1)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)
    assert loaded.weights_id.startswith("sha256:")


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nowhere" / "dino_deitsmall16_pretrain.pth"
    with pytest.raises(InputError, match="nowhere/dino_deitsmall16_pretrain.pth"):
        load_backbone("dino_vits16", weights=path)


def test_wrong_keys_name_the_file_and_the_keys(vit, tmp_path):
    state = dict(vit.model.state_dict())
    state["extra.weight"] = state.pop("norm.weight")
    state["pos_embed"] = state["pos_embed"][:, :50]
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as err:
        load_backbone("dino_vits16", weights=path)
    message = str(err.value)
    for part in ("odd.pth", "missing keys norm.weight", "unexpected keys extra.weight",
                 "wrong shape pos_embed"):
        assert part in message


def test_vit_s_file_does_not_load_into_vit_b(weights_dir):
    with pytest.raises(InputError, match=r"dino_deitsmall16_pretrain.pth: not a dino_vitb16 checkpoint: "
                                         r"keys of the wrong shape blocks.0.attn.proj.bias"):
        load_backbone("dino_vitb16", weights=weights_dir / "dino_deitsmall16_pretrain.pth")


def test_unreadable_and_unsafe_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth: not a readable torch checkpoint$"):
        load_backbone("dino_vits16", weights=tmp_path / "junk.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputError, match="empty.pth: not a readable torch checkpoint"):
        read_state_dict(tmp_path / "empty.pth")
    # A DINO full training checkpoint keeps its argparse.Namespace: not loadable with weights_only.
    torch.save({"args": argparse.Namespace(arch="vit_small")}, tmp_path / "full.pth")
    with pytest.raises(InputError, match=r"full.pth: holds Python objects besides tensors \(argparse.Namespace\)"):
        read_state_dict(tmp_path / "full.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "nostate.pth")
    with pytest.raises(InputError, match="nostate.pth: no state dict found"):
        read_state_dict(tmp_path / "nostate.pth")


def test_offline_without_weights_says_what_to_download(monkeypatch):
    import timm

    created = []
    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: created.append(k) or pytest.fail("built"))
    with pytest.raises(InputError) as err:
        load_backbone("dino_vits8")
    message = str(err.value)
    assert "https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth" in message
    assert "--weights FILE" in message and bb.WEIGHTS_DIR_ENV in message
    assert "\n" not in message and not created


def test_failed_hub_download_gives_the_same_clear_error(monkeypatch):
    import timm

    original = timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return original(name, pretrained=False, **kwargs)

    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(timm, "create_model", offline_create)
    with pytest.raises(InputError, match=r"dino_vitbase16_pretrain/dino_vitbase16_pretrain\.pth.*--weights"):
        load_backbone("dino_vitb16", weights="hub")


def test_ibot_has_no_hub_and_no_silent_random_init(monkeypatch):
    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: pytest.fail("hub consulted"))
    with pytest.raises(InputError, match="ibot/vits_16/checkpoint_teacher.pth"):
        load_backbone("ibot_vits16")


def test_bad_arguments():
    with pytest.raises(InputError, match="backbone must be one of"):
        load_backbone("dino_vits32")
    with pytest.raises(InputError, match="takes no weights"):
        load_backbone("dino_vits16", weights="x.pth", _random_init=True)
    with pytest.raises(InputError, match="filterbank has no weights"):
        load_backbone("filterbank", weights="x.pth")


# --------------------------------------------------------------------------------------------
# Input checks and resizing

def test_features_rejects_bad_images(vit):
    with pytest.raises(InputError, match=r"multiples of its patch size 16, got 40x48.*resize_to_multiple"):
        vit.features(_images(0, 40, 48))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        vit.features(_images(0, 32, 32) * 255)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        vit.features((_images(0, 32, 32) - 0.485) / 0.229)
    with pytest.raises(InputError, match="3 channels"):
        vit.features(torch.rand(1, 1, 32, 32))
    with pytest.raises(InputError, match="floating-point"):
        vit.features(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_multiple_size_rules():
    # TokenCut: int(round(w / 16)) * 16 with Python's round (ties to even: 20.5 -> 20).
    assert multiple_size(300, 400, 16) == (304, 400)
    assert multiple_size(328, 344, 16) == (int(round(328 / 16)) * 16, int(round(344 / 16)) * 16) == (320, 352)
    assert multiple_size(300, 401, 16, rounding="floor") == (288, 400)
    assert multiple_size(300, 401, 16, rounding="ceil") == (304, 416)
    assert multiple_size(3, 5, 16) == (16, 16)  # never an empty grid
    with pytest.raises(InputError, match="rounding"):
        multiple_size(3, 5, 16, rounding="nearest")


def test_resize_to_multiple():
    images = _images(11, 50, 70)
    out = resize_to_multiple(images, 16)
    assert out.shape == (2, 3, 48, 64) and 0.0 <= out.min() and out.max() <= 1.0
    flat = torch.full((1, 3, 50, 70), 0.3)
    torch.testing.assert_close(resize_to_multiple(flat, 16), torch.full((1, 3, 48, 64), 0.3))
    same = _images(12, 48, 64)
    assert resize_to_multiple(same, 16) is same


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu(vit):
    images = _images(16, 64, 64)
    for backbone in (vit, load_backbone("filterbank")):
        cpu = backbone.features(images).keys
        gpu = backbone.to("cuda").features(images.cuda()).keys
        backbone.to("cpu")
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)
