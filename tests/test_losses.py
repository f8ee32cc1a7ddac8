"""Tests of paperlib.losses.objective: hand-computed Ncut and SR values, properties, and eq. (8)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from paperlib.checks import InputError
from paperlib.losses.graph_tv import gtv_coarse, gtv_fine
from paperlib.losses.ncut import affinity, ncut_value
from paperlib.losses.objective import LossTerms, ncut_loss, sempart_loss, sr_loss
from paperlib.losses.settings import SEMPART_AFFINITY, AffinityParams, LossWeights

# Two pairs of strongly linked nodes, {0, 1} and {2, 3}, with cross links 0-3 and 1-2 of 0.5.
W4 = torch.tensor([[1.0, 1.0, 0.0, 0.5],
                   [1.0, 1.0, 0.5, 0.0],
                   [0.0, 0.5, 1.0, 1.0],
                   [0.5, 0.0, 1.0, 1.0]], dtype=torch.float64)[None]


def test_ncut_soft_by_hand():
    # s = (.75, .5, .25, .25), t = 1 - s = (.25, .5, .75, .75); every degree is 2.5.
    # W t = (.25 + .5 + .5 * .75, .25 + .5 + .5 * .75, .5 * .5 + .75 + .75, .5 * .25 + .75 + .75)
    #     = (1.125, 1.125, 1.75, 1.625)
    # cut = s^T W t = .75 * 1.125 + .5 * 1.125 + .25 * 1.75 + .25 * 1.625 = 2.25 (both ways, W = W^T)
    # assoc(A) = 2.5 * 1.75 = 4.375, assoc(B) = 2.5 * 2.25 = 5.625
    # Ncut = 2.25 / 4.375 + 2.25 / 5.625 = 18/35 + 14/35 = 32/35
    s = torch.tensor([[0.75, 0.5, 0.25, 0.25]], dtype=torch.float64)
    assert ncut_loss(W4, s).item() == pytest.approx(32 / 35, rel=1e-14)
    assert ncut_loss(W4, s.view(1, 1, 2, 2)).item() == pytest.approx(32 / 35, rel=1e-14)


def test_ncut_hard_partition_by_hand_and_clamp():
    # A = {0, 1}: cut = W02 + W03 + W12 + W13 = 0 + .5 + .5 + 0 = 1, assoc(A) = assoc(B) = 5,
    # Ncut = 1/5 + 1/5 = 0.4 (the clamp of s to [1e-6, 1 - 1e-6] moves it by about 2.4e-6).
    s = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    assert ncut_loss(W4, s).item() == pytest.approx(0.4, abs=1e-5)
    assert ncut_loss(W4, s).item() != 0.4  # the clamp did act
    # A constant s = c gives cut = c (1 - c) 1^T W 1, assoc(A) = c 1^T W 1, assoc(B) = (1 - c) 1^T W 1,
    # so Ncut = (1 - c) + c = 1. With s = 1 it holds only thanks to the clamp (c = 1 - 1e-6);
    # unclamped, assoc(B) = 0 would be floored and the loss would be 0.
    assert ncut_loss(W4, torch.ones(1, 4, dtype=torch.float64)).item() == pytest.approx(1.0, rel=1e-9)
    assert ncut_loss(W4, torch.full((1, 4), 0.3, dtype=torch.float64)).item() == pytest.approx(1.0, rel=1e-12)
    assert ncut_value(W4, torch.ones(1, 4, dtype=torch.float64)).item() == 0.0


def test_ncut_symmetric_and_batch_mean():
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(3, 8, 4, 5, generator=g, dtype=torch.float64)
    W = affinity(keys, **SEMPART_AFFINITY._asdict())
    s = torch.rand(3, 1, 4, 5, generator=g, dtype=torch.float64)
    assert ncut_loss(W, s).item() == pytest.approx(ncut_loss(W, 1 - s).item(), rel=1e-12)
    per_image = [ncut_loss(W[b:b + 1], s[b:b + 1]).item() for b in range(3)]
    assert ncut_loss(W, s).item() == pytest.approx(sum(per_image) / 3, rel=1e-12)


def test_ncut_gradcheck():
    g = torch.Generator().manual_seed(1)
    W = affinity(torch.randn(2, 6, 3, 3, generator=g, dtype=torch.float64), **SEMPART_AFFINITY._asdict())
    s = (0.05 + 0.9 * torch.rand(2, 1, 3, 3, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: ncut_loss(W, s), (s,))


def test_sr_downsampling_is_bilinear_without_antialias():
    # 16 x 16 -> 2 x 2, factor 8: coarse (0, 0) samples the fine grid at (3.5, 3.5), the mean of
    # pixels (3..4, 3..4). A spike of 1 at (3, 4) gives down = [[.25, 0], [0, 0]]; against a zero
    # coarse map SR = .25^2 / 4 = 0.015625. A spike at (0, 0) is never sampled: SR = 0 (an
    # antialiased resize would see both).
    coarse = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    fine = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    fine[0, 0, 3, 4] = 1.0
    assert sr_loss(fine, coarse).item() == pytest.approx(0.015625, rel=1e-14)
    fine.zero_()
    fine[0, 0, 0, 0] = 1.0
    assert sr_loss(fine, coarse).item() == 0.0


def test_sr_value_and_zero_when_consistent():
    # Fine map constant per 8 x 8 block: down() returns the block values exactly.
    g = torch.Generator().manual_seed(2)
    coarse = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64)
    fine = coarse.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    assert sr_loss(fine, coarse).item() == pytest.approx(0.0, abs=1e-15)
    assert sr_loss(fine, coarse + 0.1).item() == pytest.approx(0.01, rel=1e-12)


def test_sr_gradcheck_reaches_both_maps():
    g = torch.Generator().manual_seed(3)
    fine = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    coarse = torch.rand(1, 1, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sr_loss, (fine, coarse))
    sr_loss(fine, coarse).backward()
    assert fine.grad.abs().sum() > 0 and coarse.grad.abs().sum() > 0  # no stop-gradient


def test_loss_weights_match_spec():
    assert dataclasses.asdict(LossWeights()) == {
        "ncut": 1.0, "gtv_fine": 1.0, "gtv_coarse": 1.0, "sr": 1.0, "ncut_crop": 0.01, "eq": 0.01}
    with pytest.raises(dataclasses.FrozenInstanceError):
        LossWeights().sr = 2.0
    with pytest.raises(InputError, match="LossWeights.eq must be >= 0"):
        LossWeights(eq=-1.0)


def tiny_batch(dtype=torch.float64, *, seed=4):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(2, 6, 3, 3, generator=g, dtype=dtype)
    image = torch.randn(2, 3, 12, 12, generator=g, dtype=dtype)
    fine = torch.randn(2, 1, 12, 12, generator=g, dtype=dtype)
    coarse = torch.randn(2, 1, 3, 3, generator=g, dtype=dtype)
    return keys, image, fine, coarse


def test_sempart_loss_terms_and_weighted_total():
    keys, image, fine, coarse = tiny_batch()
    weights = LossWeights(ncut=1.5, gtv_fine=0.25, gtv_coarse=2.0, sr=3.0, ncut_crop=0.5, eq=0.125)
    params = AffinityParams(tau=0.1, eps=1e-4)
    ncut_crop, eq = torch.tensor(0.7, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    terms = sempart_loss(keys, image, fine, coarse, weights=weights, affinity_params=params,
                         sigma=2.0, ncut_crop=ncut_crop, eq=eq)
    assert isinstance(terms, LossTerms)
    s_fine, s_coarse = torch.sigmoid(fine), torch.sigmoid(coarse)
    assert terms.ncut.item() == pytest.approx(ncut_loss(affinity(keys, tau=0.1, eps=1e-4), s_coarse).item(), rel=1e-12)
    assert terms.gtv_fine.item() == pytest.approx(gtv_fine(image, s_fine, sigma=2.0).item(), rel=1e-12)
    assert terms.gtv_coarse.item() == pytest.approx(gtv_coarse(keys, s_coarse, tau=0.1, eps=1e-4).item(), rel=1e-12)
    assert terms.sr.item() == pytest.approx(sr_loss(s_fine, s_coarse).item(), rel=1e-12)
    assert terms.ncut_crop is ncut_crop and terms.eq is eq
    expected = (1.5 * terms.ncut + 0.25 * terms.gtv_fine + 2.0 * terms.gtv_coarse + 3.0 * terms.sr
                + 0.5 * 0.7 + 0.125 * 0.3)
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert all(t.ndim == 0 for t in terms)


def test_sempart_loss_without_crop_terms_is_eq8():
    keys, image, fine, coarse = tiny_batch()
    terms = sempart_loss(keys, image, fine, coarse)
    assert terms.ncut_crop.item() == 0.0 and terms.eq.item() == 0.0
    assert terms.total.item() == pytest.approx(
        (terms.ncut + terms.gtv_fine + terms.gtv_coarse + terms.sr).item(), rel=1e-12)


def test_sempart_loss_gradcheck():
    keys, image, fine, coarse = tiny_batch(seed=5)
    keys, image, fine, coarse = keys[:1], image[:1, :, :6, :6], fine[:1, :, :6, :6], coarse[:1]
    fine.requires_grad_()
    coarse.requires_grad_()
    assert torch.autograd.gradcheck(lambda f, c: sempart_loss(keys, image, f, c).total, (fine, coarse))


def test_sempart_loss_at_training_size():
    g = torch.Generator().manual_seed(6)
    keys = torch.randn(1, 384, 40, 40, generator=g)
    image = torch.randn(1, 3, 320, 320, generator=g)
    fine = torch.randn(1, 1, 320, 320, generator=g, requires_grad=True)
    coarse = torch.randn(1, 1, 40, 40, generator=g, requires_grad=True)
    terms = sempart_loss(keys, image, fine, coarse)
    terms.total.backward()
    assert torch.isfinite(terms.total) and fine.grad.shape == fine.shape
    assert coarse.grad.abs().sum() > 0


def test_sempart_loss_errors():
    keys, image, fine, coarse = tiny_batch()
    with pytest.raises(InputError, match="same h x w grid"):
        sempart_loss(keys, image, fine, coarse[:, :, :2])
    with pytest.raises(InputError, match="same H x W"):
        sempart_loss(keys, image, fine[:, :, :8], coarse)
    with pytest.raises(InputError, match="share the batch size"):
        sempart_loss(keys[:1], image, fine, coarse)
    with pytest.raises(InputError, match="weights must be a LossWeights"):
        sempart_loss(keys, image, fine, coarse, weights={"ncut": 1.0})
    with pytest.raises(InputError, match="eq must have 0 dimensions"):
        sempart_loss(keys, image, fine, coarse, eq=torch.zeros(2))
    with pytest.raises(InputError, match="s_coarse must have 1 channels"):
        sr_loss(fine, torch.zeros(2, 2, 3, 3, dtype=torch.float64))
