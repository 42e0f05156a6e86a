"""Simulators of the ebm family: exact log-densities integrate to one; shapes; determinism."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from fstat.datasets import load_digits_ood, make_toy_density


@pytest.mark.parametrize("name", ["eight_gaussians", pytest.param("moons", marks=pytest.mark.slow),
                                  "rings"])
def test_toy_log_density_integrates_to_one(name):
    X, logp = make_toy_density(name, 200, random_state=0, return_log_density=True)
    # the 2-D toys live in [-3.5, 3.5] x [-2, 2] (moons) or [-3.2, 3.2]^2 (others)
    hx, hy = (3.5, 2.0) if name == "moons" else (3.2, 3.2)
    nx, ny = (240, 140) if name == "moons" else (350, 350)
    gx = (np.arange(nx) + 0.5) / nx * 2 * hx - hx
    gy = (np.arange(ny) + 0.5) / ny * 2 * hy - hy
    xx, yy = np.meshgrid(gx, gy)
    grid = np.c_[xx.ravel(), yy.ravel()]
    log_integral = logsumexp(logp(grid)) + np.log(2 * hx / nx) + np.log(2 * hy / ny)
    assert abs(log_integral) < 1e-3
    assert X.shape == (200, 2) and X.dtype == np.float64
    assert np.all(np.isfinite(logp(X)))


def test_rings_density_matches_polar_construction():
    # p(x) integrated along a ray times 2πρ equals the radial mixture density
    _, logp = make_toy_density("rings", 10, random_state=0, return_log_density=True)
    rho = np.array([0.75, 1.2, 2.25])
    radial = np.log(np.mean([stats.norm(r0, 0.08).pdf(rho) for r0 in (0.75, 1.5, 2.25)], 0))
    np.testing.assert_allclose(logp(np.c_[rho, 0 * rho]) + np.log(2 * np.pi * rho), radial,
                               atol=1e-10)


def test_gaussian_matches_scipy_and_moments():
    X, logp = make_toy_density("gaussian", 20000, n_features=3, random_state=1,
                               return_log_density=True)
    rs = np.random.RandomState(1)
    G = rs.standard_normal((3, 3))
    A = G / np.sqrt(3)
    cov = A @ A.T + 0.5 * np.eye(3)
    mu = rs.standard_normal(3)
    np.testing.assert_allclose(logp(X[:50]), stats.multivariate_normal(mu, cov).logpdf(X[:50]),
                               atol=1e-10)
    assert np.all(np.abs(X.mean(0) - mu) < 5 * np.sqrt(np.diag(cov) / len(X)))


def test_shifted_gaussian_and_determinism():
    X, logp = make_toy_density("shifted_gaussian", 100, shift=2.0, random_state=3,
                               return_log_density=True)
    assert X.shape == (100, 1)
    np.testing.assert_allclose(logp(X), stats.norm(2.0, 1.0).logpdf(X[:, 0]), atol=1e-12)
    np.testing.assert_array_equal(make_toy_density("moons", 50, random_state=4),
                                  make_toy_density("moons", 50, random_state=4))
    assert not np.array_equal(make_toy_density("moons", 50, random_state=4),
                              make_toy_density("moons", 50, random_state=5))


def test_toy_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        make_toy_density("spiral")
    with pytest.raises(ValueError, match="n_features"):
        make_toy_density("moons", n_features=3)
    with pytest.raises(ValueError, match="shift"):
        make_toy_density("gaussian", shift=1.0)
    with pytest.raises(ValueError, match="std"):
        make_toy_density("gaussian", std=1.0)


def test_load_digits_ood():
    data = load_digits_ood(n_components=8)
    assert data.X_train.shape[1] == data.X_test.shape[1] == data.X_ood.shape[1] == 8
    np.testing.assert_allclose(data.X_train.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(data.X_train.std(0), 1, atol=1e-2)
    assert len(data.X_ood) > 800
    raw = load_digits_ood(n_components=None)
    assert raw.X_train.shape[1] == 64


def test_load_digits_ood_returns_arrays_under_a_global_pandas_output():
    import sklearn

    expected = load_digits_ood(n_components=3).X_train
    with sklearn.config_context(transform_output="pandas"):
        data = load_digits_ood(n_components=3)
    for part in (data.X_train, data.X_test, data.X_ood):
        assert isinstance(part, np.ndarray) and part.dtype == np.float64
    np.testing.assert_array_equal(data.X_train, expected)
