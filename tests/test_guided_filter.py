"""Tests of paperlib.refine.guided_filter against a per-window reference, OpenCV and kornia."""

from __future__ import annotations

import dataclasses
import inspect
import itertools

import cv2
import cv2.ximgproc  # noqa: F401  (the contrib module holding guidedFilter)
import kornia
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from paperlib.backbones.catalog import IMAGENET_MEAN, IMAGENET_STD
from paperlib.checks import InputError
from paperlib.refine.guided_filter import (
    PAPER_GF,
    GuidedFilter,
    GuidedFilterSettings,
    check_radius,
    guided_filter,
    image_to_guide,
)

BORDERS = ("count", "reflect", "reflect_101")


def _t(x: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) numpy -> (1, C, H, W) tensor."""
    x = x[..., None] if x.ndim == 2 else x
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]


def _np(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W, C) numpy."""
    return x[0].permute(1, 2, 0).numpy()


def _smooth(rng, shape, sigma=3.0) -> np.ndarray:
    """Smooth float32 noise in [0, 1], (H, W) or (H, W, C)."""
    x = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


def _box_reference(x: np.ndarray, r: int, border: str) -> np.ndarray:
    """Box mean of an (H, W) array by numpy padding and explicit windows (float64)."""
    x = x.astype(np.float64)
    if border == "count":
        sums = sliding_window_view(np.pad(x, r), (2 * r + 1, 2 * r + 1)).sum(axis=(-2, -1))
        counts = sliding_window_view(np.pad(np.ones_like(x), r), (2 * r + 1, 2 * r + 1)).sum(axis=(-2, -1))
        return sums / counts
    # numpy's "symmetric" repeats the edge pixel (OpenCV BORDER_REFLECT); its "reflect" does not
    # (BORDER_REFLECT_101).
    mode = {"reflect": "symmetric", "reflect_101": "reflect"}[border]
    return sliding_window_view(np.pad(x, r, mode=mode), (2 * r + 1, 2 * r + 1)).mean(axis=(-2, -1))


def _naive_count(I: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s filter with truncated windows, one ridge regression per window (float64).

    I (H, W, Cg), p (H, W, C). For window w_k (cut at the border, n_k pixels) solve
    min_{a, b} sum_i |a^T I_i + b - p_i|^2 + n_k eps |a|^2, i.e. the paper's E(a_k, b_k) with the
    eps term summed over the window, by least squares on an augmented system; then every pixel
    averages a_k^T I_i + b_k over the windows that contain it.
    """
    H, W, Cg = I.shape
    acc = np.zeros(p.shape)
    hits = np.zeros((H, W, 1))
    for y, x in itertools.product(range(H), range(W)):
        rows = slice(max(y - r, 0), min(y + r, H - 1) + 1)
        cols = slice(max(x - r, 0), min(x + r, W - 1) + 1)
        Iw = I[rows, cols].reshape(-1, Cg)
        pw = p[rows, cols].reshape(Iw.shape[0], -1)
        n = Iw.shape[0]
        X = np.concatenate([Iw, np.ones((n, 1))], axis=1)  # (n, Cg + 1): [I_i, 1]
        ridge = np.concatenate([np.sqrt(n * eps) * np.eye(Cg), np.zeros((Cg, 1))], axis=1)
        coef = np.linalg.lstsq(np.concatenate([X, ridge]), np.concatenate([pw, np.zeros((Cg, pw.shape[1]))]),
                               rcond=None)[0]  # (Cg + 1, C): a_k stacked over b_k
        Iw1 = np.concatenate([I[rows, cols], np.ones(I[rows, cols].shape[:2] + (1,))], axis=-1)
        acc[rows, cols] += Iw1 @ coef  # (h, w, Cg + 1) @ (Cg + 1, C): a_k^T I_i + b_k
        hits[rows, cols] += 1
    return acc / hits


# ---------------------------------------------------------------- independent references

@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("r", [1, 2, 9])
def test_matches_per_window_ridge_regression_count_border(rng, guide_channels, r):
    # r = 9 on a 6 x 7 image: every window is cut on every side.
    H, W, eps = 6, 7, 1e-2
    I = rng.random((2, H, W, guide_channels))
    p = rng.random((2, H, W, 2))
    q = guided_filter(torch.from_numpy(I).permute(0, 3, 1, 2), torch.from_numpy(p).permute(0, 3, 1, 2),
                      radius=r, eps=eps, border="count")
    assert q.shape == (2, 2, H, W) and q.dtype == torch.float64
    for k in range(2):
        expected = _naive_count(I[k], p[k], r, eps)
        np.testing.assert_allclose(q[k].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("border", BORDERS)
def test_huge_eps_gives_box_mean_of_box_mean(rng, border):
    # eps -> infinity: a -> 0, b -> mean_p, q -> box(box(p)) with the same border rule.
    H, W, r = 9, 11, 3
    I = rng.random((H, W, 3))
    p = rng.random((H, W))
    expected = _box_reference(_box_reference(p, r, border), r, border)
    for guide in (_t(I), _t(I.mean(axis=-1))):
        q = guided_filter(guide, _t(p), radius=r, eps=1e12, border=border)
        np.testing.assert_allclose(q[0, 0].numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("subsample", [1, 2, 3])
def test_src_affine_in_the_guide_is_reproduced(rng, border, subsample):
    # With eps -> 0 each window's ridge fit of p = w . I + c is exact, so q = p; this holds for
    # the fast filter too (constant coefficients stay constant when upsampled). 17 x 23 is no
    # multiple of 2 or 3.
    H, W, r, eps = 17, 23, 3, 1e-12
    I = torch.from_numpy(rng.random((2, 3, H, W)))
    w = torch.from_numpy(rng.normal(size=(3, 2)))
    p = torch.einsum("bghw,gc->bchw", I, w) + torch.tensor([0.3, -1.0]).view(1, 2, 1, 1).double()
    q = guided_filter(I, p, radius=r, eps=eps, border=border, subsample=subsample)
    torch.testing.assert_close(q, p, rtol=0, atol=1e-6)
    gray = I[:, :1]
    p = 2.0 * gray + 0.3
    q = guided_filter(gray, p, radius=r, eps=eps, border=border, subsample=subsample)
    torch.testing.assert_close(q, p, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- OpenCV and kornia

@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("r", [2, 5])
def test_matches_opencv(rng, guide_channels, r):
    # cv2.ximgproc.guidedFilter box-filters with BORDER_REFLECT. Its colour path replaces a
    # covariance determinant below 1e-6 by 1 when eps < 1e-2 (a threshold in absolute units), so
    # with a colour guide in [0, 1] the exact formula is only comparable at eps >= 1e-2;
    # test_matches_opencv_on_a_real_image covers the paper's eps on a 0..255 guide.
    H, W, eps = 40, 52, 1e-2
    I = rng.random((H, W, guide_channels)).astype(np.float32)
    p = rng.random((H, W, 3)).astype(np.float32)
    expected = cv2.ximgproc.guidedFilter(I[..., 0] if guide_channels == 1 else I, p, r, eps)
    q = _np(guided_filter(_t(I), _t(p), radius=r, eps=eps, border="reflect"))
    # Measured max error 1.1e-5 (gray) and 1.8e-7 (colour): OpenCV works in float32 (its gray
    # path is as far from our float64 result as from our float32 one).
    np.testing.assert_allclose(q, expected, rtol=0, atol=2e-5)

    q = _np(guided_filter(_t(I), _t(p), radius=r, eps=eps, border="count"))
    inner = (slice(2 * r, H - 2 * r), slice(2 * r, W - 2 * r))  # q uses pixels up to 2r away
    np.testing.assert_allclose(q[inner], expected[inner], rtol=0, atol=2e-5)
    # ... and the border rule does matter outside it.
    assert np.abs(q - expected).max() > 1e-3


@pytest.mark.realdata
def test_matches_opencv_on_a_real_image(real_data_root):
    # The paper's setting (r = 9, eps = 1e-3) on a DUTS-TE image, against a smooth pseudo-mask.
    from paperlib.images import list_images, read_image

    image = read_image(next(iter(list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Image").values())))
    image = image.astype(np.float32) / 255.0  # (H, W, 3)
    gray = image.mean(axis=-1)
    mask = cv2.GaussianBlur((gray > 0.5).astype(np.float32), (0, 0), 3.0)
    r, eps = 9, 1e-3
    q = _np(guided_filter(_t(gray), _t(mask), radius=r, eps=eps, border="reflect"))[..., 0]
    # Measured max error 1.9e-5 (OpenCV's float32 box sums; our float64 result is as far).
    np.testing.assert_allclose(q, cv2.ximgproc.guidedFilter(gray, mask, r, eps), rtol=0, atol=1e-4)
    # Colour guide on 0..255 with eps scaled by 255^2 (the same filter, see test_scale_and_shift),
    # so OpenCV's determinant threshold stays out of the way.
    q = _np(guided_filter(_t(image), _t(mask), radius=r, eps=eps, border="reflect"))[..., 0]
    expected = cv2.ximgproc.guidedFilter(image * 255.0, mask, r, eps * 255.0**2)
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-4)  # measured 1.4e-5


@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_matches_kornia_guided_blur(guide_channels, dtype, atol):
    # kornia's default border_type "reflect" is torch's reflect padding, i.e. reflect_101.
    g = torch.Generator().manual_seed(0)
    I = torch.rand(2, guide_channels, 21, 26, generator=g, dtype=dtype)
    p = torch.rand(2, 2, 21, 26, generator=g, dtype=dtype)
    for r, eps in ((1, 1e-2), (4, 1e-3)):
        expected = kornia.filters.guided_blur(I, p, 2 * r + 1, eps)
        q = guided_filter(I, p, radius=r, eps=eps, border="reflect_101")
        torch.testing.assert_close(q, expected, rtol=0, atol=atol)


# ---------------------------------------------------------------- properties

@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("subsample", [1, 2])
@pytest.mark.parametrize("guide_channels", [1, 3])
def test_constants_are_preserved(border, subsample, guide_channels):
    g = torch.Generator().manual_seed(1)
    I = torch.rand(2, guide_channels, 15, 18, generator=g)
    p = torch.tensor([0.25, 0.7, -3.0]).view(1, 3, 1, 1).expand(2, 3, 15, 18)
    q = guided_filter(I, p, radius=4, eps=1e-3, border=border, subsample=subsample)
    torch.testing.assert_close(q, p, rtol=0, atol=1e-6)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_scale_and_shift_of_the_guide(guide_channels):
    # eps is in squared guide units and the box weights sum to 1:
    # GF(p, s I + c; s^2 eps) = GF(p, I; eps) and GF(p + d, I) = GF(p, I) + d.
    g = torch.Generator().manual_seed(2)
    I = torch.rand(1, guide_channels, 16, 16, generator=g, dtype=torch.float64)
    p = torch.rand(1, 2, 16, 16, generator=g, dtype=torch.float64)
    q = guided_filter(I, p, radius=3, eps=1e-3)
    torch.testing.assert_close(guided_filter(255.0 * I + 7.0, p, radius=3, eps=1e-3 * 255.0**2), q,
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(guided_filter(I, p + 5.0, radius=3, eps=1e-3), q + 5.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("border", BORDERS)
def test_radius_zero_returns_src(border):
    g = torch.Generator().manual_seed(3)
    I, p = torch.rand(2, 3, 5, 6, generator=g), torch.rand(2, 2, 5, 6, generator=g)
    torch.testing.assert_close(guided_filter(I, p, radius=0, eps=1e-3, border=border), p, rtol=0, atol=1e-6)


def test_radius_longer_than_the_image_matches_opencv(rng):
    # OpenCV's box filter reflects again and again when the window exceeds the image.
    I = rng.random((5, 7)).astype(np.float32)
    p = rng.random((5, 7)).astype(np.float32)
    q = _np(guided_filter(_t(I), _t(p), radius=9, eps=1e-2, border="reflect"))[..., 0]
    np.testing.assert_allclose(q, cv2.ximgproc.guidedFilter(I, p, 9, 1e-2), rtol=0, atol=2e-5)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("guide_channels", [1, 3])
@pytest.mark.parametrize("subsample", [1, 2])
def test_gradcheck(border, guide_channels, subsample):
    g = torch.Generator().manual_seed(4)
    I = torch.rand(1, guide_channels, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.rand(1, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda I, p: guided_filter(I, p, radius=2, eps=0.05, border=border, subsample=subsample), (I, p))


def test_module_equals_functional():
    g = torch.Generator().manual_seed(5)
    I, p = torch.rand(2, 3, 20, 24, generator=g), torch.rand(2, 1, 20, 24, generator=g)
    for kwargs in ({}, dict(radius=3, eps=0.1, border="reflect", subsample=2)):
        module = GuidedFilter(**kwargs)
        assert list(module.parameters()) == []
        assert torch.equal(module(I, p), guided_filter(I, p, **kwargs))
    assert repr(GuidedFilter(radius=3, border="reflect")) == \
        "GuidedFilter(radius=3, eps=0.001, border='reflect', subsample=1)"


@pytest.mark.parametrize("dtype,atol", [(torch.float16, 1e-3), (torch.bfloat16, 5e-3)])
@pytest.mark.parametrize("guide_channels", [1, 3])
def test_half_precision_inputs(dtype, atol, guide_channels):
    g = torch.Generator().manual_seed(6)
    I = torch.rand(2, guide_channels, 32, 40, generator=g)
    p = (torch.rand(2, 1, 32, 40, generator=g) > 0.5).float()
    q = guided_filter(I.to(dtype), p.to(dtype), radius=4, eps=1e-3)
    assert q.dtype == dtype and torch.isfinite(q).all()
    # Computed in float32: the float32 filter of the rounded inputs, up to rounding of the output
    # (half an ulp near 1: 2.4e-4 fp16, 3.9e-3 bf16; measured 2.4e-4 and 2.0e-3).
    expected = guided_filter(I.to(dtype).float(), p.to(dtype).float(), radius=4, eps=1e-3)
    torch.testing.assert_close(q.float(), expected, rtol=0, atol=atol)
    # And near the float32 filter of the unrounded inputs (measured: 3.5e-4 fp16, 2.7e-3 bf16).
    full = guided_filter(I, p, radius=4, eps=1e-3)
    assert (q.float() - full).abs().max() < {torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]


def test_numpy_scalars_and_empty_batch():
    g = torch.Generator().manual_seed(9)
    I, p = torch.rand(1, 1, 9, 9, generator=g), torch.rand(1, 2, 9, 9, generator=g)
    q = guided_filter(I, p, radius=np.int64(2), eps=np.float64(1e-2), subsample=np.int32(2))
    torch.testing.assert_close(q, guided_filter(I, p, radius=2, eps=1e-2, subsample=2), rtol=0, atol=0)
    assert guided_filter(I[:0], p[:0], radius=2).shape == (0, 2, 9, 9)


def test_result_has_the_dtype_of_src():
    g = torch.Generator().manual_seed(7)
    I = torch.rand(1, 1, 10, 10, generator=g, dtype=torch.float64)
    p = torch.rand(1, 1, 10, 10, generator=g, dtype=torch.float32)
    q = guided_filter(I, p, radius=2, eps=1e-3)
    assert q.dtype == torch.float32
    torch.testing.assert_close(q, guided_filter(I, p.double(), radius=2, eps=1e-3).float())


def test_subsample_one_is_the_plain_filter_and_two_is_close_on_smooth_input(rng):
    I = _t(_smooth(rng, (96, 120, 3)))
    p = _t(_smooth(rng, (96, 120)))
    plain = guided_filter(I, p, radius=8, eps=1e-2)
    assert torch.equal(guided_filter(I, p, radius=8, eps=1e-2, subsample=1), plain)
    fast = guided_filter(I, p, radius=8, eps=1e-2, subsample=2)
    assert fast.shape == plain.shape
    # Measured on this input: max 1.8e-2, mean 3.0e-3 (p spans [0, 1]).
    assert (fast - plain).abs().max() < 0.03
    assert (fast - plain).abs().mean() < 5e-3


@pytest.mark.parametrize("subsample", [2, 3])
@pytest.mark.parametrize("border", BORDERS)
def test_fast_filter_follows_he_and_sun(rng, subsample, border):
    # He and Sun's recipe written out with numpy and OpenCV: shrink I and p (the 2x2 block mean
    # for s = 2, the centre pixel of each 3x3 block for s = 3: what bilinear sampling gives when
    # s divides H and W), fit a and b with radius r // s, box-average them, upsample bilinearly
    # (cv2.INTER_LINEAR, pixel centres at half-integers) and apply them to the full guide.
    H, W, r, eps = 24, 30, 6, 1e-2
    I, p = rng.random((H, W)), rng.random((H, W))
    shrink = {2: lambda x: x.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3)),
              3: lambda x: x[1::3, 1::3]}[subsample]
    I_sub, p_sub = shrink(I), shrink(p)

    def box(x):
        return _box_reference(x, r // subsample, border)

    mean_I, mean_p = box(I_sub), box(p_sub)
    a = (box(I_sub * p_sub) - mean_I * mean_p) / (box(I_sub * I_sub) - mean_I**2 + eps)
    b = mean_p - a * mean_I
    mean_a, mean_b = (cv2.resize(box(x), (W, H), interpolation=cv2.INTER_LINEAR) for x in (a, b))
    q = guided_filter(_t(I), _t(p), radius=r, eps=eps, border=border, subsample=subsample)
    np.testing.assert_allclose(q[0, 0].numpy(), mean_a * I + mean_b, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- image_to_guide

def test_image_to_guide_undoes_imagenet_normalisation():
    g = torch.Generator().manual_seed(8)
    image = torch.rand(2, 3, 7, 9, generator=g)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    guide = image_to_guide((image - mean) / std, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert guide.shape == (2, 1, 7, 9)
    torch.testing.assert_close(guide, image.mean(dim=1, keepdim=True))
    torch.testing.assert_close(image_to_guide(image), image.mean(dim=1, keepdim=True), rtol=0, atol=0)


def test_image_to_guide_clamps_to_unit_range():
    image = torch.tensor([1.5, -0.5, 0.25]).view(1, 3, 1, 1)
    torch.testing.assert_close(image_to_guide(image), torch.tensor(1.25 / 3).view(1, 1, 1, 1))


def test_image_to_guide_errors():
    image = torch.rand(1, 3, 4, 4)
    with pytest.raises(InputError, match="mean and std must be given together"):
        image_to_guide(image, mean=IMAGENET_MEAN)
    with pytest.raises(InputError, match="mean must be a sequence of 3"):
        image_to_guide(image, mean=(0.5, 0.5), std=IMAGENET_STD)
    with pytest.raises(InputError, match="std must be > 0"):
        image_to_guide(image, mean=IMAGENET_MEAN, std=(0.2, 0.0, 0.2))
    with pytest.raises(InputError, match="image must have 3 channels"):
        image_to_guide(torch.rand(1, 1, 4, 4))
    with pytest.raises(InputError, match="image must be a floating-point tensor"):
        image_to_guide(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("guide,src,message", [
    (np.zeros((4, 4)), torch.rand(1, 1, 4, 4), "guide must be a torch.Tensor"),
    (torch.rand(1, 4, 4), torch.rand(1, 1, 4, 4), "guide must have 4 dimensions"),
    (torch.rand(1, 2, 4, 4), torch.rand(1, 1, 4, 4), "guide must have 1 or 3 channels"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.int64), torch.rand(1, 1, 4, 4), "guide must be a floating-point"),
    (torch.rand(1, 1, 4, 4), torch.rand(4, 4), "src must have 4 dimensions"),
    (torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.bool), "src must be a floating-point"),
    (torch.rand(2, 1, 4, 4), torch.rand(1, 1, 4, 4), "same batch size, height and width"),
    (torch.rand(1, 1, 4, 5), torch.rand(1, 1, 4, 4), "same batch size, height and width"),
    (torch.rand(1, 1, 4, 4, device="meta"), torch.rand(1, 1, 4, 4), "must be on one device"),
    (torch.rand(1, 1, 0, 4), torch.rand(1, 1, 0, 4), "at least one row and column"),
])
def test_bad_tensors(guide, src, message):
    with pytest.raises(InputError, match=message):
        guided_filter(guide, src)


@pytest.mark.parametrize("kwargs,message", [
    (dict(radius=-1), "radius must be >= 0"),
    (dict(radius=2.5), "radius must be an int, got float"),
    (dict(radius=True), "radius must be an int, got bool"),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(eps=-1e-3), "eps must be > 0"),
    (dict(eps="1e-3"), "eps must be a real number"),
    (dict(border="zeros"), "border must be one of 'count', 'reflect', 'reflect_101'"),
    (dict(subsample=0), "subsample must be >= 1"),
    (dict(subsample=1.5), "subsample must be an int"),
])
def test_bad_parameters(kwargs, message):
    I, p = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    with pytest.raises(InputError, match=message):
        guided_filter(I, p, **kwargs)
    with pytest.raises(InputError, match=message):
        GuidedFilter(**kwargs)


# ------------------------------------------------------------------ the paper's settings, one home

def test_paper_settings_are_the_released_codes():
    # Pinned here on purpose: changing the paper's setting must be a visible decision.
    assert (PAPER_GF.radius, PAPER_GF.eps, PAPER_GF.border) == (9, 1e-3, "count")
    assert PAPER_GF == GuidedFilterSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_GF.radius = 4


@pytest.mark.parametrize("entry", [guided_filter, GuidedFilter])
def test_function_and_module_defaults_read_paper_gf(entry):
    params = inspect.signature(entry).parameters
    for field in dataclasses.fields(GuidedFilterSettings):
        assert params[field.name].default == getattr(PAPER_GF, field.name), field.name
        assert params[field.name].kind is inspect.Parameter.KEYWORD_ONLY
    module = GuidedFilter()
    assert (module.radius, module.eps, module.border) == (PAPER_GF.radius, PAPER_GF.eps, PAPER_GF.border)


def test_defaults_filter_like_the_paper_settings():
    g = torch.Generator().manual_seed(9)
    I, p = torch.rand(1, 1, 40, 40, generator=g, dtype=torch.float64), torch.rand(1, 1, 40, 40, generator=g,
                                                                                 dtype=torch.float64)
    expected = guided_filter(I, p, **dataclasses.asdict(PAPER_GF))
    assert torch.equal(guided_filter(I, p), expected)
    assert not torch.equal(guided_filter(I, p, radius=PAPER_GF.radius - 1), expected)


@pytest.mark.parametrize("kwargs,message", [
    (dict(radius=-1), "radius must be >= 0"),
    (dict(radius=2.5), "radius must be an int, got float"),
    (dict(radius=True), "radius must be an int, got bool"),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(eps="1e-3"), "eps must be a real number"),
    (dict(border="zeros"), "border must be one of 'count', 'reflect', 'reflect_101'"),
])
def test_settings_are_checked_like_the_filter(kwargs, message):
    with pytest.raises(InputError, match=message):
        GuidedFilterSettings(**kwargs)
    with pytest.raises(InputError, match=message):
        dataclasses.replace(PAPER_GF, **kwargs)


def test_radius_zero_and_numpy_ints_are_valid_settings():
    assert GuidedFilterSettings(radius=0).radius == 0
    assert GuidedFilterSettings(radius=np.int64(3)).radius == 3
    check_radius(0)


@pytest.mark.parametrize("radius", [-1, 2.5, True, "9"])
def test_one_radius_rule_for_settings_function_and_module(radius):
    with pytest.raises(InputError) as rule:
        check_radius(radius)
    I = torch.rand(1, 1, 8, 8)
    for build in (lambda: GuidedFilterSettings(radius=radius), lambda: GuidedFilter(radius=radius),
                  lambda: guided_filter(I, I, radius=radius)):
        with pytest.raises(InputError) as err:
            build()
        assert str(err.value) == str(rule.value)
