"""Tests of the fast bilateral solver: grid, bistochastisation, the linear system, and its use."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paperlib.checks import InputError
from paperlib.refine.bilateral_solver import (
    OFFICIAL,
    PRESETS,
    TOKENCUT,
    BilateralGrid,
    BilateralSolverParams,
    bilateral_solve,
)

# Solver settings that run CG to convergence, to test the linear system itself.
EXACT = dict(cg_maxiter=2000, cg_tol=1e-13)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _two_region_image(rng, height=160, width=192):
    """A disc and a bar (the true shape) in red on a blue background, with mild noise."""
    rows, cols = np.mgrid[:height, :width]
    shape = (((rows - 70) ** 2 + (cols - 80) ** 2 < 45 ** 2)
             | ((rows > 90) & (rows < 140) & (cols > 100) & (cols < 170)))
    image = np.where(shape[..., None], [200.0, 60.0, 40.0], [40.0, 90.0, 160.0])
    image = np.clip(image + rng.normal(0.0, 6.0, image.shape), 0, 255).astype(np.uint8)
    return image, shape


def _reference_vertices(image01: np.ndarray, params: BilateralSolverParams) -> np.ndarray:
    """Integer grid coordinates (P, 5) of each pixel, from the definition, written independently.

    YUV as BT.601 colour differences: Cb = (B - Y) / 1.772, Cr = (R - Y) / 1.402, offset 128.
    """
    rgb = image01.astype(np.float64) * 255.0
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    u = (blue - luma) / 1.772 + 128.0
    v = (red - luma) / 1.402 + 128.0
    rows, cols = np.indices(luma.shape)
    feats = [cols / params.sigma_spatial, rows / params.sigma_spatial, luma / params.sigma_luma,
             u / params.sigma_chroma, v / params.sigma_chroma]
    return np.stack([np.floor(f).ravel() for f in feats], axis=1).astype(int)


def _dense_reference(image01, target, confidence, params):
    """The solver's output from dense matrices built from the definitions (tiny images only).

    B_ij = 1 for vertices at L1 distance 1, B_ii = 2 * 5; S (V, P) one-hot; n from the
    bistochastisation iteration n <- sqrt(n * (S 1) / (B n)); m = n * (B n);
    y = solve(lam (diag(m) - Dn B Dn) + diag(S c), S (c t)); output S^T y.
    """
    coords = _reference_vertices(image01, params)
    vertex_coords, label = np.unique(coords, axis=0, return_inverse=True)
    label = label.ravel()
    num_v, num_p = len(vertex_coords), coords.shape[0]
    S = np.zeros((num_v, num_p))
    S[label, np.arange(num_p)] = 1.0
    dist = np.abs(vertex_coords[:, None, :] - vertex_coords[None, :, :]).sum(-1)
    B = (dist == 1).astype(float) + 10.0 * np.eye(num_v)
    counts = S.sum(1)
    n = np.ones(num_v)
    for _ in range(params.bistochastic_iters):
        n = np.sqrt(n * counts / (B @ n))
    m = n * (B @ n)
    c, t = confidence.ravel(), target.ravel()
    A = params.lam * (np.diag(m) - np.diag(n) @ B @ np.diag(n)) + np.diag(S @ c)
    y = np.linalg.solve(A, S @ (c * t))
    return (S.T @ y).reshape(target.shape), dict(S=S, B=B, n=n, m=m, label=label)


@pytest.fixture
def small_case(rng):
    """A 14 x 17 float image with smooth colour regions, a target and a confidence."""
    height, width = 14, 17
    rows, cols = np.mgrid[:height, :width]
    image = np.stack([(cols / width) * 0.8 + 0.1, (rows > 6) * 0.5 + 0.2,
                      0.5 + 0.3 * np.sin(cols / 3.0)], axis=-1)
    image = np.clip(image + rng.uniform(-0.05, 0.05, image.shape), 0.0, 1.0)
    target = rng.uniform(0.0, 1.0, (height, width))
    confidence = rng.uniform(0.2, 1.0, (height, width))
    return image, target, confidence


SMALL_PARAMS = BilateralSolverParams(sigma_spatial=4.0, sigma_luma=24.0, sigma_chroma=16.0,
                                     lam=3.0, **EXACT)


# ---------------------------------------------------------------- grid

def test_vertices_match_the_definition(small_case):
    image, _, _ = small_case
    grid = BilateralGrid(image, params=SMALL_PARAMS)
    coords = _reference_vertices(image, SMALL_PARAMS)
    _, ref_label = np.unique(coords, axis=0, return_inverse=True)
    ours = grid.vertex_of_pixel
    # Same partition of the pixels: the pairs (ours, reference) are one-to-one.
    pairs = np.unique(np.stack([ours, ref_label.ravel()]), axis=1).shape[1]
    assert pairs == grid.num_vertices == len(np.unique(ref_label))
    assert 1 < grid.num_vertices <= grid.num_pixels == image.shape[0] * image.shape[1]


def test_splat_and_slice(small_case):
    image, target, _ = small_case
    grid = BilateralGrid(image, params=SMALL_PARAMS)
    ones = np.ones(grid.shape)
    counts = grid.splat(ones)
    np.testing.assert_array_equal(counts, grid.counts)
    assert counts.sum() == grid.num_pixels and counts.min() >= 1
    # Splat then slice of ones, normalised by the counts, gives ones back.
    np.testing.assert_array_equal(grid.slice(counts / grid.counts), ones)
    # Slice is the transpose of splat: <S x, y> = <x, S^T y>.
    y = np.arange(grid.num_vertices, dtype=float)
    assert np.isclose(grid.splat(target) @ y, (target * grid.slice(y)).sum(), rtol=1e-12)


def test_blur_matches_dense_reference(small_case):
    image, target, confidence = small_case
    grid = BilateralGrid(image, params=SMALL_PARAMS)
    _, ref = _dense_reference(image, target, confidence, SMALL_PARAMS)
    # Our vertex k is the reference vertex of any of its pixels.
    first_pixel = np.unique(grid.vertex_of_pixel, return_index=True)[1]
    to_ref = ref["label"][first_pixel]                                  # (V,)
    B_ours = np.stack([grid.blur(e) for e in np.eye(grid.num_vertices)], axis=1)
    np.testing.assert_array_equal(B_ours, ref["B"][np.ix_(to_ref, to_ref)])
    # Each vertex has at least one neighbour in this smooth image, and B is symmetric.
    assert (B_ours.sum(1) > 10).sum() > grid.num_vertices // 2
    np.testing.assert_array_equal(B_ours, B_ours.T)


def test_bistochastisation(small_case):
    image, _, _ = small_case
    grid = BilateralGrid(image, params=SMALL_PARAMS)
    D = np.diag
    B = np.stack([grid.blur(e) for e in np.eye(grid.num_vertices)], axis=1)
    # Dn B Dn 1 = Dm 1 by construction of m, and Dm - Dn B Dn is the Laplacian we solve with.
    np.testing.assert_allclose(D(grid.n) @ B @ D(grid.n) @ np.ones(grid.num_vertices), grid.m,
                               rtol=1e-12)
    np.testing.assert_allclose(grid.smoothness_matrix().toarray(),
                               D(grid.m) - D(grid.n) @ B @ D(grid.n), atol=1e-12)
    # The iteration converges to the splat counts: Dm ~= diag(S 1), and more steps get closer.
    error = np.abs(grid.m - grid.counts).max() / grid.counts.max()
    longer = BilateralGrid(image, params=dataclasses.replace(SMALL_PARAMS, bistochastic_iters=20))
    error_20 = np.abs(longer.m - longer.counts).max() / longer.counts.max()
    # Measured: 2.5e-7 after 10 steps, 4.7e-13 after 20 (118 vertices, 238 pixels).
    assert error < 1e-5 and error_20 < error / 1e4
    # The pixel-space affinity W^ = S^T Dm^-1 Dn B Dn Dm^-1 S is (nearly) bistochastic.
    S = np.zeros((grid.num_vertices, grid.num_pixels))
    S[grid.vertex_of_pixel, np.arange(grid.num_pixels)] = 1.0
    W_hat = S.T @ D(1 / longer.counts) @ D(longer.n) @ B @ D(longer.n) @ D(1 / longer.counts) @ S
    np.testing.assert_allclose(W_hat, W_hat.T, atol=1e-15)
    np.testing.assert_allclose(W_hat.sum(1), 1.0, atol=1e-6)


# ---------------------------------------------------------------- solver

def test_matches_dense_solve(small_case):
    image, target, confidence = small_case
    ours = bilateral_solve(image, target, confidence=confidence, params=SMALL_PARAMS)
    reference, _ = _dense_reference(image, target, confidence, SMALL_PARAMS)
    np.testing.assert_allclose(ours, reference, atol=1e-9)
    # The smoothing is real: the output is far from the noisy target.
    assert np.abs(ours - target).mean() > 0.05


@pytest.mark.parametrize("params", [TOKENCUT, OFFICIAL], ids=["tokencut", "official"])
@pytest.mark.parametrize("value", [0.0, 0.37, 1.0, -3.0, 7.5])
def test_constant_target_stays_constant(rng, params, value):
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    confidence = rng.uniform(0.1, 1.0, (40, 56))
    out = bilateral_solve(image, np.full((40, 56), value), confidence=confidence, params=params)
    # Also shows the output is not clipped to [0, 1].
    np.testing.assert_allclose(out, value, atol=1e-6)


def test_output_shape_dtype_and_float_image(rng):
    image = rng.integers(0, 256, (33, 21, 3), dtype=np.uint8)
    target = rng.uniform(0.0, 1.0, (33, 21)).astype(np.float32)
    out = bilateral_solve(image, target)
    assert out.shape == (33, 21) and out.dtype == np.float64
    # A float image in [0, 1] is the same image as uint8 / 255.
    np.testing.assert_allclose(bilateral_solve(image / 255.0, target), out, atol=1e-12)


def test_snaps_blocky_mask_to_image_edges(rng):
    image, shape = _two_region_image(rng)
    small = shape[8::16, 8::16]                               # 1/16 resolution, centre samples
    blocky = np.repeat(np.repeat(small, 16, 0), 16, 1).astype(float)
    before = _iou(blocky > 0.5, shape)
    after_tokencut = _iou(bilateral_solve(image, blocky) > 0.5, shape)
    after_official = _iou(bilateral_solve(image, blocky, params=OFFICIAL) > 0.5, shape)
    # Measured (seed 0): before 0.8257, TOKENCUT 0.9997, OFFICIAL 0.9976.
    assert before < 0.84
    assert after_tokencut > 0.99 and after_official > 0.99


def test_complementary_targets_sum_to_one(rng):
    image, shape = _two_region_image(rng, 64, 80)
    target = np.clip(shape + rng.normal(0.0, 0.2, shape.shape), 0.0, 1.0)
    exact = dataclasses.replace(TOKENCUT, **EXACT)
    total = (bilateral_solve(image, target, params=exact)
             + bilateral_solve(image, 1 - target, params=exact))
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    # With the preset's CG, stopped early, the sum still holds: the start b / (S c) is linear in
    # b, the start for t = 1 is exact, so the two runs start from opposite residuals and CG's
    # iterates are odd in the starting residual. Measured max |sum - 1| = 3.3e-15 (seed 0).
    total = bilateral_solve(image, target) + bilateral_solve(image, 1 - target)
    np.testing.assert_allclose(total, 1.0, atol=1e-9)


def test_tiny_lambda_reproduces_target(rng):
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    target = rng.uniform(0.0, 1.0, (20, 24))
    confidence = rng.uniform(0.1, 1.0, (20, 24))
    # sigma_spatial = 1: every pixel is its own vertex, so lam -> 0 leaves the target.
    params = BilateralSolverParams(sigma_spatial=1.0, lam=1e-9, **EXACT)
    out = bilateral_solve(image, target, confidence=confidence, params=params)
    np.testing.assert_allclose(out, target, atol=1e-6)


def test_tiny_lambda_gives_confidence_weighted_cell_means(small_case):
    image, target, confidence = small_case
    params = dataclasses.replace(SMALL_PARAMS, lam=1e-9)
    out = bilateral_solve(image, target, confidence=confidence, params=params)
    coords = _reference_vertices(image, params)
    expected = np.empty(target.size)
    for key in {tuple(c) for c in coords}:               # a loop over cells: a plain reference
        cell = (coords == key).all(1)
        c, t = confidence.ravel()[cell], target.ravel()[cell]
        expected[cell] = (c * t).sum() / c.sum()
    np.testing.assert_allclose(out.ravel(), expected, atol=1e-6)


def test_zero_confidence_hole_is_filled_from_its_surroundings(rng):
    image = np.full((48, 48, 3), 128, np.uint8)
    target = np.full((48, 48), 0.3)
    target[16:32, 16:32] = rng.uniform(0.0, 1.0, (16, 16))   # garbage where c = 0
    confidence = np.ones((48, 48))
    confidence[16:32, 16:32] = 0.0
    params = dataclasses.replace(TOKENCUT, sigma_spatial=4.0, **EXACT)
    out = bilateral_solve(image, target, confidence=confidence, params=params)
    np.testing.assert_allclose(out, 0.3, atol=1e-8)


def test_default_confidence_and_scaling(rng):
    image = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    target = rng.uniform(0.0, 1.0, (24, 30))
    exact = dataclasses.replace(TOKENCUT, **EXACT)
    default = bilateral_solve(image, target, params=exact)
    explicit = bilateral_solve(image, target, confidence=np.full((24, 30), 0.999), params=exact)
    np.testing.assert_allclose(default, explicit, atol=1e-10)
    # Scaling c and lam by the same factor scales A and b alike: same output.
    scaled = bilateral_solve(image, target, confidence=np.full((24, 30), 0.999 * 5),
                             params=dataclasses.replace(exact, lam=exact.lam * 5))
    np.testing.assert_allclose(scaled, default, atol=1e-9)
    # A larger lambda smooths more: the output moves further from the target.
    smoother = bilateral_solve(image, target, params=dataclasses.replace(exact, lam=exact.lam * 50))
    assert np.abs(smoother - target).mean() > np.abs(default - target).mean()


def test_maximum_principle(small_case):
    # A = lam * Laplacian + diag(S c) is an M-matrix with A 1 = S c, so the exact solution
    # lies within [min t, max t]: the solver needs no clipping beyond CG's own error.
    image, target, confidence = small_case
    target = 0.2 + 0.5 * target
    out = bilateral_solve(image, target, confidence=confidence, params=SMALL_PARAMS)
    assert out.min() >= target.min() - 1e-12 and out.max() <= target.max() + 1e-12
    assert out.max() - out.min() < target.max() - target.min()


def test_grid_reuse_equals_one_call(rng):
    image, shape = _two_region_image(rng, 48, 64)
    grid = BilateralGrid(image, params=OFFICIAL)
    for target in (shape.astype(float), rng.uniform(0.0, 1.0, shape.shape)):
        one_call = bilateral_solve(image, target, params=OFFICIAL)
        np.testing.assert_array_equal(grid.solve(target), one_call)


# ---------------------------------------------------------------- presets and errors

def test_presets():
    assert PRESETS == {"tokencut": TOKENCUT, "official": OFFICIAL}
    assert (TOKENCUT.sigma_spatial, TOKENCUT.sigma_luma, TOKENCUT.sigma_chroma) == (16, 16, 8)
    assert (OFFICIAL.sigma_spatial, OFFICIAL.sigma_luma, OFFICIAL.sigma_chroma) == (24, 4, 4)
    for p in PRESETS.values():
        assert (p.lam, p.cg_maxiter, p.cg_tol, p.confidence) == (256, 25, 1e-5, 0.999)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TOKENCUT.lam = 1.0


@pytest.mark.parametrize("field, value", [
    ("sigma_spatial", 0.0), ("sigma_luma", -1.0), ("sigma_chroma", float("nan")),
    ("lam", 0.0), ("lam", float("inf")), ("cg_tol", -1e-5), ("confidence", 0.0),
    ("cg_maxiter", 2.5), ("cg_maxiter", 0), ("cg_maxiter", True), ("bistochastic_iters", 0),
    ("lam", "256"),
])
def test_bad_params(field, value):
    with pytest.raises(InputError, match=field):
        BilateralSolverParams(**{field: value})


def test_bad_inputs(rng):
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    target = np.zeros((10, 12))
    with pytest.raises(InputError, match=r"\(10, 11\).*\(10, 12\)"):
        bilateral_solve(image, np.zeros((10, 11)))
    with pytest.raises(InputError, match=r"confidence has shape \(12, 10\).*\(10, 12\)"):
        bilateral_solve(image, target, confidence=np.ones((12, 10)))
    bad = target.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="target has non-finite"):
        bilateral_solve(image, bad)
    with pytest.raises(InputError, match="confidence has non-finite"):
        bilateral_solve(image, target, confidence=np.where(bad == bad, 1.0, np.inf))
    with pytest.raises(InputError, match=">= 0"):
        bilateral_solve(image, target, confidence=-np.ones((10, 12)))
    with pytest.raises(InputError, match="zero everywhere"):
        bilateral_solve(image, target, confidence=np.zeros((10, 12)))
    with pytest.raises(InputError, match=r"RGB \(H, W, 3\)"):
        bilateral_solve(image[..., 0], target)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        bilateral_solve(image.astype(np.float64), target)
    with pytest.raises(InputError, match="uint8"):
        bilateral_solve(image.astype(np.int32), target)
    with pytest.raises(InputError, match="non-finite"):
        bilateral_solve(np.full((10, 12, 3), np.nan), target)
    with pytest.raises(InputError, match="real array"):
        bilateral_solve(image, target.astype(complex))
    with pytest.raises(InputError, match="BilateralSolverParams"):
        bilateral_solve(image, target, params={"lam": 1.0})
    with pytest.raises(InputError, match="too small"):
        BilateralGrid(rng.uniform(0, 1, (64, 64, 3)),
                      params=BilateralSolverParams(sigma_spatial=1e-9, sigma_luma=1e-9))


@pytest.mark.realdata
def test_real_images_keep_their_ground_truth(real_data_root):
    from paperlib.images import list_images, read_image, read_mask

    images = list_images(real_data_root / "DUTS-TE" / "DUTS-TE-Image")
    for stem in sorted(images)[:3]:
        image = read_image(images[stem])
        gt = read_mask(real_data_root / "DUTS-TE" / "DUTS-TE-Mask" / f"{stem}.png")
        out = bilateral_solve(image, gt)
        assert out.shape == gt.shape and np.isfinite(out).all()
        # Measured on the first three DUTS-TE stems: range [0, 1 + 2e-15]; IoU with the ground
        # truth 0.956, 0.911, 0.894; mean |out - gt| 0.092, 0.040, 0.150.
        assert -1e-4 <= out.min() and out.max() <= 1 + 1e-4
        assert _iou(out > 0.5, gt > 0.5) > 0.85
        assert np.abs(out - gt).mean() > 0.01
