"""paperlib.backbones.registry: the registry, where load_backbone finds weights (and the one clear error
when it finds none), the keys() shortcut of every backbone, input checks and resizing (the ViT
itself is tested in test_vit.py, weight files in test_weights.py, the filter bank in
test_filterbank.py)."""

from __future__ import annotations

import pytest
import torch
from random_vit import random_images, vit, weights_dir  # noqa: F401 (vit, weights_dir are fixtures)

import paperlib.backbones.registry as bb
from paperlib.backbones.registry import load_backbone, multiple_size, resize_to_multiple
from paperlib.checks import InputError


@pytest.fixture(autouse=True)
def no_weights_dir(monkeypatch):
    monkeypatch.delenv(bb.WEIGHTS_DIR_ENV, raising=False)


# --------------------------------------------------------------------------------------------
# Keys of every backbone

@pytest.mark.parametrize("name", ["dino_vits16", "dinov2_vits14", "filterbank"])
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_keys_alone_equal_the_features_keys(name, autocast):
    # keys() stops at the last block's qkv; what it computes up to there is the same arithmetic.
    torch.manual_seed(0)
    backbone = load_backbone(name, _random_init=True) if name != "filterbank" else load_backbone(name)
    p = backbone.patch_size
    images = random_images(6, 3 * p, 4 * p, B=2)
    keys = backbone.keys(images, autocast=autocast)
    assert keys.dtype == torch.float32 and keys.shape == (2, backbone.dim, 3, 4)
    torch.testing.assert_close(keys, backbone.features(images, autocast=autocast).keys, rtol=0, atol=0)
    with pytest.raises(InputError, match="multiples"):
        backbone.keys(images[..., :-1])


# --------------------------------------------------------------------------------------------
# Where the weights come from

def test_weights_dir_env_is_used_offline(vit, weights_dir, monkeypatch):
    monkeypatch.setenv(bb.WEIGHTS_DIR_ENV, str(weights_dir))
    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: pytest.fail("hub consulted"))
    loaded = load_backbone("dino_vits16")
    images = random_images(10, 32, 32, B=1)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)
    assert loaded.weights_id.startswith("sha256:")


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nowhere" / "dino_deitsmall16_pretrain.pth"
    with pytest.raises(InputError, match="nowhere/dino_deitsmall16_pretrain.pth"):
        load_backbone("dino_vits16", weights=path)


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
    assert "--backbone offline" in message                 # the way on without weights (issue 12)
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
        vit.features(random_images(0, 40, 48))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        vit.features(random_images(0, 32, 32) * 255)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        vit.features((random_images(0, 32, 32) - 0.485) / 0.229)
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
    images = random_images(11, 50, 70)
    out = resize_to_multiple(images, 16)
    assert out.shape == (2, 3, 48, 64) and 0.0 <= out.min() and out.max() <= 1.0
    flat = torch.full((1, 3, 50, 70), 0.3)
    torch.testing.assert_close(resize_to_multiple(flat, 16), torch.full((1, 3, 48, 64), 0.3))
    same = random_images(12, 48, 64)
    assert resize_to_multiple(same, 16) is same


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu(vit):
    images = random_images(16, 64, 64)
    for backbone in (vit, load_backbone("filterbank")):
        cpu = backbone.features(images).keys
        gpu = backbone.to("cuda").features(images.cuda()).keys
        backbone.to("cpu")
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)
