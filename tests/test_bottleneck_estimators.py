"""CS divergence, conditional CS divergence, CS-QMI and kernel widths against references."""

import math
import warnings

import numpy as np
import pytest
import torch
from _reference_bottleneck import (
    conditional_cs_ref,
    cs_divergence_ref,
    cs_qmi_abc_ref,
    cs_qmi_ref,
    gram_loop,
    hsic_ref,
)
from scipy.spatial.distance import pdist

from fstat.bottleneck import (
    conditional_cs_divergence,
    cs_divergence,
    cs_mutual_information,
    kernel_width,
)
from fstat.bottleneck._estimators import (
    _cs_qmi_terms,
    conditional_cs_core,
    cs_divergence_core,
    cs_qmi_core,
    normalized_cs_qmi_core,
)

SHAPES = [(n, dx, dy) for n in (2, 17, 128) for dx in (1, 3, 8) for dy in (1, 2)]


def _problem(n, dx, dy, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dx))
    y = X[:, :1] @ np.ones((1, dy)) + 0.5 * rng.standard_normal((n, dy))
    y_pred = y + 0.7 * rng.standard_normal((n, dy))
    return X, y, y_pred


def _t(a):
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    return a[:, None] if a.dim() == 1 else a


# ------------------------------------------------------------------ brute force
def test_gram_loop_reference_sanity():
    A = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(gram_loop(A, A, 5.0), [[1, np.exp(-0.5)], [np.exp(-0.5), 1]])


@pytest.mark.parametrize("n,dx,dy", SHAPES)
def test_matches_brute_force(n, dx, dy):
    X, y, y_pred = _problem(n, dx, dy, seed=n * 100 + dx * 10 + dy)
    sx, sy = 0.7 + 0.1 * dx, 0.9
    got = conditional_cs_divergence(X, y, y_pred, sigma_x=sx, sigma_y=sy)
    np.testing.assert_allclose(got, conditional_cs_ref(X, y, y_pred, sx, sy), rtol=1e-10,
                               atol=1e-13)
    got = cs_mutual_information(X, y, sigma_x=sx, sigma_t=sy)
    np.testing.assert_allclose(got, cs_qmi_ref(X, y, sx, sy), rtol=1e-10, atol=1e-13)
    m = max(1, n // 2)
    got = cs_divergence(X[:m], X[m:] + 0.3 if n > 1 else X, sigma=sx)
    ref = cs_divergence_ref(X[:m], X[m:] + 0.3 if n > 1 else X, sx)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


def test_median_widths_match_brute_force():
    X, y, y_pred = _problem(40, 3, 1, seed=5)
    sx, sy = np.median(pdist(X)), np.median(pdist(y))
    np.testing.assert_allclose(
        conditional_cs_divergence(X, y, y_pred), conditional_cs_ref(X, y, y_pred, sx, sy),
        rtol=1e-10)
    st = np.median(pdist(y_pred))
    np.testing.assert_allclose(cs_mutual_information(X, y_pred), cs_qmi_ref(X, y_pred, sx, st),
                               rtol=1e-10)
    pooled = np.median(pdist(np.vstack([X, X[:7] + 1])))
    np.testing.assert_allclose(cs_divergence(X, X[:7] + 1),
                               cs_divergence_ref(X, X[:7] + 1, pooled), rtol=1e-10)


def test_kernel_width_max_samples_is_an_integer_of_at_least_two():
    from fstat.bottleneck import kernel_width

    X = _problem(40, 3, 1, seed=5)[0]
    assert kernel_width(X, max_samples=np.int64(40)) == pytest.approx(np.median(pdist(X)))
    for bad in (1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="max_samples must be an integer >= 2"):
            kernel_width(X, max_samples=bad)


def test_silverman_widths_match_formula():
    X, y, _ = _problem(50, 2, 1, seed=9)
    s = X.std(axis=0, ddof=1).mean()
    expected = s * (4.0 / (4 * 50)) ** (1.0 / 6)
    assert kernel_width(X, "silverman") == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        cs_mutual_information(X, y, sigma_x="silverman", sigma_t=1.0),
        cs_qmi_ref(X, y, expected, 1.0), rtol=1e-10)


# --------------------------------------------------------------- closed forms
def test_identities_zero():
    X, y, _ = _problem(30, 2, 1, seed=1)
    assert abs(cs_divergence(X, X)) < 1e-12
    assert abs(conditional_cs_divergence(X, y, y)) < 1e-12
    assert abs(cs_mutual_information(X, np.full(30, 3.0), sigma_t=1.0)) < 1e-12


def test_singleton_divergence():
    a, b = np.array([[0.3, -1.0, 2.0]]), np.array([[1.0, 0.5, -0.5]])
    for sigma in (0.3, 1.0, 4.0):
        assert cs_divergence(a, b, sigma=sigma) == pytest.approx(
            np.sum((a - b) ** 2) / sigma**2, rel=1e-12)


@pytest.mark.parametrize("sx", [1e-3, 0.5, 3.0, 1e4])
def test_constant_offset(sx):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 3))
    y = np.tile([1.0, -2.0], (25, 1))
    r = np.array([0.4, -0.3])
    got = conditional_cs_divergence(X, y, y + r, sigma_x=sx, sigma_y=0.8)
    assert got == pytest.approx(np.sum(r**2) / 0.8**2, rel=1e-10)


def test_small_width_limits():
    rng = np.random.default_rng(2)
    n = 40
    X, T = rng.standard_normal((n, 2)), rng.standard_normal((n, 3))
    sigma = 1e-3 * pdist(X).min()
    assert cs_mutual_information(X, T, sigma_x=sigma, sigma_t=1e-3 * pdist(T).min()) == (
        pytest.approx(math.log(n), rel=1e-8))
    y = rng.standard_normal(n)
    y_pred = y + rng.standard_normal(n)
    correntropy = -2 * np.log(np.mean(np.exp(-((y - y_pred) ** 2) / (2 * 0.7**2))))
    assert conditional_cs_divergence(X, y, y_pred, sigma_x=sigma, sigma_y=0.7) == pytest.approx(
        correntropy, rel=1e-8)
    mse = np.mean((y - y_pred) ** 2) / 20.0**2
    got = conditional_cs_divergence(X, y, y_pred, sigma_x=sigma, sigma_y=20.0)
    assert abs(got - mse) <= 0.05 * mse


def test_large_sigma_x_gives_marginal_divergence():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((30, 2)), rng.standard_normal(30)
    y_pred = 0.5 * y + 1.0
    assert conditional_cs_divergence(X, y, y_pred, sigma_x=1e6, sigma_y=0.9) == pytest.approx(
        cs_divergence(y, y_pred, sigma=0.9), rel=1e-6)


@pytest.mark.parametrize("n", [5, 40])
def test_hsic_identity(n):
    rng = np.random.default_rng(n)
    X, T = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))
    la, lb, lc = (float(v) for v in _cs_qmi_terms(_t(X), _t(T), 1.1, 0.8))
    hsic = math.exp(la) + math.exp(lb) - 2 * math.exp(lc)
    assert hsic == pytest.approx(hsic_ref(X, T, 1.1, 0.8), rel=1e-10)
    A, B, C = cs_qmi_abc_ref(X, T, 1.1, 0.8)
    np.testing.assert_allclose([la, lb, lc], np.log([A, B, C]), rtol=1e-12)


def test_normalized():
    rng = np.random.default_rng(4)
    X, T = rng.standard_normal((30, 2)), rng.standard_normal((30, 1))
    T = T + X[:, :1]
    assert abs(cs_mutual_information(X, X, normalized=True) - 1.0) < 1e-12
    sx, st = np.median(pdist(X)), np.median(pdist(T))
    expected = cs_mutual_information(X, T) / math.sqrt(
        cs_mutual_information(X, X, sigma_x=sx, sigma_t=sx)
        * cs_mutual_information(T, T, sigma_x=st, sigma_t=st))
    assert cs_mutual_information(X, T, normalized=True) == pytest.approx(expected, rel=1e-12)
    with pytest.warns(RuntimeWarning, match="zero denominator"):
        assert cs_mutual_information(X, np.zeros(30), sigma_t=1.0, normalized=True) == 0.0


def test_gradient_closed_form():
    rng = np.random.default_rng(6)
    n, sx, sy = 12, 0.8, 0.6
    X, y = rng.standard_normal((n, 2)), rng.standard_normal((n, 1))
    yp = torch.tensor(y + 0.5 * rng.standard_normal((n, 1)), requires_grad=True)
    value = conditional_cs_core(_t(X), _t(y), yp, sx, sy)
    (grad,) = torch.autograd.grad(value, yp)
    P = yp.detach().numpy()
    K = gram_loop(X, X, sx)
    L2, L21 = gram_loop(P, P, sy), gram_loop(P, y, sy)
    w = 1.0 / K.sum(1) ** 2
    s2 = np.sum(w * (K * L2).sum(1))
    s21 = np.sum(w * (K * L21).sum(1))
    expected = np.zeros(n)
    for m in range(n):
        d_s2 = -sum((w[m] * K[m, i] + w[i] * K[i, m]) * L2[m, i] * (P[m, 0] - P[i, 0])
                    for i in range(n)) / sy**2
        d_s21 = -w[m] * sum(K[m, i] * L21[m, i] * (P[m, 0] - y[i, 0]) for i in range(n)) / sy**2
        expected[m] = d_s2 / s2 - 2 * d_s21 / s21
    np.testing.assert_allclose(grad.numpy()[:, 0], expected, atol=1e-10)


def test_gradcheck_all_cores():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((8, 2)), requires_grad=True)
    t = torch.tensor(rng.standard_normal((8, 3)), requires_grad=True)
    y = torch.tensor(rng.standard_normal((8, 1)))
    yp = torch.tensor(rng.standard_normal((8, 1)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cs_divergence_core(a, b, 1.3), (x, t[:, :2]))
    assert torch.autograd.gradcheck(lambda p: conditional_cs_core(x, y, p, 0.9, 0.7), (yp,))
    assert torch.autograd.gradcheck(lambda a, b: cs_qmi_core(a, b, 1.1, 1.4), (x, t))
    assert torch.autograd.gradcheck(lambda a, b: normalized_cs_qmi_core(a, b, 1.1, 1.4), (x, t))


# ---------------------------------------------------------------- invariances
def test_invariances():
    rng = np.random.default_rng(8)
    n = 25
    X, y, yp = _problem(n, 3, 2, seed=8)
    T = np.tanh(X @ rng.standard_normal((3, 4)))
    perm = rng.permutation(n)
    base_c = conditional_cs_divergence(X, y, yp, sigma_x=0.8, sigma_y=0.6)
    base_q = cs_mutual_information(X, T, sigma_x=0.8, sigma_t=0.6)
    assert conditional_cs_divergence(X[perm], y[perm], yp[perm], sigma_x=0.8,
                                     sigma_y=0.6) == pytest.approx(base_c, rel=1e-12)
    assert cs_mutual_information(X[perm], T[perm], sigma_x=0.8,
                                 sigma_t=0.6) == pytest.approx(base_q, rel=1e-12)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    Xr = X @ Q + 5.0
    assert conditional_cs_divergence(Xr, y, yp, sigma_x=0.8, sigma_y=0.6) == pytest.approx(
        base_c, rel=1e-10)
    assert cs_mutual_information(Xr, T, sigma_x=0.8, sigma_t=0.6) == pytest.approx(
        base_q, rel=1e-10)
    assert conditional_cs_divergence(X, y - 3.0, yp - 3.0, sigma_x=0.8,
                                     sigma_y=0.6) == pytest.approx(base_c, rel=1e-10)
    c = 3.7
    assert conditional_cs_divergence(c * X, c * y, c * yp, sigma_x=0.8 * c,
                                     sigma_y=0.6 * c) == pytest.approx(base_c, rel=1e-10)
    assert cs_mutual_information(c * X, c * T, sigma_x=0.8 * c,
                                 sigma_t=0.6 * c) == pytest.approx(base_q, rel=1e-10)
    assert cs_divergence(c * X, c * yp[:, :1] @ np.ones((1, 3)), sigma=c) == pytest.approx(
        cs_divergence(X, yp[:, :1] @ np.ones((1, 3)), sigma=1.0), rel=1e-10)
    # symmetry
    assert abs(cs_divergence(X, Xr, sigma=2.0) - cs_divergence(Xr, X, sigma=2.0)) < 1e-10
    assert abs(base_q - cs_mutual_information(T, X, sigma_x=0.6, sigma_t=0.8)) < 1e-10
    # median widths: invariance to rescaling t
    assert cs_mutual_information(X, 17.0 * T) == pytest.approx(cs_mutual_information(X, T),
                                                                rel=1e-10)


def test_nonnegative_on_random_problems():
    rng = np.random.default_rng(10)
    for _ in range(50):
        n, d = rng.integers(2, 30), rng.integers(1, 4)
        A = rng.standard_normal((n, d)) * rng.uniform(0.1, 3)
        B = rng.standard_normal((rng.integers(1, 30), d)) + rng.uniform(-1, 1)
        assert cs_divergence(A, B, sigma=rng.uniform(0.1, 3)) >= -1e-12
        T = rng.standard_normal((n, 2)) + A[:, :1]
        assert cs_mutual_information(A, T, sigma_x=rng.uniform(0.1, 3),
                                     sigma_t=rng.uniform(0.1, 3)) >= -1e-12


def test_one_dimensional_targets_are_columns():
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((30, 2)), rng.standard_normal(30)
    yp = y + rng.standard_normal(30)
    a = conditional_cs_divergence(X, y, yp, sigma_x=1.0, sigma_y=1.0)
    b = conditional_cs_divergence(X, y[:, None], yp[:, None], sigma_x=1.0, sigma_y=1.0)
    assert a == pytest.approx(b, rel=1e-12)
    sse = np.sum((y - yp) ** 2)
    assert not np.isclose(a, sse / math.log(2)) and not np.isclose(a, sse)


def test_base():
    X, y, yp = _problem(20, 2, 1, seed=12)
    nats = conditional_cs_divergence(X, y, yp, sigma_x=1.0, sigma_y=1.0)
    bits = conditional_cs_divergence(X, y, yp, sigma_x=1.0, sigma_y=1.0, base=2)
    assert bits == pytest.approx(nats / math.log(2), rel=1e-12)


# ------------------------------------------------------------ population limits
@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 3])
def test_two_gaussians_population(d):
    values = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        mu = np.zeros(d)
        mu[0] = 1.0
        a = rng.standard_normal((2000, d))
        b = rng.standard_normal((2000, d)) + mu
        values.append(cs_divergence(a, b, sigma=1.0))
    truth = 1.0 / 3.0
    assert abs(np.mean(values) - truth) <= 0.25 * truth


@pytest.mark.slow
def test_bivariate_gaussian_population():
    a = 2.0
    for rho in (0.5, 0.8):
        truth = (math.log((1 + a) ** 2 - a**2 * rho**2 / 4)
                 - 0.5 * math.log((1 + a) ** 2 - a**2 * rho**2) - math.log(1 + a))
        values = []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            z = rng.standard_normal((2000, 2))
            x, t = z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]
            values.append(cs_mutual_information(x, t, sigma_x=1.0, sigma_t=1.0))
        assert abs(np.mean(values) - truth) <= 0.25 * truth
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2000, 2))
    assert abs(cs_mutual_information(z[:, 0], z[:, 1], sigma_x=1.0, sigma_t=1.0)) < 0.01


def test_median_widths_rank_dependence():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((100, 4))
        dependent = np.tanh(X @ rng.standard_normal((4, 3))) + 0.3 * rng.standard_normal((100, 3))
        independent = rng.standard_normal((100, 3))
        assert cs_mutual_information(X, dependent) > cs_mutual_information(X, independent)


# ------------------------------------------------------------ float32 stability
@pytest.mark.parametrize("r", [5.0, 30.0, 50.0])
def test_float32_large_residuals(r):
    n, sy = 128, 0.5
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((n, 3)), dtype=torch.float32)
    y = torch.zeros(n, 1)
    yp = torch.full((n, 1), r * sy, requires_grad=True)
    value = conditional_cs_core(x, y, yp, 1.0, sy)
    (grad,) = torch.autograd.grad(value, yp)
    assert torch.isfinite(value) and torch.all(torch.isfinite(grad))
    assert float(value.detach()) == pytest.approx(r**2, rel=1e-3)


def test_float32_tiny_widths():
    n = 128
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((n, 3)), dtype=torch.float32, requires_grad=True)
    t = torch.tensor(rng.standard_normal((n, 5)), dtype=torch.float32, requires_grad=True)
    value = cs_qmi_core(x, t, 1e-3, 1e-3)
    gx, gt = torch.autograd.grad(value, (x, t))
    assert float(value.detach()) == pytest.approx(math.log(n), rel=1e-4)
    assert torch.all(torch.isfinite(gx)) and torch.all(torch.isfinite(gt))


# ------------------------------------------------------------------- widths
def test_median_width_matches_numpy_odd_and_even():
    rng = np.random.default_rng(13)
    for n in (4, 5):  # 6 pairs (even) and 10 pairs (even); 3 rows -> 3 pairs (odd)
        X = rng.standard_normal((n, 2))
        assert kernel_width(X) == pytest.approx(np.median(pdist(X)), rel=1e-12)
    X = rng.standard_normal((3, 2))
    assert kernel_width(X) == pytest.approx(np.median(pdist(X)), rel=1e-12)
    assert len(pdist(X)) % 2 == 1


def test_width_subsampling_deterministic():
    X = np.random.default_rng(14).standard_normal((300, 2))
    a = kernel_width(X, max_samples=50, random_state=3)
    b = kernel_width(X, max_samples=50, random_state=3)
    c = kernel_width(X, max_samples=50, random_state=4)
    assert a == b and a != c
    assert kernel_width(X, max_samples=None) == pytest.approx(np.median(pdist(X)), rel=1e-12)


def test_width_degenerate_and_passthrough():
    with pytest.warns(UserWarning, match="degenerate kernel width"):
        assert kernel_width(np.ones((6, 3))) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernel_width(np.ones((6, 3)), 0.3) == 0.3
        X = np.random.default_rng(0).standard_normal((10, 2))
        assert kernel_width(X, scale=0.25) == pytest.approx(0.25 * np.median(pdist(X)))
        assert kernel_width(X, 2.0, scale=0.25) == 2.0


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, "mean", None, True])
def test_bad_widths(bad):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="sigma"):
        kernel_width(X, bad)
    with pytest.raises(ValueError, match="sigma_x"):
        cs_mutual_information(X, X, sigma_x=bad)
    with pytest.raises(ValueError, match="sigma_y"):
        conditional_cs_divergence(X, X[:, 0], X[:, 0], sigma_y=bad)


# ---------------------------------------------------------------- bad input
def test_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="NaN"):
        cs_divergence(np.array([[np.nan, 1.0]]), X)
    with pytest.raises(ValueError, match="infinity"):
        cs_mutual_information(X, np.full(10, np.inf))
    with pytest.raises(ValueError, match="1 sample"):
        conditional_cs_divergence(X[:1], X[:1, 0], X[:1, 0])
    assert cs_divergence(X[:1], X[1:2], sigma=1.0) > 0
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cs_mutual_information(X, X[:5])
    with pytest.raises(ValueError, match="shape"):
        conditional_cs_divergence(X, X[:, 0], X)
    with pytest.raises(ValueError, match=r"3 \(X\) and 2 \(Y\)"):
        cs_divergence(np.ones((4, 3)), X)
    with pytest.raises(ValueError, match="[Cc]omplex"):
        cs_divergence(X + 1j, X)
    with pytest.raises(ValueError, match="could not convert"):
        cs_divergence([["a", "b"]], X)
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="dense"):
        cs_divergence(sp.csr_matrix(X), X)
    with pytest.raises(ValueError, match="base"):
        cs_divergence(X, X, base=1.0)
    with pytest.raises(ValueError, match="approximation"):
        cs_divergence(X, X, approximation="exact")
    with pytest.raises(ValueError, match="device"):
        cs_divergence(X, X, device="tpu")
    with pytest.raises(ValueError, match="dtype"):
        cs_divergence(X, X, dtype="int8")


@pytest.mark.parametrize("width", [1e-3, 1e-8])
def test_identities_hold_exactly_at_tiny_widths(width):
    # equal rows are exactly 0 apart in cross-Grams too, so D(a; a) = 0 and y_pred = y
    # gives 0 for multi-dimensional targets at any width (the plain norm expansion left
    # rounding of order eps |a|^2 / width^2: 4e-11 at width 1e-3, 0.1 at 1e-8)
    X, y, _ = _problem(50, 3, 2, seed=21)
    assert cs_divergence(X, X.copy(), sigma=width) == 0.0
    assert conditional_cs_divergence(X, y, y.copy(), sigma_x=1.0, sigma_y=width) == 0.0


def test_near_copies_at_a_small_width_match_brute_force():
    rng = np.random.default_rng(22)
    A = 3.0 * rng.standard_normal((30, 3))
    B = A + 1e-3 * rng.standard_normal((30, 3))
    assert cs_divergence(A, B, sigma=1e-3) == pytest.approx(
        cs_divergence_ref(A, B, 1e-3), rel=1e-9)


def test_missing_inputs_are_required():
    X = np.random.default_rng(0).standard_normal((10, 2))
    for call, name in ((lambda: conditional_cs_divergence(X, None, X[:, 0]), "y"),
                       (lambda: conditional_cs_divergence(X, X[:, 0], None), "y_pred"),
                       (lambda: cs_mutual_information(X, None), "T"),
                       (lambda: cs_divergence(X, None), "Y"),
                       (lambda: kernel_width(None), "X")):
        with pytest.raises(ValueError, match=f"{name} is required"):
            call()


def test_pandas_and_read_only_inputs_are_quiet_and_equal():
    # pandas >= 3 hands out read-only views (copy-on-write); torch warns when wrapping them
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    frozen = X.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cs_mutual_information(pd.DataFrame(X), pd.Series(y)) == \
            cs_mutual_information(X, y)
        assert cs_mutual_information(frozen, y) == cs_mutual_information(X, y)
        assert conditional_cs_divergence(X, pd.Series(y), pd.Series(y + 0.5)) == \
            conditional_cs_divergence(X, y, y + 0.5)
        assert cs_divergence(frozen, X + 1.0) == cs_divergence(X, X + 1.0)
        assert kernel_width(pd.Series(y)) == kernel_width(y)


def test_float32_wrapper_close_to_float64():
    X, y, yp = _problem(64, 3, 1, seed=15)
    a = cs_mutual_information(X, yp, dtype="float32")
    b = cs_mutual_information(X, yp)
    assert a == pytest.approx(b, rel=1e-3)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    X, y, yp = _problem(64, 3, 1, seed=16)
    for fn, args in ((cs_divergence, (X, yp @ np.ones((1, 3)))),
                     (cs_mutual_information, (X, yp)),
                     (conditional_cs_divergence, (X, y, yp))):
        assert fn(*args, device="cuda") == pytest.approx(fn(*args, device="cpu"), rel=1e-10)


def test_cuda_request_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        cs_divergence(np.ones((3, 1)), np.zeros((3, 1)), device="cuda")


def test_float32_values_do_not_depend_on_the_data_scale():
    # squared distances were formed in float32: data near 1e20 overflowed (NaN, inf or wrong
    # values) and a large common offset cancelled to 0; the estimators depend on differences
    # over widths only, so float32 must give the same value at any float64 scale
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    y = rng.standard_normal(5)
    T = X[:, :1] + 0.3 * rng.standard_normal((5, 1))

    def values(scale, offset=0.0, **kw):
        return np.array([
            cs_divergence(X * scale + offset, Y * scale + offset, **kw),
            cs_divergence(X * scale, Y * scale, sigma=2.0 * scale, **kw),
            conditional_cs_divergence(X, y * scale + offset, (y + 0.3) * scale + offset, **kw),
            cs_mutual_information(X * scale, T * scale + offset, **kw),
            cs_mutual_information(X * scale, T * scale, normalized=True, **kw),
        ])

    exact = values(1.0)
    # (median widths at 1e200 and 1e300: squared distances overflowed, "degenerate" width 1)
    for scale, offset in ((1e20, 0.0), (1e-8, 0.0), (1e150, 0.0), (1e200, 0.0), (1e300, 0.0),
                          (1.0, 1e8)):
        np.testing.assert_allclose(values(scale, offset, dtype="float32"), exact, rtol=2e-5)
        # float64: the offset data themselves are rounded to ~1e-8 of their spread
        np.testing.assert_allclose(values(scale, offset), exact, rtol=1e-9 if offset == 0 else 1e-7)


@pytest.mark.parametrize("sigma", [1e-30, 1e-150])
def test_float32_widths_far_below_the_spread_are_finite(sigma):
    # exponents d^2 / (2 sigma^2) beyond the float32 range gave inf (1e-30) and NaN (1e-150)
    # where the float64 estimates are finite
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 2)), rng.standard_normal((30, 2)) + 0.5
    y = rng.standard_normal(30)
    y_pred = y + 0.1 * rng.standard_normal(30)

    def values(**kw):
        return np.array([
            cs_divergence(X, Y, sigma=sigma, **kw),
            conditional_cs_divergence(X, y, y_pred, sigma_x=sigma, sigma_y=sigma, **kw),
            cs_mutual_information(X, Y, sigma_x=sigma, sigma_t=sigma, **kw),
        ])

    exact = values()
    assert np.all(np.isfinite(exact))
    np.testing.assert_allclose(values(dtype="float32"), exact, rtol=2e-5)


def test_working_units_at_the_ends_of_the_float64_range():
    # subnormal data (2^-k overflowed) and a huge width on tiny data (the scaled width
    # overflowed) stay in the data's own units instead of raising
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # degenerate widths at 1e-310
        assert math.isfinite(cs_divergence(X * 1e-310, Y * 1e-310))
    wide = cs_divergence(X * 1e-10, Y * 1e-10, sigma=1e300)
    assert wide == pytest.approx(cs_divergence(X, Y, sigma=1e280), abs=1e-12)  # both ~0


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_constant_input_gives_exactly_zero(seed, normalized):
    # spec 2.4: t constant => I = 0 exactly (log A + log B - 2 log C left rounding of
    # either sign, e.g. -8.9e-16); a constant X too (the identity is symmetric)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    constant = np.full((50, 1), rng.normal())
    for a, b in ((X, constant), (constant, X)):
        with (pytest.warns(RuntimeWarning, match="zero denominator") if normalized
              else warnings.catch_warnings()):
            value = cs_mutual_information(a, b, sigma_x=1.3, sigma_t=0.7, normalized=normalized)
        assert value == 0.0 and np.copysign(1.0, value) == 1.0
    with pytest.warns(UserWarning, match="degenerate kernel width"):  # the rule still warns
        assert cs_mutual_information(X, constant) == 0.0


def test_float32_values_of_nonnegative_estimators_are_not_negative():
    # a width far above the spread: every Gram entry is 1 - O(1e-7), which float32 rounds
    # at 6e-8, so I = 6.6e-8 came out as -9.5e-7 (normalised: 0.12 vs -0.003); the
    # estimators are >= 0 and return 0.0 instead of a negative rounding error
    r = np.random.default_rng(8)
    X, T = r.normal(size=(10, 2)), r.normal(size=(10, 1))
    for normalized in (False, True):
        exact = cs_mutual_information(X, T, sigma_x=1e3, normalized=normalized)
        single = cs_mutual_information(X, T, sigma_x=1e3, normalized=normalized,
                                       dtype="float32")
        assert exact > 0 and single >= 0.0
    for seed in range(20):
        r = np.random.default_rng(seed)
        A, B = r.normal(size=(8, 2)), r.normal(size=(9, 2)) + 1e-4
        assert cs_divergence(A, B, sigma=1e3, dtype="float32") >= 0.0


def test_a_log_base_below_one_and_the_normalised_value():
    # the floor at 0 acts in nats, before the change of base (base 0.5 gave 0.0 for every
    # value); the normalised value is a ratio and ignores the base (I_norm(x; x) = 1)
    from fstat.bottleneck._estimators import _finish

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    t = x[:, :1] + 0.1 * rng.normal(size=(100, 1))
    nats = cs_mutual_information(x, t)
    assert nats > 0
    assert cs_mutual_information(x, t, base=0.5) == pytest.approx(nats / math.log(0.5),
                                                                  rel=1e-12)
    a, b = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 2.0
    assert cs_divergence(a, b, base=0.5) == pytest.approx(cs_divergence(a, b) / math.log(0.5),
                                                          rel=1e-12)
    for base in (None, 2.0, 0.5):
        assert cs_mutual_information(x, x, normalized=True, base=base) == pytest.approx(1.0,
                                                                                      abs=1e-12)
    assert math.isnan(_finish(torch.tensor(float("nan")), 1.0, nonnegative=True))
    assert _finish(torch.tensor(-0.0), 2.0, nonnegative=True) == 0.0
