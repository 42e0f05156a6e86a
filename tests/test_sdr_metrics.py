"""Response metrics against naive formulas; metric axioms; validation errors."""

import numpy as np
import pytest
import scipy.linalg
from scipy.special import ndtri

from fstat.sdr import fccov, pairwise_response_distances

CPU = {"device": "cpu"}


def _spd(rng, n, q=3):
    A = rng.standard_normal((n, q, q))
    return A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(q)


def _naive(Y, fn):
    n = len(Y)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):  # arccos is inaccurate at 0: keep the diagonal exact
            D[i, j] = D[j, i] = fn(Y[i], Y[j])
    return D


def _logm(A):
    return np.real(scipy.linalg.logm(A))


def _naive_cases(rng):
    n = 12
    S = _spd(rng, n)
    Yv = rng.standard_normal((n, 3))
    Ys = Yv / np.linalg.norm(Yv, axis=1, keepdims=True)
    Q = np.sort(rng.standard_normal((n, 7)), axis=1)
    frac = scipy.linalg.fractional_matrix_power
    return [
        ("euclidean", Yv, {}, lambda a, b: np.sqrt(np.sum((a - b) ** 2))),
        ("chordal", Ys, {}, lambda a, b: np.sqrt(np.sum((a - b) ** 2))),
        ("sphere", Ys, {}, lambda a, b: np.arccos(np.clip(a @ b, -1, 1))),
        ("wasserstein", Q, {}, lambda a, b: np.sqrt(np.mean((a - b) ** 2))),
        ("wasserstein", Q, {"p": 1}, lambda a, b: np.mean(np.abs(a - b))),
        ("wasserstein", Q, {"p": 3}, lambda a, b: np.mean(np.abs(a - b) ** 3) ** (1 / 3)),
        ("spd_frobenius", S, {}, lambda a, b: np.linalg.norm(a - b)),
        ("log_euclidean", S, {}, lambda a, b: np.linalg.norm(_logm(a) - _logm(b))),
        ("power", S, {"alpha": 0.3},
         lambda a, b: np.linalg.norm(np.real(frac(a, 0.3) - frac(b, 0.3))) / 0.3),
        ("affine_invariant", S, {},
         lambda a, b: np.sqrt(np.sum(np.log(scipy.linalg.eigh(b, a, eigvals_only=True)) ** 2))),
    ]


def test_each_metric_equals_its_naive_formula():
    rng = np.random.default_rng(0)
    for metric, Y, params, fn in _naive_cases(rng):
        D = pairwise_response_distances(Y, metric, metric_params=params, **CPU)
        np.testing.assert_allclose(D, _naive(Y, fn), rtol=1e-10, atol=1e-10, err_msg=metric)
        assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0), metric
    lab = np.array(["x", "y", "x", "z", "y", "x"])
    D = pairwise_response_distances(lab, "discrete", **CPU)
    np.testing.assert_array_equal(D, (lab[:, None] != lab[None]).astype(float))
    rows = np.array([[0, 1], [0, 1], [1, 0], [0, 0]])
    D = pairwise_response_distances(rows, "discrete", **CPU)
    assert D[0, 1] == 0 and D[0, 2] == 1 and D[2, 3] == 1
    objs = [np.arange(k + 1.0) for k in range(6)]
    call = lambda a, b, scale=1.0: scale * abs(len(a) - len(b))  # noqa: E731
    D = pairwise_response_distances(objs, call, metric_params={"scale": 2.0}, **CPU)
    assert D[0, 5] == 10.0 and D[5, 0] == 10.0


def test_triangle_inequality():
    rng = np.random.default_rng(1)
    for metric, Y, params, _ in _naive_cases(rng):
        D = pairwise_response_distances(Y, metric, metric_params=params, **CPU)
        i, j, k = rng.integers(0, len(Y), (3, 200))
        assert np.all(D[i, k] <= D[i, j] + D[j, k] + 1e-10), metric


def test_power_limits_and_affine_invariance():
    rng = np.random.default_rng(2)
    S = _spd(rng, 15)
    frob = pairwise_response_distances(S, "spd_frobenius", **CPU)
    np.testing.assert_allclose(pairwise_response_distances(
        S, "power", metric_params={"alpha": 1.0}, **CPU), frob, rtol=1e-10, atol=1e-12)
    logd = pairwise_response_distances(S, "log_euclidean", **CPU)
    small = pairwise_response_distances(S, "power", metric_params={"alpha": 1e-4}, **CPU)
    off = ~np.eye(15, dtype=bool)
    assert np.max(np.abs(small[off] / logd[off] - 1)) < 1e-3
    G = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    moved = G @ S @ G.T
    np.testing.assert_allclose(pairwise_response_distances(moved, "affine_invariant", **CPU),
                               pairwise_response_distances(S, "affine_invariant", **CPU),
                               rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("metric", ["spd_frobenius", "log_euclidean", "power",
                                    "affine_invariant"])
def test_duplicate_spd_responses_are_exactly_zero_apart(metric):
    # affine_invariant's eigenvalues of A^-1 A are 1 only to rounding: duplicates must still
    # be ties (inside each other's radius-0 ball), or FCCov changes
    rng = np.random.default_rng(0)
    M = rng.standard_normal((3, 3))
    A = M @ M.T + np.eye(3)
    Y = np.stack([A, A, A + 0.5 * np.eye(3), A + 0.5 * np.eye(3), 2 * A, A])
    params = {"alpha": 0.5} if metric == "power" else None
    D = pairwise_response_distances(Y, metric, metric_params=params, **CPU)
    duplicate = np.array([0, 0, 1, 1, 2, 0])
    same = duplicate[:, None] == duplicate[None, :]
    assert np.all(D[same] == 0.0) and np.all(D[~same] > 0)
    U = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.2])
    assert fccov(U, Y, metric=metric, metric_params=params, **CPU) == pytest.approx(
        fccov(U, D, metric="precomputed", **CPU), rel=1e-14)


@pytest.mark.parametrize("scale", [1e-170, 1e-100, 1e100, 1e160])
@pytest.mark.parametrize("metric, params", [("euclidean", None), ("wasserstein", None),
                                            ("wasserstein", {"p": 3}), ("spd_frobenius", None)])
def test_distances_stay_finite_and_scale_at_extreme_magnitudes(metric, params, scale):
    rng = np.random.default_rng(1)
    if metric == "spd_frobenius":
        Y = _spd(rng, 8)
    else:
        Y = rng.standard_normal((8, 3))
        Y = np.sort(Y, axis=1) if metric == "wasserstein" else Y
    D = pairwise_response_distances(Y, metric, metric_params=params, **CPU)
    scaled = pairwise_response_distances(scale * Y, metric, metric_params=params, **CPU)
    np.testing.assert_allclose(scaled / scale, D, rtol=1e-13, atol=0)
    U = rng.standard_normal(8)
    assert fccov(U, scale * Y, metric=metric, metric_params=params, **CPU) == pytest.approx(
        fccov(U, Y, metric=metric, metric_params=params, **CPU), rel=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "wasserstein", "chordal"])
def test_small_gaps_survive_a_huge_span_within_the_data(metric):
    # one scale for all rows squared the gaps among small entries below the float64 range
    # when the data spanned more than ~1e154: distinct responses became ties (FCCov
    # 9.8e-05 instead of 0.0275 for the example below)
    def hypot_rows(a, b):
        gaps = np.abs(a - b)
        top = gaps.max()
        return top * np.sqrt(np.sum((gaps / top) ** 2)) if top > 0 else 0.0

    if metric == "chordal":  # unit vectors whose small coordinates differ by 1e-300
        Y = np.array([[1.0, 0.0, 0.0], [1.0, 1e-300, 0.0], [1.0, 3e-300, 0.0],
                      [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        ref = _naive(Y, hypot_rows)
    else:
        Y = np.array([[1e200, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.5, 0.0]])
        Y = np.sort(Y, axis=1) if metric == "wasserstein" else Y
        ref = _naive(Y, hypot_rows) / (np.sqrt(2.0) if metric == "wasserstein" else 1.0)
    D = pairwise_response_distances(Y, metric, **CPU)
    np.testing.assert_allclose(D, ref, rtol=1e-14, atol=0)
    if metric == "euclidean":
        U = np.array([0.3, -1.2, 0.5, 2.0, -0.4])
        assert fccov(U, Y, **CPU) == pytest.approx(fccov(U, Y[:, 0], **CPU), rel=1e-12)
        assert fccov(U, Y, **CPU) == pytest.approx(0.02753856, rel=1e-9)
    if metric == "wasserstein":  # higher p: fourth powers of 1e-90 gaps underflow too
        Q = np.array([[0.0, 1.0], [1e-90, 3e-90], [2e-90, 3e-90], [0.0, 0.5]])

        def w4(a, b):
            gaps = np.abs(a - b)
            top = gaps.max()
            return top * np.mean((gaps / top) ** 4) ** 0.25 if top > 0 else 0.0

        D4 = pairwise_response_distances(Q, metric, metric_params={"p": 4.0}, **CPU)
        np.testing.assert_allclose(D4, _naive(Q, w4), rtol=1e-14, atol=0)


def test_wasserstein_gaussian_quantiles():
    m = 51
    z = ndtri((np.arange(1, m + 1) - 0.5) / m)
    mu = np.array([0.0, 1.0, -2.0, 0.5])
    s = np.array([1.0, 2.0, 0.5, 1.5])
    Y = mu[:, None] + s[:, None] * z[None]
    D = pairwise_response_distances(Y, "wasserstein", **CPU)
    expected = np.sqrt((mu[:, None] - mu[None]) ** 2 + (s[:, None] - s[None]) ** 2
                       * np.mean(z**2))
    np.testing.assert_allclose(D, expected, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(3)
    shuffled = Y.copy()
    shuffled[1] = rng.permutation(shuffled[1])
    np.testing.assert_array_equal(pairwise_response_distances(shuffled, "wasserstein", **CPU), D)


@pytest.mark.parametrize("p", [9.0, 50.0, 300.0, 1e300, np.inf])
def test_wasserstein_large_p_keeps_close_pairs(p):
    # the p-th powers of gaps far below the largest gap in the data underflowed: W_p was 0
    # for every close pair once p reached a few hundred
    rng = np.random.default_rng(7)
    Y = np.sort(rng.random((6, 5)), axis=1)
    Y[1] = Y[0] + 1e-9 * np.arange(1, 6)

    def w_p(a, b):
        gaps = np.abs(a - b)
        top = gaps.max()
        if top == 0 or np.isinf(p):
            return top
        return top * np.mean((gaps / top) ** p) ** (1.0 / p)

    D = pairwise_response_distances(Y, "wasserstein", metric_params={"p": p}, **CPU)
    np.testing.assert_allclose(D, _naive(Y, w_p), rtol=1e-13, atol=0)
    assert D[0, 1] > 4e-9 and np.array_equal(D, D.T)


def test_callable_metric_all_zero_warns_and_is_evaluated_once():
    calls = []

    def zero(a, b):
        calls.append((a, b))
        return 0.0

    with pytest.warns(UserWarning, match="FCCov is 0"):
        assert fccov(U6, list(range(6)), metric=zero, **CPU) == 0.0
    assert len(calls) == 15
    # validation alone evaluates nothing (estimators subsample rows instead of all pairs)
    from fstat.sdr._metrics import check_response

    calls.clear()
    assert not check_response(list(range(6)), zero).all_equal() and not calls


def test_geodesic_is_accurate_for_small_angles():
    t = 1e-7
    Y = np.array([[1.0, 0.0], [np.cos(t), np.sin(t)], [0.0, 1.0], [-1.0, 0.0]])
    D = pairwise_response_distances(Y, "geodesic", **CPU)
    assert D[0, 1] == pytest.approx(t, rel=1e-8)
    assert D[0, 3] == pytest.approx(np.pi, rel=1e-12)


U6 = np.arange(6.0)


@pytest.mark.parametrize(
    "Y, metric, params, match",
    [
        (np.ones((6, 5)), "precomputed", None, "cross-validation splits rows only"),
        (-np.ones((6, 6)) + np.eye(6), "precomputed", None, "negative"),
        (np.ones((6, 6)), "precomputed", None, "diagonal"),
        (np.triu(np.ones((6, 6)), 1), "precomputed", None, "symmetric"),
        (np.ones((6, 1)), "sphere", None, "unit norm"),
        (np.tile([[1.0, 0.1]], (6, 1)), "chordal", None, "unit norm.*row 0"),
        (np.ones((6, 2, 3)), "spd_frobenius", None, "symmetric"),
        (np.tile(np.array([[1.0, 0.5], [0.0, 1.0]]), (6, 1, 1)), "log_euclidean", None,
         "symmetric"),
        (np.tile(-np.eye(2), (6, 1, 1)), "affine_invariant", None, "positive definite"),
        (np.tile(np.eye(2), (6, 1, 1)), "power", {"alpha": 0.0}, "alpha"),
        (np.zeros((6, 2, 2, 2)), "wasserstein", None, "common grid"),
        (np.arange(6.0), "wasserstein", None, "common grid"),  # 1-D y was read as (n, 1)
        ([[1.0, 2.0], [1.0]] * 3, "wasserstein", None, "common grid"),
        (np.zeros((6, 3)), "wasserstein", {"p": 0.5}, "p"),
        (np.zeros((6, 3)), "wasserstein", {"q": 2}, "accepted keys"),
        (np.zeros((6, 3)), "wasserstein", {"p": "2"}, "real number"),
        (np.zeros((6, 3)), "wasserstein", {"p": np.nan}, "real number"),
        (np.zeros((6, 3)), "wasserstein", {"p": True}, "real number"),
        (np.tile(np.eye(2), (6, 1, 1)), "power", {"alpha": np.inf}, "finite"),
        (np.array(["a", None, "b", "a", "b", "c"], dtype=object), "discrete", None, "NaN"),
        (list(range(6)), lambda a, b: -1.0, None, r"\(i, j\) = \(0, 1\)"),
        (list(range(6)), lambda a, b: np.nan, None, "pair"),
        (np.zeros(6), "bogus", None, "metric must be"),
    ],
)
def test_validation_errors(Y, metric, params, match):
    with pytest.raises(ValueError, match=match):
        fccov(U6, Y, metric=metric, metric_params=params, **CPU)


def test_slightly_asymmetric_precomputed_is_symmetrised():
    rng = np.random.default_rng(4)
    y = rng.standard_normal(8)
    D = np.abs(y[:, None] - y[None])
    noisy = D + 1e-12 * np.triu(rng.random((8, 8)), 1)
    out = pairwise_response_distances(noisy, "precomputed", **CPU)
    assert np.array_equal(out, out.T)


def test_callable_metric_warns_for_large_n():
    from fstat.sdr._metrics import check_response

    with pytest.warns(UserWarning, match="Python-level metric calls"):
        check_response(list(range(5001)), lambda a, b: abs(a - b))
