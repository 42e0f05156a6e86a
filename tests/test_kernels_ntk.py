"""Analytic NNGP/NTK: brute-force recursion, quadrature, closed forms and identities."""

import math
import pickle
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from sklearn.base import clone

from fstat.kernels import NTKKernel, ntk_kernel, ntk_kernel_torch
from fstat.kernels._ntk import H_U_STAR, U_STAR, h_closed, k_closed

PARAMS = [(1.0, 0.0), (math.sqrt(2), 0.0), (1.5, 0.3), (math.sqrt(2), 0.1)]


def _relu_moments(a, b, c):
    """E[ReLU(u)ReLU(v)] and E[1{u>0}1{v>0}] by the arc-cosine formula with math.acos."""
    if a == 0 or b == 0:
        return 0.0, 0.25 if (a == 0 and b == 0) else 0.0
    rho = max(-1.0, min(1.0, c / math.sqrt(a * b)))
    theta = math.acos(rho)
    return (math.sqrt(max(a * b - c * c, 0.0)) + (math.pi - theta) * c) / (2 * math.pi), (
        math.pi - theta
    ) / (2 * math.pi)


def _reference(x, y, depth, w, b):
    """Per-pair pure-Python recursion of spec §2.2 (returns nngp, ntk, exact-layer flags).

    While a layer's covariances are exact rationals (``fractions.Fraction`` of the float
    inputs and hyperparameters) the test ``c^2 == a b`` decides *exactly* whether the pair
    is parallel (rho = 1: the diagonal, x and s x with s > 0 and no bias) or antiparallel
    (rho = -1: x and -x with no bias, also a zero row: c = 0 = a b, theta = atan2(0, 0) = 0).
    There the arc-cosine terms have closed forms -- theta = 0: E[ReLU ReLU] = c/2, the NTK
    factor (pi - theta)/(2 pi) = 1/2; theta = pi: both 0 -- which keep the values rational.
    Anywhere else ``math.acos`` of the clipped rho is used in float64 (well conditioned
    away from rho = +-1, where arccos has an infinite slope).
    """
    d = len(x)
    xs = [Fraction(float(v)) for v in x]
    ys = [Fraction(float(v)) for v in y]
    w2, b2 = Fraction(w) ** 2, Fraction(b) ** 2
    kxx = sum(v * v for v in xs) / d
    kyy = sum(v * v for v in ys) / d
    kxy = sum(u * v for u, v in zip(xs, ys)) / d
    theta = Fraction(0)
    exact = []
    for _ in range(depth):
        sxx, syy, sxy = w2 * kxx + b2, w2 * kyy + b2, w2 * kxy + b2
        t = sxy + w2 * theta
        if isinstance(sxy, Fraction) and sxy * sxy == sxx * syy:
            exact.append(True)
            if sxy >= 0:  # theta = 0
                kxy, theta = sxy / 2, t / 2
            else:  # theta = pi
                kxy, theta = Fraction(0), Fraction(0)
        else:
            exact.append(False)
            sxx, syy, sxy, t = float(sxx), float(syy), float(sxy), float(t)
            rho = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
            ang = math.acos(rho)
            kxy = (math.sqrt(max(sxx * syy - sxy * sxy, 0.0)) + (math.pi - ang) * sxy) / (
                2 * math.pi)
            theta = t * (math.pi - ang) / (2 * math.pi)
        kxx, kyy = sxx / 2, syy / 2
    nngp = w2 * kxy + b2
    ntk = nngp + w2 * theta if depth else nngp
    return float(nngp), float(ntk), exact


def _diag_closed_form(X, depth, w, b):
    """Spec §2.2 diagonal (theta = 0 at every layer): K = S/2, Theta = T/2, any bias."""
    k = (X**2).sum(1) / X.shape[1]
    theta = np.zeros_like(k)
    for _ in range(depth):
        s = w**2 * k + b**2
        theta = (s + w**2 * theta) / 2
        k = s / 2
    nngp = w**2 * k + b**2
    return nngp, nngp + w**2 * theta if depth else nngp


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 4))
    X = np.vstack([X, 2.5 * X[:2], -X[:2], np.zeros((1, 4))])
    Y = rng.standard_normal((5, 4))
    return X, Y


@pytest.fixture(scope="module")
def copies():
    """Random rows on a 2**-20 grid, so that 2x, x/4, 2.5x and -x are exact copies."""
    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((7, 4)) * 2**20) / 2**20
    X = np.vstack([X, 2.0 * X[:3], 0.25 * X[:3], 2.5 * X[:3], -X[:3], np.zeros((1, 4))])
    assert np.array_equal(X[13:16] / 2.5, X[:3]) and np.array_equal(X[16:19], -X[:3])
    Y = rng.standard_normal((5, 4))
    return X, Y


def _rel_err(got, ref):
    """Per-entry relative error; an exactly zero reference needs an exactly zero value."""
    err = np.abs(got - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref != 0, err / np.abs(ref), np.where(err == 0, 0.0, np.inf))


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("w, b", PARAMS)
def test_matches_bruteforce_recursion(copies, depth, w, b):
    """Every pair -- diagonal, scaled copies (2x, x/4, 2.5x), negated copies, a zero row and
    random pairs -- against the brute-force recursion, 1e-10 relative per entry (spec §6)."""
    X, Y = copies
    Z = np.vstack([X, Y])
    nngp, ntk = ntk_kernel(X, Z, depth=depth, w_std=w, b_std=b, kind="both", device="cpu")
    ref = [[_reference(x, z, depth, w, b) for z in Z] for x in X]
    ref_nngp = np.array([[r[0] for r in row] for row in ref])
    ref_ntk = np.array([[r[1] for r in row] for row in ref])
    assert _rel_err(nngp, ref_nngp).max() <= 1e-10
    assert _rel_err(ntk, ref_ntk).max() <= 1e-10
    n = len(X)
    # the exact (rho = +-1) branch really ran on the special pairs at the first layer
    first = np.array([[bool(r[2]) and r[2][0] for r in row] for row in ref])
    if depth:
        assert first[np.arange(n), np.arange(n)].all()  # the diagonal, with or without bias
        scaled = [(i, j) for i in range(3) for j in (7 + i, 10 + i, 13 + i, 16 + i)]
        assert all(first[i, j] == (b == 0) for i, j in scaled)
        assert not first[:7, n:].any()  # random pairs take the arccos path
    if b == 0:  # closed forms at rho = +-1: K(x, s x) = s K(x, x), K(x, -x) at depth <= 1
        for i in range(3):
            for j, s in ((7 + i, 2.0), (10 + i, 0.25), (13 + i, 2.5)):
                for K in (nngp, ntk):
                    assert abs(K[i, j] - s * K[i, i]) <= 1e-10 * abs(s * K[i, i])
            if depth == 0:
                np.testing.assert_allclose(ntk[i, 16 + i], -ntk[i, i], rtol=1e-14)
            if depth == 1:
                assert nngp[i, 16 + i] == 0.0 and ntk[i, 16 + i] == 0.0
        assert np.all(nngp[n - 1] == 0.0) and np.all(ntk[n - 1] == 0.0)
    assert np.all(np.isfinite(ntk)) and np.all(np.isfinite(nngp))


@pytest.mark.parametrize("w, b", PARAMS)
def test_diagonal_closed_form_with_and_without_bias(copies, w, b):
    """Spec §2.2 diagonal (theta = 0 at every layer) for any bias: the symmetric Gram's
    diagonal, the diagonal pairs of a cross Gram and NTKKernel.diag, 1e-10 per entry."""
    X, _ = copies
    for depth in range(5):
        ref_nngp, ref_ntk = _diag_closed_form(X, depth, w, b)
        nngp, ntk = ntk_kernel(X, depth=depth, w_std=w, b_std=b, kind="both", device="cpu")
        cross_nngp, cross_ntk = ntk_kernel(X, X.copy(), depth=depth, w_std=w, b_std=b,
                                           kind="both", device="cpu")
        kern = NTKKernel(depth=depth, w_std=w, b_std=b, device="cpu")
        for got, ref in ((np.diag(nngp), ref_nngp), (np.diag(ntk), ref_ntk),
                         (np.diag(cross_nngp), ref_nngp), (np.diag(cross_ntk), ref_ntk),
                         (kern.diag(X), ref_ntk)):
            assert _rel_err(got, ref).max() <= 1e-10
        if b > 0:  # the zero row's diagonal comes from the bias alone
            assert ref_ntk[-1] > 0 and ntk[-1, -1] == pytest.approx(ref_ntk[-1], rel=1e-12)
        else:
            np.testing.assert_allclose(ref_ntk, (depth + 1) * ref_nngp, rtol=1e-14)


def test_arccos_expectations_match_quadrature():
    """Independent check: integrate the inner Gaussian analytically, the outer one by quad.

    (Tensor-product Gauss-Hermite on the kinked integrand only reaches ~1e-3.)
    """
    from scipy.integrate import quad
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    for _ in range(6):
        A = rng.standard_normal((2, 2))
        S = A @ A.T + 0.1 * np.eye(2)
        L = np.linalg.cholesky(S)  # u = L00 z1, v = L10 z1 + L11 z2; u > 0 iff z1 > 0

        def inner_relu(z1, L=L):
            m, s = L[1, 0] * z1, L[1, 1]
            return L[0, 0] * z1 * (m * norm.cdf(m / s) + s * norm.pdf(m / s)) * norm.pdf(z1)

        relu = quad(inner_relu, 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
        step = quad(lambda z, L=L: norm.cdf(L[1, 0] * z / L[1, 1]) * norm.pdf(z), 0, np.inf,
                    epsabs=1e-13, epsrel=1e-12)[0]
        moment, dot = _relu_moments(S[0, 0], S[1, 1], S[0, 1])
        assert abs(relu - moment) < 1e-8
        assert abs(step - dot) < 1e-8
        # the torch recursion (depth 1, NNGP with w = 1, b = 0) gives the same expectation
        X = np.array([[math.sqrt(S[0, 0])], [S[0, 1] / math.sqrt(S[0, 0])]])
        X = np.hstack([X, [[0.0], [math.sqrt(max(S[1, 1] - X[1, 0] ** 2, 0.0))]]]) * math.sqrt(2)
        nngp = ntk_kernel(X, kind="nngp", device="cpu")
        assert abs(nngp[0, 1] - moment) < 1e-12


def test_symmetry_psd_diagonal(data):
    X, _ = data
    for depth in [0, 1, 3]:
        for w, b in PARAMS:
            nngp, ntk = ntk_kernel(X, depth=depth, w_std=w, b_std=b, kind="both", device="cpu")
            for K in (nngp, ntk):
                assert np.array_equal(K, K.T)
                lam = np.linalg.eigvalsh(K)
                assert lam.min() >= -1e-10 * lam.max()
            if b == 0:
                sq = (X**2).sum(1) / X.shape[1]
                expect = w**2 * (w**2 / 2) ** depth * sq
                np.testing.assert_allclose(np.diag(nngp), expect, rtol=1e-13, atol=0)
                np.testing.assert_allclose(np.diag(ntk), (depth + 1) * expect, rtol=1e-13, atol=0)


def test_depth1_closed_forms(data):
    X, Y = data
    d = X.shape[1]
    for w in (1.0, 1.7):
        nngp, ntk = ntk_kernel(X, Y, w_std=w, kind="both", device="cpu")
        nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.nan_to_num(X @ Y.T / np.outer(nx, ny))
        c = w**4 * np.outer(nx, ny) / (2 * math.pi * d)
        np.testing.assert_allclose(ntk, c * h_closed(u), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(nngp, c * k_closed(u), rtol=1e-10, atol=1e-14)


def test_closed_form_constants():
    def dh(u):
        return 2 * (math.pi - math.acos(u)) + u / math.sqrt(1 - u * u)

    root = brentq(dh, -0.99, -0.5, xtol=1e-15)
    assert abs(root - U_STAR) < 1e-12
    assert abs(h_closed(root) - H_U_STAR) < 1e-14
    assert h_closed(1.0) == pytest.approx(2 * math.pi)
    assert h_closed(0.0) == pytest.approx(1.0)
    assert h_closed(-1.0) == 0.0
    assert k_closed(-1.0) == 0.0 and k_closed(1.0) == pytest.approx(math.pi)
    grid = np.linspace(-1, 1, 2001)
    assert h_closed(grid).min() >= H_U_STAR - 1e-15


def test_antipodal_homogeneity_zero_row_depth0(data):
    X, Y = data
    x = X[:1]
    assert ntk_kernel(np.vstack([x, -x]), device="cpu")[0, 1] == 0.0
    for depth in (1, 2, 3):
        K = ntk_kernel(X, Y, depth=depth, w_std=1.3, device="cpu")
        K2 = ntk_kernel(3.0 * X, Y, depth=depth, w_std=1.3, device="cpu")
        np.testing.assert_allclose(K2, 3.0 * K, rtol=1e-12, atol=1e-15)
        Kz = ntk_kernel(np.zeros((1, 4)), Y, depth=depth, device="cpu")
        assert np.all(Kz == 0.0)
    K0 = ntk_kernel(X, Y, depth=0, w_std=1.5, b_std=0.3, kind="both", device="cpu")
    lin = 1.5**2 * X @ Y.T / 4 + 0.09
    np.testing.assert_allclose(K0[0], lin, rtol=1e-13)
    np.testing.assert_allclose(K0[1], lin, rtol=1e-13)


def test_ntk_is_nngp_times_depth_plus_one_on_diag(data):
    X, _ = data
    for depth in (1, 2, 4):
        nngp, ntk = ntk_kernel(X, depth=depth, kind="both", device="cpu")
        np.testing.assert_allclose(np.diag(ntk), (depth + 1) * np.diag(nngp), rtol=1e-14)


def test_block_size_dtype_and_both(data):
    X, Y = data
    for depth, (w, b) in [(2, PARAMS[3]), (3, PARAMS[2])]:
        K = ntk_kernel(X, depth=depth, w_std=w, b_std=b, device="cpu")
        Kb = ntk_kernel(X, depth=depth, w_std=w, b_std=b, device="cpu", block_size=3)
        assert np.abs(K - Kb).max() <= 1e-13 * np.abs(K).max()
        K32 = ntk_kernel(X, depth=depth, w_std=w, b_std=b, device="cpu", dtype="float32")
        assert np.abs(K32 - K).max() <= 1e-5 * np.abs(K).max()
        nngp, ntk = ntk_kernel(X, Y, depth=depth, w_std=w, b_std=b, kind="both", device="cpu")
        np.testing.assert_array_equal(ntk, ntk_kernel(X, Y, depth=depth, w_std=w, b_std=b,
                                                      device="cpu"))
        np.testing.assert_array_equal(nngp, ntk_kernel(X, Y, depth=depth, w_std=w, b_std=b,
                                                       kind="nngp", device="cpu"))


def test_symmetric_gram_from_upper_tiles_equals_cross_gram(data):
    """K(X) is built from tiles on and above the diagonal, mirrored; it must equal K(X, X)."""
    X, _ = data
    Xt = torch.as_tensor(X)
    for depth, (w, b) in [(1, PARAMS[0]), (3, PARAMS[2])]:
        for rows in (1, 3, 4, X.shape[0] + 1):
            nngp, ntk = ntk_kernel_torch(Xt, depth=depth, w_std=w, b_std=b, kind="both",
                                         block_size=rows)
            nngp_xy, ntk_xy = ntk_kernel_torch(Xt, Xt.clone(), depth=depth, w_std=w,
                                               b_std=b, kind="both", block_size=5)
            for sym, cross in ((nngp, nngp_xy), (ntk, ntk_xy)):
                assert torch.equal(sym, sym.T)
                off = ~torch.eye(X.shape[0], dtype=torch.bool)
                diff = (sym - cross)[off].abs().max()
                assert diff <= 1e-13 * cross.abs().max()
            out = torch.full((X.shape[0], X.shape[0]), float("nan"), dtype=Xt.dtype)
            ntk_kernel_torch(Xt, depth=depth, w_std=w, b_std=b, block_size=rows, out=out)
            assert torch.equal(out, ntk)


def test_torch_version_and_out(data):
    X, _ = data
    Xt = torch.as_tensor(X)
    out = torch.empty(len(X), len(X), dtype=torch.float64)
    res = ntk_kernel_torch(Xt, depth=2, out=out)
    assert res is out
    np.testing.assert_array_equal(out.numpy(), ntk_kernel(X, depth=2, device="cpu"))


def test_bad_input(data):
    X, Y = data
    with pytest.raises(ValueError, match="4 features but Y has 3"):
        ntk_kernel(X, Y[:, :3], device="cpu")
    for kwargs, match in [
        ({"depth": -1}, "depth"), ({"depth": 1.5}, "depth"), ({"w_std": 0.0}, "w_std"),
        ({"b_std": -0.1}, "b_std"), ({"kind": "rbf"}, "kind"), ({"dtype": "int8"}, "dtype"),
        ({"block_size": 0}, "block_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            ntk_kernel(X, device="cpu", **kwargs)
    with pytest.raises(ValueError):
        ntk_kernel(np.array([1.0, 2.0]), device="cpu")
    with pytest.raises(ValueError):
        ntk_kernel(np.array([[np.nan, 1.0]]), device="cpu")


def test_ntkkernel_in_sklearn(data):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    Xt = rng.standard_normal((10, 3))
    y = np.sign(X[:, 0] + 0.3 * X[:, 1])
    kern = NTKKernel(depth=2, w_std=1.2, device="cpu")
    K, Kt = kern(X), kern(Xt, X)
    a = SVC(kernel=kern).fit(X, y).decision_function(Xt)
    b = SVC(kernel="precomputed").fit(K, y).decision_function(Kt)
    np.testing.assert_allclose(a, b, atol=1e-8)
    a = KernelRidge(kernel=kern, alpha=0.1).fit(X, y).predict(Xt)
    b = KernelRidge(kernel="precomputed", alpha=0.1).fit(K, y).predict(Kt)
    np.testing.assert_allclose(a, b, atol=1e-8)
    gp = GaussianProcessRegressor(ConstantKernel() * kern + WhiteKernel(), random_state=0)
    gp.fit(X, y)
    c = gp.kernel_.k1.k1.constant_value
    noise = gp.kernel_.k2.noise_level
    alpha = np.linalg.solve(c * K + noise * np.eye(len(X)), y)
    np.testing.assert_allclose(gp.predict(Xt), c * Kt @ alpha, atol=1e-8)
    np.testing.assert_allclose(kern.diag(X), np.diag(K), rtol=1e-14)
    assert not kern.is_stationary() and kern.requires_vector_input
    assert kern.theta.shape == (0,)
    K2, grad = kern(X, eval_gradient=True)
    assert grad.shape == (40, 40, 0)
    k2 = pickle.loads(pickle.dumps(clone(kern)))
    np.testing.assert_array_equal(k2(X), K)


def test_matches_neural_tangents_reference_file():
    """Grams written by neural-tangents 0.6.5 (benchmarks/bench_kernels.py --make-nt-reference).

    Off-diagonal entries agree to rounding; on the diagonal neural-tangents takes arccos of
    a correlation that rounds to 1 (error ~ sqrt(eps)), so it is compared at 1e-7.
    """
    import json
    from pathlib import Path

    path = Path(__file__).parent / "data" / "nt_reference.npz"
    if not path.exists():
        pytest.skip("reference file absent")
    data = np.load(path)
    X = data["X"]
    configs = json.loads(str(data["configs"]))
    assert len(configs) == 16
    for cfg in configs:
        nngp, ntk = ntk_kernel(X, depth=cfg["depth"], w_std=cfg["w_std"], b_std=cfg["b_std"],
                               kind="both", device="cpu")
        for ours, ref in ((nngp, data[cfg["key"] + "_nngp"]), (ntk, data[cfg["key"] + "_ntk"])):
            scale = np.abs(ref).max()
            assert np.abs(ours - ref).max() <= 1e-7 * scale



def test_scikit_ntk_reference():
    """scikit-ntk 1.2.1 ``NeuralTangentKernel(depth, bias=0)`` (committed Grams from
    ``benchmarks/bench_kernels.py --make-skntk-reference``) equals fstat's NTK with
    w_std = sqrt 2, b_std = 0 times d / (2 (L + 1)) (spec §2.2), to 1e-10."""
    from pathlib import Path

    path = Path(__file__).parent / "data" / "skntk_reference.npz"
    if not path.exists():
        pytest.skip("reference file absent")
    data = np.load(path)
    X = data["X"]
    d = X.shape[1]
    for depth in (1, 2, 3):
        ref = data[f"d{depth}"]
        ours = ntk_kernel(X, depth=depth, w_std=np.sqrt(2), b_std=0.0, device="cpu")
        ours = ours * d / (2 * (depth + 1))
        assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()
        assert not np.allclose(ours * (depth + 1), ref)  # the depth factor matters

def test_memory_precheck_raises_before_allocating():
    X = torch.zeros((10**6, 1), dtype=torch.float64)
    with pytest.raises(MemoryError, match="GiB"):
        ntk_kernel_torch(X)


def test_read_only_and_pandas_inputs_are_quiet():
    # pandas >= 3 hands out read-only views (copy-on-write): torch warns when wrapping them
    pd = pytest.importorskip("pandas")
    from fstat.kernels import empirical_ntk

    X = np.random.default_rng(3).standard_normal((6, 3))
    frozen = X.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ntk_kernel(pd.DataFrame(X), frozen, device="cpu"),
                                      ntk_kernel(X, X, device="cpu"))
        np.testing.assert_array_equal(NTKKernel(device="cpu").diag(frozen),
                                      NTKKernel(device="cpu").diag(X))
        np.testing.assert_array_equal(
            empirical_ntk(frozen, width=16, random_state=0, device="cpu"),
            empirical_ntk(X, width=16, random_state=0, device="cpu"))
    assert X.flags.writeable and not frozen.flags.writeable


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_homogeneous_and_finite_at_extreme_input_scales(depth):
    # bias-free kernels are homogeneous of degree 2 in (x, y): a_i b_j ~ |x|^4 overflowed
    # (NaN) for |x| ~ 1e80 and underflowed (theta = pi, wrong sign) for |x| ~ 1e-100
    X = np.random.default_rng(4).standard_normal((6, 3))
    X[3] = -X[1]
    X[5] = 0.0
    base = ntk_kernel(X, depth=depth, device="cpu")
    for s in (1e-100, 1e80, 1e150):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scaled = ntk_kernel(s * X, depth=depth, device="cpu") / s**2
        np.testing.assert_allclose(scaled, base, rtol=1e-12, atol=1e-12 * np.abs(base).max())
        mixed = ntk_kernel(s * X, X, depth=depth, device="cpu") / s
        np.testing.assert_allclose(mixed, base, rtol=1e-12, atol=1e-12 * np.abs(base).max())


@pytest.mark.parametrize("scale", [1e-20, 1e-25, 1e-50])  # 1e-50: zero once cast to float32
def test_float32_gram_of_tiny_data_is_computed_in_float64(scale):
    """Products of entries near 1e-20 are subnormal in float32: the Gram lost 8e-6 relative
    at 1e-20 and was all zeros at 1e-25, without a word."""
    from fstat.kernels import NTKRidge

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    X[3] = 0.0  # a zero row alone does not trigger the fallback
    y = X[:, 0]
    with pytest.warns(UserWarning, match="subnormal products"):
        K32 = ntk_kernel(X * scale, depth=2, dtype="float32", device="cpu")
    np.testing.assert_array_equal(K32, ntk_kernel(X * scale, depth=2, device="cpu"))
    with pytest.warns(UserWarning, match="subnormal products"):
        pred = NTKRidge(lam=1e-3 * scale**2, dtype="float32", device="cpu").fit(
            X * scale, y).predict(X * scale)
    expected = NTKRidge(lam=1e-3, device="cpu").fit(X, y).predict(X)  # homogeneous kernel
    np.testing.assert_allclose(pred, expected, rtol=1e-8, atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ntk_kernel(X * 1e-12, depth=2, dtype="float32", device="cpu")


@pytest.mark.parametrize("scale", [1e20, 1e100])
def test_float32_gram_of_data_beyond_the_float32_range_is_computed_in_float64(scale):
    """Squared norms of data near 1e20 overflow float32 (1e100 is not even a float32): the
    float32 Gram was NaN without a word, and the machines failed with 'not PSD'."""
    from fstat.kernels import NTKSVC

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3)) * scale
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(UserWarning, match="float32 NTK Gram is not finite"):
        K32 = ntk_kernel(X, depth=2, dtype="float32", device="cpu")
    np.testing.assert_array_equal(K32, ntk_kernel(X, depth=2, device="cpu"))
    with pytest.warns(UserWarning, match="float32 NTK Gram is not finite"):
        both = ntk_kernel(X, X[:4], kind="both", dtype="float32", device="cpu")
    assert all(np.all(np.isfinite(k)) for k in both)
    with pytest.warns(UserWarning, match="float32 NTK Gram is not finite"):
        svc32 = NTKSVC(dtype="float32", device="cpu").fit(X, y)
    svc64 = NTKSVC(device="cpu").fit(X, y)
    np.testing.assert_array_equal(svc32.dual_coef_, svc64.dual_coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ordinary data: no warning, float32 as asked
        ntk_kernel(X / scale, depth=2, dtype="float32", device="cpu")


def _mp_reference(x, y, depth, w, b):
    """The recursion of spec §2.2 for one pair in 60-digit mpmath (no overflow or underflow
    at any float64 magnitude); returns (nngp, ntk) as mpmath numbers."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        xs, ys = [mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in y]
        d = len(xs)
        w2, b2 = mpmath.mpf(w) ** 2, mpmath.mpf(b) ** 2
        kxx = mpmath.fsum(v * v for v in xs) / d
        kyy = mpmath.fsum(v * v for v in ys) / d
        kxy = mpmath.fsum(u * v for u, v in zip(xs, ys)) / d
        theta = mpmath.mpf(0)
        for _ in range(depth):
            sxx, syy, sxy = w2 * kxx + b2, w2 * kyy + b2, w2 * kxy + b2
            t = sxy + w2 * theta
            if sxx * syy == 0:
                kxy, ang = mpmath.mpf(0), mpmath.pi / 2  # a zero row: c = 0
            else:
                ang = mpmath.acos(max(-1, min(1, sxy / mpmath.sqrt(sxx * syy))))
                kxy = (mpmath.sqrt(max(sxx * syy - sxy * sxy, 0)) + (mpmath.pi - ang) * sxy) / (
                    2 * mpmath.pi)
            theta = t * (mpmath.pi - ang) / (2 * mpmath.pi)
            kxx, kyy = sxx / 2, syy / 2
        nngp = w2 * kxy + b2
        return nngp, (nngp + w2 * theta if depth else nngp)


@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("b", [0.0, 0.3])
def test_rows_of_any_magnitude_match_a_multiprecision_recursion(depth, b):
    """Rows whose squared norms leave the float64 range (entries beyond about 1e154, or all
    below about 1e-146) next to ordinary rows: their squares overflowed to inf (NaN entries
    and an inf diagonal where the true values are finite) or underflowed (entries 10x off at
    1e-200, 3e-5 relative off at 1e-160). Every entry whose true value is a normal float64
    now matches a 60-digit recursion to 1e-10 relative, in the cross, symmetric and diagonal
    routes; entries beyond the range are inf or below 1e-300."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((4, 3))
    X = np.vstack([base, 1e200 * base[:2], 1e-200 * base[2:], 3e155 * base[:1],
                   1e-160 * base[1:2], np.zeros((1, 3))])
    Y = np.vstack([rng.standard_normal((2, 3)), 1e-250 * base[:1], 1e250 * base[3:]])
    cross = ntk_kernel(X, Y, depth=depth, b_std=b, kind="both", device="cpu")
    sym = ntk_kernel(X, depth=depth, b_std=b, kind="both", device="cpu")
    diag = NTKKernel(depth=depth, b_std=b, device="cpu").diag(X)
    for got, (A, B) in ((cross, (X, Y)), (sym, (X, X))):
        for which in (0, 1):
            ref = np.array([[_mp_reference(x, y, depth, 1.0, b)[which] for y in B] for x in A],
                           dtype=object)
            for i in range(len(A)):
                for j in range(len(B)):
                    r = ref[i, j]
                    if 1e-300 < abs(r) < 1e300:
                        assert abs(got[which][i, j] - float(r)) <= 1e-10 * abs(float(r)), (i, j)
                    elif abs(r) >= 1e300:
                        assert got[which][i, j] == math.copysign(math.inf, r) or abs(
                            got[which][i, j] - float(r)) <= 1e-10 * abs(float(r)), (i, j)
                    else:
                        assert abs(got[which][i, j]) <= 1e-300, (i, j)
    np.testing.assert_array_equal(diag, np.diagonal(sym[1]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_range_test_never_skips_a_row_that_needs_scaling(dtype):
    """The O(n) test on squared norms must be sufficient for the exact O(n d) one: rows just
    beyond either threshold (one large entry, or all entries at the small end), for many d,
    never pass it while needing scaling (rounding once let d = 21 through by one ulp)."""
    from fstat.kernels._ntk import _needs_row_scaling, _squares_in_range

    info = torch.finfo(dtype)
    for d in range(1, 300):
        top = math.sqrt(info.max / (16.0 * d))
        low = math.sqrt(info.tiny / info.eps)
        for m in (np.nextafter(top, np.inf), np.nextafter(top, 0.0), top,
                  np.nextafter(low, 0.0), low, np.nextafter(low, np.inf)):
            for row in (np.r_[m, np.zeros(d - 1)], np.full(d, m)):
                X = torch.tensor(row[None, :], dtype=dtype)
                if not torch.isfinite(X).all():
                    continue
                k = X.square().sum(dim=1) / d
                assert not (_squares_in_range(k, d, 0.0) and _needs_row_scaling(X, 0.0)), (d, m)
