"""Training the Sempart head with both tricks (paper Sec. 5 "Implementation").

The procedure and its settings: docs/paper_and_code.md#training.

Named stages:

* the run's :class:`~paperlib.train.config.TrainConfig` and presets (:mod:`paperlib.train.config`),
  its seeded data order and augmentation (:mod:`paperlib.train.data`);
* :func:`train_step`: frozen backbone -> keys, head -> fine / coarse logits, the crop-zoom
  teacher (:mod:`paperlib.losses.crop_zoom`), :func:`paperlib.losses.objective.sempart_loss`, one AdamW step;
* :func:`validate`: IoU at 0.5 of the fine map on held-out images, polarity flipped per batch;
* :func:`train`: the loop, with atomic checkpoints (``last.pt``, ``best.pt``; read back with
  :func:`load_checkpoint`; the files and RNG states are :mod:`paperlib.train.state`), exact
  resume, ``log.csv`` and ``val.csv``, and
  DistributedDataParallel under ``torchrun`` (:mod:`paperlib.train.runtime`);
The ``paperlib train`` command (also ``python -m paperlib.train``, ``torchrun -m
paperlib.train.loop``) is :mod:`paperlib.cli.train`.

Public API: :class:`StepLosses`, :func:`train_step`, :func:`validate`, :class:`TrainResult`,
:func:`train`.

**Reproducibility.** Nothing reads the global random state after the head is initialised:
the data order of an epoch, the augmentation of an image and the crop box of a step each
come from their own generator seeded by ``(seed, purpose, epoch or step, index)``. A resumed
run therefore reproduces the uninterrupted one bit for bit (same machine, same threads). The
global RNG states are saved in checkpoints all the same, and restored on resume.

**Distributed.** ``batch_size`` is the global batch. Under ``torchrun`` each rank takes every
``world_size``-th image of the step's batch (as ``DistributedSampler`` does), DDP averages the
gradients and BatchNorm statistics are synchronised over the global batch (``SyncBatchNorm``
on accelerators; :class:`~paperlib.train.runtime.GlooSyncBatchNorm` on CPU, where PyTorch's
SyncBatchNorm refuses to run). Every loss term is a mean over images, so the update equals the
single-process update on the global batch up to float rounding. Only rank 0 validates and
writes files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..backbones.registry import load_backbone
from ..losses.crop_zoom import crop_consistency_loss, crop_zoom, ncut_crop_loss, sample_box, teacher_target
from ..data.saliency import open_dataset
from ..devices import distributed_env
from .runtime import convert_sync_batchnorm, setup_device
from ..backbones.features import normalise
from ..model.head import SempartHead
from ..losses.objective import sempart_loss
from ..eval.metrics import SaliencyMetrics
from .config import LOG_TERMS, TrainConfig, autocast_dtype
from .data import AugmentedDataset, EvalDataset, SEED_CROP, epoch_batches, seeded_generator, split_indices
from .state import (
    CHECKPOINT_FORMAT, check_resumable, load_checkpoint, open_csv_log, open_tensorboard, rng_states,
    save_checkpoint, set_rng_states,
)
from ..checks import require


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

    require(isinstance(config, TrainConfig), f"config must be a TrainConfig, got {type(config).__name__}")
    require(config.data_root is not None, "data_root is not set: pass the folder that holds DUTS-TR/")
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    ckpt = None
    if resume:
        ckpt = load_checkpoint(last_path)
        check_resumable(config, ckpt["config"], last_path)
    else:
        require(not last_path.exists(), f"{last_path} exists: pass resume=True (--resume) to continue "
                                        f"it, or choose another output folder")

    dist_info = distributed_env()
    distributed = dist_info.world_size > 1
    setup = setup_device(config.device, dist_info, num_workers=config.num_workers)
    device = setup.device
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
        val_set = EvalDataset(val_source, range(len(val_source)), config)
    elif config.select_on == "val" and val_idx:
        val_set = EvalDataset(dataset, val_idx, config)
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
        set_rng_states(ckpt["rng"])
    model: nn.Module = head
    if distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(head, device_ids=device_ids)
    if config.compile:
        model = torch.compile(model)
    model.train()

    def checkpoint(path: Path) -> None:
        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "model": head.state_dict(),
                     "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch, "position": position,
                     "best_iou": best_iou, "rng": rng_states(),
                     "world_size": dist_info.world_size})

    log_fh = val_fh = tb = bar = None
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_fh, log_writer = open_csv_log(out_dir / "log.csv", ("step", "epoch") + LOG_TERMS,
                                       keep_through_step=step if resume else None)
        if val_set is not None:
            val_fh, val_writer = open_csv_log(out_dir / "val.csv", ("step", "epoch", "iou", "split"),
                                           keep_through_step=step if resume else None)
        tb = open_tensorboard(out_dir)
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
            loader = torch.utils.data.DataLoader(AugmentedDataset(train_set, config, epoch), batch_sampler=shards,
                                                 num_workers=setup.workers, pin_memory=setup.pin_memory)
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
                                                         num_workers=setup.workers, pin_memory=setup.pin_memory)
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
