"""The offline filter bank: Lab colour matches scikit-image, the kernels are zero-sum and
oriented, and its features separate texture and colour like ViT keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperlib.backbones.catalog import BACKBONES
from paperlib.backbones.filterbank import FilterBank, rgb_to_lab, texture_kernels
from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError


def _images(seed: int, H: int, W: int, B: int = 2) -> torch.Tensor:
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed))


def test_rgb_to_lab_matches_scikit_image():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).random((17, 23, 3))
    rgb[0, :4] = [[0, 0, 0], [1, 1, 1], [0.02, 0.03, 0.01], [1, 0, 0]]  # black, white, linear part
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2lab(rgb), atol=1e-4)


def test_texture_kernels_are_zero_sum_and_oriented():
    kernels = texture_kernels((1.0, 2.0), 4, dtype=torch.float64)
    assert kernels.shape == (10, 1, 13, 13)
    torch.testing.assert_close(kernels.sum(dim=(1, 2, 3)), torch.zeros(10, dtype=torch.float64))
    # Stripes along x: the x-derivative (angle 0) answers, the y-derivative (angle pi/2) does not.
    x = torch.arange(64, dtype=torch.float64)
    stripes = torch.sin(2 * math.pi * x / 8).expand(64, 64)[None, None]
    response = F.conv2d(stripes, kernels)[0].abs().mean(dim=(1, 2))  # (10,)
    assert response[0] > 100 * response[2] and response[5] > 100 * response[7]


def _disk_scene(texture: str, size: int = 128, radius: int = 36) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A synthetic image: a disk on a smooth background; returns (image, inside, outside) token masks."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= radius ** 2
    background = 0.4 + 0.2 * xx / size                                 # a gentle grey ramp
    image = background.expand(3, size, size).clone()
    if texture == "noise":      # grey noise of the background's mean: texture only
        inside = 0.5 + 0.25 * (torch.rand(size, size, generator=g) - 0.5) * 2
        image[:, disk] = inside[disk]
    elif texture == "colour":   # a flat red disk: colour only
        image[:, disk] = torch.tensor([0.8, 0.2, 0.2])[:, None]
    elif texture == "stripes":  # red and white stripes
        stripes = (torch.div(xx + yy, 4, rounding_mode="floor") % 2).bool()
        red = torch.tensor([0.9, 0.1, 0.1])[:, None, None].expand(3, size, size)
        image[:, disk] = torch.where(stripes, red, torch.ones_like(red))[:, disk]
    tokens_in = F.avg_pool2d(disk[None, None].float(), 8).flatten() == 1.0   # wholly inside
    tokens_out = F.avg_pool2d(disk[None, None].float(), 8).flatten() == 0.0  # wholly outside
    return image[None], tokens_in, tokens_out


@pytest.mark.parametrize("texture", ["noise", "colour", "stripes"])
def test_filterbank_separates_object_from_background(texture):
    image, inside, outside = _disk_scene(texture)
    feats = load_backbone("filterbank").features(image)
    f = F.normalize(feats.tokens[0], dim=1)                            # (N, D), unit rows
    S = f @ f.T                                                        # (N, N) cosine
    within = S[inside][:, inside].mean()
    across = S[inside][:, outside].mean()
    assert within - across > 1.0, (float(within), float(across))


def test_filterbank_standardises_each_channel():
    fb = FilterBank()
    keys = fb.features(_images(13, 64, 96)).keys                        # (2, 16, 8, 12)
    assert keys.shape == (2, 16, 8, 12) and fb.dim == 16 == BACKBONES["filterbank"].dim
    torch.testing.assert_close(keys.mean(dim=(2, 3)), torch.zeros(2, 16), atol=1e-5, rtol=0)
    var = keys.var(dim=(2, 3), unbiased=False)
    expected = torch.tensor([0.5 / 6] * 6 + [0.5 / 10] * 10).expand(2, 16)
    torch.testing.assert_close(var, expected, atol=1e-5, rtol=1e-4)


def test_filterbank_is_deterministic_and_per_image():
    fb = load_backbone("filterbank")
    images = _images(14, 64, 64, B=3)
    a, b = fb.features(images), fb.features(images)
    assert torch.equal(a.keys, b.keys)
    torch.testing.assert_close(fb.features(images[1:2]).keys, a.keys[1:2], atol=1e-5, rtol=1e-5)
    assert torch.equal(a.tokens, a.keys.flatten(2).transpose(1, 2))


def test_flat_image_has_zero_features():
    keys = load_backbone("filterbank").features(torch.full((1, 3, 32, 32), 0.7)).keys
    assert keys.abs().max() < 1e-6


def test_filterbank_checks_its_settings():
    for bad in (dict(colour_weight=1.5), dict(sigmas=()), dict(sigmas=(0.0,)), dict(orientations=0),
                dict(patch_size=0)):
        with pytest.raises(InputError):
            FilterBank(**bad)
    assert FilterBank(sigmas=(1.0,), orientations=2).dim == 6 + 3


def test_filterbank16_grid_and_registry():
    fb16 = load_backbone("filterbank16")
    assert (fb16.patch_size, fb16.name) == (16, "filterbank16")
    assert fb16.features(_images(15, 64, 96, B=1)).grid == (4, 6)
    assert fb16.weights_id != load_backbone("filterbank").weights_id
