"""Exact and trajectory solvers of the NTK kernel machines (spec §2.5).

Every solver minimises, for one column of targets ``y``,

    P(beta, b) = sum_i w_i l(g_i, y_i) + (lam / 2) beta' K beta,   g = K beta + b,

and returns a :class:`Solution`. Zero-weight rows are removed by the caller. All work is
float64 torch on the Gram's device, except dual coordinate descent, which runs on CPU
numpy (its inner loop is sequential).

Box-constrained duals share one representation: ``H_ij = s_i s_j K[idx_i, idx_j] + r_i
delta_ij`` with a row map ``idx`` into K, signs ``s`` and a diagonal ``r``; hinge and squared
hinge have ``idx = 0..n-1, s = y``; the epsilon-insensitive dual stacks ``(a+, a-)`` with
``idx = (0..n-1, 0..n-1)`` and ``s = (+1, -1)``. H is never materialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.linalg.blas import daxpy as _daxpy
from sklearn.exceptions import ConvergenceWarning

from .._warnings import warn_user
from ._losses import LOSSES

__all__ = [
    "Solution",
    "primal_objective",
    "solve_cholesky",
    "solve_box",
    "solve_logistic",
    "solve_subgradient",
    "solve_libsvm",
    "with_intercept_search",
    "power_max_eig",
    "cholesky_jitter",
]


@dataclass
class Solution:
    beta: torch.Tensor
    b: float = 0.0
    n_iter: int = 1
    converged: bool = True
    gap: float = float("nan")
    objective: float = float("nan")
    state: object = None
    trajectory: dict = field(default=None)
    method: str | None = None  # the solver(s) that ran, where it differs from the one asked


# ----------------------------------------------------------------------------- helpers
def primal_objective(K, beta, b, y, w, lam, loss, epsilon=0.0):
    """``sum w l(K beta + b, y) + lam/2 beta' K beta`` (float)."""
    Kb = K @ beta
    value = LOSSES[loss].value(Kb + b, y, epsilon)
    return float((w * value).sum() + 0.5 * lam * (beta @ Kb))


def cholesky_jitter(A, *, what="kernel matrix"):
    """Cholesky factor of ``A`` with escalating jitter tau * mean(diag) (1e-12 .. 1e-6)."""
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return L
    scale = float(A.diagonal().mean().abs()) or 1.0
    tau = 1e-12
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    while tau <= 1e-6 * (1 + 1e-9):
        L, info = torch.linalg.cholesky_ex(A + (tau * scale) * eye)
        if int(info) == 0:
            if tau > 1e-10:
                warn_user(
                    f"the {what} needed a jitter of {tau:.0e} x mean(diag) to factorise; "
                    "it is numerically singular.", RuntimeWarning)
            return L
        tau *= 100
    raise ValueError(
        f"the {what} is not positive semidefinite (Cholesky failed even with a jitter of "
        "1e-6 x mean(diag)); check a precomputed or callable kernel."
    )


def power_max_eig(K, n_iter=50, start=None):
    """Largest eigenvalue of a PSD matrix by power iteration (default start: all ones).

    Iterates with ``K v / max|K|`` and scales back (no copy of ``K``): the norm of ``K v``
    squares entries, which overflows for Gram entries beyond ~1e154 (float64).
    """
    top = max(abs(float(K.max())), abs(float(K.min()))) if K.numel() else 0.0
    if top == 0.0 or not math.isfinite(top):
        return top
    v = torch.ones(K.shape[0], dtype=K.dtype, device=K.device) if start is None else start
    v = v / v.norm()
    mu = 0.0
    for _ in range(n_iter):
        u = (K @ v) / top
        norm = float(u.norm())
        if norm == 0.0:
            return 0.0
        mu = float(v @ u)
        v = u / norm
    return top * max(mu, norm)


# ----------------------------------------------------------------------------- cholesky
def solve_cholesky(K, Y, w, lam, fit_intercept=False):
    """Squared loss: ``beta = S (S K S + lam/2 I)^-1 S y`` (all columns of Y at once).

    Returns ``(beta (n, k), b (k,), warned)``.
    """
    n = K.shape[0]
    sw = w.sqrt()
    if fit_intercept:
        A = K + torch.diag(0.5 * lam / w) if lam > 0 else K.clone()
        L = cholesky_jitter(A)
        ones = torch.ones((n, 1), dtype=K.dtype, device=K.device)
        Ainv_y = torch.cholesky_solve(Y, L)
        Ainv_1 = torch.cholesky_solve(ones, L)
        b = (Ainv_y.sum(0)) / Ainv_1.sum()
        beta = Ainv_y - Ainv_1 * b[None, :]
        return beta, b
    M = sw[:, None] * K * sw[None, :]
    rhs = sw[:, None] * Y
    if lam > 0:
        M.diagonal().add_(0.5 * lam)
        L = cholesky_jitter(M)
        u = torch.cholesky_solve(rhs, L)
    else:  # minimum-norm interpolant
        mu, V = torch.linalg.eigh(M)
        keep = mu > n * torch.finfo(M.dtype).eps * mu.max().clamp(min=0)
        inv = torch.where(keep, 1.0 / torch.where(keep, mu, torch.ones_like(mu)),
                          torch.zeros_like(mu))
        u = V @ (inv[:, None] * (V.T @ rhs))
        resid = (K @ (sw[:, None] * u) - Y).norm()
        if float(resid) > 1e-6 * float(Y.norm()):
            warn_user(
                f"lam=0: the minimum-norm solution does not interpolate (relative residual "
                f"{float(resid) / max(float(Y.norm()), 1e-300):.1e}); the kernel matrix is "
                "singular on these data.", RuntimeWarning)
    beta = sw[:, None] * u
    return beta, torch.zeros(Y.shape[1], dtype=K.dtype, device=K.device)


# ----------------------------------------------------------------------------- box duals
class BoxDual:
    """``min 1/2 z'Hz + q'z`` on ``lo <= z <= hi`` with H given through K (see module doc)."""

    def __init__(self, K, idx, s, r, q, lo, hi):
        self.K, self.idx, self.s, self.r, self.q = K, idx, s, r, q
        self.lo, self.hi = lo, hi
        self.n = K.shape[0]

    def matvec(self, z):
        v = torch.zeros(self.n, dtype=z.dtype, device=z.device)
        v.index_add_(0, self.idx, self.s * z)
        return self.s * (self.K @ v)[self.idx] + self.r * z

    def f(self, z, Hz):
        return float(0.5 * (z @ Hz) + self.q @ z)

    def sub(self, F):
        i = self.idx[F]
        H = self.K[i][:, i] * (self.s[F][:, None] * self.s[F][None, :])
        H.diagonal().add_(self.r[F])
        return H

    def diag(self):
        return self.K.diagonal()[self.idx] + self.r

    def projected_gradient(self, z, G):
        pg = G.clone()
        at_lo = z <= self.lo
        at_hi = z >= self.hi
        pg[at_lo] = torch.clamp(G[at_lo], max=0.0)
        pg[at_hi] = torch.clamp(G[at_hi], min=0.0)
        return pg

    def project(self, z):
        return torch.maximum(torch.minimum(z, self.hi), self.lo)


def _too_large(z, K, y_scale):
    dmax = float(K.diagonal().max()) if K.shape[0] else 1.0
    return float(z.abs().max()) > 1e12 * (1 + y_scale) / max(dmax, 1e-300)


#: damping of the free block tried in turn when a projected Newton step is not accepted
_NEWTON_DAMPING = (0.0, 1e-6, 1e-3, 1.0)


def _newton_direction(prob, z, G, pg, free, fixed, at_lo, at_hi, damping):
    """Projected Newton direction: Newton on the free block (damped by ``damping`` x its mean
    diagonal), a diagonally scaled gradient step for fixed variables near a bound."""
    d = torch.zeros_like(z)
    for _ in range(20):  # drop free variables whose Newton move leaves the box at once
        d = torch.zeros_like(z)
        F = free.nonzero().squeeze(1)
        if not F.numel():
            break
        H = prob.sub(F)
        if damping > 0:
            H.diagonal().add_(damping * float(H.diagonal().mean().abs() or 1.0))
        L = cholesky_jitter(H, what="free block of the dual Hessian")
        d[F] = -torch.cholesky_solve(G[F][:, None], L)[:, 0]
        out = free & ((at_lo & (d < 0)) | (at_hi & (d > 0)))
        if not bool(out.any()):
            break
        free &= ~out
    # fixed variables near (not at) their bound: diagonally scaled gradient step, which
    # the projection stops at the bound (Bertsekas' d_A = -D_A G_A)
    near = fixed & ~at_lo & ~at_hi
    if bool(near.any()):
        diag = prob.diag()[near]
        d[near] = -G[near] / torch.where(diag > 0, diag, torch.ones_like(diag))
    if not bool((d != 0).any()):
        d = -pg  # projected gradient step when the Newton direction is empty
    return d


def _projected_armijo(prob, z, d, G, f):
    """Backtracking (at most 40 halvings) on the projected path ``P(z + t d)``."""
    t = 1.0
    for _ in range(41):
        zt = prob.project(z + t * d)
        Hzt = prob.matvec(zt)
        ft = prob.f(zt, Hzt)
        if ft <= f + 1e-4 * float(G @ (zt - z)):
            return zt, Hzt, ft, True
        t *= 0.5
    return zt, Hzt, ft, False


def _box_newton(prob, z, tol, max_iter, pairs=None, blowup=None):
    Hz = prob.matvec(z)
    G = Hz + prob.q
    f = prob.f(z, Hz)
    width = prob.hi - prob.lo
    finite_width = torch.isfinite(width)
    for it in range(1, max_iter + 1):
        pg = prob.projected_gradient(z, G)
        if float(pg.abs().max()) <= tol:
            return z, it, True
        step_norm = float((z - prob.project(z - G)).abs().max())
        eps_k = torch.where(finite_width, torch.clamp(1e-3 * width, max=step_norm),
                            torch.full_like(z, step_norm))
        fixed = ((z <= prob.lo + eps_k) & (G > 0)) | ((z >= prob.hi - eps_k) & (G < 0))
        free = ~fixed
        if pairs is not None:  # SVR: keep at most one of (a+_i, a-_i) free
            m = pairs
            both = free[:m] & free[m:]
            if bool(both.any()):
                plus_larger = z[:m] >= z[m:]
                drop_minus = both & plus_larger
                drop_plus = both & ~plus_larger
                free[m:][drop_minus] = False
                free[:m][drop_plus] = False
        at_lo, at_hi = z <= prob.lo, z >= prob.hi
        # a singular free block (a low-rank kernel, or SVR's paired variables) can give a
        # Newton direction that no step length accepts: retry with the block damped by
        # mu * mean(diag), which bends the direction towards a scaled gradient step
        for mu in _NEWTON_DAMPING:
            d = _newton_direction(prob, z, G, pg, free.clone(), fixed, at_lo, at_hi, mu)
            zt, Hzt, ft, accepted = _projected_armijo(prob, z, d, G, f)
            if accepted and not bool(torch.equal(zt, z)):
                break
        else:
            # stalled (degenerate active set or rounding): finish with coordinate descent
            gen = torch.Generator().manual_seed(0)
            z, extra, conv = _box_cd(prob, z, tol, 1000, gen, blowup=blowup)
            return z, it + extra, conv
        z, Hz, f = zt, Hzt, ft
        G = Hz + prob.q
        if blowup is not None and blowup(z):
            return z, it, None
    pg = prob.projected_gradient(z, G)
    return z, max_iter, float(pg.abs().max()) <= tol


def _cd_pass(H, G, z, lo, hi, order):
    """One sequential coordinate-descent sweep over ``order`` (positions into ``H``/``G``/``z``).

    ``H`` is the dense Hessian block of the cached variables (Fortran order, so a column is
    contiguous), ``G`` their gradient and ``z`` their values; ``z`` is updated in place and
    the updated gradient returned, exactly as plain coordinate descent would update them
    (every cached variable's gradient is kept current). Returns ``(G, moved, deltas)``.
    """
    diag = H.diagonal().tolist()
    lo_l, hi_l = lo.tolist(), hi.tolist()
    moved, deltas = [], []
    inf = math.inf
    for k in order.tolist():
        g = G.item(k)
        zk = z.item(k)
        hkk = diag[k]
        if hkk > 0.0:
            new = zk - g / hkk
            if new < lo_l[k]:
                new = lo_l[k]
            elif new > hi_l[k]:
                new = hi_l[k]
        elif g > 0.0:
            new = lo_l[k]
        elif g < 0.0 and hi_l[k] != inf:
            new = hi_l[k]
        else:
            continue
        delta = new - zk
        if delta != 0.0:
            z[k] = new
            G = _daxpy(H[:, k], G, a=delta)  # G += delta * H[:, k], in place
            moved.append(k)
            deltas.append(delta)
    return G, moved, deltas


def _box_cd(prob, z, tol, max_iter, generator, block=256, blowup=None, cache_limit=4096):
    """Dual coordinate descent with shrinking (Hsieh et al. 2008, kernelised).

    Each epoch visits the *active* variables in a random order from ``generator``. A
    variable at a bound whose gradient points out of the box by more than the previous
    epoch's largest projected-gradient violation is shrunk (removed from the active set);
    when the active set satisfies the stopping rule the gradient is recomputed from scratch
    for all variables, everything is unshrunk, and the solver stops only if the full
    projected gradient satisfies ``max |PG| <= tol``. While the active set has at most
    ``cache_limit`` variables its Hessian block is cached, so an epoch is one sequential
    sweep that keeps the active gradient current; larger active sets are swept in blocks of
    ``block`` coordinates with one matrix product per block.
    """
    K = prob.K.detach().cpu().numpy()
    idx = prob.idx.cpu().numpy()
    s = prob.s.cpu().numpy()
    r = prob.r.cpu().numpy()
    q = prob.q.cpu().numpy()
    lo = prob.lo.cpu().numpy()
    hi = prob.hi.cpu().numpy()
    zz = z.detach().cpu().numpy().copy()
    m = zz.size

    def full_grad(zv):
        v = np.zeros(prob.n)
        np.add.at(v, idx, s * zv)
        return s * (K @ v)[idx] + r * zv + q

    def hess(rows, cols):
        """``H[rows][:, cols]`` without the diagonal term, in Fortran order (gathered in
        slabs of 512 rows, so the temporary stays at 512 x n)."""
        ri, ci = idx[rows], idx[cols]
        H = np.empty((ri.size, ci.size), order="F")
        for start in range(0, ri.size, 512):
            H[start:start + 512] = K.take(ri[start:start + 512], axis=0).take(ci, axis=1)
        H *= s[rows][:, None]
        H *= s[cols][None, :]
        return H

    def proj_grad(sel, G_sel):
        pg = G_sel.copy()
        at_lo = zz[sel] <= lo[sel]
        at_hi = zz[sel] >= hi[sel]
        pg[at_lo] = np.minimum(pg[at_lo], 0.0)
        pg[at_hi] = np.maximum(pg[at_hi], 0.0)
        return pg

    G = full_grad(zz)
    active = np.arange(m)
    cached, H_c = None, None  # cached variables (a superset of the active set), their Hessian
    pg_max_old, pg_min_old = math.inf, -math.inf
    converged = False
    epoch = 0
    for epoch in range(1, max_iter + 1):  # noqa: B007
        if m == 0:
            converged = True
            break
        z_act, G_act = zz[active], G[active]
        shrink = (((z_act <= lo[active]) & (G_act > pg_max_old))
                  | ((z_act >= hi[active]) & (G_act < pg_min_old)))
        if shrink.any():
            active = active[~shrink]
        n_act = active.size
        perm = torch.randperm(n_act, generator=generator).numpy()
        if n_act <= cache_limit:
            if H_c is None or 4 * n_act < 3 * cached.size:
                cached = active
                H_c = hess(cached, cached)
                H_c[np.diag_indices(cached.size)] += r[cached]
            z_c = zz[cached]
            G_c, _, _ = _cd_pass(H_c, G[cached], z_c, lo[cached], hi[cached],
                                 np.searchsorted(cached, active)[perm])
            zz[cached], G[cached] = z_c, G_c
        else:
            cached, H_c = None, None
            for start in range(0, n_act, block):
                B = active[perm[start:start + block]]
                HBB = hess(B, B)
                HBB[np.diag_indices(B.size)] += r[B]
                zB = zz[B]
                _, moved, deltas = _cd_pass(HBB, G[B], zB, lo[B], hi[B], np.arange(B.size))
                if moved:
                    Bm = B[moved]
                    dz = np.asarray(deltas)
                    zz[Bm] = zB[moved]
                    # K is symmetric: gather rows (contiguous) rather than columns
                    G += s * (((s[Bm] * dz) @ K[idx[Bm]])[idx])
                    G[Bm] += r[Bm] * dz
        if blowup is not None and blowup(torch.as_tensor(zz)):
            return torch.as_tensor(zz, device=z.device), epoch, None
        pg = proj_grad(active, G[active])
        pg_max = float(pg.max()) if pg.size else 0.0
        pg_min = float(pg.min()) if pg.size else 0.0
        if max(pg_max, -pg_min) <= tol:
            # active set optimal: recompute the gradient (drift, shrunk variables), unshrink
            G = full_grad(zz)
            if float(np.abs(proj_grad(slice(None), G)).max()) <= tol:
                converged = True
                break
            if active.size < m:
                active = np.arange(m)
                cached, H_c = None, None
            pg_max_old, pg_min_old = math.inf, -math.inf
            continue
        pg_max_old = pg_max if pg_max > 0 else math.inf
        pg_min_old = pg_min if pg_min < 0 else -math.inf
    return torch.as_tensor(zz, device=z.device), epoch, converged


def build_box(K, y, w, lam, loss, epsilon, b):
    """Dual problem for hinge / squared hinge / epsilon-insensitive with a fixed offset b."""
    n = K.shape[0]
    dev, dt = K.device, K.dtype
    inf = torch.full((n,), math.inf, dtype=dt, device=dev)
    C = w / lam if lam > 0 else inf
    zero = torch.zeros(n, dtype=dt, device=dev)
    arange = torch.arange(n, device=dev)
    if loss == "hinge":
        return BoxDual(K, arange, y, zero, -(1.0 - y * b), zero, C)
    if loss == "squared_hinge":
        return BoxDual(K, arange, y, 0.5 * lam / w, -(1.0 - y * b), zero, inf)
    ones = torch.ones(n, dtype=dt, device=dev)
    target = y - b
    return BoxDual(K, torch.cat([arange, arange]), torch.cat([ones, -ones]),
                   torch.zeros(2 * n, dtype=dt, device=dev),
                   torch.cat([epsilon - target, epsilon + target]),
                   torch.zeros(2 * n, dtype=dt, device=dev), torch.cat([C, C]))


def box_beta(z, y, loss, n):
    if loss == "epsilon_insensitive":
        return z[:n] - z[n:]
    return z * y


#: the largest box (dual variables) that an unconverged coordinate descent hands to projected
#: Newton when the solver was chosen automatically (Newton factorises free blocks: O(m^3))
NEWTON_FINISH_MAX = 5000


def solve_box(K, y, w, lam, loss, *, epsilon=0.0, b=0.0, solver="cd", tol=1e-6,
              max_iter=None, generator=None, warm=None, finish_with_newton=False):
    """Exact solution of a box-constrained dual (projected Newton or coordinate descent).

    ``finish_with_newton`` (the automatic solver choice): when coordinate descent stops
    before the tolerance (ill-conditioned duals converge slowly) and the box has at most
    ``NEWTON_FINISH_MAX`` variables, projected Newton continues from its iterate (at most
    ``max_iter`` more iterations, 500 by default).
    """
    n = K.shape[0]
    prob = build_box(K, y, w, lam, loss, epsilon, b)
    z = warm.clone() if warm is not None else torch.zeros_like(prob.q)
    y_scale = float(y.abs().max()) if n else 1.0
    blowup = (lambda zv: _too_large(zv, K, y_scale)) if lam == 0 else None
    pairs = n if loss == "epsilon_insensitive" else None
    method = None
    if solver == "newton":
        z, n_iter, conv = _box_newton(prob, z, tol, max_iter or 500, pairs=pairs,
                                      blowup=blowup)
    else:
        z, n_iter, conv = _box_cd(prob, z, tol, max_iter or 1000, generator, blowup=blowup)
        if (finish_with_newton and conv is False and lam > 0
                and z.numel() <= NEWTON_FINISH_MAX):
            z, extra, conv = _box_newton(prob, z, tol, max_iter or 500, pairs=pairs,
                                         blowup=blowup)
            n_iter, method = n_iter + extra, "cd+newton"
    if lam == 0 and conv is not True:
        warn_user("data are not separable by this kernel machine; no hard-margin solution "
                  "(lam=0) exists. Use lam > 0.", ConvergenceWarning)
        conv = False
    beta = box_beta(z, y, loss, n)
    Hz = prob.matvec(z)
    dual = prob.f(z, Hz)
    P = primal_objective(K, beta, b, y, w, lam, loss, epsilon)
    if lam > 0:
        gap = (P + lam * dual) / max(1.0, abs(P))
    else:  # hard margin: 1/2 beta'K beta vs 1'a - 1/2 a'Ha
        half = 0.5 * float(beta @ (K @ beta))
        gap = (half + dual) / max(1.0, half)
    return Solution(beta=beta, b=b, n_iter=int(n_iter), converged=bool(conv), gap=float(gap),
                    objective=P, state=z, method=method)


# ----------------------------------------------------------------------------- logistic
def solve_logistic(K, y, w, lam, *, b=0.0, tol=1e-6, max_iter=None, warm=None):
    """Newton's method with the Woodbury system (spec §2.5(c))."""
    n = K.shape[0]
    beta = warm.clone() if warm is not None else torch.zeros(n, dtype=K.dtype, device=K.device)
    max_iter = max_iter or 100

    def F_of(bt):
        Kb = K @ bt
        return float((w * torch.nn.functional.softplus(-y * (Kb + b))).sum()
                     + 0.5 * lam * (bt @ Kb)), Kb

    F, Kb = F_of(beta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        g = Kb + b
        s = torch.sigmoid(-y * g)
        r = w * (-y * s) + lam * beta
        if float(r.abs().max()) <= tol:
            converged = True
            break
        a = (w * s * (1 - s)).sqrt()
        M = a[:, None] * K * a[None, :]
        M.diagonal().add_(lam)
        L = cholesky_jitter(M, what="logistic Newton system")
        Kr = K @ r
        delta = -(r - a * torch.cholesky_solve((a * Kr)[:, None], L)[:, 0]) / lam
        slope = float(Kr @ delta)
        t = 1.0
        for _ in range(40):
            cand = beta + t * delta
            Fc, Kc = F_of(cand)
            if Fc <= F + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            # near the optimum F stops decreasing in floating point: accept the full Newton
            # step if it reduces the optimality residual, otherwise stop
            cand = beta + delta
            Fc, Kc = F_of(cand)
            sc = torch.sigmoid(-y * (Kc + b))
            if float((w * (-y * sc) + lam * cand).abs().max()) >= float(r.abs().max()):
                break
        beta, F, Kb = cand, Fc, Kc
    return Solution(beta=beta, b=b, n_iter=it, converged=converged, objective=F, state=beta)


# ----------------------------------------------------------------------------- intercept
def with_intercept_search(solve_fixed_b, scale, tol):
    """Bracket and bisect ``h(b) = sum_i beta_i(b)`` (non-increasing in b), spec §2.5(d)."""
    cache = {}

    def h(b, warm):
        sol = solve_fixed_b(b, warm)
        cache[b] = sol
        return float(sol.beta.sum()), sol

    lo, hi = -scale, scale
    h_lo, s_lo = h(lo, None)
    h_hi, s_hi = h(hi, s_lo.state)
    for _ in range(60):
        if h_lo >= 0 >= h_hi:
            break
        if h_lo < 0:
            lo, hi, h_hi, s_hi = 2 * lo, lo, h_lo, s_lo
            h_lo, s_lo = h(lo, s_lo.state)
        else:
            lo, hi, h_lo, s_lo = hi, 2 * hi, h_hi, s_hi
            h_hi, s_hi = h(hi, s_hi.state)
    best = s_lo if abs(h_lo) <= abs(h_hi) else s_hi
    total_iter = 0
    for _ in range(100):
        if hi - lo <= 1e-10 * max(1.0, abs(lo), abs(hi)):
            break
        mid = 0.5 * (lo + hi)
        h_mid, s_mid = h(mid, best.state)
        total_iter += s_mid.n_iter
        best = s_mid
        if abs(h_mid) <= tol * max(1.0, float(s_mid.beta.abs().sum())):
            break
        if h_mid > 0:
            lo = mid
        else:
            hi = mid
    best.n_iter = max(best.n_iter, 1)
    return best


# ----------------------------------------------------------------------------- libsvm
def _libsvm_tol(tol):
    # libsvm's stopping rule is on the maximal KKT violation; below ~1e-8 its SMO loop
    # stalls in rounding and can run for minutes, so the request is floored there
    return min(max(tol, 1e-8), 1e-3)


def solve_libsvm(K, y, w, lam, loss, *, epsilon=0.1, tol=1e-6):
    """Delegate hinge / epsilon-insensitive **with intercept** to scikit-learn's libsvm."""
    from sklearn.svm import SVC, SVR

    Kn = K.detach().cpu().numpy()
    yn = y.detach().cpu().numpy()
    wn = w.detach().cpu().numpy()
    C = 1.0 / lam
    if loss == "hinge":
        model = SVC(kernel="precomputed", C=C, tol=_libsvm_tol(tol))
    else:
        model = SVR(kernel="precomputed", C=C, epsilon=epsilon, tol=_libsvm_tol(tol))
    # unit weights are libsvm's default (per-sample C = C); skip the weight validation then
    model.fit(Kn, yn, sample_weight=None if bool(np.all(wn == 1.0)) else wn)
    beta = np.zeros(Kn.shape[0])
    # SVC's dual_coef_ is for classes_[1] = +1 when the labels are {-1, +1}
    beta[model.support_] = model.dual_coef_[0]
    b = float(model.intercept_[0])
    beta_t = torch.as_tensor(beta, dtype=K.dtype, device=K.device)
    P = primal_objective(K, beta_t, b, y, w, lam, loss, epsilon)
    return Solution(beta=beta_t, b=b, n_iter=int(np.max(model.n_iter_)), converged=True,
                    objective=P)


# ----------------------------------------------------------------------------- subgradient
def default_lr(K, w, lam, loss, *, intercept=False):
    """``1 / (c_l mu_max(W^1/2 K W^1/2) + lam)``, 50 power iterations from ``sqrt(w)``, x1.05.

    ``mu_max(W^1/2 K W^1/2) <= max(w) mu_max(K)``; the weighted form makes a weight-2 row
    give exactly the same step as a duplicated row (scikit-learn's sample-weight equivalence
    check of :class:`NTKNetwork`, which always runs the dynamics); with equal weights it is
    the specification's ``1 / (c_l max(w) mu_max(K) + lam)``. With ``intercept`` the step
    ``b <- b - lr sum_i w_i l'_i`` moves ``g = K beta + b`` along the constant kernel too, so
    ``K + 1 1^T`` replaces ``K`` (the specification's rule alone can diverge for smooth losses
    when ``sum(w)`` outweighs ``mu_max(K)``).
    """
    sw = w.sqrt()
    M = sw[:, None] * K * sw[None, :]
    if intercept:
        M.addr_(sw, sw)
    mu = power_max_eig(M, start=sw.clone()) * 1.05
    return 1.0 / (LOSSES[loss].curvature * mu + lam)


def record_set(record_steps, max_iter):
    if record_steps is None:
        return None
    if isinstance(record_steps, (int, np.integer)) and not isinstance(record_steps, bool):
        k = int(record_steps)
        steps = set(range(0, max_iter + 1, k))
        steps.add(max_iter)
        return steps
    steps = {int(s) for s in record_steps}
    if any(s < 0 or s > max_iter for s in steps):
        raise ValueError(f"record_steps must lie in [0, max_iter={max_iter}]; got "
                         f"{sorted(steps)}.")
    return steps


def solve_subgradient(K, Y, w, lam, loss, *, epsilon=0.0, lr, max_iter, fit_intercept=False,
                      record=None, progress=None):
    """The paper's function-space (sub)gradient dynamics, all columns at once.

    ``beta <- (1 - lr lam) beta - lr w * l'(K beta + b, y)``,
    ``b <- b - lr sum_i w_i l'_i`` (only with an intercept). Exactly ``max_iter`` steps.
    """
    n, k = Y.shape
    beta = torch.zeros((n, k), dtype=K.dtype, device=K.device)
    b = torch.zeros(k, dtype=K.dtype, device=K.device)
    deriv = LOSSES[loss].deriv
    value = LOSSES[loss].value
    traj = {"step": [], "dual_coef": [], "intercept": [], "objective": []} if record else None
    W = w[:, None]

    def snapshot(step, Kb):
        obj = (W * value(Kb + b, Y, epsilon)).sum(0) + 0.5 * lam * (beta * Kb).sum(0)
        traj["step"].append(step)
        traj["dual_coef"].append(beta.detach().cpu().to(torch.float64).numpy().copy())
        traj["intercept"].append(b.detach().cpu().to(torch.float64).numpy().copy())
        traj["objective"].append(obj.detach().cpu().to(torch.float64).numpy().copy())

    Kb = torch.zeros_like(beta)
    if record and 0 in record:
        snapshot(0, Kb)
    # hinge / epsilon-insensitive derivatives are piecewise constant: between steps only the
    # rows crossing a kink change, so K dl is updated from those columns and K beta follows
    # the same recursion as beta; K beta is recomputed exactly every 50 steps
    sparse = loss in ("hinge", "epsilon_insensitive")
    dl_prev = K_dl = None
    for step in range(1, max_iter + 1):
        dl = W * deriv(Kb + b, Y, epsilon)
        beta = (1.0 - lr * lam) * beta - lr * dl
        if fit_intercept:
            b = b - lr * dl.sum(0)
        if sparse and K_dl is not None and step % 50 != 0:
            changed = (dl != dl_prev).any(1).nonzero().squeeze(1)
            if changed.numel() * 8 < n:  # K symmetric: gather rows, not columns
                K_dl = K_dl + K[changed].T @ (dl[changed] - dl_prev[changed])
            else:
                K_dl = K @ dl
            Kb = (1.0 - lr * lam) * Kb - lr * K_dl
        else:
            Kb = K @ beta
            K_dl = K @ dl if sparse else None
        dl_prev = dl
        if step % 50 == 0 or step == max_iter:
            if not bool(torch.isfinite(Kb).all()):
                raise RuntimeError(f"the subgradient iterates diverged at step {step}; "
                                   "reduce lr.")
        if record and step in record:
            snapshot(step, Kb)
        if progress is not None:
            progress.update(1)
    if traj is not None:
        traj = {key: np.asarray(v) for key, v in traj.items()}
    return beta, b, traj
