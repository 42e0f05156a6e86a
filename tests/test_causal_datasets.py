"""Causal simulators: shapes, determinism and the exact truth they return."""

import numpy as np
import pytest

from fstat.datasets import (
    make_confounded_discrete,
    make_confounded_paper,
    make_cyclic,
    make_probit_sine,
)


def test_discrete_truth_matches_large_sample():
    X, y, a, t = make_confounded_discrete(200_000, random_state=0, return_truth=True)
    for arm in (0, 1):
        for c in range(4):
            m = (a == arm) & (t.cell == c)
            assert m.sum() / (t.cell == c).sum() == pytest.approx(t.cell_propensity[arm, c],
                                                                  abs=0.01)
            freq = np.bincount(y[m].astype(int), minlength=5) / m.sum()
            np.testing.assert_allclose(freq, t.cell_pmf[arm, c], atol=0.01)
    pb = t.population_bounds("kl")
    assert pb.shape == (2, 4, 2)
    assert np.all(pb[..., 0] <= t.cell_mu + 1e-12) and np.all(t.cell_mu <= pb[..., 1] + 1e-12)
    np.testing.assert_allclose(t.propensity_fn(X[:5]), t.cell_propensity[1, t.cell[:5]])


@pytest.mark.parametrize("maker", [make_confounded_paper, make_probit_sine, make_cyclic])
def test_continuous_truth_propensity_and_determinism(maker):
    X, y, a, t = maker(100_000, random_state=1, return_truth=True)
    assert X.dtype == np.float64 and y.dtype == np.float64 and a.dtype == np.int64
    # the marginal propensity of the truth matches the treated share
    assert a.mean() == pytest.approx(t.propensity.mean(), abs=0.01)
    # calibration in propensity bins
    bins = np.quantile(t.propensity, [0, 0.25, 0.5, 0.75, 1.0])
    idx = np.clip(np.searchsorted(bins, t.propensity) - 1, 0, 3)
    for b in range(4):
        assert a[idx == b].mean() == pytest.approx(t.propensity[idx == b].mean(), abs=0.02)
    X2, y2, a2 = maker(50, random_state=1)
    X3, y3, a3 = maker(50, random_state=1)
    np.testing.assert_array_equal(y2, y3)
    with pytest.raises(ValueError):
        maker(0)


def test_probit_sine_effect_truth_in_bins():
    X, y, a, t = make_probit_sine(200_000, random_state=3, return_truth=True, noise="gaussian")
    # E[y | do(1), x] = tau(x) but E[y | A=1, x] is confounded: just check the truth function
    np.testing.assert_allclose(t.mu_fn(1, X[:10]), t.mu1[:10])
    np.testing.assert_allclose(t.mu0, 0.0)
