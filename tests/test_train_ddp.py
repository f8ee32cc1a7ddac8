"""Two-process DistributedDataParallel training on CPU (gloo) against one process.

Each rank takes half of the global batch; BatchNorm statistics are synchronised
(:class:`paperlib.train.runtime.GlooSyncBatchNorm`) and DDP averages the gradients, so after the
same steps both ranks hold the weights of a single process trained on the whole batch.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from paperlib.train.config import config_from
from paperlib.train.loop import train

STEPS = 3


def _worker(rank: int, world_size: int, config_dict: dict, out: str) -> None:
    # torchrun's variables; the group is joined through a file (no TCP port to race for),
    # and train() uses a group that is already initialised.
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world_size)
    try:
        result = train(config_from("smoke", **config_dict), out, progress=False)
        torch.save({k: v.detach().cpu() for k, v in result.head.state_dict().items()},
                   os.path.join(out, f"rank{rank}.weights.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    return root


def _redundant_biases(state: dict) -> set[str]:
    """Conv biases followed by BatchNorm: their exact gradient is 0 (BatchNorm subtracts them).

    Their computed gradient is rounding noise, which AdamW's normalised step turns into moves
    of up to about lr per step whatever its size; so they (and the running means that see
    them) cannot agree between two summation orders beyond that bound.
    """
    return {k for k in state if k.endswith(".0.bias") and k.replace(".0.bias", ".1.running_mean") in state}


@pytest.mark.slow
@pytest.mark.parametrize("bn", ["train", "eval"])
def test_two_gloo_ranks_match_one_process(data_root, tmp_path, bn):
    lr = 1e-4  # the paper's
    cfg = config_from("smoke", data_root=str(data_root), image_size=32, resize_short=36, batch_size=4,
                      max_steps=STEPS, select_on="none", teacher_bn_mode=bn, device="cpu", lr=lr)
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_worker, args=(2, cfg.to_dict(), str(out)), nprocs=2, join=True)
    w0 = torch.load(out / "rank0.weights.pt", weights_only=True)
    w1 = torch.load(out / "rank1.weights.pt", weights_only=True)
    single = train(cfg, tmp_path / "single", progress=False).head.state_dict()
    assert w0.keys() == w1.keys() == single.keys()
    for k in w0:
        # DDP broadcasts the initial weights and all-reduces gradients: the ranks agree exactly.
        assert torch.equal(w0[k], w1[k]), k
    redundant = _redundant_biases(w0)
    assert len(redundant) == 4  # the four decoder conv blocks of patch 8
    moved = 0
    for k in w0:
        if not w0[k].is_floating_point():
            assert torch.equal(w0[k], single[k]), k  # num_batches_tracked
        elif k in redundant:
            assert (w0[k] - single[k]).abs().max() <= 2 * STEPS * lr, k
        elif k.endswith("running_mean"):
            # running mean = momentum-weighted batch means, which include the redundant bias.
            assert (w0[k] - single[k]).abs().max() <= 0.1 * 2 * STEPS * lr + 1e-5, k
        else:
            torch.testing.assert_close(w0[k], single[k], atol=1e-5, rtol=1e-5, msg=k)
            moved += 1
    assert moved > 20
    assert (out / "last.pt").is_file() and (out / "log.csv").is_file()
