"""Tests of paperlib.losses.ncut against dense scipy.linalg.eigh and hand-computed normalized cuts."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from paperlib.checks import InputError
from paperlib.losses import ncut
from paperlib.losses.ncut import (
    AUTO_DENSE_MAX_N,
    affinity,
    ncut_of_partition,
    ncut_value,
    second_smallest_eigenvector,
)
from paperlib.losses.settings import SEMPART_AFFINITY, TOKENCUT_AFFINITY

SOLVERS = ("dense", "lanczos", "arpack", "lobpcg", "auto")


def clustered_keys(rng, N, *, D=8, clusters=3, noise=0.6):
    """(1, D, 1, N) keys drawn around a few random centres with unequal cluster sizes."""
    centres = rng.standard_normal((clusters, D))
    sizes = rng.dirichlet(np.full(clusters, 2.0))
    labels = rng.choice(clusters, size=N, p=sizes)
    K = centres[labels] + noise * rng.standard_normal((N, D))
    return torch.from_numpy(K.T.reshape(1, D, 1, N).copy())


def reference_spectrum(W):
    """Full generalised spectrum of (D - W) v = lambda D v, independently of paperlib."""
    W = W.numpy().astype(np.float64)
    d = W.sum(axis=1)
    lam, V = scipy.linalg.eigh(np.diag(d) - W, np.diag(d))  # ascending, V^T D V = I
    return lam, V, d


def block_graph(sizes, *, eps, rng=None):
    """Blocks of ones on the diagonal, eps between blocks; optionally with shuffled nodes."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    if rng is not None:
        labels = rng.permutation(labels)
    W = np.where(labels[:, None] == labels[None, :], 1.0, eps)
    return torch.from_numpy(W), labels


# ----------------------------------------------------------------------------------- affinity

def test_presets_match_spec():
    assert TOKENCUT_AFFINITY == (0.2, 1e-5, True)
    assert SEMPART_AFFINITY == (0.4, 1e-6, True)
    assert SEMPART_AFFINITY._asdict() == {"tau": 0.4, "eps": 1e-6, "binary": True}


def test_affinity_binary_matches_numpy_cosine(rng):
    keys = torch.from_numpy(rng.standard_normal((2, 5, 3, 4)))  # (B, D, h, w), N = 12
    W = affinity(keys, tau=0.2, eps=1e-5)
    assert W.shape == (2, 12, 12) and W.dtype == torch.float64
    K = keys.numpy().reshape(2, 5, 12).transpose(0, 2, 1)  # (B, N, D), row-major tokens
    K = K / np.linalg.norm(K, axis=2, keepdims=True)
    S = K @ K.transpose(0, 2, 1)
    np.testing.assert_array_equal(W.numpy(), np.where(S > 0.2, 1.0, 1e-5))
    assert set(np.unique(W.numpy())) == {1e-5, 1.0}          # both kinds of pairs occur
    assert torch.equal(W, W.transpose(1, 2))
    assert torch.all(torch.diagonal(W, dim1=1, dim2=2) == 1)


def test_affinity_soft_is_tokencut_no_binary_graph(rng):
    keys = torch.from_numpy(rng.standard_normal((1, 6, 4, 4)))
    W = affinity(keys, tau=0.1, eps=1e-5, binary=False)
    K = keys.numpy().reshape(6, 16).T
    K = K / np.linalg.norm(K, axis=1, keepdims=True)
    S = K @ K.T
    # TokenCut's ablation: A[A < tau] = eps, the rest keeps its similarity.
    np.testing.assert_allclose(W[0].numpy(), np.where(S < 0.1, 1e-5, S), rtol=1e-12, atol=1e-15)
    assert torch.allclose(torch.diagonal(W[0]), torch.ones(16, dtype=torch.float64))
    assert torch.equal(W, W.transpose(1, 2))


def test_affinity_threshold_ties_follow_tokencut():
    # Unit vectors (1, 0, 0, 0) and (1, 1, 1, 1) / 2 have cosine exactly 0.5 in floating point.
    keys = torch.tensor([[1.0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float64).T.reshape(1, 4, 1, 2)
    binary = affinity(keys, tau=0.5, eps=1e-5)[0]
    soft = affinity(keys, tau=0.5, eps=1e-5, binary=False)[0]
    assert binary[0, 1] == 1e-5  # binary: S > tau (A = A > tau)
    assert soft[0, 1] == 0.5     # soft: only S < tau is replaced (A[A < tau] = eps)


def test_affinity_scale_invariant_and_keeps_dtype():
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(1, 7, 5, 5, generator=g)
    scale = torch.rand(1, 1, 5, 5, generator=g) * 10 + 0.1  # per-token rescaling
    W = affinity(keys)
    assert W.dtype == torch.float32
    assert torch.equal(W, affinity(keys * scale))


def test_affinity_errors():
    with pytest.raises(InputError, match="keys must have 4 dimensions"):
        affinity(torch.zeros(2, 3, 4))
    with pytest.raises(InputError, match=r"eps must be in \(0, 1\)"):
        affinity(torch.ones(1, 2, 2, 2), eps=0.0)
    with pytest.raises(InputError, match="floating-point"):
        affinity(torch.ones(1, 2, 2, 2, dtype=torch.int64))


@pytest.mark.parametrize("tau", [float("nan"), 5.0, 1.0, -1.5, float("inf"), True])
def test_a_threshold_that_links_nothing_or_everything_by_accident_is_refused(tau):
    """tau = nan or 5 used to cut a graph of eps alone without a word (issue 10)."""
    with pytest.raises(InputError, match=r"tau must be a cosine similarity in \[-1, 1\)"):
        affinity(torch.ones(1, 2, 2, 2), tau=tau)


def test_non_finite_keys_are_refused_by_name():
    keys = torch.ones(1, 2, 2, 2)
    keys[0, 0, 1, 1] = float("nan")
    with pytest.raises(InputError, match="keys hold NaN or Inf"):
        affinity(keys)


# ------------------------------------------------------------------------- eigenvector solvers

@functools.lru_cache(maxsize=None)
def random_graph(kind, N):
    """The random affinity of a test case and its reference spectrum, computed once."""
    if kind == "soft":  # continuous weights: a generic spectrum
        rng = np.random.default_rng(N)
        W = affinity(clustered_keys(rng, N), tau=0.0, eps=1e-5, binary=False)[0]
    else:               # TokenCut's binary graph on noisier clusters
        rng = np.random.default_rng(1000 + N)
        W = affinity(clustered_keys(rng, N, noise=0.9), **TOKENCUT_AFFINITY._asdict())[0]
    return W, reference_spectrum(W)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("N", [16, 100, 400])
@pytest.mark.parametrize("kind", ["soft", "binary"])
def test_solvers_match_dense_eigh(kind, N, solver):
    W, (lam_ref, V_ref, d) = random_graph(kind, N)
    assert abs(lam_ref[0]) < 1e-10  # the constant vector, excluded below
    # A gap between lambda_2 and lambda_3, or "the" second eigenvector is not unique.
    assert (lam_ref[2] - lam_ref[1]) / lam_ref[1] > 1e-3
    v, lam = second_smallest_eigenvector(W, solver=solver)
    v = v.numpy()
    cos = abs(v @ V_ref[:, 1]) / (np.linalg.norm(v) * np.linalg.norm(V_ref[:, 1]))
    assert cos > 0.999
    assert abs(float(lam) - lam_ref[1]) <= 1e-6 * lam_ref[1]
    assert v @ (d * v) == pytest.approx(1.0, rel=1e-9)        # D-norm 1
    assert abs(v @ d) < 1e-8 * np.sqrt(d.sum())               # D-orthogonal to the constant
    assert v[np.argmax(np.abs(v))] > 0                        # the sign rule
    L = np.diag(d) - W.numpy()
    assert np.linalg.norm(L @ v - float(lam) * d * v) < 1e-6  # it solves the eigenproblem


@pytest.mark.parametrize("solver", SOLVERS)
def test_two_cluster_graph_is_split_exactly(solver):
    # N = 300 > AUTO_DENSE_MAX_N, so "auto" takes the Lanczos path here.
    rng = np.random.default_rng(3)
    W, labels = block_graph([110, 190], eps=1e-5, rng=rng)
    assert W.shape[0] > AUTO_DENSE_MAX_N
    v, lam = second_smallest_eigenvector(W, solver=solver)
    side = (v > v.mean()).numpy()
    assert np.array_equal(side, labels == 0) or np.array_equal(side, labels == 1)
    # lambda_2 equals the Ncut of the two blocks for block-constant graphs:
    # cut = 110 * 190 * eps, assoc(A) = 110^2 + cut, assoc(B) = 190^2 + cut.
    cut = 110 * 190 * 1e-5
    assert float(lam) == pytest.approx(cut / (110**2 + cut) + cut / (190**2 + cut), rel=1e-6)


def test_constant_vector_is_excluded_when_lambda2_is_tiny():
    # Near-disconnected blocks: lambda_2 ~ 1e-9 sits right above lambda_1 = 0.
    W, labels = block_graph([20, 30], eps=1e-9)
    lam_ref, V_ref, d = reference_spectrum(W)
    assert abs(lam_ref[0]) < 1e-12 and np.ptp(V_ref[:, 0]) < 1e-6  # constant, eigenvalue 0
    for solver in ("dense", "lanczos", "arpack"):
        v, lam = second_smallest_eigenvector(W, solver=solver)
        v = v.numpy()
        assert float(lam) == pytest.approx(lam_ref[1], rel=1e-4)
        assert float(lam) > 1e-10
        assert abs(v @ d) < 1e-8                     # D-orthogonal to the constant vector
        assert np.array_equal(v > v.mean(), labels == 0)  # and splits the blocks (smaller: seed)


def test_batched_equals_per_image_and_keeps_dtype():
    rng = np.random.default_rng(5)
    keys = torch.cat([clustered_keys(rng, 50) for _ in range(3)]).float()  # (3, D, 1, 50)
    W = affinity(keys, tau=0.0, eps=1e-5, binary=False)  # (3, 50, 50) float32
    v, lam = second_smallest_eigenvector(W)
    assert v.shape == (3, 50) and lam.shape == (3,) and v.dtype == torch.float32
    for b in range(3):
        vb, lamb = second_smallest_eigenvector(W[b])
        assert vb.shape == (50,) and lamb.shape == ()
        assert torch.equal(vb, v[b]) and torch.equal(lamb, lam[b])


def test_sign_is_fixed_whatever_the_solver_returns():
    rng = np.random.default_rng(9)
    W = affinity(clustered_keys(rng, 200), tau=0.0, eps=1e-5, binary=False)[0]
    vs = [second_smallest_eigenvector(W, solver=s).v for s in ("dense", "lanczos", "arpack", "lobpcg")]
    for v in vs[1:]:
        assert torch.allclose(v, vs[0], atol=1e-6)  # same vector, same sign


def test_eigenvector_errors():
    with pytest.raises(InputError, match="square"):
        second_smallest_eigenvector(torch.ones(3, 4))
    with pytest.raises(InputError, match="symmetric"):
        second_smallest_eigenvector(torch.tensor([[1.0, 2, 0], [0, 1, 1], [0, 1, 1]]))
    with pytest.raises(InputError, match="non-negative"):
        second_smallest_eigenvector(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    with pytest.raises(InputError, match="positive degree"):
        second_smallest_eigenvector(torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 0]]))
    with pytest.raises(InputError, match="at least 2 nodes"):
        second_smallest_eigenvector(torch.ones(1, 1))
    with pytest.raises(InputError, match="solver must be one of"):
        second_smallest_eigenvector(torch.ones(3, 3), solver="eig")


def test_symmetry_is_checked_in_every_tile():
    """W larger than the comparison tiles, asymmetric in one far corner only: rounding-size
    asymmetry is averaged away (the answer of (W + W^T) / 2), a real one is refused."""
    rng = np.random.default_rng(11)
    W = affinity(clustered_keys(rng, 600), tau=0.0, eps=1e-5, binary=False)[0].double()
    assert W.shape[0] > 2 * ncut._EQUALITY_TILE
    reference = second_smallest_eigenvector(W, solver="dense").v
    nudged = W.clone()
    nudged[590, 7] *= 1 + 1e-9
    v = second_smallest_eigenvector(nudged, solver="dense").v
    expected = second_smallest_eigenvector((nudged + nudged.T) / 2, solver="dense").v
    assert torch.allclose(v, expected, atol=1e-12) and torch.allclose(v, reference, atol=1e-8)
    broken = W.clone()
    broken[590, 7] += 0.5
    with pytest.raises(InputError, match="symmetric"):
        second_smallest_eigenvector(broken)
    half = second_smallest_eigenvector(W.to(torch.bfloat16), solver="lanczos")   # numpy has no bfloat16
    assert half.v.dtype == torch.bfloat16 and half.v.shape == (600,)


# ------------------------------------------------------------------------------- Ncut values

# 4-node graph used by the hand-computed values below:
#   W = [[0, 2, 1, 0], [2, 0, 0, 1], [1, 0, 0, 3], [0, 1, 3, 0]], degrees d = [3, 3, 4, 4].
W4 = torch.tensor([[0.0, 2, 1, 0], [2, 0, 0, 1], [1, 0, 0, 3], [0, 1, 3, 0]], dtype=torch.float64)


def test_ncut_value_hand_computed():
    # Hard s = [1, 1, 0, 0]: cut = W13 + W24 = 1 + 1 = 2, assoc(A) = 3 + 3 = 6,
    # assoc(B) = 4 + 4 = 8, so Ncut = 2/6 + 2/8 = 7/12.
    s = torch.tensor([[1.0, 1, 0, 0]], dtype=torch.float64)
    assert float(ncut_value(W4[None], s)) == pytest.approx(7 / 12, rel=1e-12)
    # Soft s = [1, .5, 0, 0], 1 - s = [0, .5, 1, 1]:
    #   W (1 - s) = [2, 1, 3, 3.5] -> s^T W (1 - s) = 1*2 + .5*1 = 2.5
    #   W s = [1, 2, 1, .5]        -> (1 - s)^T W s = .5*2 + 1 + .5 = 2.5
    #   s^T d = 3 + 1.5 = 4.5, (1 - s)^T d = 1.5 + 4 + 4 = 9.5
    #   Ncut = 2.5/4.5 + 2.5/9.5 = 140/171
    s = torch.tensor([[1.0, 0.5, 0, 0]], dtype=torch.float64)
    assert float(ncut_value(W4[None], s)) == pytest.approx(140 / 171, rel=1e-12)


def test_ncut_value_symmetric_in_s_and_one_minus_s(rng):
    keys = torch.from_numpy(rng.standard_normal((3, 6, 4, 5)))
    W = affinity(keys, **SEMPART_AFFINITY._asdict())  # (3, 20, 20)
    s = torch.from_numpy(rng.uniform(size=(3, 20)))
    a, b = ncut_value(W, s, reduction="none"), ncut_value(W, 1 - s, reduction="none")
    assert a.shape == (3,) and torch.allclose(a, b, rtol=1e-12)
    assert torch.all(a > 0)


def test_ncut_value_perfect_partition_is_near_zero():
    W, labels = block_graph([30, 70], eps=1e-9)
    s = torch.from_numpy((labels == 0).astype(np.float64))[None]
    # cut = 30 * 70 * 1e-9, so Ncut ~ cut / 30^2 + cut / 70^2 ~ 2.8e-9
    assert 0 < float(ncut_value(W[None], s)) < 1e-8
    s_bad = torch.from_numpy((np.arange(100) % 2).astype(np.float64))[None]  # cuts both blocks
    assert float(ncut_value(W[None], s_bad)) > 0.9


def test_ncut_value_floors_the_denominators():
    W = torch.ones(1, 4, 4, dtype=torch.float64)
    s = torch.full((1, 4), 1e-9, dtype=torch.float64)
    # cut = 16 * 1e-9 * (1 - 1e-9) ~ 1.6e-8 in both terms; assoc(A) = 1.6e-8 is floored to 1e-6,
    # so the first term is ~ 0.016 (it would be ~ 1 without the floor); assoc(B) ~ 16.
    expected = 16e-9 * (1 - 1e-9) / 1e-6 + 16e-9 * (1 - 1e-9) / (16 * (1 - 1e-9))
    assert float(ncut_value(W, s)) == pytest.approx(expected, rel=1e-9)
    assert float(ncut_value(W, torch.zeros(1, 4, dtype=torch.float64))) == 0.0


def test_ncut_value_mean_and_map_shape():
    rng = np.random.default_rng(2)
    W = affinity(torch.from_numpy(rng.standard_normal((2, 4, 3, 3))), **SEMPART_AFFINITY._asdict())
    s_map = torch.from_numpy(rng.uniform(size=(2, 1, 3, 3)))  # the coarse map (B, 1, h, w)
    per_image = ncut_value(W, s_map.flatten(1), reduction="none")
    assert torch.equal(ncut_value(W, s_map), per_image.mean())
    with pytest.raises(InputError, match="N = 9 values"):
        ncut_value(W, torch.rand(2, 8, dtype=torch.float64))


def test_ncut_value_gradcheck():
    g = torch.Generator().manual_seed(0)
    W = affinity(torch.randn(2, 5, 2, 3, generator=g, dtype=torch.float64), tau=0.0, binary=False)
    s = torch.rand(2, 6, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: ncut_value(W, s), (s,))
    Wg = W.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda W: ncut_value(W, s.detach(), reduction="none"), (Wg,))


def brute_force_ncut(W, A):
    """Ncut from the set definitions of eq. (1)."""
    W = W.numpy()
    B = [j for j in range(len(W)) if j not in A]
    cut = sum(W[i, j] for i in A for j in B)
    return cut / W[list(A)].sum() + cut / W[B].sum()


def test_ncut_of_partition_matches_set_definition(rng):
    W = affinity(torch.from_numpy(rng.standard_normal((1, 4, 2, 4))), tau=0.0, binary=False)[0]
    labels = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0], dtype=torch.bool)
    expected = brute_force_ncut(W, [0, 3, 4, 6])
    assert float(ncut_of_partition(W, labels)) == pytest.approx(expected, rel=1e-12)
    batch = ncut_of_partition(torch.stack([W, W]), torch.stack([labels, ~labels]))
    assert batch.shape == (2,) and torch.allclose(batch, torch.full((2,), expected, dtype=W.dtype))
    assert ncut_of_partition(W, torch.zeros(8, dtype=torch.bool)) == float("inf")
    assert ncut_of_partition(W, torch.ones(8, dtype=torch.int64)) == float("inf")
    with pytest.raises(InputError, match="boolean or 0/1"):
        ncut_of_partition(W, torch.full((8,), 2))


def test_spectral_split_is_the_best_bipartition_of_a_noisy_two_block_graph():
    rng = np.random.default_rng(4)
    W, labels = block_graph([4, 6], eps=0.05, rng=rng)
    W = W * torch.from_numpy(rng.uniform(0.7, 1.0, size=(10, 10)))
    W = 0.5 * (W + W.T)
    v, _ = second_smallest_eigenvector(W)
    spectral = ncut_of_partition(W, v > v.mean())
    # All 2^9 - 1 bipartitions (node 0 fixed in A, B non-empty).
    best = min(float(ncut_of_partition(W, torch.tensor((1,) + bits, dtype=torch.bool)))
               for bits in itertools.product((0, 1), repeat=9) if not all(bits))
    assert float(spectral) == pytest.approx(best, rel=1e-12)
    assert np.array_equal((v > v.mean()).numpy(), labels == labels[np.argmax(np.abs(v.numpy()))])


@pytest.mark.parametrize("solver", SOLVERS)
def test_tiny_graphs_work_with_every_solver(solver):
    # 2 and 4 nodes: below what ARPACK / LOBPCG accept for k = 2, so they fall back to dense.
    for W in (torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64), W4 + torch.eye(4)):
        lam_ref, V_ref, _ = reference_spectrum(W)
        v, lam = second_smallest_eigenvector(W, solver=solver)
        assert float(lam) == pytest.approx(lam_ref[1], rel=1e-9)
        assert abs(float(v @ torch.from_numpy(V_ref[:, 1]))) == pytest.approx(
            float(v.norm() * np.linalg.norm(V_ref[:, 1])), rel=1e-9)


def test_solver_failures(monkeypatch):
    import scipy.sparse.linalg

    import paperlib.losses.ncut as ncut

    W, _ = random_graph("binary", 400)
    reference = second_smallest_eigenvector(W, solver="dense")

    def no_convergence(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.zeros(0),
                                                      np.zeros((0, 0)))

    # Lanczos stopped before it converges: "auto" hands over to ARPACK, "lanczos" says so.
    monkeypatch.setattr(ncut, "LANCZOS_MAX_STEPS", 3)
    arpack = second_smallest_eigenvector(W, solver="arpack")
    auto = second_smallest_eigenvector(W, solver="auto")
    assert torch.equal(auto.v, arpack.v) and torch.equal(auto.eigenvalue, arpack.eigenvalue)
    with pytest.raises(RuntimeError, match="Lanczos did not converge in 3 steps"):
        second_smallest_eigenvector(W, solver="lanczos")
    # A complete graph with self-loops has lambda_2 = 1 (D - W = N I - 1 1^T, D = N I): the
    # deflated Lanczos cannot see it (its eigenvalue 1 - lambda_2 is 0), says
    # so, and "auto" takes ARPACK's two-largest branch.
    monkeypatch.setattr(ncut, "LANCZOS_MAX_STEPS", 100)
    complete = torch.ones(50, 50, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="lambda_2 >= 1"):
        second_smallest_eigenvector(complete, solver="lanczos")
    assert float(second_smallest_eigenvector(complete, solver="auto").eigenvalue) == pytest.approx(1.0)
    monkeypatch.setattr(ncut, "LANCZOS_MAX_STEPS", 3)

    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", no_convergence)
    auto = second_smallest_eigenvector(W, solver="auto")  # then falls back to the dense solver
    assert torch.equal(auto.v, reference.v) and torch.equal(auto.eigenvalue, reference.eigenvalue)
    with pytest.raises(scipy.sparse.linalg.ArpackNoConvergence):
        second_smallest_eigenvector(W, solver="arpack")

    # A LOBPCG that returns its random start unchanged is caught by the residual check.
    monkeypatch.setattr(ncut.torch, "lobpcg",
                        lambda M, k, X, **kwargs: (torch.ones(k, dtype=X.dtype), X))
    with pytest.raises(RuntimeError, match="lobpcg did not converge"):
        second_smallest_eigenvector(W, solver="lobpcg")
