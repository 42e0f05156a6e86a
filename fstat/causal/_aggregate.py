"""Aggregation of per-divergence bounds (rows = samples, columns = divergences)."""

from __future__ import annotations

import numpy as np

from .._warnings import warn_user
from ._exceptions import InvertedBoundsWarning

__all__ = ["aggregate_bounds"]

AGGREGATIONS = ("intersection", "union", "kth", "adaptive")


def _kth(lower, upper, k):
    """k-th largest lower and k-th smallest upper per row (k is 1-based, shape (n,))."""
    lo_sorted = -np.sort(-lower, axis=1)  # descending
    up_sorted = np.sort(upper, axis=1)  # ascending
    rows = np.arange(lower.shape[0])
    return lo_sorted[rows, k - 1], up_sorted[rows, k - 1]


def aggregate_bounds(lower, upper, *, method="intersection", k=None):
    """Combine bounds from several divergences into one interval per row.

    Parameters
    ----------
    lower, upper : array-like of shape (n, D) or (D,)
        Per-divergence lower and upper bounds.
    method : {"intersection", "union", "kth", "adaptive"} or None, default="intersection"
        ``"intersection"``: (max of lowers, min of uppers) -- valid whenever each candidate is;
        ``"union"``: (min, max); ``"kth"``: k-th largest lower and k-th smallest upper
        (``k = 1`` is the intersection, ``k = D`` the union; the aggregated upper is valid iff at
        least ``D - k + 1`` candidate uppers are); ``"adaptive"``: per row the smallest ``k`` with
        lower <= upper, falling back to the union with an :class:`InvertedBoundsWarning`;
        None: no aggregation (the validated inputs are returned as they are, ``k_used`` None).
    k : int, optional
        Required for ``"kth"`` (``1 <= k <= D``).

    Returns
    -------
    lower, upper : ndarray of shape (n,) (or floats for 1-D input)
        With ``method=None``: float64 arrays of the input shape.
    k_used : ndarray of int of shape (n,) (or int), or None for ``method=None``

    Examples
    --------
    >>> from fstat.causal import aggregate_bounds
    >>> aggregate_bounds([0.0, 1.0, 2.0], [5.0, 4.0, 3.0], method="intersection")
    (2.0, 3.0, 1)
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    if lower.shape != upper.shape:
        raise ValueError(
            f"lower and upper must have the same shape; got {lower.shape} and {upper.shape}."
        )
    one_row = lower.ndim == 1
    if one_row:
        lower, upper = lower[None, :], upper[None, :]
    if lower.ndim != 2 or lower.shape[1] == 0:
        raise ValueError(f"lower and upper must be (n, D) or (D,) with D >= 1; got {lower.shape}.")
    if not (np.all(~np.isnan(lower)) and np.all(~np.isnan(upper))):
        raise ValueError("lower and upper must not contain NaN.")
    n, d = lower.shape
    if method is None:  # no aggregation: copies, never the caller's arrays
        return (lower[0].copy(), upper[0].copy(), None) if one_row else (
            lower.copy(), upper.copy(), None)
    if method not in AGGREGATIONS:
        raise ValueError(
            f"method must be one of {AGGREGATIONS} or None; got method={method!r}.")
    if method == "kth":
        if k is None or isinstance(k, bool) or not isinstance(k, int | np.integer) or not (
            1 <= k <= d
        ):
            raise ValueError(f"method='kth' needs an integer k in [1, {d}]; got k={k!r}.")
        k_used = np.full(n, int(k))
    elif method == "intersection":
        k_used = np.ones(n, dtype=int)
    elif method == "union":
        k_used = np.full(n, d)
    else:  # adaptive
        k_used = np.full(n, d)
        lo_sorted = -np.sort(-lower, axis=1)
        up_sorted = np.sort(upper, axis=1)
        ok = lo_sorted <= up_sorted
        found = ok.any(axis=1)
        k_used[found] = np.argmax(ok[found], axis=1) + 1
        if not np.all(found):
            warn_user(
                f"aggregation='adaptive': {np.mean(~found):.1%} of rows are inverted even for "
                "the union; they are returned unchanged.",
                InvertedBoundsWarning,
            )
    k_used = k_used.astype(int)
    lo, up = _kth(lower, upper, k_used)
    if one_row:
        return float(lo[0]), float(up[0]), int(k_used[0])
    return lo, up, k_used
