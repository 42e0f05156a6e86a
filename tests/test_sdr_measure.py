"""FCCov measure: every route against brute-force loops, closed forms and invariances."""

import warnings

import numpy as np
import pytest
import torch
from _reference_sdr import (
    naive_ball_kernel,
    naive_ball_kernel_u,
    naive_distance_stat,
    naive_fccor,
    naive_fccov,
    naive_fccov_u,
)

from fstat.sdr import ball_kernel, fccov, fccov_matrix
from fstat.sdr._metrics import check_response
from fstat.sdr._ranks import ball_ranks, counts_from_ranks, u_center

CPU = {"device": "cpu"}


def _responses(n, rng):
    """(label, y, metric, D) cases: continuous, ties, integers, discrete, precomputed."""
    y = rng.standard_normal(n)
    yr = np.round(y * 2) / 2
    yi = rng.integers(0, 4, n).astype(float)
    lab = rng.choice(np.array(["a", "b", "c"]), n)
    Yq = rng.standard_normal((n, 2))
    Yq[: n // 3] = Yq[0]  # duplicated rows
    Dq = np.sqrt(((Yq[:, None] - Yq[None]) ** 2).sum(-1))
    abs_d = lambda v: np.abs(v[:, None] - v[None])  # noqa: E731
    return [
        ("continuous", y, "euclidean", abs_d(y)),
        ("rounded", yr, "euclidean", abs_d(yr)),
        ("integer", yi, "euclidean", abs_d(yi)),
        ("discrete", lab, "discrete", (lab[:, None] != lab[None]).astype(float)),
        ("precomputed", Dq, "precomputed", Dq),
        ("vector", Yq, "euclidean", Dq),
    ]


@pytest.mark.parametrize("n", [7, 30, 120])
@pytest.mark.parametrize("d", [1, 3])
def test_every_route_equals_the_triple_loop(n, d):
    rng = np.random.default_rng(n + 10 * d)
    U = rng.standard_normal((n, d))
    for label, y, metric, D in _responses(n, rng):
        ref = naive_fccov(U, D)
        for method in ("auto", "cumsum", "kernel"):
            value = fccov(U, y, metric=metric, method=method, **CPU)
            assert value == pytest.approx(ref, rel=1e-10), (label, method)
        M = fccov_matrix(U, y, metric=metric, **CPU)
        np.testing.assert_allclose(M, naive_fccov(U, D, matrix=True), rtol=1e-10,
                                   atol=1e-15)
        assert np.trace(M) == pytest.approx(fccov(U, y, metric=metric, **CPU), rel=1e-12)
        Mk = fccov_matrix(U, y, metric=metric, method="kernel", **CPU)
        np.testing.assert_allclose(Mk, M, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("rounding", [None, 1, 0])
def test_interval_and_sort_routes_give_identical_counts(rounding):
    rng = np.random.default_rng(3)
    y = rng.standard_normal(157) * 3
    if rounding is not None:
        y = np.round(y, rounding)
    response = check_response(y)
    sort = counts_from_ranks(ball_ranks(response, "cpu", route="sort"))
    interval = counts_from_ranks(ball_ranks(response, "cpu", route="interval"))
    assert torch.equal(sort, interval)
    # counts against their definition c_ki = #{l : d_lk >= d_ik}
    D = np.abs(y[:, None] - y[None])
    c = (D[None, :, :] >= D[:, None, :]).sum(1)  # [i, k]
    np.testing.assert_array_equal(sort.numpy(), c.T)


def test_ball_kernel_properties():
    rng = np.random.default_rng(4)
    for y in (rng.standard_normal(9), np.round(rng.standard_normal(12))):
        D = np.abs(y[:, None] - y[None])
        K = ball_kernel(y, **CPU)
        np.testing.assert_allclose(K, naive_ball_kernel(D), rtol=1e-12)
    y = np.round(rng.standard_normal(80), 1)
    n = len(y)
    K = ball_kernel(y, **CPU)
    assert np.array_equal(K, K.T)
    assert np.linalg.eigvalsh(K)[0] >= -1e-12
    assert K.min() > 0 and K.max() <= 1
    D = np.abs(y[:, None] - y[None])
    c = (D[None, :, :] >= D[:, None, :]).sum(1)  # [i, k]
    np.testing.assert_allclose(np.diag(K), c.sum(1) / n**2, rtol=1e-14)
    _, v_n = naive_fccor(rng.standard_normal(n), D)
    assert np.trace(K) - K.sum() / n == pytest.approx(n * v_n, rel=1e-12)  # (I3) twin


@pytest.mark.parametrize("n", [5, 8, 10])
def test_u_statistic_equals_definition(n):
    rng = np.random.default_rng(n)
    y = np.round(rng.standard_normal(n))  # ties and duplicates
    D = np.abs(y[:, None] - y[None])
    np.testing.assert_allclose(ball_kernel(y, statistic="U", **CPU), naive_ball_kernel_u(D),
                               rtol=1e-12, atol=1e-14)
    U = rng.standard_normal((n, 2))
    assert fccov(U, y, statistic="U", **CPU) == pytest.approx(naive_fccov_u(U, D), rel=1e-10,
                                                              abs=1e-14)
    np.testing.assert_allclose(fccov_matrix(U, y, statistic="U", **CPU),
                               naive_fccov_u(U, D, matrix=True), rtol=1e-10, atol=1e-14)


def test_u_statistic_centring_and_null():
    rng = np.random.default_rng(5)
    n = 40
    y = rng.standard_normal(n)
    KU = u_center(torch.tensor(ball_kernel(y, statistic="U", **CPU))).numpy()
    assert np.abs(np.diag(KU)).max() <= 1e-12
    assert np.abs(KU.sum(1)).max() <= 1e-12
    U = rng.standard_normal((n, 2))
    assert fccov(U + 5.0, y, statistic="U", **CPU) == pytest.approx(
        fccov(U, y, statistic="U", **CPU), abs=1e-12)
    # Monte-Carlo null: U ~ N(0, Sigma) independent of a fixed y
    Sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    L = np.linalg.cholesky(Sigma)
    draws = [rng.standard_normal((n, 2)) @ L.T for _ in range(400)]
    u_vals = np.array([np.sum(KU * (Z @ Z.T)) / (n * (n - 3)) for Z in draws[:400]])
    assert u_vals[0] == pytest.approx(fccov(draws[0], y, statistic="U", **CPU), rel=1e-10)
    assert abs(u_vals.mean()) <= 4 * u_vals.std(ddof=1) / np.sqrt(len(u_vals))
    K = ball_kernel(y, **CPU)
    v_vals = np.array([np.sum(K * ((Z - Z.mean(0)) @ (Z - Z.mean(0)).T)) / n**2 for Z in draws])
    assert v_vals[1] == pytest.approx(fccov(draws[1], y, **CPU), rel=1e-10)
    D = np.abs(y[:, None] - y[None])
    _, v_n = naive_fccor(y, D)
    expected = np.trace(Sigma) * v_n / n
    assert abs(v_vals.mean() - expected) <= 4 * v_vals.std(ddof=1) / np.sqrt(len(v_vals))
    assert u_vals.min() < 0  # the U-statistic can be negative


def test_discrete_closed_forms():
    rng = np.random.default_rng(6)
    n = 50
    lab = rng.integers(0, 4, n)
    U = rng.standard_normal((n, 2))
    pi = np.bincount(lab) / n
    ubar = U.mean(0)
    means = np.array([U[lab == c].mean(0) for c in range(4)])
    closed = np.sum(pi**4 * ((means - ubar) ** 2).sum(1))
    assert fccov(U, lab, metric="discrete", **CPU) == pytest.approx(closed, rel=1e-12)
    K_closed = np.sum(pi * (1 - pi)) + (pi**2)[lab][:, None] * (lab[:, None] == lab[None])
    np.testing.assert_allclose(ball_kernel(lab, metric="discrete", **CPU), K_closed,
                               rtol=1e-12)
    D = (lab[:, None] != lab[None]).astype(float)
    np.testing.assert_allclose(ball_kernel(D, metric="precomputed", **CPU), K_closed,
                               rtol=1e-12)
    assert fccov(U, D, metric="precomputed", **CPU) == pytest.approx(closed, rel=1e-12)
    _, v_n = naive_fccor(U, D)
    assert v_n == pytest.approx(np.sum(pi**3 * (1 - pi)), rel=1e-12)
    lam = np.linalg.eigvalsh(np.cov(U.T, bias=True))[-1]
    assert fccov(U, lab, metric="discrete", normalize=True, **CPU) == pytest.approx(
        closed / (lam * v_n), rel=1e-12)


def test_invariances():
    rng = np.random.default_rng(7)
    n = 60
    Y = rng.standard_normal((n, 3))
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    U = rng.standard_normal((n, 2))
    D = np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1))
    base = fccov(U, D, metric="precomputed", **CPU)
    for T in (D**2, np.sqrt(D), np.log1p(D), 7 * D):
        assert fccov(U, T, metric="precomputed", **CPU) == pytest.approx(base, abs=1e-12)
    assert fccov(U, Y, metric="sphere", **CPU) == pytest.approx(
        fccov(U, Y, metric="chordal", **CPU), abs=1e-12)
    # nearly antipodal rows: chords round to 2 + a few ulps; geodesic must keep their order
    for seed in range(40):
        r = np.random.default_rng(seed)
        a = r.standard_normal(3)
        a /= np.linalg.norm(a)
        b = -a + 1e-9 * r.standard_normal(3)
        Ya = np.vstack([a, -a, b / np.linalg.norm(b), np.eye(3)])
        Ua = np.arange(6.0) ** 2
        assert fccov(Ua, Ya, metric="sphere", **CPU) == fccov(Ua, Ya, metric="chordal", **CPU)
    Q, _ = np.linalg.qr(rng.standard_normal((2, 2)))
    assert fccov(U @ Q + 3.0, D, metric="precomputed", **CPU) == pytest.approx(base, abs=1e-12)
    perm = rng.permutation(n)
    assert fccov(U[perm], D[np.ix_(perm, perm)], metric="precomputed", **CPU) == pytest.approx(
        base, abs=1e-12)
    assert fccov(2.5 * U, D, metric="precomputed", **CPU) == pytest.approx(6.25 * base,
                                                                           rel=1e-12)
    # rotation of the response space (an isometry)
    R, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert fccov(U, Y @ R.T, metric="sphere", **CPU) == pytest.approx(
        fccov(U, Y, metric="sphere", **CPU), abs=1e-12)


def test_fccor_is_in_unit_interval():
    rng = np.random.default_rng(8)
    values = []
    for trial in range(500):
        n = int(rng.integers(5, 13))
        y = np.round(rng.standard_normal(n), int(rng.integers(0, 2)))
        if np.all(y == y[0]):
            y[0] += 1.0
        D = np.abs(y[:, None] - y[None])
        if trial % 2:  # adversarial: U built from ball indicators
            k, l = rng.integers(0, n, 2)
            U = np.column_stack([(D[:, k] <= D[l, k]).astype(float), rng.standard_normal(n)
                                 * rng.uniform(0, 0.3)])
            if np.all(U[:, 0] == U[0, 0]):
                U[:, 0] = rng.standard_normal(n)
        else:
            U = rng.standard_normal((n, int(rng.integers(1, 3))))
        values.append(fccov(U, y, normalize=True, **CPU))
        if trial < 20:
            ref, _ = naive_fccor(U, D)
            assert values[-1] == pytest.approx(ref, rel=1e-10)
    values = np.array(values)
    assert values.min() >= 0 and values.max() <= 1
    assert values.max() > 0.5


def test_fccor_is_scale_invariant_down_to_tiny_scales():
    # FCCov(cU) = c^2 FCCov(U) and lambda_max(cU) = c^2 lambda_max(U): the constant-U test is
    # relative to the scale of U (an absolute 1e-14 floor returned 0 for c <= 1e-7)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(50)
    U = y + 0.5 * rng.standard_normal(50)
    base = fccov(U, y, normalize=True, **CPU)
    assert base > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in (1e-8, 1e-6, 1e6):
            assert fccov(c * U, y, normalize=True, **CPU) == pytest.approx(base, rel=1e-12)
        # a tiny spread around a large constant is still a spread
        assert fccov(1.0 + 1e-9 * U, y, normalize=True, **CPU) == pytest.approx(base, rel=1e-6)
    for constant in (0.0, 0.1, 7.3):
        with pytest.warns(UserWarning, match="zero variance"):
            assert fccov(np.full(50, constant), y, normalize=True, **CPU) == 0.0


@pytest.mark.parametrize("method", ["cumsum", "kernel"])
def test_extreme_scales_of_u_neither_overflow_nor_vanish(method):
    # FCCov is computed at unit scale and scaled back by c^2; FCCor is scale-free at any c
    rng = np.random.default_rng(0)
    y = rng.standard_normal(200)
    U = y + rng.standard_normal(200)
    base = fccov(U, y, method=method, **CPU)
    cor = fccov(U, y, normalize=True, method=method, **CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in (1e-200, 1e-151, 1e150, 1e200):
            assert fccov(c * U, y, normalize=True, method=method, **CPU) == pytest.approx(
                cor, rel=1e-12)
            value = fccov(c * U, y, method=method, **CPU)
            if np.finfo(float).tiny < c * c * base < np.finfo(float).max:  # representable
                assert value / c / c == pytest.approx(base, rel=1e-12)
            else:  # beyond float64: 0 or inf, as the exact value rounds
                assert value == (0.0 if c < 1 else np.inf)
    M = fccov_matrix(1e150 * U[:, None] * [1.0, -2.0], y, **CPU)
    np.testing.assert_allclose(M / 1e150 / 1e150,
                               fccov_matrix(U[:, None] * [1.0, -2.0], y, **CPU), rtol=1e-12)


def test_zero_denominators_warn_and_return_zero():
    y = np.arange(10.0)
    with pytest.warns(UserWarning, match="zero variance"):
        assert fccov(np.ones(10), y, normalize=True, **CPU) == 0.0
    with pytest.warns(UserWarning, match="all response distances are equal"):
        assert fccov(np.arange(10.0), np.ones(10), normalize=True, **CPU) == 0.0
    with pytest.warns(UserWarning, match="all response distances are equal"):
        assert fccov(np.arange(10.0), np.ones(10), **CPU) == 0.0


def test_robustness_to_one_outlier():
    rng = np.random.default_rng(9)
    n = 500
    y = rng.standard_normal(n)
    U = y + 0.5 * rng.standard_normal(n)
    y_out = y.copy()
    y_out[0] = 1e6
    before, after = fccov(U, y, **CPU), fccov(U, y_out, **CPU)
    assert abs(after - before) / before < 0.10
    D0 = np.abs(y[:, None] - y[None])
    D1 = np.abs(y_out[:, None] - y_out[None])
    # the d_bar-normalised distance statistic is not robust
    s0, s1 = naive_distance_stat(U, D0), naive_distance_stat(U, D1)
    assert abs(s1 - s0) / abs(s0) > 0.5


def test_sampled_centres_are_unbiased():
    rng = np.random.default_rng(10)
    n = 48
    y = np.round(rng.standard_normal(n), 1)
    U = rng.standard_normal((n, 2)) + y[:, None]
    exact = fccov(U, y, **CPU)
    assert fccov(U, y, n_centers=n, random_state=0, **CPU) == pytest.approx(exact, abs=1e-12)
    draws = np.array([fccov(U, y, n_centers=n // 4, random_state=s, **CPU)
                      for s in range(300)])
    assert abs(draws.mean() - exact) <= 4 * draws.std(ddof=1) / np.sqrt(len(draws))
    assert draws.std() > 0
    # sampled kernel reproduces the sampled value
    K = ball_kernel(y, n_centers=n // 4, random_state=3, **CPU)
    Uc = U - U.mean(0)
    assert np.sum(K * (Uc @ Uc.T)) / n**2 == pytest.approx(
        fccov(U, y, n_centers=n // 4, random_state=3, **CPU), rel=1e-10)
    assert fccov(U, y, n_centers=n // 4, random_state=3, method="kernel", **CPU) == (
        pytest.approx(fccov(U, y, n_centers=n // 4, random_state=3, **CPU), rel=1e-10))


def test_function_bad_input():
    y = np.arange(6.0)
    with pytest.raises(ValueError, match="at least 4 samples.*n_samples=3"):
        fccov(np.arange(3.0), np.arange(3.0), **CPU)
    with pytest.raises(ValueError, match="U contains"):
        fccov(np.array([1, np.nan, 2, 3, 4, 5.0]), y, **CPU)
    with pytest.raises(ValueError, match="y contains NaN"):
        fccov(y, np.array([1, np.nan, 2, 3, 4, 5.0]), **CPU)
    with pytest.raises(ValueError, match="y contains NaN"):  # spec 4's message for inf too
        fccov(y, np.array([1, np.inf, 2, 3, 4, 5.0]), **CPU)
    # complex values were cast to their real part (numpy's ComplexWarning only)
    with pytest.raises(ValueError, match="U must be a real.*complex"):
        fccov(y + 1j, y, **CPU)
    for complex_y in (y + 1j, [1, 2, 3, 4, 5, 6j]):
        with pytest.raises(ValueError, match="complex values"):
            fccov(y, complex_y, **CPU)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fccov(np.arange(5.0), y, **CPU)
    with pytest.raises(ValueError, match="statistic"):
        fccov(y, y, statistic="W", **CPU)
    with pytest.raises(ValueError, match="method"):
        fccov(y, y, method="fast", **CPU)
    with pytest.raises(ValueError, match="only for statistic='V'"):
        fccov(y, y, statistic="U", normalize=True, **CPU)
    with pytest.raises(ValueError, match="only for statistic='V'"):
        fccov(y, y, statistic="U", n_centers=3, **CPU)
    with pytest.raises(ValueError, match="n_centers"):
        fccov(y, y, n_centers=7, **CPU)
    with pytest.raises(ValueError, match="metric must be"):
        fccov(y, y, metric="manhattan", **CPU)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fccov(y, y, device="cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):  # spec 4: malformed
            fccov(y, y, device="gpu7")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fccov(y, y, **CPU)


def test_warned_constant_inputs_give_exact_zeros():
    # the warnings say "FCCov is 0": constant y (V and U statistics) and constant U (U
    # statistic) returned rounding residue of either sign (3e-34, -2e-16, 6e-17)
    from fstat.sdr import fccov_matrix

    rng = np.random.default_rng(0)
    U = rng.standard_normal((12, 2))
    cases = ((U, np.ones(12), "V"), (U, np.ones(12), "U"),
             (np.ones((12, 2)), rng.standard_normal(12), "U"),
             (np.ones((12, 2)), rng.standard_normal(12), "V"))
    for u, y, statistic in cases:
        with pytest.warns(UserWarning, match="FCCov is 0"):
            assert fccov(u, y, statistic=statistic, **CPU) == 0.0
        with pytest.warns(UserWarning, match="FCCov is 0"):
            assert not np.any(fccov_matrix(u, y, statistic=statistic, **CPU))


def test_u_statistic_is_translation_invariant_in_u():
    # sdr 2.4: U-centring annihilates additive terms; uncentred U met a K^U whose rows sum to 0
    # only to rounding, and an offset of 1e8 turned 0.009 into -0.2
    rng = np.random.default_rng(2)
    U = rng.standard_normal(20)
    y = U + rng.standard_normal(20)
    base = fccov(U, y, statistic="U", **CPU)
    for offset in (1e4, 1e6, 1e8):
        assert fccov(U + offset, y, statistic="U", **CPU) == pytest.approx(base, rel=1e-6)


def test_affine_invariant_duplicates_are_exact_ties():
    # two equal SPD responses must be equally far from a third (closed-ball ties), so FCCov
    # does not depend on the order of the rows
    from fstat.sdr import pairwise_response_distances

    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 2, 2))
    S = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(2)
    Y = S[[0, 1, 0, 2, 1, 2]]
    U = rng.standard_normal(6)
    D = pairwise_response_distances(Y, "affine_invariant", **CPU)
    np.testing.assert_array_equal(D[0], D[2])
    np.testing.assert_array_equal(D, D.T)
    base = fccov(U, Y, metric="affine_invariant", **CPU)
    for seed in range(5):
        p = np.random.default_rng(seed).permutation(6)
        assert fccov(U[p], Y[p], metric="affine_invariant", **CPU) == pytest.approx(base,
                                                                                    rel=1e-12)


@pytest.mark.parametrize("chunk_entries", [2**24, 37])
def test_one_hot_class_sums_equal_index_add(monkeypatch, chunk_entries):
    """CUDA's index_add accumulates floats with atomics (different bits from run to run), so
    on CUDA the per-class sums are chunked one-hot products: here forced on the CPU, with
    chunks of a few rows, against index_add and a per-class numpy sum; gradients agree."""
    import torch

    from fstat.sdr import _fccov

    monkeypatch.setattr(_fccov, "_ONE_HOT_ENTRIES", chunk_entries)
    rng = np.random.default_rng(7)
    codes_np = rng.integers(0, 5, 203)
    codes_np[:3] = 4  # class 3 may be empty: its sum is zero
    codes = torch.from_numpy(codes_np)
    U = torch.from_numpy(rng.standard_normal((203, 3))).requires_grad_(True)
    direct = _fccov.class_sums(codes, 6, U, one_hot=False)
    one_hot = _fccov.class_sums(codes, 6, U, one_hot=True)
    expected = np.array([U.detach().numpy()[codes_np == c].sum(0) for c in range(6)])
    np.testing.assert_allclose(one_hot.detach().numpy(), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(direct.detach().numpy(), expected, rtol=1e-13, atol=1e-13)
    weights = torch.from_numpy(rng.standard_normal((6, 3)))
    (g_direct,) = torch.autograd.grad((direct * weights).sum(), U)
    (g_one_hot,) = torch.autograd.grad((one_hot * weights).sum(), U)
    torch.testing.assert_close(g_one_hot, g_direct, rtol=0, atol=1e-15)
