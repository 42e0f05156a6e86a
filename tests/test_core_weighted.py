"""Weighted order statistics of frequency weights (fstat._weighted)."""

import numpy as np
import pytest

from fstat._weighted import weighted_median, weighted_quantile


@pytest.mark.parametrize("seed", range(200))
def test_weighted_median_is_the_median_of_the_repeated_sample(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    values = rng.integers(-3, 4, size=n).astype(float) + (seed % 2) * rng.standard_normal(n)
    weights = rng.integers(0, 4, size=n).astype(float)
    if weights.sum() == 0:
        weights[0] = 1.0
    repeated = np.repeat(values, weights.astype(int))
    assert weighted_median(values, weights) == np.median(repeated)
    assert weighted_median(values, 2.5 * weights) == np.median(repeated)  # scale-free
    for scale in (1 / weights.sum(), 0.1, 1 / 3, 0.7, 1e-3):  # inexact: ties within rounding
        assert weighted_median(values, scale * weights) == np.median(repeated)
    assert weighted_median(values, None) == np.median(values)
    assert weighted_median(values, np.ones(n)) == np.median(values)


def test_weighted_quantile_drops_zero_weights_and_keeps_numpy_for_equal_ones():
    values = np.array([5.0, -1.0, 3.0, 2.0, 100.0, 0.5])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert weighted_quantile(values, weights, q) == np.quantile(values[weights > 0], q)
        assert weighted_quantile(values, None, q) == np.quantile(values, q)
    unequal = np.array([1.0, 3.0, 1.0, 1.0, 0.0, 2.0])
    # sorted positive: -1 (3), 0.5 (2), 2 (1), 3 (1), 5 (1); total 8
    assert weighted_quantile(values, unequal, 0.3) == -1.0
    assert weighted_quantile(values, unequal, 3 / 8) == -1.0
    assert weighted_quantile(values, unequal, 0.4) == 0.5
    assert weighted_quantile(values, unequal, 1.0) == 5.0
