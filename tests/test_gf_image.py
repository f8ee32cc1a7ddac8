"""paperlib.refine.gf_image: the float32 OpenCV guided filter that masks take, against the torch
filter (float64), a per-window reference, and OpenCV's own ximgproc.guidedFilter."""

from __future__ import annotations

import cv2
import cv2.ximgproc  # noqa: F401  (the contrib module holding guidedFilter)
import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.refine.gf_image import guided_filter_image, guided_filter_images
from paperlib.refine.guided_filter import guided_filter
from paperlib.refine.settings import BORDERS, PAPER_GF


def _smooth(rng, shape, sigma=3.0) -> np.ndarray:
    x = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    return ((x - x.min()) / (x.max() - x.min() + 1e-12)).astype(np.float32)


def _torch64(guide, src, **kw) -> np.ndarray:
    g = torch.from_numpy(np.asarray(guide, np.float64))[None, None]
    s = torch.from_numpy(np.asarray(src, np.float64))[None, None]
    return guided_filter(g, s, **kw)[0, 0].numpy()


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape, radius", [((48, 64), 9), ((7, 5), 9), ((1, 1), 3), ((1, 30), 4),
                                           ((30, 1), 2), ((33, 17), 0), ((20, 20), 25)])
def test_equals_the_torch_filter_in_float64(rng, shape, radius, border):
    """Every border rule, radii past the image (mirrored periodically), 1-pixel axes, r = 0."""
    guide, src = _smooth(rng, shape, 1.5), rng.random(shape).astype(np.float32)
    for eps in (1e-3, 1e-1):
        ours = guided_filter_image(guide, src, radius=radius, eps=eps, border=border)
        assert ours.dtype == np.float32 and ours.shape == shape
        np.testing.assert_allclose(ours, _torch64(guide, src, radius=radius, eps=eps, border=border), atol=1e-5)
    if radius == 0:
        np.testing.assert_allclose(ours, src, atol=1e-6)           # a 1x1 window returns src


def test_a_constant_guide_gives_the_box_mean_of_src(rng):
    """var_I = cov_Ip = 0: a = 0, b = mean_p, q = the mean of mean_p (count border)."""
    src = rng.random((40, 50)).astype(np.float32)
    q = guided_filter_image(np.full((40, 50), 0.3, np.float32), src, radius=3, eps=1e-3)
    ones = np.ones_like(src, dtype=np.float64)

    def box(x):
        k = (7, 7)
        return (cv2.boxFilter(x, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
                / cv2.boxFilter(ones, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT))
    np.testing.assert_allclose(q, box(box(src.astype(np.float64))), atol=1e-6)


def test_reflect_border_equals_opencv_ximgproc(rng):
    """ximgproc.guidedFilter (gray guide) uses BORDER_REFLECT box means: the same filter."""
    guide, src = _smooth(rng, (64, 80)), rng.random((64, 80)).astype(np.float32)
    ours = guided_filter_image(guide, src, radius=5, eps=1e-2, border="reflect")
    np.testing.assert_allclose(ours, cv2.ximgproc.guidedFilter(guide, src, 5, 1e-2), atol=1e-5)


@pytest.mark.realdata
def test_on_real_photos_at_the_paper_settings(real_data_root):
    """The path refine runs: a DUTS-TE photo's gray guide and its mask, 1e-5 of the float64 filter."""
    from paperlib.images import list_images, read_image, read_mask

    images = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Image")
    masks = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Mask")
    for stem in sorted(images)[:3]:
        image = read_image(images[stem])
        guide = image.astype(np.float32).mean(axis=2) / 255
        mask = cv2.GaussianBlur(read_mask(masks[stem]).astype(np.float32), (0, 0), 4)
        ours = guided_filter_image(guide, mask, radius=PAPER_GF.radius, eps=PAPER_GF.eps)
        np.testing.assert_allclose(ours, _torch64(guide, mask, radius=PAPER_GF.radius, eps=PAPER_GF.eps),
                                   atol=1e-5)


def test_inputs_are_checked_and_left_alone(rng):
    guide, src = _smooth(rng, (10, 12)), rng.random((10, 12)).astype(np.float32)
    before = (guide.copy(), src.copy())
    guided_filter_image(guide, src)
    np.testing.assert_array_equal(guide, before[0])
    np.testing.assert_array_equal(src, before[1])
    for kw, needle in ((dict(radius=-1), "radius must be >= 0"), (dict(eps=0.0), "eps"),
                       (dict(border="wrap"), "border")):
        with pytest.raises(InputError, match=needle):
            guided_filter_image(guide, src, **kw)
    with pytest.raises(InputError, match="one shape"):
        guided_filter_image(guide, src[:, :5])


def test_out_receives_q_and_is_checked(rng):
    """``out=`` (what the batch path writes into) holds the same q; a wrong or aliased out is refused."""
    guide, src = _smooth(rng, (40, 52)), rng.random((40, 52)).astype(np.float32)
    batch = np.full((2, 40, 52), np.nan, np.float32)
    got = guided_filter_image(guide, src, out=batch[1])
    assert np.shares_memory(got, batch)
    np.testing.assert_array_equal(batch[1], guided_filter_image(guide, src))
    assert np.isnan(batch[0]).all()                                # nothing else written
    for out, needle in ((np.empty((40, 52)), "float32"), (np.empty((40, 51), np.float32), "shape"),
                        (np.empty((52, 40), np.float32).T, "C-contiguous"), (src, "share memory")):
        with pytest.raises(InputError, match=needle):
            guided_filter_image(guide, src, out=out)


@pytest.mark.parametrize("n, shape, radius, border", [(8, (48, 64), 9, "count"), (5, (33, 20), 9, "count"),
                                                     (6, (40, 40), 4, "reflect"), (4, (7, 90), 9, "count"),
                                                     (3, (30, 30), 2, "reflect_101")])
def test_a_stack_four_at_a_time_equals_one_at_a_time(rng, n, shape, radius, border):
    """Four images as the channels of one (the border bands, their meeting in thin images and a
    remainder of 1-3 images included) give each image's own q, and the float64 filter's."""
    guides = np.stack([_smooth(rng, shape, 1.5) * rng.uniform(0.2, 3) + rng.uniform(-1, 1) for _ in range(n)])
    srcs = rng.random((n,) + shape).astype(np.float32)
    got = guided_filter_images(guides, srcs, radius=radius, border=border)
    assert got.shape == (n,) + shape and got.dtype == np.float32
    for i in range(n):
        one = guided_filter_image(guides[i], srcs[i], radius=radius, border=border)
        np.testing.assert_array_equal(got[i], one)                 # the same operations, the same numbers
        np.testing.assert_allclose(got[i], _torch64(guides[i], srcs[i], radius=radius, border=border), atol=1e-5)
    out = np.empty((n,) + shape, np.float32)
    assert guided_filter_images(guides, srcs, radius=radius, border=border, out=out) is out
    np.testing.assert_array_equal(out, got)
    with pytest.raises(InputError, match="one shape"):
        guided_filter_images(guides, srcs[:, :, :3])
    with pytest.raises(InputError, match="share memory"):
        guided_filter_images(guides, srcs, out=srcs)


def test_the_torch_filter_takes_this_path_on_cpu_float32(rng, monkeypatch):
    """guided_filter on CPU float32 runs image by image here: without gradients for every border
    (the teacher's target), with gradients for the count border; in float64, with a colour guide
    or with a reflect border under autograd it stays in torch. All agree."""
    import paperlib.refine.guided_filter as gf_module

    calls = []
    real = gf_module.guided_filter_images

    def counting(guides, *args, **kwargs):
        calls.extend([1] * len(guides))                              # one per image filtered
        return real(guides, *args, **kwargs)

    monkeypatch.setattr(gf_module, "guided_filter_images", counting)
    guide = torch.from_numpy(np.stack([_smooth(rng, (30, 40)) for _ in range(2)]))[:, None]
    src = torch.rand(2, 3, 30, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = guided_filter(guide, src)
    assert len(calls) == 6 and fast.dtype == torch.float32          # 2 images x 3 channels
    slow = guided_filter(guide.double(), src.double())               # float64: torch
    guided_filter(guide.expand(2, 3, 30, 40), src)                   # colour guide: torch
    guided_filter(guide, src.clone().requires_grad_(), border="reflect")  # its adjoint: torch
    assert len(calls) == 6
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)
    with_grad = guided_filter(guide, src.clone().requires_grad_())   # count border: here, with grad
    assert len(calls) == 12 and with_grad.requires_grad
    half = guided_filter(guide.half(), src.half())                   # half precision: computed in float32
    assert half.dtype == torch.float16 and len(calls) == 18


@pytest.mark.parametrize("shape, radius", [((2, 1, 40, 37), 4), ((1, 3, 30, 50), 9), ((1, 1, 15, 60), 9),
                                           ((2, 2, 8, 9), 3), ((1, 1, 1, 1), 2), ((1, 1, 24, 24), 0)])
@pytest.mark.parametrize("wrt", ["guide", "src", "both"])
def test_gradients_equal_autograd_of_the_torch_filter_in_float64(shape, radius, wrt):
    """The OpenCV path's hand-written adjoint (float32) against torch autograd through the
    cumulative-sum filter in float64, for every input and a weighted sum of q."""
    gen = torch.Generator().manual_seed(sum(shape) + radius)
    B, C, H, W = shape
    guide, src = torch.rand(B, 1, H, W, generator=gen), torch.rand(B, C, H, W, generator=gen)
    weights = torch.randn(B, C, H, W, generator=gen)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        g = guide.to(dtype, copy=True).requires_grad_(wrt in ("guide", "both"))
        s = src.to(dtype, copy=True).requires_grad_(wrt in ("src", "both"))
        q = guided_filter(g, s, radius=radius, eps=1e-2)
        assert ("OpenCV" in type(q.grad_fn).__name__) == (dtype == torch.float32)
        (q * weights.to(dtype)).sum().backward()
        grads[dtype] = (g.grad, s.grad)
    for fast, exact in zip(grads[torch.float32], grads[torch.float64]):
        assert (fast is None) == (exact is None)
        if exact is not None:
            assert fast.dtype == torch.float32
            np.testing.assert_allclose(fast.double().numpy(), exact.numpy(), atol=1e-6 * (1 + float(exact.abs().max())))


def test_the_opencv_path_is_differentiable_once(rng):
    guide = torch.from_numpy(_smooth(rng, (20, 20)))[None, None]
    src = torch.rand(1, 1, 20, 20, requires_grad=True)
    (grad,) = torch.autograd.grad(guided_filter(guide, src).sum(), src, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad|differentiable"):
        grad.sum().backward()
