"""A random ViT-S/16, its official-format weight files and random images, shared by
test_vit.py, test_weights.py and test_backbones.py (import the fixtures by name)."""

from __future__ import annotations

import pytest
import torch

from paperlib.backbones.registry import load_backbone


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return load_backbone("dino_vits16", _random_init=True)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, vit):
    """The random ViT-S/16 under its official file name, plain and wrapped."""
    folder = tmp_path_factory.mktemp("weights")
    state = vit.model.state_dict()
    torch.save(state, folder / "dino_deitsmall16_pretrain.pth")
    # A DINO full-checkpoint shape: teacher and student, 'module.backbone.' prefixes, a projection
    # head, an epoch counter. The student is a different network: loading it would change the keys.
    teacher = {f"module.backbone.{k}": v for k, v in state.items()}
    teacher["module.head.mlp.0.weight"] = torch.zeros(8, 384)
    student = {f"module.backbone.{k}": -v for k, v in state.items()}
    torch.save({"student": student, "teacher": teacher, "epoch": 100}, folder / "wrapped.pth")
    # iBOT's checkpoint_teacher.pth shape: {'state_dict': backbone.* + head.*}, a masked embedding.
    ibot = {f"backbone.{k}": v for k, v in state.items()}
    ibot["backbone.masked_embed"] = torch.zeros(1, 384)
    ibot["head.last_layer.weight"] = torch.zeros(8, 256)
    torch.save({"state_dict": ibot}, folder / "ibot_vits16_checkpoint_teacher.pth")
    return folder


def random_images(seed: int, H: int, W: int, B: int = 2) -> torch.Tensor:
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed))

