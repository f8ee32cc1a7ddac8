"""Graph total variation of a soft mask on the 8-neighbour grid (paper eqs. 5-7, Sempart).

The loss of a mask ``s`` on a graph with edge weights ``a_ij`` is (paper eq. 5)

    L_GTV = 1/2 sum_{(i, j) in E} a_ij (s_i - s_j)^2,

with E the 8-neighbour pairs of the pixel grid (fine) or of the patch grid (coarse):

* fine (eq. 6): ``a_ij = exp(-||x_i - x_j||^2 / sigma)`` on the image's pixel values;
* coarse (eq. 7): ``a_ij = w_ij``, the binary token affinity of the Ncut loss, kept only between
  grid neighbours.

**Normalisation.** The paper's implementation section replaces the sum by an average "since we
observed that this improves stability", and docs/paper_and_code.md#losses fixes it as the mean
over pixels and neighbours. Every function here returns

    mean over b, the H*W pixels i and the 8 offsets k of  a_{i, i+k} (s_i - s_{i+k})^2,

i.e. the sum over ordered (directed) pairs divided by ``8 B H W``. Each undirected edge is an
ordered pair twice, so with E the ordered pairs this is exactly eq. (5) divided by ``4 H W``
per image (then averaged over the batch); the factor 1/2 of eq. (5) is absorbed in that constant.

**Border.** Neighbours outside the grid are taken from the grid mirrored about its edge pixel
(``torch.nn.functional.pad(mode="reflect")``: ``c b | a b c | b a``): a border pixel's missing
neighbour is its neighbour on the other side, so border pixels count 8 terms like every other
pixel and a constant mask still costs 0. Grids must be at least 2 x 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive, check_tensor, require
from .settings import SEMPART_AFFINITY, check_affinity

# The 8 neighbour offsets (dy, dx), row-major.
OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _shifted(x_pad: torch.Tensor, dy: int, dx: int, H: int, W: int) -> torch.Tensor:
    """The (dy, dx) neighbour of every pixel, from a tensor reflect-padded by 1: (B, C, H, W)."""
    return x_pad[:, :, 1 + dy:1 + dy + H, 1 + dx:1 + dx + W]


def _check_mask(name: str, s: torch.Tensor) -> None:
    check_tensor(name, s, ndim=4, channels=1, floating=True)
    require(s.shape[2] >= 2 and s.shape[3] >= 2,
            f"{name} must be at least 2 x 2 for the reflected 8-neighbour stencil, got shape "
            f"{tuple(s.shape)}")


def gtv_fine(image: torch.Tensor, s: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """Graph total variation of the fine mask with image-similarity weights (eqs. 5, 6).

    ``a_ij = exp(-||x_i - x_j||^2 / sigma)``, the squared norm summed over the channels of the
    image as given (the ImageNet-normalised network input, docs/paper_and_code.md#losses). The
    mean over pixels and 8 neighbours is eq. (5) / (4 H W) (module docstring). Differentiable in
    ``s`` and ``image``.

    Args:
        image: (B, C, H, W) guide, C = 3 for the ImageNet-normalised RGB input.
        s: (B, 1, H, W) fine mask, the sigmoid of the fine logits; H, W >= 2.
        sigma: bandwidth of the weights (> 0); 1 in Sempart and the released code.

    Returns:
        () loss, in the dtype of ``s``.
    """
    check_tensor("image", image, ndim=4, floating=True)
    _check_mask("s", s)
    require(image.shape[0] == s.shape[0] and image.shape[2:] == s.shape[2:],
            f"image and s must have the same batch size, height and width, got image "
            f"{tuple(image.shape)} and s {tuple(s.shape)}")
    check_positive("sigma", sigma)
    B, _, H, W = s.shape
    x_pad = F.pad(image, (1, 1, 1, 1), mode="reflect")  # (B, C, H + 2, W + 2)
    s_pad = F.pad(s, (1, 1, 1, 1), mode="reflect")      # (B, 1, H + 2, W + 2)
    total = s.new_zeros(())
    for dy, dx in OFFSETS:  # one offset at a time: peak memory of one (B, C, H, W) difference
        dist2 = (image - _shifted(x_pad, dy, dx, H, W)).pow(2).sum(dim=1, keepdim=True)  # (B, 1, H, W)
        a = torch.exp(-dist2 / sigma)
        total = total + (a * (s - _shifted(s_pad, dy, dx, H, W)).pow(2)).sum()
    return total / (len(OFFSETS) * B * H * W)


def _coarse_weight(S: torch.Tensor, tau: float, eps: float, binary: bool) -> torch.Tensor:
    """Affinity from cosine similarities, the rule of :func:`paperlib.losses.ncut.affinity`."""
    if binary:
        return torch.where(S > tau, torch.ones_like(S), torch.full_like(S, eps))
    return torch.where(S >= tau, S, torch.full_like(S, eps))


def gtv_coarse(keys: torch.Tensor, s: torch.Tensor, *, tau: float = SEMPART_AFFINITY.tau,
               eps: float = SEMPART_AFFINITY.eps, binary: bool = SEMPART_AFFINITY.binary) -> torch.Tensor:
    """Graph total variation of the coarse mask with token-affinity weights (eqs. 5, 7).

    ``a_ij = w_ij`` for grid neighbours, ``w`` the affinity of :func:`paperlib.losses.ncut.affinity`
    (binary: 1 if the cosine similarity of the L2-normalised features exceeds tau, else eps).
    Only the 8 neighbours' similarities are computed, by shifting the normalised feature map:
    O(8 N D) instead of the O(N^2 D) of the dense graph; :func:`gtv_coarse_from_affinity` gives
    the same value from a dense W. Mean over tokens and neighbours, as :func:`gtv_fine`.

    Args:
        keys: (B, D, h, w) backbone features, the ones the Ncut affinity is built from.
        s: (B, 1, h, w) coarse mask, the sigmoid of the coarse logits; h, w >= 2.
        tau: similarity threshold, 0.4 for Sempart (docs/paper_and_code.md#affinity).
        eps: weight of unlinked neighbours, 1e-6 for Sempart.
        binary: linked neighbours weigh 1 if True, else their similarity.

    Returns:
        () loss, in the dtype of ``s``. Differentiable in ``s`` (and in ``keys`` only when
        ``binary`` is False; binary weights are piecewise constant).
    """
    check_tensor("keys", keys, ndim=4, floating=True)
    _check_mask("s", s)
    require(keys.shape[0] == s.shape[0] and keys.shape[2:] == s.shape[2:],
            f"keys and s must have the same batch size and grid, got keys {tuple(keys.shape)} "
            f"and s {tuple(s.shape)}")
    check_affinity(tau, eps)
    B, _, h, w = s.shape
    K = F.normalize(keys, p=2, dim=1)  # (B, D, h, w), unit feature per token
    K_pad = F.pad(K, (1, 1, 1, 1), mode="reflect")  # (B, D, h + 2, w + 2)
    s_pad = F.pad(s, (1, 1, 1, 1), mode="reflect")  # (B, 1, h + 2, w + 2)
    total = s.new_zeros(())
    for dy, dx in OFFSETS:
        S = (K * _shifted(K_pad, dy, dx, h, w)).sum(dim=1, keepdim=True)  # (B, 1, h, w) cosine
        a = _coarse_weight(S, tau, eps, binary).to(s.dtype)
        total = total + (a * (s - _shifted(s_pad, dy, dx, h, w)).pow(2)).sum()
    return total / (len(OFFSETS) * B * h * w)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Index i in [-1, n] mirrored about the edge entries into [0, n - 1] (reflect padding by 1)."""
    return torch.where(i < 0, -i, torch.where(i > n - 1, 2 * (n - 1) - i, i))


def neighbour_index(h: int, w: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Row-major token index of the 8 reflected neighbours of every token of an h x w grid.

    Args:
        h, w: grid size, each >= 2.
        device: where the index lives.

    Returns:
        (8, N) int64: entry [k, n] is the neighbour of token n at offset ``OFFSETS[k]``.
    """
    require(h >= 2 and w >= 2, f"the grid must be at least 2 x 2, got {h} x {w}")
    rows = torch.arange(h, device=device).view(h, 1)
    cols = torch.arange(w, device=device).view(1, w)
    index = [(_reflect(rows + dy, h) * w + _reflect(cols + dx, w)).reshape(-1) for dy, dx in OFFSETS]
    return torch.stack(index)  # (8, N)


def gtv_coarse_from_affinity(W: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """:func:`gtv_coarse` from a dense affinity: eq. (7) read literally, ``w_ij 1{i in N(j)}``.

    Args:
        W: (B, N, N) affinity, e.g. ``affinity(keys, **SEMPART_AFFINITY._asdict())``.
        s: (B, 1, h, w) coarse mask with N = h * w tokens flattened row-major; h, w >= 2.

    Returns:
        () loss; equals ``gtv_coarse(keys, s)`` for the W built from the same keys.
    """
    check_tensor("W", W, ndim=3, floating=True)
    _check_mask("s", s)
    B, _, h, w = s.shape
    N = h * w
    require(W.shape == (B, N, N), f"W must be (B, N, N) = {(B, N, N)} for s of shape "
                                  f"{tuple(s.shape)}, got {tuple(W.shape)}")
    j = neighbour_index(h, w, device=W.device)  # (8, N)
    i = torch.arange(N, device=W.device).expand_as(j)  # (8, N)
    a = W[:, i, j].to(s.dtype)  # (B, 8, N)
    s_flat = s.reshape(B, N)
    ds = s_flat[:, i] - s_flat[:, j]  # (B, 8, N)
    return (a * ds.pow(2)).mean()


class GraphTVFine(nn.Module):
    """Module form of :func:`gtv_fine`; ``forward(image, s)`` returns the same loss."""

    def __init__(self, *, sigma: float = 1.0) -> None:
        super().__init__()
        check_positive("sigma", sigma)
        self.sigma = sigma

    def forward(self, image: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Args: image (B, C, H, W), s (B, 1, H, W). Returns: () loss."""
        return gtv_fine(image, s, sigma=self.sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class GraphTVCoarse(nn.Module):
    """Module form of :func:`gtv_coarse`; ``forward(keys, s)`` returns the same loss."""

    def __init__(self, *, tau: float = SEMPART_AFFINITY.tau, eps: float = SEMPART_AFFINITY.eps,
                 binary: bool = SEMPART_AFFINITY.binary) -> None:
        super().__init__()
        check_affinity(tau, eps)
        self.tau, self.eps, self.binary = tau, eps, binary

    def forward(self, keys: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Args: keys (B, D, h, w), s (B, 1, h, w). Returns: () loss."""
        return gtv_coarse(keys, s, tau=self.tau, eps=self.eps, binary=self.binary)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, eps={self.eps}, binary={self.binary}"
