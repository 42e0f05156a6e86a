"""FCCovNet: determinism, rank invariance, whitening, losses, gradients, API, bad input."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from _reference_sdr import naive_distance_stat
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline

from fstat._torch import make_generator
from fstat.datasets import make_frechet_sdr
from fstat.sdr import FCCovNet, ball_kernel, fccov
from fstat.sdr._fccov import (
    ClassMeansLoss,
    CumsumLoss,
    DistanceLoss,
    KernelLoss,
    batch_fccov,
)
from fstat.sdr._metrics import check_response
from fstat.sdr._net import _build_mlp
from fstat.sdr._ranks import ball_ranks, class_codes

FAST = dict(max_epochs=40, min_epochs=0, hidden_layer_sizes=(16,), device="cpu",
            random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y, _ = make_frechet_sdr("M1", n_samples=120, n_features=4, random_state=0)
    return X, y


def _quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_determinism_and_clone(data):
    X, y = data
    a = _quiet(FCCovNet(n_components=2, **FAST), X, y)
    b = _quiet(FCCovNet(n_components=2, **FAST), X, y)
    c = _quiet(clone(a), X, y)
    assert np.abs(a.transform(X) - b.transform(X)).max() <= 1e-12
    assert np.array_equal(a.transform(X), c.transform(X))


def test_rank_invariance_of_the_whole_fit(data):
    X, y = data
    D = np.abs(y[:, None] - y[None])
    fits = [_quiet(FCCovNet(metric="precomputed", **FAST), X, T).transform(X)
            for T in (D, D**2, np.sqrt(D))]
    assert np.array_equal(fits[0], fits[1]) and np.array_equal(fits[0], fits[2])
    Y, _, _ = make_frechet_sdr("M4", n_samples=120, n_features=4, random_state=1)[1:2] + (0, 0)
    geo = _quiet(FCCovNet(metric="sphere", **FAST), X, Y).transform(X)
    cho = _quiet(FCCovNet(metric="chordal", **FAST), X, Y).transform(X)
    assert np.array_equal(geo, cho)


def test_whitening_and_fccov_attributes(data):
    X, y = data
    est = _quiet(FCCovNet(n_components=2, **FAST), X, y)
    Z = est.transform(X)
    assert np.abs(Z.mean(0)).max() <= 1e-10
    assert np.abs(np.cov(Z.T, bias=True) - np.eye(2)).max() <= 1e-10
    assert est.fccov_ == pytest.approx(fccov(Z, y, device="cpu"), rel=1e-10)
    assert est.fccov_ == pytest.approx(est.fccov_spectrum_.sum(), rel=1e-12)
    assert est.fccov_spectrum_[0] >= est.fccov_spectrum_[1]
    assert est.solver_ == "kernel" and est.device_ == "cpu"
    assert est.n_iter_ >= 1 and len(est.loss_curve_) == est.n_iter_
    assert 0 <= est.score(X, y) <= 1
    assert list(est.get_feature_names_out()) == ["fccovnet0", "fccovnet1"]


def test_pickle_round_trip(data):
    X, y = data
    est = _quiet(FCCovNet(**FAST), X, y)
    blob = pickle.dumps(est)
    assert b"cuda" not in blob
    again = pickle.loads(blob)
    assert np.array_equal(again.transform(X), est.transform(X))


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-6)])
def test_initial_loss_equals_public_functions(data, dtype, tol):
    X, y = data
    est = FCCovNet(n_components=2, max_epochs=1, early_stopping=False, hidden_layer_sizes=(8,),
                   dtype=dtype, device="cpu", random_state=3, lam=0.3).fit(X, y)
    net = _build_mlp(4, (8,), 2, "relu", make_generator(np.random.RandomState(3)),
                     torch.float64, "cpu")
    with torch.no_grad():
        U = net(torch.tensor((X - est.x_mean_) / est.x_scale_)).numpy()
    Uc = U - U.mean(0)
    penalty = np.sum((Uc.T @ Uc / len(U) - np.eye(2)) ** 2)
    expected = -fccov(U, y, device="cpu") + 0.3 * penalty
    assert est.loss_curve_[0] == pytest.approx(expected, rel=tol)


def test_gradients_match_closed_forms():
    rng = np.random.default_rng(5)
    n, d = 30, 2
    y = rng.standard_normal(n)
    K = torch.tensor(ball_kernel(y, device="cpu"))
    U = torch.tensor(rng.standard_normal((n, d)), requires_grad=True)
    KernelLoss(K)(U).backward()
    Uc = (U - U.mean(0)).detach()
    H = torch.eye(n, dtype=torch.float64) - 1.0 / n
    np.testing.assert_allclose(U.grad.numpy(), (2 / n**2 * H @ K @ Uc).numpy(), atol=1e-8)
    # (the penalty's gradient, with the whole training objective: see
    # test_training_objective_gradient_matches_spec)
    # cumsum loss has the same value and gradient
    U2 = U.detach().clone().requires_grad_(True)
    CumsumLoss(ball_ranks(check_response(y), "cpu"))(U2).backward()
    np.testing.assert_allclose(U2.grad.numpy(), (2 / n**2 * H @ K @ Uc).numpy(), atol=1e-10)


def test_minibatch_losses():
    rng = np.random.default_rng(6)
    n = 40
    y = np.round(rng.standard_normal(n), 1)
    U = torch.tensor(rng.standard_normal((n, 2)))
    K = torch.tensor(ball_kernel(y, device="cpu"))
    idx = torch.tensor(np.sort(rng.choice(n, 15, replace=False)))
    Ub = U[idx] - U[idx].mean(0)
    expected = float((Ub * (K[idx][:, idx] @ Ub)).sum()) / 15**2
    assert float(KernelLoss(K)(U[idx], idx)) == pytest.approx(expected, rel=1e-12)
    response = check_response(y)
    value = float(batch_fccov(response, idx.numpy(), U[idx], "cpu"))
    assert value == pytest.approx(fccov(U[idx].numpy(), y[idx.numpy()], device="cpu"),
                                  rel=1e-12)
    lab = (y > 0).astype(int)
    resp = check_response(lab, "discrete")
    value = float(ClassMeansLoss(*class_codes(resp, "cpu"))(U))
    assert value == pytest.approx(fccov(U.numpy(), lab, metric="discrete", device="cpu"),
                                  rel=1e-12)


def test_minibatch_fits_run(data):
    X, y = data
    for ranks in ("batch", "global"):
        est = _quiet(FCCovNet(batch_size=32, minibatch_ranks=ranks, **FAST), X, y)
        assert est.solver_ == f"minibatch-{ranks}"
        assert np.isfinite(est.transform(X)).all()
    est = _quiet(FCCovNet(solver="cumsum", **FAST), X, y)
    assert est.solver_ == "cumsum"
    lab = (y > np.median(y)).astype(int)
    est = _quiet(FCCovNet(metric="discrete", **FAST), X, lab)
    assert est.solver_ == "class-means"


def test_distance_objective(data):
    X, y = data
    rng = np.random.default_rng(7)
    U = rng.standard_normal((len(y), 2))
    D = np.abs(y[:, None] - y[None])
    dbar = D.sum() / (len(y) * (len(y) - 1))
    value = float(KernelLoss(torch.tensor(-D / dbar))(torch.tensor(U)))
    assert value == pytest.approx(naive_distance_stat(U, D), rel=1e-12)
    # spec 3.1 names the distance objective's loss; d_bar defaults to the off-diagonal mean
    for loss in (DistanceLoss(torch.tensor(D)), DistanceLoss(torch.tensor(D), dbar)):
        assert float(loss(torch.tensor(U))) == pytest.approx(value, rel=1e-14)
    params = {**FAST, "early_stopping": False, "metric": "precomputed", "objective": "distance"}
    f1 = FCCovNet(**params).fit(X, D).transform(X)
    f2 = FCCovNet(**params).fit(X, D**2).transform(X)
    assert np.abs(f1 - f2).max() > 1e-6


def test_pandas_and_set_output(data):
    X, y = data
    df = pd.DataFrame(X, columns=list("abcd"), index=np.arange(100, 220))
    est = _quiet(FCCovNet(**FAST), df, pd.Series(y)).set_output(transform="pandas")
    out = est.transform(df)
    assert list(out.columns) == ["fccovnet0"] and out.index[0] == 100
    assert list(est.feature_names_in_) == list("abcd")


def test_pipeline_grid_search(data):
    X, y = data
    pipe = Pipeline([("sdr", FCCovNet(**{**FAST, "max_epochs": 10})),
                     ("knn", KNeighborsRegressor())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"sdr__n_components": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["sdr__n_components"] in (1, 2)
    D = np.abs(y[:, None] - y[None])
    pipe.set_params(sdr__metric="precomputed")
    with pytest.raises(ValueError, match="cross-validation splits rows only"):
        cross_val_score(pipe, X, D, cv=2, error_score="raise")


def test_early_stopping_records(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = FCCovNet(max_epochs=60, min_epochs=0, eval_every=5, n_iter_no_change=3,
                       hidden_layer_sizes=(16,), device="cpu", random_state=0).fit(X, y)
    assert est.validation_scores_ is not None and len(est.validation_scores_) >= 2
    assert est.best_validation_score_ == pytest.approx(max(est.validation_scores_))
    with pytest.warns(UserWarning, match="validation split"):
        _quiet(FCCovNet(validation_fraction=0.01, **FAST), X[:30], y[:30])


def test_stall_warning(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="initial plateau"):
        FCCovNet(max_epochs=20, min_epochs=0, learning_rate=1e-30, eval_every=5,
                 n_iter_no_change=2, hidden_layer_sizes=(4,), device="cpu",
                 random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"lam": 0.0}, "lam"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"batch_size": 2}, "batch_size"),
        ({"objective": "mdd"}, "objective"),
        ({"solver": "magic"}, "solver"),
        ({"metric": "manhattan"}, "metric"),
        ({"minibatch_ranks": "local"}, "minibatch_ranks"),
        ({"activation": "swish"}, "activation"),
    ],
)
def test_invalid_parameters(data, params, match):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = data
    with pytest.raises(InvalidParameterError, match=match):
        FCCovNet(**{**FAST, **params}).fit(X, y)


def test_bad_input(data):
    X, y = data
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        FCCovNet(**{**FAST, "hidden_layer_sizes": (8, 0)}).fit(X, y)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        FCCovNet(**FAST).fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        FCCovNet(**FAST).fit(X, y[:50])
    with pytest.raises(ValueError, match="at least 4 samples"):
        FCCovNet(**FAST).fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="n_centers"):  # spec 4: n_centers > n (training rows)
        FCCovNet(**{**FAST, "n_centers": 100}).fit(X, y)  # 96 training rows
    with pytest.warns(UserWarning, match="n_centers applies to the full-batch"):
        _quiet(FCCovNet(**{**FAST, "n_centers": 10, "batch_size": 32, "max_epochs": 2}), X, y)
    # n_centers > n raises with minibatches and the distance objective too (it only warned)
    for extra in ({"batch_size": 32, "max_epochs": 2}, {"objective": "distance"}):
        with pytest.raises(ValueError, match="n_centers"):
            FCCovNet(**{**FAST, "n_centers": 100, **extra}).fit(X, y)
    with pytest.raises(ValueError, match="n_components"):
        FCCovNet(**{**FAST, "n_components": 4, "early_stopping": False}).fit(X[:5], y[:5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        FCCovNet(**FAST).fit(bad, y)
    yb = y.copy()
    yb[3] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        FCCovNet(**FAST).fit(X, yb)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            FCCovNet(**{**FAST, "device": "cuda"}).fit(X, y)
    est = _quiet(FCCovNet(**FAST), X, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.transform(bad)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :3])


def test_size_guards():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20001, 2))
    y = rng.standard_normal(20001)
    with pytest.raises(ValueError, match="set batch_size"):
        FCCovNet(early_stopping=False, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="use minibatch_ranks='batch'"):
        FCCovNet(early_stopping=False, batch_size=512, minibatch_ranks="global",
                 device="cpu").fit(X, y)


def test_verbose_two_prints_validation_checks(data, capsys):
    X, y = data
    _quiet(FCCovNet(**{**FAST, "max_epochs": 20, "eval_every": 10, "verbose": 2}), X, y)
    out = capsys.readouterr().out
    assert "validation check 0" in out and "validation check 2" in out


@pytest.mark.filterwarnings("ignore:training stalled")
def test_non_finite_loss(data):
    X, y = data
    with pytest.raises(FloatingPointError, match="reduce learning_rate"):
        FCCovNet(**{**FAST, "early_stopping": False, "learning_rate": 1e15}).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="Non-finite loss"):
        est = FCCovNet(**{**FAST, "learning_rate": 1e15, "eval_every": 1}).fit(X, y)
    assert np.isfinite(est.transform(X)).all()


def tiny_architecture(n_features_in, n_components, generator):
    from fstat._nn import reset_parameters

    net = torch.nn.Sequential(torch.nn.Linear(n_features_in, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, n_components))
    return reset_parameters(net.double(), generator)


def test_custom_architecture(data):
    X, y = data
    a = _quiet(FCCovNet(architecture=tiny_architecture, **FAST), X, y)
    b = _quiet(FCCovNet(architecture=tiny_architecture, **FAST), X, y)
    assert np.array_equal(a.transform(X), b.transform(X))
    again = pickle.loads(pickle.dumps(a))
    assert np.array_equal(again.transform(X), a.transform(X))
    assert isinstance(a.net_[1], torch.nn.Tanh)


def test_transform_falls_back_to_cpu(data):
    X, y = data
    est = _quiet(FCCovNet(**FAST), X, y)
    Z = est.transform(X)
    est.device_ = "cuda:7"  # as if fitted on a GPU that this machine lacks
    if torch.cuda.device_count() <= 7:
        with pytest.warns(UserWarning, match="not available here"):
            assert np.array_equal(est.transform(X), Z)


# --------------------------------------------------------------------------------------
# The library's own training objective (the closure FCCovNet.fit hands to the epoch loop)
# checked against spec 2.8: value and gradient w.r.t. the network output U.


class _FixedOutput(torch.nn.Module):
    """A 'network' whose output is the parameter U itself, so dL/dtheta = dL/dU.

    Every backward pass through U is recorded in ``grads``.
    """

    def __init__(self, U):
        super().__init__()
        self.U = torch.nn.Parameter(torch.tensor(U, dtype=torch.float64))
        self.grads = []

    def forward(self, x):
        out = self.U * 1.0
        if out.requires_grad:
            out.register_hook(lambda g: self.grads.append(g.detach().clone()))
        return out


class _FixedOutputFactory:
    """Module-level ``architecture`` callable returning a fixed-output module."""

    def __init__(self, U):
        self.U = U

    def __call__(self, n_features_in, n_components, generator):
        return _FixedOutput(self.U)


def _brute_kernel(D):
    """K_ij = (1/n^2) sum_{k,l} delta_ikl delta_jkl, delta_ikl = 1{d_ik <= d_lk} (spec 2.3)."""
    n = len(D)
    delta = (D[:, :, None] <= D.T[None, :, :]).astype(float)  # [i, k, l]
    return np.einsum("ikl,jkl->ij", delta, delta) / n**2


def _brute_objective(U, D, lam, objective):
    """-FCCov_n(U) + lam |Sigma_U - I|_F^2 from the m_kl definition (or -Dist_n, spec 2.9)."""
    n, d = U.shape
    Uc = U - U.mean(0)
    if objective == "fccov":
        delta = (D[:, :, None] <= D.T[None, :, :]).astype(float)  # [i, k, l]
        m = np.einsum("id,ikl->kld", Uc, delta) / n
        value = np.sum(m**2) / n**2
    else:
        dbar = D.sum() / (n * (n - 1))
        value = -np.sum((Uc @ Uc.T) * D) / (n**2 * dbar)
    penalty = np.sum((Uc.T @ Uc / n - np.eye(d)) ** 2)
    return -value + lam * penalty


def _closed_form_gradient(U, K, lam):
    """Spec 2.8: d/dU [-(1/n^2) tr(U~' K U~) + lam |Sigma - I|^2]
    = -(2/n^2) H K U~ + (4 lam / n) U~ (Sigma - I)."""
    n, d = U.shape
    Uc = U - U.mean(0)
    H = np.eye(n) - 1.0 / n
    sigma = Uc.T @ Uc / n
    return -2.0 / n**2 * H @ K @ Uc + 4.0 * lam / n * Uc @ (sigma - np.eye(d))


def _central_differences(f, U, h=1e-5):
    G = np.zeros_like(U)
    for idx in np.ndindex(*U.shape):
        E = np.zeros_like(U)
        E[idx] = h
        G[idx] = (f(U + E) - f(U - E)) / (2 * h)
    return G


GRAD_CASES = {
    # name: (FCCovNet params, response kind, expected solver_)
    "kernel": ({"solver": "kernel"}, "tied", "kernel"),
    "cumsum": ({"solver": "cumsum"}, "tied", "cumsum"),
    "class-means": ({"metric": "discrete"}, "labels", "class-means"),
    "distance": ({"objective": "distance"}, "tied", "kernel"),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_training_objective_gradient_matches_spec(case):
    params, kind, solver = GRAD_CASES[case]
    rng = np.random.default_rng(11)
    n, d, lam = 30, 2, 0.15
    X = rng.standard_normal((n, 3))
    if kind == "labels":
        y = rng.integers(0, 3, n)
        D = (y[:, None] != y[None]).astype(float)
    else:
        y = np.round(rng.standard_normal(n), 1)  # ties: closed balls matter
        D = np.abs(y[:, None] - y[None])
    # an output informative about y (so the FCCov part of the gradient is of the same order as
    # the penalty part), then made non-centred, non-white and correlated
    Z = np.column_stack([y + 0.3 * rng.standard_normal(n), rng.standard_normal(n)])
    Z = (Z - Z.mean(0)) / Z.std(0)
    U = Z @ np.array([[1.1, 0.1], [0.0, 0.9]]) + np.array([2.0, -1.0])
    est = FCCovNet(d, architecture=_FixedOutputFactory(U), lam=lam, max_epochs=1, min_epochs=0,
                   early_stopping=False, dtype="float64", device="cpu", random_state=0,
                   **params).fit(X, y)
    assert est.solver_ == solver and len(est.net_.grads) == 1
    grad = est.net_.grads[0].numpy()
    objective = params.get("objective", "fccov")

    def brute(V):
        return _brute_objective(V, D, lam, objective)

    # value of the library's objective at this U
    assert est.loss_curve_[0] == pytest.approx(brute(U), rel=1e-12, abs=1e-14)
    # (a) closed form of spec 2.8 (K = ball kernel, or -D/d_bar for the distance objective)
    K = _brute_kernel(D) if objective == "fccov" else -D / (D.sum() / (n * (n - 1)))
    np.testing.assert_allclose(grad, _closed_form_gradient(U, K, lam), rtol=0, atol=1e-10)
    # (b) central finite differences of the brute-force objective
    np.testing.assert_allclose(grad, _central_differences(brute, U), rtol=0, atol=1e-9)
