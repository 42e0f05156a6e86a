"""Kernel widths for the Cauchy--Schwarz estimators: rules, validation, degenerate guard.

The rules themselves (median of pairwise Euclidean distances with numpy's even-count
convention, Silverman's rule) live in :mod:`fstat.kernels._gram`; this module adds the
public :func:`kernel_width`, the degenerate-width fallback of the specification (a rule
result at or below ``1e-12 * (1 + RMS norm of the centred data)`` becomes 1.0 with a
``UserWarning``) and the detached per-batch resolution used in training. The median is
the plain ``numpy.median(pdist(X))``: a zero median (mostly duplicate rows) is degenerate,
not replaced by the mean of the non-zero distances as in :func:`median_heuristic`.
"""

from __future__ import annotations

import math
import numbers

import torch

from .._validation import check_integer
from .._warnings import warn_user
from ..kernels._gram import (
    batch_medians_from_sq_dists,
    median_and_total_from_sq_dists,
    median_width,
    silverman_rule,
)

__all__ = ["kernel_width"]

_RULES = ("median", "silverman")


def check_width(sigma, name="sigma"):
    """Validate a width specification; return a rule name or a positive float."""
    if isinstance(sigma, str):
        if sigma not in _RULES:
            raise ValueError(
                f"{name} must be a positive float, 'median' or 'silverman'; got {name}={sigma!r}."
            )
        return sigma
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise ValueError(
            f"{name} must be a positive float, 'median' or 'silverman'; got {name}={sigma!r}."
        )
    value = float(sigma)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0; got {name}={sigma!r}.")
    return value


def _rms_norm(X):
    X = X.to(torch.float64)
    centred = X - X.mean(dim=0, keepdim=True)
    return float(centred.square().sum(dim=1).mean().sqrt())


def rule_width(X, rule, *, scale=1.0, max_samples=2000, generator=None, name="sigma"):
    """Compute ``rule`` on the tensor ``X`` (no autograd) with the degenerate fallback.

    Returns ``(width, degenerate)``; a degenerate result is 1.0 (not scaled) and the
    caller decides whether to warn (training warns once per fit).
    """
    with torch.no_grad():
        X = X.detach()
        if X.dim() == 1:
            X = X[:, None]
        exponent = _large_data_exponent(X)
        if exponent:  # squared differences would overflow: the rules are scale equivariant
            X = X * math.ldexp(1.0, -exponent)
        if rule == "median":
            width, problem = median_width(X, max_samples=max_samples, random_state=generator,
                                          zero_fallback=False)
        else:
            width, problem = silverman_rule(X)
        if problem is not None:
            return 1.0, True
        width = _times_power_of_two(float(width), exponent)
        rms = _times_power_of_two(_rms_norm(X), exponent)
        if not width > 1e-12 * (1.0 + rms):
            return 1.0, True
    return width * float(scale), False


def _large_data_exponent(X):
    """``e`` with ``X * 2**-e`` of centred magnitude below 1 when the centred magnitude of
    ``X`` exceeds ``2**500`` (its squared differences then leave the float64 range), else 0."""
    top = float(X.abs().max())
    if not (0.0 < top < math.inf):
        return 0
    pre = math.frexp(top)[1]
    if pre <= 500:  # the centred magnitude is at most 2 top
        return 0
    scaled = X * math.ldexp(1.0, -pre)
    spread = float((scaled - scaled.mean(dim=0, keepdim=True)).abs().max())
    if spread == 0.0:
        return 0
    exponent = pre + math.frexp(spread)[1]
    return exponent if exponent > 500 else 0


def _times_power_of_two(value, exponent):
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.inf


def resolve_width(sigma, X, *, scale=1.0, max_samples=2000, generator=None, name="sigma",
                  warn=True):
    """Resolve a validated width specification on ``X`` to a float (rules times ``scale``)."""
    if not isinstance(sigma, str):
        return float(sigma)
    width, degenerate = rule_width(
        X, sigma, scale=scale, max_samples=max_samples, generator=generator, name=name
    )
    if degenerate and warn:
        warn_user(
            f"degenerate kernel width for {name} (rule {sigma!r} on data without spread or "
            "with mostly duplicate rows); using width 1.0.",
            UserWarning,
        )
    return width


def kernel_width(X, sigma="median", *, scale=1.0, max_samples=2000, random_state=None):
    """Resolve a Gaussian-kernel width: a rule on the data, or a validated number.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        Data for the rule; a 1-D array is one column.
    sigma : {"median", "silverman"} or float, default="median"
        ``"median"``: median Euclidean distance over pairs ``i < j`` (an even number
        of pairs averages the two middle values, like :func:`numpy.median`).
        ``"silverman"``: ``s (4 / ((d + 2) n))^(1 / (d + 4))`` with ``s`` the mean
        per-column standard deviation (``ddof=1``). A positive finite float is
        returned unchanged (``scale`` is not applied).
    scale : float, default=1.0
        Multiplier applied to rule results.
    max_samples : int, default=2000
        Above this many rows the median rule uses a random subset of rows.
    random_state : None, int or RandomState
        Draws that subset.

    Returns
    -------
    float
        The width. A degenerate rule result (all rows equal, a zero median because
        most pairs of rows coincide, or any width below ``1e-12 * (1 + RMS norm of
        the centred data)``) gives 1.0 with a ``UserWarning``.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.bottleneck import kernel_width
    >>> kernel_width(np.array([0.0, 1.0, 3.0]))
    2.0
    >>> kernel_width(np.array([0.0, 1.0, 3.0]), 0.5)
    0.5
    """
    sigma = check_width(sigma, "sigma")
    scale = check_width(scale, "scale")
    if not isinstance(sigma, str):
        return sigma
    from ._estimators import as_column_tensor

    X = as_column_tensor(X, "X", min_samples=1)
    if max_samples is not None:  # None: every row
        max_samples = check_integer(max_samples, "max_samples", minimum=2)
    generator = None
    if sigma == "median" and max_samples is not None and X.shape[0] > max_samples:
        from .._torch import make_generator

        generator = make_generator(random_state)
    return resolve_width(sigma, X, scale=scale, max_samples=max_samples, generator=generator,
                         name="sigma")



def width_from_sq_dists(D, X, rule, *, scale=1.0):
    """Like :func:`rule_width` but reuses the squared distances ``D = sq_dists(X)``.

    The median comes from ``D`` directly; the degenerate test uses the RMS norm
    ``sqrt(sum D / (2 n^2))`` of the centred data. Silverman's rule needs ``X``.
    Returns ``(width, degenerate)``.
    """
    if rule != "median":
        return rule_width(X, rule, scale=scale)
    if D.shape[0] < 2:
        return 1.0, True
    median, total = median_and_total_from_sq_dists(D)
    return _median_width(median, total, D.shape[0], scale)


def widths_from_sq_dists(D, X, rule, *, scale=1.0):
    """:func:`width_from_sq_dists` for each matrix of a stack ``X`` of shape (B, n, d),
    with ``D = batch_sq_dists(X)`` of shape (B, n, n) (one gather, one reduction).

    Returns a list of ``(width, degenerate)``, one per matrix.
    """
    if rule != "median":
        return [rule_width(x, rule, scale=scale) for x in X]
    with torch.no_grad():
        D = D.detach()
        n = D.shape[1]
        if n < 2:
            return [(1.0, True)] * D.shape[0]
        medians = batch_medians_from_sq_dists(D)
        totals = D.sum(dim=(1, 2)).tolist()
    return [_median_width(m, total, n, scale) for m, total in zip(medians, totals)]


def _median_width(median, total, n, scale):
    """``(median * scale, False)``, or ``(1.0, True)`` when the median is at most
    ``1e-12 (1 + rms)``, ``rms = sqrt(total / (2 n^2))`` (``total``: sum of the squared
    distances; ``rms`` is the RMS norm of the centred data)."""
    rms = math.sqrt(max(total / (2.0 * n * n), 0.0))
    if not median > 1e-12 * (1.0 + rms):
        return 1.0, True
    return float(median) * float(scale), False
