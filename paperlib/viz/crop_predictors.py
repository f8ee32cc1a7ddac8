"""The network f of the crop-zoom explorer, run on the training input I and on its zoomed crop I_c.

Paper Sec. 4 ("Multi-Scale Consistency", Fig. 3). :class:`paperlib.viz.crop_explorer.CropZoomExplorer`
asks a predictor for two maps of one training step: ``student(x)``, the fine logits
s_hat = f(I) of the (1, 3, S, S) input, and ``teacher(crop, box)``, the fine logits f(I_c) of
the zoomed crop of ``box``, both (1, 1, S, S). ``patch_size`` is what S must be a multiple of,
``label`` names the predictor in the figures. Three kinds:

* :class:`SempartPredictor` -- a trained checkpoint, run as training runs the head (frozen
  backbone keys + head on the ImageNet-normalised image). BatchNorm uses its running statistics
  by default ('eval'); 'train' uses the statistics of this one image. A training step's student
  uses the statistics of its whole batch, which one image cannot reproduce.
* :class:`ImageFunction` -- any function image -> soft mask (e.g. another method's ``predict``),
  run on I and on I_c: a real teacher, made of that function.
* :class:`MaskSource` -- the offline stand-in, no weights: a fixed mask of the full image seen
  through a fixed loss of resolution (see its docstring for what it can and cannot show).

Public API: :class:`SempartPredictor` (``from_checkpoint``), :class:`ImageFunction`,
:class:`MaskSource`, ``PREDICTORS`` (the three classes) and ``NO_DEGRADATION`` (MaskSource's
'none').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..backbones.features import resize_bilinear, tensor_image
from ..checks import check_choice, require
from ..data.degrade import DEGRADATIONS, degrade_mask
from ..losses.crop_zoom import CropBox, crop_zoom
from ..losses.objective import S_CLAMP
from ..methods.sempart import BN_MODES, sempart_forward
from ..model.sempart import SempartModel, load_sempart

NO_DEGRADATION = "none"  # MaskSource: the teacher is the exact crop-zoom of the student


def _to_logits(mask: torch.Tensor) -> torch.Tensor:
    """A [0, 1] map as logits whose sigmoid gives it back (clamped to [1e-6, 1 - 1e-6])."""
    return torch.logit(mask.float(), eps=S_CLAMP)


@dataclass(frozen=True)
class SempartPredictor:
    """A trained Sempart head as f: the head forward of training, on I and on I_c.

    Attributes:
        model: a :class:`paperlib.model.sempart.SempartModel` (:func:`paperlib.model.sempart.load_sempart`,
            or ``build_method('sempart', checkpoint=...).model``).
        bn_mode: 'eval' (running statistics, default) or 'train' (statistics of this image).
    """

    model: "SempartModel"
    bn_mode: str = "eval"

    def __post_init__(self) -> None:
        require(isinstance(self.model, SempartModel),
                f"model must be a SempartModel (paperlib.model.sempart.load_sempart), got {type(self.model).__name__}")
        check_choice("bn_mode", self.bn_mode, BN_MODES)

    @classmethod
    def from_checkpoint(cls, checkpoint, *, weights=None, bn_mode: str = "eval", device=None) -> "SempartPredictor":
        """Load a ``paperlib-sempart-1`` checkpoint (and its backbone's ``weights`` file, or None)."""
        return cls(load_sempart(checkpoint, backbone_weights=weights, device=device), bn_mode=bn_mode)

    @property
    def patch_size(self) -> int:
        return self.model.patch_size

    @property
    def label(self) -> str:
        stats = "running statistics" if self.bn_mode == "eval" else "statistics of this image"
        step = "" if self.model.step is None else f" step {self.model.step}"
        return f"Sempart checkpoint{step}, BatchNorm {self.bn_mode} ({stats})"

    def _fine_logits(self, x: torch.Tensor) -> torch.Tensor:
        device = next(self.model.head.parameters()).device
        # SempartModel.forward: backbone.keys(x) then head(keys, normalise(x)), as train_step runs it.
        return sempart_forward(self.model, x.to(device), bn_mode=self.bn_mode).fine.float().cpu()

    def student(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, S, S) in [0, 1] -> (1, 1, S, S) fine logits on the full image."""
        return self._fine_logits(x)

    def teacher(self, crop: torch.Tensor, box: CropBox) -> torch.Tensor:
        """(1, 3, S, S) zoomed crop -> (1, 1, S, S) fine logits of the same head on it."""
        return self._fine_logits(crop)


@dataclass(frozen=True)
class ImageFunction:
    """Any function image -> soft mask as f, run on I and on I_c (both rounded to uint8).

    Attributes:
        fn: (S, S, 3) uint8 RGB -> (S, S) soft mask in [0, 1], e.g.
            ``lambda im: method.predict(im).mask`` for a :class:`paperlib.methods.base.Method`.
        name: shown in the figures.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    name: str = "function"
    patch_size = 1  # any S works (a class constant, not a field)

    def __post_init__(self) -> None:
        require(callable(self.fn), f"fn must be callable (image -> mask), got {type(self.fn).__name__}")

    @property
    def label(self) -> str:
        return f"{self.name} on I and on I_c"

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        S = x.shape[-1]
        mask = np.asarray(self.fn(tensor_image(x)), dtype=np.float32)
        require(mask.shape == (S, S), f"fn must return a ({S}, {S}) mask for a ({S}, {S}, 3) image, "
                                      f"got shape {mask.shape}")
        require(bool(np.isfinite(mask).all()) and mask.min() >= 0 and mask.max() <= 1,
                "fn must return finite values in [0, 1]")
        return _to_logits(torch.from_numpy(mask)[None, None])   # (1, 1, S, S)

    def student(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)

    def teacher(self, crop: torch.Tensor, box: CropBox) -> torch.Tensor:
        return self._run(crop)


@dataclass(frozen=True, eq=False)
class MaskSource:
    """Offline stand-in for f: one mask of the full image, seen through a loss of resolution D.

    Without weights nothing can predict on the crop, so this predictor *assumes* what trick 2
    rests on instead of measuring it. It plays a network whose only error is D, a fixed
    degradation of its own S x S input grid (:data:`paperlib.data.degrade.DEGRADATIONS`; 'blocky16'
    is a ViT-S/16 patch mask):

    * student: s_hat = D(mask resized to S);
    * teacher on box b: D(CU(mask)) -- the mask's own crop-zoom, degraded at the crop's
      resolution. D's grid on the zoomed crop is finer in image terms by the zoom (x4 for the
      paper's box), so the teacher resolves more of the object, as a real one is hoped to.

    What it shows honestly: the box, the zoom, what the guided filter does to a target, and how
    large L_eq is *under that assumption*. What it cannot show: whether a trained head is more
    detailed on a zoomed crop -- that takes a checkpoint (:class:`SempartPredictor`). With the
    ground truth as ``mask`` the teacher is built from the truth and is better than any model;
    with another method's prediction use ``degradation='none'``: the teacher is then exactly
    CU(s_hat), a teacher that sees nothing new, and L_eq measures only what GF changes.

    Attributes:
        mask: (H, W) float in [0, 1], a mask of the full image (the ground truth or a prediction).
        degradation: D, a name of :data:`paperlib.data.degrade.DEGRADATIONS` or 'none'.
    """

    mask: np.ndarray
    degradation: str = "blocky16"
    patch_size = 1  # any S works (a class constant, not a field)

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask, dtype=np.float32)
        require(mask.ndim == 2 and min(mask.shape) >= 1, f"mask must be a (H, W) array, got shape {mask.shape}")
        require(bool(np.isfinite(mask).all()) and mask.min() >= 0 and mask.max() <= 1,
                "mask must hold finite values in [0, 1]")
        check_choice("degradation", self.degradation, (NO_DEGRADATION, *DEGRADATIONS))
        object.__setattr__(self, "mask", mask)

    @property
    def label(self) -> str:
        if self.degradation == NO_DEGRADATION:
            return "mask source (stand-in, no weights): teacher = CU(s_hat)"
        return f"mask source (stand-in, no weights): D = {self.degradation} of each input grid"

    def _degrade(self, m: torch.Tensor) -> torch.Tensor:
        if self.degradation == NO_DEGRADATION:
            return _to_logits(m)
        return _to_logits(torch.from_numpy(degrade_mask(m[0, 0].numpy(), self.degradation))[None, None])

    def _at(self, size: int) -> torch.Tensor:
        return resize_bilinear(torch.from_numpy(self.mask)[None, None], (size, size),
                               antialias=True).clamp(0.0, 1.0)   # (1, 1, S, S)

    def student(self, x: torch.Tensor) -> torch.Tensor:
        return self._degrade(self._at(x.shape[-1]))

    def teacher(self, crop: torch.Tensor, box: CropBox) -> torch.Tensor:
        S = crop.shape[-1]
        return self._degrade(crop_zoom(self._at(S), box, S))


PREDICTORS = (SempartPredictor, ImageFunction, MaskSource)
