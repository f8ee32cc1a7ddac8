"""Tests of paperlib.model.sempart: the checkpoint contract (read, load, save) and the protocol registry."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sempart_heads import SIZE, by_hand, contract_dict, method_for, photo, random_head, write

from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError
from paperlib.methods.sempart import PROTOCOLS, EvalProtocol, SempartMethod
from paperlib.model.head import SempartHead
from paperlib.model.sempart import SEMPART_FORMAT, load_sempart, read_checkpoint, save_sempart

# ----------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("with_head", [True, False])
def test_checkpoint_round_trip_matches_the_head_run_by_hand(tmp_path, with_head):
    head = random_head()
    model = load_sempart(write(tmp_path, contract_dict(head, with_head=with_head)))
    assert (model.image_size, model.resize_short, model.step, model.epoch) == (SIZE, 72, 123, 4)
    assert model.config["lr"] == 1e-4 and model.config["head"] == {"dim": 16, "patch_size": 8}
    for k, v in head.state_dict().items():
        assert torch.equal(model.head.state_dict()[k], v), k

    image = photo(45, 70)
    pred = SempartMethod(model).predict(image)
    fine, coarse = by_hand(head, image)
    if fine.mean() > 0.5:   # a single image: its own polarity
        fine, coarse = 1 - fine, 1 - coarse
    expected = F.interpolate(fine, size=(45, 70), mode="bilinear", align_corners=False,
                             antialias=True)[0, 0].numpy()
    assert pred.mask.shape == (45, 70) and pred.mask.dtype == np.float32
    np.testing.assert_allclose(pred.mask, expected, atol=1e-5)
    np.testing.assert_allclose(pred.patch_mask, coarse[0, 0].numpy(), atol=1e-5)


def test_save_sempart_writes_the_contract(tmp_path):
    head = random_head(seed=3)
    path = tmp_path / "sub" / "last.pt"
    save_sempart(path, head, backbone="filterbank", image_size=SIZE, resize_short=72, step=7,
                 config={"lr": 1e-4})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == SEMPART_FORMAT == "paperlib-sempart-1"
    assert raw["config"] == {"lr": 1e-4, "backbone": "filterbank", "image_size": SIZE,
                             "resize_short": 72, "head": {"dim": 16, "patch_size": 8}}
    assert raw["step"] == 7 and "epoch" not in raw
    image = photo(40, 33, seed=1)
    a = SempartMethod(load_sempart(path)).predict(image)
    b = method_for(tmp_path, head).predict(image)
    np.testing.assert_array_equal(a.mask, b.mask)


def bad_checkpoints(tmp_path):
    good = contract_dict(random_head())
    no_image_size = copy.deepcopy(good)
    del no_image_size["config"]["image_size"]
    wrong_dim = copy.deepcopy(good)
    wrong_dim["model"] = SempartHead(32, 8).state_dict()
    wrong_dim["config"]["head"]["dim"] = 32
    missing_param = copy.deepcopy(good)
    del missing_param["model"]["fine_head.bias"]
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a torch file\x00\x01")
    return [
        (tmp_path / "absent.pt", "does not exist"),
        (garbage, "cannot be read as a PyTorch file"),
        (write(tmp_path, {"weights": torch.zeros(2)}, "plain.pt"), "not a paperlib Sempart checkpoint"),
        (write(tmp_path, torch.zeros(3), "tensor.pt"), "not a paperlib Sempart checkpoint"),
        (write(tmp_path, {**good, "format": "other-2"}, "fmt.pt"), "format 'other-2'"),
        (write(tmp_path, {k: v for k, v in good.items() if k != "model"}, "nomodel.pt"),
         "lacks the 'model' entry"),
        (write(tmp_path, no_image_size, "nosize.pt"), "config lacks 'image_size'"),
        (write(tmp_path, {**good, "config": {**good["config"], "backbone": "resnet"}}, "bb.pt"),
         "backbone 'resnet'"),
        (write(tmp_path, wrong_dim, "dim.pt"), "dim 32, patch 8 features"),
        (write(tmp_path, missing_param, "param.pt"), "does not fit SempartHead"),
    ]


def test_bad_checkpoints_raise_input_errors_naming_the_file(tmp_path):
    for path, what in bad_checkpoints(tmp_path):
        with pytest.raises(InputError) as err:
            load_sempart(path)
        message = str(err.value)
        assert str(path) in message and what in message, (path, message)


def test_a_backbone_that_does_not_fit_the_head_is_refused(tmp_path):
    path = write(tmp_path, contract_dict(random_head()))
    with pytest.raises(InputError, match=re.escape(str(path)) + ".*filterbank16"):
        load_sempart(path, backbone=load_backbone("filterbank16"))
    model = load_sempart(path, backbone=load_backbone("filterbank"))   # the same kind is fine
    assert model.backbone.name == "filterbank"


def test_read_checkpoint_derives_the_head_from_the_backbone(tmp_path):
    ckpt = read_checkpoint(write(tmp_path, contract_dict(random_head(), with_head=False)))
    assert ckpt["config"]["head"] == {"dim": 16, "patch_size": 8}


# ----------------------------------------------------------------------------- protocols

def test_protocol_registry_and_validation():
    assert set(PROTOCOLS) == {"default", "official"}
    assert PROTOCOLS["default"] == EvalProtocol("eval", "batch", "full", 8, None)
    # the released code's protocol (docs/paper_and_code.md#evaluation-protocol); resize_short None:
    # image_size + 15, i.e. 335 for the paper's 320
    assert PROTOCOLS["official"] == EvalProtocol("train", "batch", "center320", 8, None)
    for bad in (dict(bn_mode="test"), dict(polarity="pixel"), dict(resolution="half"),
                dict(batch_size=0), dict(resize_short=0)):
        with pytest.raises(InputError):
            EvalProtocol(**bad)
    with pytest.raises(Exception):
        PROTOCOLS["default"].bn_mode = "train"   # frozen
