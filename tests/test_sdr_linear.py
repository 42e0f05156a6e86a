"""LinearFCCov: recovery, eigenvalue identity, whitening, equivariance, bad input."""

import numpy as np
import pytest

from fstat.sdr import LinearFCCov, fccov, fccov_matrix


def _data(n=500, p=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = X[:, 0] + X[:, 1] + 0.2 * rng.standard_normal(n)
    return X, y


def test_recovers_the_linear_direction():
    X, y = _data()
    est = LinearFCCov(n_components=2, device="cpu").fit(X, y)
    b = est.directions_[:, 0] / np.linalg.norm(est.directions_[:, 0])
    truth = np.r_[1.0, 1.0, np.zeros(8)] / np.sqrt(2)
    assert abs(b @ truth) >= 0.97
    assert est.eigenvalues_[0] / est.eigenvalues_[1] >= 8
    assert np.all(np.diff(est.eigenvalues_) <= 1e-15)


def test_eigenvalues_are_fccov_of_projections():
    X, y = _data(n=200, p=4, seed=1)
    est = LinearFCCov(n_components=4, reg=0.0, device="cpu").fit(X, y)
    Z = est.transform(X)
    for j in range(4):
        assert fccov(Z[:, j], y, device="cpu") == pytest.approx(est.eigenvalues_[j], rel=1e-8,
                                                                abs=1e-14)
    np.testing.assert_allclose(est.fccov_matrix_, fccov_matrix(X, y, device="cpu"), rtol=1e-12)
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(4), atol=1e-8)
    assert np.abs(Z.mean(0)).max() <= 1e-10


def test_reg_zero_whitens_an_ill_conditioned_covariance_exactly():
    # condition number ~3e10, positive definite: no jitter may be added when reg = 0
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6)) * 10.0 ** rng.uniform(-3, 3, 6)
    y = rng.standard_normal(120) + X[:, 0] / X[:, 0].std()
    Z = LinearFCCov(n_components=6, reg=0.0, device="cpu").fit(X, y).transform(X)
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(6), atol=1e-10)


def test_reg_zero_with_a_singular_covariance_still_solves():
    X, y = _data(n=100, p=4, seed=5)
    X = np.c_[X, X[:, 0] + X[:, 1]]  # rank 4 of 5
    est = LinearFCCov(n_components=2, reg=0.0, device="cpu").fit(X, y)
    assert np.all(np.isfinite(est.directions_)) and np.all(np.isfinite(est.eigenvalues_))


def test_reg_zero_with_a_constant_column_gives_it_no_weight():
    # the centred constant column is rounding noise (~1e-16): the covariance is singular to
    # rounding and must be treated as singular, not as a direction of tiny variance
    X, y = _data(n=200, p=3, seed=6)
    X[:, 2] = 0.1
    est = LinearFCCov(n_components=2, reg=0.0, device="cpu").fit(X, y)
    assert np.abs(est.directions_[2]).max() <= 1e-8
    moved = X.copy()
    moved[:, 2] += 1.0
    np.testing.assert_allclose(est.transform(moved), est.transform(X), atol=1e-8)


def test_directions_are_equivariant():
    X, y = _data(n=200, p=4, seed=2)
    A = np.random.default_rng(3).standard_normal((4, 4)) + 2 * np.eye(4)
    Z1 = LinearFCCov(n_components=2, reg=0.0, device="cpu").fit(X, y).transform(X)
    Z2 = LinearFCCov(n_components=2, reg=0.0, device="cpu").fit(X @ A, y).transform(X @ A)
    np.testing.assert_allclose(np.abs(Z1), np.abs(Z2), atol=1e-7)


def test_other_metrics_and_score():
    X, y = _data(n=150, p=3, seed=4)
    lab = (y > 0).astype(int)
    est = LinearFCCov(metric="discrete", device="cpu").fit(X, lab)
    assert 0 < est.score(X, lab) <= 1
    est = LinearFCCov(n_centers=50, random_state=0, device="cpu").fit(X, y)
    assert est.directions_.shape == (3, 1)


def test_bad_input():
    X, y = _data(n=20, p=3)
    with pytest.raises(ValueError, match="n_components"):
        LinearFCCov(n_components=4, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="at least 4 samples"):
        LinearFCCov(device="cpu").fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LinearFCCov(device="cpu").fit(X, y[:10])


def test_constant_response_warns():
    X, _ = _data(n=30, p=3)
    with pytest.warns(UserWarning, match="all response distances are equal"):
        LinearFCCov(device="cpu").fit(X, np.ones(30))
