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
    U.grad = None
    cov = lambda V: (V - V.mean(0)).T @ (V - V.mean(0)) / n  # noqa: E731
    (cov(U) - torch.eye(d, dtype=torch.float64)).square().sum().backward()
    expected = 4 / n * Uc @ (cov(Uc) - torch.eye(d, dtype=torch.float64))
    np.testing.assert_allclose(U.grad.numpy(), expected.numpy(), atol=1e-8)
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
