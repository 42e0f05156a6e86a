"""Tests of the shared Gaussian Gram helpers against brute-force numpy references."""

import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from fstat.kernels._gram import (
    gaussian_gram,
    gram_from_sq_dists,
    log_gaussian_gram,
    median_heuristic,
    resolve_bandwidth,
    silverman_width,
    sq_dists,
)


def _loops_sq_dists(A, B):
    out = np.empty((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            out[i, j] = sum((a[k] - b[k]) ** 2 for k in range(len(a)))
    return out


@pytest.mark.parametrize("d", [1, 3])
def test_sq_dists_matches_loops(d):
    rng = np.random.RandomState(0)
    A, B = rng.normal(size=(7, d)) + 100.0, rng.normal(size=(5, d)) + 100.0
    got = sq_dists(torch.tensor(A), torch.tensor(B)).numpy()
    np.testing.assert_allclose(got, _loops_sq_dists(A, B), rtol=1e-9, atol=1e-9)


def test_sq_dists_symmetric_exact_zero_diagonal_and_chunking():
    rng = np.random.RandomState(1)
    A = torch.tensor(rng.normal(size=(30, 4)))
    D = sq_dists(A)
    assert torch.all(torch.diagonal(D) == 0)
    assert torch.all(D >= 0)
    torch.testing.assert_close(sq_dists(A, chunk_size=7), D)
    # bitwise symmetric by default (a blocked matrix product alone is not), also with
    # gradients when refine_near is forced, in both dtypes and past the BLAS blocking
    for n, d in [(30, 4), (200, 64), (129, 128)]:
        for dtype in (torch.float64, torch.float32):
            B = torch.tensor(rng.normal(size=(n, d)) * 10 + 3, dtype=dtype)
            for D in (sq_dists(B), sq_dists(B.clone().requires_grad_(True), refine_near=True)):
                assert torch.equal(D, D.T)
                assert torch.all(torch.diagonal(D) == 0)
    # symmetrising must not overflow entries near the float64 maximum
    huge = sq_dists(torch.tensor([[-5e153, 0.0], [5e153, 0.0], [0.0, 1.0]], dtype=torch.float64))
    assert torch.isfinite(huge).all() and huge[0, 1] == pytest.approx(1e308, rel=1e-12)


def test_sq_dists_without_refinement_from_the_product_diagonal():
    # the training path (refine_near=False, no gradient, one block) forms the distances
    # from the product's own diagonal: exactly zero diagonal, non-negative, the loops'
    # values to rounding; a forced chunking or a differentiable input takes the norms path
    rng = np.random.RandomState(4)
    for dtype, rtol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        A = rng.normal(size=(40, 6)) * 3.0 + 50.0
        tA = torch.tensor(A, dtype=dtype)
        D = sq_dists(tA, refine_near=False)
        assert torch.all(torch.diagonal(D) == 0) and torch.all(D >= 0)
        ref = _loops_sq_dists(A, A)
        scale = ref.max()
        np.testing.assert_allclose(D.double().numpy(), ref, rtol=0, atol=rtol * scale)
        for other in (sq_dists(tA, refine_near=False, chunk_size=7),
                      sq_dists(tA.clone().requires_grad_(True), refine_near=False).detach()):
            torch.testing.assert_close(other, D, rtol=rtol, atol=rtol * scale)
    # coincident rows: zero apart to rounding (exactly on the diagonal)
    dup = torch.tensor(np.repeat(rng.normal(size=(3, 5)) + 20.0, 2, axis=0))
    D = sq_dists(dup, refine_near=False)
    assert torch.all(torch.diagonal(D) == 0)
    assert torch.all(torch.diagonal(D, offset=1)[::2] <= 1e-12 * D.max())


def test_median_and_total_from_sq_dists():
    from fstat.kernels._gram import median_and_total_from_sq_dists

    rng = np.random.RandomState(6)
    for n in (2, 3, 4, 9):  # odd and even pair counts
        for dtype in (torch.float64, torch.float32):
            X = rng.normal(size=(n, 3))
            D = sq_dists(torch.tensor(X, dtype=dtype))
            median, total = median_and_total_from_sq_dists(D)
            rtol = 1e-12 if dtype == torch.float64 else 1e-6
            assert median == pytest.approx(np.median(pdist(X)), rel=rtol)
            assert total == pytest.approx(2.0 * np.sum(pdist(X) ** 2), rel=rtol)


def test_sq_dists_one_dimensional_vectors_are_columns():
    x = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    np.testing.assert_array_equal(sq_dists(x).numpy(), [[0, 1, 9], [1, 0, 4], [9, 4, 0]])


def test_sq_dists_gradient_finite_at_duplicates():
    X = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.5]], dtype=torch.float64,
                     requires_grad=True)
    K = gaussian_gram(X, sigma=0.7)
    K.sum().backward()
    assert torch.all(torch.isfinite(X.grad))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sq_dists_equal_and_near_rows(dtype):
    # ||x||^2 + ||y||^2 - 2 x.y leaves rounding of order eps ||x||^2 where rows (nearly)
    # coincide; those pairs are recomputed from differences: equal rows are exactly 0 apart
    rng = np.random.RandomState(2)
    A = rng.normal(size=(40, 3)) * 3.0
    near = A + 1e-4 * rng.normal(size=A.shape)
    tA, tnear = torch.tensor(A, dtype=dtype), torch.tensor(near, dtype=dtype)
    cross = sq_dists(tA, tA.clone())
    assert torch.all(torch.diagonal(cross) == 0)
    sym = sq_dists(torch.cat([tA, tA]))
    assert torch.all(torch.diagonal(sym, offset=40) == 0)  # duplicates off the diagonal
    ref = _loops_sq_dists(tA.double().numpy(), tnear.double().numpy())
    got = sq_dists(tA, tnear).double().numpy()
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(np.diagonal(got), np.diagonal(ref), rtol=rtol)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=0)
    # without the refinement the near pairs are off by far more (the reason it exists)
    plain = sq_dists(tA, tnear, refine_near=False).double().numpy()
    assert np.max(np.abs(np.diagonal(plain) / np.diagonal(ref) - 1)) > 100 * rtol


def test_sq_dists_refinement_follows_gradients():
    rng = np.random.RandomState(3)
    A = torch.tensor(rng.normal(size=(6, 2)), requires_grad=True)
    B = A.detach().clone()
    D = sq_dists(A, B)  # differentiable input: plain expansion by default
    torch.testing.assert_close(D.detach(), sq_dists(A.detach(), B, refine_near=False))
    forced = sq_dists(A, B, refine_near=True)
    assert torch.all(torch.diagonal(forced.detach()) == 0)
    forced.sum().backward()
    expected = 2.0 * (6.0 * A.detach() - B.sum(dim=0))  # d/dA_i sum_j |A_i - B_j|^2
    torch.testing.assert_close(A.grad, expected)


def test_gaussian_and_log_gram_match_reference():
    rng = np.random.RandomState(2)
    A, B = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    sigma = 0.8
    ref = np.exp(-cdist(A, B, "sqeuclidean") / (2 * sigma**2))
    got = gaussian_gram(torch.tensor(A), torch.tensor(B), sigma=sigma).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    log_ref = np.log(ref) - 1.5 * np.log(2 * np.pi * sigma**2)
    got_log = log_gaussian_gram(torch.tensor(A), torch.tensor(B), sigma, normalized=True)
    np.testing.assert_allclose(got_log.numpy(), log_ref, rtol=1e-12)


def test_log_gram_tiny_width_has_no_nan():
    X = torch.tensor([[0.0], [1.0]], dtype=torch.float32)
    L = log_gaussian_gram(X, sigma=1e-30)
    assert L[0, 0] == 0 and L[1, 1] == 0 and torch.isneginf(L[0, 1])
    assert not torch.any(torch.isnan(gram_from_sq_dists(sq_dists(X), 1e-30)))


def test_gram_preserves_device_and_dtype():
    X = torch.randn(5, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    assert gaussian_gram(X).dtype == torch.float32


@pytest.mark.parametrize("n", [5, 6, 40])
def test_median_heuristic_equals_numpy_median_of_pdist(n):
    X = np.random.RandomState(n).normal(size=(n, 3))
    assert median_heuristic(X) == pytest.approx(np.median(pdist(X)), rel=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 31])
def test_median_heuristic_odd_and_even_pair_counts(n):
    # n(n-1)/2 pairs: odd for n in {2, 3, 6, 7, 31}... checked against numpy either way
    X = np.random.default_rng(n).standard_normal((n, 2))
    d = pdist(X)
    expected = np.median(d)
    assert median_heuristic(X) == pytest.approx(expected, rel=1e-14)
    if len(d) % 2 == 0:  # the even rule really averages two different middle values
        s = np.sort(d)
        assert s[len(d) // 2 - 1] < expected < s[len(d) // 2]


def test_median_from_sq_dists_matches_median_heuristic():
    from fstat.kernels._gram import median_from_sq_dists, sq_dists

    X = np.random.default_rng(3).standard_normal((20, 3))
    D = sq_dists(torch.as_tensor(X))
    assert median_from_sq_dists(D) == pytest.approx(np.median(pdist(X)), rel=1e-12)
    assert median_from_sq_dists(torch.zeros(4, 4)) is None


def test_median_heuristic_subsample_deterministic():
    X = np.random.RandomState(0).normal(size=(300, 2))
    a = median_heuristic(X, max_samples=50, random_state=1)
    b = median_heuristic(X, max_samples=50, random_state=1)
    assert a == b
    assert a == pytest.approx(np.median(pdist(X)), rel=0.2)


def test_median_heuristic_degenerate_cases():
    X = np.array([[1.0], [1.0], [1.0], [1.0], [2.0]])  # 6 of 10 distances are 0: median 0
    assert median_heuristic(X) == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="zero"):
        assert median_heuristic(np.ones((4, 2))) == 1.0


def test_silverman_width_formula_and_degenerate():
    X = np.random.RandomState(0).normal(size=(50, 2))
    s = X.std(axis=0, ddof=1).mean()
    assert silverman_width(X) == pytest.approx(s * (4 / (4 * 50)) ** (1 / 6), rel=1e-12)
    with pytest.warns(UserWarning, match="zero spread"):
        assert silverman_width(np.ones((5, 2))) == 1.0
    # far from 0 the sds keep their digits (torch.std of the raw data lost ~8 of them at
    # an offset of 1e9 sds)
    rng = np.random.default_rng(5)
    for offset, spread in ((1e6, 1e-3), (1e7, 1.0), (-3e12, 5.0)):
        Z = offset + spread * rng.standard_normal((25, 3))
        s = np.mean([np.std(Z[:, j] - Z[:, j].mean(), ddof=1) for j in range(3)])
        assert silverman_width(Z) == pytest.approx(s * (4 / (5 * 25)) ** (1 / 7), rel=1e-12)


def test_resolve_bandwidth():
    X = np.random.RandomState(0).normal(size=(20, 2))
    assert resolve_bandwidth(0.5, X) == 0.5
    assert resolve_bandwidth("median", X, scale=0.25) == pytest.approx(
        0.25 * np.median(pdist(X)))
    assert resolve_bandwidth("silverman", X) == pytest.approx(silverman_width(X))
    with pytest.raises(ValueError, match="sigma"):
        resolve_bandwidth("mean", X)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="sigma"):
            resolve_bandwidth(bad, X)
    for bad in (True, None, [1.0]):  # spec 2.11: anything else is a ValueError
        with pytest.raises(ValueError, match="sigma"):
            resolve_bandwidth(bad, X)


def test_resolve_bandwidth_floor_warns():
    X = np.r_[np.zeros((50, 1)), [[1e3]]]  # median distance 0 -> mean of positives, no floor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_bandwidth("median", X)
    with pytest.warns(UserWarning, match="floored"):
        resolve_bandwidth("median", np.r_[np.zeros((50, 1)), [[1e3]]], scale=1e-12)


@pytest.mark.parametrize("d", [1, 3])
def test_batch_sq_dists_equals_per_matrix_sq_dists(d):
    from fstat.kernels._gram import batch_sq_dists, sq_dists

    g = torch.Generator().manual_seed(d)
    X = torch.randn(5, 9, d, generator=g, dtype=torch.float64) * 3.0 + 100.0
    X[2, 4] = X[2, 1]  # a duplicate row is exactly 0 apart in the d = 1 path
    D = batch_sq_dists(X)
    assert D.shape == (5, 9, 9)
    for b in range(5):
        ref = sq_dists(X[b], refine_near=False)
        torch.testing.assert_close(D[b], ref, rtol=1e-12, atol=1e-10)
        assert torch.equal(torch.diagonal(D[b]), torch.zeros(9, dtype=torch.float64))
    assert (D >= 0).all()
    if d == 1:
        assert D[2, 4, 1] == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_sq_dists_duplicate_rows_are_exactly_zero_apart(dtype):
    # the norms are the product's own diagonal, so identical rows anywhere in a matrix are
    # exactly 0 apart (separately summed norms left rounding noise: a zero median of
    # mostly duplicate rows became that noise and escaped the degenerate-width test)
    from fstat.kernels._gram import batch_sq_dists

    rng = np.random.default_rng(7)
    for _ in range(20):
        n, d = 64, int(rng.integers(2, 9))
        base = rng.standard_normal((8, d)) * 3.0 + 10.0
        X = base[rng.integers(0, 8, (16, n))]  # 16 matrices of rows drawn from 8
        D = batch_sq_dists(torch.as_tensor(X, dtype=dtype))
        same = (X[:, :, None, :] == X[:, None, :, :]).all(-1)
        assert torch.all(D[torch.as_tensor(same)] == 0)
        assert torch.all(D[~torch.as_tensor(same)] > 0)


def test_batch_medians_match_numpy_per_matrix():
    from fstat.kernels._gram import batch_medians_from_sq_dists, batch_sq_dists

    rng = np.random.default_rng(3)
    for n in (2, 4, 5, 8):  # odd and even pair counts
        X = np.stack([rng.standard_normal((n, 2)), rng.integers(0, 2, (n, 2)).astype(float),
                      np.zeros((n, 2))])
        got = batch_medians_from_sq_dists(batch_sq_dists(torch.as_tensor(X)))
        np.testing.assert_allclose(got, [np.median(pdist(x)) for x in X], rtol=1e-12,
                                   atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rows_median_equals_the_numpy_selection(dtype):
    # the device path (torch, all rows at once, one read-back) against the CPU path
    # (numpy partition per row) and numpy's median: odd and even counts, ties at and
    # around the middle
    from fstat.kernels._gram import _median_of_sqrt, _rows_median_of_sqrt

    g = torch.Generator().manual_seed(5)
    for m in (1, 2, 5, 6, 9, 10, 8128):
        rows = [torch.rand(m, generator=g, dtype=dtype) * 10.0,
                torch.randint(0, 3, (m,), generator=g).to(dtype),  # heavy ties
                torch.zeros(m, dtype=dtype),
                torch.full((m,), 4.0, dtype=dtype)]
        for count in {1, m // 2, m}:  # NaN sorts last in both paths
            row = torch.full((m,), 2.0, dtype=dtype)
            row[:count] = torch.nan
            rows.append(row)
        sq = torch.stack(rows)
        got = _rows_median_of_sqrt(sq)
        rtol = 1e-6 if dtype == torch.float32 else 1e-15
        np.testing.assert_allclose(got, [_median_of_sqrt(row) for row in sq.numpy()],
                                   rtol=rtol)
        # numpy's median is NaN for any NaN; the rows without NaN agree with it
        np.testing.assert_allclose(got[:4], np.median(np.sqrt(sq[:4].double().numpy()), axis=1),
                                   rtol=rtol)


def _rel_err(got, ref):
    """Per-entry relative error; an exactly zero reference needs an exactly zero value."""
    err = np.abs(got - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref != 0, err / np.abs(ref), np.where(err == 0, 0.0, np.inf))


@pytest.mark.parametrize("d", [1, 2, 5, 30])
@pytest.mark.parametrize("offset", [0.0, 100.0, -1e4])
def test_sq_dists_equals_cdist_squared(d, offset):
    """Spec §6 / §2.11: sq_dists equals scipy's cdist(...)**2 to 1e-10 relative per entry
    (features on scales 1e-2..1e2, far from the origin, near-duplicate and duplicate rows in
    Y), with and without Y, blocked or not; Y=None has an exactly zero diagonal."""
    rng = np.random.default_rng(d)
    scales = np.logspace(-2, 2, d)
    X = rng.standard_normal((40, d)) * scales + offset
    Y = np.vstack([rng.standard_normal((25, d)) * scales + offset,
                   X[:5] + 1e-4 * rng.standard_normal((5, d)), X[5:8]])
    for kw in ({}, {"chunk_size": 7}):
        got = sq_dists(torch.tensor(X), torch.tensor(Y), **kw).numpy()
        assert _rel_err(got, cdist(X, Y) ** 2).max() <= 1e-10
        assert np.all(got >= 0)
        np.testing.assert_array_equal(got[5:8, 30:33].diagonal(), 0.0)  # duplicates
        sym = sq_dists(torch.tensor(X), **kw).numpy()
        assert _rel_err(sym, cdist(X, X) ** 2).max() <= 1e-10
        np.testing.assert_array_equal(np.diagonal(sym), 0.0)


@pytest.mark.parametrize("x0, sigma", [(0.0, 1.0), (3.7, 0.05), (-250.0, 40.0)])
def test_normalized_log_gaussian_gram_is_a_density_in_1d(x0, sigma):
    """Spec §2.11 / §6: exp(log_gaussian_gram(x, y, sigma, normalized=True)) is the density
    N(y; x, sigma^2) in y: by quadrature it integrates to 1, with mean x and variance
    sigma^2 (1e-8)."""
    from scipy.integrate import quad

    x = torch.tensor([[x0]], dtype=torch.float64)

    def density(y):
        yt = torch.tensor([[y]], dtype=torch.float64)
        return float(torch.exp(log_gaussian_gram(x, yt, sigma, normalized=True))[0, 0])

    lo, hi = x0 - 40 * sigma, x0 + 40 * sigma
    opts = {"epsabs": 1e-13, "epsrel": 1e-12, "limit": 200, "points": [x0]}
    mass = quad(density, lo, hi, **opts)[0]
    var = quad(lambda y: (y - x0) ** 2 * density(y), lo, hi, **opts)[0]
    assert abs(mass - 1.0) <= 1e-8
    assert abs(var / sigma**2 - 1.0) <= 1e-8
    # centred at x: each half carries E|y - x| / 2 = sigma / sqrt(2 pi)
    opts.pop("points")
    right = quad(lambda y: (y - x0) * density(y), x0, hi, **opts)[0]
    left = quad(lambda y: (x0 - y) * density(y), lo, x0, **opts)[0]
    for half in (left, right):
        assert abs(half / (sigma / np.sqrt(2 * np.pi)) - 1.0) <= 1e-8
    # the unnormalised Gram is the same function up to the constant sqrt(2 pi) sigma
    plain = log_gaussian_gram(x, x + 0.3 * sigma, sigma)[0, 0].item()
    assert plain == pytest.approx(-0.045, rel=1e-12)


def test_normalized_log_gaussian_gram_is_a_density_in_2d():
    """The normaliser carries d/2: in 2-D the density integrates to 1 (tensor Gauss-Hermite
    rule on a deliberately mismatched grid, 1e-8)."""
    u, wts = np.polynomial.hermite.hermgauss(80)
    centre, spread = np.array([0.4, -1.1]), 1.7  # grid centre and width unlike the density
    g1, g2 = np.meshgrid(u, u, indexing="ij")
    Y = centre + np.sqrt(2.0) * spread * np.column_stack([g1.ravel(), g2.ravel()])
    weight = np.outer(wts, wts).ravel() * np.exp(g1.ravel() ** 2 + g2.ravel() ** 2)
    x = torch.tensor([[0.0, -0.5]], dtype=torch.float64)
    for sigma in (0.9, 1.3):
        p = torch.exp(log_gaussian_gram(x, torch.tensor(Y), sigma, normalized=True))[0].numpy()
        mass = 2.0 * spread**2 * np.sum(weight * p)
        assert abs(mass - 1.0) <= 1e-8
