"""The fast bilateral solver (Barron & Poole, ECCV 2016), on numpy and scipy.

TokenCut's "+BF" baseline (paper Tab. 5, docs/paper_and_code.md#tokencut) refines a soft mask ``t`` with this
solver. It finds the image ``x`` that stays close to ``t`` where the confidence ``c`` is high and
is smooth along the image's edges, by solving in a bilateral grid instead of on pixels:

    pixels --splat S--> grid vertices --blur B--> vertices --slice S^T--> pixels

Each pixel falls in one vertex of a 5-D grid (x, y, luma, u, v; each coordinate divided by its
bandwidth and floored). With counts ``S 1``, diagonal ``Dn`` is chosen (bistochastisation) so that
``Dn B Dn 1 = Dm 1`` with ``Dm ~= diag(S 1)``; the smoothness of a grid signal ``y`` is then
``y^T (Dm - Dn B Dn) y``, and the bilateral-space problem reduces to the linear system

    A y = b,    A = lam (Dm - Dn B Dn) + diag(S c),    b = S (c * t),

solved by conjugate gradient with a Jacobi preconditioner; the output is ``S^T y``.

    BilateralGrid(image, params=...)     the grid of one image, reused across targets
    bilateral_solve(image, target, ...)  one call: grid, then solve

Two presets: ``TOKENCUT`` (sigma 16/16/8, the settings of TokenCut's "+BF",
docs/paper_and_code.md#tokencut) and ``OFFICIAL`` (sigma 24/4/4, the bandwidth defaults of the
released solver code); both use lambda 256, 25 CG iterations, tolerance 1e-5 (scipy's ``rtol``)
and confidence 0.999.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import is_int, is_number, require

# The grid has 5 dimensions: x, y, luma, u, v (Barron & Poole's bilateral grid).
GRID_DIMS = 5
# Full-range BT.601 RGB -> YUV (the JPEG YCbCr matrix), u and v offset by 128 so all three lie
# in [0, 255]; the colour space of Barron & Poole's released grid.
RGB_TO_YUV = ((0.299, 0.587, 0.114),
              (-0.168736, -0.331264, 0.5),
              (0.5, -0.418688, -0.081312))
YUV_OFFSET = (0.0, 128.0, 128.0)
# Floor on the diagonal of A in the Jacobi preconditioner (released code's A_diag_min), so a
# vertex with no confidence and no neighbours does not divide by zero.
A_DIAG_MIN = 1e-5


def _check_number(name: str, value, *, integer: bool = False) -> None:
    require(is_int(value) if integer else is_number(value),
            f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    require(math.isfinite(value) and value > 0, f"{name} must be finite and > 0, got {value!r}")


@dataclass(frozen=True)
class BilateralSolverParams:
    """Settings of the fast bilateral solver. Defaults: TokenCut's (docs/paper_and_code.md#tokencut)."""

    sigma_spatial: float = 16.0  # pixels per grid cell along x and y (TokenCut)
    sigma_luma: float = 16.0     # luma levels (of 0..255) per grid cell (TokenCut)
    sigma_chroma: float = 8.0    # u, v levels (of 0..255) per grid cell (TokenCut)
    lam: float = 256.0           # weight of smoothness against the data term (TokenCut)
    cg_maxiter: int = 25         # conjugate-gradient iterations (released code and TokenCut)
    cg_tol: float = 1e-5         # CG relative residual tolerance, scipy's `rtol` (same source)
    confidence: float = 0.999    # constant confidence when none is given (TokenCut)
    bistochastic_iters: int = 10  # Sinkhorn-like normalisation steps (released code)

    def __post_init__(self):
        for name in ("sigma_spatial", "sigma_luma", "sigma_chroma", "lam", "cg_tol", "confidence"):
            _check_number(name, getattr(self, name))
        for name in ("cg_maxiter", "bistochastic_iters"):
            _check_number(name, getattr(self, name), integer=True)


TOKENCUT = BilateralSolverParams()
OFFICIAL = BilateralSolverParams(sigma_spatial=24.0, sigma_luma=4.0, sigma_chroma=4.0)
PRESETS = {"tokencut": TOKENCUT, "official": OFFICIAL}


def _check_image(image) -> np.ndarray:
    """Return the image as float64 RGB (H, W, 3) in [0, 255]."""
    image = np.asarray(image)
    require(image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0,
            f"image must be RGB (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    require(np.issubdtype(image.dtype, np.floating),
            f"image must be uint8 in [0, 255] or floating in [0, 1], got {image.dtype}")
    require(bool(np.isfinite(image).all()), "image has non-finite values")
    require(bool(image.min() >= 0.0 and image.max() <= 1.0),
            f"a floating-point image must lie in [0, 1], got [{image.min()}, {image.max()}]")
    return image.astype(np.float64) * 255.0


def _check_map(name: str, values, shape: tuple[int, int]) -> np.ndarray:
    """Return a finite real (H, W) map as float64, its shape checked against the image's."""
    values = np.asarray(values)
    require(np.issubdtype(values.dtype, np.number) and not np.iscomplexobj(values),
            f"{name} must be a real array, got {values.dtype}")
    require(values.shape == shape,
            f"{name} has shape {values.shape} but the image is {shape}; they must match")
    values = values.astype(np.float64)
    require(bool(np.isfinite(values).all()), f"{name} has non-finite values")
    return values


class BilateralGrid:
    """The bilateral grid of one image: splat, blur, slice and the bistochastised weights.

    Barron & Poole's bilateral-space representation and its bistochastisation. Build it once
    per image and call :meth:`solve` for each target.

    Attributes:
        shape: (H, W) of the image.
        num_pixels: P = H * W.
        num_vertices: V, the occupied grid vertices (V <= P).
        vertex_of_pixel: (P,) int, the vertex each pixel (row-major) splats to.
        counts: (V,) pixels per vertex, S 1.
        n: (V,) the diagonal of Dn.
        m: (V,) the diagonal of Dm, n * (B n).
    """

    def __init__(self, image: np.ndarray, *, params: BilateralSolverParams = TOKENCUT):
        """Build the grid of ``image``.

        Args:
            image: RGB (H, W, 3), uint8 in [0, 255] or floating in [0, 1] (scaled by 255, so
                the luma and chroma bandwidths always refer to 0..255 levels).
            params: bandwidths, bistochastisation steps, and the solver settings that
                :meth:`solve` uses.
        """
        import pandas as pd        # here, not at import: `paperlib refine` with the guided filter
        from scipy import sparse   # never needs either

        require(isinstance(params, BilateralSolverParams),
                f"params must be a BilateralSolverParams, got {type(params).__name__}")
        rgb = _check_image(image)
        self.params = params
        height, width = rgb.shape[:2]
        self.shape = (height, width)
        self.num_pixels = height * width

        # Pixel positions in the 5-D grid: (x, y, luma, u, v), each over its bandwidth and floored
        # (the released code truncates: the floor, for these non-negative values). x and y are
        # one row and one column, broadcast; luma, u, v one (P, 3) product.
        yuv = rgb.reshape(-1, 3) @ np.asarray(RGB_TO_YUV).T                  # (P, 3)
        yuv += np.asarray(YUV_OFFSET)
        yuv /= np.array([params.sigma_luma, params.sigma_chroma, params.sigma_chroma])
        x = np.floor(np.arange(width) / params.sigma_spatial).astype(np.int64)   # (W,)
        y = np.floor(np.arange(height) / params.sigma_spatial).astype(np.int64)  # (H,)

        # Hash each coordinate to one integer. The +1 margin keeps every +/-1 neighbour of an
        # occupied vertex inside the box, so neighbour hashes never wrap into another row.
        # Luma, u, v are read per column (20x faster than an axis-0 reduction) and truncated
        # (= floor: every YUV value here is >= 0); the sizes are checked before the cast.
        low = [int(yuv[:, k].min()) for k in range(3)]
        high = [int(yuv[:, k].max()) for k in range(3)]
        extents = [int(x[-1]) + 3, int(y[-1]) + 3] + [h - lo + 3 for lo, h in zip(low, high)]
        require(math.prod(extents) < 2 ** 62 and max(high) < 2 ** 31 - 4,
                f"the grid would have {math.prod(extents):.3g} cells: the bandwidths are too "
                f"small for a {height}x{width} image")
        colour = yuv.astype(np.int32)                                          # (P, 3)
        colour -= np.array(low, dtype=np.int32) - 1
        strides = np.cumprod([1] + extents[:-1]).astype(np.int64)             # (5,)
        pixel_hash = colour @ strides[2:]                                     # (P,) int64
        pixel_hash.reshape(height, width)[:] += ((y[:, None] + 1) * strides[1] + (x[None, :] + 1) * strides[0])
        # Vertices: the distinct hashes, sorted (a hash table, then a sort of the V << P keys).
        vertex_of_pixel, vertex_hash = pd.factorize(pixel_hash, sort=True)
        self.vertex_of_pixel = np.asarray(vertex_of_pixel, dtype=np.int64)   # (P,)
        self.num_vertices = vertex_hash.size

        # Neighbours at +1 along each of the 5 dimensions, found by hash lookup; the -1
        # neighbours are the same pairs read the other way.
        src, dst = [], []
        for stride in strides:
            neighbour = vertex_hash + stride                                  # (V,)
            found = np.searchsorted(vertex_hash, neighbour).clip(max=self.num_vertices - 1)
            hit = vertex_hash[found] == neighbour
            src.append(np.flatnonzero(hit))
            dst.append(found[hit])
        src, dst = np.concatenate(src + dst), np.concatenate(dst + src)
        # (V, V), symmetric: 1 for each +/-1 neighbour. B = 2 * 5 * I + neighbours, the [1 2 1]
        # kernel along each dimension, summed over the dimensions (Barron & Poole).
        self._neighbours = sparse.csr_matrix(
            (np.ones(src.size), (src, dst)), shape=(self.num_vertices, self.num_vertices))

        # Bistochastisation: find n with n * (B n) = S 1, by the fixed-point iteration
        # n <- sqrt(n * (S 1) / (B n)); then m = n * (B n) makes Dn B Dn 1 = Dm 1 hold exactly.
        self.counts = np.bincount(self.vertex_of_pixel, minlength=self.num_vertices).astype(float)
        n = np.ones(self.num_vertices)
        for _ in range(params.bistochastic_iters):
            n = np.sqrt(n * self.counts / self.blur(n))
        self.n = n
        self.m = n * self.blur(n)
        # W = Dn (B - 2*5*I) Dn, the off-diagonal part of Dn B Dn. Since m = 2*5*n^2 + W 1,
        # Dm - Dn B Dn = diag(W 1) - W: a graph Laplacian whose rows sum to zero, so the
        # solver maps a constant target to the same constant.
        self._weights = self._neighbours.copy()                               # (V, V)
        rows = np.repeat(np.arange(self.num_vertices), np.diff(self._weights.indptr))
        self._weights.data = n[rows] * self._weights.data * n[self._weights.indices]
        self._degree = np.asarray(self._weights.sum(axis=1)).reshape(-1)      # (V,)

    def splat(self, values: np.ndarray) -> np.ndarray:
        """Sum pixel values into their vertices: S v. (H, W) or (P,) -> (V,)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        require(values.size == self.num_pixels,
                f"splat takes {self.num_pixels} pixel values (shape {self.shape}), "
                f"got {values.size}")
        return np.bincount(self.vertex_of_pixel, weights=values, minlength=self.num_vertices)

    def slice(self, values: np.ndarray) -> np.ndarray:
        """Read each pixel's vertex value: S^T y. (V,) -> (H, W)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        require(values.size == self.num_vertices,
                f"slice takes {self.num_vertices} vertex values, got {values.size}")
        return values[self.vertex_of_pixel].reshape(self.shape)

    def blur(self, values: np.ndarray) -> np.ndarray:
        """Blur vertex values with B: 2 * 5 * y plus the +/-1 neighbours' sum. (V,) -> (V,)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        require(values.size == self.num_vertices,
                f"blur takes {self.num_vertices} vertex values, got {values.size}")
        return 2 * GRID_DIMS * values + self._neighbours @ values

    def smoothness_matrix(self):
        """Dm - Dn B Dn as a scipy sparse (V, V) matrix (symmetric, positive semi-definite)."""
        from scipy import sparse

        return (sparse.diags(self._degree) - self._weights).tocsr()

    def solve(self, target: np.ndarray, *, confidence: np.ndarray | None = None) -> np.ndarray:
        """Solve the bilateral-space problem for one target (Barron & Poole, ECCV 2016).

        A y = b with A = lam (Dm - Dn B Dn) + diag(S c) and b = S (c * t), by conjugate
        gradient (Jacobi preconditioner, started at the confidence-weighted vertex means),
        with ``lam``, ``cg_maxiter`` and ``cg_tol`` from the grid's params.

        Args:
            target: (H, W) real values t, typically a soft mask in [0, 1].
            confidence: (H, W) non-negative weights c, not all zero; None means the constant
                ``params.confidence`` everywhere.

        Returns:
            float64 (H, W), S^T y, not clipped (a mask can overshoot [0, 1] slightly; callers
            that need [0, 1] clip).
        """
        from scipy.sparse.linalg import LinearOperator, cg

        target = _check_map("target", target, self.shape)
        if confidence is None:
            confidence = np.full(self.shape, float(self.params.confidence))
        else:
            confidence = _check_map("confidence", confidence, self.shape)
            require(bool(confidence.min() >= 0.0),
                    f"confidence must be >= 0, got a minimum of {confidence.min()}")
            require(bool(confidence.max() > 0.0), "confidence is zero everywhere")

        data_weight = self.splat(confidence)                                  # (V,) S c
        b = self.splat(confidence * target)                                   # (V,) S (c t)
        # A = lam (diag(W 1) - W) + diag(S c), applied without forming it: one product with W.
        lam, weights = float(self.params.lam), self._weights
        diagonal = lam * self._degree + data_weight
        V = self.num_vertices
        A = LinearOperator((V, V), matvec=lambda v: diagonal * v.ravel() - lam * (weights @ v.ravel()),
                           dtype=np.float64)
        inverse = 1.0 / np.maximum(diagonal, A_DIAG_MIN)                    # Jacobi preconditioner
        preconditioner = LinearOperator((V, V), matvec=lambda v: inverse * v.ravel(), dtype=np.float64)
        start = np.divide(b, data_weight, out=np.zeros_like(b), where=data_weight > 0)
        y, _ = cg(A, b, x0=start, rtol=self.params.cg_tol, maxiter=self.params.cg_maxiter,
                  M=preconditioner)
        return self.slice(y)


def bilateral_solve(image: np.ndarray, target: np.ndarray, *, confidence: np.ndarray | None = None,
                    params: BilateralSolverParams = TOKENCUT) -> np.ndarray:
    """Refine ``target`` along the edges of ``image`` with the fast bilateral solver.

    Barron & Poole (ECCV 2016); TokenCut's "+BF" refinement (docs/paper_and_code.md#tokencut; paper Tab. 5).
    Builds a :class:`BilateralGrid`; to refine several targets of one image, build the grid
    once and call its :meth:`BilateralGrid.solve`.

    Args:
        image: RGB (H, W, 3), uint8 in [0, 255] or floating in [0, 1].
        target: (H, W) real values, typically a soft mask in [0, 1].
        confidence: (H, W) non-negative weights, not all zero; None: ``params.confidence``
            everywhere.
        params: bandwidths, lambda and CG settings; ``TOKENCUT`` (default) or ``OFFICIAL``.

    Returns:
        float64 (H, W), the solver's soft output, not clipped.
    """
    return BilateralGrid(image, params=params).solve(target, confidence=confidence)
