"""Tests of paperlib.losses.graph_tv against a pixel-loop reference and hand-counted stencils."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.losses.graph_tv import (
    OFFSETS,
    GraphTVCoarse,
    GraphTVFine,
    gtv_coarse,
    gtv_coarse_from_affinity,
    gtv_fine,
    neighbour_index,
)
from paperlib.losses.ncut import affinity
from paperlib.losses.settings import SEMPART_AFFINITY


def mirror(i: int, n: int) -> int:
    """Index of the grid mirrored about its edge entries: -1 -> 1, n -> n - 2."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


def gtv_loop(weight, s: np.ndarray) -> float:
    """Mean over pixels and the 8 neighbours of weight(p, q) (s_p - s_q)^2, by explicit loops.

    s: (H, W); weight((r, c), (r2, c2)) -> float.
    """
    H, W = s.shape
    total = 0.0
    for r in range(H):
        for c in range(W):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy == dx == 0:
                        continue
                    r2, c2 = mirror(r + dy, H), mirror(c + dx, W)
                    total += weight((r, c), (r2, c2)) * (s[r, c] - s[r2, c2]) ** 2
    return total / (8 * H * W)


def fine_loop(image: np.ndarray, s: np.ndarray, sigma: float) -> float:
    """image (C, H, W), s (H, W)."""
    def weight(p, q):
        return math.exp(-float(((image[:, p[0], p[1]] - image[:, q[0], q[1]]) ** 2).sum()) / sigma)
    return gtv_loop(weight, s)


def coarse_loop(keys: np.ndarray, s: np.ndarray, tau: float, eps: float) -> float:
    """keys (D, h, w), s (h, w); binary cosine-similarity weights."""
    K = keys / np.linalg.norm(keys, axis=0, keepdims=True)

    def weight(p, q):
        return 1.0 if float(K[:, p[0], p[1]] @ K[:, q[0], q[1]]) > tau else eps
    return gtv_loop(weight, s)


def step_image(H=2, W=4, *, edge=2):
    """(1, 3, H, W): 0 left of column ``edge``, 1 from it on, in every channel."""
    x = torch.zeros(1, 3, H, W, dtype=torch.float64)
    x[..., edge:] = 1.0
    return x


def step_mask(H=2, W=4, *, edge=2):
    s = torch.zeros(1, 1, H, W, dtype=torch.float64)
    s[..., edge:] = 1.0
    return s


# ----------------------------------------------------------------------------------- fine

def test_fine_matches_pixel_loop():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    s = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64)
    for sigma in (1.0, 2.5):
        expected = np.mean([fine_loop(image[b].numpy(), s[b, 0].numpy(), sigma) for b in range(2)])
        assert gtv_fine(image, s, sigma=sigma).item() == pytest.approx(expected, rel=1e-12)


def test_fine_step_values_by_hand():
    # 2 x 4 grid, s = 0 in columns 0-1 and 1 in columns 2-3. Ordered pairs (pixel, offset) whose
    # ends differ: from column 1 the 3 offsets with dx = +1, from column 2 the 3 with dx = -1; the
    # reflected neighbours of columns 0 and 3 are columns 1 and 2, on their own side. So 6 per row,
    # 12 in all, out of 8 * 2 * 4 = 64 terms.
    s = step_mask()
    flat = torch.zeros(1, 3, 2, 4, dtype=torch.float64)
    # Flat image: every weight is 1 -> 12 / 64.
    assert gtv_fine(flat, s).item() == pytest.approx(12 / 64, rel=1e-14)
    # Image edge on the mask edge: the 12 crossing pairs differ by 1 in 3 channels -> exp(-3).
    assert gtv_fine(step_image(), s).item() == pytest.approx(12 * math.exp(-3) / 64, rel=1e-14)
    assert gtv_fine(step_image(), s, sigma=3.0).item() == pytest.approx(12 * math.exp(-1) / 64, rel=1e-14)


def test_fine_misaligned_edge_costs_more():
    # Mask edge between columns 0 and 1, image edge between 1 and 2: the mask's edge is in a flat
    # region (weight 1). Crossing pairs: column 0 with dx = +1 (3) and with dx = -1, whose reflected
    # neighbour is column 1 (3 more); column 1 with dx = -1 (3). 9 per row -> 18 / 64.
    s = step_mask(edge=1)
    value = gtv_fine(step_image(), s).item()
    assert value == pytest.approx(18 / 64, rel=1e-14)
    aligned = gtv_fine(step_image(), step_mask()).item()  # 12 e^-3 / 64
    assert value / aligned == pytest.approx(1.5 * math.exp(3), rel=1e-12)  # about 30x more


def test_fine_constant_mask_is_zero():
    g = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, 7, 9, generator=g)
    for value in (0.0, 0.3, 1.0):
        assert gtv_fine(image, torch.full((2, 1, 7, 9), value)).item() == 0.0


def test_fine_gradcheck():
    g = torch.Generator().manual_seed(2)
    image = torch.randn(1, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.rand(1, 1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, s: gtv_fine(x, s, sigma=1.5), (image, s))


def test_fine_module_equals_functional():
    g = torch.Generator().manual_seed(3)
    image, s = torch.randn(2, 3, 6, 6, generator=g), torch.rand(2, 1, 6, 6, generator=g)
    module = GraphTVFine(sigma=2.0)
    assert torch.equal(module(image, s), gtv_fine(image, s, sigma=2.0))
    assert "sigma=2.0" in repr(module)


def test_fine_errors():
    image, s = torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4)
    with pytest.raises(InputError, match="same batch size, height and width"):
        gtv_fine(image, torch.zeros(1, 1, 4, 5))
    with pytest.raises(InputError, match="at least 2 x 2"):
        gtv_fine(torch.zeros(1, 3, 1, 4), torch.zeros(1, 1, 1, 4))
    with pytest.raises(InputError, match="s must have 1 channels"):
        gtv_fine(image, torch.zeros(1, 2, 4, 4))
    with pytest.raises(InputError, match="sigma must be > 0"):
        gtv_fine(image, s, sigma=0.0)
    with pytest.raises(InputError, match="floating-point"):
        gtv_fine(image, s.long())
    with pytest.raises(InputError, match="sigma must be > 0"):
        GraphTVFine(sigma=-1.0)


# --------------------------------------------------------------------------------- coarse

def test_coarse_matches_pixel_loop_and_dense_affinity():
    g = torch.Generator().manual_seed(4)
    # Keys around two centres so that both weights (1 and eps) occur among the neighbours.
    centres = torch.randn(2, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (2, 5, 7), generator=g)
    keys = (centres[labels] + 0.5 * torch.randn(2, 5, 7, 6, generator=g, dtype=torch.float64))
    keys = keys.permute(0, 3, 1, 2).contiguous()  # (B, D, h, w) = (2, 6, 5, 7)
    s = torch.rand(2, 1, 5, 7, generator=g, dtype=torch.float64)
    tau, eps = SEMPART_AFFINITY.tau, SEMPART_AFFINITY.eps
    expected = np.mean([coarse_loop(keys[b].numpy(), s[b, 0].numpy(), tau, eps) for b in range(2)])
    W = affinity(keys, tau=tau, eps=eps)
    assert ((W == 1).sum() > 0) and ((W == eps).sum() > 0)
    assert gtv_coarse(keys, s).item() == pytest.approx(expected, rel=1e-12)
    assert gtv_coarse_from_affinity(W, s).item() == pytest.approx(expected, rel=1e-12)


def test_coarse_keys_equal_dense_at_training_size():
    g = torch.Generator().manual_seed(5)
    keys = torch.randn(2, 384, 40, 40, generator=g, dtype=torch.float64)
    keys = keys + torch.nn.functional.avg_pool2d(keys, 5, 1, 2) * 3  # smooth: neighbours alike
    s = torch.rand(2, 1, 40, 40, generator=g, dtype=torch.float64)
    W = affinity(keys, **SEMPART_AFFINITY._asdict())
    a = gtv_coarse(keys, s)
    assert a.item() == pytest.approx(gtv_coarse_from_affinity(W, s).item(), rel=1e-12)
    assert a.item() > 0


def test_coarse_step_values_by_hand():
    # Left half e1, right half e2: orthogonal keys, so the 12 crossing ordered pairs of the 2 x 4
    # step (see test_fine_step_values_by_hand) weigh eps = 1e-6 and the others 1 (cosine 1 > 0.4).
    keys = torch.zeros(1, 2, 2, 4, dtype=torch.float64)
    keys[:, 0, :, :2] = 1.0
    keys[:, 1, :, 2:] = 1.0
    assert gtv_coarse(keys, step_mask()).item() == pytest.approx(12 * 1e-6 / 64, rel=1e-12)
    # Mask edge inside the left cluster: 18 crossing pairs of weight 1 (test_fine_misaligned...).
    assert gtv_coarse(keys, step_mask(edge=1)).item() == pytest.approx(18 / 64, rel=1e-12)


def test_coarse_non_binary_uses_similarity():
    g = torch.Generator().manual_seed(6)
    keys = torch.randn(1, 4, 3, 4, generator=g, dtype=torch.float64)
    s = torch.rand(1, 1, 3, 4, generator=g, dtype=torch.float64)
    W = affinity(keys, tau=0.1, eps=1e-3, binary=False)
    assert gtv_coarse(keys, s, tau=0.1, eps=1e-3, binary=False).item() == pytest.approx(
        gtv_coarse_from_affinity(W, s).item(), rel=1e-12)


def test_coarse_constant_mask_is_zero():
    g = torch.Generator().manual_seed(7)
    keys = torch.randn(2, 8, 5, 5, generator=g)
    assert gtv_coarse(keys, torch.full((2, 1, 5, 5), 0.7)).item() == 0.0
    W = affinity(keys, **SEMPART_AFFINITY._asdict())
    assert gtv_coarse_from_affinity(W, torch.full((2, 1, 5, 5), 0.7)).item() == 0.0


def test_coarse_gradcheck():
    g = torch.Generator().manual_seed(8)
    keys = torch.randn(1, 5, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.rand(1, 1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: gtv_coarse(keys.detach(), s), (s,))
    # Soft weights depend on the keys too (no similarity lies near tau = -1).
    assert torch.autograd.gradcheck(lambda k, s: gtv_coarse(k, s, tau=-1.0, binary=False), (keys, s))
    W = affinity(keys.detach(), **SEMPART_AFFINITY._asdict()).requires_grad_()
    assert torch.autograd.gradcheck(gtv_coarse_from_affinity, (W, s))


def test_neighbour_index():
    # 2 x 3 grid, tokens 0 1 2 / 3 4 5. Token 0 (row 0, col 0): row -1 -> 1 and col -1 -> 1.
    index = neighbour_index(2, 3)
    assert index.shape == (8, 6)
    assert index[:, 0].tolist() == [4, 3, 4, 1, 1, 4, 3, 4]
    assert OFFSETS[0] == (-1, -1)


def test_coarse_module_and_errors():
    g = torch.Generator().manual_seed(9)
    keys, s = torch.randn(2, 4, 3, 3, generator=g), torch.rand(2, 1, 3, 3, generator=g)
    assert torch.equal(GraphTVCoarse()(keys, s), gtv_coarse(keys, s))
    with pytest.raises(InputError, match="same batch size and grid"):
        gtv_coarse(keys, torch.rand(2, 1, 3, 4))
    with pytest.raises(InputError, match="eps must be in"):
        gtv_coarse(keys, s, eps=0.0)
    with pytest.raises(InputError, match="W must be"):
        gtv_coarse_from_affinity(torch.rand(2, 8, 8), s)
    with pytest.raises(InputError, match="at least 2 x 2"):
        neighbour_index(1, 5)
