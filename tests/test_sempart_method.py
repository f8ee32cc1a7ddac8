"""Tests of paperlib.methods.sempart: forward, polarity, BatchNorm mode, frames, boxes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sempart_heads import SIZE, by_hand, method_for, photo, random_head

from paperlib.checks import InputError
from paperlib.eval.corloc import box_iou
from paperlib.methods.sempart import PROTOCOLS, EvalProtocol, apply_polarity, center_crop_view
from paperlib.model.head import SempartHead


def brightness_head() -> SempartHead:
    """A head whose fine logit is 10 x the sum of the normalised RGB: white -> 1, black -> 0."""
    head = random_head()
    with torch.no_grad():
        head.fine_head.weight.zero_()
        head.fine_head.weight[:, -3:] = 10.0   # the last 3 input channels are the image
        head.fine_head.bias.zero_()
    return head


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


# ----------------------------------------------------------------------------- frames

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
    # The released evaluation resizes to img_size + 15 (335 at 320), whatever the checkpoint's
    # training resize (72 here): the crop keeps the same share of the image at every size.
    expected = center_crop_view(image, mask, resize_short=SIZE + 15, crop=SIZE)
    np.testing.assert_array_equal(view.image, expected.image)
    np.testing.assert_array_equal(view.mask, expected.mask)
    from dataclasses import replace

    fixed = method_for(tmp_path, random_head(), replace(PROTOCOLS["official"], resize_short=335))
    np.testing.assert_array_equal(fixed.view(image, mask).image,
                                  center_crop_view(image, mask, resize_short=335, crop=SIZE).image)
    assert official.predict(view.image).mask.shape == (SIZE, SIZE)


def test_bad_images_are_refused(tmp_path):
    method = method_for(tmp_path, random_head())
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), [[0, 0, 0]]):
        with pytest.raises(InputError, match="uint8"):
            method.predict(bad)
    with pytest.raises(InputError, match="empty"):
        method.predict_batch([])


def test_trick_one_runs_on_the_model_frame_by_default(tmp_path):
    """refine_at='model': GF on the 64 px input and its fine map, then resized to the image."""
    from dataclasses import replace

    from paperlib.images import resize_mask
    from paperlib.methods.refined import refine_prediction
    from paperlib.refine.masks import refine_mask

    image = photo(90, 120)
    model_side = method_for(tmp_path, random_head())
    pred = model_side.predict(image)
    frame_image, frame_mask = pred.refine_frame
    assert frame_image.shape == (SIZE, SIZE, 3) and frame_image.dtype == np.uint8
    assert frame_mask.shape == (SIZE, SIZE)
    expected = np.clip(resize_mask(refine_mask(frame_image, frame_mask), (90, 120)), 0, 1)
    np.testing.assert_allclose(refine_prediction(image, pred, refine="gf"), expected, atol=1e-6)
    full_side = method_for(tmp_path, random_head(), replace(PROTOCOLS["default"], refine_at="full"))
    full_pred = full_side.predict(image)
    assert full_pred.refine_frame is None
    np.testing.assert_allclose(refine_prediction(image, full_pred, refine="gf"),
                               refine_mask(image, full_pred.mask), atol=1e-6)
    assert not np.allclose(refine_prediction(image, pred, refine="gf"),
                           refine_prediction(image, full_pred, refine="gf"), atol=1e-3)
