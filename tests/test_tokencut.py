"""Tests of paperlib.methods.tokencut: the seed and component rules, the saliency protocol, the box."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.methods.tokencut import (
    TokenCutResult,
    bipartition,
    tokencut_box,
    tokencut_patch_mask,
    tokencut_saliency,
)


def square_keys(grid, box, *, D=16, noise=0.05, seed=0):
    """(1, D, h, w) keys: tokens inside box = (r0, c0, r1, c1) (exclusive ends) near one unit
    vector, the others near an orthogonal one, so the cosine graph has two clear clusters."""
    h, w = grid
    g = torch.Generator().manual_seed(seed)
    inside = torch.zeros(h, w, dtype=torch.bool)
    r0, c0, r1, c1 = box
    inside[r0:r1, c0:c1] = True
    obj, bg = torch.zeros(D), torch.zeros(D)
    obj[0], bg[1] = 1.0, 1.0
    K = torch.where(inside[None], obj[:, None, None], bg[:, None, None])  # (D, h, w)
    return (K + noise * torch.randn(D, h, w, generator=g))[None], inside.numpy()


class FakeFeatures(NamedTuple):
    keys: torch.Tensor
    tokens: torch.Tensor
    grid: tuple[int, int]


class FakeBackbone:
    """Returns keys with a square object on whatever grid the image has; records its inputs."""

    def __init__(self, patch_size, box, *, grid_offset=0):
        self.patch_size = patch_size
        self.box = box
        self.grid_offset = grid_offset
        self.seen = []

    def features(self, images):
        self.seen.append(images)
        h, w = images.shape[2] // self.patch_size, images.shape[3] // self.patch_size
        keys, _ = square_keys((h + self.grid_offset, w), self.box)
        return FakeFeatures(keys, keys.flatten(2).transpose(1, 2), (h, w))


# -------------------------------------------------------------------------------- bipartition

def test_seed_side_and_sign_invariance():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(6 * 7)
    v[17] = -5.0  # the seed, on the negative side of v
    a, b = bipartition(v, (6, 7)), bipartition(-v, (6, 7))
    assert a.seed == b.seed == divmod(17, 7)
    for x, y in zip(a[:3], b[:3]):  # mask, bipartition, eigvec
        assert np.array_equal(x, y)
    assert a.component_box == b.component_box
    # The seed's side is v < mean(v) here; the eigenvector comes back with v[seed] > 0.
    assert np.array_equal(a.bipartition, (v < v.mean()).reshape(6, 7))
    assert np.array_equal(a.eigvec, -v.reshape(6, 7))
    assert a.mask[a.seed] and a.bipartition[a.seed]


def test_only_the_seed_component_is_kept_4_connected():
    v = np.full((6, 8), -1.0)
    v[1:3, 1:3] = 2.0   # island 1, holds the seed
    v[1, 1] = 3.0
    v[4:6, 5:8] = 1.5   # island 2
    v[3, 3] = 1.5       # touches island 1 only diagonally: another component under 4-connectivity
    r = bipartition(torch.from_numpy(v), (6, 8))
    assert r.seed == (1, 1)
    expected = np.zeros((6, 8), dtype=bool)
    expected[1:3, 1:3] = True
    assert np.array_equal(r.mask, expected)
    assert np.array_equal(r.bipartition, v > v.mean())  # all three islands before the rule
    assert r.component_box == (1, 1, 3, 3)  # (x0, y0, x1, y1), exclusive ends


def test_bipartition_errors():
    with pytest.raises(InputError, match="h \\* w = 12"):
        bipartition(np.arange(10.0), (3, 4))
    with pytest.raises(InputError, match="constant"):
        bipartition(np.ones(12), (3, 4))


# ----------------------------------------------------------------------------- patch mask

@pytest.mark.parametrize("grid,box", [((12, 16), (3, 5, 7, 11)), ((20, 20), (0, 0, 6, 9))])
def test_patch_mask_finds_the_square(grid, box):
    keys, inside = square_keys(grid, box)
    for k in (keys, keys[0]):  # (1, D, h, w) and (D, h, w)
        r = tokencut_patch_mask(k)
        assert isinstance(r, TokenCutResult)
        assert np.array_equal(r.mask, inside)  # the smaller cluster has the larger |v|: the seed
        assert r.eigvec.shape == grid and r.mask.dtype == bool
        r0, c0, r1, c1 = box
        assert r.component_box == (c0, r0, c1, r1)


def test_patch_mask_solvers_agree():
    keys, inside = square_keys((15, 15), (2, 3, 9, 8), noise=0.3, seed=1)
    masks = [tokencut_patch_mask(keys, solver=s).mask for s in ("dense", "lanczos", "arpack", "lobpcg")]
    assert all(np.array_equal(m, masks[0]) for m in masks[1:])
    iou = (masks[0] & inside).sum() / (masks[0] | inside).sum()
    assert iou > 0.95  # this much noise attaches a background token or so


def test_patch_mask_errors():
    with pytest.raises(InputError, match="one image"):
        tokencut_patch_mask(torch.randn(2, 4, 3, 3))
    with pytest.raises(InputError, match="3 or 4 dimensions"):
        tokencut_patch_mask(torch.randn(4, 9))


# ------------------------------------------------------------------------------- saliency

def test_saliency_returns_the_square_at_full_resolution():
    # 151 and 203 are coprime with the grid sides 9 and 13, so no pixel sits exactly on a patch
    # border and nearest upsampling is unambiguous.
    H, W, p = 151, 203, 16
    backbone = FakeBackbone(p, box=(3, 4, 6, 8))  # patch rows 3..5, cols 4..7
    image = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    out = tokencut_saliency(image, backbone)
    # round(151 / 16) = 9 -> 144, round(203 / 16) = 13 -> 208
    assert out.input_size == (144, 208)
    (x,) = backbone.seen
    assert x.shape == (1, 3, 144, 208) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.9
    assert out.mask.shape == (H, W) and out.mask.dtype == np.float32
    assert set(np.unique(out.mask)) == {0.0, 1.0}
    # Pixel row i comes from patch row floor(i * 9 / 151): rows 3..5 <-> i in [51, 101),
    # i.e. ceil(3 * 151 / 9) = 51 and ceil(6 * 151 / 9) = 101; columns floor(j * 13 / 203) in
    # 4..7 <-> j in [ceil(4 * 203 / 13), ceil(8 * 203 / 13)) = [63, 125).
    expected = np.zeros((H, W), dtype=np.float32)
    expected[51:101, 63:125] = 1.0
    assert np.array_equal(out.mask, expected)
    assert out.patch.mask.shape == (9, 13)


def test_saliency_rounds_halves_to_even_like_tokencut():
    # 200 / 16 = 12.5 -> 12 (Python rounds halves to even), 232 / 16 = 14.5 -> 14.
    backbone = FakeBackbone(16, box=(2, 2, 5, 6))
    image = np.zeros((232, 200, 3), dtype=np.uint8)
    image[..., 0] = 255
    out = tokencut_saliency(image, backbone)
    assert out.input_size == (224, 192)
    assert backbone.seen[0].shape == (1, 3, 224, 192)
    # A constant red image stays constant under Lanczos: channel 0 is 1, the others 0.
    assert torch.allclose(backbone.seen[0][0, 0], torch.ones(224, 192))
    assert float(backbone.seen[0][0, 1:].abs().max()) == 0.0
    assert out.mask.shape == (232, 200)


def test_saliency_with_the_offline_filterbank_backbone():
    # The real Backbone API (paperlib.backbones.registry) on a red square over a noisy green background.
    from paperlib.backbones.filterbank import FilterBank

    rng = np.random.default_rng(0)
    image = np.empty((123, 171, 3), dtype=np.uint8)
    image[...] = np.clip(np.array([40, 120, 60]) + rng.integers(-20, 20, size=image.shape), 0, 255)
    image[30:80, 50:110] = (220, 40, 40)
    out = tokencut_saliency(image, FilterBank(patch_size=8))
    assert out.input_size == (120, 168) and out.patch.mask.shape == (15, 21)
    truth = np.zeros((123, 171), dtype=bool)
    truth[30:80, 50:110] = True
    pred = out.mask > 0.5
    # Patch borders (8 px) do not line up with the square's edges: IoU 0.82 when written.
    assert (pred & truth).sum() / (pred | truth).sum() > 0.75


def test_saliency_errors():
    backbone = FakeBackbone(16, box=(1, 1, 3, 3))
    with pytest.raises(InputError, match="uint8 \\(H, W, 3\\)"):
        tokencut_saliency(np.zeros((64, 64, 3), dtype=np.float32), backbone)
    with pytest.raises(InputError, match="expected \\(4, 4\\)"):
        tokencut_saliency(np.zeros((64, 64, 3), dtype=np.uint8),
                          FakeBackbone(16, box=(1, 1, 3, 3), grid_offset=1))


# ------------------------------------------------------------------------------------ box

def test_box_is_scaled_and_clipped():
    # A 100 x 150 image zero-padded to 112 x 160 (grid 7 x 10, patch 16); the object touches
    # the bottom-right patches, which overhang the image.
    keys, _ = square_keys((7, 10), (4, 6, 7, 10))
    r = tokencut_patch_mask(keys)
    assert r.component_box == (6, 4, 10, 7)
    box = tokencut_box(r, 16, (100, 150))
    # x: 6 * 16 = 96 .. min(10 * 16, 150) = 150; y: 4 * 16 = 64 .. min(7 * 16, 100) = 100
    assert box.tolist() == [96, 64, 150, 100] and box.dtype == np.int64
    assert tokencut_box(r, 16, (112, 160)).tolist() == [96, 64, 160, 112]  # inside: unclipped
