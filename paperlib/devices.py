"""Which device this process computes on: the ``torchrun`` environment, a requested device, a backbone's.

Every command and the trainer choose their device here, so ``--device`` means the same
everywhere and a bad spelling is one line naming it.

    distributed_env()                 rank, world size and local rank that ``torchrun`` sets
    resolve_device(requested, env)    a device string (or None) -> torch.device, indexed on CUDA
    backbone_device(backbone)         where a backbone's tensors live
"""

from __future__ import annotations

import itertools
import os
from typing import NamedTuple

import torch

from .checks import InputError, require


class DistributedEnv(NamedTuple):
    """This process's place in the run, from the variables ``torchrun`` sets."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int = 1  # processes on this machine, which share its CPUs and GPUs


def distributed_env() -> DistributedEnv:
    """Read RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; without them, one process of rank 0."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistributedEnv(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")),
                          int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))


_DEVICE_HINT = "use cpu, cuda or cuda:N"


def resolve_device(requested: str | torch.device | None, env: DistributedEnv | None = None) -> torch.device:
    """The device of this rank, with an index whenever it is a CUDA device.

    ``torch.cuda.set_device`` and DDP's ``device_ids`` need an index, so every spelling is
    given one: a bare 'cuda' (or None on a CUDA machine) becomes ``cuda:LOCAL_RANK`` in a
    multi-process run (one GPU per rank, as torchrun expects) and the current CUDA device
    otherwise (0 unless the caller has chosen another); 'cuda:N' is kept as it is.

    Args:
        requested: a torch device string ('cpu', 'cuda', 'cuda:1'), or None for CUDA when
            available, else the CPU.
        env: this process's :class:`DistributedEnv` (default: :func:`distributed_env`).

    Returns:
        The device; ``index`` is set when its type is 'cuda'.

    Raises:
        InputError: naming ``--device``, for a string torch does not read as a device, a CUDA
            device on a machine without CUDA, or an index beyond ``torch.cuda.device_count()``.
    """
    env = distributed_env() if env is None else env
    if requested is None:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        requested = "cuda"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise InputError(f"--device {requested!r} is not a device; {_DEVICE_HINT}") from None
    if device.type != "cuda":
        return device
    require(torch.cuda.is_available(), f"--device {requested}: CUDA is not available on this machine "
                                       f"(torch.cuda.is_available() is False); use --device cpu")
    count = torch.cuda.device_count()
    if device.index is not None:
        require(device.index < count, f"--device {requested}: this machine has {count} CUDA device(s), "
                                      f"cuda:0 to cuda:{count - 1}")
        return device
    if env.world_size > 1:
        require(env.local_rank < count, f"--device {requested}: LOCAL_RANK {env.local_rank} asks for "
                                        f"cuda:{env.local_rank}, but this machine has {count} CUDA device(s); "
                                        f"start at most {count} processes per machine")
        return torch.device("cuda", env.local_rank)
    return torch.device("cuda", torch.cuda.current_device())


def backbone_device(backbone) -> torch.device:
    """Where a backbone runs: its ``device`` attribute, its first tensor's device, or the CPU."""
    device = getattr(backbone, "device", None)
    if device is not None:
        return torch.device(device)
    if isinstance(backbone, torch.nn.Module):
        tensor = next(itertools.chain(backbone.parameters(), backbone.buffers()), None)
        if tensor is not None:
            return tensor.device
    return torch.device("cpu")
