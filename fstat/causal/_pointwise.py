"""Exact f-divergence bounds on a weighted discrete law, and Manski bounds.

The upper bound ``sup{E_Q y : Q on S, D_f(P || Q) <= eta}`` is computed from its convex dual

    inf_{lam > 0, u}  F(lam, u) = lam * eta + u + lam * E_P[g*((y - u) / lam)]
    subject to        u + lam * f(0) >= sup S,

with closed forms (TV: move mass to ``sup S``; KL: a one-dimensional convex profile), a damped
Newton method with an active set for the linear support constraint, and a nested bounded-Brent
fallback. The lower bound is always minus the upper bound of ``-y`` (same code path).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from sklearn.exceptions import ConvergenceWarning

from ..divergences import get_divergence

__all__ = ["manski_bounds", "pointwise_bounds"]

_METHODS = ("auto", "newton", "nested", "closed_form")
_MAX_NEWTON = 100


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------


def _check_values_weights(values, weights):
    y = np.asarray(values, dtype=np.float64)
    if y.ndim == 0:
        y = y.reshape(1)
    if y.ndim != 1:
        raise ValueError(f"values must be 1-D; got an array of shape {y.shape}.")
    if y.size == 0:
        raise ValueError("values is empty; at least one value is required.")
    if not np.all(np.isfinite(y)):
        raise ValueError("values contains non-finite values (NaN or inf).")
    if weights is None:
        w = np.ones_like(y)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != y.shape:
            raise ValueError(
                f"weights must have the same shape as values {y.shape}; got {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative.")
        if not w.sum() > 0:
            raise ValueError("weights must have a positive sum.")
    return y, w


def _check_support(support, y, w):
    """Return ``(lo, hi, declared)``; the observed range uses values with positive weight."""
    pos = y[w > 0]
    if support is None:
        return float(pos.min()), float(pos.max()), False
    try:
        lo, hi = (float(v) for v in support)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"support must be None or a pair (lo, hi); got {support!r}.") from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"support must be a finite pair with lo <= hi; got {support!r}.")
    if pos.min() < lo or pos.max() > hi:
        outside = int(np.sum((pos < lo) | (pos > hi)))
        raise ValueError(
            f"{outside} value(s) lie outside support=({lo!r}, {hi!r}); the extremes are "
            f"{pos.min()!r} and {pos.max()!r}."
        )
    return lo, hi, True


def _collapse(y, w):
    """Unique values with positive weight, summed weights normalised to one."""
    keep = w > 0
    unique, inverse = np.unique(y[keep], return_inverse=True)
    summed = np.bincount(inverse, weights=w[keep], minlength=unique.size)
    return unique, summed / summed.sum()


def _g_at_zero(div):
    """``g(0) = lim_{s -> 0} s f(1/s)`` (``inf`` when it diverges)."""
    g0 = getattr(div, "_g0", float("nan"))
    if not math.isnan(g0):
        return g0
    with np.errstate(all="ignore"):
        a, b = (float(s * div.f(1.0 / s)) for s in (1e-10, 1e-12))
    if math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-6 * (1.0 + abs(b)):
        return b
    return math.inf


# ----------------------------------------------------------------------------------------------
# the dual objective on a standardised law
# ----------------------------------------------------------------------------------------------


class _Dual:
    """Dual objective of the upper bound for standardised atoms ``z`` with weights ``w``."""

    def __init__(self, z, w, eta, hi, div):
        self.z, self.w, self.eta, self.hi, self.div = z, w, eta, hi, div
        self.f0 = div.f0
        self.top = float(z[-1])
        self.n_eval = 0

    def feasible(self, lam, u):
        # tolerance: points computed on the boundary as u = hi - lam f0 must count as feasible
        return lam > 0 and u + lam * self.f0 >= self.hi - 1e-13 * (1.0 + abs(self.hi))

    def value(self, lam, u):
        if not self.feasible(lam, u):
            return math.inf
        self.n_eval += 1
        gs = self.div.conjugate((self.z - u) / lam)
        value = lam * self.eta + u + lam * float(np.dot(self.w, gs))
        return value if math.isfinite(value) else math.inf

    def derivatives(self, lam, u):
        t = (self.z - u) / lam
        g0 = self.div.conjugate(t)
        g1 = self.div.conjugate_derivative(t)
        g2 = self.div.conjugate_second_derivative(t)
        w = self.w
        value = lam * self.eta + u + lam * float(np.dot(w, g0))
        grad = np.array([self.eta + float(np.dot(w, g0 - t * g1)), 1.0 - float(np.dot(w, g1))])
        wt = w * g2
        h_ll, h_lu, h_uu = float(np.dot(wt, t * t)), float(np.dot(wt, t)), float(wt.sum())
        hess = np.array([[h_ll, h_lu], [h_lu, h_uu]]) / lam
        return value, grad, hess

    def ratio(self, lam, u):
        return np.asarray(self.div.conjugate_derivative((self.z - u) / lam), dtype=np.float64)

    def boundary_min(self):
        """Minimise along the boundary ``u = hi - lam f0`` (1-D convex in ``lam``)."""

        def phi(log_lam):
            lam = math.exp(log_lam)
            return self.value(lam, self.hi - lam * self.f0)

        res = minimize_scalar(
            phi, bounds=(math.log(1e-12), math.log(1e8)), method="bounded",
            options={"xatol": 1e-12, "maxiter": 500},
        )
        lam = math.exp(res.x)
        return lam, self.hi - lam * self.f0


def _newton(dual):
    """Damped Newton with an active set; returns ``(lam, u, converged, n_iter)``."""
    eta, f0, hi = dual.eta, dual.f0, dual.hi
    lam = min(max(1.0 / math.sqrt(2.0 * eta), 1e-3), 1e3)
    u = max(dual.top, hi) - lam * f0 + lam
    can_be_active = hi > dual.top or dual.div.domain_closed
    boundary_checked = False
    for it in range(1, _MAX_NEWTON + 1):
        with np.errstate(all="ignore"):
            value, grad, hess = dual.derivatives(lam, u)
        if not (math.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
            return lam, u, False, it
        reg = 1e-12 * max(np.trace(hess), 1e-300)
        try:
            step = -np.linalg.solve(hess + reg * np.eye(2), grad)
        except np.linalg.LinAlgError:
            return lam, u, False, it
        decrement2 = -float(grad @ step)
        if not np.all(np.isfinite(step)) or decrement2 < 0:
            return lam, u, False, it
        if decrement2 / 2.0 < 1e-14 * (1.0 + abs(value)):
            # a huge Hessian (atoms at the domain edge) can fake a small decrement: check KKT
            return lam, u, bool(np.max(np.abs(grad)) < 1e-8), it
        if lam < 1e-12:  # non-binding balls are detected up front: this is a failure
            return lam, u, False, it
        if (
            can_be_active
            and not boundary_checked
            and (u + step[1]) + (lam + step[0]) * f0 < hi
        ):
            boundary_checked = True
            with np.errstate(all="ignore"):
                b_lam, b_u = dual.boundary_min()
            with np.errstate(all="ignore"):
                f_u = 1.0 - float(np.dot(dual.w, dual.ratio(b_lam, b_u)))
            if f_u >= -1e-10:  # KKT with a non-negative multiplier: global optimum
                return b_lam, b_u, True, it
            if dual.value(b_lam, b_u) < value:  # leave the boundary from its best point
                lam, u = b_lam, b_u + 1e-12 * (1.0 + abs(b_u))
                continue
        slope = float(grad @ step)
        alpha = 1.0
        while alpha > 1e-20:
            c_lam, c_u = lam + alpha * step[0], u + alpha * step[1]
            with np.errstate(all="ignore"):
                c_value = dual.value(c_lam, c_u)
            if c_value <= value + 1e-4 * alpha * slope:
                break
            alpha *= 0.5
        else:
            # no decrease is possible at machine precision: accept if already stationary
            return lam, u, decrement2 < 1e-10 * (1.0 + abs(value)), it
        lam, u = c_lam, c_u
    return lam, u, False, _MAX_NEWTON


def _nested(dual):
    """Outer bounded Brent on ``log lam``; inner bounded Brent on ``log(u - u_min(lam))``."""
    z, f0, hi = dual.z, dual.f0, dual.hi
    spread = float(z[-1] - z[0])
    closed_boundary = hi > dual.top or dual.div.domain_closed

    def inner(lam):
        u_min = hi - lam * f0
        v_max = math.log(2.0 * (spread + lam + abs(f0) * lam) + 1.0) + 3.0

        def psi(v):
            return dual.value(lam, u_min + math.exp(v))

        res = minimize_scalar(psi, bounds=(-40.0, v_max), method="bounded",
                              options={"xatol": 1e-12, "maxiter": 500})
        best_value, best_u = float(res.fun), u_min + math.exp(res.x)
        if closed_boundary:
            edge = dual.value(lam, u_min)
            if edge < best_value:
                best_value, best_u = edge, u_min
        return best_value, best_u

    with np.errstate(all="ignore"):
        return _nested_solve(inner)


def _nested_solve(inner):
    res = minimize_scalar(
        lambda log_lam: inner(math.exp(log_lam))[0],
        bounds=(math.log(1e-12), math.log(1e8)), method="bounded",
        options={"xatol": 1e-12, "maxiter": 500},
    )
    lam = math.exp(res.x)
    value, u = inner(lam)
    return lam, u, bool(res.success) and math.isfinite(value), int(res.nfev)


def _kl_profile(dual):
    """KL: ``min_{u >= hi, u > top} u - exp(-eta) exp(E log(u - y))``; returns ``(lam, u)``."""
    z, w, eta, hi, top = dual.z, dual.w, dual.eta, dual.hi, dual.top
    base = max(hi, top)
    gap = base - z  # >= 0, exact; u - z = gap + excess with excess = u - base

    def slope(excess):
        d = gap + excess
        return 1.0 - math.exp(float(np.dot(w, np.log(d))) - eta) * float(np.dot(w, 1.0 / d))

    if hi > top and slope(0.0) >= 0.0:
        excess = 0.0
    else:
        scale = 1.0 + float(z[-1] - z[0])

        def root(v):
            return slope(math.exp(v))

        lo_v, hi_v = -60.0, math.log(scale) + 1.0
        while root(hi_v) < 0.0:
            hi_v += 2.0
        while root(lo_v) > 0.0 and lo_v > -700.0:  # pragma: no cover - extreme laws
            lo_v -= 60.0
        v = brentq(root, lo_v, hi_v, xtol=1e-14, rtol=1e-15, maxiter=500)
        excess = math.exp(v)
    lam = math.exp(float(np.dot(w, np.log(gap + excess))) - eta)
    return lam, base + excess


def _tv_closed_form(dual):
    """TV: move mass ``min(eta, 1)`` from the lowest values to ``sup S``."""
    z, w, hi = dual.z, dual.w, dual.hi
    delta = min(dual.eta, 1.0)
    cum = np.cumsum(w)
    k = int(np.searchsorted(cum, delta - 1e-15 * max(delta, 1.0), side="left"))
    k = min(k, z.size - 1)
    q = float(z[k])  # the delta-quantile (lowest value reached by the removed mass)
    before = float(cum[k - 1]) if k > 0 else 0.0
    removed = np.zeros_like(w)
    removed[:k] = w[:k]
    removed[k] = min(max(delta - before, 0.0), w[k])
    value = float(np.dot(w - removed, z)) + delta * hi
    ratio = 1.0 - removed / w
    if z[-1] == hi:  # the moved mass lands on the top atom, not on a phantom point
        ratio[-1] += delta / w[-1]
    lam = hi - q
    return lam, (hi + q) / 2.0, value, ratio


# ----------------------------------------------------------------------------------------------
# the upper bound (one side)
# ----------------------------------------------------------------------------------------------


def _upper(y, w, eta, hi, div, method):
    """Upper bound of ``E_Q y`` for the weighted law (y, w) with ``sup S = hi``; returns info."""
    atoms, probs = _collapse(y, w)
    info = {"method": None, "converged": True, "n_iter": 0, "binding": True}
    mean = float(np.dot(probs, atoms))
    sd = math.sqrt(float(np.dot(probs, (atoms - mean) ** 2)))
    spread = max(hi, atoms[-1]) - atoms[0]
    if spread <= 0.0:
        return _finish(info, "trivial", 0.0, atoms[0], float(atoms[0]), np.ones(atoms.size),
                       atoms, binding=False)
    if eta <= 1e-14:
        return _finish(info, "trivial", math.inf, mean, mean, np.ones(atoms.size),
                       atoms, binding=False)
    scale = sd if sd > 0.0 else spread
    z = (atoms - mean) / scale
    z_hi = (hi - mean) / scale
    dual = _Dual(z, probs, eta, z_hi, div)

    # a ball that contains the point mass at sup S: the bound is sup S
    p_top = float(probs[-1]) if atoms[-1] == hi else 0.0
    g0 = _g_at_zero(div)
    if p_top > 0.0:
        reach = p_top * float(div.g(1.0 / p_top)) + (1.0 - p_top) * g0
    else:
        reach = g0 + div.f0
    if reach <= eta:
        ratio = np.zeros(atoms.size)
        if p_top > 0.0:
            ratio[-1] = 1.0 / p_top
        return _finish(info, "non_binding", 0.0, hi, hi, ratio, atoms, binding=False)

    numeric = {"conjugate", "conjugate_second_derivative"} & set(div.numeric)
    if method == "closed_form" and div.name not in ("tv", "kl"):
        raise ValueError(
            f"method='closed_form' is only available for 'tv' and 'kl'; got divergence "
            f"{div.name!r}."
        )
    use_closed = method == "closed_form" or (method == "auto" and div.name in ("tv", "kl"))
    if use_closed and div.name == "tv":
        lam, u, value, ratio = _tv_closed_form(dual)
        info.update(method="closed_form", n_iter=1)
        return _finish(info, "closed_form", lam * scale, mean + scale * u,
                       mean + scale * value, ratio, atoms)
    if use_closed and div.name == "kl":
        lam, u = _kl_profile(dual)
        return _from_dual(info, "closed_form", dual, lam, u, True, 1, mean, scale,
                          atoms)
    if method in ("auto", "newton") and not numeric:
        lam, u, ok, n_iter = _newton(dual)
        if ok:
            return _from_dual(info, "newton", dual, lam, u, True, n_iter, mean, scale,
                              atoms)
    lam, u, ok, n_iter = _nested(dual)
    if not ok:
        warnings.warn(
            f"pointwise_bounds did not converge for divergence {div.name!r} "
            f"(eta={eta!r}); the returned bound may be inaccurate.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return _from_dual(info, "nested", dual, lam, u, ok, n_iter, mean, scale, atoms)


def _from_dual(info, method, dual, lam, u, converged, n_iter, mean, scale, atoms):
    with np.errstate(all="ignore"):
        value = dual.value(lam, u)
        ratio = dual.ratio(lam, u)
    if lam < 1e-12:
        value = dual.hi
    info.update(converged=bool(converged), n_iter=int(n_iter))
    return _finish(info, method, lam * scale, mean + scale * u, mean + scale * value, ratio,
                   atoms)


def _finish(info, method, lam, u, value, ratio_atoms, atoms, binding=True):
    info.update(method=method, lam=float(lam), u=float(u), value=float(value),
                ratio=np.asarray(ratio_atoms, dtype=np.float64), atoms=atoms,
                binding=bool(binding))
    return info


# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------


def _resolve_eta(div, propensity, radius):
    if (propensity is None) == (radius is None):
        raise ValueError(
            "pass exactly one of propensity= (radius B_f(e)) or radius= (the divergence "
            f"budget directly); got propensity={propensity!r}, radius={radius!r}."
        )
    if radius is not None:
        eta = float(radius)
        if not (math.isfinite(eta) and eta >= 0.0):
            raise ValueError(f"radius must be a finite number >= 0; got radius={radius!r}.")
        return eta
    e = float(propensity)
    if not (0.0 < e <= 1.0):
        raise ValueError(f"propensity must lie in (0, 1]; got propensity={propensity!r}.")
    eta = float(div.radius(e))
    if not math.isfinite(eta):
        raise ValueError(
            f"divergence {div.name!r} has f(0) = inf: its radius is infinite for "
            f"propensity={e!r} < 1, so it gives no bound."
        )
    return max(eta, 0.0)


def pointwise_bounds(values, propensity=None, *, divergence="kl", weights=None, radius=None,
                     support=None, method="auto", return_info=False):
    """Exact f-divergence bounds on the mean of a weighted discrete law.

    Computes ``sup`` and ``inf`` of :math:`E_Q[y]` over laws :math:`Q` on the support
    :math:`S` with :math:`D_f(P \\| Q) \\le \\eta`, where :math:`P` is the weighted empirical law
    of ``values`` and :math:`\\eta = B_f(e)` (or ``radius``). The upper bound solves the convex
    dual :math:`\\inf_{\\lambda > 0, u} \\lambda\\eta + u + \\lambda E_P[g^*((y - u)/\\lambda)]`
    subject to :math:`u + \\lambda f(0) \\ge \\sup S`; the lower bound is minus the upper bound of
    ``-values`` (the same code path, so ``lower(y) == -upper(-y)`` exactly).

    Parameters
    ----------
    values : array-like of shape (n,)
        Outcome values (atoms of the law).
    propensity : float in (0, 1], optional
        The arm's propensity :math:`e`; the radius is :math:`B_f(e) = e f(1/e) + (1-e) f(0)`.
        Exactly one of ``propensity`` and ``radius`` must be given.
    divergence : str or FDivergence, default="kl"
        Any divergence of :mod:`fstat.divergences` with finite ``f(0)``.
    weights : array-like of shape (n,), optional
        Non-negative weights (normalised internally); ties are collapsed.
    radius : float >= 0, optional
        The divergence budget :math:`\\eta` directly (an f-sensitivity model).
    support : (lo, hi) or None, default=None
        Declared outcome support :math:`S = [lo, hi]`; ``None`` uses the observed atoms.
    method : {"auto", "newton", "nested", "closed_form"}, default="auto"
        ``"auto"``: closed forms for TV and KL, damped Newton otherwise, nested 1-D solver as
        fallback.
    return_info : bool, default=False
        Also return a dict with keys ``"upper"`` and ``"lower"`` holding ``lam``, ``u``,
        ``value``, ``ratio`` (worst-case likelihood ratio per input value), ``phantom_mass``,
        ``converged``, ``n_iter``, ``method``, ``binding``. For the lower side, ``lam`` and ``u``
        are the dual variables of the ``-y`` problem.

    Returns
    -------
    lower, upper : float
    info : dict
        Only when ``return_info=True``.

    Examples
    --------
    >>> from fstat.causal import pointwise_bounds
    >>> lower, upper = pointwise_bounds([0, 1, 2, 3], propensity=0.5, divergence="tv",
    ...                                 support=(0, 3))
    >>> round(lower, 6), round(upper, 6)
    (0.5, 2.5)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got method={method!r}.")
    div = get_divergence(divergence)
    if not math.isfinite(div.f0):
        raise ValueError(
            f"divergence {div.name!r} has f(0) = inf and gives no bound; use one of "
            "'kl', 'hellinger', 'chi2', 'tv', 'js'."
        )
    y, w = _check_values_weights(values, weights)
    lo, hi, _ = _check_support(support, y, w)
    eta = _resolve_eta(div, propensity, radius)
    up = _side(y, w, eta, hi, div, method, return_info)
    down = _side(-y, w, eta, -lo, div, method, return_info)
    lower, upper = -down["value"], up["value"]
    if not return_info:
        return lower, upper
    return lower, upper, {"upper": up, "lower": down}


def _side(y, w, eta, hi, div, method, with_ratio=True):
    info = _upper(y, w, eta, hi, div, method)
    if not with_ratio:  # the per-value worst-case ratio costs a search over n values
        return info
    atoms = info["atoms"]
    # worst-case ratio per input value (zero-weight values get their atom's ratio if any)
    idx = np.clip(np.searchsorted(atoms, y), 0, atoms.size - 1)
    ratio = np.where(atoms[idx] == y, info["ratio"][idx], 0.0)
    del info["atoms"]
    wn = w / w.sum()
    info["ratio"] = ratio
    info["phantom_mass"] = float(max(1.0 - np.dot(wn, ratio), 0.0))
    return info


def manski_bounds(values, propensity, *, weights=None, support=None):
    """Assumption-free (Manski) bounds on the interventional mean of one arm.

    :math:`[e\\,\\bar y + (1 - e)\\,lo,\\; e\\,\\bar y + (1 - e)\\,hi]` with :math:`\\bar y` the
    (weighted) mean of the arm's outcomes and :math:`[lo, hi]` the support.

    Parameters
    ----------
    values : array-like of shape (n,)
    propensity : float in (0, 1]
    weights : array-like of shape (n,), optional
    support : (lo, hi) or None, default=None
        ``None`` uses the observed range.

    Returns
    -------
    lower, upper : float

    Examples
    --------
    >>> from fstat.causal import manski_bounds
    >>> manski_bounds([1.0, 3.0], 0.5, support=(0, 4))
    (1.0, 3.0)
    """
    y, w = _check_values_weights(values, weights)
    lo, hi, _ = _check_support(support, y, w)
    e = float(propensity)
    if not (0.0 < e <= 1.0):
        raise ValueError(f"propensity must lie in (0, 1]; got propensity={propensity!r}.")
    mean = float(np.dot(w, y) / w.sum())
    return e * mean + (1.0 - e) * lo, e * mean + (1.0 - e) * hi
