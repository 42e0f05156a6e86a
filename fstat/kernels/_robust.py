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
from .._torch import as_tensor, fitted_device, to_numpy
from .._validation import check_integer, check_positive
from ._ntk import U_STAR

__all__ = ["certify_machine", "pgd_attack", "attack_radius", "ibp_bounds"]

_CHUNK_BYTES = 512 * 2**20
_CPU_CHUNK_PAIRS = 2**17


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


def _h_inplace(v):
    """``h(v) = 2 v (pi - arccos v) + sqrt(1 - v^2)``, overwriting ``v``'s temporaries only."""
    root = torch.mul(v, v).neg_().add_(1.0).clamp_(min=0.0).sqrt_()
    return torch.arccos(v).neg_().add_(math.pi).mul_(v).mul_(2.0).add_(root)


def _k_inplace(v):
    """``k(v) = v (pi - arccos v) + sqrt(1 - v^2)``."""
    root = torch.mul(v, v).neg_().add_(1.0).clamp_(min=0.0).sqrt_()
    return torch.arccos(v).neg_().add_(math.pi).mul_(v).add_(root)


class _Margin:
    """Worst-case signed decision ``W(r) = s (sum_i beta_i t_i(r) + b)`` over the ball.

    One instance holds a chunk of test points (rows, sorted so that ``s = +1`` rows come
    first) against the training rows with ``beta_i != 0`` and ``||x_i|| > 0`` (the others
    contribute exactly 0), split by the sign of ``beta``. The worst case uses the lower end
    ``t_lo`` of the kernel interval where ``s beta_i > 0`` and the upper end ``t_hi``
    otherwise (spec §2.8 step 4), so each (row group, training group) block needs one end
    only and no per-pair selection:

    - NTK lower end: ``h`` is minimised over ``[u_L, u_U]`` at ``clip(u*, u_L, u_U)``;
      upper end: ``max(h(u_L), h(u_U))``, one ``h`` unless the range straddles ``u*``;
      then ``min`` / ``max`` of ``h N_L`` and ``h N_U`` picks the norm bound by the sign of h.
    - NNGP (``k`` increasing, ``>= 0``): ``N_L k(u_L)`` and ``N_U k(u_U)``.

    ``u_L = min(d_L / N_U, d_L / N_L)`` and ``u_U = max(d_U / N_L, d_U / N_U)`` are the
    sign-dependent quotients of step 2 (a division by ``N_L = 0`` gives the infinities
    that the clip to [-1, 1] turns into -1 / 1). The point is certified at r iff W(r) > 0.
    """

    def __init__(self, x, dot0, sign, Xn, Xq, beta, b, c, kind, norm, interval):
        self.kind, self.norm, self.interval = kind, norm, interval
        self.d = x.shape[1]
        self.sign = sign
        self.n_pos = int((sign > 0).sum())  # rows are sorted: s = +1 first
        self.absx = x.abs()
        self.xnorm = x.norm(dim=1)
        self.b = b
        self.groups = []
        for sel in (beta > 0, beta < 0):
            spread = Xn[sel] if interval == "paper" else Xq[sel]
            self.groups.append((dot0[:, sel].contiguous(), Xn[sel], spread,
                                c * Xn[sel] * beta[sel]))

    def _block(self, D, r, NL, NU, n_i, q_i, weight, lower):
        """``sum_i beta_i t_i`` over one block (rows x training group)."""
        spread = r[:, None] * q_i[None, :]
        NLc, NUc = NL[:, None], NU[:, None]
        # 0 / N_L = NaN only where N_L = 0: then fmin/fmax (NaN-ignoring) are needed
        lower_of, upper_of = ((torch.fmin, torch.fmax) if bool((NL == 0).any())
                              else (torch.minimum, torch.maximum))
        u_lo = u_hi = None
        if lower or self.kind == "ntk":
            d_lo = D - spread
            u_lo = lower_of(d_lo / NUc, d_lo.div_(NLc)).div_(n_i).clamp_(-1.0, 1.0)
        if not lower or self.kind == "ntk":
            d_hi = spread.add_(D)
            u_hi = upper_of(d_hi / NLc, d_hi.div_(NUc)).div_(n_i).clamp_(-1.0, 1.0)
        if self.kind == "nngp":
            t = _k_inplace(u_lo).mul_(NLc) if lower else _k_inplace(u_hi).mul_(NUc)
            return t @ weight
        if lower:
            v = torch.clamp(u_hi, max=U_STAR)
            h = _h_inplace(torch.maximum(v, u_lo, out=v))
            t = torch.minimum(h * NLc, h.mul_(NUc))
        else:
            rising = u_lo >= U_STAR
            h = _h_inplace(torch.where(rising, u_hi, u_lo))
            straddle = ~rising & (u_hi > U_STAR)
            if bool(straddle.any()):  # range contains u*: the max is at either end
                h = torch.where(straddle, torch.maximum(h, _h_inplace(u_hi)), h)
            t = torch.maximum(h * NLc, h.mul_(NUc))
        return t @ weight

    def __call__(self, r, rows=None):
        """``W`` at radii ``r`` (one per selected row, ``rows`` sorted; None: all rows)."""
        if rows is None:
            sign, absx, xnorm, k = self.sign, self.absx, self.xnorm, self.n_pos
        else:
            sign, absx, xnorm = self.sign[rows], self.absx[rows], self.xnorm[rows]
            k = int(torch.searchsorted(rows, self.n_pos))
        if self.interval == "paper":
            rho = math.sqrt(self.d) * r
            N_lo, N_hi, r = torch.clamp(xnorm - rho, min=0.0), xnorm + rho, rho
        elif self.norm == "linf":
            rr = r[:, None]
            N_lo = torch.clamp(absx - rr, min=0.0).norm(dim=1)
            N_hi = (absx + rr).norm(dim=1)
        else:
            N_lo, N_hi = torch.clamp(xnorm - r, min=0.0), xnorm + r
        total = torch.full_like(r, self.b)
        for g, (D, n_i, q_i, weight) in enumerate(self.groups):
            if not n_i.numel():
                continue
            if rows is not None:
                D = D[rows]
            for part, lower in ((slice(0, k), g == 0), (slice(k, None), g == 1)):
                if D[part].shape[0]:
                    total[part] += self._block(D[part], r[part], N_lo[part], N_hi[part], n_i,
                                               q_i, weight, lower)
        return sign * total


def _certify_chunk(margin, g_abs, hi_r, n_bisect, max_illinois=12):
    """Radii of one chunk: exactly the bisection of spec §2.8 step 5, made cheap.

    Plain bisection returns ``lo`` after ``n_bisect`` halvings of ``[0, max_radius]``,
    keeping the certified half. ``W(r)`` is continuous and non-increasing (nested ranges),
    so its root is first bracketed by Illinois (regula falsi) steps, ``[a, b]`` with ``a``
    certified and ``b`` not; the bisection is then replayed step by step, evaluating ``W``
    only for rows whose midpoint falls inside their bracket (elsewhere the outcome follows
    from monotonicity). About ``max_illinois + 3`` evaluations replace ``n_bisect + 1``.
    """
    W_full = margin(hi_r)
    done = W_full > 0  # max_radius itself is certified
    a, Wa = torch.zeros_like(hi_r), g_abs.clone()  # W(0) = |g(x)| (a = 0 is never inferred)
    b, Wb = hi_r.clone(), W_full
    side = torch.zeros_like(hi_r)  # +1: a moved last, -1: b moved last
    width = 2.0 * hi_r * 2.0 ** (-n_bisect)
    for _ in range(max_illinois):
        rows = (~done & (b - a > width)).nonzero().squeeze(1)
        if not rows.numel():
            break
        ar, br, war, wbr, sr = a[rows], b[rows], Wa[rows], Wb[rows], side[rows]
        c = br - wbr * (br - ar) / (wbr - war)
        c = torch.where(torch.isfinite(c) & (c > ar) & (c < br), c, 0.5 * (ar + br))
        Wc = margin(c, rows)
        ok = Wc > 0
        # Illinois: halve the value kept at the end that stayed put twice in a row
        a[rows] = torch.where(ok, c, ar)
        Wa[rows] = torch.where(ok, Wc, torch.where(sr < 0, 0.5 * war, war))
        b[rows] = torch.where(ok, br, c)
        Wb[rows] = torch.where(ok, torch.where(sr > 0, 0.5 * wbr, wbr), Wc)
        side[rows] = torch.where(ok, torch.ones_like(sr), -torch.ones_like(sr))
    lo, hi = torch.zeros_like(hi_r), hi_r.clone()
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        good = mid <= a
        need = ~done & ~good & (mid < b)
        if bool(need.any()):
            rows = need.nonzero().squeeze(1)
            ok = margin(mid[rows], rows) > 0
            good[rows] = ok
            a[rows] = torch.where(ok, mid[rows], a[rows])
            b[rows] = torch.where(ok, b[rows], mid[rows])
        lo = torch.where(good, mid, lo)
        hi = torch.where(good, hi, mid)
    return torch.where(done, hi_r, lo)


def _kernel_info(model):
    kind = model.kernel
    if kind not in ("ntk", "nngp") or model.depth != 1 or model.b_std != 0:
        raise NotImplementedError(
            "the kernel certificate is derived for depth=1, b_std=0 machines with kernel 'ntk' "
            "or 'nngp'; for other networks use NTKNetwork.certify (IBP).")
    return kind


def radius_caps(max_radius, default, m):
    """Per-row search caps: ``default`` (data norms; 0 for a zero row) when ``max_radius``
    is None, else ``max_radius`` broadcast to ``m`` rows, each of which must be > 0."""
    if max_radius is None:
        return default
    caps = np.broadcast_to(np.asarray(max_radius, dtype=np.float64), (m,)).copy()
    if not np.all(caps > 0):
        raise ValueError(f"max_radius must be > 0; got {max_radius!r}.")
    return caps


def check_labels(y, m, classes):
    """``y`` as an array of ``m`` labels among ``classes`` (a wrong length or an unseen
    label, NaN included, is an error: never broadcast, never silently 'misclassified')."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"y has {y.shape[0] if y.ndim else 0} entries but X has {m} rows.")
    unseen = ~np.isin(y, classes)
    if np.any(unseen):
        raise ValueError(f"y contains labels not seen in fit: {y[unseen][:5].tolist()}; the "
                         f"classes are {np.asarray(classes).tolist()}.")
    return y


def certify_machine(model, X, y=None, *, norm="linf", max_radius=None, n_bisect=40,
                    interval="tight", batch_size=None):
    """Certified radii of a binary depth-1 bias-free NTK/NNGP machine (see module doc)."""
    _check_norm_interval(norm, interval)
    kind = _kernel_info(model)
    check_integer(n_bisect, "n_bisect")
    g = model.decision_function(X)
    X = check_array(X, dtype=np.float64)
    m, d = X.shape
    hi_r = radius_caps(max_radius, _pnorm(X, norm), m)
    valid = g != 0
    if y is not None:
        valid &= model.predict(X) == check_labels(y, m, model.classes_)
    device = fitted_device(model.device_, "certifying")
    Xfit = torch.as_tensor(model.X_fit_, dtype=torch.float64, device=device)
    beta = torch.as_tensor(np.asarray(model.dual_coef_, dtype=np.float64), device=device)
    Xn = Xfit.norm(dim=1)
    keep = (beta != 0) & (Xn > 0)  # the other training rows contribute exactly 0
    Xfit, beta, Xn = Xfit[keep], beta[keep], Xn[keep]
    b = float(model.intercept_)
    Xq = Xfit.abs().sum(1) if norm == "linf" else Xn
    c = model.w_std**4 / (2.0 * math.pi * d)
    n_train = max(Xfit.shape[0], 1)
    # one GEMM x . x_i per block of rows; the margin is evaluated on chunks of a block
    block = max(1, _CHUNK_BYTES // (8 * 4 * n_train))
    if batch_size is not None:
        chunk = check_integer(batch_size, "batch_size")
    elif device.type == "cuda":
        chunk = max(1, _CHUNK_BYTES // (8 * 16 * n_train))
    else:  # keep the pair temporaries in cache
        chunk = max(1, _CPU_CHUNK_PAIRS // n_train)
    radii = np.zeros(m)
    for first in range(0, m, block):
        Xb = as_tensor(X[first:first + block], "float64", device)
        dots = Xb @ Xfit.T
        for start in range(0, Xb.shape[0], chunk):
            rows = slice(start, min(start + chunk, Xb.shape[0]))
            order = start + np.argsort(-np.sign(g[first:][rows]), kind="stable")  # s=+1 first
            order_t = torch.as_tensor(order, device=device)
            sign = torch.as_tensor(np.sign(g[first + order]), device=device)
            margin = _Margin(Xb[order_t], dots[order_t], sign, Xn, Xq, beta, b, c, kind, norm,
                             interval)
            out = _certify_chunk(margin, torch.as_tensor(np.abs(g[first + order]), device=device),
                                 torch.as_tensor(hi_r[first + order], device=device), n_bisect)
            radii[first + order] = to_numpy(out)
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


def _inside_ball(xp, x0, rt, norm):
    """``xp`` with rows moved towards ``x0`` one ulp at a time until ``|xp - x0| <= rt`` holds
    as computed (rounding ``x0 + delta`` can land an ulp outside the ball)."""
    for _ in range(64):
        d = xp - x0
        size = d.abs().amax(dim=1, keepdim=True) if norm == "linf" else d.norm(dim=1,
                                                                                   keepdim=True)
        over = size > rt
        if not bool(over.any()):
            break
        xp = torch.where(over, torch.nextafter(xp, x0), xp)
    return xp


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
    n_steps = check_integer(n_steps, "n_steps")
    if step_size is not None:
        step_size = check_positive(step_size, "step_size")
    smooth, exact = _decision_fns(model)
    X = check_array(X, dtype=np.float64)
    m = X.shape[0]
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (m,)).copy()
    if not np.all(r > 0):
        raise ValueError(f"radius must be > 0; got {radius!r}.")
    g0 = exact(X)
    s = torch.as_tensor(np.sign(g0))
    x0 = as_tensor(X)
    rt = torch.as_tensor(r)[:, None]
    alpha = (2.5 * rt / n_steps) if step_size is None else torch.full_like(rt, float(step_size))

    def project(xp):
        delta = xp - x0
        if norm == "linf":
            delta = torch.maximum(torch.minimum(delta, rt), -rt)
        else:
            nrm = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(rt / torch.clamp(nrm, min=1e-300), max=1.0)
        return _inside_ball(x0 + delta, x0, rt, norm)

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
    ``2 ||x||_p``, so a zero row can only get 0 or ``inf``) and 0 for points on the decision
    boundary (decision value exactly 0).
    """
    check_integer(n_bisect, "n_bisect")
    check_integer(n_steps, "n_steps")
    X = check_array(X, dtype=np.float64)
    m = X.shape[0]
    # a zero row's default ball has radius 0: PGD needs a positive one
    hi = np.maximum(radius_caps(max_radius, 2.0 * _pnorm(X, norm), m), 1e-300)
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
    out[_decision_fns(model)[1](X) == 0] = 0.0  # on the boundary: nothing to flip
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
