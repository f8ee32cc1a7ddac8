"""Tests of paperlib.sempart: checkpoint contract, forward, polarity, BatchNorm mode, frames, boxes."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from paperlib.backbones import load_backbone
from paperlib.corloc import box_iou
from paperlib.head import SempartHead
from paperlib.sempart import (PROTOCOLS, SEMPART_FORMAT, EvalProtocol, SempartMethod, apply_polarity,
                              center_crop_view, load_sempart, read_checkpoint, save_sempart)
from paperlib.validation import InputError

SIZE = 64          # a small training size keeps the tests fast: an 8 x 8 grid at patch 8
FILTERBANK_DIM = 16


def random_head(seed: int = 0) -> SempartHead:
    """A filterbank-sized head with every parameter and BatchNorm statistic moved off its init."""
    torch.manual_seed(seed)
    head = SempartHead(FILTERBANK_DIM, 8)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in head.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.3 * torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand_like(buf))
    return head.eval()


def brightness_head() -> SempartHead:
    """A head whose fine logit is 10 x the sum of the normalised RGB: white -> 1, black -> 0."""
    head = random_head()
    with torch.no_grad():
        head.fine_head.weight.zero_()
        head.fine_head.weight[:, -3:] = 10.0   # the last 3 input channels are the image
        head.fine_head.bias.zero_()
    return head


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


# ----------------------------------------------------------------------------- polarity

def test_apply_polarity_batch_and_image_rules():
    fine = torch.stack([torch.full((1, 4, 4), 0.9), torch.full((1, 4, 4), 0.2)])   # means 0.9, 0.2
    coarse = torch.stack([torch.full((1, 2, 2), 0.7), torch.full((1, 2, 2), 0.1)])
    f, c, inv = apply_polarity(fine, coarse, rule="batch")   # batch mean 0.55 > 0.5: both flip
    assert inv.tolist() == [True, True]
    assert torch.allclose(f[:, 0, 0, 0], torch.tensor([0.1, 0.8]))
    assert torch.allclose(c[:, 0, 0, 0], torch.tensor([0.3, 0.9]))
    f, c, inv = apply_polarity(fine, coarse, rule="image")
    assert inv.tolist() == [True, False]
    assert torch.allclose(f[:, 0, 0, 0], torch.tensor([0.1, 0.2]))
    assert torch.allclose(c[:, 0, 0, 0], torch.tensor([0.3, 0.1]))
    f, _, inv = apply_polarity(fine[1:], coarse[1:], rule="batch")   # 0.2 <= 0.5: untouched
    assert inv.tolist() == [False] and torch.equal(f, fine[1:])


def test_a_head_that_marks_everything_is_inverted(tmp_path):
    head = random_head()
    with torch.no_grad():
        head.fine_head.bias.fill_(50.0)     # fine sigmoid ~ 1 everywhere
        head.coarse_head.weight.zero_()
        head.coarse_head.bias.fill_(-50.0)  # coarse sigmoid ~ 0, flipped with the fine mask
    method = method_for(tmp_path, head)
    pred = method.predict(photo(30, 41))
    assert pred.mask.max() < 1e-6 and pred.patch_mask.min() > 1 - 1e-6
    assert pred.box is None and method.discover(photo(30, 41)) is None   # nothing foreground


def test_batch_and_image_polarity_differ_on_a_crafted_batch(tmp_path):
    white = np.full((24, 40, 3), 255, np.uint8)
    black = np.zeros((33, 17, 3), np.uint8)
    batch = [white, white, black]            # fine means ~1, ~1, ~0: batch mean 2/3
    by_batch = method_for(tmp_path, brightness_head()).predict_batch(batch)
    by_image = method_for(tmp_path, brightness_head(),
                          EvalProtocol(polarity="image")).predict_batch(batch)
    assert [p.mask.mean().round(3) for p in by_batch] == [0.0, 0.0, 1.0]   # all three flipped
    assert [p.mask.mean().round(3) for p in by_image] == [0.0, 0.0, 0.0]   # only the white ones
    assert [p.mask.shape for p in by_batch] == [(24, 40), (24, 40), (33, 17)]
    # Batches of 2: [white, white] flips, [black] alone does not.
    pairs = method_for(tmp_path, brightness_head(),
                       EvalProtocol(batch_size=2)).predict_batch(batch)
    assert [p.mask.mean().round(3) for p in pairs] == [0.0, 0.0, 0.0]
    # One image at a time, the batch rule is the image rule.
    single = method_for(tmp_path, brightness_head()).predict(black)
    np.testing.assert_array_equal(single.mask, by_image[2].mask)


# ----------------------------------------------------------------------------- BatchNorm mode

def test_bn_train_mode_uses_batch_statistics_and_leaves_the_model_unchanged(tmp_path):
    head = random_head(seed=1)
    train = method_for(tmp_path, head, EvalProtocol(bn_mode="train", polarity="image"))
    evalm = method_for(tmp_path, head, EvalProtocol(bn_mode="eval", polarity="image"))
    before = copy.deepcopy(train.model.head.state_dict())
    images = [photo(40, 40, seed=1), photo(56, 48, seed=2)]
    p_train = train.predict_batch(images)
    p_eval = evalm.predict_batch(images)
    assert np.abs(p_train[0].mask - p_eval[0].mask).max() > 1e-3
    for k, v in before.items():                 # running statistics were restored
        assert torch.equal(train.model.head.state_dict()[k], v), k
    assert not any(m.training for m in train.model.modules())

    # Reference: the head in train mode on the same (resized) pair, polarity per image.
    fine, _ = by_hand(head, images[0], train_bn=True)   # batch of one: its own statistics
    alone = train.predict(images[0])
    if fine.mean() > 0.5:
        fine = 1 - fine
    expected = F.interpolate(fine, size=(40, 40), mode="bilinear", align_corners=False,
                             antialias=True)[0, 0]
    np.testing.assert_allclose(alone.mask, expected.numpy(), atol=1e-5)
    # In train mode a prediction depends on the other images of its batch.
    assert np.abs(alone.mask - p_train[0].mask).max() > 1e-4
    # In eval mode it does not.
    np.testing.assert_allclose(evalm.predict(images[0]).mask, p_eval[0].mask, atol=1e-5)


# ----------------------------------------------------------------------------- sizes and boxes

@pytest.mark.parametrize("size", [(37, 53), (1, 9), (101, 63)])
def test_masks_come_back_at_the_image_size(tmp_path, size):
    pred = method_for(tmp_path, random_head()).predict(photo(*size))
    assert pred.mask.shape == size and pred.mask.dtype == np.float32
    assert pred.patch_mask.shape == (SIZE // 8, SIZE // 8) and pred.patch_mask.dtype == np.float32
    assert 0.0 <= pred.mask.min() and pred.mask.max() <= 1.0


def test_discover_boxes_the_bright_object_in_image_pixels(tmp_path):
    image = np.zeros((90, 130, 3), np.uint8)
    image[30:60, 40:100] = 255                # the object, xyxy (40, 30, 100, 60)
    method = method_for(tmp_path, brightness_head())
    box = method.discover(image)
    assert box is not None and box.shape == (4,)
    assert 0 <= box[0] < box[2] <= 130 and 0 <= box[1] < box[3] <= 90
    assert box_iou(box, np.array([40, 30, 100, 60])) >= 0.5     # a CorLoc hit
    # Cells are 130/8 = 16.25 x 90/8 = 11.25 pixels: the box is the object to within one cell.
    cell = np.array([16.25, 11.25, -16.25, -11.25])
    inner, outer = np.array([40, 30, 100, 60]) + cell, np.array([40, 30, 100, 60]) - cell
    assert box[0] <= inner[0] and box[1] <= inner[1] and box[2] >= inner[2] and box[3] >= inner[3]
    assert box[0] >= outer[0] and box[1] >= outer[1] and box[2] <= outer[2] and box[3] <= outer[3]
    # Box edges lie on the patch grid of the resized image, scaled back: multiples of H/8, W/8.
    np.testing.assert_allclose(np.array(box[[1, 3]]) / (90 / 8) % 1, 0, atol=1e-9)
    np.testing.assert_allclose(np.array(box[[0, 2]]) / (130 / 8) % 1, 0, atol=1e-9)
    np.testing.assert_array_equal(method.predict(image).box, box)


# ----------------------------------------------------------------------------- protocols and frames

def test_protocol_registry_and_validation():
    assert set(PROTOCOLS) == {"default", "official"}
    assert PROTOCOLS["default"] == EvalProtocol("eval", "batch", "full", 8)
    assert PROTOCOLS["official"] == EvalProtocol("train", "batch", "center320", 8)
    for bad in (dict(bn_mode="test"), dict(polarity="pixel"), dict(resolution="half"),
                dict(batch_size=0)):
        with pytest.raises(InputError):
            EvalProtocol(**bad)
    with pytest.raises(Exception):
        PROTOCOLS["default"].bn_mode = "train"   # frozen


def test_center_crop_view_matches_pil_resize_and_crop():
    image = photo(100, 200, seed=5)
    mask = (np.arange(200)[None, :] / 199.0 * np.ones((100, 1))).astype(np.float32)
    view = center_crop_view(image, mask, resize_short=40, crop=32)
    # torchvision Resize(40): (40, int(40 * 200 / 100)) = (40, 80); CenterCrop(32): top 4, left 24.
    ref = np.asarray(Image.fromarray(image).resize((80, 40), Image.BILINEAR))[4:36, 24:56]
    assert view.image.shape == (32, 32, 3) and view.image.dtype == np.uint8
    assert np.abs(view.image.astype(int) - ref.astype(int)).max() <= 2
    ref_mask = np.asarray(Image.fromarray(mask, mode="F").resize((80, 40), Image.BILINEAR))[4:36, 24:56]
    np.testing.assert_allclose(view.mask, ref_mask, atol=2e-3)
    tall = center_crop_view(photo(81, 40), None, resize_short=40, crop=32)  # (81, 40) -> (81, 40)
    assert tall.image.shape == (32, 32, 3) and tall.mask is None
    with pytest.raises(InputError):
        center_crop_view(image, mask[:, :10])


def test_method_view_follows_the_protocol(tmp_path):
    image, mask = photo(90, 120), np.zeros((90, 120), np.float32)
    full = method_for(tmp_path, random_head()).view(image, mask)
    assert full.image is image and full.mask.shape == (90, 120)
    official = method_for(tmp_path, random_head(), PROTOCOLS["official"])
    view = official.view(image, mask)
    assert view.image.shape == (SIZE, SIZE, 3) and view.mask.shape == (SIZE, SIZE)
    expected = center_crop_view(image, mask, resize_short=72, crop=SIZE)
    np.testing.assert_array_equal(view.image, expected.image)
    assert official.predict(view.image).mask.shape == (SIZE, SIZE)


def test_bad_images_are_refused(tmp_path):
    method = method_for(tmp_path, random_head())
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), [[0, 0, 0]]):
        with pytest.raises(InputError, match="uint8"):
            method.predict(bad)
    with pytest.raises(InputError, match="empty"):
        method.predict_batch([])
