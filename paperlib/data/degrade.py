"""Masks of known quality: ground truth spoiled the way real predictions are imperfect.

A method's mask is computed on the backbone's patch grid (1/8 or 1/16 of the image) and
upsampled, soft (bilinear) or blocky (nearest, TokenCut-like), or it is simply blurred. The
guided-filter sweep, the data CLI (``paperlib data degrade``) and both explorers start from
these masks, so a refinement is judged on inputs whose flaws are known.

    DEGRADATIONS               name -> how the ground truth is spoiled
    degrade_mask(mask, name)   one degraded mask, float32 (H, W) in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from ..checks import check_choice


@dataclass(frozen=True)
class Degradation:
    """One way of spoiling a ground-truth mask."""

    name: str
    factor: int = 1           # compute at 1/factor resolution (area average), then upsample
    upsample: str = "bilinear"  # "bilinear": soft low-res prediction; "nearest": blocky patch mask
    blur_sigma: float = 0.0   # Gaussian blur in pixels, applied at full resolution
    description: str = ""


DEGRADATIONS: dict[str, Degradation] = {d.name: d for d in (
    Degradation("down8", factor=8, description="1/8 resolution (ViT-S/8 patch grid), bilinear up"),
    Degradation("down16", factor=16, description="1/16 resolution (ViT-S/16 grid), bilinear up"),
    Degradation("blocky16", factor=16, upsample="nearest",
                description="1/16 resolution binarised, nearest up (TokenCut-like)"),
    Degradation("blur4", blur_sigma=4.0, description="Gaussian blur, sigma 4 px"),
)}


def degrade_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Spoil a [0, 1] mask (H, W) as the named degradation says; returns float32 (H, W)."""
    check_choice("degradation", name, DEGRADATIONS)
    deg = DEGRADATIONS[name]
    out = np.asarray(mask, dtype=np.float32)
    height, width = out.shape
    if deg.factor > 1:
        small = (max(1, round(height / deg.factor)), max(1, round(width / deg.factor)))
        t = torch.from_numpy(out)[None, None]                          # (1, 1, H, W)
        low = F.adaptive_avg_pool2d(t, small)                          # (1, 1, H/f, W/f)
        if deg.upsample == "nearest":
            low = (low > 0.5).float()
            up = F.interpolate(low, size=(height, width), mode="nearest-exact")
        else:
            up = F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
        out = up[0, 0].numpy()
    if deg.blur_sigma > 0:
        out = gaussian_filter(out, sigma=deg.blur_sigma, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)
