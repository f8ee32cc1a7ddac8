"""Hand-built Sempart heads, checkpoints and images shared by test_head.py, test_sempart.py and
test_sempart_method.py."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from paperlib.backbones.registry import load_backbone
from paperlib.methods.sempart import EvalProtocol, SempartMethod
from paperlib.model.head import SempartHead
from paperlib.model.sempart import load_sempart

SIZE = 64          # a small training size keeps the tests fast: an 8 x 8 grid at patch 8
FILTERBANK_DIM = 16


def randomised_head(*args, seed: int = 0, dtype: torch.dtype = torch.float64,
                    **kwargs) -> SempartHead:
    """A head whose every parameter and BatchNorm statistic is perturbed away from its init.

    LayerNorm weights start at 1 and biases at 0, BatchNorm running stats at 0 / 1: a reference
    that mixed them up would still agree with the defaults, so they are all made random.
    """
    torch.manual_seed(seed)
    head = SempartHead(*args, **kwargs).to(dtype)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in head.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.1 * torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand_like(buf))
    return head


def random_head(seed: int = 0) -> SempartHead:
    """A filterbank-sized float32 head in eval mode, moved off its init (see randomised_head)."""
    return randomised_head(FILTERBANK_DIM, 8, seed=seed, dtype=torch.float32).eval()


def contract_dict(head: SempartHead, *, with_head: bool = True) -> dict:
    """A checkpoint written by hand from the contract (not by save_sempart)."""
    config = {"backbone": "filterbank", "image_size": SIZE, "resize_short": 72, "lr": 1e-4}
    if with_head:
        config["head"] = {"dim": FILTERBANK_DIM, "patch_size": 8}
    return {"format": "paperlib-sempart-1", "config": config, "model": head.state_dict(),
            "step": 123, "epoch": 4}


def write(tmp_path, ckpt, name="head.pt"):
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def method_for(tmp_path, head, protocol=EvalProtocol()):
    return SempartMethod(load_sempart(write(tmp_path, contract_dict(head))), protocol=protocol)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def by_hand(head: SempartHead, image: np.ndarray, *, train_bn: bool = False):
    """The model written out: resize to SIZE, filterbank keys, ImageNet-normalise, head, sigmoid."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    keys = load_backbone("filterbank").features(x.clamp(0, 1)).keys
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
    head = copy.deepcopy(head).train(train_bn)
    with torch.no_grad():
        out = head(keys, (x - mean) / std)
    return out.fine.sigmoid(), out.coarse.sigmoid()
