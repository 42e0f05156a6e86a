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
import sys

import numpy as np
import torch
from scipy.optimize import brentq, minimize_scalar
from sklearn.exceptions import ConvergenceWarning

from .._warnings import warn_user
from ..divergences import get_divergence

__all__ = ["manski_bounds", "pointwise_bounds"]

_METHODS = ("auto", "newton", "nested", "closed_form")
_MAX_NEWTON = 100
# the multiplier lam (standardised units) is searched in [1e-12, 1e8] first; huge radii (tiny
# propensities) have optima far below 1e-12 (chi2: lam* ~ e), and a search stopped there
# overshoots the bound by about 1e-12 eta, so the search then continues down to _LAM_MIN
_LAM_MIN = 1e-200
_MAX_LOG_STEP = 30.0
_LOG_LAM_BOUNDS = (math.log(1e-12), math.log(1e8))
_LOG_LAM_STEP = math.log(1e4)
_BRENT_OPTIONS = {"xatol": 1e-12, "maxiter": 500}


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------


def _real_array(values, name):
    """``values`` as float64, refusing complex input (numpy would drop the imaginary part)."""
    if np.iscomplexobj(values):
        raise ValueError(f"{name} must be real; got complex values.")
    return np.asarray(values, dtype=np.float64, order="C")  # layout-independent sums


def _check_values_weights(values, weights):
    y = _real_array(values, "values")
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
        w = _real_array(weights, "weights")
        if w.shape != y.shape:
            raise ValueError(
                f"weights must have the same shape as values {y.shape}; got {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative.")
        with np.errstate(over="ignore"):
            total = w.sum()
        if not total > 0:
            raise ValueError("weights must have a positive sum.")
        if not math.isfinite(total):  # finite weights whose sum overflows: only ratios matter
            w = w / w.max()
    return y, w


def _range_unit(lo, hi):
    """16 when the width of the support overflows a double, else 1.0.

    The smallest power of two with headroom that makes the width finite: dividing by it is
    exact (values far below the width stay normal numbers), and the bounds are affine
    equivariant, so results computed in that unit are multiplied back."""
    return 1.0 if math.isfinite(hi - lo) else 16.0


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
            f"{float(pos.min())!r} and {float(pos.max())!r}."
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


_LOG2 = math.log(2.0)


# Each kernel writes into preallocated buffers ``buf[1:5]`` (scratch, g*, g*', g*''): fresh
# arrays of n floats would be mapped and page-faulted on every pass, which costs several times
# the arithmetic at n = 1e5.


def _kl_kernel(t, order, buf):
    g0 = np.negative(t, out=buf[2])
    np.log(g0, out=g0)
    np.subtract(-1.0, g0, out=g0)  # -1 - log(-t)
    if order == 0:
        return g0
    g1 = np.reciprocal(t, out=buf[3])
    np.negative(g1, out=g1)  # -1 / t
    return g0, g1, np.multiply(g1, g1, out=buf[4])


def _hellinger_kernel(t, order, buf):
    a = np.multiply(t, -2.0, out=buf[1])
    a += 1.0
    np.reciprocal(a, out=a)  # 1 / (1 - 2t)
    g0 = np.multiply(t, a, out=buf[2])
    if order == 0:
        return g0
    g1 = np.multiply(a, a, out=buf[3])
    g2 = np.multiply(g1, a, out=buf[4])
    g2 *= 4.0
    return g0, g1, g2


def _chi2_kernel(t, order, buf):
    r = np.multiply(t, -2.0, out=buf[1])
    r += 1.0
    np.sqrt(r, out=r)  # sqrt(1 - 2t)
    g0 = np.add(r, 1.0, out=buf[2])
    np.divide(t, g0, out=g0)
    g0 *= 2.0  # 2t / (1 + sqrt(1 - 2t)) = 1 - sqrt(1 - 2t) without cancellation
    if order == 0:
        return g0
    g1 = np.reciprocal(r, out=buf[3])
    g2 = np.multiply(g1, g1, out=buf[4])
    g2 *= g1
    return g0, g1, g2


def _exp_in_place(a):
    """``exp`` of a float64 array in place, by torch's vectorised kernel (same memory, no copy):
    about 4x faster than ``numpy.exp`` on CPUs without AVX-512, and as accurate (< 1 ulp)."""
    t = torch.from_numpy(a)
    return torch.exp(t, out=t)


def _js_kernel(t, order, buf):
    # 2 - e^{2t}: near the domain end (log 2) / 2 its absolute error (~4e-16) matches what the
    # rounding of t = (z - u) / lam already causes, so expm1 (twice the cost of exp) buys nothing
    e2t = np.multiply(t, 2.0, out=buf[1])
    _exp_in_place(e2t)
    den = np.subtract(2.0, e2t, out=e2t)
    g0 = np.log(den, out=buf[2])
    g0 *= -0.5
    if order == 0:
        return g0
    # e^{2t} = 2 - den: accurate to 1e-16 absolutely, all the Newton sums need
    g1 = np.subtract(2.0, den, out=buf[3])
    g1 /= den
    g2 = np.divide(g1, den, out=buf[4])
    g2 *= 4.0
    return g0, g1, g2


# fused (g*, g*', g*'') of the built-in divergences on points inside the domain; the registry's
# wrappers (domain masks, NaN handling, torch dispatch) cost several passes over the data each
_KERNELS = {"kl": _kl_kernel, "hellinger": _hellinger_kernel, "chi2": _chi2_kernel,
            "js": _js_kernel}


class _Dual:
    """Dual objective of the upper bound for standardised atoms ``z`` with weights ``w``.

    The atoms need not be sorted or distinct; ``top`` is their maximum. Every ``t = (z - u) /
    lam`` is at most ``(top - u) / lam``, so the domain of ``g*`` is checked in O(1).
    """

    def __init__(self, z, w, eta, hi, div):
        self.z, self.w, self.eta, self.hi, self.div = z, w, eta, hi, div
        self.f0 = div.f0
        self.top = float(z.max())
        self.bottom = float(z.min())
        self.n_eval = 0
        # a list of scratch arrays shared with the other side of the call (they run one after
        # the other; fresh n-float arrays are page-faulted on first touch, which cost more
        # than a derivative pass at n = 1e5)
        self.buffer_pool = None
        self._kernel = _KERNELS.get(div.name) if get_divergence(div.name) is div else None
        self._buf = None

    def _buffers(self):
        if self._buf is None:
            pool = self.buffer_pool
            if pool and pool[0].shape == self.z.shape:
                self._buf = pool
            else:
                self._buf = [np.empty_like(self.z) for _ in range(5)]
                if pool is not None:
                    pool[:] = self._buf
        return self._buf

    def _t(self, lam, u):
        if self._kernel is None:
            return (self.z - u) / lam
        t = np.subtract(self.z, u, out=self._buffers()[0])
        t /= lam
        return t

    def feasible(self, lam, u):
        # tolerance: points computed on the boundary as u = hi - lam f0 must count as feasible
        return lam > 0 and u + lam * self.f0 >= self.hi - 1e-13 * (1.0 + abs(self.hi))

    def _in_domain(self, lam, u):
        t_top = (self.top - u) / lam
        return t_top <= self.f0 if self.div.domain_closed else t_top < self.f0

    def _conj(self, t, order):
        if self._kernel is not None:
            return self._kernel(t, order, self._buffers())
        if order == 0:
            return self.div.conjugate(t)
        return (self.div.conjugate(t), self.div.conjugate_derivative(t),
                self.div.conjugate_second_derivative(t))

    def value(self, lam, u):
        if not self.feasible(lam, u):
            return math.inf
        self.n_eval += 1
        if self._kernel is not None and not self._in_domain(lam, u):
            return math.inf
        gs = self._conj(self._t(lam, u), 0)
        value = lam * self.eta + u + lam * float(np.dot(self.w, gs))
        return value if math.isfinite(value) else math.inf

    def derivatives(self, lam, u):
        if self._kernel is not None and not self._in_domain(lam, u):
            return math.inf, np.full(2, np.nan), np.full((2, 2), np.nan)
        t = self._t(lam, u)
        g0, g1, g2 = self._conj(t, 2)
        w = self.w
        e0, e1 = float(np.dot(w, g0)), float(np.dot(w, g1))
        g2 *= w  # g1, g2 are scratch (kernel buffers or fresh arrays)
        g1 *= t
        et1 = float(np.dot(w, g1))
        h_uu, h_lu = float(g2.sum()), float(np.dot(g2, t))
        g2 *= t
        h_ll = float(np.dot(g2, t))
        value = lam * self.eta + u + lam * e0
        grad = np.array([self.eta + e0 - et1, 1.0 - e1])
        hess = np.array([[h_ll, h_lu], [h_lu, h_uu]]) / lam
        return value, grad, hess

    def ratio(self, lam, u):
        return np.asarray(self.div.conjugate_derivative((self.z - u) / lam), dtype=np.float64)

    def boundary_min(self, start=None):
        """Minimise along the boundary ``u = hi - lam f0`` (1-D convex in ``lam``): Newton in
        ``log lam`` from ``start`` (a few passes), bounded Brent when that fails."""
        if start is not None and start > 0.0:
            found = self._boundary_newton(start)
            if found is not None:
                lam, value, grad = found
                return lam, self.hi - lam * self.f0, value, grad
        lam, u = self._boundary_brent()
        value, grad, _ = self.derivatives(lam, u)
        return lam, u, value, grad

    def _boundary_newton(self, lam):
        """Newton in ``log lam`` along the boundary; ``(lam, value, grad)`` or ``None``."""
        direction = np.array([1.0, -self.f0])
        value, grad, hess = self.derivatives(lam, self.hi - lam * self.f0)
        for _ in range(40):
            d1 = float(grad @ direction)
            slope = lam * d1
            curv = lam * lam * float(direction @ hess @ direction) + slope
            if not (math.isfinite(value) and math.isfinite(curv) and curv > 0.0):
                return None
            # a step of more than _MAX_LOG_STEP in log lam (a factor of ~1e13) comes from a
            # nearly flat direction: capped, it keeps its sign and the line search decides
            step = max(-_MAX_LOG_STEP, min(-slope / curv, _MAX_LOG_STEP))
            # converged: a negligible step, or a predicted decrease (the Newton decrement)
            # below the rounding of the value -- at large n the slope is known only to its
            # rounding floor, and chasing it makes the line search wander
            if abs(step) < 1e-12 or -step * slope / 2.0 < 1e-14 * (1.0 + abs(value)):
                return lam, value, grad
            alpha = 1.0
            while alpha > 1e-10:
                c_lam = lam * math.exp(alpha * step)
                c_value, c_grad, c_hess = self.derivatives(c_lam, self.hi - c_lam * self.f0)
                if c_value <= value + 1e-4 * alpha * step * slope:
                    break
                alpha *= 0.5
            else:
                return (lam, value, grad) if abs(step) < 1e-8 else None
            lam, value, grad, hess = c_lam, c_value, c_grad, c_hess
        return None

    def _boundary_brent(self):

        def phi(log_lam):
            lam = math.exp(log_lam)
            return self.value(lam, self.hi - lam * self.f0)

        log_lam, _, _ = _minimize_log_lam(phi)
        lam = math.exp(log_lam)
        return lam, self.hi - lam * self.f0


def _default_start(dual, lam_factor=1.0, gap=1.0):
    """``lam = lam_factor / sqrt(2 eta)`` (clipped to [1e-3, 1e3]) and ``u`` such that the top
    atom's ``t`` sits ``gap`` below the domain end (feasible for every ``gap > 0``)."""
    lam = min(max(lam_factor / math.sqrt(2.0 * dual.eta), 1e-3), 1e3)
    return lam, max(dual.top, dual.hi) - lam * dual.f0 + gap * lam


# Newton's restarts after a failure from the (warm or default) start. Divergences whose g*
# levels off at -inf (JS, alpha in (0, 1): finite g(0)) give the dual directions of almost no
# curvature, along which a start far from the optimum can slide towards lam = 0; a start
# with the top atom nearer the domain end, or a larger lam, avoids that (measured on
# discrete laws: one of these converges where the default start fails)
_RESTARTS = ((1.0, 0.5), (1.0, 0.1), (2.0, 0.5))


def _newton_restarts(dual):
    """``_newton`` from the warm start, then from the default start (when the warm start was
    another) and the ``_RESTARTS``; the first success."""
    start = _warm_start(dual)
    result = _newton(dual, start)
    default = _default_start(dual)
    starts = [] if start == default else [default]
    starts += [_default_start(dual, lam_factor, gap) for lam_factor, gap in _RESTARTS]
    for other in starts:
        if result[2]:
            break
        result = _newton(dual, other)
    return result


_COMPRESS_MIN = 4096  # laws with more atoms get a warm start from a compressed law
_COMPRESS_BINS = 1024
_COMPRESS_TOP = 64


def _merged(values, weights):
    """Many ties at an end of the law (discrete outcomes): one atom per distinct value."""
    if values.size <= 4 * _COMPRESS_TOP:
        return values, weights
    values, inverse = np.unique(values, return_inverse=True)
    return values, np.bincount(inverse, weights=weights)


def _binned_law(values, weights):
    """A law of at most ~1550 atoms with the same extreme atoms and mean as ``(values,
    weights)`` (n >= 2 * ``_COMPRESS_TOP``): the ``_COMPRESS_TOP`` largest and smallest values
    exactly (an end with over 4 * ``_COMPRESS_TOP`` tied values merged), the values between in
    ``_COMPRESS_BINS`` equal-width bins replaced by their weighted means. Its dual optimum is a
    warm start for the full law. ``(atoms, probabilities)``, or None when the values between
    the ends have no width."""
    if not np.all(weights > 0):
        values, weights = values[weights > 0], weights[weights > 0]
    weights = weights / weights.sum()
    n, k = values.size, _COMPRESS_TOP
    # two one-point selections (a two-point one costs several times more); the k-th smallest
    # value is among the n - k smallest, which the first selection leaves in front
    part = np.partition(values, n - k)
    cut_hi = float(part[n - k])
    cut_lo = float(np.partition(part[: n - k], k - 1)[k - 1])
    width = cut_hi - cut_lo
    if not width > 0.0:
        return None
    upper, lower = values >= cut_hi, values <= cut_lo
    top, bottom = _merged(values[upper], weights[upper]), _merged(values[lower], weights[lower])
    # bin index of every value; both ends go to an extra bin B that is dropped (no gathers)
    idx = np.subtract(values, cut_lo)
    idx *= _COMPRESS_BINS / width
    idx = np.clip(idx, 0, _COMPRESS_BINS - 1, out=idx).astype(np.intp)
    idx[upper] = _COMPRESS_BINS
    idx[lower] = _COMPRESS_BINS
    mass = np.bincount(idx, weights=weights, minlength=_COMPRESS_BINS + 1)[:-1]
    first = np.bincount(idx, weights=weights * values, minlength=_COMPRESS_BINS + 1)[:-1]
    keep = mass > 0
    # a bin mean stays between the cuts (clipped against rounding); the ends are exact
    means = np.clip(first[keep] / mass[keep], cut_lo, cut_hi)
    return (np.concatenate([bottom[0], means, top[0]]),
            np.concatenate([bottom[1], mass[keep], top[1]]))


def _compressed(dual):
    """The dual on the binned law of ``dual``'s atoms, or None. (Each side bins its own atoms:
    a law shared with the mirrored side would start Newton elsewhere and break the exact
    identity ``lower(y) == -upper(-y)`` in the last bits.)"""
    law = _binned_law(dual.z, dual.w)
    if law is None:
        return None
    small = _Dual(law[0], law[1], dual.eta, dual.hi, dual.div)
    small._kernel = dual._kernel
    return small


def _many_ties(y):
    """Whether a large sample is mostly ties (discrete outcomes), judged on about 1024
    evenly spaced values: the solvers then run on the distinct atoms (the same law, a
    fraction of the cost), and the sort that finds them is paid once."""
    n = y.size
    if n < _COMPRESS_MIN:
        return False
    probe = y[:: n // _COMPRESS_BINS]
    return 2 * np.unique(probe).size <= probe.size


def _warm_start(dual):
    if dual.z.size < _COMPRESS_MIN:
        return _default_start(dual)
    small = _compressed(dual)
    if small is None:
        return _default_start(dual)
    lam, u, ok, _, _ = _newton(small, _default_start(small))
    if not ok:
        # the nested solver on the small law costs milliseconds; from its optimum Newton on the
        # whole law converges where it fails from the default start (chi2 with a large radius:
        # the top atom's t within about p_top^2 of the end of the domain, where the default
        # start's iterates stall; at n = 1e6 the nested fallback then took 10-20 s)
        lam, u, ok, _ = _nested(small)
    return (lam, u) if ok and dual.feasible(lam, u) else _default_start(dual)


def _boundary_can_be_active(dual):
    """The support constraint ``u + lam f0 >= hi`` can bind (phantom mass at ``hi``) only when
    ``hi`` lies above the top atom or ``g*'`` stays finite at a closed domain end."""
    if dual.hi > dual.top:
        return True
    if not dual.div.domain_closed:
        return False
    with np.errstate(all="ignore"):
        return bool(np.isfinite(dual.div.conjugate_derivative(dual.f0)))


def _kkt_tolerance(dual, lam, u, hess):
    """1e-8, or the rounding floor of the gradient when it is larger: ``t = (z - u) / lam`` is
    known to about ``eps (|z| + |u|) / lam``, which moves ``E[g*'(t)]`` by that times
    ``E[g*''(t)]`` (large when an atom sits at the domain end, e.g. chi2's top atom)."""
    reach = max(abs(dual.top), abs(dual.bottom)) + abs(u)
    curvature = max(abs(hess[0, 0]), abs(hess[1, 1]))
    return max(1e-8, 8.0 * np.finfo(np.float64).eps * reach * curvature)


def _boundary_kkt(dual, lam):
    """Minimise on the boundary from ``lam``; ``(optimal, lam, u, value)`` where ``optimal``
    is the KKT test: a non-negative multiplier ``d F / d u = 1 - E[g*'(t)] >= 0``."""
    with np.errstate(all="ignore"):
        b_lam, b_u, b_value, b_grad = dual.boundary_min(start=lam)
    return bool(b_grad[1] >= -1e-10), b_lam, b_u, b_value


def _newton(dual, start=None):
    """Damped Newton with an active set; returns ``(lam, u, converged, n_iter, value)``."""
    f0, hi = dual.f0, dual.hi
    lam, u = _warm_start(dual) if start is None else start
    can_be_active = _boundary_can_be_active(dual)
    boundary_checked = False
    polish = 0
    if can_be_active and abs(u + lam * f0 - hi) <= 1e-12 * (1.0 + abs(hi)):
        # a warm start on the boundary: its 1-D optimum first (the usual phantom-mass case)
        boundary_checked = True
        found = _boundary_kkt(dual, lam)
        if found[0]:
            return (*found[1:3], True, 0, found[3])
        lam, u = found[1], found[2] + 1e-12 * (1.0 + abs(found[2]))
    with np.errstate(all="ignore"):
        value, grad, hess = dual.derivatives(lam, u)
    for it in range(1, _MAX_NEWTON + 1):
        if not (math.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
            return lam, u, False, it, value
        reg = 1e-12 * max(np.trace(hess), 1e-300)
        try:
            step = -np.linalg.solve(hess + reg * np.eye(2), grad)
        except np.linalg.LinAlgError:
            return lam, u, False, it, value
        decrement2 = -float(grad @ step)
        if not np.all(np.isfinite(step)) or decrement2 < 0:
            return lam, u, False, it, value
        tiny = decrement2 / 2.0 < 1e-14 * (1.0 + abs(value))
        kkt = bool(np.max(np.abs(grad)) < _kkt_tolerance(dual, lam, u, hess))
        if tiny and (kkt or polish >= 3):
            # a huge Hessian (atoms at the domain edge) can fake a small decrement: check KKT
            return lam, u, kkt, it, value
        if lam < 1e-12:  # non-binding balls are detected up front: this is a failure
            return lam, u, False, it, value
        if (
            can_be_active
            and not boundary_checked
            and (u + step[1]) + (lam + step[0]) * f0 < hi
        ):
            boundary_checked = True
            optimal, b_lam, b_u, b_value = _boundary_kkt(dual, lam)
            if optimal:
                return b_lam, b_u, True, it, b_value
            if b_value < value:  # leave the boundary from its best point
                lam, u = b_lam, b_u + 1e-12 * (1.0 + abs(b_u))
                with np.errstate(all="ignore"):
                    value, grad, hess = dual.derivatives(lam, u)
                continue
        if tiny:
            # the value is optimal to rounding but the gradient is not small yet: one more full
            # Newton step (quadratic convergence) settles the worst-case ratios
            polish += 1
            with np.errstate(all="ignore"):
                c_value, c_grad, c_hess = dual.derivatives(lam + step[0], u + step[1])
            if not (dual.feasible(lam + step[0], u + step[1])
                    and c_value <= value + 1e-12 * (1.0 + abs(value))):
                return lam, u, kkt, it, value
            lam, u = lam + step[0], u + step[1]
            value, grad, hess = c_value, c_grad, c_hess
            continue
        slope = float(grad @ step)
        # the full step is evaluated with its derivatives (reused as the next iterate's)
        c_lam, c_u = lam + step[0], u + step[1]
        c_value = math.inf
        if dual.feasible(c_lam, c_u):
            with np.errstate(all="ignore"):
                c_value, c_grad, c_hess = dual.derivatives(c_lam, c_u)
        if c_value <= value + 1e-4 * slope:
            lam, u, value, grad, hess = c_lam, c_u, c_value, c_grad, c_hess
            continue
        alpha = 0.5
        while alpha > 1e-20:
            c_lam, c_u = lam + alpha * step[0], u + alpha * step[1]
            with np.errstate(all="ignore"):
                c_value = dual.value(c_lam, c_u)
            if c_value <= value + 1e-4 * alpha * slope:
                break
            alpha *= 0.5
        else:
            # no decrease is possible at machine precision: accept if already stationary
            return lam, u, decrement2 < 1e-10 * (1.0 + abs(value)), it, value
        lam, u = c_lam, c_u
        with np.errstate(all="ignore"):
            value, grad, hess = dual.derivatives(lam, u)
    return lam, u, False, _MAX_NEWTON, value


def _nested(dual):
    """Outer bounded Brent on ``log lam``; inner bounded Brent on ``log(u - u_min(lam))``."""
    f0, hi = dual.f0, dual.hi
    spread = dual.top - dual.bottom
    closed_boundary = hi > dual.top or dual.div.domain_closed

    def inner(lam):
        u_min = hi - lam * f0
        v_max = math.log(2.0 * (spread + lam + abs(f0) * lam) + 1.0) + 3.0

        def psi(v):
            return dual.value(lam, u_min + math.exp(v))

        # u - u_min is of the order of lam at the optimum: the bracket follows tiny lam down
        v_min = min(-40.0, math.log(lam) - 40.0)
        res = minimize_scalar(psi, bounds=(v_min, v_max), method="bounded",
                              options=_BRENT_OPTIONS)
        best_value, best_u = float(res.fun), u_min + math.exp(res.x)
        if closed_boundary:
            edge = dual.value(lam, u_min)
            if edge < best_value:
                best_value, best_u = edge, u_min
        return best_value, best_u

    with np.errstate(all="ignore"):
        return _nested_solve(inner)


def _nested_solve(inner):
    log_lam, success, n_eval = _minimize_log_lam(lambda v: inner(math.exp(v))[0])
    lam = math.exp(log_lam)
    value, u = inner(lam)
    return lam, u, success and math.isfinite(value), n_eval


def _minimize_log_lam(phi):
    """Minimise ``phi(log lam)`` (unimodal: a convex function of lam); ``(x, success, n_eval)``.

    Bounded Brent on ``lam`` in [1e-12, 1e8]. An optimum at the lower end is followed down in
    steps of 1e4 while ``phi`` decreases, and Brent then runs on the last bracket. (One wide
    bracket would not do: far below the optimum ``phi`` is flat to rounding, and the golden
    section can then discard the side that holds the minimum.)
    """
    res = minimize_scalar(phi, bounds=_LOG_LAM_BOUNDS, method="bounded",
                          options=_BRENT_OPTIONS)
    floor = _LOG_LAM_BOUNDS[0]
    if res.x - floor > 1e-6:
        return float(res.x), bool(res.success), int(res.nfev)
    n_eval = int(res.nfev)
    right, f_right = floor, phi(floor)
    left, f_left = floor - _LOG_LAM_STEP, phi(floor - _LOG_LAM_STEP)
    n_eval += 2
    while f_left < f_right and left - _LOG_LAM_STEP >= math.log(_LAM_MIN):
        right, f_right = left, f_left
        left -= _LOG_LAM_STEP
        f_left = phi(left)
        n_eval += 1
    res = minimize_scalar(phi, bounds=(left, right + _LOG_LAM_STEP), method="bounded",
                          options=_BRENT_OPTIONS)
    return float(res.x), bool(res.success), n_eval + int(res.nfev)


def _kl_slope(gap, w, eta, excess, derivative=False, buf=None):
    """Slope in ``u`` of the KL profile at ``u = base + excess`` (and its ``log excess``
    derivative): ``1 - exp(E log d - eta) E[1/d]`` with ``d = gap + excess``; increasing.
    ``buf``: two scratch arrays shaped like ``gap`` (no fresh arrays per pass)."""
    if buf is None:
        buf = [np.empty_like(gap), np.empty_like(gap)]
    d = np.add(gap, excess, out=buf[0])
    inv = np.reciprocal(d, out=buf[1])
    scale = math.exp(float(np.dot(w, np.log(d, out=d))) - eta)
    m1 = float(np.dot(w, inv))
    slope = 1.0 - scale * m1
    if not derivative:
        return slope
    np.multiply(w, inv, out=d)
    m2 = float(np.dot(d, inv))
    return slope, excess * scale * (m2 - m1 * m1)


def _kl_newton(gap, w, eta, v):
    """Newton on ``log excess`` from a warm start; ``None`` unless it converges cleanly.

    It stops at a step below 1e-12, or where the steps (below 1e-8) stop shrinking: the slope
    is then at its rounding floor (a small radius makes it flat, ``dslope ~ eta``), and ``v``
    is as well determined as a bracketing search could make it."""
    buf = [np.empty_like(gap), np.empty_like(gap)]
    previous = math.inf
    for _ in range(30):
        slope, dslope = _kl_slope(gap, w, eta, math.exp(v), derivative=True, buf=buf)
        if not (math.isfinite(slope) and math.isfinite(dslope) and dslope > 0.0):
            return None
        step = -slope / dslope
        if abs(step) > 2.0:
            return None
        v += step
        if abs(step) < 1e-12 or 0.5 * previous <= abs(step) < 1e-8:
            return v
        previous = abs(step)
    return None


def _kl_profile(dual, warm=True):
    """KL: ``min_{u >= hi, u > top} u - exp(-eta) exp(E log(u - y))``; returns ``(lam, u)``.

    The root of the (increasing) slope in ``v = log(u - max(hi, top))`` is found by Newton from
    the root of a compressed law (large ``n``) or by Brent's method on a bracket.
    """
    z, w, eta, hi, top = dual.z, dual.w, dual.eta, dual.hi, dual.top
    base = max(hi, top)
    gap = base - z  # >= 0, exact; u - z = gap + excess with excess = u - base

    if hi > top and _kl_slope(gap, w, eta, 0.0) >= 0.0:
        excess = 0.0
    else:
        v = None
        small = _compressed(dual) if warm and z.size >= _COMPRESS_MIN else None
        if small is not None:
            _, u_small = _kl_profile(small, warm=False)
            if u_small > base:
                v = _kl_newton(gap, w, eta, math.log(u_small - base))
        if v is None:
            v = _kl_brent(gap, w, eta, 1.0 + (top - dual.bottom))
        excess = math.exp(v)
    with np.errstate(divide="ignore"):  # excess 0 at the top atom: log 0 = -inf, lam = 0
        lam = math.exp(float(np.dot(w, np.log(gap + excess))) - eta)
    return lam, base + excess


def _kl_brent(gap, w, eta, scale):
    buf = [np.empty_like(gap), np.empty_like(gap)]

    def root(v):
        return _kl_slope(gap, w, eta, math.exp(v), buf=buf)

    lo_v, hi_v = -60.0, math.log(scale) + 1.0
    while root(hi_v) < 0.0:
        hi_v += 2.0
    while root(lo_v) > 0.0:
        if lo_v - 60.0 < -700.0:
            # a huge radius: u exceeds the top atom by less than e^-660 (standardised units),
            # so u is the top atom to machine precision (and exp(v) would underflow)
            return -math.inf
        lo_v -= 60.0
    return brentq(root, lo_v, hi_v, xtol=1e-14, rtol=1e-15, maxiter=500)


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


def _tv_equal_weights(dual, with_ratio):
    """TV closed form for equal weights by selection (O(n)) instead of a sort: the removed
    mass ``min(eta, 1)`` is the lowest ``n delta`` values, ties at the quantile sharing it."""
    z, hi = dual.z, dual.hi
    n = z.size
    delta = min(dual.eta, 1.0)
    j = min(max(math.ceil(n * (delta - 1e-15 * max(delta, 1.0))) - 1, 0), n - 1)
    q = float(np.partition(z, j)[j])  # the delta-quantile, as in the sorted version
    below = z < q
    at_q = z == q
    n_below, n_at = int(np.count_nonzero(below)), int(np.count_nonzero(at_q))
    removed_q = min(max(delta - n_below / n, 0.0), n_at / n)
    value = (float(z.sum()) - float(z[below].sum())) / n - removed_q * q + delta * hi
    ratio = None
    if with_ratio:
        ratio = np.ones(n)
        ratio[below] = 0.0
        ratio[at_q] = 1.0 - removed_q * n / n_at
        if dual.top == hi:  # the moved mass lands on the top atoms, not on a phantom point
            at_top = z == hi
            ratio[at_top] += delta * n / np.count_nonzero(at_top)
    return hi - q, (hi + q) / 2.0, value, ratio


# ----------------------------------------------------------------------------------------------
# the upper bound (one side)
# ----------------------------------------------------------------------------------------------


def _upper(y, w, eta, hi, div, method, with_ratio=True, buffers=None):
    """Upper bound of ``E_Q y`` for the weighted law (y, w) with ``sup S = hi``; returns info.

    The TV closed form (with unequal weights), zero weights and large samples that are mostly
    ties (``_many_ties``) use the sorted distinct atoms, as does the nested fallback when
    there are ties; otherwise the solvers work on the values
    as given (ties share their ``t`` and ratio) and the O(n log n) sort is skipped.
    ``info["atoms"]`` is the sorted atoms the ratios refer to, or ``None`` when they are per
    input value. ``buffers`` (a list, shared by the two sides of a call) holds the solver's
    scratch arrays.
    """
    if method == "closed_form" and div.name not in ("tv", "kl"):
        raise ValueError(
            f"method='closed_form' is only available for 'tv' and 'kl'; got divergence "
            f"{div.name!r}."
        )
    use_closed = method == "closed_form" or (method == "auto" and div.name in ("tv", "kl"))
    tv = use_closed and div.name == "tv"
    equal = bool(w[0] > 0 and np.all(w == w[0]))
    if (tv and not equal) or not (equal or np.all(w > 0)) or _many_ties(y):
        atoms, probs = _collapse(y, w)
        top, bottom = float(atoms[-1]), float(atoms[0])
        idx_atoms = atoms
    else:
        atoms, probs = y, w / w.sum()
        top, bottom = float(y.max()), float(y.min())
        idx_atoms = None
    info = {"method": None, "converged": True, "n_iter": 0, "binding": True}
    mean = float(np.dot(probs, atoms))
    centred = atoms - mean
    spread = max(hi, top) - bottom
    if spread <= 0.0:
        return _finish(info, "trivial", 0.0, bottom, bottom, np.ones(atoms.size),
                       idx_atoms, binding=False)
    if eta <= 1e-14:
        return _finish(info, "trivial", math.inf, mean, mean, np.ones(atoms.size),
                       idx_atoms, binding=False)
    # the unit of the standardised problem is the width of the support, not the sd: the sd can
    # be rounding noise (equal values whose computed mean is off by one ulp) or a billionth of
    # a declared support, and in such units the optimum sits ~1e9+ away and Newton and the
    # nested search stop far from it (bounds off by up to half the support, no warning)
    scale = spread
    z = centred / scale
    z_hi = (hi - mean) / scale
    dual = _Dual(z, probs, eta, z_hi, div)
    dual.buffer_pool = buffers

    # a ball that contains the point mass at sup S: the bound is sup S
    at_top = atoms == hi if top == hi else None
    p_top = float(np.dot(probs, at_top)) if at_top is not None else 0.0
    g0 = _g_at_zero(div)
    if p_top > 0.0:
        reach = p_top * float(div.g(1.0 / p_top)) + (1.0 - p_top) * g0
    else:
        reach = g0 + div.f0
    if reach <= eta:
        return _finish(info, "non_binding", 0.0, hi, hi, _point_mass_ratio(atoms, probs, hi),
                       idx_atoms, binding=False)

    numeric = {"conjugate", "conjugate_second_derivative"} & set(div.numeric)
    if tv:
        if idx_atoms is None:
            lam, u, value, ratio = _tv_equal_weights(dual, with_ratio)
        else:
            lam, u, value, ratio = _tv_closed_form(dual)
        info.update(method="closed_form", n_iter=1)
        return _finish(info, "closed_form", lam * scale, mean + scale * u,
                       mean + scale * value, ratio, idx_atoms)
    done = (info, dual, mean, scale, idx_atoms, with_ratio)
    if use_closed and div.name == "kl":
        lam, u = _kl_profile(dual)
        # at the profile's optimal lam the dual value is u - lam exactly (the log terms cancel)
        return _from_dual(done, "closed_form", lam, u, True, 1, u - lam)
    if method in ("auto", "newton") and not numeric:
        with np.errstate(over="ignore", invalid="ignore"):  # a failed step is reported by ok
            lam, u, ok, n_iter, value = _newton_restarts(dual)
        if ok:
            return _from_dual(done, "newton", lam, u, True, n_iter, value)
    if idx_atoms is None:
        # the nested solver costs O(atoms) per evaluation: with ties (discrete outcomes) it
        # runs on the distinct atoms, the same law exactly
        distinct, summed = _collapse(y, w)
        if 2 * distinct.size <= atoms.size:
            idx_atoms = distinct
            dual = _Dual((distinct - mean) / scale, summed, eta, z_hi, div)
            done = (info, dual, mean, scale, idx_atoms, with_ratio)
    lam, u, ok, n_iter = _nested(dual)
    if not ok:
        warn_user(
            f"pointwise_bounds did not converge for divergence {div.name!r} "
            f"(eta={eta!r}); the returned bound may be inaccurate.",
            ConvergenceWarning,
        )
    return _from_dual(done, "nested", lam, u, ok, n_iter)


def _from_dual(done, method, lam, u, converged, n_iter, value=None):
    info, dual, mean, scale, idx_atoms, with_ratio = done
    with np.errstate(all="ignore"):
        if value is None:
            value = dual.value(lam, u)
    # the optimum of a huge ball (Q -> the point mass at sup S): either the multiplier search
    # reached its floor, or the floor's dual value (about lam * eta) overshoots sup S, itself
    # a valid and there tighter bound
    if lam < 1.001 * _LAM_MIN or value > dual.hi:
        value = dual.hi
        ratio = _point_mass_ratio(dual.z, dual.w, dual.hi) if with_ratio else None
    elif with_ratio:
        with np.errstate(all="ignore"):
            if method != "closed_form":
                lam, u = _polish(dual, lam, u)
            ratio = dual.ratio(lam, u)
        if dual.top == dual.hi:
            ratio = _top_ratio_from_total(ratio, dual.z, dual.w, dual.top)
    else:
        ratio = None
    info.update(converged=bool(converged), n_iter=int(n_iter))
    return _finish(info, method, lam * scale, mean + scale * u, mean + scale * value, ratio,
                   idx_atoms)


def _polish(dual, lam, u):
    """Up to two more Newton steps from a converged ``(lam, u)``, for the worst-case ratios.

    The solvers stop on the value, whose rounding floor leaves the gradient near 1e-8; the
    worst-case law ``Q*`` satisfies its identities (``E_Q* z`` equals the dual value, the
    ratios and the phantom mass sum to 1) only up to ``lam`` times that gradient. A step
    (along the boundary ``u = hi - lam f0`` when on it) is kept if the value does not rise
    beyond rounding; the returned bound keeps the solver's value.
    """
    f0, hi = dual.f0, dual.hi
    on_boundary = abs(u + lam * f0 - hi) <= 1e-12 * (1.0 + abs(hi))
    direction = np.array([1.0, -f0])
    for _ in range(2):
        value, grad, hess = dual.derivatives(lam, u)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))
                and np.all(np.isfinite(hess))):
            break
        if on_boundary:
            slope = lam * float(grad @ direction)
            curv = lam * lam * float(direction @ hess @ direction) + slope
            if not curv > 0.0:
                break
            c_lam = lam * math.exp(max(-_MAX_LOG_STEP, min(-slope / curv, _MAX_LOG_STEP)))
            c_u = hi - c_lam * f0
        else:
            try:
                step = np.linalg.solve(hess, -grad)
            except np.linalg.LinAlgError:
                break
            c_lam, c_u = lam + float(step[0]), u + float(step[1])
        if not (c_lam > 0.0 and dual.feasible(c_lam, c_u)):
            break
        if not dual.value(c_lam, c_u) <= value + 1e-12 * (1.0 + abs(value)):
            break
        lam, u = c_lam, c_u
    return lam, u


def _point_mass_ratio(atoms, probs, hi):
    """dQ/dP of the point mass at ``hi``: ``1 / P(atoms == hi)`` there, 0 elsewhere (all of
    Q's mass is phantom when no atom sits at ``hi``)."""
    at_top = atoms == hi
    p_top = float(np.dot(probs, at_top))
    ratio = np.zeros(atoms.size)
    if p_top > 0.0:
        ratio[at_top] = 1.0 / p_top
    return ratio


def _top_ratio_from_total(ratio, atoms, probs, top):
    """Set the ratio of the atoms at ``top = sup S`` from ``sum_j p_j s_j = 1``.

    With sup S an observed atom, Q has no mass off P's atoms (any would sit at sup S), so the
    ratios sum to one. The top atom's ``t = (top - u) / lam`` is the one near the domain end,
    where ``g*'`` turns the rounding of ``top - u`` into large errors (inf when ``u`` rounds onto
    ``top``); every other ratio is well conditioned.
    """
    at_top = atoms == top
    p_top = float(np.dot(probs, at_top))
    if not p_top > 0.0:  # only zero-weight atoms at the top: nothing to set
        return ratio
    rest = float(np.dot(probs[~at_top], ratio[~at_top]))
    ratio = np.array(ratio, dtype=np.float64)
    ratio[at_top] = max(1.0 - rest, 0.0) / p_top
    return ratio


def _finish(info, method, lam, u, value, ratio_atoms, atoms, binding=True):
    ratio = None if ratio_atoms is None else np.asarray(ratio_atoms, dtype=np.float64)
    info.update(method=method, lam=float(lam), u=float(u), value=float(value),
                ratio=ratio, atoms=atoms,
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
    if math.isinf(eta) and math.isfinite(div.f0):
        # a finite radius beyond the float range (tiny e, fast-growing f): every such ball
        # reaches sup S, as the largest float radius does
        return sys.float_info.max
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
        fallback. For n >= 4096 Newton and the KL profile are warm-started from a binned copy
        of the law; convergence is certified on the full law.
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
    (0.25, 2.75)
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
    unit = _range_unit(lo, hi)
    if unit != 1.0:
        y, lo, hi = y / unit, lo / unit, hi / unit
    buffers = []
    up = _side(y, w, eta, hi, div, method, return_info, buffers)
    down = _side(-y, w, eta, -lo, div, method, return_info, buffers)
    if unit != 1.0:
        for side in (up, down):
            for key in ("lam", "u", "value"):
                if key in side:
                    side[key] = side[key] * unit
    lower, upper = 0.0 - down["value"], up["value"]  # 0.0 - x: no negative zero
    if not return_info:
        return lower, upper
    return lower, upper, {"upper": up, "lower": down}


def _side(y, w, eta, hi, div, method, with_ratio=True, buffers=None):
    info = _upper(y, w, eta, hi, div, method, with_ratio, buffers)
    atoms = info.pop("atoms")
    if not with_ratio:  # the per-value worst-case ratio costs a pass (and a search) over n
        return info
    ratio = info["ratio"]
    if atoms is not None:
        # worst-case ratio per input value (zero-weight values get their atom's ratio if any)
        idx = np.clip(np.searchsorted(atoms, y), 0, atoms.size - 1)
        ratio = np.where(atoms[idx] == y, ratio[idx], 0.0)
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
    with np.errstate(over="ignore"):
        mean = float(np.dot(w, y) / w.sum())
    if not math.isfinite(mean):  # huge values: normalise the weights first
        mean = float(np.dot(w / w.sum(), y))
    return e * mean + (1.0 - e) * lo, e * mean + (1.0 - e) * hi
