"""Robustness: interval certificates of two-layer NTK/NNGP machines, IBP, PGD (spec §2.8).

Kernel certificate (depth 1, ``b_std = 0``): for a trial radius r, every quantity the
decision value depends on -- ``x'.x_i`` and ``||x'||`` -- is bounded over the ball, the
depth-1 closed forms ``NTK = c n_i ||x'|| h(u)`` / ``NNGP = c n_i ||x'|| k(u)`` are bounded
from those ranges (``h`` is minimised at ``u*``, ``k`` is increasing), and the worst case of
``sum_i beta_i K(x', x_i) + b`` decides certification. Ranges are nested in r, so bisection
on r is valid. Every set used contains the true one: the certificate is sound.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from .._sklearn_compat import check_is_fitted
from .._torch import to_numpy
from ._ntk import H_U_STAR, U_STAR

__all__ = ["certify_machine", "pgd_attack", "attack_radius", "ibp_bounds"]

_CHUNK_BYTES = 512 * 2**20


def _h(u):
    return 2.0 * u * (math.pi - torch.arccos(u)) + torch.sqrt(torch.clamp(1.0 - u * u, min=0.0))


def _k(u):
    return u * (math.pi - torch.arccos(u)) + torch.sqrt(torch.clamp(1.0 - u * u, min=0.0))


def _check_norm_interval(norm, interval):
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2'; got norm={norm!r}.")
    if interval not in ("tight", "paper"):
        raise ValueError(f"interval must be 'tight' or 'paper'; got interval={interval!r}.")
    if interval == "paper" and norm != "linf":
        raise ValueError("the paper interval is defined for linf only; use interval='tight' "
                         "with norm='l2'.")


def _pnorm(X, norm):
    return np.abs(X).max(axis=1) if norm == "linf" else np.linalg.norm(X, axis=1)


def _certified(x, absx, xnorm, dot0, r, Xn, Xq, beta, b, sign, c, kind, norm, interval, d):
    """Boolean (m,): is each point certified at its radius r (m,)?"""
    rr = r[:, None]
    if interval == "paper":
        rho = math.sqrt(d) * r
        d_lo = dot0 - rho[:, None] * Xn[None, :]
        d_hi = dot0 + rho[:, None] * Xn[None, :]
        N_lo = torch.clamp(xnorm - rho, min=0.0)
        N_hi = xnorm + rho
    else:
        d_lo = dot0 - rr * Xq[None, :]
        d_hi = dot0 + rr * Xq[None, :]
        if norm == "linf":
            N_lo = torch.clamp(absx - rr, min=0.0).norm(dim=1)
            N_hi = (absx + rr).norm(dim=1)
        else:
            N_lo = torch.clamp(xnorm - r, min=0.0)
            N_hi = xnorm + r
    NL, NU = N_lo[:, None], N_hi[:, None]
    n_i = Xn[None, :]
    safe_n = torch.where(n_i > 0, n_i, torch.ones_like(n_i))
    zero_NL = NL == 0
    safe_NL = torch.where(zero_NL, torch.ones_like(NL), NL)
    safe_NU = torch.where(NU == 0, torch.ones_like(NU), NU)
    u_lo = torch.where(d_lo >= 0, d_lo / safe_NU,
                       torch.where(zero_NL, torch.full_like(d_lo, -math.inf), d_lo / safe_NL))
    u_hi = torch.where(d_hi >= 0,
                       torch.where(zero_NL, torch.full_like(d_hi, math.inf), d_hi / safe_NL),
                       d_hi / safe_NU)
    u_lo = torch.clamp(u_lo / safe_n, -1.0, 1.0)
    u_hi = torch.clamp(u_hi / safe_n, -1.0, 1.0)
    if kind == "ntk":
        hl, hu = _h(u_lo), _h(u_hi)
        h_lo = torch.where((u_lo <= U_STAR) & (U_STAR <= u_hi),
                           torch.full_like(hl, H_U_STAR), torch.minimum(hl, hu))
        h_hi = torch.maximum(hl, hu)
        t_lo = c * n_i * torch.where(h_lo >= 0, NL, NU) * h_lo
        t_hi = c * n_i * torch.where(h_hi >= 0, NU, NL) * h_hi
    else:
        t_lo = c * n_i * NL * _k(u_lo)
        t_hi = c * n_i * NU * _k(u_hi)
    zero_row = Xn[None, :] == 0
    t_lo = torch.where(zero_row, torch.zeros_like(t_lo), t_lo)
    t_hi = torch.where(zero_row, torch.zeros_like(t_hi), t_hi)
    pos = beta[None, :] > 0
    worst_low = torch.where(pos, beta * t_lo, beta * t_hi).sum(1) + b
    worst_high = torch.where(pos, beta * t_hi, beta * t_lo).sum(1) + b
    return torch.where(sign > 0, worst_low > 0, worst_high < 0)


def _kernel_info(model):
    kind = model.kernel
    if kind not in ("ntk", "nngp") or model.depth != 1 or model.b_std != 0:
        raise NotImplementedError(
            "the kernel certificate is derived for depth=1, b_std=0 machines with kernel 'ntk' "
            "or 'nngp'; for other networks use NTKNetwork.certify (IBP).")
    return kind


def certify_machine(model, X, y=None, *, norm="linf", max_radius=None, n_bisect=40,
                    interval="tight", batch_size=None):
    """Certified radii of a binary depth-1 bias-free NTK/NNGP machine (see module doc)."""
    _check_norm_interval(norm, interval)
    kind = _kernel_info(model)
    if isinstance(n_bisect, bool) or not isinstance(n_bisect, (int, np.integer)) or n_bisect < 1:
        raise ValueError(f"n_bisect must be an integer >= 1; got n_bisect={n_bisect!r}.")
    g = model.decision_function(X)
    X = check_array(X, dtype=np.float64)
    m, d = X.shape
    if max_radius is None:
        hi_r = _pnorm(X, norm)
    else:
        if not np.all(np.asarray(max_radius, dtype=float) > 0):
            raise ValueError(f"max_radius must be > 0; got {max_radius!r}.")
        hi_r = np.broadcast_to(np.asarray(max_radius, dtype=np.float64), (m,)).copy()
    valid = g != 0
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != m:
            raise ValueError(f"y has {y.shape[0]} entries but X has {m} rows.")
        valid &= model.predict(X) == y
    Xfit = torch.as_tensor(model.X_fit_, dtype=torch.float64)
    beta = torch.as_tensor(np.asarray(model.dual_coef_, dtype=np.float64))
    b = float(model.intercept_)
    Xn = Xfit.norm(dim=1)
    Xq = Xfit.abs().sum(1) if norm == "linf" else Xn
    c = model.w_std**4 / (2.0 * math.pi * d)
    n_train = Xfit.shape[0]
    chunk = batch_size or max(1, _CHUNK_BYTES // (8 * 16 * max(n_train, 1)))
    radii = np.zeros(m)
    for start in range(0, m, chunk):
        sl = slice(start, min(start + chunk, m))
        x = torch.as_tensor(X[sl])
        args = (x, x.abs(), x.norm(dim=1), x @ Xfit.T)
        sign = torch.as_tensor(np.sign(g[sl]))
        lo = torch.zeros(x.shape[0], dtype=torch.float64)
        hi = torch.as_tensor(hi_r[sl])

        def ok(r, args=args, sign=sign):
            return _certified(*args, r, Xn, Xq, beta, b, sign, c, kind, norm, interval, d)

        full = ok(hi)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            good = ok(mid)
            lo = torch.where(good, mid, lo)
            hi = torch.where(good, hi, mid)
        out = torch.where(full, torch.as_tensor(hi_r[sl]), lo)
        radii[sl] = to_numpy(out)
    radii[~valid] = 0.0
    return radii


# --------------------------------------------------------------------------- smooth decision
def _smooth_kernel(Xp, Xfit, depth, w_std, b_std, kind):
    """Differentiable NNGP/NTK (1e-12 under the square roots) for attack gradients."""
    dim = Xp.shape[1]
    w2, b2 = w_std**2, b_std**2
    K = Xp @ Xfit.T / dim
    kx = (Xp * Xp).sum(1) / dim
    ky = (Xfit * Xfit).sum(1) / dim
    theta = torch.zeros_like(K)
    for _ in range(depth):
        S = w2 * K + b2
        a, bb = w2 * kx + b2, w2 * ky + b2
        T = S + w2 * theta
        sin = torch.sqrt(torch.clamp(a[:, None] * bb[None, :] - S * S, min=0.0) + 1e-12)
        ang = torch.atan2(sin, S)
        K = (sin + (math.pi - ang) * S) / (2 * math.pi)
        theta = T * (math.pi - ang) / (2 * math.pi)
        kx, ky = a / 2, bb / 2
    nngp = w2 * K + b2
    return nngp if (kind == "nngp" or depth == 0) else nngp + w2 * theta


def _decision_fns(model):
    """(smooth torch decision, exact numpy decision) of a binary machine or network."""
    from ._machines import _NTKMachineBase
    from ._network import NTKNetwork

    check_is_fitted(model)
    if isinstance(model, NTKNetwork):
        if not model._is_classifier():
            raise TypeError("attacks need a fitted binary classifier.")
        return model._torch_decision, model.decision_function
    if isinstance(model, _NTKMachineBase):
        if model.kernel not in ("ntk", "nngp"):
            raise TypeError("attacks need a machine with kernel 'ntk' or 'nngp'.")
        if not model._is_classifier() or len(model.classes_) != 2:
            raise TypeError("attacks need a fitted binary classifier.")
        Xfit = torch.as_tensor(model.X_fit_, dtype=torch.float64)
        beta = torch.as_tensor(np.asarray(model.dual_coef_, dtype=np.float64))
        b = float(model.intercept_)

        def smooth(Xp):
            K = _smooth_kernel(Xp, Xfit, model.depth, model.w_std, model.b_std, model.kernel)
            return K @ beta + b

        return smooth, model.decision_function
    raise TypeError(f"model must be a fitted NTK machine or NTKNetwork; got "
                    f"{type(model).__name__}.")


def pgd_attack(model, X, radius, *, norm="linf", n_steps=100, step_size=None,
               random_start=False, random_state=None):
    """Projected gradient attack on the sign of a binary NTK machine or NTKNetwork.

    Minimises ``s g(x')`` (``s = sign g(x)``) over the ``norm`` ball of ``radius`` around each
    row of ``X`` with signed (linf) or normalised (l2) gradient steps of size
    ``2.5 radius / n_steps``. Gradients use a smoothed kernel; flips are decided on the
    exact decision function.

    Returns
    -------
    X_adv : ndarray of shape (n, d)
    flipped : ndarray of bool, shape (n,)
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2'; got norm={norm!r}.")
    smooth, exact = _decision_fns(model)
    X = check_array(X, dtype=np.float64)
    m = X.shape[0]
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (m,)).copy()
    if not np.all(r > 0):
        raise ValueError(f"radius must be > 0; got {radius!r}.")
    g0 = exact(X)
    s = torch.as_tensor(np.sign(g0))
    x0 = torch.as_tensor(X)
    rt = torch.as_tensor(r)[:, None]
    alpha = (2.5 * rt / n_steps) if step_size is None else torch.full_like(rt, float(step_size))

    def project(xp):
        delta = xp - x0
        if norm == "linf":
            delta = torch.maximum(torch.minimum(delta, rt), -rt)
        else:
            nrm = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(rt / torch.clamp(nrm, min=1e-300), max=1.0)
        return x0 + delta

    xp = x0.clone()
    if random_start:
        rng = check_random_state(random_state)
        noise = torch.as_tensor(rng.uniform(-1, 1, size=X.shape))
        xp = project(x0 + noise * rt)
    best = xp.clone()
    best_val = torch.full((m,), math.inf, dtype=torch.float64)
    for _ in range(n_steps):
        xp = xp.detach().requires_grad_(True)
        val = s * smooth(xp)
        grad, = torch.autograd.grad(val.sum(), xp)
        with torch.no_grad():
            better = val < best_val
            best[better] = xp[better]
            best_val = torch.where(better, val, best_val)
            if norm == "linf":
                step = alpha * torch.sign(grad)
            else:
                step = alpha * grad / torch.clamp(grad.norm(dim=1, keepdim=True), min=1e-300)
            xp = project(xp - step)
    with torch.no_grad():
        val = s * smooth(xp)
        better = val < best_val
        best[better] = xp[better]
    X_adv = to_numpy(best.detach())
    flipped = np.sign(exact(X_adv)) != np.sign(g0)
    flipped &= g0 != 0
    return X_adv, flipped


def attack_radius(model, X, *, norm="linf", max_radius=None, n_bisect=20, n_steps=100,
                  random_state=None):
    """Smallest radius at which PGD flips the prediction (an upper bound on the robust radius).

    Returns ``np.inf`` for points that PGD cannot flip at ``max_radius`` (default
    ``2 ||x||_p``).
    """
    X = check_array(X, dtype=np.float64)
    m = X.shape[0]
    hi = 2.0 * _pnorm(X, norm) if max_radius is None else np.broadcast_to(
        np.asarray(max_radius, dtype=np.float64), (m,)).copy()
    if not np.all(hi > 0):
        raise ValueError(f"max_radius must be > 0; got {max_radius!r}.")
    _, flipped = pgd_attack(model, X, hi, norm=norm, n_steps=n_steps, random_state=random_state)
    lo = np.zeros(m)
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        _, f = pgd_attack(model, X, np.maximum(mid, 1e-300), norm=norm, n_steps=n_steps,
                          random_state=random_state)
        hi = np.where(f & flipped, mid, hi)
        lo = np.where(f & flipped, lo, mid)
    out = hi.copy()
    out[~flipped] = np.inf
    return out


# --------------------------------------------------------------------------- IBP
def ibp_bounds(params, x, r, w_std, b_std, norm):
    """Interval bound propagation of one network copy: (lower, upper) of its output.

    ``x``: (m, d) centres, ``r``: (m,) radii.
    """
    W, bias = params[0]
    d = W.shape[1]
    scale = w_std / math.sqrt(d)
    c = scale * x @ W.T
    if bias is not None:
        c = c + b_std * bias
    qn = W.abs().sum(1) if norm == "linf" else W.norm(dim=1)
    rho = scale * r[:, None] * qn[None, :]
    for W, bias in params[1:]:
        lo, hi = torch.relu(c - rho), torch.relu(c + rho)
        c, rho = (lo + hi) / 2, (hi - lo) / 2
        scale = w_std / math.sqrt(W.shape[1])
        c = scale * c @ W.T
        if bias is not None:
            c = c + b_std * bias
        rho = scale * rho @ W.abs().T
    return (c - rho)[:, 0], (c + rho)[:, 0]
