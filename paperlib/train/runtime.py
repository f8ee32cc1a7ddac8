"""Data-parallel training across processes: synchronised BatchNorm, the ``torchrun`` environment,
and the device each process trains on.

PyTorch's ``SyncBatchNorm`` runs on accelerators only; on CPU (gloo) :class:`GlooSyncBatchNorm`
synchronises the statistics over the global batch instead, so that a two-rank run equals a
single process on the whole batch up to float rounding.

Public API:

* :class:`GlooSyncBatchNorm` -- BatchNorm2d with statistics over every rank's batch;
* :func:`convert_sync_batchnorm` -- replace a module's BatchNorm2d layers by synchronised ones;
* :class:`DeviceSetup` / :func:`setup_device` -- that device made current, cuDNN tuned, the
  process group started (nccl on CUDA, gloo on CPU) and the DataLoader settings that suit it.
  These are the only lines of training that run on CUDA alone; tests/test_train_cuda_paths.py
  runs them on a CPU with the CUDA calls faked.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..devices import DistributedEnv, resolve_device
from .config import loader_workers


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
    workers: int          # DataLoader worker processes (:func:`paperlib.train.config.loader_workers`)


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
