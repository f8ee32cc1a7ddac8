"""paperlib.backbones.weights: official checkpoints (plain, DINO-wrapped, iBOT) load as the same backbone,
and files of the wrong keys, shapes or kind give one clear error naming them."""

from __future__ import annotations

import argparse
import hashlib

import pytest
import torch
from random_vit import random_images, vit, weights_dir  # noqa: F401 (vit, weights_dir are fixtures)

from paperlib.backbones.registry import load_backbone
from paperlib.backbones.weights import read_state_dict
from paperlib.checks import InputError


def test_official_file_gives_identical_features(vit, weights_dir):
    path = weights_dir / "dino_deitsmall16_pretrain.pth"
    loaded = load_backbone("dino_vits16", weights=path)
    images = random_images(8, 64, 64)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)
    assert loaded.weights_id == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert not any(p.requires_grad for p in loaded.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())


@pytest.mark.parametrize("name,file", [("dino_vits16", "wrapped.pth"),
                                       ("ibot_vits16", "ibot_vits16_checkpoint_teacher.pth")])
def test_wrapped_checkpoints_load_the_teacher_backbone(vit, weights_dir, name, file):
    loaded = load_backbone(name, weights=weights_dir / file)
    images = random_images(9, 48, 48, B=1)
    assert torch.equal(loaded.features(images).keys, vit.features(images).keys)


def test_read_state_dict_strips_wrappers_prefixes_and_heads(weights_dir, vit):
    state = read_state_dict(weights_dir / "wrapped.pth")
    assert set(state) == set(vit.model.state_dict())
    assert torch.equal(state["cls_token"], vit.model.cls_token)  # the teacher, not the student


def test_wrong_keys_name_the_file_and_the_keys(vit, tmp_path):
    state = dict(vit.model.state_dict())
    state["extra.weight"] = state.pop("norm.weight")
    state["pos_embed"] = state["pos_embed"][:, :50]
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as err:
        load_backbone("dino_vits16", weights=path)
    message = str(err.value)
    for part in ("odd.pth", "missing keys norm.weight", "unexpected keys extra.weight",
                 "wrong shape pos_embed"):
        assert part in message


def test_vit_s_file_does_not_load_into_vit_b(weights_dir):
    with pytest.raises(InputError, match=r"dino_deitsmall16_pretrain.pth: not a dino_vitb16 checkpoint: "
                                         r"keys of the wrong shape blocks.0.attn.proj.bias"):
        load_backbone("dino_vitb16", weights=weights_dir / "dino_deitsmall16_pretrain.pth")


def test_unreadable_and_unsafe_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth: not a readable torch checkpoint$"):
        load_backbone("dino_vits16", weights=tmp_path / "junk.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputError, match="empty.pth: not a readable torch checkpoint"):
        read_state_dict(tmp_path / "empty.pth")
    # A DINO full training checkpoint keeps its argparse.Namespace: not loadable with weights_only.
    torch.save({"args": argparse.Namespace(arch="vit_small")}, tmp_path / "full.pth")
    with pytest.raises(InputError, match=r"full.pth: holds Python objects besides tensors \(argparse.Namespace\)"):
        read_state_dict(tmp_path / "full.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "nostate.pth")
    with pytest.raises(InputError, match="nostate.pth: no state dict found"):
        read_state_dict(tmp_path / "nostate.pth")

