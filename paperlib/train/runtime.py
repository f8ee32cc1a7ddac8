"""Data-parallel training across processes: synchronised BatchNorm, the ``torchrun`` environment,
and the device each process trains on.

PyTorch's ``SyncBatchNorm`` runs on accelerators only; on CPU (gloo) :class:`GlooSyncBatchNorm`
synchronises the statistics over the global batch instead, so that a two-rank run equals a
single process on the whole batch up to float rounding.

Public API:

* :class:`GlooSyncBatchNorm` -- BatchNorm2d with statistics over every rank's batch;
* :func:`convert_sync_batchnorm` -- replace a module's BatchNorm2d layers by synchronised ones;
* :func:`autocast_dtype` -- the dtype of a mixed-precision mode on a device;
* :func:`loader_workers` -- the DataLoader worker count a run asks for on a device;
* :class:`DeviceSetup` / :func:`setup_device` -- that device made current, cuDNN tuned, the
  process group started (nccl on CUDA, gloo on CPU) and the DataLoader settings that suit it.
  These are the only lines of training that run on CUDA alone; tests/test_train_cuda_paths.py
  runs them on a CPU with the CUDA calls faked.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from ..checks import check_choice
from ..devices import DistributedEnv, resolve_device
from .config import AMP_MODES


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


class DeviceSetup(NamedTuple):
    """Where a training process runs and how its data reach it (:func:`setup_device`)."""

    device: torch.device  # indexed when CUDA
    backend: str | None   # the process group's backend; None for a single process
    pin_memory: bool      # page-locked batches, for asynchronous host-to-GPU copies
    workers: int          # DataLoader worker processes (:func:`loader_workers`)


def setup_device(requested: str | None, env: DistributedEnv, *, num_workers: int | None = None) -> DeviceSetup:
    """Prepare this process for training on ``requested``: the CUDA-only steps of :func:`paperlib.train.loop.train`.

    On CUDA: the device is made current (where DataLoader's pin-memory thread pins, and where
    NCCL puts this rank) and ``torch.backends.cudnn.benchmark`` is set (fixed input shapes:
    cuDNN may time its kernels once and keep the fastest). In a multi-process run the process
    group is started unless it already is: NCCL on CUDA, gloo on the CPU (NCCL has no CPU path).

    Args:
        requested: the config's device string, or None (see :func:`resolve_device`).
        env: this process's :class:`DistributedEnv`.
        num_workers: the config's DataLoader worker count; None for the device's default.

    Returns:
        :class:`DeviceSetup`.
    """
    import torch.distributed as dist

    device = resolve_device(requested, env)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    backend = None
    if env.world_size > 1:
        if dist.is_initialized():  # started by the caller: keep it
            backend = dist.get_backend()
        else:
            backend = "nccl" if on_cuda else "gloo"
            dist.init_process_group(backend)
    workers = loader_workers(num_workers, device, processes=env.local_world_size)
    return DeviceSetup(device=device, backend=backend, pin_memory=on_cuda, workers=workers)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` mode on ``device``: bfloat16, or None for float32.

    'auto' is bf16 on CUDA GPUs with native bf16 (Ampere and later; float32 on older ones,
    where bf16 is emulated) and float32 on a CPU, where float32 keeps runs bit-reproducible and
    bf16 pays only on CPUs with bf16 units (``benchmarks/bench_train.py`` measures it). 'bf16'
    forces it on any device, which is also how the CPU tests run the GPU code path.

    Args:
        amp: a mode of :data:`AMP_MODES`.
        device: where the step runs.

    Returns:
        ``torch.bfloat16``, or None for no autocast.
    """
    check_choice("amp", amp, AMP_MODES)
    if amp == "bf16":
        return torch.bfloat16
    if amp == "auto" and torch.device(device).type == "cuda":
        native = not torch.cuda.is_available() or torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else None
    return None


def loader_workers(num_workers: int | None, device: torch.device, *, processes: int = 1) -> int:
    """DataLoader worker processes for ``num_workers`` on ``device`` (None: the default above).

    On CUDA, data loading in the main process would stall the GPU: one core reads and augments
    about 120 images/s (``benchmarks/bench_train.py`` on the DUTS-TR sample), so a batch of 8
    costs about 70 ms, more than the 48 ms a step may take for the 30-minute aim. On a CPU the
    cores are the training's own.

    Args:
        num_workers: the config's value; an int is returned as it is.
        device: where training runs.
        processes: training processes on this machine (DDP ranks), which share its CPUs.

    Returns:
        The worker count for ``torch.utils.data.DataLoader``.
    """
    if num_workers is not None:
        return num_workers
    if torch.device(device).type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus // max(1, processes)))
