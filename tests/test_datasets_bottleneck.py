"""Simulators of the bottleneck family: shapes, determinism, formulas, bad input."""

import numpy as np
import pytest

from fstat.datasets import (
    make_bimodal_regression,
    make_heavy_tailed_friedman,
    make_rotated_digits,
)


def test_heavy_tailed_friedman_formula():
    X, y, f = make_heavy_tailed_friedman(50, 7, noise_df=3.0, noise_scale=0.5, random_state=1,
                                         return_mean=True)
    assert X.shape == (50, 7) and y.shape == f.shape == (50,) and X.dtype == np.float64
    rng = np.random.RandomState(1)
    Xr = rng.uniform(size=(50, 7))
    fr = (10 * np.sin(np.pi * Xr[:, 0] * Xr[:, 1]) + 20 * (Xr[:, 2] - 0.5) ** 2 + 10 * Xr[:, 3]
          + 5 * Xr[:, 4])
    yr = fr + 0.5 * rng.standard_t(3.0, size=50)
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_allclose(f, fr, rtol=1e-15)
    np.testing.assert_allclose(y, yr, rtol=1e-15)
    X2, y2 = make_heavy_tailed_friedman(50, 7, noise_df=3.0, noise_scale=0.5, random_state=1)
    np.testing.assert_array_equal(y2, y)
    assert not np.array_equal(make_heavy_tailed_friedman(50, random_state=2)[1],
                              make_heavy_tailed_friedman(50, random_state=3)[1])
    with pytest.raises(ValueError, match="n_features"):
        make_heavy_tailed_friedman(10, 4)
    with pytest.raises(ValueError, match="noise_df"):
        make_heavy_tailed_friedman(10, noise_df=0.0)


def test_bimodal_formula():
    X, y, g = make_bimodal_regression(40, 3, separation=1.5, noise=0.2, random_state=0,
                                      return_mean=True)
    rng = np.random.RandomState(0)
    Xr = rng.standard_normal((40, 3))
    gr = np.sin(2 * Xr[:, 0]) + Xr[:, 1] ** 2 / 2
    s = rng.choice([-1, 1], 40)
    e = rng.standard_normal(40)
    np.testing.assert_allclose(y, gr + 1.5 * s + 0.2 * e, rtol=1e-15)
    np.testing.assert_allclose(g, gr, rtol=1e-15)
    assert X.shape == (40, 3)
    with pytest.raises(ValueError, match="n_features"):
        make_bimodal_regression(10, 1)


def test_rotated_digits():
    X, y = make_rotated_digits(random_state=0)
    assert X.shape == (1797, 64) and y.shape == (1797,) and X.dtype == np.float64
    assert np.all(np.abs(y) <= 45.0)
    assert np.any(X.std(axis=0) == 0)  # constant pixel columns: the stress case
    X2, y2 = make_rotated_digits(random_state=0)
    np.testing.assert_array_equal(X, X2)
    from scipy.ndimage import rotate
    from sklearn.datasets import load_digits

    img = load_digits().images[5]
    np.testing.assert_allclose(X[5], rotate(img, y[5], reshape=False, order=1).ravel())
    X0, _ = make_rotated_digits(max_angle=0.0, random_state=0)
    np.testing.assert_allclose(X0, load_digits().data, atol=1e-12)
