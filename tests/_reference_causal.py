"""Slow, obviously-correct references for the causal-bounds tests (R1, R2)."""

import math

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from fstat.divergences import get_divergence


def _g(div, s):
    """Perspective g(s) = s f(1/s) with g(0) = lim (computed as a small-s value)."""
    s = np.maximum(np.asarray(s, dtype=float), 1e-14)
    return s * div.f(1.0 / s)


def primal_upper(y, w, eta, divergence, lo=None, hi=None, n_starts=2, seed=0):
    """R1: maximise sum q y over atoms + phantom atoms at lo/hi under the divergence budget.

    Variables: ratios s_j = q_j / p_j >= 0 on the atoms and phantom masses m_lo, m_hi >= 0.
    """
    div = get_divergence(divergence)
    y = np.asarray(y, float)
    p = np.asarray(w, float) / np.sum(w)
    lo = y.min() if lo is None else lo
    hi = y.max() if hi is None else hi
    n = y.size
    rng = np.random.default_rng(seed)

    def unpack(x):
        return x[:n], x[n], x[n + 1]

    def objective(x):
        s, m_lo, m_hi = unpack(x)
        return -(np.dot(p * s, y) + m_lo * lo + m_hi * hi)

    def budget(x):
        s, m_lo, m_hi = unpack(x)
        return eta - np.dot(p, _g(div, s)) - div.f0 * (m_lo + m_hi)

    def mass(x):
        s, m_lo, m_hi = unpack(x)
        return np.dot(p, s) + m_lo + m_hi - 1.0

    best = -np.inf
    for k in range(4 * n_starts):  # more random starts only while none was feasible
        if k >= n_starts and best > -np.inf:
            break
        s0 = np.ones(n) if k == 0 else rng.uniform(0.5, 1.5, n)
        x0 = np.concatenate([s0 / np.dot(p, s0), [0.0, 0.0]])
        res = minimize(
            objective, x0, method="SLSQP",
            bounds=[(1e-9, None)] * n + [(0.0, 1.0), (0.0, 1.0)],
            constraints=[{"type": "ineq", "fun": budget}, {"type": "eq", "fun": mass}],
            options={"ftol": 1e-13, "maxiter": 1000},
        )
        if budget(res.x) > -1e-9 and abs(mass(res.x)) < 1e-9:
            best = max(best, -res.fun)
    return best


def nested_dual_upper(y, w, eta, divergence, hi=None):
    """R2: inf over lam of [lam eta + inf_u (u + lam E g*((y - u)/lam))], nested Brent."""
    div = get_divergence(divergence)
    y = np.asarray(y, float)
    p = np.asarray(w, float) / np.sum(w)
    hi = y.max() if hi is None else hi
    scale = max(y.max() - y.min(), 1.0)

    def inner(lam):
        u_min = hi - lam * div.f0

        def psi(u):
            with np.errstate(all="ignore"):
                val = u + lam * np.dot(p, div.conjugate((y - u) / lam))
            return val if np.isfinite(val) else 1e300

        width = 4.0 * (scale + lam * (1.0 + abs(div.f0))) + 1.0
        # golden/Brent on a log-spaced offset so that u -> u_min is resolved
        res = minimize_scalar(lambda v: psi(u_min + math.exp(v)), bounds=(-45.0, math.log(width)),
                              method="bounded", options={"xatol": 1e-13, "maxiter": 1000})
        best = res.fun
        edge = psi(u_min)
        return min(best, edge)

    res = minimize_scalar(lambda v: math.exp(v) * eta + inner(math.exp(v)),
                          bounds=(math.log(1e-10 * scale), math.log(1e7 * scale)),
                          method="bounded", options={"xatol": 1e-13, "maxiter": 1000})
    return float(res.fun)


def divergence_value(p, q, divergence):
    """Generalised D_f(P || Q) on a common finite grid (Q may charge points where P has none)."""
    div = get_divergence(divergence)
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    on_p = p > 0
    total = 0.0
    with np.errstate(all="ignore"):
        s = q[on_p] / p[on_p]
        g = np.where(s > 0, s * div.f(1.0 / np.where(s > 0, s, 1.0)), np.nan)
        g0 = float(div.g(1e-300)) if divergence != "kl" and divergence != "chi2" else np.inf
        g = np.where(s > 0, g, g0)
    total += float(np.dot(p[on_p], g))
    total += div.f0 * float(q[~on_p].sum())
    return total
