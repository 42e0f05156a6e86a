"""Statistical recoveries with known truth (slow tier): closed-form Gaussian MLE, the far-noise
behaviour of the moving average, AIS against an exact 8-D log Z."""

import math
import warnings

import numpy as np
import pytest
import torch

from fstat.datasets import make_toy_density
from fstat.ebm import (
    CompositionalEBM,
    GaussianNoise,
    NCEDensity,
    PartitionEstimateWarning,
    SNLDensity,
    estimate_log_partition,
)
from fstat.ebm._energies import QuadraticEnergy

pytestmark = pytest.mark.slow

VARIANTS = [(CompositionalEBM, {}), (CompositionalEBM, {"inner_estimator": "msvr"}),
            (CompositionalEBM, {"inner_estimator": "msvr_ratio"}), (NCEDensity, {}),
            (SNLDensity, {})]


@pytest.mark.parametrize("cls,extra", VARIANTS,
                         ids=["meco-ma", "meco-msvr", "meco-msvr-ratio", "nce", "snl"])
def test_gaussian_closed_form_mle_recovery(cls, extra):
    X = make_toy_density("gaussian", 2000, random_state=0)
    n, d = X.shape
    S = np.cov(X.T, bias=True)
    mle_nll = d / 2 * (1 + math.log(2 * math.pi)) + 0.5 * np.linalg.slogdet(S)[1]
    est = cls(energy_model="quadratic", learning_rate=1e-2, max_iter=3000, dtype="float64",
              logz_method="is", device="cpu", random_state=0, **extra).fit(X)
    assert -est.score(X) - mle_nll <= 0.03
    assert np.max(np.abs(est.quadratic_mean_ - X.mean(0))) <= 0.2
    assert np.linalg.norm(est.quadratic_covariance_ - S) / np.linalg.norm(S) <= 0.2
    exact = est.log_partition("exact").log_z
    assert abs(est.log_partition_ - exact) <= max(0.03, 5 * est.log_partition_se_)


def _random_quadratic(d, seed):
    rs = np.random.RandomState(seed)
    core = QuadraticEnergy(d)
    with torch.no_grad():
        core.log_diag.copy_(torch.tensor(np.log(rs.uniform(0.5, 2.0, size=d))))
        core.lower.copy_(torch.tensor(rs.normal(scale=0.3, size=(d, d))))
        core.b.copy_(torch.tensor(rs.normal(size=d)))
    return core


def test_ais_matches_exact_log_partition_in_8d():
    core = _random_quadratic(8, 0)
    q = GaussianNoise(mean=np.zeros(8), covariance=np.eye(8)).fit(None)
    exact = estimate_log_partition(core, "exact", noise=q).log_z
    ais = estimate_log_partition(core, "ais", 500, noise=q, n_temperatures=1000,
                                 n_mcmc_steps=2, random_state=0)
    assert abs(ais.log_z - exact) <= max(0.5, 4 * ais.se)


def test_importance_sampling_degenerates_in_16d():
    core = _random_quadratic(16, 1)
    q = GaussianNoise(mean=np.zeros(16), covariance=np.eye(16)).fit(None)
    # the public function warns itself (only fit did)
    with pytest.warns(PartitionEstimateWarning, match="ais"):
        est = estimate_log_partition(core, "is", 100_000, noise=q, random_state=0)
    assert est.ess < 0.01 * est.n_samples


def test_sir_samples_look_like_held_out_data():
    """Spec test 20: samples are as typical as held-out data under a KDE of the training set."""
    from sklearn.neighbors import KernelDensity

    X = make_toy_density("moons", 4000, random_state=0)
    X_hold = make_toy_density("moons", 2000, random_state=1)
    est = CompositionalEBM(learning_rate=2e-3, max_iter=4000, device="cpu",
                           random_state=0).fit(X)
    mu, sd = X.mean(0), X.std(0)
    kde = KernelDensity(bandwidth=0.1).fit((X - mu) / sd)

    def typical(A):
        return float(np.mean(kde.score_samples((A - mu) / sd)))

    samples = est.sample(2000, random_state=0)
    raw = est.noise_.sample(2000, random_state=0) * est.scale_ + est.mean_
    assert abs(typical(samples) - typical(X_hold)) <= 0.4
    assert typical(samples) >= typical(raw) + 2.0


def test_msvr_ratio_is_stable_on_moons_at_learning_rate_5e_3():
    """Adam at lr 5e-3 on moons (n = 2000, 1500 steps): "msvr_ratio" trains without a clamp to a
    test log-lik near the truth, while the spec's additive "msvr" correction clamps within 400
    steps on the same run and its log Z collapses (why the extension exists)."""
    X, logp = make_toy_density("moons", 2000, random_state=0, return_log_density=True)
    X_test = make_toy_density("moons", 2000, random_state=1)
    p = dict(learning_rate=5e-3, n_logz_samples=20_000, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est = CompositionalEBM(inner_estimator="msvr_ratio", max_iter=1500, **p).fit(X)
    assert est.n_inner_clamped_ == 0 and est.n_inner_resets_ == 0
    assert est.score(X_test) >= np.mean(logp(X_test)) - 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        additive = CompositionalEBM(inner_estimator="msvr", max_iter=400, **p).fit(X)
    assert additive.n_inner_clamped_ > 0 and additive.train_log_partition_ < -10
