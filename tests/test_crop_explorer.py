"""paperlib.viz.crop_explorer: one crop-zoom box of a training step, shown map by map, with each
predictor of paperlib.viz.crop_predictors as f (ImageFunction's own test is in test_crop_predictors.py)."""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")

import cv2
import numpy as np
import pytest
import torch
from figure_checks import assert_labelled_map, map_colorbar, panels, stray_outputs
from sempart_heads import SIZE, by_hand, contract_dict, photo, random_head, write

from paperlib.backbones.features import normalise
from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError
from paperlib.data.degrade import degrade_mask
from paperlib.losses.crop_zoom import CropBox, crop_consistency_loss, crop_zoom, teacher_target
from paperlib.refine.guided_filter import guided_filter
from paperlib.viz.crop_explorer import CropZoomExplorer, crop_explorer_sample, open_crop_explorer
from paperlib.viz.crop_predictors import ImageFunction, MaskSource, SempartPredictor


@pytest.fixture(scope="module")
def ex():
    return crop_explorer_sample(1, size=96)


def _t(a: np.ndarray) -> torch.Tensor:
    """(S, S) or (S, S, 3) -> (1, C, S, S)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


# --------------------------------------------------------------------------------------------
# The maps are the training code's

def test_views_are_what_the_training_functions_compute(ex):
    box = CropBox(20, 30, 24, 24)
    v = ex.views(box)
    S = 96
    for name in ("student", "student_crop", "teacher", "target", "error"):
        assert getattr(v, name).shape == (S, S), name
    assert v.image.shape == v.crop.shape == (S, S, 3) and v.box == box
    # The input is the uint8 image itself (already S x S: no resize).
    np.testing.assert_array_equal(v.image, ex.image.astype(np.float32) / 255)
    # I_c against OpenCV: INTER_LINEAR upscaling uses the same half-pixel centres.
    expected_crop = cv2.resize(v.image[20:44, 30:54], (S, S), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(v.crop, expected_crop, atol=1e-5)
    # The stand-in teacher by hand: the true mask's crop-zoom, spoilt at the crop's resolution.
    truth = ex.predictor.mask
    teacher = degrade_mask(crop_zoom(_t(truth), box, S)[0, 0].numpy(), "blocky16")
    np.testing.assert_allclose(v.teacher, teacher, atol=1e-6)
    # Target, student crop and loss from paperlib.losses.crop_zoom called directly.
    target = teacher_target(normalise(_t(v.crop)), torch.logit(_t(teacher), eps=1e-6))
    np.testing.assert_allclose(v.target, target[0, 0].numpy(), atol=1e-6)
    student_logits = torch.logit(_t(v.student), eps=1e-6)
    np.testing.assert_allclose(v.student_crop, crop_zoom(_t(v.student), box, S)[0, 0].numpy(), atol=1e-6)
    loss = float(crop_consistency_loss(student_logits, box, target))
    assert v.l_eq == pytest.approx(loss, rel=1e-4, abs=1e-9)
    np.testing.assert_allclose(v.error, (v.student_crop - v.target) ** 2, atol=1e-7)
    assert v.l_eq == pytest.approx(float(v.error.astype(np.float64).mean()), rel=1e-5)
    assert v.target.min() >= 1e-6 and v.target.max() <= 1 - 1e-6
    assert v.l_eq > 1e-3   # this box cuts the object's edge: the zoomed teacher disagrees


def test_offline_student_is_the_gf_explorers_degraded_mask(ex):
    from paperlib.viz.gf_explorer import explorer_sample

    gf = explorer_sample(1, size=96)
    np.testing.assert_array_equal(ex.image, gf.image)
    np.testing.assert_allclose(ex.views().student, gf.mask, atol=1e-6)


def test_identity_box_gives_the_image_and_a_zero_loss_for_a_consistent_predictor(ex):
    S = 96
    whole = CropBox(0, 0, S, S)
    v = ex.views(whole)
    np.testing.assert_array_equal(v.crop, v.image)           # zoom 1: I_c == I
    # 'none': the teacher is CU(s_hat) = s_hat, so L_eq is what the guided filter changes.
    plain = CropZoomExplorer(ex.image, MaskSource(ex.predictor.mask, "none"), size=S)
    p = plain.views(whole)
    np.testing.assert_allclose(p.teacher, p.student, atol=1e-6)
    gf = guided_filter(_t(p.crop).mean(1, keepdim=True), _t(p.teacher), radius=9, eps=1e-3,
                       border="count").clamp(1e-6, 1 - 1e-6)
    assert p.l_eq == pytest.approx(float(((_t(p.student) - gf) ** 2).mean()), rel=1e-4)
    # A predictor the filter keeps (a constant map): L_eq = 0 for the identity box and any other.
    for predictor in (MaskSource(np.full((S, S), 0.3, np.float32), "none"),
                      ImageFunction(lambda im: np.full(im.shape[:2], 0.7, np.float32))):
        flat = CropZoomExplorer(ex.image, predictor, size=S)
        assert flat.views(whole).l_eq < 1e-12
        assert flat.views(CropBox(5, 7, 24, 24)).l_eq < 1e-12


# --------------------------------------------------------------------------------------------
# Boxes and a checkpoint, as training draws and runs them

@pytest.mark.parametrize("sampler, size", [("paper", 64), ("official", 240)])
def test_boxes_and_loss_are_those_of_the_training_step(tmp_path, monkeypatch, sampler, size):
    import paperlib.train.step as step_module
    from paperlib.train.config import TrainConfig
    from paperlib.train.step import train_step

    head = random_head(seed=2)
    ckpt = write(tmp_path, contract_dict(head))
    image = photo(size, size, seed=4)
    seen = []
    real_loss = step_module.crop_consistency_loss   # the loss the training step calls
    monkeypatch.setattr(step_module, "crop_consistency_loss",
                        lambda s, box, target: seen.append(box) or real_loss(s, box, target))
    # Batch of one, BatchNorm on this image's statistics in both passes: the explorer with
    # bn_mode='train' then sees exactly the step's student and teacher.
    config = TrainConfig(backbone="filterbank", image_size=size, resize_short=size + 8, crop=sampler,
                         teacher_bn_mode="train", seed=5, amp="off")
    student = copy.deepcopy(head).train()
    images = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    terms = train_step(student, load_backbone("filterbank"), torch.optim.SGD(student.parameters(), lr=0.0),
                       images, config=config, step=3)
    explorer = CropZoomExplorer(image, SempartPredictor.from_checkpoint(ckpt, bn_mode="train"), size=size,
                                sampler=sampler, seed=5)
    assert seen == [explorer.sample_box(3)]
    assert explorer.sample_box(3) != explorer.sample_box(4) or sampler == "official"
    side = size // 4 if sampler == "paper" else 160
    assert explorer.sample_box(3).height == side
    assert explorer.views(seen[0]).l_eq == pytest.approx(terms.eq, rel=1e-4)


def test_checkpoint_end_to_end(tmp_path):
    head = random_head(seed=1)
    ckpt = write(tmp_path, contract_dict(head))
    image = photo(80, 100, seed=6)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "photo.png")
    explorer = open_crop_explorer(checkpoint=ckpt, image_path=tmp_path / "photo.png", size=SIZE)
    assert "BatchNorm eval" in explorer.predictor.label and "step 123" in explorer.predictor.label
    box = explorer.sample_box(0)
    v = explorer.views(box)
    fine, _ = by_hand(head, image)                              # resize to 64, keys, head, sigmoid
    np.testing.assert_allclose(v.student, fine[0, 0].numpy(), atol=1e-5)
    # The teacher is the same head on the zoomed crop.
    crop = _t(v.crop)
    with torch.no_grad():
        teacher = head(load_backbone("filterbank").features(crop).keys, normalise(crop)).fine.sigmoid()
    np.testing.assert_allclose(v.teacher, teacher[0, 0].numpy(), atol=1e-5)
    # Identity box: the teacher sees the student's input and predicts the same map.
    whole = explorer.views(CropBox(0, 0, SIZE, SIZE))
    np.testing.assert_allclose(whole.teacher, whole.student, atol=1e-6)
    assert "L_eq" in panels(explorer.figure(box))[-1].get_title()


def test_your_own_image_and_mask_files(tmp_path):
    from PIL import Image

    image = photo(48, 64, seed=7)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:50] = 255
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "photo_mask.png")
    explorer = open_crop_explorer(image_path=tmp_path / "photo.png", mask_path=tmp_path / "photo_mask.png",
                                  degradation="none", size=32)
    v = explorer.views(CropBox(4, 4, 8, 8))
    # Image and mask are resized to S as PIL's antialiased bilinear resize does.
    expected = np.asarray(Image.fromarray(mask.astype(np.float32) / 255).resize((32, 32), Image.BILINEAR))
    np.testing.assert_allclose(v.student, expected, atol=1e-5)
    rgb = np.stack([np.asarray(Image.fromarray(image[..., c].astype(np.float32)).resize((32, 32), Image.BILINEAR))
                    for c in range(3)], axis=2) / 255
    np.testing.assert_allclose(v.image, rgb, atol=1e-5)
    np.testing.assert_allclose(v.teacher, v.student_crop, atol=1e-6)   # 'none': the teacher is CU(s_hat)


# --------------------------------------------------------------------------------------------
# Figures, widget, files

def test_figures_show_the_loss(ex):
    box = CropBox(20, 30, 24, 24)
    fig = ex.figure(box)
    maps = panels(fig)
    titles = [ax.get_title() for ax in maps]
    assert len(titles) == 8 and titles[1].endswith("zoom x4") and f"{ex.views(box).l_eq:.4g}" in titles[-1]
    assert fig.get_suptitle()
    for ax in maps[:2]:                                      # I and I_c: RGB, no colour bar
        assert map_colorbar(ax) is None
    for ax in maps[2:6] + maps[7:]:                          # masks and the squared error
        assert_labelled_map(ax)
    assert_labelled_map(maps[6], diverging=True)             # GF(f(I_c)) - f(I_c)
    grid = ex.grid_figure(range(2))
    grid_maps = panels(grid)
    assert len(grid_maps) == 10 and f"{ex.views(ex.sample_box(1)).l_eq:.4g}" in grid_maps[9].get_title()
    for ax in grid_maps[2:5] + grid_maps[7:]:
        assert_labelled_map(ax)
    table = ex.losses(range(3))
    assert list(table.step) == [0, 1, 2] and table.l_eq[2] == pytest.approx(ex.views(ex.sample_box(2)).l_eq)


def test_widget_redraws_once_per_change(ex, monkeypatch):
    calls = []
    original = CropZoomExplorer.figure
    monkeypatch.setattr(CropZoomExplorer, "figure", lambda self, box: calls.append(box) or original(self, box))
    box = ex.widget(CropBox(10, 70, 24, 24))
    top, left, side, sampler, resample, image = box.children
    assert calls == [CropBox(10, 70, 24, 24)] and (left.max, side.max) == (72, 96)
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    assert list(sampler.options) == ["paper"]                # 'official' needs S >= 240
    top.value = 12
    assert calls[-1] == CropBox(12, 70, 24, 24)
    side.value = 40                                          # left 70 no longer fits: clamped to 56
    assert calls[-1] == CropBox(12, 56, 40, 40) and len(calls) == 3
    resample.click()
    assert calls[-1] == ex.sample_box(1) and len(calls) == 4
    resample.click()
    assert calls[-1] == ex.sample_box(2) and len(calls) == 5
    assert bytes(image.value) != first


def test_notebook_runs_offline(tmp_path):
    from notebook_runs import run

    done = run("crop_zoom_explorer", tmp_path, {"size": 128, "n_boxes": 3, "n_grid": 2})
    assert not stray_outputs(done.executed)
    assert (tmp_path / "figures" / "crop_zoom_explorer.png").is_file()
    assert (tmp_path / "figures" / "crop_zoom_explorer_grid.png").is_file()


# --------------------------------------------------------------------------------------------
# Errors

def test_bad_inputs_name_the_parameter(ex, tmp_path):
    S = 96
    with pytest.raises(InputError, match="inside the 96 x 96 image"):
        ex.views(CropBox(80, 0, 24, 24))
    with pytest.raises(InputError, match="box must be a CropBox"):
        ex.views((1.0, 2, 3, 4))
    with pytest.raises(InputError, match="positive height"):
        ex.views(CropBox(0, 0, 0, 4))
    with pytest.raises(InputError, match="image must be"):
        CropZoomExplorer(ex.image.astype(np.float32), ex.predictor, size=S)
    with pytest.raises(InputError, match="mask source's mask"):
        CropZoomExplorer(ex.image[:-1], ex.predictor, size=S)
    with pytest.raises(InputError, match="predictor"):
        CropZoomExplorer(ex.image, ex.predictor.mask, size=S)
    with pytest.raises(InputError, match="sampler 'official'.*>= 240"):
        CropZoomExplorer(ex.image, ex.predictor, size=S, sampler="official")
    with pytest.raises(InputError, match="sampler must be one of"):
        CropZoomExplorer(ex.image, ex.predictor, size=S, sampler="random")
    with pytest.raises(InputError, match="degradation"):
        MaskSource(ex.predictor.mask, "blocky7")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        MaskSource(ex.predictor.mask * 2)
    with pytest.raises(InputError, match="fn must return a \\(96, 96\\) mask"):
        CropZoomExplorer(ex.image, ImageFunction(lambda im: im[:-1, :, 0] / 255.0), size=S)
    with pytest.raises(InputError, match="step"):
        ex.sample_box(-1)
    with pytest.raises(InputError, match="square"):
        ex.widget(CropBox(0, 0, 10, 20))
    ckpt = write(tmp_path, contract_dict(random_head()))
    with pytest.raises(InputError, match="patch size 8"):
        open_crop_explorer(checkpoint=ckpt, size=60)
    with pytest.raises(InputError, match="bn_mode"):
        SempartPredictor.from_checkpoint(ckpt, bn_mode="batch")
    with pytest.raises(InputError, match="not both"):
        open_crop_explorer(checkpoint=ckpt, image_path="a.png", mask_path="a_mask.png")
    with pytest.raises(InputError, match="needs a mask_path"):
        open_crop_explorer(image_path="a.png")
