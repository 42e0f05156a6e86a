"""Weighted order statistics of frequency weights (zero weight is the same as no row)."""

from __future__ import annotations

import numpy as np


def weighted_quantile(values, weights, q):
    """``np.quantile(values, q)`` (linear) without weights or with equal positive weights;
    otherwise the weighted quantile (inverted CDF) of the rows of positive weight.

    The two definitions differ by less than one gap between neighbouring order statistics,
    so weights that are nearly but not exactly equal can move the result by that much.
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        positive = weights > 0
        values, weights = values[positive], weights[positive]
        if np.ptp(weights) == 0:
            weights = None
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = np.searchsorted(cumulative, q * cumulative[-1], side="left")
    return float(values[order][min(index, len(values) - 1)])


def weighted_median(values, weights=None):
    """``np.median`` of the sample in which each value is repeated by its weight.

    The mean of the lower and upper weighted medians (the first values whose cumulative
    weight reaches, and exceeds, half the total): for integer weights exactly the median of
    the repeated values, and unchanged by scaling the weights. Cumulative weights within
    rounding of half the total (``4 n eps`` of it) count as equal to it, so weights
    ``w / w.sum()`` give the same median as ``w``.
    """
    values = np.asarray(values, dtype=np.float64)
    if weights is None:
        return float(np.median(values))
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    half = cumulative[-1] / 2.0
    slack = 4.0 * len(values) * np.finfo(np.float64).eps * cumulative[-1]
    last = len(values) - 1
    lower = values[order][min(np.searchsorted(cumulative, half - slack, side="left"), last)]
    upper = values[order][min(np.searchsorted(cumulative, half + slack, side="right"), last)]
    return float((lower + upper) / 2.0)
