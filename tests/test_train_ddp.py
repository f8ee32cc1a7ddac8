"""Two-process DistributedDataParallel training on CPU (gloo) against one process.

Each rank takes half of the global batch; BatchNorm statistics are synchronised
(:class:`paperlib.train.GlooSyncBatchNorm`) and DDP averages the gradients, so after the
same steps both ranks hold the weights of a single process trained on the whole batch.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from paperlib.train import config_from, train

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, config_dict: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        result = train(config_from("smoke", **config_dict), out, progress=False)
        torch.save({k: v.detach().cpu() for k, v in result.head.state_dict().items()},
                   os.path.join(out, f"rank{rank}.weights.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from paperlib.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    return root


@pytest.mark.parametrize("bn", ["train", "eval"])
def test_two_gloo_ranks_match_one_process(data_root, tmp_path, bn):
    cfg = config_from("smoke", data_root=str(data_root), image_size=32, resize_short=36, batch_size=4,
                      max_steps=STEPS, select_on="none", teacher_bn_mode=bn, device="cpu")
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), cfg.to_dict(), str(out)), nprocs=2, join=True)
    w0 = torch.load(out / "rank0.weights.pt", weights_only=True)
    w1 = torch.load(out / "rank1.weights.pt", weights_only=True)
    single = train(cfg, tmp_path / "single", progress=False).head.state_dict()
    assert w0.keys() == w1.keys() == single.keys()
    for k in w0:
        # DDP broadcasts and all-reduces: the ranks agree exactly.
        assert torch.equal(w0[k], w1[k]), k
    for k in w0:
        if w0[k].is_floating_point():
            # Rounding differs (sums split over ranks); AdamW's normalised step keeps it small.
            torch.testing.assert_close(w0[k], single[k], atol=1e-5, rtol=1e-5, msg=k)
        else:
            assert torch.equal(w0[k], single[k]), k
    assert (out / "last.pt").is_file() and (out / "log.csv").is_file()
    assert not list(out.glob("rank1*.csv"))
