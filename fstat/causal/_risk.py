"""Amortised dual risk of the conditional bounds and the smooth surrogate conjugate."""

from __future__ import annotations

import numpy as np

from .._validation import check_array_finite, check_sample_weight, check_treatment
from ..divergences import get_divergence

__all__ = ["dual_risk", "surrogate_conjugate"]


def surrogate_conjugate(t, div, margin, penalty):
    """The convex C^1 surrogate of ``g*``: exact for ``t <= t0 = f(0) - margin``, quadratic beyond.

    Works on numpy arrays and torch tensors (``where`` keeps gradients finite).
    """
    t0 = float(div.f0) - float(margin)
    g_t0 = float(div.conjugate(np.float64(t0)))
    d_t0 = float(div.conjugate_derivative(np.float64(t0)))
    try:
        import torch

        is_torch = isinstance(t, torch.Tensor)
    except ImportError:  # pragma: no cover
        is_torch = False
    if is_torch:
        inside = t <= t0
        exact = div.conjugate(torch.where(inside, t, torch.full_like(t, t0)))
        excess = t - t0
        tangent = g_t0 + d_t0 * excess + 0.5 * penalty * excess * excess
        return torch.where(inside, exact, tangent)
    t = np.asarray(t, dtype=np.float64)
    inside = t <= t0
    exact = div.conjugate(np.where(inside, t, t0))
    excess = t - t0
    return np.where(inside, exact, g_t0 + d_t0 * excess + 0.5 * penalty * excess * excess)


def dual_risk(y, treatment, propensity, lam, u, *, divergence, debiased=True, sample_weight=None,
              surrogate=None, reduce="mean"):
    """Amortised (optionally debiased) dual risk of the conditional upper bound.

    .. math::

        \\ell = \\lambda_A [B_f(\\hat e_A) + g^*((y - u_A)/\\lambda_A)] + u_A, \\qquad
        \\ell_{db} = \\ell + \\sum_{a} \\hat e_a \\lambda_a B_f'(\\hat e_a)(1\\{A=a\\} - \\hat e_a).

    Its expectation is :math:`E_X \\sum_a e_a(X) F_{a,X}(\\lambda_a, u_a)`; the correction makes
    it first-order insensitive to the propensity (Neyman orthogonality).

    Parameters
    ----------
    y : array-like of shape (n,)
    treatment : array-like of shape (n,)
        Binary 0/1.
    propensity : array-like of shape (n,)
        :math:`\\hat e_1(x_i)` in (0, 1).
    lam, u : array-like of shape (n, 2)
        Dual variables at arm 0 and arm 1 for each sample (``lam > 0``).
    divergence : str or FDivergence
    debiased : bool, default=True
    sample_weight : array-like of shape (n,), optional
    surrogate : None or (margin, penalty), default=None
        ``None`` uses the exact conjugate (``+inf`` for infeasible samples); a pair uses the
        smooth surrogate of the conditional estimator's training loss.
    reduce : {"mean", None}, default="mean"
        Weighted mean, or the per-sample values.

    Returns
    -------
    float or ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.causal import dual_risk
    >>> lam = np.ones((2, 2)); u = np.full((2, 2), 1.0)
    >>> round(float(dual_risk([0.0, 0.5], [0, 1], [0.5, 0.5], lam, u, divergence="kl")), 6)
    1.039721
    """
    div = get_divergence(divergence)
    y = check_array_finite(np.ravel(y), "y", ensure_2d=False)
    n = y.size
    a = check_treatment(treatment, n_samples=n)
    e1 = np.asarray(propensity, dtype=np.float64).ravel()
    if e1.shape != (n,) or np.any(~np.isfinite(e1)) or np.any((e1 <= 0) | (e1 >= 1)):
        raise ValueError("propensity must be an (n,) array with values in (0, 1).")
    lam = np.asarray(lam, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    if lam.shape != (n, 2) or u.shape != (n, 2):
        raise ValueError(f"lam and u must have shape ({n}, 2); got {lam.shape} and {u.shape}.")
    if np.any(~(lam > 0)):
        raise ValueError("lam must be positive.")
    if not np.all(np.isfinite(lam)) or not np.all(np.isfinite(u)):
        raise ValueError("lam and u must be finite.")
    if reduce not in ("mean", None):
        raise ValueError(f"reduce must be 'mean' or None; got reduce={reduce!r}.")
    e = np.column_stack([1.0 - e1, e1])
    rows = np.arange(n)
    lam_a, u_a, e_a = lam[rows, a], u[rows, a], e[rows, a]
    t = (y - u_a) / lam_a
    if surrogate is None:
        g = div.conjugate(t)
    else:
        margin, penalty = surrogate
        g = surrogate_conjugate(t, div, margin, penalty)
    with np.errstate(invalid="ignore"):
        loss = lam_a * (div.radius(e_a) + g) + u_a
    if debiased:
        onehot = np.column_stack([a == 0, a == 1]).astype(np.float64)
        loss = loss + np.sum(e * lam * div.radius_derivative(e) * (onehot - e), axis=1)
    if reduce is None:
        return loss
    w = check_sample_weight(sample_weight, y)
    return float(np.dot(w, loss) / w.sum())
