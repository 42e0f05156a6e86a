"""Slow statistical checks of spec §6: 2-D toys against their true densities (17), OOD on digits
(19), and the full seed sets of the shifted-Gaussian (15) and far-noise (16) recoveries.
"""

import numpy as np
import pytest
from _reference_ebm import _far_noise_errors
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from fstat.datasets import load_digits_ood, make_toy_density
from fstat.ebm import CompositionalEBM, NCEDensity, SNLDensity

pytestmark = pytest.mark.slow

@pytest.mark.parametrize("toy", ["eight_gaussians", "moons", "rings"])
def test_toy_density_recovery_and_log_partition(toy):
    """Spec test 17: n_train = n_test = 5000, lr 2e-3, 10 000 iterations, seed 0."""
    X, log_density = make_toy_density(toy, 5000, random_state=0, return_log_density=True)
    X_test = make_toy_density(toy, 5000, random_state=1)
    est = CompositionalEBM(learning_rate=2e-3, max_iter=10_000, n_logz_samples=200_000,
                           device="cpu", random_state=0).fit(X)
    loglik = est.score(X_test)
    truth = float(np.mean(log_density(X_test)))
    gaussian = GaussianMixture(1, random_state=0).fit(X).score(X_test)
    assert loglik >= truth - 0.3
    assert loglik >= gaussian + 0.3
    grid = est.log_partition("grid").log_z
    assert abs(est.log_partition_ - grid) <= 0.08
    assert abs(est.train_log_partition_ - grid) <= 0.25


def test_digits_ood_auroc_and_likelihood():
    """Spec test 19: PCA-8 digits, lr 1e-3, 3000 iterations; in-distribution is positive."""
    data = load_digits_ood(n_components=8)
    gaussian = GaussianMixture(1, random_state=0).fit(data.X_train).score(data.X_test)
    X_eval = np.r_[data.X_test, data.X_ood]
    y = np.r_[np.ones(len(data.X_test)), np.zeros(len(data.X_ood))]
    for cls, min_auroc in ((CompositionalEBM, 0.65), (NCEDensity, 0.75)):
        est = cls(learning_rate=1e-3, max_iter=3000, device="cpu", random_state=0)
        est.fit(data.X_train)
        assert roc_auc_score(y, -est.ood_score(X_eval)) >= min_auroc, cls.__name__
        assert est.score(data.X_test) >= gaussian + 1.5, cls.__name__


@pytest.mark.parametrize("cls", [CompositionalEBM, NCEDensity, SNLDensity],
                         ids=lambda c: c.__name__)
def test_shifted_gaussian_recovery_all_seeds(cls):
    """Spec test 15 on seeds 0-4."""
    for seed in range(5):
        X = make_toy_density("shifted_gaussian", 1000, random_state=seed)
        est = cls(energy_model="quadratic", learning_rate=1e-2, max_iter=3000, dtype="float64",
                  device="cpu", random_state=seed).fit(X)
        assert abs(est.quadratic_mean_[0] - X.mean()) <= 0.15, seed
        assert 0.85 <= est.quadratic_covariance_[0, 0] / X.var() <= 1.15, seed


def test_far_noise_all_seeds():
    """Spec test 16 on seeds 0-9 with the spec's thresholds."""
    seeds = range(10)
    assert np.sum(_far_noise_errors(1.0, seeds) > 20) >= 7
    assert np.all(_far_noise_errors(0.1, seeds) < 8)
    assert np.median(_far_noise_errors(0.001, seeds)) < 1.2
