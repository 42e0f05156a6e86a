"""adversarial_rmse (FGSM, PGD, transfer) and information_plane_path."""

import warnings

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor

from fstat.bottleneck import CSIBRegressor, adversarial_rmse, information_plane_path
from fstat.bottleneck._attacks import _perturb, _torch_function
from fstat.bottleneck._testing import FAST_PARAMS

FAST = dict(FAST_PARAMS["CSIBRegressor"], max_iter=10)


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4)) * [1.0, 2.0, 0.5, 1.0]
    X[:, 3] = 1.5  # zero-sd column
    y = X @ [1.0, -0.5, 2.0, 0.0] + 0.3 * rng.standard_normal(80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(3,), activation="identity", max_iter=300,
                             random_state=0).fit(X, y)
    return model, X, y


def test_eps_zero_gives_clean_rmse(linear):
    model, X, y = linear
    out = adversarial_rmse(model, X, y)
    assert len(out["eps"]) == 13 and out["eps"][0] == 0 and out["eps"][-1] == pytest.approx(0.6)
    clean = np.sqrt(np.mean((model.predict(X) - y) ** 2))
    assert out["rmse"][0] == clean
    assert np.all(np.diff(out["rmse"]) > 0)


def test_fgsm_linear_closed_form(linear):
    model, X, y = linear
    w = model.coefs_[0] @ model.coefs_[1]
    s = X.std(axis=0)
    r = model.predict(X) - y
    eps = np.array([0.1, 0.3, 0.6])
    out = adversarial_rmse(model, X, y, eps=eps)
    expected = [np.sqrt(np.mean((np.abs(r) + e * np.sum(np.abs(w[:, 0]) * s)) ** 2)) for e in eps]
    np.testing.assert_allclose(out["rmse"], expected, rtol=1e-8)


def test_a_poisson_mlp_is_attacked_through_its_exp_output():
    # loss="poisson" predicts exp(last layer): the attacked function must be predict itself
    import torch

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 1)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=300,
                             random_state=0).fit(X, y)
    assert model.out_activation_ == "exp"
    f = _torch_function(model)
    np.testing.assert_allclose(f(torch.as_tensor(X)).detach().numpy().ravel(),
                               model.predict(X), rtol=1e-10)
    W = [torch.as_tensor(w) for w in model.coefs_]
    b = [torch.as_tensor(v) for v in model.intercepts_]
    x = torch.as_tensor(X).requires_grad_(True)
    pred = torch.exp(torch.relu(x @ W[0] + b[0]) @ W[1] + b[1]).ravel()
    ((pred - torch.as_tensor(y)) ** 2).sum().backward()
    attacked = X + 0.3 * X.std(axis=0) * x.grad.sign().numpy()
    expected = np.sqrt(np.mean((model.predict(attacked) - y) ** 2))
    assert adversarial_rmse(model, X, y, eps=[0.3])["rmse"][0] == pytest.approx(expected,
                                                                                 rel=1e-10)


def test_pgd_box_and_strength(linear):
    import torch

    model, X, y = linear
    f = _torch_function(model)
    s = torch.as_tensor(X.std(axis=0))
    x, yt = torch.as_tensor(X), torch.as_tensor(y)[:, None]
    for e in (0.1, 0.4):
        delta = _perturb(f, x, yt, e, s, "pgd", 7, None, True, None, None,
                         torch.Generator().manual_seed(0))
        assert torch.all(delta.abs() <= e * s + 1e-12)
        assert torch.all(delta[:, 3] == 0)
    eps = [0.05, 0.2, 0.5]
    fgsm = adversarial_rmse(model, X, y, eps=eps)["rmse"]
    pgd = adversarial_rmse(model, X, y, eps=eps, attack="pgd")["rmse"]
    assert np.all(pgd >= 0.99 * fgsm)
    # random starts are drawn from the generator: reproducible
    a = adversarial_rmse(model, X, y, eps=eps, attack="pgd", random_start=True, random_state=1)
    b = adversarial_rmse(model, X, y, eps=eps, attack="pgd", random_start=True, random_state=1)
    np.testing.assert_array_equal(a["rmse"], b["rmse"])


def test_clip_respected(linear):
    import torch

    model, X, y = linear
    f = _torch_function(model)
    x, yt = torch.as_tensor(X), torch.as_tensor(y)[:, None]
    lo, hi = torch.full((4,), -0.5), torch.full((4,), 0.5)
    lo[3], hi[3] = 1.5, 1.5
    for attack in ("fgsm", "pgd"):
        delta = _perturb(f, x, yt, 0.5, torch.as_tensor(X.std(axis=0)), attack, 3, None, False,
                         lo.double(), hi.double(), None)
        adv = x + delta
        inside = (x >= -0.5) & (x <= 0.5)
        assert torch.all(adv[inside] >= -0.5 - 1e-12) and torch.all(adv[inside] <= 0.5 + 1e-12)
    out = adversarial_rmse(model, X, y, eps=[0.3], clip=(X.min(0), X.max(0)))
    assert np.isfinite(out["rmse"]).all()


def test_csib_and_transfer(linear):
    _, X, y = linear
    csib = CSIBRegressor(**FAST, random_state=0).fit(X, y)
    out = adversarial_rmse(csib, X, y, eps=[0.0, 0.2], attack="pgd")
    assert out["rmse"][0] == pytest.approx(np.sqrt(np.mean((csib.predict(X) - y) ** 2)))
    assert out["rmse"][1] > out["rmse"][0]
    hgb = HistGradientBoostingRegressor(max_iter=20).fit(X, y)
    transfer = adversarial_rmse(hgb, X, y, eps=[0.0, 0.3], surrogate=csib)
    assert np.isfinite(transfer["rmse"]).all()


def test_attack_bad_input(linear):
    model, X, y = linear
    with pytest.raises(ValueError, match=r"got eps=\[-0.1\]"):  # a plain list, not array(...)
        adversarial_rmse(model, X, y, eps=[-0.1])
    with pytest.raises(TypeError, match="surrogate"):
        adversarial_rmse(Ridge().fit(X, y), X, y)
    with pytest.raises(ValueError, match="inconsistent"):
        adversarial_rmse(model, X, y[:-1])
    with pytest.raises(ValueError, match="attack"):
        adversarial_rmse(model, X, y, attack="cw")
    for bad in (np.nan, np.inf):  # spec 4: NaN/inf in y, not just in X
        y_bad = y.copy()
        y_bad[0] = bad
        with pytest.raises(ValueError, match="Input y contains"):
            adversarial_rmse(model, X, y_bad, eps=[0.0, 0.1])
        X_bad = X.copy()
        X_bad[0, 0] = bad
        with pytest.raises(ValueError, match="Input X contains"):
            adversarial_rmse(model, X_bad, y, eps=[0.0, 0.1])
    # a feature count other than the fit's (a torch shape error before), and meaningless
    # PGD settings, are ValueErrors naming the argument
    with pytest.raises(ValueError, match=f"X has 2 features, but .* with {X.shape[1]}"):
        adversarial_rmse(model, X[:, :2], y, eps=[0.1])
    for kwargs, name in (({"step_size": -1.0}, "step_size"), ({"step_size": 0.0}, "step_size"),
                         ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=name):
            adversarial_rmse(model, X, y, attack="pgd", eps=[0.1], **kwargs)


def test_information_plane_path():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(100)
    out = information_plane_path(CSIBRegressor(**FAST, random_state=0), X, y, [0.5, 0.0])
    np.testing.assert_array_equal(out["beta"], [0.0, 0.5])
    assert out["compression_ratio"][0] == 0.0
    assert np.allclose(out["compression_ratio"], 1 - out["I_xt"] / out["I_xt"][0])
    assert len(out["estimators"]) == 2 and out["estimators"][1].beta == 0.5
    assert np.isfinite(out["rmse"]).all()
    with pytest.raises(ValueError, match="betas"):
        information_plane_path(CSIBRegressor(**FAST), X, y, [])
    with pytest.raises(ValueError, match=r"betas.*got \[-1.0\]"):
        information_plane_path(CSIBRegressor(**FAST), X, y, [-1.0])
