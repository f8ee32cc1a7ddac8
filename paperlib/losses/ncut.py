"""Normalized cuts on features: the affinity graph, its spectral bipartition, the Ncut value.

Shi & Malik's normalized cut of a graph with affinity ``W`` (N, N) and degrees ``d = W 1`` splits
the nodes into A and B = V \\ A minimising (paper eq. 1)

    Ncut(A, B) = cut(A, B) / assoc(A, V) + cut(B, A) / assoc(B, V).

TokenCut relaxes it to the generalised eigenproblem ``(D - W) v = lambda D v`` and splits the
second-smallest eigenvector (:func:`second_smallest_eigenvector`); Sempart instead minimises the
soft relaxation of eq. (3) on a predicted map (:func:`ncut_value`). Both build ``W`` the same way
(:func:`affinity`), with different thresholds: :data:`TOKENCUT_AFFINITY` and
:data:`SEMPART_AFFINITY` (their home, with :func:`check_affinity`, is the torch-free
:mod:`paperlib.losses.settings`).

Everything here works on features only; it knows nothing about a backbone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_choice, check_tensor, require
from .settings import SEMPART_AFFINITY, TOKENCUT_AFFINITY, AffinityParams, check_affinity  # noqa: F401 (re-exported)

SOLVERS = ("auto", "dense", "lanczos", "arpack", "lobpcg")
# Below this many nodes the dense LAPACK solver is as fast as Lanczos (0.5 ms at N = 100, measured
# on 2 cores); above it Lanczos wins by 10-20x (21 ms vs 219 ms at N = 1600, 131 ms vs 2.95 s at
# N = 3600). See second_smallest_eigenvector.
AUTO_DENSE_MAX_N = 128
# The floor of the Ncut loss's denominators, 1e-6 (docs/paper_and_code.md#losses).
ASSOC_FLOOR = 1e-6


class EigenResult(NamedTuple):
    """The second-smallest generalised eigenpair of ``(D - W) v = lambda D v``."""

    v: torch.Tensor           # (B, N) or (N,), v^T D v = 1, sign fixed so v[argmax |v|] > 0
    eigenvalue: torch.Tensor  # (B,) or (), lambda_2 in [0, 2]


def affinity(keys: torch.Tensor, *, tau: float = TOKENCUT_AFFINITY.tau,
             eps: float = TOKENCUT_AFFINITY.eps, binary: bool = True) -> torch.Tensor:
    """Token affinity graph from cosine similarities (paper eq. 2, docs/paper_and_code.md#affinity).

    The features are L2-normalised over D and ``S = K^T K`` is their cosine similarity, the
    diagonal included. The binary graph (TokenCut's default and Sempart's) is
    ``W_ij = 1 if S_ij > tau else eps``. The soft graph is TokenCut's ``--no-binary-graph``
    ablation: ``W_ij = S_ij if S_ij >= tau else eps`` (TokenCut replaces the entries *below* tau,
    so a similarity exactly equal to tau is kept, unlike the strict ``>`` of the binary graph).

    Args:
        keys: (B, D, h, w) features, as a backbone returns them. Tokens are flattened row-major,
            node ``n = row * w + col``, N = h * w.
        tau: similarity threshold; 0.2 for TokenCut, 0.4 for the Sempart losses.
        eps: weight of unlinked pairs (> 0 keeps every degree positive); 1e-5 / 1e-6.
        binary: 1 for linked pairs if True, else their similarity.

    Returns:
        W: (B, N, N), symmetric, in the dtype and on the device of ``keys``.
    """
    check_tensor("keys", keys, ndim=4, floating=True)
    check_affinity(tau, eps)
    require(bool(torch.isfinite(keys).all()), "keys hold NaN or Inf values: the backbone's weights or the "
                                              "image are damaged")
    B, D, h, w = keys.shape
    K = F.normalize(keys.reshape(B, D, h * w), p=2, dim=1)  # (B, D, N), unit columns
    S = K.transpose(1, 2) @ K  # (B, N, D) @ (B, D, N) -> (B, N, N)
    S = 0.5 * (S + S.transpose(1, 2))  # exact symmetry despite the rounding of the matmul
    if binary:
        return torch.where(S > tau, torch.ones_like(S), torch.full_like(S, eps))
    return torch.where(S >= tau, S, torch.full_like(S, eps))


def second_smallest_eigenvector(W: torch.Tensor, *, solver: str = "auto") -> EigenResult:
    """Second-smallest eigenvector of ``(D - W) v = lambda D v`` (Shi & Malik; TokenCut).

    The smallest eigenpair is the constant vector with lambda = 0; it is excluded. All solvers
    run on the CPU in float64 and return the same vector up to rounding:

    - ``"dense"``: ``scipy.linalg.eigh(D - W, D, subset_by_index=[1, 1])``, TokenCut's own call.
    - ``"lanczos"``: Lanczos with full reorthogonalisation on the normalised affinity
      ``M = D^-1/2 W D^-1/2``, whose two largest eigenvalues are ``1 - lambda_1 = 1`` and
      ``1 - lambda_2``; the first is known (eigenvector D^1/2 1) and deflated, so Lanczos looks
      for ``1 - lambda_2`` alone, stopping as soon as the Ritz residual is below 1e-12 (in
      practice 13-18 products with W on TokenCut's graphs); then ``v = D^-1/2 u``. M is never
      formed: only products with W.
    - ``"arpack"``: the same deflated problem solved by ARPACK (``scipy.sparse.linalg.eigsh``),
      which fills a 20-vector Krylov space before it checks (21 products).
    - ``"lobpcg"``: ``torch.lobpcg`` on the same M (largest two).
    - ``"auto"``: dense below :data:`AUTO_DENSE_MAX_N` nodes, else lanczos (arpack when it does
      not converge in :data:`LANCZOS_MAX_STEPS` steps, dense when ARPACK does not either).
      Graphs of fewer than 6 nodes always go to dense (the iterative solvers need N > 2k = 4
      and N >= 3k = 6). Measured on 2 CPU cores, 1 thread (``make bench``, DUTS-TE photos on
      the ``filterbank`` graph): see README "Benchmarks".

    The vector is made exactly D-orthogonal to the constant vector (when lambda_2 is tiny,
    rounding mixes a little of it in; a constant shift changes neither the mean split nor,
    barring ties, the seed), scaled to ``v^T D v = 1``, and its sign is fixed so that its entry
    of largest magnitude (the TokenCut seed; the first one on ties) is positive. The seed then
    lies on the side ``v > mean(v)`` whatever the solver returned.

    Args:
        W: (B, N, N) or (N, N) symmetric non-negative affinity with positive degrees, N >= 2.
        solver: one of "auto", "dense", "lanczos", "arpack", "lobpcg".

    Returns:
        EigenResult(v (B, N) or (N,), eigenvalue (B,) or ()), in W's dtype and on its device.
    """
    check_tensor("W", W, ndim=(2, 3), floating=True)
    check_choice("solver", solver, SOLVERS)
    N = W.shape[-1]
    require(W.shape[-2] == N, f"W must be square (..., N, N), got shape {tuple(W.shape)}")
    require(N >= 2, f"W needs at least 2 nodes for a second eigenvector, got N = {N}")
    Wb = W.detach().to("cpu").reshape(-1, N, N)  # may share W's memory: never written to
    vs, lams = [], []
    for Wi in Wb:
        Wi = _checked_symmetric(Wi)  # float64, exactly symmetric
        d = Wi @ np.ones(N)  # (N,) degrees (one BLAS product: half the time of a row sum)
        require(bool((d > 0).all()), "every node of W needs a positive degree (use eps > 0)")
        v, lam = _solve(Wi, d, solver)
        v = v - (d @ v) / d.sum()  # remove rounding's share of the constant eigenvector
        v = v / np.sqrt(v @ (d * v))  # D-norm 1
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        vs.append(v)
        lams.append(lam)
    v = torch.from_numpy(np.stack(vs)).to(W.device, W.dtype)  # (B, N)
    lam = torch.tensor(lams, dtype=W.dtype, device=W.device)  # (B,)
    if W.ndim == 2:
        return EigenResult(v[0], lam[0])
    return EigenResult(v, lam)


def _checked_symmetric(W: torch.Tensor) -> np.ndarray:
    """Validate one (N, N) affinity and return it in float64, exactly symmetric.

    An exactly symmetric W (what :func:`affinity` builds) is found by comparing it with W^T in its
    own dtype, tile against mirrored tile (256 x 256 blocks, so that the transposed reads stay in
    cache: 3 ms at N = 1600 where one whole-matrix comparison with the strided W^T takes 8), and
    is only converted. Otherwise the symmetric part (W + W^T) / 2 is returned when the two differ
    by rounding only.
    """
    low, high = torch.aminmax(W)
    require(bool(torch.isfinite(high)) and bool(torch.isfinite(low)), "W must be finite")
    require(bool(low >= 0), "W must be non-negative (an affinity)")
    if _exactly_symmetric((W.float() if W.dtype == torch.bfloat16 else W).numpy()):   # numpy has no bfloat16
        return W.to(torch.float64).numpy()      # a new array unless W is float64 already
    W = W.to(torch.float64).numpy()
    N, tile = W.shape[0], _SYMMETRY_TILE
    sym = np.empty_like(W)
    worst = 0.0
    for i in range(0, N, tile):
        for j in range(i, N, tile):
            upper, lower_t = W[i:i + tile, j:j + tile], W[j:j + tile, i:i + tile].T
            block = upper + lower_t
            block *= 0.5
            worst = max(worst, float(np.abs(upper - lower_t).max()))
            sym[i:i + tile, j:j + tile] = block
            sym[j:j + tile, i:i + tile] = block.T
    require(worst <= 2e-5 * float(sym.max()) + 2e-7, "W must be symmetric (W == W^T)")
    return sym


_SYMMETRY_TILE = 128   # rows and columns of the blocks _checked_symmetric averages
_EQUALITY_TILE = 256   # ... and of the blocks _exactly_symmetric compares


def _exactly_symmetric(W: np.ndarray) -> bool:
    """W == W^T entry for entry (a square array), compared tile against mirrored tile."""
    N, tile = W.shape[0], _EQUALITY_TILE
    for i in range(0, N, tile):
        for j in range(i, N, tile):
            if not np.array_equal(W[i:i + tile, j:j + tile], W[j:j + tile, i:i + tile].T):
                return False
    return True


def _solve(W: np.ndarray, d: np.ndarray, solver: str) -> tuple[np.ndarray, float]:
    """One (N, N) float64 problem -> (v (N,), lambda_2), in any scale and sign."""
    N = len(d)
    if solver == "dense" or (solver == "auto" and N < AUTO_DENSE_MAX_N) or N < 6:
        return _solve_dense(W, d)
    if solver == "lobpcg":
        return _solve_lobpcg(W, d)
    if solver in ("auto", "lanczos"):
        found = _solve_lanczos(W, d)
        if isinstance(found, tuple):
            return found
        if solver == "lanczos":
            raise RuntimeError("lambda_2 >= 1 (a graph close to complete): Lanczos on the deflated "
                               "problem cannot find it; use solver='arpack' or 'dense'" if found == "complete"
                               else f"Lanczos did not converge in {LANCZOS_MAX_STEPS} steps; "
                                    "use solver='arpack' or 'dense'")
    from scipy.sparse.linalg import ArpackNoConvergence

    try:
        return _solve_arpack(W, d)
    except ArpackNoConvergence:
        if solver == "auto":
            return _solve_dense(W, d)
        raise


def _solve_dense(W: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float]:
    from scipy.linalg import eigh

    L = np.diag(d) - W  # (N, N) graph Laplacian D - W
    lam, V = eigh(L, np.diag(d), subset_by_index=[1, 1])  # V: (N, 1), V^T D V = 1
    return V[:, 0], float(lam[0])


LANCZOS_MAX_STEPS = 100   # Lanczos steps before the "auto" solver hands over to ARPACK
LANCZOS_TOL = 1e-12       # stop when |M u - mu u| (the Ritz residual, |M| <= 1) is below this


def _solve_lanczos(W: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float] | str:
    """Largest eigenpair of the deflated M by Lanczos; "unconverged" when it does not converge,
    "complete" when that eigenvalue is not above 0 (lambda_2 >= 1: ARPACK's two-largest branch
    handles it)."""
    from scipy.linalg import blas

    N = len(d)
    # W is exactly symmetric (_checked_symmetric), so its transpose, a Fortran-ordered view of the
    # same memory, is W: BLAS's symmetric product reads one triangle of it (0.36 vs 0.59 ms at
    # N = 1600, one thread).
    W_f = W.T if W.flags.c_contiguous else np.asfortranarray(W)
    r = 1.0 / np.sqrt(d)                       # (N,) diagonal of D^-1/2
    u1 = np.sqrt(d) / np.sqrt(d.sum())         # the known top eigenvector of M, deflated
    steps = min(LANCZOS_MAX_STEPS, N - 1)
    Q = np.empty((steps + 1, N))               # orthonormal Lanczos vectors, one per row
    alpha, beta = np.empty(steps), np.empty(steps)
    q = np.random.default_rng(0).standard_normal(N)   # a fixed start: deterministic
    q -= u1 * (u1 @ q)
    Q[0] = q / np.linalg.norm(q)
    for j in range(steps):
        w = r * blas.dsymv(1.0, W_f, r * Q[j])
        w -= u1 * (u1 @ w)
        alpha[j] = Q[j] @ w
        basis = Q[:j + 1]
        for _ in range(2):                     # full reorthogonalisation, twice is enough
            w -= basis.T @ (basis @ w)
        beta[j] = np.linalg.norm(w)
        if j >= 1 or beta[j] <= LANCZOS_TOL:
            mu, s = _top_ritz_pair(alpha[:j + 1], beta[:j])
            # |M u - mu u| = beta_j |last entry of s| for u = basis^T s (the Lanczos relation).
            if beta[j] * abs(s[-1]) <= LANCZOS_TOL:
                if mu <= 1e-8:
                    return "complete"
                return r * (basis.T @ s), float(1.0 - mu)
        Q[j + 1] = w / beta[j]
    return "unconverged"


def _top_ritz_pair(alpha: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray]:
    """Largest eigenvalue and its unit eigenvector of the symmetric tridiagonal matrix with
    diagonal ``alpha`` (k,) and off-diagonal ``beta`` (k - 1,): LAPACK's dstev called directly
    (a third of ``scipy.linalg.eigh_tridiagonal``'s time on the small matrices Lanczos builds)."""
    from scipy.linalg import lapack

    if len(alpha) == 1:
        return float(alpha[0]), np.ones(1)
    mu, s, info = lapack.dstev(alpha, beta)
    if info != 0:
        raise RuntimeError(f"LAPACK dstev failed (info = {info}) on a {len(alpha)}-step Lanczos matrix")
    return float(mu[-1]), s[:, -1]


def _solve_arpack(W: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    N = len(d)
    r = 1.0 / np.sqrt(d)  # (N,) diagonal of D^-1/2
    # A fixed random start: deterministic, and never the known top eigenvector D^1/2 1.
    v0 = np.random.default_rng(0).standard_normal(N)
    # The top eigenpair of M = D^-1/2 W D^-1/2 is known: 1 and u1 = D^1/2 1 / |D^1/2 1|. Lanczos
    # on M - u1 u1^T (deflated: that eigenvalue moved to 0) finds 1 - lambda_2 alone, in fewer
    # steps than the two largest of M. M is never formed: (N,) -> (N, N) @ (N,) -> (N,).
    u1 = np.sqrt(d) / np.sqrt(d.sum())

    def deflated(x: np.ndarray) -> np.ndarray:
        y = r * (W @ (r * x.ravel()))
        return y - u1 * (u1 @ y)

    mu, U = eigsh(LinearOperator((N, N), matvec=deflated, dtype=np.float64), k=1, which="LA", v0=v0)
    if mu[0] > 1e-8:       # 1 - lambda_2 above the deflated 0: the answer
        return r * U[:, 0], float(1.0 - mu[0])
    # lambda_2 >= 1 (a graph close to complete): 0 may be the largest; take the two largest of M.
    M = LinearOperator((N, N), matvec=lambda x: r * (W @ (r * x.ravel())), dtype=np.float64)
    mu, U = eigsh(M, k=2, which="LA", v0=v0)  # two largest: 1 and 1 - lambda_2
    i = int(np.argmin(mu))
    return r * U[:, i], float(1.0 - mu[i])


def _solve_lobpcg(W: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float]:
    r = 1.0 / np.sqrt(d)  # (N,) diagonal of D^-1/2
    M = torch.from_numpy(r[:, None] * W * r[None, :])  # D^-1/2 W D^-1/2: (N, N)
    X = torch.randn(len(d), 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mu, U = torch.lobpcg(M, k=2, X=X, largest=True, tol=1e-8, niter=1000)
    i = int(torch.argmin(mu))
    u = U[:, i]
    residual = float(torch.linalg.norm(M @ u - mu[i] * u))
    if residual > 1e-6:
        raise RuntimeError(f"torch.lobpcg did not converge (residual {residual:.2e}); "
                           "use solver='dense' or 'arpack'")
    return r * u.numpy(), float(1.0 - mu[i])


def ncut_value(W: torch.Tensor, s: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Relaxed normalized cut of a soft assignment (paper eq. 3; the Sempart Ncut loss).

    ``Ncut = s^T W (1 - s) / s^T W 1 + (1 - s)^T W s / (1 - s)^T W 1``, each denominator floored
    at :data:`ASSOC_FLOOR` = 1e-6. Symmetric in s and 1 - s; differentiable in s (and W). The
    Sempart loss clamps s to [1e-6, 1 - 1e-6] before calling this; no clamping happens here.

    Args:
        W: (B, N, N) affinity (e.g. ``affinity(keys, **SEMPART_AFFINITY._asdict())``).
        s: (B, N), or any (B, ...) holding N values such as the coarse map (B, 1, h, w) flattened
            row-major like :func:`affinity`; values in [0, 1].
        reduction: "mean" over the batch (the loss) or "none".

    Returns:
        () for "mean", (B,) for "none".
    """
    check_tensor("W", W, ndim=3, floating=True)
    check_tensor("s", s, floating=True)
    check_choice("reduction", reduction, ("mean", "none"))
    B, N, _ = W.shape
    require(W.shape[2] == N, f"W must be (B, N, N), got shape {tuple(W.shape)}")
    require(s.ndim >= 2 and s.shape[0] == B and s[0].numel() == N,
            f"s must be (B, N) or (B, ...) with N = {N} values per image for W of shape "
            f"{tuple(W.shape)}, got shape {tuple(s.shape)}")
    s = s.reshape(B, N, 1)  # (B, N, 1)
    t = 1.0 - s             # (B, N, 1), the assignment to B = V \ A
    Ws = W @ s              # (B, N, N) @ (B, N, 1) -> (B, N, 1)
    Wt = W @ t              # (B, N, 1)
    d = W.sum(dim=2, keepdim=True)  # (B, N, 1), W 1
    cut_AB = (s * Wt).sum(dim=(1, 2))   # s^T W (1 - s): (B,)
    cut_BA = (t * Ws).sum(dim=(1, 2))   # (1 - s)^T W s: (B,)
    assoc_A = (s * d).sum(dim=(1, 2)).clamp_min(ASSOC_FLOOR)  # s^T W 1: (B,)
    assoc_B = (t * d).sum(dim=(1, 2)).clamp_min(ASSOC_FLOOR)  # (1 - s)^T W 1: (B,)
    ncut = cut_AB / assoc_A + cut_BA / assoc_B  # (B,)
    return ncut.mean() if reduction == "mean" else ncut


def ncut_of_partition(W: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Normalized cut of a hard bipartition (paper eq. 1).

    Args:
        W: (B, N, N) or (N, N) affinity.
        labels: (B, N) or (N,) boolean or {0, 1}: True / 1 marks the set A.

    Returns:
        (B,) or (): Ncut(A, B); +inf where A or B is empty (a bipartition needs two sets).
    """
    check_tensor("W", W, ndim=(2, 3), floating=True)
    check_tensor("labels", labels, ndim=W.ndim - 1)
    require(tuple(labels.shape) == tuple(W.shape[:-1]),
            f"labels must have shape {tuple(W.shape[:-1])} for W of shape {tuple(W.shape)}, "
            f"got {tuple(labels.shape)}")
    require(bool(((labels == 0) | (labels == 1)).all()), "labels must be boolean or 0/1")
    Wb = W.reshape(-1, W.shape[-1], W.shape[-1])  # (B, N, N)
    a = labels.reshape(Wb.shape[0], -1).to(W.dtype)  # (B, N)
    value = ncut_value(Wb, a, reduction="none")  # (B,)
    size_A = a.sum(dim=1)  # (B,)
    empty = (size_A == 0) | (size_A == a.shape[1])
    value = torch.where(empty, torch.full_like(value, float("inf")), value)
    return value[0] if W.ndim == 2 else value
