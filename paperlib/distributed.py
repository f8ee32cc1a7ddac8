"""Data-parallel training across processes: synchronised BatchNorm and the ``torchrun`` environment.

PyTorch's ``SyncBatchNorm`` runs on accelerators only; on CPU (gloo) :class:`GlooSyncBatchNorm`
synchronises the statistics over the global batch instead, so that a two-rank run equals a
single process on the whole batch up to float rounding.

Public API:

* :class:`GlooSyncBatchNorm` -- BatchNorm2d with statistics over every rank's batch;
* :func:`convert_sync_batchnorm` -- replace a module's BatchNorm2d layers by synchronised ones;
* :class:`DistributedEnv` / :func:`distributed_env` -- rank, world size and local rank that
  ``torchrun`` sets (a single process without it);
* :func:`resolve_device` -- the device a rank trains on.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn


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
# The torchrun environment

class DistributedEnv(NamedTuple):
    """This process's place in the run, from the variables ``torchrun`` sets."""

    rank: int
    world_size: int
    local_rank: int


def distributed_env() -> DistributedEnv:
    """Read RANK, WORLD_SIZE and LOCAL_RANK; without them, one process of rank 0."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistributedEnv(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(requested: str | None, env: DistributedEnv) -> torch.device:
    """The device of this rank.

    Args:
        requested: a torch device string, or None for CUDA when available, else CPU.
        env: this process's :class:`DistributedEnv`.

    Returns:
        ``requested`` as a device, except that a bare 'cuda' in a multi-process run becomes
        ``cuda:local_rank``; with None, ``cuda:local_rank`` (multi-process) or ``cuda:0``, else CPU.
    """
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and device.index is None and env.world_size > 1:
            device = torch.device("cuda", env.local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", env.local_rank if env.world_size > 1 else 0)
    return torch.device("cpu")
