"""Column means and scales for internal standardisation, safe at any magnitude."""

from __future__ import annotations

import numpy as np

__all__ = ["column_mean_and_scale"]


def column_mean_and_scale(X, weights=None):
    """Column means and standard deviations of ``X`` and a mask of constant columns.

    Each column is first scaled by a power of two to magnitude at most 1 (exact), so
    the squared deviations neither overflow (entries beyond about 1e154) nor underflow
    (spreads below about 1e-154); for data in the ordinary range the results equal
    ``X.mean(0)`` and ``X.std(0)`` (or their weighted forms) bit for bit.

    A column is constant when its range (over rows of positive weight) is at most eight
    machine epsilons of its largest magnitude: only rounding tells its values apart (a
    column 1e8 + 1e-5 z is not constant). The range is exact, unlike a summed spread.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), finite
    weights : ndarray of shape (n_samples,), optional
        Non-negative row weights with a positive sum; normalised to sum 1.

    Returns
    -------
    mean, scale : ndarray of shape (n_features,)
    constant : ndarray of bool of shape (n_features,)
    """
    X = np.asarray(X, dtype=np.float64)
    largest = np.abs(X).max(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    exponent = np.where(largest > 0, np.frexp(largest)[1], 0)
    Xs = np.ldexp(X, -exponent)
    rows = Xs
    if weights is None:
        mean_s, scale_s = Xs.mean(axis=0), Xs.std(axis=0)
    else:
        a = np.asarray(weights, dtype=np.float64)
        with np.errstate(over="ignore"):
            total = a.sum()
        if not np.isfinite(total):  # weights near the float64 limit: rescale first
            a = a / a.max()
            total = a.sum()
        w = a / total
        mean_s = w @ Xs
        scale_s = np.sqrt(w @ (Xs - mean_s) ** 2)
        rows = Xs[a > 0]
    spread = rows.max(axis=0) - rows.min(axis=0)
    constant = ~(spread > 8 * np.finfo(np.float64).eps * np.abs(rows).max(axis=0))
    return np.ldexp(mean_s, exponent), np.ldexp(scale_s, exponent), constant
