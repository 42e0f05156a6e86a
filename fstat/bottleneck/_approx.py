"""Random-Fourier-feature and Nyström approximations of the CS estimators (O(N D d)).

Every kernel sum of the estimators is a sum of a *unit-width* Gaussian kernel on
pre-scaled, concatenated inputs (product-kernel identity), e.g.
``sum_i K_ji L_ji = sum_i k_1(z_j - z_i)`` with ``z = [x / sigma_x, y / sigma_y]``.
With a feature map ``phi`` (``k_1(u - v) ~ phi(u)^T phi(v)``) full sums become
``||sum_i phi(z_i)||^2`` and row sums ``phi(z_j)^T sum_i phi(z_i)``, computed in two
streamed passes over row chunks (column sums, then row terms): O(N D d) time and
O(D + chunk D) memory.

CS-QMI departs from a separate map of the concatenated ``[x, t]``: its joint term uses
the tensor product of the x- and t-maps, ``sum_ij K_ij Q_ij ~ ||Phi_x^T Phi_t||_F^2``
(O(N D^2) time, O(D^2) memory), so that all three terms share the same approximate
kernels. CS-QMI is a small difference of logs; with independent maps the feature noise
of the three terms does not cancel and errors of several hundred percent were measured
on weakly dependent 16-dimensional data, against a few percent with shared maps.

Approximate sums can be <= 0; they are floored at their exact lower bounds (kernel
values are positive and self-terms are 1) -- never ``abs()`` -- and a
``RuntimeWarning`` reports the fraction of floored rows when it exceeds 1%.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from .._warnings import warn_user
from ..kernels._gram import gaussian_gram

_CHUNK = 65536
#: the approximate CS-QMI's joint term keeps about four D x D matrices (the running sum, one
#: block, its square and, in training, a gradient)
_MAX_CROSS_BYTES = 2**32


def check_qmi_components(n_components, dtype, kind, n_rows):
    """Refuse a feature count whose D x D CS-QMI matrices would exceed 4 GiB.

    ``D`` is ``n_components``, or at most ``n_rows`` landmarks for ``kind="nystroem"``.

    Raises
    ------
    ValueError
        Naming ``n_components``, the memory it needs and the largest allowed value.
    """
    d = min(n_components, n_rows) if kind == "nystroem" else n_components
    itemsize = torch.finfo(dtype).bits // 8
    need = 4 * d * d * itemsize
    if need > _MAX_CROSS_BYTES:
        largest = math.isqrt(_MAX_CROSS_BYTES // (4 * itemsize))
        raise ValueError(
            f"n_components={n_components} makes the approximate CS-QMI keep about four "
            f"{d} x {d} matrices ({need / 2**30:.0f} GiB in {dtype}); use n_components <= "
            f"{largest} (its joint term uses the tensor product of the x- and t-feature "
            "maps, O(D^2) memory)."
        )


class FeatureMap:
    """A feature map of the unit-width Gaussian kernel on ``R^d``.

    ``kind="rff"``: ``phi(u) = sqrt(2 / D) cos(u W + b)``, ``W ~ N(0, I)``,
    ``b ~ U[0, 2 pi)``. ``kind="nystroem"``: ``phi(u) = k(u, Z) k(Z, Z)^{-1/2}`` with
    ``D`` landmark rows ``Z`` of ``pool`` drawn without replacement (all rows when
    ``D >= len(pool)``); eigenvalues below ``max(1e-12, eps) * max`` are floored, ``eps``
    the machine epsilon of ``dtype`` (repeated landmarks make ``k(Z, Z)`` singular, and in
    float32 its inverse square root would amplify the rounding of ``k(u, Z)`` a millionfold).
    """

    def __init__(self, kind, d, n_components, generator, dtype, device, pool=None):
        self.kind = kind
        if kind == "rff":
            W = torch.randn(d, n_components, generator=generator, dtype=torch.float64)
            b = torch.rand(n_components, generator=generator, dtype=torch.float64)
            self.W = W.to(device, dtype)
            self.b = (2.0 * math.pi * b).to(device, dtype)
            self.factor = math.sqrt(2.0 / n_components)
        else:  # pool: a tensor or a _Concat of row-aligned tensors
            n = pool.shape[0]
            if n_components >= n:
                index = torch.arange(n)
            else:
                index = torch.randperm(n, generator=generator)[:n_components]
            self.Z = pool[index.to(pool.device)]  # only the landmark rows are materialised
            K = gaussian_gram(self.Z, None, 1.0).to(torch.float64)
            relative_floor = max(1e-12, torch.finfo(dtype).eps)
            self.normalization = _FlooredInverseSqrt.apply(K, relative_floor).to(dtype)

    def __call__(self, u):
        if self.kind == "rff":
            h = torch.addmm(self.b, u, self.W)
            if torch.is_grad_enabled() and u.requires_grad:
                return self.factor * torch.cos(h)
            return h.cos_().mul_(self.factor)  # in place: no autograd, fewer temporaries
        return gaussian_gram(u, self.Z, 1.0) @ self.normalization


class _FlooredInverseSqrt(torch.autograd.Function):
    """``K^{-1/2}`` of a symmetric PSD matrix with eigenvalues floored at
    ``relative_floor * max eigenvalue``, with a backward pass that stays finite when
    eigenvalues repeat.

    Landmarks computed from a network's representation (training with ``t`` rows) can
    coincide: ``K`` then has repeated (zero) eigenvalues, and the generic ``eigh`` backward,
    which divides by eigenvalue gaps, gave NaN gradients. The derivative of the matrix
    function ``f(K) = V f(L) V^T`` is ``V (F * (V^T G V)) V^T`` with the divided
    differences ``F_ij = (f(l_i) - f(l_j)) / (l_i - l_j)`` (``f'(l_i)`` where the
    eigenvalues are equal). For ``f(l) = max(l, c)^{-1/2}`` they are computed without
    cancellation as ``-r_ij / (s_i s_j (s_i + s_j))``, ``s = sqrt(max(l, c))`` and
    ``r_ij = (max(l_i, c) - max(l_j, c)) / (l_i - l_j)`` in ``[0, 1]``. The floor ``c``
    is held fixed in the derivative.
    """

    @staticmethod
    def forward(ctx, K, relative_floor):
        vals, vecs = torch.linalg.eigh(K)
        floor = relative_floor * float(vals.max())
        clamped = vals.clamp_min(floor)
        root = clamped.sqrt()
        ctx.save_for_backward(vals, vecs, clamped, root)
        ctx.floor = floor
        return (vecs / root) @ vecs.T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        vals, vecs, clamped, root = ctx.saved_tensors
        gap = vals[:, None] - vals[None, :]
        equal_above = ((gap == 0) & (vals[:, None] > ctx.floor)).to(vals.dtype)
        ratio = torch.where(gap != 0, (clamped[:, None] - clamped[None, :])
                            / torch.where(gap != 0, gap, 1.0), equal_above)
        divided = -ratio / (root[:, None] * root[None, :] * (root[:, None] + root[None, :]))
        inner = vecs.T @ ((grad + grad.T) / 2.0) @ vecs
        return vecs @ (divided * inner) @ vecs.T, None


class _Concat:
    """Column-wise concatenation of row-aligned tensors, materialised per row block only."""

    def __init__(self, *parts):
        self.parts = parts
        self.shape = (parts[0].shape[0], sum(p.shape[1] for p in parts))
        self.dtype, self.device = parts[0].dtype, parts[0].device

    def __getitem__(self, index):
        return torch.cat([p[index] for p in self.parts], dim=1)


def _chunks(n, chunk_size):
    step = n if chunk_size is None else max(1, int(chunk_size))
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


class _Features:
    """Feature blocks of ``u`` under ``phi``; a single block (no chunking) is computed once."""

    def __init__(self, phi, u, chunk_size):
        self.phi, self.u = phi, u
        self.parts = _chunks(u.shape[0], chunk_size)
        self.cached = phi(u[self.parts[0]]) if len(self.parts) == 1 else None

    def blocks(self):
        if self.cached is not None:
            yield self.cached
            return
        for part in self.parts:
            yield self.phi(self.u[part])

    def column_sum(self):
        total = None
        for block in self.blocks():
            s = block.sum(dim=0)
            total = s if total is None else total + s
        return total

    def row_sums(self, column_sum):
        return torch.cat([block @ column_sum for block in self.blocks()])


def _column_sum(phi, u, chunk_size):
    return _Features(phi, u, chunk_size).column_sum()


def _rounding_margin(dtype):
    """Relative shortfall below a floor that rounding alone can explain (sqrt(eps)): an
    exact sum at its lower bound (a Nyström map with every row a landmark, tiny widths)
    lands a few ulps either side of it. Such sums are floored but not counted."""
    return math.sqrt(torch.finfo(dtype).eps)


class _Floors:
    """Counts floored row sums and warns once when more than 1% of rows were floored
    by more than rounding."""

    def __init__(self):
        self.floored = 0
        self.rows = 0

    def rows_floor(self, values, floor):
        low = values < floor
        self.floored += int((values < floor * (1.0 - _rounding_margin(values.dtype))).sum())
        self.rows += values.numel()
        return torch.where(low, floor if torch.is_tensor(floor) else values.new_tensor(floor),
                           values)

    def scalar_floor(self, value, floor):
        self.rows += 1
        number = float(value.detach())
        if not number >= floor:
            if not number >= floor * (1.0 - _rounding_margin(value.dtype)):
                self.floored += 1
            return value.new_tensor(floor)
        return value

    def warn(self):
        if self.rows and self.floored / self.rows > 0.01:
            warn_user(
                f"approximate kernel sums were floored at their exact lower bounds in "
                f"{self.floored / self.rows:.1%} of rows; increase n_components.",
                RuntimeWarning,
            )


def _map(kind, pool, n_components, generator):
    return FeatureMap(kind, pool.shape[1], n_components, generator, pool.dtype, pool.device,
                      pool=pool)


def approx_cs_divergence(a, b, sigma, kind, n_components, generator, *, chunk_size=_CHUNK):
    a, b = a / sigma, b / sigma
    phi = _map(kind, torch.cat([a, b]), n_components, generator)
    floors = _Floors()
    sa, sb = _column_sum(phi, a, chunk_size), _column_sum(phi, b, chunk_size)
    tiny = torch.finfo(a.dtype).tiny
    aa = floors.scalar_floor(sa @ sa, float(a.shape[0]))
    bb = floors.scalar_floor(sb @ sb, float(b.shape[0]))
    ab = floors.scalar_floor(sa @ sb, tiny)
    floors.warn()
    return aa.log() + bb.log() - 2.0 * ab.log()




def approx_cs_qmi(x, t, sigma_x, sigma_t, kind, n_components, generator, *, normalized=False,
                  chunk_size=_CHUNK):
    if normalized:
        num = approx_cs_qmi(x, t, sigma_x, sigma_t, kind, n_components, generator,
                            chunk_size=chunk_size)
        den = (approx_cs_qmi(x, x, sigma_x, sigma_x, kind, n_components, generator,
                             chunk_size=chunk_size)
               * approx_cs_qmi(t, t, sigma_t, sigma_t, kind, n_components, generator,
                               chunk_size=chunk_size))
        if not float(den.detach()) > 0:
            warn_user("normalised CS-QMI has a zero denominator (a constant input); "
                      "returning 0.0.", RuntimeWarning)
            return num * 0.0
        return num / den.sqrt()
    check_qmi_components(n_components, x.dtype, kind, x.shape[0])
    n = x.shape[0]
    u, v = x / sigma_x, t / sigma_t
    phi_u = _map(kind, u, n_components, generator)
    phi_v = _map(kind, v, n_components, generator)
    floors = _Floors()
    fu, fv = _Features(phi_u, u, chunk_size), _Features(phi_v, v, chunk_size)
    su, sv = fu.column_sum(), fv.column_sum()
    # A with the tensor product of the two maps: sum_ij K_ij Q_ij ~ ||Phi_u^T Phi_v||_F^2.
    # A, B and C then use the *same* approximate kernels, so the estimate is the exact
    # CS-QMI of those kernels (0 for constant t) and the feature noise largely cancels.
    cross = None
    for bu, bv in zip(fu.blocks(), fv.blocks()):
        block = bu.T @ bv
        cross = block if cross is None else cross + block
    a_sum = floors.scalar_floor(cross.square().sum(), float(n))
    b_sum = floors.scalar_floor((su @ su) * (sv @ sv), float(n) ** 2)
    row_k = floors.rows_floor(fu.row_sums(su), 1.0)
    row_q = floors.rows_floor(fv.row_sums(sv), 1.0)
    c_sum = floors.scalar_floor((row_k * row_q).sum(), float(n))
    floors.warn()
    log_n = math.log(n)
    return ((a_sum.log() - 2 * log_n) + (b_sum.log() - 4 * log_n)
            - 2.0 * (c_sum.log() - 3 * log_n))


def approx_conditional_cs(x, y, y_pred, sigma_x, sigma_y, kind, n_components, generator, *,
                          chunk_size=_CHUNK):
    u = x / sigma_x
    z1 = _Concat(u, y / sigma_y)
    z2 = _Concat(u, y_pred / sigma_y)
    phi_x = _map(kind, u, n_components, generator)
    pool = _Concat(torch.cat([u, u]), torch.cat([y, y_pred]) / sigma_y)
    phi_z = _map(kind, pool, n_components, generator)
    floors = _Floors()
    fx = _Features(phi_x, u, chunk_size)
    f1, f2 = _Features(phi_z, z1, chunk_size), _Features(phi_z, z2, chunk_size)
    sx, s1, s2 = fx.column_sum(), f1.column_sum(), f2.column_sum()
    row_k = floors.rows_floor(fx.row_sums(sx), 1.0)
    log_w = -2.0 * row_k.log()
    diag21 = torch.exp(-0.5 * ((y_pred - y) / sigma_y).square().sum(dim=1))
    r1 = floors.rows_floor(f1.row_sums(s1), 1.0)
    r2 = floors.rows_floor(f2.row_sums(s2), 1.0)
    r21 = floors.rows_floor(f2.row_sums(s1), diag21)
    floors.warn()

    def log_s(rows):
        return torch.logsumexp(log_w + rows.log(), dim=0)

    return log_s(r1) + log_s(r2) - 2.0 * log_s(r21)
