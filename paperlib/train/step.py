"""One training step of the Sempart head with both tricks, and the validation pass (paper Secs. 4-5).

* :func:`train_step`: frozen backbone -> keys, head -> fine / coarse logits, the crop-zoom
  teacher (:mod:`paperlib.losses.crop_zoom`), :func:`paperlib.losses.objective.sempart_loss`,
  one AdamW step;
* :func:`validate`: IoU at 0.5 of the fine map on held-out images, polarity flipped per batch.

The procedure and its settings: docs/paper_and_code.md#training.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..backbones.features import normalise
from ..eval.metrics import SaliencyMetrics
from ..losses.crop_zoom import crop_consistency_loss, crop_zoom, ncut_crop_loss, sample_box, teacher_target
from ..losses.objective import sempart_loss
from .config import TrainConfig
from .data import SEED_CROP, seeded_generator
from .runtime import autocast_dtype

# --------------------------------------------------------------------------------------------
# One step

class StepLosses(NamedTuple):
    """The loss terms of one step as floats (the unweighted terms and the weighted total)."""

    ncut: float
    gtv_fine: float
    gtv_coarse: float
    sr: float
    ncut_crop: float
    eq: float
    total: float


def _set_batchnorm_training(module: nn.Module, mode: bool) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(mode)


def train_step(head: nn.Module, backbone, optimizer: torch.optim.Optimizer, images: torch.Tensor, *,
               config: TrainConfig, step: int) -> StepLosses:
    """One optimiser step of Sempart with the crop-zoom trick (paper Sec. 4-5, eq. 8).

    The frozen backbone gives the keys; the head gives fine and coarse logits on the
    ImageNet-normalised image. With ``config.crop`` != 'none', a box (shared by the batch,
    drawn from the generator of (seed, step)) is cut from the image and zoomed back; the same
    head on it is the teacher (BatchNorm per ``config.teacher_bn_mode``), whose guided-filtered,
    detached fine map is the L_eq target, and whose coarse map gives L_Ncut-crop with the
    crop's own affinity. Then :func:`paperlib.losses.objective.sempart_loss`, backward, AdamW.

    Args:
        head: SempartHead in train mode (possibly DDP-wrapped).
        backbone: frozen :class:`paperlib.backbones.registry.Backbone`.
        optimizer: the head's optimiser.
        images: (B, 3, S, S) float RGB in [0, 1] on the head's device (this rank's shard).
        config: the run's TrainConfig.
        step: the global step index (seeds the crop box).

    Returns:
        StepLosses of this rank's batch.
    """
    device = images.device
    amp_dtype = autocast_dtype(config.amp, device)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format

    def run_head(x: torch.Tensor):
        keys = backbone.keys(x, autocast=amp_dtype)                          # (B, D, h, w)
        x_norm = normalise(x).contiguous(memory_format=memory)               # (B, 3, S, S)
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            out = head(keys, x_norm)
        return keys, x_norm, out.fine.float(), out.coarse.float()

    keys, image_norm, fine, coarse = run_head(images)
    eq = ncut_crop = None
    if config.crop != "none":
        S = config.image_size
        g = seeded_generator(config.seed, SEED_CROP, step)
        box = sample_box(config.crop, g, image_size=S)
        crop_images = crop_zoom(images, box, S).clamp(0.0, 1.0)              # (B, 3, S, S)
        if config.teacher_bn_mode == "eval":
            _set_batchnorm_training(head, False)
        try:
            crop_keys, crop_norm, crop_fine, crop_coarse = run_head(crop_images)
        finally:
            _set_batchnorm_training(head, True)
        target = teacher_target(crop_norm, crop_fine, gf=config.teacher_gf)  # (B, 1, S, S), detached
        eq = crop_consistency_loss(fine, box, target)
        ncut_crop = ncut_crop_loss(crop_keys, crop_coarse)
    terms = sempart_loss(keys, image_norm, fine, coarse, weights=config.loss_weights,
                         ncut_crop=ncut_crop, eq=eq)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    return StepLosses(*torch.stack([t.detach().float() for t in terms]).tolist())  # one device sync


# --------------------------------------------------------------------------------------------
# Validation

@torch.no_grad()
def validate(head: nn.Module, backbone, loader, *, amp: str = "off") -> float:
    """Mean IoU at 0.5 of the fine map, foreground polarity flipped per batch.

    The batch's fine sigmoid is inverted when its mean exceeds 0.5 (paper and code;
    docs/paper_and_code.md#evaluation-protocol).

    Args:
        head: the (unwrapped) head; evaluated in eval mode, restored afterwards.
        backbone: the frozen backbone.
        loader: batches of (images (B, 3, S, S) in [0, 1], masks (B, S, S) in [0, 1]).
        amp: a mode of :data:`~paperlib.train.config.AMP_MODES` ('auto': bf16 on CUDA).

    Returns:
        The mean IoU over the images, in [0, 1].
    """
    was_training = head.training
    head.eval()
    metrics = SaliencyMetrics()
    device = next(head.parameters()).device
    amp_dtype = autocast_dtype(amp, device)
    try:
        for images, masks in loader:
            images = images.to(device)
            keys = backbone.keys(images, autocast=amp_dtype)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                fine = head(keys, normalise(images)).fine.float()
            s = torch.sigmoid(fine)[:, 0]                                    # (B, S, S)
            if s.mean() > 0.5:
                s = 1.0 - s
            metrics.update_batch(s.cpu(), masks)
    finally:
        head.train(was_training)
    return float(metrics.compute().iou)
