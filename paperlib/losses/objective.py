"""The Sempart training objective and its terms (paper eqs. 3, 4, 5 and 8; docs/paper_and_code.md#losses).

The head predicts coarse logits on the patch grid and fine logits on the pixel grid; their
sigmoids ``s_coarse`` (B, 1, h, w) and ``s_fine`` (B, 1, H, W) enter

    L = l_ncut L_Ncut(s_coarse) + l_gtv_fine L_GTV-fine(s_fine) + l_gtv_coarse L_GTV-coarse(s_coarse)
        + l_sr L_SR(s_fine, s_coarse)                                                  (eq. 8)
        + l_ncut_crop L_Ncut-crop + l_eq L_eq                          (trick 2, Sec. 4 and 5)

The two crop terms need a second forward pass on a zoomed crop; :mod:`paperlib.losses.crop_zoom`
computes them and :func:`sempart_loss` adds them with their weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..checks import check_tensor, require
from .graph_tv import gtv_coarse, gtv_fine
from .ncut import affinity, ncut_value
from .settings import SEMPART_AFFINITY, AffinityParams, LossWeights

# The coarse sigmoid is clamped to [S_CLAMP, 1 - S_CLAMP] before the Ncut loss
# (docs/paper_and_code.md#losses).
S_CLAMP = 1e-6


def ncut_loss(W: torch.Tensor, s_coarse: torch.Tensor) -> torch.Tensor:
    """Sempart's Ncut loss: the relaxed normalized cut of the coarse mask (paper eq. 3).

    ``s_coarse`` is clamped to [1e-6, 1 - 1e-6] and passed to :func:`paperlib.losses.ncut.ncut_value`
    (denominators floored at 1e-6); the mean over the batch. Symmetric in s and 1 - s.

    Args:
        W: (B, N, N) token affinity, e.g. ``affinity(keys, **SEMPART_AFFINITY._asdict())``.
        s_coarse: (B, 1, h, w) (or (B, N)) coarse sigmoid, N = h * w tokens row-major.

    Returns:
        () loss.
    """
    check_tensor("s_coarse", s_coarse, floating=True)
    return ncut_value(W, s_coarse.clamp(S_CLAMP, 1.0 - S_CLAMP), reduction="mean")


def sr_loss(s_fine: torch.Tensor, s_coarse: torch.Tensor) -> torch.Tensor:
    """Super-resolution consistency ``mean((s_coarse - down(s_fine))^2)`` (paper eq. 4).

    ``down`` is bilinear resizing to the coarse grid, ``align_corners=False``, without
    antialiasing (docs/paper_and_code.md#losses): for a factor 8 each coarse value is the mean
    of the 2 x 2 fine pixels at the centre of its 8 x 8 block. No stop-gradient: both maps
    receive gradients. The squared norm of eq. (4) is taken as a mean over the h * w tokens and
    the batch.

    Args:
        s_fine: (B, 1, H, W) fine sigmoid.
        s_coarse: (B, 1, h, w) coarse sigmoid.

    Returns:
        () loss.
    """
    check_tensor("s_fine", s_fine, ndim=4, channels=1, floating=True)
    check_tensor("s_coarse", s_coarse, ndim=4, channels=1, floating=True)
    require(s_fine.shape[0] == s_coarse.shape[0],
            f"s_fine and s_coarse must have the same batch size, got {tuple(s_fine.shape)} "
            f"and {tuple(s_coarse.shape)}")
    down = F.interpolate(s_fine, size=s_coarse.shape[-2:], mode="bilinear", align_corners=False,
                         antialias=False)  # (B, 1, H, W) -> (B, 1, h, w)
    return (s_coarse - down).pow(2).mean()


class LossTerms(NamedTuple):
    """Each unweighted term of the objective, and their weighted sum; all () tensors."""

    ncut: torch.Tensor
    gtv_fine: torch.Tensor
    gtv_coarse: torch.Tensor
    sr: torch.Tensor
    ncut_crop: torch.Tensor  # 0 when no crop term was given
    eq: torch.Tensor         # 0 when no crop term was given
    total: torch.Tensor


def sempart_loss(keys: torch.Tensor, image: torch.Tensor, fine_logits: torch.Tensor,
                 coarse_logits: torch.Tensor, *, weights: LossWeights = LossWeights(),
                 affinity_params: AffinityParams = SEMPART_AFFINITY, sigma: float = 1.0,
                 ncut_crop: torch.Tensor | None = None, eq: torch.Tensor | None = None) -> LossTerms:
    """The Sempart objective on one batch (paper eq. 8), plus the crop terms of trick 2.

    W = ``affinity(keys, **affinity_params)``; L_Ncut = :func:`ncut_loss` (W, s_coarse);
    L_GTV-fine = :func:`paperlib.losses.graph_tv.gtv_fine` (image, s_fine, sigma);
    L_GTV-coarse = :func:`paperlib.losses.graph_tv.gtv_coarse` (keys, s_coarse, affinity_params);
    L_SR = :func:`sr_loss` (s_fine, s_coarse). Only the Ncut loss clamps s_coarse
    (docs/paper_and_code.md#losses).

    Args:
        keys: (B, D, h, w) frozen backbone features of the image.
        image: (B, 3, H, W) the ImageNet-normalised network input (the fine GTV weights).
        fine_logits: (B, 1, H, W) fine logits of the head.
        coarse_logits: (B, 1, h, w) coarse logits of the head.
        weights: the lambdas; the paper's by default.
        affinity_params: tau / eps / binary of the graph, Sempart's 0.4 / 1e-6 / binary.
        sigma: bandwidth of the fine GTV weights.
        ncut_crop: () L_Ncut-crop from :func:`paperlib.losses.crop_zoom.ncut_crop_loss`, or None.
        eq: () L_eq from :func:`paperlib.losses.crop_zoom.crop_consistency_loss`, or None.

    Returns:
        LossTerms of () tensors; ``total`` is the weighted sum of the six terms (a missing crop
        term counts as 0).
    """
    check_tensor("keys", keys, ndim=4, floating=True)
    check_tensor("image", image, ndim=4, channels=3, floating=True)
    check_tensor("fine_logits", fine_logits, ndim=4, channels=1, floating=True)
    check_tensor("coarse_logits", coarse_logits, ndim=4, channels=1, floating=True)
    require(isinstance(weights, LossWeights), f"weights must be a LossWeights, got {type(weights).__name__}")
    require(isinstance(affinity_params, AffinityParams),
            f"affinity_params must be an AffinityParams, got {type(affinity_params).__name__}")
    B = fine_logits.shape[0]
    require(keys.shape[0] == image.shape[0] == B == coarse_logits.shape[0],
            f"keys, image, fine_logits and coarse_logits must share the batch size, got "
            f"{keys.shape[0]}, {image.shape[0]}, {B} and {coarse_logits.shape[0]}")
    require(image.shape[2:] == fine_logits.shape[2:],
            f"image and fine_logits must have the same H x W, got {tuple(image.shape)} and "
            f"{tuple(fine_logits.shape)}")
    require(keys.shape[2:] == coarse_logits.shape[2:],
            f"keys and coarse_logits must have the same h x w grid, got {tuple(keys.shape)} and "
            f"{tuple(coarse_logits.shape)}")
    for name, term in (("ncut_crop", ncut_crop), ("eq", eq)):
        if term is not None:
            check_tensor(name, term, ndim=0, floating=True)

    s_fine = torch.sigmoid(fine_logits)      # (B, 1, H, W)
    s_coarse = torch.sigmoid(coarse_logits)  # (B, 1, h, w)
    W = affinity(keys, **affinity_params._asdict())  # (B, N, N)
    zero = s_fine.new_zeros(())
    terms = dict(
        ncut=ncut_loss(W, s_coarse),
        gtv_fine=gtv_fine(image, s_fine, sigma=sigma),
        gtv_coarse=gtv_coarse(keys, s_coarse, **affinity_params._asdict()),
        sr=sr_loss(s_fine, s_coarse),
        ncut_crop=zero if ncut_crop is None else ncut_crop,
        eq=zero if eq is None else eq,
    )
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return LossTerms(**terms, total=total)
