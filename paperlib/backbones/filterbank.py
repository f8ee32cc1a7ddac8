"""The offline backbone: per-patch colour and texture statistics, shaped like ViT keys.

No weights and no download: :class:`FilterBank` (registered as ``filterbank`` and
``filterbank16`` in :data:`paperlib.backbones.catalog.BACKBONES`) lets the whole pipeline run offline.
Its features are L*a*b* colour statistics and the responses of a small bank of oriented
Gaussian-derivative and Laplacian-of-Gaussian filters, averaged per patch and standardised
per image.

Public API:
    rgb_to_lab(images)                      sRGB (B, 3, H, W) in [0, 1] -> CIE L*a*b*.
    texture_kernels(sigmas, orientations)   the (K, 1, k, k) filter bank.
    FilterBank(patch_size=8, ...)           the :class:`~paperlib.backbones.features.Backbone`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import require
from .features import Backbone


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (D65 white, 2 degree observer) of sRGB images.

    The standard sRGB -> linear RGB -> XYZ -> Lab chain, with the constants scikit-image's
    ``rgb2lab`` uses (XYZ matrix of ITU-R BT.709 primaries, white (0.95047, 1, 1.08883)).

    Args:
        images: (B, 3, H, W) float sRGB in [0, 1].

    Returns:
        (B, 3, H, W): L in [0, 100], a and b roughly in [-128, 127].
    """
    linear = torch.where(images > 0.04045, ((images + 0.055) / 1.055) ** 2.4, images / 12.92)
    xyz_from_rgb = images.new_tensor([[0.412453, 0.357580, 0.180423],
                                      [0.212671, 0.715160, 0.072169],
                                      [0.019334, 0.119193, 0.950227]])
    white = images.new_tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,bjhw->bihw", xyz_from_rgb, linear) / white  # (B, 3, H, W)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def texture_kernels(sigmas: tuple[float, ...], orientations: int, *, device=None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The filter bank: oriented first derivatives of a Gaussian and a Laplacian of Gaussian.

    Per scale sigma: ``orientations`` derivatives at angles k * pi / orientations (sigma * dG/dn,
    scale-normalised) and one sigma^2 * LoG, each on a (2 ceil(3 sigma) + 1)^2 support made
    zero-sum, then zero-padded to the largest support so that all run as one conv2d.

    Args:
        sigmas: Gaussian scales in pixels.
        orientations: number of derivative directions over [0, pi).

    Returns:
        (K, 1, k, k) kernels, K = len(sigmas) * (orientations + 1), k = 2 ceil(3 max(sigmas)) + 1.
    """
    R = math.ceil(3 * max(sigmas))
    kernels = []
    for sigma in sigmas:
        r = math.ceil(3 * sigma)
        t = torch.arange(-r, r + 1, device=device, dtype=torch.float64)
        y, x = torch.meshgrid(t, t, indexing="ij")
        g = torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))
        g = g / g.sum()
        gx, gy = -x / sigma ** 2 * g, -y / sigma ** 2 * g  # dG/dx, dG/dy
        bank = [sigma * (math.cos(theta) * gx + math.sin(theta) * gy)
                for theta in (k * math.pi / orientations for k in range(orientations))]
        bank.append((x ** 2 + y ** 2 - 2 * sigma ** 2) / sigma ** 2 * g)  # sigma^2 * LoG
        for kern in bank:
            kern = kern - kern.mean()  # zero-sum: a flat image gives no response
            kernels.append(F.pad(kern, (R - r,) * 4))
    return torch.stack(kernels).unsqueeze(1).to(dtype)  # (K, 1, k, k)


class FilterBank(Backbone):
    """Offline backbone: per-patch colour and texture statistics, shaped like ViT keys.

    Channels (D = 6 + len(sigmas) * (orientations + 1), 16 by default), all on the patch grid:

    * colour (6): mean and standard deviation of L*, a*, b* over the patch's pixels;
    * texture (len(sigmas) * (orientations + 1)): mean over the patch of |response| of each
      :func:`texture_kernels` filter run on L* / 100.

    Each channel is then standardised per image (zero mean, unit variance over the N tokens),
    and the colour and texture groups are scaled so that they carry ``colour_weight`` and
    ``1 - colour_weight`` of the total variance: cosine affinities of these features then
    behave like those of DINO keys (similar tokens near 1, unlike ones near or below 0).
    Deterministic, batched, float32 on the images' device; no weights.

    Args:
        patch_size: the token grid's cell, 8 to match ViT-S/8's 40x40 grid at 320x320.
        sigmas: Gaussian scales in pixels; 1 and 2 resolve texture finer than an 8-pixel patch.
        orientations: derivative directions over [0, pi); 4 is the usual minimal bank.
        colour_weight: the colour group's share of the feature variance; 0.5 lets neither cue
            dominate.
        name: the registry name (default 'filterbank', or 'filterbank<patch>').
    """

    def __init__(self, *, patch_size: int = 8, sigmas: tuple[float, ...] = (1.0, 2.0),
                 orientations: int = 4, colour_weight: float = 0.5, name: str | None = None):
        require(patch_size >= 1, f"patch_size must be >= 1, got {patch_size}")
        require(len(sigmas) > 0 and all(s > 0 for s in sigmas), f"sigmas must be > 0, got {sigmas}")
        require(orientations >= 1, f"orientations must be >= 1, got {orientations}")
        require(0.0 <= colour_weight <= 1.0, f"colour_weight must be in [0, 1], got {colour_weight}")
        n_texture = len(sigmas) * (orientations + 1)
        # Identity normalisation: the Lab conversion needs the raw [0, 1] RGB.
        super().__init__(name or f"filterbank{'' if patch_size == 8 else patch_size}",
                         patch_size=patch_size, dim=6 + n_texture, mean=(0.0, 0.0, 0.0),
                         std=(1.0, 1.0, 1.0),
                         weights_id=f"filterbank:p{patch_size}:s{','.join(map(str, sigmas))}"
                                    f":o{orientations}:c{colour_weight}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.orientations = orientations
        self.colour_weight = colour_weight
        self.eval()

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(images.device.type, enabled=False):
            x = images.float()
            p = self.patch_size
            lab = rgb_to_lab(x) / 100.0                                    # (B, 3, H, W)
            mean_lab = F.avg_pool2d(lab, p)                                # (B, 3, h, w)
            var_lab = (F.avg_pool2d(lab ** 2, p) - mean_lab ** 2).clamp_min(0.0)
            colour = torch.cat((mean_lab, var_lab.sqrt()), dim=1)          # (B, 6, h, w)

            kernels = texture_kernels(self.sigmas, self.orientations, device=x.device)  # (K, 1, k, k)
            r = kernels.shape[-1] // 2
            L = F.pad(lab[:, :1], (r, r, r, r), mode="replicate")          # (B, 1, H + 2r, W + 2r)
            texture = F.avg_pool2d(F.conv2d(L, kernels).abs(), p)          # (B, K, h, w)

            n_texture = texture.shape[1]
            colour = _standardise(colour) * math.sqrt(self.colour_weight / 6)
            texture = _standardise(texture) * math.sqrt((1.0 - self.colour_weight) / n_texture)
            keys = torch.cat((colour, texture), dim=1)                     # (B, D, h, w)
        return keys, keys.flatten(2).transpose(1, 2)                       # (B, N, D)


def _standardise(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Zero mean, unit variance per image and channel over the patch grid.

    eps (in squared feature units; the features are O(0.01)-O(1)) only guards the division:
    a channel that is flat up to float rounding comes out as ~0 (below 1e-6).
    """
    mu = f.mean(dim=(2, 3), keepdim=True)
    var = f.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (f - mu) / torch.sqrt(var + eps)
