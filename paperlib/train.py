"""Training the Sempart head with both tricks (paper Sec. 5 "Implementation"; SPEC "Training").

Named stages:

* :class:`TrainConfig` and :data:`PRESETS` (``paper``, ``official``, ``smoke``), built with
  :func:`config_from`;
* :func:`augment` (resize short side, random crop, flip, colour jitter, grayscale), driven by
  one seeded ``torch.Generator`` per (seed, epoch, image) so that runs replay exactly;
* :func:`train_step`: frozen backbone -> keys, head -> fine / coarse logits, the crop-zoom
  teacher (:mod:`paperlib.crop_zoom`), :func:`paperlib.losses.sempart_loss`, one AdamW step;
* :func:`validate`: IoU at 0.5 of the fine map on held-out images, polarity flipped per batch;
* :func:`train`: the loop, with atomic checkpoints (``last.pt``, ``best.pt``), exact resume,
  ``log.csv`` and ``val.csv``, and DistributedDataParallel under ``torchrun``;
* :func:`add_train_arguments` / :func:`run_train`: the ``paperlib train`` command.

**Reproducibility.** Nothing reads the global random state after the head is initialised:
the data order of an epoch, the augmentation of an image and the crop box of a step each
come from their own generator seeded by ``(seed, purpose, epoch or step, index)``. A resumed
run therefore reproduces the uninterrupted one bit for bit (same machine, same threads). The
global RNG states are saved in checkpoints all the same, and restored on resume.

**Distributed.** ``batch_size`` is the global batch. Under ``torchrun`` each rank takes every
``world_size``-th image of the step's batch (as ``DistributedSampler`` does), DDP averages the
gradients and BatchNorm statistics are synchronised over the global batch (``SyncBatchNorm``
on accelerators; :class:`GlooSyncBatchNorm` on CPU, where PyTorch's SyncBatchNorm refuses to
run). Every loss term is a mean over images, so the update equals the single-process update
on the global batch up to float rounding. Only rank 0 validates and writes files.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import random
import sys
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validation import InputError, check_choice, require

# The checkpoint contract of :func:`paperlib.sempart.read_checkpoint` ("paperlib-sempart-1"):
# format, config (plain dict with backbone / image_size / resize_short), model (the head's
# state dict); the trainer adds optimizer, step, epoch, position, best_iou, rng, world_size.
CHECKPOINT_FORMAT = "paperlib-sempart-1"
LOG_TERMS = ("ncut", "gtv_fine", "gtv_coarse", "sr", "ncut_crop", "eq", "total")

# Purposes of the seeded generators; each stream is independent of the others.
_ORDER, _AUGMENT, _CROP, _SPLIT = 0, 1, 2, 3

# Colour jitter (brightness, contrast, saturation, hue) of SPEC "Training".
JITTER = (0.4, 0.4, 0.2, 0.1)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a training run; defaults are the paper's (SPEC "Training")."""

    data_root: str | None = None       # folder holding DUTS-TR/ (required to train)
    dataset: str = "duts-tr"           # paper Sec. 5: trained on DUTS-TR (10,553 images)
    backbone: str = "dino_vits8"       # paper Sec. 5: DINO ViT-S/8, frozen
    weights: str | None = None         # backbone checkpoint file; None: $PAPERLIB_WEIGHTS_DIR or hub
    image_size: int = 320              # paper Sec. 5: 320 x 320 input (40 x 40 tokens)
    resize_short: int = 355            # paper: short side to 355 before the crop (released code: 335)
    batch_size: int = 8                # paper Sec. 5 and code: batch 8 (global, over all ranks)
    epochs: int = 30                   # paper Sec. 5: 30 epochs (about 39.6k iterations)
    max_steps: int | None = None       # optional cap on optimiser steps (smoke runs, budgets)
    lr: float = 1e-4                   # paper Sec. 5: AdamW, lr 1e-4, no schedule
    betas: tuple[float, float] = (0.9, 0.99)  # released code's AdamW betas (SPEC)
    weight_decay: float = 0.0          # released code: weight decay 0 (SPEC)
    w_ncut: float = 1.0                # lambda of L_Ncut (eq. 8 has none)
    w_gtv_fine: float = 1.0            # lambda_GTV-fine = 1, paper Sec. 5
    w_gtv_coarse: float = 1.0          # lambda_GTV-coarse = 1, paper Sec. 5
    w_sr: float = 1.0                  # lambda_SR = 1, paper Sec. 5
    w_ncut_crop: float = 0.01          # lambda_Ncut-Crop = 0.01, paper Sec. 5
    w_eq: float = 0.01                 # lambda_eq = 0.01, paper Sec. 5
    crop: str = "paper"                # trick 2 box: 'paper' (80 px, x4), 'official' (160 px, x2), 'none'
    teacher_bn_mode: str = "eval"      # teacher pass BatchNorm: 'eval' (paper silent; inference mode),
                                       # 'train' (released code: batch statistics, running stats updated)
    seed: int = 0                      # seeds the head's init, the split, the data order, augmentations, crops
    num_workers: int = 0               # DataLoader worker processes (0: load in the main process)
    val_fraction: float = 0.05         # our choice: held-out part of the training set for validation
    select_on: str = "val"             # 'val' (held-out train images), 'test' (released code's DUTS-TE
                                       # selection, a labelled option), 'none' (no validation)
    test_dataset: str = "duts-te"      # the test set that select_on='test' reads from data_root
    checkpoint_every: int = 1000       # write last.pt every this many steps (and at every epoch end)
    log_every: int = 1                 # refresh the progress bar and TensorBoard every this many steps
    device: str | None = None          # None: CUDA if available (cuda:LOCAL_RANK under torchrun), else CPU
    amp: bool = True                   # bf16 autocast of the backbone and head, on CUDA only
    channels_last: bool = False        # channels-last memory format for the head (speed on GPUs)
    compile: bool = False              # torch.compile the head (speed; off for exact replay)

    def __post_init__(self) -> None:
        from .backbones import BACKBONES
        from .data import DATASETS

        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("dataset", self.dataset.lower(), DATASETS)
        check_choice("test_dataset", self.test_dataset.lower(), DATASETS)
        check_choice("crop", self.crop, ("paper", "official", "none"))
        check_choice("teacher_bn_mode", self.teacher_bn_mode, ("eval", "train"))
        check_choice("select_on", self.select_on, ("val", "test", "none"))
        for name in ("image_size", "resize_short", "batch_size", "epochs", "checkpoint_every", "log_every"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("seed", self.seed, low=0)
        _check_int("num_workers", self.num_workers, low=0)
        if self.max_steps is not None:
            _check_int("max_steps", self.max_steps, low=1)
        patch = BACKBONES[self.backbone].patch_size
        require(self.image_size % patch == 0,
                f"image_size must be a multiple of the {self.backbone} patch size {patch}, got {self.image_size}")
        require(self.resize_short >= self.image_size,
                f"resize_short ({self.resize_short}) must be >= image_size ({self.image_size}) to crop from it")
        if self.crop == "official":
            require(self.image_size >= 240, f"crop='official' places a 160 px box at row 80: image_size "
                                            f"must be >= 240, got {self.image_size}")
        if self.crop == "paper":
            require(self.image_size >= 4 * patch, f"crop='paper' zooms an image_size/4 box: image_size must "
                                                  f"be >= {4 * patch}, got {self.image_size}")
        for name in ("lr", "weight_decay", "val_fraction") + tuple(f"w_{t}" for t in LOG_TERMS[:-1]):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0, f"{name} must be a finite number >= 0, got {value!r}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        require(self.val_fraction < 1, f"val_fraction must be < 1, got {self.val_fraction!r}")
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise InputError(f"device must be a torch device string such as 'cpu' or 'cuda:0', "
                                 f"got {self.device!r}") from None
        require(isinstance(self.betas, tuple) and len(self.betas) == 2
                and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas),
                f"betas must be two numbers in [0, 1), got {self.betas!r}")

    @property
    def loss_weights(self):
        """The lambdas as a :class:`paperlib.losses.LossWeights`."""
        from .losses import LossWeights

        return LossWeights(**{name: getattr(self, f"w_{name}") for name in LOG_TERMS[:-1]})

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (loadable with ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)


def _check_int(name: str, value, *, low: int) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
            f"{name} must be an int >= {low}, got {value!r}")


_PAPER = TrainConfig()
PRESETS: dict[str, TrainConfig] = {
    "paper": _PAPER,
    # The released code (SPEC): 335 resize, its effective crop box, teacher BatchNorm in train
    # mode, and the best checkpoint chosen on DUTS-TE.
    "official": replace(_PAPER, resize_short=335, crop="official", teacher_bn_mode="train", select_on="test"),
    # Seconds on a CPU: the offline filter bank, 64 px inputs, 20 steps; lr 1e-3 so that a
    # short run shows a clear drop of the loss.
    "smoke": replace(_PAPER, backbone="filterbank", image_size=64, resize_short=72, batch_size=4,
                     max_steps=20, epochs=1000, lr=1e-3, checkpoint_every=10, val_fraction=0.1),
}


def config_from(preset: str = "paper", **overrides) -> TrainConfig:
    """A preset with some fields replaced, validated.

    Args:
        preset: a key of :data:`PRESETS`.
        **overrides: TrainConfig fields; an unknown name is an :class:`InputError`.

    Returns:
        The validated TrainConfig.
    """
    check_choice("preset", preset, PRESETS)
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    require(not unknown, f"unknown TrainConfig field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    if "betas" in overrides and isinstance(overrides["betas"], list):
        overrides["betas"] = tuple(overrides["betas"])
    if overrides.get("data_root") is not None:
        overrides["data_root"] = str(overrides["data_root"])
    return replace(PRESETS[preset], **overrides)


# --------------------------------------------------------------------------------------------
# Seeded randomness and augmentation

def seeded_generator(*ints: int) -> torch.Generator:
    """A CPU torch.Generator seeded from a tuple of non-negative ints (numpy's SeedSequence)."""
    state = np.random.SeedSequence(list(ints)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _resize_short(x: torch.Tensor, short: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W') with min(H', W') = short, bilinear with antialiasing."""
    H, W = x.shape[-2:]
    scale = short / min(H, W)
    size = (max(short, round(H * scale)), max(short, round(W * scale)))
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def augment(image: np.ndarray, *, generator: torch.Generator, resize_short: int, image_size: int) -> torch.Tensor:
    """The training augmentation of SPEC "Training", all randomness from ``generator``.

    Resize the short side to ``resize_short`` (bilinear, antialiased), a random
    ``image_size`` square crop, horizontal flip (p 0.5), colour jitter (brightness 0.4,
    contrast 0.4, saturation 0.2, hue 0.1, in a random order; p 0.8) and grayscale (p 0.2).
    The same random numbers are drawn whatever branch is taken, so the stream is stable.

    Args:
        image: (H, W, 3) uint8 RGB.
        generator: the image's own generator (see :func:`seeded_generator`).
        resize_short: short side after resizing, >= image_size.
        image_size: side of the square output.

    Returns:
        (3, image_size, image_size) float32 RGB in [0, 1].
    """
    import torchvision.transforms.v2.functional as TF

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0  # (3, H, W)
    x = _resize_short(x, resize_short).clamp_(0.0, 1.0)
    H, W = x.shape[-2:]
    top = int(torch.randint(0, H - image_size + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - image_size + 1, (1,), generator=generator))
    x = x[:, top:top + image_size, left:left + image_size]
    u_flip, u_jitter, u_gray = torch.rand(3, generator=generator).tolist()
    b, c, s, h = JITTER
    lo = torch.tensor([1 - b, 1 - c, 1 - s, -h])
    factors = (lo + (torch.tensor([1 + b, 1 + c, 1 + s, h]) - lo) * torch.rand(4, generator=generator)).tolist()
    order = torch.randperm(4, generator=generator).tolist()
    if u_flip < 0.5:
        x = x.flip(-1)
    if u_jitter < 0.8:
        ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        for k in order:
            x = ops[k](x, factors[k])
    if u_gray < 0.2:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    return x.clamp(0.0, 1.0).contiguous()


def eval_transform(image: np.ndarray, mask: np.ndarray, *, resize_short: int,
                   image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation input: resize the short side, centre crop (the released code's eval view).

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) float in [0, 1].

    Returns:
        image (3, S, S) float in [0, 1] and mask (S, S) float in [0, 1], S = image_size.
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    x, m = _resize_short(x, resize_short).clamp_(0, 1), _resize_short(m, resize_short).clamp_(0, 1)
    H, W = x.shape[-2:]
    top, left = (H - image_size) // 2, (W - image_size) // 2
    return (x[:, top:top + image_size, left:left + image_size].contiguous(),
            m[0, top:top + image_size, left:left + image_size].contiguous())


class _Augmented(torch.utils.data.Dataset):
    """Images of ``dataset`` augmented with the generator of (seed, epoch, index)."""

    def __init__(self, dataset, config: TrainConfig, epoch: int) -> None:
        self.dataset, self.config, self.epoch = dataset, config, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        cfg = self.config
        g = seeded_generator(cfg.seed, _AUGMENT, self.epoch, index)
        return augment(self.dataset[index].image, generator=g, resize_short=cfg.resize_short,
                       image_size=cfg.image_size)


class _Evaluated(torch.utils.data.Dataset):
    def __init__(self, dataset, indices: Sequence[int], config: TrainConfig) -> None:
        self.dataset, self.indices, self.config = dataset, list(indices), config

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        s = self.dataset[self.indices[i]]
        return eval_transform(s.image, s.mask, resize_short=self.config.resize_short,
                              image_size=self.config.image_size)


def split_indices(n: int, *, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """Seeded train / validation split of ``n`` images.

    Returns:
        (train indices, validation indices), both sorted; round(n * val_fraction) validation
        images, at least one when val_fraction > 0.
    """
    n_val = 0 if val_fraction == 0 else max(1, round(n * val_fraction))
    perm = torch.randperm(n, generator=seeded_generator(seed, _SPLIT)).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def epoch_batches(n_train: int, *, seed: int, epoch: int, batch_size: int) -> list[list[int]]:
    """The epoch's batches: a seeded permutation of 0..n_train-1 cut into full batches."""
    order = torch.randperm(n_train, generator=seeded_generator(seed, _ORDER, epoch)).tolist()
    return [order[k * batch_size:(k + 1) * batch_size] for k in range(n_train // batch_size)]


# --------------------------------------------------------------------------------------------
# BatchNorm synchronised over a gloo group (CPU)

class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batch of every rank (any device, gloo).

    PyTorch's ``SyncBatchNorm`` runs on accelerators only. This one all-reduces the per-channel
    sums through a differentiable all-reduce, so the gradient through the statistics is the
    global batch's (each rank's loss depends on every rank's inputs). Two passes (mean, then
    the centred sum of squares), as a single-process BatchNorm computes them. Outside training
    or outside a process group it is a plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        B, C, H, W = x.shape
        n = torch.tensor(float(B * H * W), dtype=x.dtype, device=x.device)
        dist.all_reduce(n)                                                     # global count
        mean = _AllReduceSum.apply(x.sum(dim=(0, 2, 3))) / n                   # (C,)
        centred = x - mean.view(1, C, 1, 1)
        var = _AllReduceSum.apply(centred.pow(2).sum(dim=(0, 2, 3))) / n       # (C,) biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))  # unbiased, as torch
        y = centred * torch.rsqrt(var + self.eps).view(1, C, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, C, 1, 1) + self.bias.view(1, C, 1, 1)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by a synchronised one: SyncBatchNorm on accelerators, else gloo's."""
    if device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlooSyncBatchNorm):
            sync = GlooSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                     child.track_running_stats).to(device)
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child, device)
    return module


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


def normalise(images: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of (B, 3, H, W) images in [0, 1] (head input and fine GTV)."""
    from .guided_filter import IMAGENET_MEAN, IMAGENET_STD

    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


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
    crop's own affinity. Then :func:`paperlib.losses.sempart_loss`, backward, AdamW.

    Args:
        head: SempartHead in train mode (possibly DDP-wrapped).
        backbone: frozen :class:`paperlib.backbones.Backbone`.
        optimizer: the head's optimiser.
        images: (B, 3, S, S) float RGB in [0, 1] on the head's device (this rank's shard).
        config: the run's TrainConfig.
        step: the global step index (seeds the crop box).

    Returns:
        StepLosses of this rank's batch.
    """
    from .crop_zoom import CROP_SAMPLERS, crop_consistency_loss, crop_zoom, ncut_crop_loss, teacher_target
    from .losses import sempart_loss

    device = images.device
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp else None
    memory = torch.channels_last if config.channels_last else torch.contiguous_format

    def run_head(x: torch.Tensor):
        keys = backbone.features(x, autocast=amp_dtype).keys                 # (B, D, h, w)
        x_norm = normalise(x).contiguous(memory_format=memory)               # (B, 3, S, S)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = head(keys, x_norm)
        return keys, x_norm, out.fine.float(), out.coarse.float()

    keys, image_norm, fine, coarse = run_head(images)
    eq = ncut_crop = None
    if config.crop != "none":
        S = config.image_size
        g = seeded_generator(config.seed, _CROP, step)
        box = (CROP_SAMPLERS["paper"](g, image_size=S, crop=S // 4) if config.crop == "paper"
               else CROP_SAMPLERS["official"](g, image_size=S))
        crop_images = crop_zoom(images, box, S).clamp(0.0, 1.0)              # (B, 3, S, S)
        if config.teacher_bn_mode == "eval":
            _set_batchnorm_training(head, False)
        try:
            crop_keys, crop_norm, crop_fine, crop_coarse = run_head(crop_images)
        finally:
            _set_batchnorm_training(head, True)
        target = teacher_target(crop_norm, crop_fine)                        # (B, 1, S, S), detached
        eq = crop_consistency_loss(fine, box, target)
        ncut_crop = ncut_crop_loss(crop_keys, crop_coarse)
    terms = sempart_loss(keys, image_norm, fine, coarse, weights=config.loss_weights,
                         ncut_crop=ncut_crop, eq=eq)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    return StepLosses(*(float(t.detach()) for t in terms))


# --------------------------------------------------------------------------------------------
# Validation

@torch.no_grad()
def validate(head: nn.Module, backbone, loader, *, amp: bool = False) -> float:
    """Mean IoU at 0.5 of the fine map, foreground polarity flipped per batch (SPEC "Evaluation").

    The batch's fine sigmoid is inverted when its mean exceeds 0.5 (paper and code).

    Args:
        head: the (unwrapped) head; evaluated in eval mode, restored afterwards.
        backbone: the frozen backbone.
        loader: batches of (images (B, 3, S, S) in [0, 1], masks (B, S, S) in [0, 1]).
        amp: bf16 autocast on CUDA.

    Returns:
        The mean IoU over the images, in [0, 1].
    """
    from .metrics import SaliencyMetrics

    was_training = head.training
    head.eval()
    metrics = SaliencyMetrics()
    device = next(head.parameters()).device
    use_amp = amp and device.type == "cuda"
    try:
        for images, masks in loader:
            images = images.to(device)
            keys = backbone.features(images, autocast=torch.bfloat16 if use_amp else None).keys
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                fine = head(keys, normalise(images)).fine.float()
            s = torch.sigmoid(fine)[:, 0]                                    # (B, S, S)
            if s.mean() > 0.5:
                s = 1.0 - s
            metrics.update_batch(s.cpu(), masks)
    finally:
        head.train(was_training)
    return float(metrics.compute().iou)


# --------------------------------------------------------------------------------------------
# Checkpoints

def _rng_states() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save(path: Path, payload: dict) -> None:
    from .images import atomic_path

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(weights_only=True)``.

    Returns:
        The dictionary: format, config (dict), model (the head's state dict), optimizer, step,
        epoch, position, best_iou, rng, world_size.
    """
    path = Path(path)
    require(path.is_file(), f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    require(isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT,
            f"{path}: not a paperlib training checkpoint of format {CHECKPOINT_FORMAT}")
    return ckpt


# Fields that may change when a run is resumed: they do not change the weights.
RESUMABLE_FIELDS = ("data_root", "weights", "epochs", "max_steps", "checkpoint_every", "log_every",
                    "device", "num_workers")


# --------------------------------------------------------------------------------------------
# The loop

@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns."""

    out_dir: Path
    step: int                      # optimiser steps taken in total
    epoch: int                     # epochs completed
    last_checkpoint: Path | None   # None on ranks other than 0
    best_checkpoint: Path | None   # None without validation
    best_iou: float | None         # best validation IoU, None without validation
    val_iou: tuple[float, ...]     # validation IoU after each epoch of this call
    losses: tuple[StepLosses, ...] # every step of this call (rank 0's batch shard)
    head: nn.Module                # the trained head (unwrapped)


class _Distributed(NamedTuple):
    rank: int
    world_size: int
    local_rank: int


def _distributed() -> _Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return _Distributed(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _device(config: TrainConfig, dist_info: _Distributed) -> torch.device:
    if config.device is not None:
        device = torch.device(config.device)
        if device.type == "cuda" and device.index is None and dist_info.world_size > 1:
            device = torch.device("cuda", dist_info.local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", dist_info.local_rank if dist_info.world_size > 1 else 0)
    return torch.device("cpu")


def _open_csv(path: Path, header: Sequence[str], *, keep_through_step: int | None):
    """Open a CSV log for appending; rows after ``keep_through_step`` (a crashed tail) are dropped."""
    rows: list[list[str]] = []
    if keep_through_step is not None and path.exists():
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            rows = [r for r in reader if r and int(r[0]) <= keep_through_step]
    fh = open(path, "w", newline="")
    writer = csv.writer(fh)
    writer.writerow(header)
    writer.writerows(rows)
    fh.flush()
    return fh, writer


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train the Sempart head (paper Sec. 5) and write checkpoints and logs under ``out_dir``.

    Files: ``init.pt`` (the untrained head, on a fresh run), ``last.pt`` (every
    ``checkpoint_every`` steps, each epoch end and at the end),
    ``best.pt`` (highest validation IoU), ``log.csv`` (every term of every step), ``val.csv``
    (IoU per epoch), ``tensorboard/`` when TensorBoard is installed. Under ``torchrun`` (env
    RANK / WORLD_SIZE / LOCAL_RANK) it trains with DistributedDataParallel; rank 0 writes.

    Args:
        config: the run.
        out_dir: output folder (created). Without ``resume`` it must not hold a ``last.pt``.
        resume: continue from ``out_dir/last.pt``; the result equals the uninterrupted run.
            Fields in :data:`RESUMABLE_FIELDS` may differ from the checkpoint's, no others.
        progress: show a tqdm progress bar.

    Returns:
        :class:`TrainResult`.
    """
    import torch.distributed as dist

    from .backbones import load_backbone
    from .data import open_dataset
    from .head import SempartHead

    require(isinstance(config, TrainConfig), f"config must be a TrainConfig, got {type(config).__name__}")
    require(config.data_root is not None, "data_root is not set: pass the folder that holds DUTS-TR/")
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    ckpt = None
    if resume:
        ckpt = load_checkpoint(last_path)
        saved = ckpt["config"]
        changed = [k for k, v in config.to_dict().items()
                   if k not in RESUMABLE_FIELDS and k in saved and _plain(saved[k]) != _plain(v)]
        require(not changed, f"resume: {', '.join(changed)} differ from the checkpoint's config in "
                             f"{last_path}; only {', '.join(RESUMABLE_FIELDS)} may change")
    else:
        require(not last_path.exists(), f"{last_path} exists: pass resume=True (--resume) to continue "
                                        f"it, or choose another output folder")

    dist_info = _distributed()
    distributed = dist_info.world_size > 1
    device = _device(config, dist_info)
    if distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    require(config.batch_size % dist_info.world_size == 0,
            f"batch_size {config.batch_size} must be divisible by the number of processes {dist_info.world_size}")
    is_main = dist_info.rank == 0

    dataset = open_dataset(config.dataset, config.data_root)
    train_idx, val_idx = split_indices(len(dataset), seed=config.seed,
                                       val_fraction=config.val_fraction if config.select_on == "val" else 0.0)
    require(len(train_idx) >= config.batch_size,
            f"{len(train_idx)} training images are fewer than one batch of {config.batch_size}")
    train_set = torch.utils.data.Subset(dataset, train_idx)
    if config.select_on == "test":
        val_source = open_dataset(config.test_dataset, config.data_root)
        val_set = _Evaluated(val_source, range(len(val_source)), config)
    elif config.select_on == "val" and val_idx:
        val_set = _Evaluated(dataset, val_idx, config)
    else:
        val_set = None
    steps_per_epoch = len(train_idx) // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    backbone = load_backbone(config.backbone, weights=config.weights, device=device)
    torch.manual_seed(config.seed)  # the head's initialisation
    head = SempartHead(backbone.dim, backbone.patch_size).to(device)
    if config.channels_last:
        head = head.to(memory_format=torch.channels_last)
    if distributed:  # before the optimiser: the conversion makes new BatchNorm parameters
        head = convert_sync_batchnorm(head, device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    step, epoch, position, best_iou = 0, 0, 0, None
    if ckpt is not None:
        head.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, epoch, position, best_iou = ckpt["step"], ckpt["epoch"], ckpt["position"], ckpt["best_iou"]
        _set_rng_states(ckpt["rng"])
    model: nn.Module = head
    if distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(head, device_ids=device_ids)
    if config.compile:
        model = torch.compile(model)
    model.train()

    def checkpoint(path: Path) -> None:
        _save(path, {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "model": head.state_dict(),
                     "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch, "position": position,
                     "best_iou": best_iou, "rng": _rng_states(),
                     "world_size": dist_info.world_size})

    log_fh = val_fh = tb = bar = None
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_fh, log_writer = _open_csv(out_dir / "log.csv", ("step", "epoch") + LOG_TERMS,
                                       keep_through_step=step if resume else None)
        if val_set is not None:
            val_fh, val_writer = _open_csv(out_dir / "val.csv", ("step", "epoch", "iou", "split"),
                                           keep_through_step=step if resume else None)
        tb = _tensorboard(out_dir)
        if ckpt is None:
            checkpoint(out_dir / "init.pt")  # the untrained head: what training is compared with
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_steps, initial=step, desc="train", dynamic_ncols=True)

    losses: list[StepLosses] = []
    val_ious: list[float] = []
    try:
        while step < total_steps and epoch < config.epochs:
            batches = epoch_batches(len(train_idx), seed=config.seed, epoch=epoch, batch_size=config.batch_size)
            shards = [b[dist_info.rank::dist_info.world_size] for b in batches[position:]]
            loader = torch.utils.data.DataLoader(_Augmented(train_set, config, epoch), batch_sampler=shards,
                                                 num_workers=config.num_workers)
            for images in loader:
                if step >= total_steps:
                    break
                terms = train_step(model, backbone, optimizer, images.to(device, non_blocking=True),
                                   config=config, step=step)
                require(math.isfinite(terms.total), f"the loss became {terms.total} at step {step}")
                step, position = step + 1, position + 1
                losses.append(terms)
                if is_main:
                    log_writer.writerow([step, epoch] + [f"{v:.8g}" for v in terms])
                    log_fh.flush()
                    if step % config.log_every == 0:
                        if bar is not None:
                            bar.set_postfix({k: f"{v:.4f}" for k, v in terms._asdict().items()}, refresh=False)
                        if tb is not None:
                            for k, v in terms._asdict().items():
                                tb.add_scalar(f"loss/{k}", v, step)
                    if bar is not None:
                        bar.update(1)
                    if step % config.checkpoint_every == 0 and position < steps_per_epoch:
                        checkpoint(last_path)
            if position < steps_per_epoch:
                break  # stopped inside the epoch by max_steps
            epoch, position = epoch + 1, 0
            if is_main and val_set is not None:
                val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size,
                                                         num_workers=config.num_workers)
                iou = validate(head, backbone, val_loader, amp=config.amp)
                val_ious.append(iou)
                val_writer.writerow([step, epoch, f"{iou:.6f}", config.select_on])
                val_fh.flush()
                if tb is not None:
                    tb.add_scalar(f"{config.select_on}/iou", iou, step)
                if best_iou is None or iou > best_iou:
                    best_iou = iou
                    checkpoint(best_path)
            if is_main:
                checkpoint(last_path)
        if is_main:
            checkpoint(last_path)
    finally:
        for handle in (bar, log_fh, val_fh, tb):
            if handle is not None:
                handle.close()
    if distributed:
        dist.barrier()
    return TrainResult(out_dir=out_dir, step=step, epoch=epoch, last_checkpoint=last_path if is_main else None,
                       best_checkpoint=best_path if best_path.exists() else None, best_iou=best_iou,
                       val_iou=tuple(val_ious), losses=tuple(losses), head=head)


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value


# --------------------------------------------------------------------------------------------
# Command line

def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def parse_field(name: str, text: str) -> Any:
    """Parse one TrainConfig field's value from text ('none' for an optional field's None)."""
    types = _field_types()
    require(name in types, f"unknown TrainConfig field {name!r}; known: {', '.join(sorted(types))}")
    hint = types[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    try:
        if typing.get_origin(base) is tuple:
            return tuple(float(v) for v in text.split(","))
        if base is bool:
            low = text.strip().lower()
            require(low in ("1", "0", "true", "false", "yes", "no", "on", "off"),
                    f"{name} must be true or false, got {text!r}")
            return low in ("1", "true", "yes", "on")
        return base(text)
    except ValueError:
        raise InputError(f"{name}: cannot read {text!r} as {getattr(base, '__name__', base)}") from None


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``: --preset, --out, --resume, --set and one flag per field."""
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="named configuration")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, log.csv)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any TrainConfig field (repeatable)")
    for name, hint in _field_types().items():
        flag = "--" + name.replace("_", "-")
        if hint is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"TrainConfig.{name}")
        else:
            kind = "comma-separated floats" if typing.get_origin(hint) is tuple else "value"
            optional = ", or none" if type(None) in typing.get_args(hint) else ""
            parser.add_argument(flag, dest=name, default=None, metavar="VALUE",
                                help=f"TrainConfig.{name} ({kind}{optional})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that parsed ``train`` options describe (preset, then --set, then flags)."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        require("=" in item, f"--set expects FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        overrides[name.strip()] = parse_field(name.strip(), text)
    for name in _field_types():
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value if isinstance(value, bool) else parse_field(name, value)
    return config_from(args.preset, **overrides)


def run_train(args: argparse.Namespace) -> int:
    """Run ``paperlib train`` from parsed options; returns the exit status."""
    config = config_from_args(args)
    result = train(config, args.out, resume=args.resume, progress=not getattr(args, "quiet", False))
    if result.last_checkpoint is not None:
        best = "" if result.best_iou is None else f", best {config.select_on} IoU {result.best_iou:.4f}"
        print(f"trained {result.step} steps ({result.epoch} epochs){best}; checkpoint {result.last_checkpoint}")
    return 0


def main_train(argv: Sequence[str] | None = None) -> int:
    """``python -m paperlib.train ...``: the train command on its own (torchrun entry point)."""
    parser = argparse.ArgumentParser(prog="paperlib train", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except InputError as err:
        print(f"paperlib train: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main_train())
