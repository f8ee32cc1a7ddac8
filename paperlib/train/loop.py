"""The training loop of the Sempart head (paper Sec. 5 "Implementation"): data, head, steps, files.

The procedure and its settings: docs/paper_and_code.md#training. One step and the validation
pass are :mod:`paperlib.train.step`; the configuration :mod:`paperlib.train.config`; the data
order and augmentation :mod:`paperlib.train.data`; checkpoints, RNG states and logs
:mod:`paperlib.train.state`; processes and devices :mod:`paperlib.train.runtime`. The
``paperlib train`` command (also ``python -m paperlib.train`` and ``torchrun -m paperlib.train``)
is :mod:`paperlib.cli.train`.

:func:`train` writes atomic checkpoints (``last.pt``, ``best.pt``, read back with
:func:`paperlib.train.state.load_checkpoint`), resumes exactly, logs ``log.csv`` and ``val.csv``,
and runs DistributedDataParallel under ``torchrun``. Its stages are functions:
:func:`open_training_data` (split, subsets, step counts), :func:`build_head` (the head and its
optimiser), :class:`RunFiles` (rank 0's logs, progress bar and TensorBoard).

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

import contextlib
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..backbones.registry import load_backbone
from ..checks import InputError, check_output_dir, dataset_folder, require
from ..data.saliency import open_dataset
from ..devices import distributed_env
from ..model.head import SempartHead
from .config import LOG_TERMS, TrainConfig
from .data import AugmentedDataset, EvalDataset, epoch_batches, split_indices
from .runtime import convert_sync_batchnorm, setup_device
from .state import (
    CHECKPOINT_FORMAT,
    check_resumable,
    load_checkpoint,
    open_csv_log,
    open_tensorboard,
    rng_states,
    run_lock,
    save_checkpoint,
    set_rng_states,
)
from .step import StepLosses, train_step, validate

# --------------------------------------------------------------------------------------------
# Stages of a run

class TrainingData(NamedTuple):
    """The run's images: the training subset, the selection set and the step counts."""

    train_set: torch.utils.data.Dataset   # the training images (a Subset of the dataset)
    n_train: int                          # its length
    val_set: EvalDataset | None           # images that select best.pt, or None
    steps_per_epoch: int
    total_steps: int                      # epochs x steps per epoch, capped by max_steps
    identity: dict                        # {"n_images", "stems_sha256"}: which images these are


def open_training_data(config: TrainConfig, *, world_size: int = 1) -> TrainingData:
    """Open the dataset, split off the validation images and count the steps (seeded by ``config.seed``)."""
    require(config.batch_size % world_size == 0,
            f"batch_size {config.batch_size} must be divisible by the number of processes {world_size}")
    dataset = open_dataset(config.dataset, config.data_root)
    train_idx, val_idx = split_indices(len(dataset), seed=config.seed,
                                       val_fraction=config.val_fraction if config.select_on == "val" else 0.0)
    require(len(train_idx) >= config.batch_size,
            f"{len(train_idx)} training images are fewer than one batch of {config.batch_size} ({len(dataset)} in "
            f"{config.data_root}, {len(val_idx)} held out by --val-fraction {config.val_fraction}); lower "
            f"--batch-size or --val-fraction, or use more images")
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
    identity = {"n_images": len(dataset),
                "stems_sha256": hashlib.sha256("\n".join(dataset.stems).encode()).hexdigest()}
    return TrainingData(torch.utils.data.Subset(dataset, train_idx), len(train_idx), val_set,
                        steps_per_epoch, total_steps, identity)


def build_head(config: TrainConfig, backbone, device: torch.device, *, distributed: bool = False
               ) -> tuple[SempartHead, torch.optim.Optimizer]:
    """The head, initialised from ``config.seed``, on ``device``, and its AdamW optimiser."""
    torch.manual_seed(config.seed)  # the head's initialisation
    head = SempartHead(backbone.dim, backbone.patch_size).to(device)
    if config.channels_last:
        head = head.to(memory_format=torch.channels_last)
    if distributed:  # before the optimiser: the conversion makes new BatchNorm parameters
        head = convert_sync_batchnorm(head, device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    return head, optimizer


class RunFiles:
    """Rank 0's record of a run: ``log.csv`` (every step), ``val.csv`` (every epoch), TensorBoard, the bar.

    On resume the logs keep their rows up to the checkpoint's step (a torn or later row is
    dropped), so that the files read as if the run had never stopped.
    """

    def __init__(self, out_dir: Path, config: TrainConfig, *, validates: bool, step: int, resume: bool,
                 total_steps: int, progress: bool) -> None:
        self.config = config
        out_dir.mkdir(parents=True, exist_ok=True)
        keep = step if resume else None
        self.log_fh, self.log_writer = open_csv_log(out_dir / "log.csv", ("step", "epoch") + LOG_TERMS,
                                                    keep_through_step=keep)
        self.val_fh = self.val_writer = None
        if validates:
            self.val_fh, self.val_writer = open_csv_log(out_dir / "val.csv", ("step", "epoch", "iou", "split"),
                                                        keep_through_step=keep)
        self.tb = open_tensorboard(out_dir)
        self.bar = (tqdm(total=total_steps, initial=step, desc="train", dynamic_ncols=True)
                    if progress else None)

    def step(self, step: int, epoch: int, terms: StepLosses) -> None:
        """Log one step's terms (and refresh the bar and TensorBoard every ``log_every`` steps)."""
        self.log_writer.writerow([step, epoch] + [f"{v:.8g}" for v in terms])
        self.log_fh.flush()
        if step % self.config.log_every == 0:
            if self.bar is not None:
                self.bar.set_postfix({k: f"{v:.4f}" for k, v in terms._asdict().items()}, refresh=False)
            if self.tb is not None:
                for k, v in terms._asdict().items():
                    self.tb.add_scalar(f"loss/{k}", v, step)
        if self.bar is not None:
            self.bar.update(1)

    def validation(self, step: int, epoch: int, iou: float) -> None:
        """Log one epoch's selection IoU."""
        self.val_writer.writerow([step, epoch, f"{iou:.6f}", self.config.select_on])
        self.val_fh.flush()
        if self.tb is not None:
            self.tb.add_scalar(f"{self.config.select_on}/iou", iou, step)

    def close(self) -> None:
        for handle in (self.bar, self.log_fh, self.val_fh, self.tb):
            if handle is not None:
                handle.close()


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


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True,
          allow_data_change: bool = False) -> TrainResult:
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
            Fields in :data:`paperlib.train.state.RESUMABLE_FIELDS` may differ from the
            checkpoint's, no others.
        progress: show a tqdm progress bar.
        allow_data_change: resume although the training images are not those the checkpoint
            was trained on (their count and file names are recorded in it); refused otherwise,
            since the split, the data order and the validation set would silently change.

    Returns:
        :class:`TrainResult`.
    """
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
    is_main = dist_info.rank == 0
    data = open_training_data(config, world_size=dist_info.world_size)
    trained_on = (ckpt or {}).get("data")
    if trained_on is not None and trained_on != data.identity and not allow_data_change:
        raise InputError(f"resume: {config.data_root} holds {data.identity['n_images']} training images, the "
                         f"checkpoint {last_path} was trained on {trained_on['n_images']}"
                         + (" with other file names" if trained_on["n_images"] == data.identity["n_images"] else "")
                         + "; point --data-root at the same images, or pass --allow-data-change")
    folders = data.train_set.dataset.folders
    check_output_dir("--out", out_dir, inputs={"the training set": dataset_folder(folders.images_dir,
                                                                                  folders.masks_dir),
                                                "the training images": folders.images_dir,
                                                "the training masks": folders.masks_dir,
                                                "--weights": config.weights})

    backbone = load_backbone(config.backbone, weights=config.weights, device=device)
    head, optimizer = build_head(config, backbone, device, distributed=distributed)
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
                               "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch,
                               "position": position, "best_iou": best_iou, "rng": rng_states(),
                               "world_size": dist_info.world_size, "data": data.identity})

    losses: list[StepLosses] = []
    val_ious: list[float] = []
    with contextlib.ExitStack() as run:   # rank 0's lock and files, released however the run ends
        files = None
        if is_main:
            run.enter_context(run_lock(out_dir))
            files = run.enter_context(contextlib.closing(
                RunFiles(out_dir, config, validates=data.val_set is not None, step=step, resume=resume,
                         total_steps=data.total_steps, progress=progress)))
            if ckpt is None:
                checkpoint(out_dir / "init.pt")  # the untrained head: what training is compared with
        while step < data.total_steps and epoch < config.epochs:
            batches = epoch_batches(data.n_train, seed=config.seed, epoch=epoch, batch_size=config.batch_size)
            shards = [b[dist_info.rank::dist_info.world_size] for b in batches[position:]]
            loader = torch.utils.data.DataLoader(AugmentedDataset(data.train_set, config, epoch),
                                                 batch_sampler=shards, num_workers=setup.workers,
                                                 pin_memory=setup.pin_memory)
            for images in loader:
                if step >= data.total_steps:
                    break
                terms = train_step(model, backbone, optimizer, images.to(device, non_blocking=True),
                                   config=config, step=step)
                require(math.isfinite(terms.total), f"the loss became {terms.total} at step {step}")
                step, position = step + 1, position + 1
                losses.append(terms)
                if is_main:
                    files.step(step, epoch, terms)
                    if step % config.checkpoint_every == 0 and position < data.steps_per_epoch:
                        checkpoint(last_path)
            if position < data.steps_per_epoch:
                break  # stopped inside the epoch by max_steps
            epoch, position = epoch + 1, 0
            if is_main and data.val_set is not None:
                val_loader = torch.utils.data.DataLoader(data.val_set, batch_size=config.batch_size,
                                                         num_workers=setup.workers, pin_memory=setup.pin_memory)
                iou = validate(head, backbone, val_loader, amp=config.amp)
                val_ious.append(iou)
                files.validation(step, epoch, iou)
                if best_iou is None or iou > best_iou:
                    best_iou = iou
                    checkpoint(best_path)
            if is_main:
                checkpoint(last_path)
        if is_main:
            checkpoint(last_path)
    if distributed:
        dist.barrier()
    return TrainResult(out_dir=out_dir, step=step, epoch=epoch, last_checkpoint=last_path if is_main else None,
                       best_checkpoint=best_path if best_path.exists() else None, best_iou=best_iou,
                       val_iou=tuple(val_ious), losses=tuple(losses), head=head)
