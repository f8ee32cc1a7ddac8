"""The accelerator code paths of paperlib.train.loop (bf16 autocast, channels-last, torch.compile), run on the CPU.

On a GPU these are the defaults or the speed options; here they run the same code through
``amp='bf16'`` (CPU autocast) and inductor's CPU backend, so that a GPU user's first run is not
their first test. 32 x 32 inputs on the offline filter bank, as in test_train.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError
from paperlib.model.head import SempartHead
from paperlib.train.config import LOG_TERMS, config_from
from paperlib.train.loop import train
from paperlib.train.runtime import autocast_dtype
from paperlib.train.state import load_checkpoint
from paperlib.train.step import validate

TINY = dict(image_size=32, resize_short=36, batch_size=4, val_fraction=0.1, select_on="none")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    return root


def tiny(data_root, **overrides):
    return config_from("smoke", data_root=data_root, **{**TINY, **overrides})


@pytest.fixture(scope="module")
def fp32_run(data_root, tmp_path_factory):
    return train(tiny(data_root, max_steps=3, amp="off"), tmp_path_factory.mktemp("fp32"), progress=False)


def test_autocast_dtype_of_each_mode():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)  # a device object needs no GPU
    assert autocast_dtype("auto", cpu) is None
    assert autocast_dtype("auto", cuda) is torch.bfloat16
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("off", cuda) is None
    with pytest.raises(InputError, match="amp"):
        autocast_dtype("fp16", cpu)
    with pytest.raises(InputError, match="amp"):
        config_from("smoke", amp=True)  # the mode is named, not a flag


def test_bf16_autocast_trains_like_float32(data_root, tmp_path, fp32_run):
    run = train(tiny(data_root, max_steps=3, amp="bf16"), tmp_path / "bf16", progress=False)
    ref = fp32_run.losses
    assert all(math.isfinite(v) for s in run.losses for v in s)
    # Step 1 starts from the same weights on the same batch: the terms differ by bf16 rounding
    # only (8 bits of mantissa: relative 2^-8 per operation, a few per cent through the head) ...
    rel = []
    for term in LOG_TERMS:
        a, b = getattr(run.losses[0], term), getattr(ref[0], term)
        assert abs(a - b) <= 0.05 * abs(b) + 1e-4, (term, a, b)
        rel.append(abs(a - b) / max(abs(b), 1e-12))
    # ... and they do differ, far beyond float32 reordering (~1e-7): autocast did run.
    assert max(rel) > 1e-4, rel
    assert run.head.fine_head.weight.dtype == torch.float32  # autocast keeps float32 master weights


def test_channels_last_is_only_a_layout(data_root, tmp_path, fp32_run):
    run = train(tiny(data_root, max_steps=3, amp="off", channels_last=True), tmp_path / "cl", progress=False)
    got = np.array([tuple(s) for s in run.losses])
    want = np.array([tuple(s) for s in fp32_run.losses])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-7)   # same weights: reordering only
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-5)         # AdamW magnifies it a little
    assert run.head.fine_head.weight.is_contiguous(memory_format=torch.channels_last)


class _AutocastSpy(torch.nn.Module):
    """Wraps a head and records whether autocast was on in each forward."""

    def __init__(self, head):
        super().__init__()
        self.head, self.seen = head, []

    def forward(self, keys, image):
        self.seen.append(torch.is_autocast_enabled(keys.device.type))
        return self.head(keys, image)


def test_validate_under_bf16_agrees_with_float32(data_root, fp32_run):
    from paperlib.data.saliency import open_dataset
    from paperlib.train.data import EvalDataset

    cfg = tiny(data_root)
    source = open_dataset("duts-tr", data_root)
    loader = torch.utils.data.DataLoader(EvalDataset(source, range(8), cfg), batch_size=4)
    backbone = load_backbone("filterbank")
    spy = _AutocastSpy(fp32_run.head)
    iou32 = validate(spy, backbone, loader, amp="off")
    iou16 = validate(spy, backbone, loader, amp="bf16")
    assert spy.seen == [False, False, True, True]
    assert 0.0 <= iou16 <= 1.0
    assert abs(iou16 - iou32) < 0.02, (iou16, iou32)


@pytest.mark.slow
def test_compiled_head_trains_like_the_eager_one(data_root, tmp_path, fp32_run):
    # inductor's CPU backend: the same graph capture and kernels generation a GPU run goes through.
    from torch._dynamo.utils import counters

    counters.clear()
    run = train(tiny(data_root, max_steps=3, amp="off", compile=True), tmp_path / "compiled", progress=False)
    got = np.array([tuple(s) for s in run.losses])
    want = np.array([tuple(s) for s in fp32_run.losses])
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)  # inductor reassociates sums
    assert counters["stats"]["unique_graphs"] >= 2  # compiled indeed: BatchNorm's train and eval graphs
    # Checkpoints hold the plain head's names, not the compiled wrapper's ('_orig_mod.').
    state = load_checkpoint(tmp_path / "compiled" / "last.pt")["model"]
    assert state.keys() == fp32_run.head.state_dict().keys()
    # Weight by weight, AdamW's sign-like steps amplify rounding in near-zero gradients, so
    # compare what the weights do: the two trained heads' outputs agree far more closely than
    # either differs from the untrained head (measured: 7e-4 against 6.6e-2).
    backbone = load_backbone("filterbank")
    heads = {}
    for name, weights in (("compiled", state), ("eager", fp32_run.head.state_dict()),
                          ("init", load_checkpoint(tmp_path / "compiled" / "init.pt")["model"])):
        heads[name] = SempartHead(backbone.dim, backbone.patch_size)
        heads[name].load_state_dict(weights)
        heads[name].eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    keys = backbone.features(x).keys
    with torch.no_grad():
        out = {name: head(keys, x).fine for name, head in heads.items()}
    moved = (out["eager"] - out["init"]).abs().max()
    assert (out["compiled"] - out["eager"]).abs().max() < 0.05 * moved
