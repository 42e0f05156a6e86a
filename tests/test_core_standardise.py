"""Internal standardisation statistics at extreme magnitudes (bottleneck and ebm estimators)."""

import warnings

import numpy as np
import pytest

from fstat._standardise import column_mean_and_scale


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((200, 3)) @ [[1.0, 0.3, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 0.7]]


def test_equals_numpy_on_ordinary_data():
    X = _data()
    mean, scale, constant = column_mean_and_scale(X)
    np.testing.assert_array_equal(mean, X.mean(0))
    np.testing.assert_array_equal(scale, X.std(0))
    assert not constant.any()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    mean, scale, _ = column_mean_and_scale(X, w)
    np.testing.assert_allclose(mean, np.average(X, axis=0, weights=w), rtol=1e-14)
    np.testing.assert_allclose(scale, np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w)),
                               rtol=1e-14)


@pytest.mark.parametrize("factor", [1e-170, 1e160])
def test_scales_with_the_data_beyond_the_squaring_range(factor):
    X = _data()
    mean, scale, constant = column_mean_and_scale(X * factor)
    np.testing.assert_allclose(scale, X.std(0) * factor, rtol=1e-14)
    np.testing.assert_allclose(mean, X.mean(0) * factor, rtol=1e-14, atol=1e-16 * factor)
    assert not constant.any()


def test_constant_means_rounding_only_and_huge_weights_are_safe():
    X = _data()
    X[:, 0] = 0.1  # constant
    X[:, 1] = 1e8 + 1e-5 * X[:, 1]  # a real spread of 1e-5 on a mean of 1e8
    _, scale, constant = column_mean_and_scale(X)
    assert list(constant) == [True, False, False]
    assert scale[1] == pytest.approx(2e-5, rel=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, scale, _ = column_mean_and_scale(X, np.full(len(X), 1e308))
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-14)
    np.testing.assert_allclose(scale[1:], X.std(0)[1:], rtol=1e-5)  # 1e8 mean: cancellation


def test_estimators_standardise_extreme_columns():
    from fstat.bottleneck import CSIBRegressor
    from fstat.ebm import CompositionalEBM

    X = _data()[:, :2]
    y = X[:, 0]
    sd = X.std(0)
    for Z, expected in ((X * 1e-170, sd * 1e-170), (X * 1e160, sd * 1e160),
                        (np.c_[X[:, 0], 1e8 + 1e-5 * X[:, 1]], None)):
        expected = Z.std(0) if expected is None else expected  # (no overflow there)
        model = CSIBRegressor(max_iter=1, hidden_layer_sizes=(4,), decoder_hidden_sizes=(4,),
                              bottleneck_dim=2, random_state=0, device="cpu").fit(Z, y)
        np.testing.assert_allclose(model.x_scale_, expected, rtol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few iterations
            ebm = CompositionalEBM(max_iter=2, hidden_layer_sizes=(4,), n_noise=16,
                                   n_logz_samples=200, device="cpu", random_state=0).fit(Z)
        np.testing.assert_allclose(ebm.scale_, expected, rtol=1e-6)
