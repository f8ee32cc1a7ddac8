"""The guided filter of He, Sun and Tang (TPAMI 2013), used by the paper to refine masks (Sec. 3).

q = GF(p, I): in every (2r+1) x (2r+1) window w_k the output is an affine function of the guide,
q_i = a_k . I_i + b_k, fitted to the input p by ridge regression (the paper's Sec. 3 loss
E(a_k, b_k)); each pixel then averages the coefficients of the windows that contain it:

    a = cov_Ip / (var_I + eps)          (gray guide; colour: (Sigma_k + eps U)^-1 cov_Ip)
    b = mean_p - a . mean_I
    q = mean_a . I + mean_b

Every window mean is a box mean computed from cumulative sums, so the cost per pixel does not
depend on the radius. Three border rules:

* ``"count"``: windows are cut at the image border and divided by the number of pixels left in
  them (He et al.'s reference code, and the released code of this paper).
* ``"reflect"``: the image is mirrored with the edge pixel repeated (``cba|abc|cba``), OpenCV's
  ``BORDER_REFLECT``, which is what ``cv2.ximgproc.guidedFilter`` uses. (With a colour guide and
  eps < 1e-2 OpenCV also replaces a det(Sigma_k + eps U) below 1e-6 by 1, a threshold in absolute
  units that changes its result on low-contrast guides in [0, 1]; this module does not.)
* ``"reflect_101"``: mirrored about the edge pixel (``dcb|abcd|cba``), OpenCV's
  ``BORDER_REFLECT_101``, torch's ``"reflect"`` padding and so kornia's ``guided_blur`` default.

``subsample > 1`` is He and Sun's fast guided filter (arXiv:1505.00996): a and b are computed on
guide and input shrunk by ``subsample`` with radius ``radius // subsample``, and their box means
are upsampled back before being applied to the full-resolution guide.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..checks import check_tensor, is_int, is_number, require
from .gf_image import guided_filter_image_vjp, guided_filter_images
from .settings import BORDERS, PAPER_GF, GuidedFilterSettings, check_radius, check_settings  # noqa: F401 (re-exported)


def _check_params(radius, eps, border, subsample) -> None:
    check_settings(radius, eps, border)
    require(is_int(subsample),
            f"subsample must be an int, got {type(subsample).__name__}")
    require(subsample >= 1, f"subsample must be >= 1, got {subsample}")


def _reflect_index(n: int, radius: int, border: str, device: torch.device) -> torch.Tensor:
    """Source index of each of the n + 2r positions of an axis padded by ``radius`` on both sides.

    The mirrored axis is periodic, so any radius works, even one longer than the axis
    (OpenCV's box filter accepts those too).
    """
    j = torch.arange(-radius, n + radius, device=device)
    if border == "reflect":  # period 2n: 0 .. n-1, n-1 .. 0
        k = j.remainder(2 * n)
        return torch.where(k >= n, 2 * n - 1 - k, k)
    if n == 1:  # reflect_101 of a single pixel repeats it
        return torch.zeros_like(j)
    k = j.remainder(2 * n - 2)  # period 2n - 2: 0 .. n-1 .. 1
    return torch.where(k >= n, 2 * n - 2 - k, k)


def _box_mean_1d(x: torch.Tensor, radius: int, border: str, dim: int) -> torch.Tensor:
    """Mean over a window of 2r+1 along ``dim`` (-2 or -1) of a (B, K, H, W) tensor."""
    n = x.shape[dim]
    if border == "count":       # windows past both ends hold the whole axis already: same means
        radius = min(radius, n - 1)
    pad = (radius, radius) if dim == -1 else (0, 0, radius, radius)
    if border == "count":  # zeros outside add nothing; divide by the pixels inside
        x = F.pad(x, pad)
        i = torch.arange(n, device=x.device)
        count = ((i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1).to(x.dtype)
        count = count if dim == -1 else count[:, None]  # (n,) or (n, 1) broadcasts over (B, K, H, W)
    else:
        x = x.index_select(dim, _reflect_index(n, radius, border, x.device))  # n -> n + 2r along dim
        count = 2 * radius + 1
    # S[j] = sum of the first j padded entries: window i (padded entries i .. i + 2r) sums to
    # S[i + 2r + 1] - S[i].
    S = F.pad(x.cumsum(dim), (1, 0) if dim == -1 else (0, 0, 1, 0))  # (.., n + 2r + 1, ..)
    return (S.narrow(dim, 2 * radius + 1, n) - S.narrow(dim, 0, n)) / count


def _box_mean(x: torch.Tensor, radius: int, border: str) -> torch.Tensor:
    """Box mean over (2r+1) x (2r+1) windows of a (B, K, H, W) tensor, in O(1) per pixel."""
    return _box_mean_1d(_box_mean_1d(x, radius, border, -2), radius, border, -1)


def _coefficients_gray(I: torch.Tensor, p: torch.Tensor, radius: int, eps: float, border: str):
    """mean_a, mean_b (B, C, H, W) for a gray guide I (B, 1, H, W) and input p (B, C, H, W)."""
    C = p.shape[1]
    stats = _box_mean(torch.cat([I, I * I, p, I * p], dim=1), radius, border)  # (B, 2 + 2C, H, W)
    mean_I, corr_I, mean_p, corr_Ip = stats.split([1, 1, C, C], dim=1)
    var_I = corr_I - mean_I * mean_I  # (B, 1, H, W)
    cov_Ip = corr_Ip - mean_I * mean_p  # (B, C, H, W)
    a = cov_Ip / (var_I + eps)
    b = mean_p - a * mean_I
    mean_a, mean_b = _box_mean(torch.cat([a, b], dim=1), radius, border).split([C, C], dim=1)
    return mean_a, mean_b


# The 6 distinct entries of the symmetric 3x3 Sigma_k, as (row, column) of the guide channels.
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _coefficients_colour(I: torch.Tensor, p: torch.Tensor, radius: int, eps: float, border: str):
    """mean_a (B, 3, C, H, W) and mean_b (B, C, H, W) for a colour guide I (B, 3, H, W)."""
    B, _, H, W = I.shape
    C = p.shape[1]
    II = torch.stack([I[:, m] * I[:, n] for m, n in _PAIRS], dim=1)  # (B, 6, H, W)
    Ip = (I[:, :, None] * p[:, None]).reshape(B, 3 * C, H, W)  # (B, 3, 1) * (B, 1, C) -> (B, 3C)
    stats = _box_mean(torch.cat([I, II, p, Ip], dim=1), radius, border)
    mean_I, corr_I, mean_p, corr_Ip = stats.split([3, 6, C, 3 * C], dim=1)
    cov_Ip = corr_Ip.reshape(B, 3, C, H, W) - mean_I[:, :, None] * mean_p[:, None]  # (B, 3, C, H, W)
    # Sigma_k + eps U, entry by entry.
    rr, rg, rb, gg, gb, bb = (corr_I[:, k] - mean_I[:, m] * mean_I[:, n] + (eps if m == n else 0.0)
                              for k, (m, n) in enumerate(_PAIRS))  # each (B, H, W)
    # Its inverse by cofactors (symmetric, so the adjugate is too); det >= eps^3 > 0.
    inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * inv_rr + rg * inv_rg + rb * inv_rb
    inv = torch.stack([inv_rr, inv_rg, inv_rb, inv_rg, inv_gg, inv_gb, inv_rb, inv_gb, inv_bb], dim=1)
    inv = (inv / det[:, None]).reshape(B, 3, 3, 1, H, W)
    a = (inv * cov_Ip[:, None]).sum(dim=2)  # (B, 3, 3, 1) @ (B, 1, 3, C) -> (B, 3, C, H, W)
    b = mean_p - (a * mean_I[:, :, None]).sum(dim=1)  # (B, C, H, W)
    means = _box_mean(torch.cat([a.reshape(B, 3 * C, H, W), b], dim=1), radius, border)
    mean_a, mean_b = means.split([3 * C, C], dim=1)
    return mean_a.reshape(B, 3, C, H, W), mean_b


def guided_filter(guide: torch.Tensor, src: torch.Tensor, *, radius: int = PAPER_GF.radius,
                  eps: float = PAPER_GF.eps, border: str = PAPER_GF.border, subsample: int = 1
                  ) -> torch.Tensor:
    """Filter ``src`` with the guided filter of He et al., steered by ``guide``.

    Paper Sec. 3 ("Guided Filtering") and Sec. 4: q = GF(p, I), with a_k, b_k minimising
    E(a_k, b_k) in each window; He et al.'s colour-guide form when ``guide`` has 3 channels.
    Differentiable in both ``guide`` and ``src``. float16/bfloat16 inputs are computed in float32;
    the result has ``src``'s dtype. On the CPU a gray guide in float32 or lower precision goes
    through :func:`paperlib.refine.gf_image.guided_filter_image` (the compiled kernel for the
    count border where built, else OpenCV's box filter; the same q to ~1e-6) image by image: always without a gradient (the crop-zoom teacher's target on a
    CPU), and with one for the count border, whose gradients come from
    :func:`paperlib.refine.gf_image.guided_filter_image_vjp` (once differentiable). float64
    inputs, colour guides, GPUs, the fast filter and reflect borders under autograd take the torch path.

    Args:
        guide: (B, 1, H, W) gray or (B, 3, H, W) colour guide I, floating point.
        src: (B, C, H, W) input p, any C, on ``guide``'s device.
        radius: r >= 0 (:func:`check_radius`), windows are (2r+1) x (2r+1); default
            ``PAPER_GF.radius``. 0 gives a 1x1 window, where var_I = cov_Ip = 0, so q = src.
        eps: regularisation added to var_I (> 0, in squared guide units); default ``PAPER_GF.eps``.
        border: ``"count"`` (truncated windows, the paper's and the default), ``"reflect"`` (OpenCV's
            ximgproc.guidedFilter) or ``"reflect_101"`` (kornia's guided_blur default).
        subsample: s >= 1; s > 1 is the fast guided filter: a, b from guide and src shrunk to
            (H // s, W // s) by bilinear sampling without antialiasing (He and Sun's second
            option; when s divides H and W it is the mean of each 2x2 block for s = 2 and the
            centre pixel of each s x s block for odd s), with radius r // s; their box means are
            upsampled bilinearly (align_corners=False) to H x W.

    Returns:
        q: (B, C, H, W), dtype of ``src``.
    """
    check_tensor("guide", guide, ndim=4, channels=(1, 3), floating=True)
    check_tensor("src", src, ndim=4, floating=True)
    require(guide.shape[0] == src.shape[0] and guide.shape[2:] == src.shape[2:],
            f"guide and src must have the same batch size, height and width, "
            f"got guide {tuple(guide.shape)} and src {tuple(src.shape)}")
    require(guide.device == src.device,
            f"guide and src must be on one device, got {guide.device} and {src.device}")
    require(guide.shape[2] >= 1 and guide.shape[3] >= 1,
            f"guide and src must have at least one row and column, got shape {tuple(guide.shape)}")
    _check_params(radius, eps, border, subsample)
    radius, eps, subsample = int(radius), float(eps), int(subsample)  # NumPy scalars -> Python

    dtype = torch.promote_types(guide.dtype, src.dtype)
    if dtype in (torch.float16, torch.bfloat16):  # var_I = mean(I^2) - mean_I^2 is lost in half
        dtype = torch.float32
    if _takes_opencv_path(guide, src, dtype, subsample, border):
        if _wants_grad(guide, src):
            return _OpenCVGuidedFilter.apply(guide, src, radius, eps)
        return _guided_filter_opencv(guide, src, radius, eps, border)
    I, p = guide.to(dtype), src.to(dtype)
    # Adding a constant to I or to p leaves a unchanged and shifts q by the same constant in p
    # (the box weights sum to 1), so centering is exact; it keeps the cumulative sums small and
    # var_I clear of cancellation.
    shift_p = p.mean(dim=(-2, -1), keepdim=True)
    I = I - I.mean(dim=(-2, -1), keepdim=True)
    p = p - shift_p

    B, _, H, W = I.shape
    I_sub, p_sub, r_sub = I, p, radius
    if subsample > 1:
        size = (max(H // subsample, 1), max(W // subsample, 1))
        I_sub = F.interpolate(I, size=size, mode="bilinear", align_corners=False)
        p_sub = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
        r_sub = radius // subsample

    colour = I.shape[1] == 3
    coefficients = _coefficients_colour if colour else _coefficients_gray
    mean_a, mean_b = coefficients(I_sub, p_sub, r_sub, eps, border)
    if subsample > 1:
        mean_b = F.interpolate(mean_b, size=(H, W), mode="bilinear", align_corners=False)
        if colour:  # (B, 3, C, h, w) -> (B, 3C, H, W) -> (B, 3, C, H, W)
            mean_a = F.interpolate(mean_a.flatten(1, 2), size=(H, W), mode="bilinear", align_corners=False)
            mean_a = mean_a.reshape(B, 3, -1, H, W)
        else:
            mean_a = F.interpolate(mean_a, size=(H, W), mode="bilinear", align_corners=False)
    if colour:
        q = (mean_a * I[:, :, None]).sum(dim=1) + mean_b  # sum over guide channels -> (B, C, H, W)
    else:
        q = mean_a * I + mean_b  # (B, C, H, W) * (B, 1, H, W)
    return (q + shift_p).to(src.dtype)


def _wants_grad(guide: torch.Tensor, src: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (guide.requires_grad or src.requires_grad)


def _takes_opencv_path(guide: torch.Tensor, src: torch.Tensor, dtype: torch.dtype, subsample: int,
                       border: str) -> bool:
    """CPU, gray guide, float32 at most, full resolution; with a gradient, the count border only
    (its adjoint is a box filter too: :func:`paperlib.refine.gf_image.guided_filter_image_vjp`)."""
    return (guide.device.type == "cpu" and guide.shape[1] == 1 and dtype == torch.float32
            and subsample == 1 and (border == "count" or not _wants_grad(guide, src)))


def _guided_filter_opencv(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float,
                          border: str) -> torch.Tensor:
    """:func:`guided_filter` in float32 through :func:`paperlib.refine.gf_image.guided_filter_images`
    (the compiled kernel for the count border where built, else OpenCV four planes at a time):
    every (image, channel) plane with its image's guide."""
    I = guide.detach().to(torch.float32).numpy()      # (B, 1, H, W)
    p = src.detach().to(torch.float32).numpy()        # (B, C, H, W)
    B, C, H, W = p.shape
    guides = I[:, 0] if C == 1 else np.repeat(I[:, 0], C, axis=0)   # (B C, H, W): each channel its guide
    q = guided_filter_images(guides, p.reshape(B * C, H, W), radius=radius, eps=eps, border=border)
    return torch.from_numpy(q.reshape(B, C, H, W)).to(src.dtype)


class _OpenCVGuidedFilter(torch.autograd.Function):
    """The count-border gray guided filter through OpenCV, with its gradients (CPU, float32)."""

    @staticmethod
    def forward(ctx, guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
        ctx.save_for_backward(guide, src)
        ctx.radius, ctx.eps = radius, eps
        return _guided_filter_opencv(guide, src, radius, eps, "count")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_q: torch.Tensor):
        guide, src = ctx.saved_tensors
        need_guide, need_src = ctx.needs_input_grad[:2]
        I = guide.detach().to(torch.float32).numpy()      # (B, 1, H, W)
        p = src.detach().to(torch.float32).numpy()        # (B, C, H, W)
        g = grad_q.detach().to(torch.float32).numpy()
        grad_I = np.zeros(I.shape, np.float32) if need_guide else None
        grad_p = np.empty(p.shape, np.float32)
        for b in range(p.shape[0]):
            for c in range(p.shape[1]):                   # the guide serves every channel: sum
                gI, grad_p[b, c] = guided_filter_image_vjp(I[b, 0], p[b, c], g[b, c], radius=ctx.radius,
                                                           eps=ctx.eps, need_guide=need_guide)
                if need_guide:
                    grad_I[b, 0] += gI
        return (torch.from_numpy(grad_I).to(guide.dtype) if need_guide else None,
                torch.from_numpy(grad_p).to(src.dtype) if need_src else None, None, None)


class GuidedFilter(nn.Module):
    """Module form of :func:`guided_filter` (no parameters); ``forward(guide, src)`` gives the same q.

    Paper Sec. 3; hyper-parameters as in :func:`guided_filter` (defaults :data:`PAPER_GF`),
    checked at construction.
    """

    def __init__(self, *, radius: int = PAPER_GF.radius, eps: float = PAPER_GF.eps,
                 border: str = PAPER_GF.border, subsample: int = 1) -> None:
        super().__init__()
        _check_params(radius, eps, border, subsample)
        self.radius, self.eps, self.border, self.subsample = radius, eps, border, subsample

    def forward(self, guide: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """Args: guide (B, 1 or 3, H, W), src (B, C, H, W). Returns: q (B, C, H, W)."""
        return guided_filter(guide, src, radius=self.radius, eps=self.eps, border=self.border,
                             subsample=self.subsample)

    def extra_repr(self) -> str:
        return f"radius={self.radius}, eps={self.eps}, border={self.border!r}, subsample={self.subsample}"


def image_to_guide(image: torch.Tensor, *, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> torch.Tensor:
    """The paper's guide: the image in [0, 1], averaged over R, G, B.

    Paper Sec. 4 ("Guided filtering"): the guide is rescaled to [0, 1] like the mask, then its
    channels are averaged into one gray channel.

    Args:
        image: (B, 3, H, W) floating point; ImageNet-normalised when ``mean`` and ``std`` are
            given (it is un-normalised as image * std + mean), else already in [0, 1].
        mean: 3 per-channel means (e.g. :data:`paperlib.backbones.catalog.IMAGENET_MEAN`), or None together with ``std``.
        std: 3 per-channel standard deviations (e.g. :data:`paperlib.backbones.catalog.IMAGENET_STD`), all > 0, or None.

    Returns:
        guide: (B, 1, H, W) in [0, 1], dtype of ``image``.
    """
    check_tensor("image", image, ndim=4, channels=3, floating=True)
    require((mean is None) == (std is None),
            "mean and std must be given together (both None means the image is already in [0, 1])")
    if mean is not None:
        for name, values in (("mean", mean), ("std", std)):
            require(isinstance(values, Sequence) and len(values) == 3
                    and all(is_number(v) and math.isfinite(v) for v in values),
                    f"{name} must be a sequence of 3 finite numbers (R, G, B), got {values!r}")
        require(all(s > 0 for s in std), f"std must be > 0 in every channel, got {std!r}")
        mean_t = image.new_tensor(mean).view(1, 3, 1, 1)
        std_t = image.new_tensor(std).view(1, 3, 1, 1)
        image = image * std_t + mean_t
    return image.clamp(0.0, 1.0).mean(dim=1, keepdim=True)  # (B, 3, H, W) -> (B, 1, H, W)
