"""paperlib.refine.gf_image: the float32 guided filter that masks take (the compiled count-border
kernel where built, OpenCV's box filter otherwise: every forward test runs on both paths), against
the torch filter (float64), a per-window reference, and OpenCV's own ximgproc.guidedFilter."""

from __future__ import annotations

import cv2
import cv2.ximgproc  # noqa: F401  (the contrib module holding guidedFilter)
import numpy as np
import pytest
import torch

from paperlib.checks import InputError
from paperlib.refine import gf_image
from paperlib.refine.gf_image import guided_filter_image, guided_filter_images
from paperlib.refine.guided_filter import guided_filter
from paperlib.refine.settings import BORDERS, PAPER_GF


@pytest.fixture(params=["kernel", "opencv"])
def path(request, monkeypatch):
    """The filter's path for one run of a test: the compiled kernel (skipped where this install
    has none) or OpenCV's box filters (the kernel hidden)."""
    if request.param == "kernel" and not gf_image.KERNEL:
        pytest.skip("the compiled guided-filter kernel is not built in this install")
    if request.param == "opencv":
        monkeypatch.setattr(gf_image, "_gf_count", None)
    return request.param


def _smooth(rng, shape, sigma=3.0) -> np.ndarray:
    x = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    return ((x - x.min()) / (x.max() - x.min() + 1e-12)).astype(np.float32)


def _torch64(guide, src, **kw) -> np.ndarray:
    g = torch.from_numpy(np.asarray(guide, np.float64))[None, None]
    s = torch.from_numpy(np.asarray(src, np.float64))[None, None]
    return guided_filter(g, s, **kw)[0, 0].numpy()


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape, radius", [((48, 64), 9), ((7, 5), 9), ((1, 1), 3), ((1, 30), 4),
                                           ((30, 1), 2), ((33, 17), 0), ((20, 20), 25), ((12, 16), 23170),
                                           ((2, 600), 400)])
def test_equals_the_torch_filter_in_float64(rng, shape, radius, border, path):
    """Every border rule, radii past the image (mirrored periodically), 1-pixel axes, r = 0;
    windows of 46341 pixels a side (the mirrored borders: OpenCV's normalised box filter
    overflows its count there, so they are summed and scaled; the count border cuts the radius
    to each axis); a radius past one axis only."""
    guide, src = _smooth(rng, shape, 1.5), rng.random(shape).astype(np.float32)
    for eps in (1e-3, 1e-1):
        ours = guided_filter_image(guide, src, radius=radius, eps=eps, border=border)
        assert ours.dtype == np.float32 and ours.shape == shape
        np.testing.assert_allclose(ours, _torch64(guide, src, radius=radius, eps=eps, border=border), atol=1e-5)
    if radius == 0:
        np.testing.assert_allclose(ours, src, atol=1e-6)           # a 1x1 window returns src


def test_a_constant_guide_gives_the_box_mean_of_src(rng, path):
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
def test_on_real_photos_at_the_paper_settings(real_data_root, path):
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


def test_inputs_are_checked_and_left_alone(rng, path):
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


def test_out_receives_q_and_is_checked(rng, path):
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
def test_a_stack_four_at_a_time_equals_one_at_a_time(rng, n, shape, radius, border, path):
    """A stack gives each image's own q, and the float64 filter's: on the OpenCV path four images
    as the channels of one (the border bands, their meeting in thin images and a remainder of 1-3
    images included), through the kernel image by image."""
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


# ------------------------------------------------------------------------- the compiled kernel

def test_the_kernel_is_built_where_a_compiler_is():
    """setup.py builds the kernel at install; where a C compiler is on the path it must be there
    (else the install went wrong and the filter silently runs at OpenCV's speed)."""
    import shutil
    import sys

    if sys.platform == "win32" or not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        pytest.skip("no C compiler here: the OpenCV path is the one installed")
    assert gf_image.KERNEL, "the compiled guided-filter kernel is missing: rerun `pip install -e .` (or `make`)"


@pytest.mark.parametrize("shape, radius", [((320, 320), 9), ((301, 47), 9), ((5, 400), 9), ((400, 5), 9),
                                           ((1, 1), 9), ((1, 9), 2), ((9, 1), 2), ((19, 19), 9),
                                           ((20, 20), 10), ((33, 21), 25), ((12, 16), 10 ** 6),
                                           ((40, 40), 0), ((64, 48), 1)])
def test_the_kernel_is_float32_rounding_of_the_float64_filter(rng, monkeypatch, shape, radius):
    """The kernel (running sums in double) against the torch filter in float64, to the rounding
    of its float32 output, where the OpenCV path (float32 arithmetic) is held to 1e-5: windows
    cut on one side, on both, covering the whole image, a radius of a million (cut to the
    image), guides far from [0, 1]."""
    if not gf_image.KERNEL:
        pytest.skip("the compiled guided-filter kernel is not built in this install")
    for scale, offset in ((1.0, 0.0), (30.0, -500.0), (1e-3, 2.0)):
        guide = (_smooth(rng, shape, 2.0) * scale + offset).astype(np.float32)
        src = rng.random(shape).astype(np.float32)
        for eps in (1e-3, 0.5):
            exact = _torch64(guide, src, radius=radius, eps=eps)
            kernel = guided_filter_image(guide, src, radius=radius, eps=eps)
            np.testing.assert_allclose(kernel, exact, atol=2e-7, rtol=0, err_msg=f"scale {scale}, eps {eps}")
            with monkeypatch.context() as patch:
                patch.setattr(gf_image, "_gf_count", None)
                opencv = guided_filter_image(guide, src, radius=radius, eps=eps)
            np.testing.assert_allclose(opencv, exact, atol=1e-4 if scale > 1 else 1e-5, rtol=0)
    if radius == 0:
        np.testing.assert_array_equal(kernel, src)                  # a 1x1 window returns src exactly


def test_any_input_dtype_and_layout_is_taken(rng, path):
    """float64, strided, Fortran-ordered and unaligned inputs (a buffer read at an odd offset) are
    converted before the filter reads them; an unaligned ``out`` is refused by name."""
    guide64, wide = _smooth(rng, (50, 70)).astype(np.float64), rng.random((50, 140))
    src64 = wide[:, ::2]                                           # strided
    expected = guided_filter_image(guide64.astype(np.float32), np.ascontiguousarray(src64, np.float32))
    np.testing.assert_allclose(guided_filter_image(guide64, src64), expected, atol=1e-6)
    np.testing.assert_allclose(guided_filter_image(np.asfortranarray(guide64), src64), expected, atol=1e-6)
    raw = bytearray(4 * 50 * 70 + 1)
    unaligned = np.frombuffer(raw, np.float32, count=50 * 70, offset=1).reshape(50, 70)
    unaligned[...] = src64
    assert not unaligned.flags.aligned
    np.testing.assert_allclose(guided_filter_image(guide64, unaligned), expected, atol=1e-6)
    out = np.frombuffer(bytearray(4 * 50 * 70 + 1), np.float32, count=50 * 70, offset=1).reshape(50, 70)
    with pytest.raises(InputError, match="aligned"):
        guided_filter_image(guide64, src64, out=out)


def test_the_kernel_refuses_bad_buffers():
    """The C function checks what it is handed (a wrong buffer would be read out of bounds)."""
    if not gf_image.KERNEL:
        pytest.skip("the compiled guided-filter kernel is not built in this install")
    kernel = gf_image._gf_count
    H, W = 12, 10
    g, p, q = (np.zeros((H, W), np.float32) for _ in range(3))
    scratch = np.zeros((2, H, W), np.float32)
    kernel.filter(g, p, q, scratch, 3, 1e-3, 0.0)                # the good call
    readonly = np.zeros((H, W), np.float32)
    readonly.flags.writeable = False
    for args, needle in (((g.astype(np.float64), p, q, scratch), "float32"),
                         ((g, np.zeros((H, W - 1), np.float32), q, scratch), "one shape"),
                         ((g, p, q[:, ::2], scratch), "C-contiguous"),
                         ((np.zeros((H, 2 * W), np.float32)[:, ::2], p, q, scratch), "guide must be a C-contiguous"),
                         ((g, p, q.astype(np.float64), scratch), "out must hold float32"),
                         ((g, p, q, scratch.astype(np.float64)), "scratch must hold float32"),
                         ((g, p, readonly, scratch), "writable"),
                         ((g, p, q, scratch[:1]), "2 H W"),
                         ((g[:0], p[:0], q[:0], scratch), "H, W >= 1"),
                         ((g[0], p[0], q[0], scratch), "one shape"),
                         ((g, p, q, b"x" * 8 * H * W), "writable")):
        with pytest.raises(ValueError, match=needle):
            kernel.filter(*args, 3, 1e-3, 0.0)
    for radius, eps in ((-1, 1e-3), (3, 0.0), (3, float("inf")), (3, float("nan"))):
        with pytest.raises(ValueError, match="radius must be >= 0 and eps"):
            kernel.filter(g, p, q, scratch, radius, eps, 0.0)


def test_threads_filter_side_by_side(rng):
    """The kernel runs without the GIL and the scratch memory is per thread: eight photos of
    different sizes filtered on four threads equal the same filtered one after another."""
    from concurrent.futures import ThreadPoolExecutor

    pairs = [(_smooth(rng, (60 + 7 * i, 90 - 5 * i)), rng.random((60 + 7 * i, 90 - 5 * i)).astype(np.float32))
             for i in range(8)]
    serial = [guided_filter_image(g, s) for g, s in pairs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda pair: guided_filter_image(*pair), pairs * 4))
    for i, q in enumerate(threaded):
        np.testing.assert_array_equal(q, serial[i % 8])
