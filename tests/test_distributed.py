"""Tests of paperlib.train.runtime that run in one process (the two-rank run is tests/test_train_ddp.py)."""

from __future__ import annotations

import torch

from paperlib.devices import DistributedEnv, distributed_env
from paperlib.train.runtime import GlooSyncBatchNorm


def test_gloo_sync_batchnorm_in_a_group_of_one_equals_batchnorm(tmp_path):
    """With one rank the synchronised statistics are the local ones: torch's BatchNorm2d is the reference."""
    import torch.distributed as dist

    torch.manual_seed(0)
    ref = torch.nn.BatchNorm2d(5)
    ref.weight.data.uniform_(0.5, 1.5)
    ref.bias.data.uniform_(-0.5, 0.5)
    sync = GlooSyncBatchNorm(5)
    sync.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 4, 6) * 2 + 1
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        ys = [m(xi) for m, xi in zip((ref, sync), xs)]
        g = torch.randn_like(ys[0])
        for y in ys:
            (y * g).sum().backward()
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(ys[1], ys[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sync.weight.grad, ref.weight.grad, atol=1e-5, rtol=1e-5)
    for name, buf in ref.state_dict().items():
        torch.testing.assert_close(sync.state_dict()[name], buf, atol=1e-6, rtol=1e-6)
    sync.eval(), ref.eval()
    torch.testing.assert_close(sync(x), ref(x))


def test_distributed_env_reads_what_torchrun_sets(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_env() == DistributedEnv(rank=0, world_size=1, local_rank=0, local_world_size=1)
    monkeypatch.setenv("WORLD_SIZE", "2")  # without LOCAL_WORLD_SIZE: every rank on this machine
    assert distributed_env().local_world_size == 2
    for name, value in (("RANK", "3"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    assert distributed_env() == DistributedEnv(rank=3, world_size=4, local_rank=1, local_world_size=2)
