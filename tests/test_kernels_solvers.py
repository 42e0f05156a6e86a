"""Exact solvers of the NTK kernel machines against independent references."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC, SVR, LinearSVC

from fstat.datasets import load_digits_pair, make_ntk_teacher
from fstat.kernels import (
    NTKSVC,
    NTKSVR,
    NTKKernelMachine,
    NTKLogisticRegression,
    NTKRidge,
    ntk_kernel,
)
from tests._reference_kernels import standardised_breast_cancer


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_pair()
    idx = np.random.default_rng(0).permutation(len(y))[:150]
    return X[idx], y[idx]


@pytest.fixture(scope="module")
def cancer():
    return standardised_breast_cancer(150)


def _primal(K, beta, b, y, w, lam, loss, eps=0.0):
    g = K @ beta + b
    z = y * g
    value = {
        "hinge": np.maximum(0, 1 - z),
        "squared_hinge": np.maximum(0, 1 - z) ** 2,
        "epsilon_insensitive": np.maximum(0, np.abs(g - y) - eps),
        "squared": (g - y) ** 2,
        "logistic": np.logaddexp(0, -z),
    }[loss]
    return float(w @ value + 0.5 * lam * beta @ K @ beta)


def _dual_reference(K, y, w, lam, loss, eps=0.0):
    """L-BFGS-B on the dual written out directly in numpy (spec §2.5(b))."""
    n = len(y)
    C = w / lam
    if loss == "epsilon_insensitive":
        H = np.block([[K, -K], [-K, K]])
        q = np.concatenate([eps - y, eps + y])
        bounds = [(0, c) for c in np.concatenate([C, C])]
    else:
        H = (y[:, None] * K * y[None, :]).copy()
        q = -np.ones(n)
        if loss == "squared_hinge":
            H += np.diag(lam / (2 * w))
            bounds = [(0, None)] * n
        else:
            bounds = [(0, c) for c in C]
    res = minimize(lambda z: (0.5 * z @ H @ z + q @ z, H @ z + q), np.zeros(len(q)), jac=True,
                   method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 50})
    return -lam * res.fun, res.x


@pytest.mark.parametrize("lam", [1e-3, 1e-1, 1.0, 10.0, 1e3])
def test_ridge_equals_kernel_ridge(digits, lam):
    X, y = digits
    K = ntk_kernel(X, device="cpu")
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    Y2 = np.column_stack([y, X[:, 10]])
    for target, weight in ((y.astype(float), None), (y.astype(float), w), (Y2, w)):
        ours = NTKRidge(lam, device="cpu").fit(X, target, sample_weight=weight).dual_coef_
        ref = KernelRidge(alpha=lam / 2, kernel="precomputed").fit(
            K, target, sample_weight=weight).dual_coef_
        assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()


def test_ridge_intercept_and_interpolation(digits):
    X, y = digits
    K = ntk_kernel(X, device="cpu")
    lam = 0.3
    w = np.linspace(0.5, 1.5, len(y))
    m = NTKRidge(lam, fit_intercept=True, device="cpu").fit(X, y, sample_weight=w)
    # bordered system: [K + lam/2 W^-1, 1; 1', 0] [beta; b] = [y; 0]
    n = len(y)
    A = np.zeros((n + 1, n + 1))
    A[:n, :n] = K + np.diag(lam / (2 * w))
    A[:n, n] = 1
    A[n, :n] = 1
    sol = np.linalg.solve(A, np.append(y, 0.0))
    np.testing.assert_allclose(m.dual_coef_, sol[:n], atol=1e-9 * np.abs(sol).max())
    assert abs(m.intercept_ - sol[n]) < 1e-9
    interp = NTKRidge(0.0, device="cpu").fit(X, y)
    Xu, iu = np.unique(X, axis=0, return_index=True)
    assert np.abs(interp.predict(X) - y).max() <= 1e-8 or len(iu) < len(y)
    Xu, yu = X[np.sort(iu)], y[np.sort(iu)]
    interp = NTKRidge(0.0, device="cpu").fit(Xu, yu)
    assert np.abs(interp.predict(Xu) - yu).max() <= 1e-8


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "epsilon_insensitive"])
@pytest.mark.parametrize("dataset", ["digits", "cancer"])
def test_box_duals_against_lbfgsb(loss, dataset, request):
    X, y = request.getfixturevalue(dataset)
    y = y.astype(float)
    if loss == "epsilon_insensitive":
        y = y + 0.3 * X[:, 5]
    K = ntk_kernel(X, device="cpu")
    lam = 0.5
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    ref_obj, _ = _dual_reference(K, y, w, lam, loss, eps=0.1)
    objs = {}
    for solver in ("newton", "cd"):
        m = NTKKernelMachine(loss, lam, epsilon=0.1, solver=solver, device="cpu", tol=1e-9,
                             random_state=0).fit(X, y, sample_weight=w)
        beta = m.dual_coef_  # classifiers: classes_ = [-1, 1], so the +1 coding equals y
        P = _primal(K, beta, 0.0, y, w, lam, loss, 0.1)
        assert P == pytest.approx(m.objective_, rel=1e-12)
        assert m.duality_gap_ <= 1e-6
        assert m.converged_
        objs[solver] = P
        # KKT: lam beta_i = -w_i l'_i for a subgradient element
        g = K @ beta
        if loss == "hinge":
            a = y * beta
            assert np.all(a >= -1e-12) and np.all(a <= w / lam + 1e-12)
            assert np.all(y[a <= 1e-12] * g[a <= 1e-12] >= 1 - 1e-6)
            upper = a >= w / lam - 1e-12
            assert np.all(y[upper] * g[upper] <= 1 + 1e-6)
            inner = (a > 1e-9) & ~upper
            np.testing.assert_allclose(y[inner] * g[inner], 1.0, atol=1e-6)
        elif loss == "squared_hinge":
            np.testing.assert_allclose(lam * beta, 2 * w * y * np.maximum(0, 1 - y * g),
                                       atol=1e-6)
        else:
            r = g - y
            assert np.all(np.abs(beta) <= w / lam + 1e-12)
            assert np.all(np.abs(beta[np.abs(r) < 0.1 - 1e-6]) <= 1e-9)
            out = np.abs(r) > 0.1 + 1e-6
            np.testing.assert_allclose(beta[out], -np.sign(r[out]) * w[out] / lam, rtol=1e-9)
    assert objs["newton"] == pytest.approx(ref_obj, rel=1e-7)
    assert objs["cd"] == pytest.approx(ref_obj, rel=1e-7)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_no_intercept_equals_linear_svm_on_cholesky_features(digits, loss):
    X, y = digits
    K = ntk_kernel(X, device="cpu")
    lam = 1.0
    L = np.linalg.cholesky(K + 1e-12 * np.trace(K) / len(K) * np.eye(len(K)))
    svm = LinearSVC(C=1 / lam, loss=loss, fit_intercept=False, tol=1e-10, max_iter=200000,
                    dual=True).fit(L, y)
    wv = svm.coef_[0]
    z = y * (L @ wv)
    lin = {"hinge": np.maximum(0, 1 - z), "squared_hinge": np.maximum(0, 1 - z) ** 2}[loss]
    P_lin = lin.sum() + 0.5 * lam * wv @ wv
    m = NTKSVC(lam, loss=loss, device="cpu", tol=1e-9).fit(X, y)
    assert m.objective_ == pytest.approx(P_lin, rel=1e-4)
    assert m.objective_ <= P_lin * (1 + 1e-9)


def test_ordering_with_svc_intercept(cancer):
    X, y = cancer
    K = ntk_kernel(X, device="cpu")
    lam = 0.2
    ours = NTKSVC(lam, device="cpu", tol=1e-9).fit(X, y)
    svc = SVC(C=1 / lam, kernel="precomputed", tol=1e-8).fit(K, y)
    beta = np.zeros(len(y))
    beta[svc.support_] = svc.dual_coef_[0]
    P_svc_b = _primal(K, beta, svc.intercept_[0], y, np.ones(len(y)), lam, "hinge")
    P_svc_0 = _primal(K, beta, 0.0, y, np.ones(len(y)), lam, "hinge")
    assert P_svc_b <= ours.objective_ + 1e-9 <= P_svc_0 + 2e-9
    assert not np.allclose(ours.dual_coef_, beta, atol=1e-6)
    # libsvm delegation and the intercept search reproduce SVC
    lib = NTKSVC(lam, fit_intercept=True, device="cpu", tol=1e-8).fit(X, y)
    np.testing.assert_allclose(lib.decision_function(X), svc.decision_function(K),
                               atol=1e-6 * np.abs(svc.decision_function(K)).max())
    search = NTKSVC(lam, fit_intercept=True, solver="newton", device="cpu", tol=1e-9).fit(X, y)
    assert search.objective_ == pytest.approx(P_svc_b, rel=1e-6)
    assert abs(search.dual_coef_.sum()) <= 1e-6 * np.abs(search.dual_coef_).sum()


def test_svr_intercept_matches_sklearn(cancer):
    X, _ = cancer
    y = X[:, 0] + 0.5 * np.sin(X[:, 1])
    K = ntk_kernel(X, device="cpu")
    lam, eps = 0.5, 0.2
    svr = SVR(kernel="precomputed", C=1 / lam, epsilon=eps, tol=1e-8).fit(K, y)
    beta = np.zeros(len(y))
    beta[svr.support_] = svr.dual_coef_[0]
    P_ref = _primal(K, beta, svr.intercept_[0], y, np.ones(len(y)), lam, "epsilon_insensitive",
                    eps)
    for solver in ("libsvm", "newton"):
        m = NTKSVR(lam, epsilon=eps, fit_intercept=True, solver=solver, device="cpu",
                   tol=1e-9).fit(X, y)
        assert m.objective_ == pytest.approx(P_ref, rel=1e-6)
        np.testing.assert_allclose(m.predict(X), svr.predict(K), atol=1e-5)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_logistic_equals_cholesky_feature_logistic_regression(digits, fit_intercept):
    X, y = digits
    K = ntk_kernel(X, device="cpu")
    lam = 0.5
    L = np.linalg.cholesky(K + 1e-12 * np.trace(K) / len(K) * np.eye(len(K)))
    ref = LogisticRegression(C=1 / lam, fit_intercept=fit_intercept, tol=1e-12,
                             max_iter=10000).fit(L, y)
    m = NTKLogisticRegression(lam, fit_intercept=fit_intercept, device="cpu",
                              tol=1e-10).fit(X, y)
    np.testing.assert_allclose(m.decision_function(X), ref.decision_function(L), atol=1e-6)
    assert m.converged_
    # optimum: beta = -w l'/lam
    g = m.train_decision_
    np.testing.assert_allclose(m.dual_coef_, y / (1 + np.exp(y * g)) / lam, atol=1e-9)


def test_closed_form_large_lam(digits):
    X, y = digits
    K = ntk_kernel(X, device="cpu")
    lam = 1.01 * np.abs(K @ y).max()
    for solver in ("newton", "cd"):
        m = NTKSVC(lam, solver=solver, device="cpu").fit(X, y)
        np.testing.assert_allclose(m.dual_coef_, y / lam, rtol=1e-12, atol=0)


def _numpy_subgradient(K, y, w, lam, loss, lr, steps, eps=0.1, intercept=False, mean=False):
    n = len(y)
    beta, b = np.zeros(n), 0.0
    deriv = {
        "hinge": lambda z: -y * (y * z < 1),
        "squared_hinge": lambda z: -2 * y * np.maximum(0, 1 - y * z),
        "epsilon_insensitive": lambda z: np.sign(z - y) * (np.abs(z - y) > eps),
        "squared": lambda z: 2 * (z - y),
        "logistic": lambda z: -y / (1 + np.exp(y * z)),
    }[loss]
    for _ in range(steps):
        d = w * deriv(K @ beta + b)
        if mean:  # (1/n) sum l + (lam_m / 2)||g||^2 with step eta: function-space GD
            beta = (1 - lr * lam) * beta - lr * d / n
            if intercept:
                b -= lr * d.sum() / n
        else:
            beta = (1 - lr * lam) * beta - lr * d
            if intercept:
                b -= lr * d.sum()
    return beta, b


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "epsilon_insensitive", "squared",
                                  "logistic"])
def test_subgradient_equals_numpy_loop(digits, loss):
    X, y = digits
    X, y = X[:80], y[:80].astype(float)
    K = ntk_kernel(X, device="cpu")
    w = np.linspace(0.5, 1.5, len(y))
    lam, lr, steps = 0.3, 0.01, 60
    for intercept in (False, True):
        m = NTKKernelMachine(loss, lam, solver="subgradient", lr=lr, max_iter=steps,
                             fit_intercept=intercept, device="cpu").fit(X, y, sample_weight=w)
        beta, b = _numpy_subgradient(K, y, w, lam, loss, lr, steps, intercept=intercept)
        np.testing.assert_allclose(m.dual_coef_, beta, atol=1e-12 * max(1, np.abs(beta).max()))
        assert abs(m.intercept_ - b) <= 1e-12 * max(1, abs(b))
    # mean convention (lam_m, eta) == sum convention with lam = n lam_m, lr = eta / n
    n, lam_m, eta = len(y), 0.01, 0.5
    beta_m, _ = _numpy_subgradient(K, y, np.ones(n), lam_m * 1.0, loss, eta, steps, mean=True)
    # mean loop above uses (1 - eta lam_m); the sum form uses (1 - lr lam) = (1 - eta lam_m)
    m = NTKKernelMachine(loss, n * lam_m, solver="subgradient", lr=eta / n, max_iter=steps,
                         device="cpu").fit(X, y)
    np.testing.assert_allclose(m.dual_coef_, beta_m, atol=1e-12 * max(1, np.abs(beta_m).max()))


@pytest.mark.parametrize("loss", ["hinge", "epsilon_insensitive"])
def test_subgradient_sparse_updates_match_loop_over_long_runs(digits, loss):
    """Piecewise-constant derivatives: K beta is updated from the rows that cross a kink
    (exact refresh every 50 steps); 400 steps still equal the dense numpy loop."""
    X, y = digits
    X, y = X[:100], y[:100].astype(float)
    K = ntk_kernel(X, device="cpu")
    w = np.linspace(0.5, 1.5, len(y))
    lam, lr, steps = 0.05, 0.02, 400
    m = NTKKernelMachine(loss, lam, solver="subgradient", lr=lr, max_iter=steps,
                         record_steps=[steps], device="cpu").fit(X, y, sample_weight=w)
    beta, _ = _numpy_subgradient(K, y, w, lam, loss, lr, steps)
    np.testing.assert_allclose(m.dual_coef_, beta, atol=1e-11 * max(1, np.abs(beta).max()))
    P = _primal(K, beta, 0.0, y, w, lam, loss, 0.1)
    assert m.trajectory_["objective"][-1] == pytest.approx(P, rel=1e-11)

@pytest.mark.parametrize("loss", ["squared", "logistic", "squared_hinge"])
def test_subgradient_converges_for_smooth_losses(digits, loss):
    X, y = digits
    lam = 1.0
    exact = NTKKernelMachine(loss, lam, device="cpu", tol=1e-10).fit(X, y)
    sub = NTKKernelMachine(loss, lam, solver="subgradient", max_iter=4000, device="cpu").fit(X, y)
    assert sub.objective_ == pytest.approx(exact.objective_, rel=1e-6)


@pytest.mark.parametrize("loss", ["squared", "logistic", "squared_hinge"])
def test_default_step_is_stable_with_an_intercept(loss):
    # the intercept step b <- b - lr sum_i w_i l'_i adds the constant kernel 1 1^T to the
    # dynamics of g = K beta + b; a step from mu_max(K) alone diverged (|beta| ~ 1e142 after
    # 300 squared-loss steps on 30 standard normal rows) when sum(w) outweighs mu_max(K), as
    # here for rows of small norm
    rng = np.random.default_rng(0)
    X = 0.2 * rng.standard_normal((30, 4))
    y = np.where(X[:, 0] > 0, 1.0, -1.0) if loss != "squared" else X[:, 1] + 3.0
    w = rng.uniform(0.2, 2.0, 30)
    exact = NTKKernelMachine(loss, 0.5, fit_intercept=True, device="cpu", tol=1e-10).fit(
        X, y, sample_weight=w)
    sub = NTKKernelMachine(loss, 0.5, fit_intercept=True, solver="subgradient",
                           max_iter=6000, device="cpu").fit(X, y, sample_weight=w)
    assert np.all(np.isfinite(sub.dual_coef_))
    assert sub.objective_ == pytest.approx(exact.objective_, rel=1e-6)
    # the step is the specification's rule on the dynamics' kernel W^1/2 (K + 1 1^T) W^1/2
    K = ntk_kernel(X, device="cpu") + 1.0
    mu = np.linalg.eigvalsh(np.sqrt(w)[:, None] * K * np.sqrt(w)[None, :])[-1]
    curvature = {"squared": 2.0, "logistic": 0.25, "squared_hinge": 2.0}[loss]
    assert sub.lr_ == pytest.approx(1.0 / (1.05 * curvature * mu + 0.5), rel=1e-9)


def test_auto_intercept_search_leaves_coordinate_descent_once_it_needed_newton(monkeypatch):
    # squared hinge with an intercept at a small lam: coordinate descent stalls, and every
    # inner solve of the intercept search ran up to 1000 CD epochs before Newton finished it
    # (14 s at n = 1000); once one solve needed Newton, the warm-started rest use it directly
    from fstat.kernels import _solvers

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = np.where(np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.standard_normal(200) > 0, 1, -1)
    calls = []
    box_cd = _solvers._box_cd

    def spy(*args, **kwargs):
        calls.append(1)
        return box_cd(*args, **kwargs)

    monkeypatch.setattr(_solvers, "_box_cd", spy)
    auto = NTKSVC(1e-3, loss="squared_hinge", fit_intercept=True, device="cpu").fit(X, y)
    assert auto.solver_ == "cd+newton" and auto.converged_ and len(calls) == 1
    newton = NTKSVC(1e-3, loss="squared_hinge", fit_intercept=True, solver="newton",
                    device="cpu").fit(X, y)
    assert auto.objective_ == pytest.approx(newton.objective_, rel=1e-10)
    assert auto.intercept_ == pytest.approx(newton.intercept_, abs=1e-8)
    # one-vs-rest: each class's search starts with coordinate descent again (no state leaks)
    classes = np.digitize(X[:, 0], [-0.5, 0.5])
    calls.clear()
    auto = NTKSVC(1e-3, loss="squared_hinge", fit_intercept=True, device="cpu").fit(X, classes)
    assert len(calls) == 3
    newton = NTKSVC(1e-3, loss="squared_hinge", fit_intercept=True, solver="newton",
                    device="cpu").fit(X, classes)
    np.testing.assert_allclose(auto.objective_, newton.objective_, rtol=1e-10)


@pytest.mark.slow
def test_subgradient_hinge_approaches_optimum(digits):
    X, y = digits
    lam = 1.0
    exact = NTKSVC(lam, device="cpu").fit(X, y)
    sub = NTKSVC(lam, solver="subgradient", max_iter=20000, device="cpu").fit(X, y)
    assert sub.objective_ <= 1.05 * exact.objective_
    assert sub.lr_ > 0


def test_hard_margin_and_edge_cases():
    X, y = make_ntk_teacher(60, 4, random_state=0)
    # separable by the kernel: hard margin converges and has all margins >= 1
    m = NTKSVC(0.0, device="cpu").fit(X, y)
    assert m.converged_ and np.all(y * m.train_decision_ >= 1 - 1e-6)
    # an impossible problem: the same point with both labels
    Xb = np.vstack([X[:5], X[:1]])
    yb = np.append(y[:5], -y[0])
    with pytest.warns(ConvergenceWarning, match="not separable"):
        m = NTKSVC(0.0, device="cpu").fit(Xb, yb)
    assert not m.converged_
    # zero rows and duplicates: finite, zero rows get zero kernel rows
    Xz = np.vstack([X, np.zeros((2, 4)), X[:3]])
    yz = np.concatenate([y, [1, -1], y[:3]])
    m = NTKSVC(1.0, device="cpu").fit(Xz, yz)
    assert np.all(np.isfinite(m.dual_coef_))
    assert np.all(m.decision_function(np.zeros((1, 4))) == 0)


def test_lam_zero_invalid_for_smooth_losses():
    X, y = make_ntk_teacher(30, 3, random_state=0)
    for loss in ("squared_hinge", "logistic", "epsilon_insensitive"):
        with pytest.raises(ValueError, match="lam must be > 0"):
            NTKKernelMachine(loss, 0.0, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="compatible"):
        NTKKernelMachine("hinge", solver="cholesky", device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="fit_intercept=True"):
        NTKSVC(solver="libsvm", device="cpu").fit(X, y)


def test_torch_solver_no_host_sync_types():
    # the solvers accept tensors directly (used by the estimators on any device)
    from fstat.kernels._solvers import solve_box

    X, y = make_ntk_teacher(40, 3, random_state=0)
    K = torch.as_tensor(ntk_kernel(X, device="cpu"))
    sol = solve_box(K, torch.as_tensor(y, dtype=torch.float64), torch.ones(40, dtype=torch.float64),
                    1.0, "hinge", solver="newton")
    assert sol.converged and sol.gap <= 1e-6


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "epsilon_insensitive"])
def test_cd_shrinking_paths_agree(digits, loss):
    """Shrinking CD: cached-Hessian sweep, blocked sweep (tiny blocks) and projected Newton
    reach the same dual optimum with the full projected gradient below tol."""
    from fstat.kernels._solvers import _box_cd, _box_newton, build_box

    X, y = digits
    y = y.astype(float) + (0.3 * X[:, 5] if loss == "epsilon_insensitive" else 0.0)
    K = torch.as_tensor(ntk_kernel(X, device="cpu"))
    yt = torch.as_tensor(y)
    w = torch.as_tensor(np.random.default_rng(3).uniform(0.5, 2.0, len(y)))
    prob = build_box(K, yt, w, 0.2, loss, 0.1, 0.0)
    z0 = torch.zeros_like(prob.q)
    pairs = len(y) if loss == "epsilon_insensitive" else None
    zn, _, conv = _box_newton(prob, z0.clone(), 1e-10, 500, pairs=pairs)
    assert conv
    f_ref = prob.f(zn, prob.matvec(zn))
    for kwargs in ({}, {"cache_limit": 0, "block": 16}):
        z, _, conv = _box_cd(prob, z0.clone(), 1e-9, 5000, torch.Generator().manual_seed(1),
                             **kwargs)
        assert conv
        G = prob.matvec(z) + prob.q
        assert float(prob.projected_gradient(z, G).abs().max()) <= 1e-9
        assert prob.f(z, prob.matvec(z)) == pytest.approx(f_ref, rel=1e-10, abs=1e-12)
