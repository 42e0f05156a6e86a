"""Simulation recoveries of CSIBRegressor (slow; the configuration of the spec, section 6)."""

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from fstat.bottleneck import CSIBRegressor
from fstat.datasets import (
    make_bimodal_regression,
    make_heavy_tailed_friedman,
    make_rotated_digits,
)

pytestmark = pytest.mark.slow

SPEC = dict(validation_fraction=0.25, max_iter=40, batch_size=128, noise_std=0.0, device="cpu")


def _split(X, y, m, seed):
    # 60/20/20: train+validation (80%, validation_fraction=0.25 inside fit) / test (20%)
    return train_test_split(X, y, m, test_size=0.2, random_state=seed)


def _rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_heavy_tails_beat_mse():
    rmse = {"cs_ib": [], "mse": []}
    for seed in (0, 1, 2):
        X, y, f = make_heavy_tailed_friedman(4000, random_state=seed, return_mean=True)
        Xa, Xt, ya, _, _, ft = _split(X, y, f, seed)
        for objective in rmse:
            model = CSIBRegressor(beta=0.0, objective=objective, random_state=seed, **SPEC)
            pred = model.fit(Xa, ya).predict(Xt)
            assert np.all(np.isfinite(pred))
            rmse[objective].append(_rmse(pred, ft))
    assert np.mean(rmse["cs_ib"]) <= 0.9 * np.mean(rmse["mse"])


def test_mode_versus_mean():
    X, y, g = make_bimodal_regression(4000, random_state=0, return_mean=True)
    Xa, Xt, ya, _, _, gt = _split(X, y, g, 0)
    fit = {}
    for name, params in {"mse": dict(objective="mse"), "wide": dict(sigma_y=4.0),
                         "narrow": dict(sigma_y=0.25)}.items():
        model = CSIBRegressor(beta=0.0, random_state=0, **params, **SPEC).fit(Xa, ya)
        fit[name] = _rmse(model.predict(Xt), gt)
    assert abs(fit["wide"] - fit["mse"]) <= 0.25 * fit["mse"]
    assert fit["narrow"] >= 1.5 * fit["mse"]


def test_compression_decreases_with_beta():
    X, y, f = make_heavy_tailed_friedman(4000, random_state=0, return_mean=True)
    Xa, Xt, ya, yt, _, _ = _split(X, y, f, 0)
    ixt = []
    for beta in (0.0, 1.0, 10.0):
        model = CSIBRegressor(beta=beta, random_state=0, **SPEC).fit(Xa, ya)
        ixt.append(model.information_plane(Xt, yt)[0])
    assert ixt[2] <= 0.8 * ixt[0]
    assert ixt[1] <= 1.1 * ixt[0] and ixt[2] <= 1.1 * ixt[1]


def test_defaults_reach_r2():
    X, y, f = make_heavy_tailed_friedman(4000, random_state=0, return_mean=True)
    Xa, Xt, ya, _, _, ft = _split(X, y, f, 0)
    model = CSIBRegressor(max_iter=40, random_state=0, device="cpu").fit(Xa, ya)
    assert r2_score(ft, model.predict(Xt)) >= 0.5


@pytest.mark.parametrize("objective", ["cs_ib", "mse", "vib", "nib", "hsic"])
def test_pathologies_finite(objective):
    # the spec's configuration: default network, n = 4000, 40 epochs of batch 128, no noise
    params = dict(SPEC, beta=0.1, random_state=0)
    if objective == "nib":  # NIB's bound needs a noise width (noise_std=0 is refused)
        params["noise_std"] = 0.1
    for X, y in (make_rotated_digits(random_state=0),
                 make_heavy_tailed_friedman(4000, random_state=0)):
        model = CSIBRegressor(objective=objective, **params).fit(X, y)
        assert np.all(np.isfinite(model.predict(X)))
