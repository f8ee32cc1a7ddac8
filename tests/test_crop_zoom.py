"""Tests of paperlib.losses.crop_zoom: geometry against OpenCV, samplers, target and L_eq gradients."""

from __future__ import annotations

import dataclasses
import inspect

import cv2
import numpy as np
import pytest
import torch

from paperlib.backbones.catalog import IMAGENET_MEAN, IMAGENET_STD
from paperlib.checks import InputError
from paperlib.losses.crop_zoom import (
    CROP_SAMPLERS,
    CropBox,
    crop_consistency_loss,
    crop_zoom,
    ncut_crop_loss,
    sample_crop_official,
    sample_crop_paper,
    teacher_target,
)
from paperlib.losses.ncut import affinity
from paperlib.losses.objective import ncut_loss
from paperlib.losses.settings import SEMPART_AFFINITY, AffinityParams
from paperlib.refine.guided_filter import (
    PAPER_GF,
    GuidedFilterSettings,
    check_radius,
    guided_filter,
    image_to_guide,
)

# ---------------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("box, size", [
    (CropBox(3, 5, 8, 8), (32, 32)),     # x4, the paper's zoom
    (CropBox(0, 2, 16, 16), (32, 32)),   # x2, the official zoom
    (CropBox(4, 1, 7, 10), (19, 23)),    # non-integer, non-square
    (CropBox(1, 1, 20, 24), (10, 12)),   # shrink x2
])
def test_crop_zoom_matches_opencv(box, size):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 28, generator=g, dtype=torch.float64)
    out = crop_zoom(x, box, size)
    assert out.shape == (2, 3, *size)
    for b in range(2):
        for c in range(3):
            patch = x[b, c, box.top:box.top + box.height, box.left:box.left + box.width].numpy()
            # OpenCV's INTER_LINEAR: half-pixel centres, edge clamped, no antialiasing.
            expected = cv2.resize(patch, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_allclose(out[b, c].numpy(), expected, rtol=0, atol=1e-12)


def test_crop_zoom_of_a_ramp():
    # x[r, c] = r + 10 c is linear, so bilinear sampling returns it at the sampled position:
    # output row i of a x2 zoom reads source row top + clamp((i + .5) / 2 - .5, 0, height - 1).
    H, W = 12, 14
    r, c = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                          indexing="ij")
    x = (r + 10 * c)[None, None]
    box = CropBox(2, 3, 4, 5)
    out = crop_zoom(x, box, (8, 10))
    i = torch.arange(8, dtype=torch.float64)
    j = torch.arange(10, dtype=torch.float64)
    rows = box.top + ((i + 0.5) / 2 - 0.5).clamp(0, box.height - 1)
    cols = box.left + ((j + 0.5) / 2 - 0.5).clamp(0, box.width - 1)
    torch.testing.assert_close(out[0, 0], rows[:, None] + 10 * cols[None, :], rtol=0, atol=1e-12)


def test_crop_zoom_identity_box_and_int_size():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 9, 9, generator=g)
    assert torch.equal(crop_zoom(x, CropBox(0, 0, 9, 9), 9), x)


def test_crop_zoom_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: crop_zoom(x, CropBox(1, 2, 3, 4), (7, 9)), (x,))


def test_crop_zoom_errors():
    x = torch.zeros(1, 1, 10, 10)
    with pytest.raises(InputError, match="must lie inside the 10 x 10 image"):
        crop_zoom(x, CropBox(5, 0, 6, 4), 8)
    with pytest.raises(InputError, match="must lie inside"):
        crop_zoom(x, CropBox(-1, 0, 4, 4), 8)
    with pytest.raises(InputError, match="positive height and width"):
        crop_zoom(x, CropBox(0, 0, 0, 4), 8)
    with pytest.raises(InputError, match="4 ints"):
        crop_zoom(x, (0.5, 0, 4, 4), 8)
    with pytest.raises(InputError, match="size must be"):
        crop_zoom(x, CropBox(0, 0, 4, 4), (8, 0))


# ---------------------------------------------------------------------------------- samplers

def test_paper_sampler_bounds_and_coverage():
    g = torch.Generator().manual_seed(3)
    boxes = [sample_crop_paper(g) for _ in range(3000)]
    assert all(b.height == b.width == 80 for b in boxes)
    tops, lefts = {b.top for b in boxes}, {b.left for b in boxes}
    assert min(tops) == min(lefts) == 0 and max(tops) == max(lefts) == 240  # 320 - 80
    assert len(tops) > 200 and len(lefts) > 200  # spread over the 241 positions
    small = sample_crop_paper(g, image_size=32, crop=8)
    assert small.height == 8 and 0 <= small.top <= 24 and 0 <= small.left <= 24


def test_official_sampler_bounds_and_coverage():
    g = torch.Generator().manual_seed(4)
    boxes = [sample_crop_official(g) for _ in range(1000)]
    assert all(b.top == 80 and b.height == b.width == 160 for b in boxes)
    assert {b.left for b in boxes} == set(range(10, 30))
    assert all(b.top + b.height <= 320 and b.left + b.width <= 320 for b in boxes)


@pytest.mark.parametrize("name", ["paper", "official"])
def test_samplers_are_deterministic(name):
    sampler = CROP_SAMPLERS[name]
    a = [sampler(torch.Generator().manual_seed(7), image_size=320)]
    draws = [[sampler(g, image_size=320) for _ in range(20)]
             for g in (torch.Generator().manual_seed(7), torch.Generator().manual_seed(7),
                       torch.Generator().manual_seed(8))]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]
    assert a[0] == draws[0][0]


def test_sampler_registry_and_errors():
    assert set(CROP_SAMPLERS) == {"paper", "official"}
    with pytest.raises(InputError, match="torch.Generator"):
        sample_crop_paper(np.random.default_rng(0))
    with pytest.raises(InputError, match="1 <= crop <= image_size"):
        sample_crop_paper(torch.Generator(), image_size=64, crop=80)
    with pytest.raises(InputError, match="image_size must be an integer >= 240"):
        sample_crop_official(torch.Generator(), image_size=224)


# ------------------------------------------------------------------------------ the target

def test_teacher_target_composition_and_range():
    g = torch.Generator().manual_seed(5)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    # A gray image of uniform noise u, ImageNet-normalised, and a saturated prediction of u > .5.
    # The locally linear fit of a threshold of u on u overshoots: for u uniform on [0, 1] the
    # least-squares line is 1.5 u - .25, which leaves [0, 1] near u = 0 and u = 1.
    u = torch.rand(2, 1, 24, 24, generator=g, dtype=torch.float64)
    crop_image = (u.expand(2, 3, 24, 24) - mean) / std
    logits = 40 * (u - 0.5)
    target = teacher_target(crop_image, logits, radius=3, eps=1e-2)
    # The guide by hand: un-normalise, clip to [0, 1], average R, G, B (here: u again).
    guide = (crop_image * std + mean).clamp(0, 1).mean(dim=1, keepdim=True)
    torch.testing.assert_close(guide, u, rtol=0, atol=1e-12)
    q = guided_filter(guide, torch.sigmoid(logits), radius=3, eps=1e-2, border="count")
    assert q.min() < -0.05 and q.max() > 1.05  # the filter overshoots ...
    torch.testing.assert_close(target, q.clamp(1e-6, 1 - 1e-6), rtol=0, atol=1e-12)  # ... so clamp
    assert target.min() >= 1e-6 and target.max() <= 1 - 1e-6


def test_teacher_target_keeps_a_constant_prediction():
    # The guided filter keeps constants: a constant logit c gives sigmoid(c) everywhere.
    g = torch.Generator().manual_seed(6)
    crop_image = torch.randn(1, 3, 20, 20, generator=g, dtype=torch.float64)
    target = teacher_target(crop_image, torch.full((1, 1, 20, 20), 0.8, dtype=torch.float64))
    torch.testing.assert_close(target, torch.full_like(target, float(torch.sigmoid(torch.tensor(0.8, dtype=torch.float64)))),
                               rtol=0, atol=1e-10)


def _teacher_inputs(seed=7, size=24):
    g = torch.Generator().manual_seed(seed)
    crop_image = torch.randn(2, 3, size, size, generator=g, dtype=torch.float64)
    logits = 4 * torch.randn(2, 1, size, size, generator=g, dtype=torch.float64)
    guide = image_to_guide(crop_image, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return crop_image, logits, guide


def test_teacher_filter_defaults_to_paper_gf():
    params = inspect.signature(teacher_target).parameters
    assert params["gf"].default is PAPER_GF and params["gf"].kind is inspect.Parameter.KEYWORD_ONLY
    crop_image, logits, guide = _teacher_inputs()
    expected = guided_filter(guide, torch.sigmoid(logits), **dataclasses.asdict(PAPER_GF))
    torch.testing.assert_close(teacher_target(crop_image, logits), expected.clamp(1e-6, 1 - 1e-6),
                               rtol=0, atol=0)


def test_teacher_filter_is_configurable():
    crop_image, logits, guide = _teacher_inputs()
    gf = GuidedFilterSettings(radius=3, eps=1e-2, border="reflect")
    expected = guided_filter(guide, torch.sigmoid(logits), radius=3, eps=1e-2, border="reflect")
    target = teacher_target(crop_image, logits, gf=gf)
    torch.testing.assert_close(target, expected.clamp(1e-6, 1 - 1e-6), rtol=0, atol=0)
    assert not torch.equal(target, teacher_target(crop_image, logits))
    # radius= and eps= replace gf's own, the border stays gf's.
    torch.testing.assert_close(teacher_target(crop_image, logits, gf=dataclasses.replace(gf, radius=5)),
                               teacher_target(crop_image, logits, gf=gf, radius=5), rtol=0, atol=0)
    torch.testing.assert_close(teacher_target(crop_image, logits, radius=3, eps=1e-2),
                               teacher_target(crop_image, logits, gf=dataclasses.replace(gf, border="count")),
                               rtol=0, atol=0)


@pytest.mark.parametrize("radius", [-1, 2.5, True])
def test_teacher_radius_rule_is_the_guided_filters(radius):
    crop_image, logits, _ = _teacher_inputs(size=8)
    with pytest.raises(InputError) as rule:
        check_radius(radius)
    with pytest.raises(InputError) as err:
        teacher_target(crop_image, logits, radius=radius)
    assert str(err.value) == str(rule.value)
    with pytest.raises(InputError, match="gf must be a GuidedFilterSettings, got dict"):
        teacher_target(crop_image, logits, gf={"radius": 3})


def test_teacher_target_errors():
    with pytest.raises(InputError, match="same batch size, height and width"):
        teacher_target(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(InputError, match="crop_image must have 3 channels"):
        teacher_target(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


# ------------------------------------------------------------------------------------- L_eq

def test_identity_crop_loss_is_zero():
    g = torch.Generator().manual_seed(7)
    student = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    whole = CropBox(0, 0, 16, 16)
    assert crop_consistency_loss(student, whole, torch.sigmoid(student).detach()).item() == 0.0
    # Any box, with the target equal to the student's own crop-zoom: zero loss and gradient.
    box = CropBox(3, 5, 4, 4)
    target = crop_zoom(torch.sigmoid(student), box, 16).detach()
    loss = crop_consistency_loss(student, box, target)
    loss.backward()
    assert loss.item() == 0.0 and student.grad.abs().max().item() == 0.0
    # Shifting the target by 0.1 everywhere costs 0.1^2.
    assert crop_consistency_loss(student, box, target + 0.1).item() == pytest.approx(0.01, rel=1e-12)


def test_loss_gradient_stays_inside_the_box():
    g = torch.Generator().manual_seed(8)
    student = torch.randn(1, 1, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    box = CropBox(3, 5, 4, 6)
    crop_consistency_loss(student, box, torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)).backward()
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[3:7, 5:11] = True
    assert student.grad[0, 0][~inside].abs().max().item() == 0.0
    assert (student.grad[0, 0][inside] != 0).all()


def test_no_gradient_reaches_the_teacher():
    g = torch.Generator().manual_seed(9)
    image = torch.randn(1, 3, 32, 32, generator=g)
    net = torch.nn.Conv2d(3, 1, 3, padding=1)  # shared by student and teacher, as in the paper
    box = sample_crop_paper(g, image_size=32, crop=8)
    crop_image = crop_zoom(image, box, 32)
    teacher_logits = net(crop_image)
    teacher_logits.retain_grad()
    target = teacher_target(crop_image, teacher_logits, radius=2)
    assert not target.requires_grad
    student_logits = net(image)
    crop_consistency_loss(student_logits, box, target).backward()
    assert teacher_logits.grad is None
    shared = net.weight.grad.clone()
    # The same loss with the target built without any graph gives the same weight gradient.
    net.zero_grad()
    frozen = teacher_target(crop_image, teacher_logits.detach(), radius=2)
    crop_consistency_loss(net(image), box, frozen).backward()
    torch.testing.assert_close(net.weight.grad, shared, rtol=0, atol=0)


def test_crop_consistency_gradcheck():
    g = torch.Generator().manual_seed(10)
    student = torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: crop_consistency_loss(s, CropBox(2, 1, 4, 4), target), (student,))


def test_crop_consistency_errors():
    with pytest.raises(InputError, match="same batch size"):
        crop_consistency_loss(torch.zeros(2, 1, 8, 8), CropBox(0, 0, 4, 4), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="must lie inside"):
        crop_consistency_loss(torch.zeros(1, 1, 8, 8), CropBox(6, 0, 4, 4), torch.zeros(1, 1, 8, 8))


# -------------------------------------------------------------------------------- Ncut-crop

def test_ncut_crop_loss_is_ncut_with_the_crop_affinity():
    g = torch.Generator().manual_seed(11)
    crop_keys = torch.randn(2, 8, 4, 4, generator=g, dtype=torch.float64)
    logits = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    W = affinity(crop_keys, tau=0.4, eps=1e-6)
    assert ncut_crop_loss(crop_keys, logits).item() == pytest.approx(
        ncut_loss(W, torch.sigmoid(logits)).item(), rel=1e-12)
    # sigmoid(-x) = 1 - sigmoid(x) and Ncut(s) = Ncut(1 - s).
    assert ncut_crop_loss(crop_keys, -logits).item() == pytest.approx(
        ncut_crop_loss(crop_keys, logits).item(), rel=1e-12)
    other = AffinityParams(tau=0.1, eps=1e-3)
    assert ncut_crop_loss(crop_keys, logits, affinity_params=other).item() == pytest.approx(
        ncut_loss(affinity(crop_keys, tau=0.1, eps=1e-3), torch.sigmoid(logits)).item(), rel=1e-12)
    assert SEMPART_AFFINITY == (0.4, 1e-6, True)


def test_ncut_crop_gradcheck_and_errors():
    g = torch.Generator().manual_seed(12)
    crop_keys = torch.randn(1, 5, 3, 3, generator=g, dtype=torch.float64)
    logits = torch.randn(1, 1, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: ncut_crop_loss(crop_keys, c), (logits,))
    with pytest.raises(InputError, match="share the batch size and grid"):
        ncut_crop_loss(crop_keys, torch.zeros(1, 1, 3, 4, dtype=torch.float64))


def test_sample_box_is_the_one_rule_for_both_samplers():
    from paperlib.losses.crop_zoom import (
        PAPER_CROP,
        PAPER_ZOOM,
        sample_box,
        sample_crop_official,
        sample_crop_paper,
    )

    def g():
        return torch.Generator().manual_seed(7)

    assert sample_box("paper", g(), image_size=320) == sample_crop_paper(g(), image_size=320, crop=PAPER_CROP)
    assert PAPER_CROP == 80 and sample_box("paper", g(), image_size=64).height == 64 // PAPER_ZOOM == 16
    assert sample_box("official", g(), image_size=320) == sample_crop_official(g(), image_size=320)
    with pytest.raises(InputError, match="sampler"):
        sample_box("none", g(), image_size=320)
