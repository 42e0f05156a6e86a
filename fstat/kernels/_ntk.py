"""Analytic NNGP and NTK of fully connected ReLU networks (NTK parameterisation).

The recursion (spec §2.2) carries, for every pair of inputs, the three covariances of the
pre-activations and the NTK accumulator. Angles are computed as
``atan2(sqrt(max(ab - c^2, 0)), c)`` -- never ``arccos`` of a quotient -- so zero rows and
(anti)parallel pairs are exact. Everything is done on row tiles with in-place element-wise
passes; for ``Y=None`` the output is symmetrised and its diagonal replaced by the exact
closed-form diagonal.
"""

from __future__ import annotations

import math
import os
from numbers import Real

import numpy as np
import torch
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.validation import check_array

from .._torch import as_tensor, cuda_free_bytes, parse_dtype, resolve_device, to_numpy
from .._validation import check_integer
from .._warnings import warn_user

__all__ = [
    "ntk_kernel",
    "ntk_kernel_torch",
    "ntk_diag_torch",
    "NTKKernel",
    "h_closed",
    "k_closed",
    "U_STAR",
    "H_U_STAR",
]

#: minimiser of the depth-1 NTK shape function h on [-1, 1] (root of h'(u) = 0)
U_STAR = -0.7940998648103225
#: h(U_STAR), the most negative value of h
H_U_STAR = -0.4297378205183161

_KINDS = ("ntk", "nngp", "both")
_TWO_PI = 2.0 * math.pi
#: CPU tile size in bytes (one tile of the output and its scratch copies stay in cache)
_CPU_TILE_BYTES = 2**20
_MIN_CPU_ROWS = 16
#: residuals ab - c^2 below _SNAP * eps * ab are treated as exact zeros (parallel pairs)
_SNAP = 16.0


def h_closed(u):
    """Depth-1 bias-free NTK shape ``h(u) = 2u(pi - arccos u) + sqrt(1 - u^2)`` (numpy)."""
    u = np.clip(np.asarray(u, dtype=np.float64), -1.0, 1.0)
    return 2.0 * u * (np.pi - np.arccos(u)) + np.sqrt(np.maximum(1.0 - u * u, 0.0))


def k_closed(u):
    """Depth-1 bias-free NNGP shape ``k(u) = u(pi - arccos u) + sqrt(1 - u^2)`` (numpy)."""
    u = np.clip(np.asarray(u, dtype=np.float64), -1.0, 1.0)
    return u * (np.pi - np.arccos(u)) + np.sqrt(np.maximum(1.0 - u * u, 0.0))


def _check_hyper(depth, w_std, b_std, kind, block_size=None):
    check_integer(depth, "depth", minimum=0)
    if isinstance(w_std, bool) or not isinstance(w_std, Real) or not w_std > 0:
        raise ValueError(f"w_std must be a real number > 0; got w_std={w_std!r}.")
    if isinstance(b_std, bool) or not isinstance(b_std, Real) or not b_std >= 0:
        raise ValueError(f"b_std must be a real number >= 0; got b_std={b_std!r}.")
    if not isinstance(w_std, Real) or not math.isfinite(w_std) or not math.isfinite(b_std):
        raise ValueError("w_std and b_std must be finite.")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got kind={kind!r}.")
    if block_size is not None:
        check_integer(block_size, "block_size")


def ntk_diag_torch(X, *, depth=1, w_std=1.0, b_std=0.0, kind="ntk"):
    """Exact diagonal ``K(x, x)`` of the NNGP/NTK (theta = 0 at every layer), O(n d)."""
    _check_hyper(depth, w_std, b_std, kind)
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    bias_size = float(b_std) / float(w_std)
    k = X.square().sum(dim=1) / X.shape[1]
    exponents = None
    if not _squares_in_range(k, X.shape[1], bias_size) and _needs_row_scaling(X, bias_size):
        exponents = _row_exponents(X, bias_size)  # in units of 4^e_i: nothing overflows
        X = _times_pow2(X, -exponents[:, None])
        b2 = _times_pow2(torch.full_like(exponents, b2, dtype=X.dtype), -2 * exponents)
        k = X.square().sum(dim=1) / X.shape[1]
    theta = torch.zeros_like(k)
    for _ in range(depth):
        s = w2 * k + b2
        theta = (s + w2 * theta) / 2.0
        k = s / 2.0
    nngp = w2 * k + b2
    if depth == 0:
        ntk = nngp.clone()
    else:
        ntk = nngp + w2 * theta
    if exponents is not None:
        nngp, ntk = (_times_pow2(v, 2 * exponents) for v in (nngp, ntk))
    if kind == "ntk":
        return ntk
    if kind == "nngp":
        return nngp
    return nngp, ntk


def _row_sizes(X, bias_size):
    """Each row's largest entry in size, or the bias ``b / w`` in input units if larger."""
    return X.detach().abs().amax(dim=1).clamp(min=bias_size)


def _squares_in_range(k, d, bias_size):
    """A cheap sufficient condition for :func:`_needs_row_scaling` to be False, from the
    squared norms over ``d``, ``k``, that the recursion needs anyway (O(n) instead of the
    O(n d) pass over ``X``): a row's largest entry ``m`` has ``k <= m^2 <= d k``. A zero
    row, an overflow or an underflow sends the caller to the exact test."""
    if k.numel() == 0:
        return True
    info = torch.finfo(k.dtype)
    high = info.max / (16.0 * d)  # the exact test's bound on m^2
    low, top = (float(v) for v in torch.aminmax(k))
    # a factor 2 of slack: k and the bounds are rounded, possibly in opposite directions
    return (low >= 2.0 * info.tiny / info.eps and top <= high / (2.0 * d)
            and bias_size <= math.sqrt(high))


def _needs_row_scaling(X, bias_size):
    """Whether some row's squared norm or inner products could overflow or fall below the
    normal range: with no bias, a nonzero row whose largest entry is below about 1e-146, or
    any row above about 1e154 / sqrt(d) in float64. Such rows are brought to size one by
    :func:`_row_exponents`: with ``r_i = 2^e_i``, every layer's covariances of
    ``(x_i / r_i, y_j / r_j)`` with bias ``b^2 / (r_i r_j)`` are those of ``(x_i, y_j)``
    over ``r_i r_j`` (the arc-cosine map is homogeneous), and scaling by powers of two is
    exact."""
    if X.shape[0] == 0 or X.shape[1] == 0:
        return False
    info = torch.finfo(X.dtype)
    size = _row_sizes(X, bias_size)
    low = math.sqrt(info.tiny / info.eps)
    high = math.sqrt(info.max / (16.0 * X.shape[1]))
    return bool(((size > high) | ((size > 0) & (size < low))).any())


def _row_exponents(X, bias_size):
    """Power-of-two exponents ``e_i`` that bring each row's size (:func:`_row_sizes`) into
    ``[1, 2)`` (0 for zero rows)."""
    size = _row_sizes(X, bias_size)
    _, exponents = torch.frexp(size)
    return torch.where(size > 0, exponents - 1, 0)


def _times_pow2(t, exponents):
    """``t * 2**exponents`` for integer exponents, exact wherever the result is a normal
    number: applied in two halves, each of which is a representable power of two."""
    half = torch.div(exponents, 2, rounding_mode="floor")
    return t * torch.exp2(half.to(t.dtype)) * torch.exp2((exponents - half).to(t.dtype))


def _auto_block(n_y, itemsize, device):
    """Rows per tile.

    On CUDA: ~5 tile-sized temporaries within 1/8 of the free memory. On CPU the recursion
    makes ~20 element-wise passes per layer over each tile, so a tile is sized to stay in the
    core's cache (~1 MiB, at least 16 rows): about twice as fast as one big tile.
    """
    if device.type == "cuda":
        free = cuda_free_bytes(device)
        return max(1, int(free / 8 // max(1, 5 * n_y * itemsize)))
    return max(_MIN_CPU_ROWS, _CPU_TILE_BYTES // max(1, n_y * itemsize))


def _check_memory(n_x, n_y, n_out, itemsize, device):
    need = n_out * n_x * n_y * itemsize
    if device.type == "cuda":
        free = cuda_free_bytes(device)
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            return
    if need > 0.9 * free:
        raise MemoryError(
            f"the Gram matrix needs {need / 2**30:.2f} GiB but only {free / 2**30:.2f} GiB "
            f"is free on {device}; compute it in row blocks of X or use fewer samples."
        )


def _tile(Xb, Y, kx, ky, depth, w2, b2, want_nngp, want_ntk, out_nngp, out_ntk,
          ex=None, ey=None):
    """Fill one row tile of the output(s). ``kx``, ``ky`` are input-layer diagonals.

    The covariance K lives in the NNGP output tile (or a scratch tile), the NTK accumulator
    in the NTK output tile; two scratch tiles are reused across layers. Output tiles that are
    not contiguous (the upper part of a symmetric Gram) are computed in contiguous scratch
    tiles and copied in. ``ex``, ``ey`` are the row exponents of :func:`_row_exponents` when
    the rows were scaled: the bias is then taken in the units ``2^(ex_i + ey_j)`` of each
    entry, and the tile scaled back at the end.
    """
    views = (out_nngp, out_ntk)
    out_nngp, out_ntk = (
        None if v is None else (v if v.is_contiguous() else torch.empty(
            v.shape, dtype=v.dtype, device=v.device))
        for v in views
    )
    if ex is None:
        bias = (b2, b2, b2)
        _fill_tile(Xb, Y, kx, ky, depth, w2, bias, want_nngp, want_ntk, out_nngp, out_ntk)
    else:
        unit = ex[:, None] + ey[None, :]
        ones = kx.new_ones(())
        bias = tuple(_times_pow2(ones * b2, -e) for e in (unit, 2 * ex, 2 * ey))
        _fill_tile(Xb, Y, kx, ky, depth, w2, bias, want_nngp, want_ntk, out_nngp, out_ntk)
        for work in (out_nngp, out_ntk):
            if work is not None:
                work.copy_(_times_pow2(work, unit))
    for view, work in zip(views, (out_nngp, out_ntk)):
        if view is not None and work is not view:
            view.copy_(work)


def _products_representable(a, b):
    """Whether every ``a_i b_j`` is a normal float well below overflow, so the sin part can be
    formed as ``sqrt(max(ab - c^2, 0))``. Otherwise (inputs of norm beyond about 1e75 or, with
    no bias, below about 1e-73 in float64, or zero rows) the layer works in units of
    ``sqrt(a_i b_j)``, where nothing overflows or underflows."""
    info = torch.finfo(a.dtype)
    a_lo, a_hi = (float(v) for v in torch.aminmax(a))
    b_lo, b_hi = (float(v) for v in torch.aminmax(b))
    return a_hi * b_hi < info.max / 16.0 and a_lo * b_lo > info.tiny / info.eps


def _fill_tile(Xb, Y, kx, ky, depth, w2, bias, want_nngp, want_ntk, out_nngp, out_ntk):
    """The recursion of :func:`_tile` on contiguous output tiles.

    ``bias`` is ``b^2`` for the entries, the rows and the columns: three equal numbers, or
    a tile and two vectors in the units of scaled rows.
    """
    b2, b2_rows, b2_cols = bias
    d = Xb.shape[1]
    K = out_nngp if want_nngp else torch.empty_like(out_ntk)
    torch.matmul(Xb, Y.T, out=K)
    K.div_(d)
    theta_acc = out_ntk if want_ntk else None
    snap = 1.0 - _SNAP * torch.finfo(K.dtype).eps
    if depth:
        sin = torch.empty_like(K)
        ang = torch.empty_like(K)
    for layer in range(depth):
        # S = w^2 K + b^2 for the three entries
        K.mul_(w2).add_(b2)
        a = kx * w2 + b2_rows
        b = ky * w2 + b2_cols
        if want_ntk:
            if layer == 0:
                theta_acc.copy_(K)  # T = S + w^2 * 0
            else:
                theta_acc.mul_(w2).add_(K)
        # sin part sqrt(max(ab - c^2, 0)). A residual below _SNAP * eps * ab is rounding noise
        # of an exactly (anti)parallel pair: (1 - _SNAP eps) ab - c^2 <= 0 snaps it to 0, so
        # such pairs give theta = 0 or pi exactly (K(x, -x) = 0, K(x, 2x) = 2 K(x, x)).
        # a_i b_j that would overflow or underflow: the same in units of sqrt(a_i b_j).
        norm = None if _products_representable(a, b) else torch.outer(a.sqrt(), b.sqrt())
        if norm is None:
            torch.mul(a[:, None], b[None, :], out=sin)
            sin.mul_(snap).addcmul_(K, K, value=-1.0).clamp_(min=0.0).sqrt_()
        else:  # in units of sqrt(a_i b_j): c becomes the cosine (c = 0 where a_i b_j = 0)
            K.div_(torch.where(norm > 0, norm, 1.0))
            torch.addcmul(torch.full_like(K, snap), K, K, value=-1.0, out=sin)
            sin.clamp_(min=0.0).sqrt_()
        torch.atan2(sin, K, out=ang)  # theta in [0, pi]
        ang.neg_().add_(math.pi)  # pi - theta
        if want_ntk:
            theta_acc.mul_(ang).div_(_TWO_PI)
        # K <- (sin + (pi - theta) c) / (2 pi)
        K.mul_(ang).add_(sin).div_(_TWO_PI)
        if norm is not None:
            K.mul_(norm)
        kx = a / 2.0
        ky = b / 2.0
    # NNGP = w^2 K + b^2; NTK = NNGP + w^2 Theta
    K.mul_(w2).add_(b2)
    if want_ntk:
        if depth == 0:
            theta_acc.copy_(K)
        else:
            theta_acc.mul_(w2).add_(K)


def ntk_kernel_torch(X, Y=None, *, depth=1, w_std=1.0, b_std=0.0, kind="ntk", block_size=None,
                     out=None):
    """Analytic NNGP/NTK Gram matrix on torch tensors (same device and dtype as ``X``).

    Parameters
    ----------
    X : torch.Tensor of shape (n_X, d)
    Y : torch.Tensor of shape (n_Y, d), optional
        ``None`` computes ``K(X, X)``, exactly symmetric with the exact diagonal.
    depth : int, default=1
        Number of hidden ReLU layers ``L >= 0``.
    w_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations (``b_std=0`` means no bias parameters).
    kind : {"ntk", "nngp", "both"}, default="ntk"
    block_size : int, optional
        Rows of ``X`` per tile (default: ~1 MiB tiles that stay in cache on CPU, at least
        16 rows; on CUDA, temporaries within 1/8 of the free memory).
    out : torch.Tensor, optional
        Preallocated output of shape (n_X, n_Y) (``kind`` "ntk" or "nngp" only).

    Returns
    -------
    torch.Tensor, or a pair ``(nngp, ntk)`` for ``kind="both"``.

    Examples
    --------
    >>> import torch
    >>> from fstat.kernels import ntk_kernel_torch
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> ntk_kernel_torch(X)
    tensor([[0.5000, 0.0796],
            [0.0796, 0.5000]], dtype=torch.float64)
    """
    _check_hyper(depth, w_std, b_std, kind, block_size)
    if X.dim() != 2:
        raise ValueError(f"X must be 2-D; got shape {tuple(X.shape)}.")
    symmetric = Y is None
    if symmetric:
        Y = X
    elif Y.dim() != 2 or Y.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but Y has "
            f"{Y.shape[1] if Y.dim() == 2 else Y.shape} features; they must match."
        )
    Y = Y.to(device=X.device, dtype=X.dtype)
    n_x, n_y = X.shape[0], Y.shape[0]
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    want_nngp = kind in ("nngp", "both")
    want_ntk = kind in ("ntk", "both")
    itemsize = X.element_size()
    if out is not None:
        if kind == "both":
            raise ValueError("out= is supported for kind='ntk' or 'nngp' only.")
        if tuple(out.shape) != (n_x, n_y):
            raise ValueError(f"out must have shape {(n_x, n_y)}; got {tuple(out.shape)}.")
    else:
        _check_memory(n_x, n_y, 2 if kind == "both" else 1, itemsize, X.device)
    out_nngp = out_ntk = None
    if want_nngp:
        out_nngp = out if (out is not None and kind == "nngp") else X.new_empty((n_x, n_y))
    if want_ntk:
        out_ntk = out if out is not None else X.new_empty((n_x, n_y))
    if n_x == 0 or n_y == 0 or X.shape[1] == 0:
        if X.shape[1] == 0 and n_x and n_y:
            raise ValueError("X must have at least one feature.")
        return (out_nngp, out_ntk) if kind == "both" else (out_ntk if want_ntk else out_nngp)
    d = X.shape[1]
    Xs, Ys, ex_all, ey_all = X, Y, None, None
    bias_size = float(b_std) / float(w_std)
    kx_all = X.square().sum(dim=1) / d
    ky_all = kx_all if symmetric else Y.square().sum(dim=1) / d
    in_range = _squares_in_range(kx_all, d, bias_size) and (
        symmetric or _squares_in_range(ky_all, d, bias_size))
    if not in_range and (_needs_row_scaling(X, bias_size)
                 or (not symmetric and _needs_row_scaling(Y, bias_size))):
        # rows whose squares would overflow or underflow: work in units of 2^e_i per row
        ex_all = _row_exponents(X, bias_size)
        ey_all = ex_all if symmetric else _row_exponents(Y, bias_size)
        Xs = _times_pow2(X, -ex_all[:, None])
        Ys = Xs if symmetric else _times_pow2(Y, -ey_all[:, None])
        kx_all = Xs.square().sum(dim=1) / d
        ky_all = kx_all if symmetric else Ys.square().sum(dim=1) / d
    rows = block_size or _auto_block(n_y, itemsize, X.device)
    with torch.no_grad():
        for start in range(0, n_x, rows):
            stop = min(start + rows, n_x)
            # symmetric: only the tiles on and above the diagonal are computed
            cols = slice(start, None) if symmetric else slice(None)
            _tile(
                Xs[start:stop], Ys[cols], kx_all[start:stop], ky_all[cols], depth, w2, b2,
                want_nngp, want_ntk,
                out_nngp[start:stop, cols] if want_nngp else None,
                out_ntk[start:stop, cols] if want_ntk else None,
                None if ex_all is None else ex_all[start:stop],
                None if ey_all is None else ey_all[cols],
            )
        if symmetric:
            diag_nngp, diag_ntk = ntk_diag_torch(X, depth=depth, w_std=w_std, b_std=b_std,
                                                 kind="both")
            for mat, diag in ((out_nngp, diag_nngp), (out_ntk, diag_ntk)):
                if mat is None:
                    continue
                _mirror_upper_(mat, rows)
                mat.diagonal().copy_(diag)
    if kind == "both":
        return out_nngp, out_ntk
    return out_ntk if want_ntk else out_nngp


def _mirror_upper_(mat, rows):
    """Make ``mat`` bitwise symmetric from its row tiles on and above the diagonal.

    The square diagonal tiles hold both ``(i, j)`` and ``(j, i)``: they are averaged. Below
    them, each tile is the transpose of its mirror above the diagonal.
    """
    n = mat.shape[0]
    for i in range(0, n, rows):
        i2 = min(i + rows, n)
        block = mat[i:i2, i:i2]
        block.copy_((block + block.T) / 2.0)
        mat[i2:, i:i2].copy_(mat[i:i2, i2:].T)


def _validate_input(X, name):
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    return check_array(X, dtype=np.float64, input_name=name)


def gram_from_arrays(A, B, dtype, device, **params):
    """:func:`ntk_kernel_torch` of the arrays ``A``, ``B`` (None: symmetric) in ``dtype``.

    A float32 Gram that is not finite (squared norms of data beyond about 1e19 leave the
    float32 range), or whose products would be subnormal (a nonzero row whose entries are
    all below 1e-15 in size), is computed again in float64, with a warning: the callers
    return float64 anyway, and the float64 Gram is accurate wherever the data are.
    """
    with np.errstate(over="ignore"):  # data beyond the float32 range become inf: retried
        At = as_tensor(A, dtype, device)  # a copy: read-only inputs (pandas) stay quiet
        Bt = None if B is None else as_tensor(B, dtype, device)
    if dtype == torch.float32 and any(_tiny_rows(M) for M in (A, B) if M is not None):
        warn_user("the float32 NTK Gram would lose precision to subnormal products (rows "
                  "whose entries are all below 1e-15 in size); it was computed in float64 "
                  "instead.", UserWarning)
        return gram_from_arrays(A, B, torch.float64, device, **params)
    K = ntk_kernel_torch(At, Bt, **params)
    parts = K if isinstance(K, tuple) else (K,)
    if dtype == torch.float32 and not all(bool(torch.isfinite(k).all()) for k in parts):
        warn_user("the float32 NTK Gram is not finite (the data's squared norms leave the "
                  "float32 range); it was computed in float64 instead.", UserWarning)
        return gram_from_arrays(A, B, torch.float64, device, **params)
    return K


def _tiny_rows(M):
    """Whether a nonzero row of the data ``M`` (before any float32 cast, which would turn
    rows below about 1e-45 into zeros) has all entries below 1e-15 in size: its float32
    products, below about 1e-30, would approach the subnormal range."""
    if torch.is_tensor(M):
        size = M.detach().abs().amax(dim=1) if M.shape[1] else M.new_zeros(M.shape[0])
        return bool(((size > 0) & (size < 1e-15)).any())
    M = np.asarray(M, dtype=np.float64)
    size = np.abs(M).max(axis=1) if M.shape[1] else np.zeros(M.shape[0])
    return bool(np.any((size > 0) & (size < 1e-15)))


def ntk_kernel(X, Y=None, *, depth=1, w_std=1.0, b_std=0.0, kind="ntk", dtype="float64",
               device="auto", block_size=None):
    """Analytic NNGP or NTK Gram matrix of a fully connected ReLU network.

    NTK parameterisation with neural-tangents conventions: input layer kernel
    ``x.x'/d``, each hidden layer ``S = w_std^2 K + b_std^2`` followed by the ReLU
    arc-cosine expectations, ``NTK = NNGP + w_std^2 Theta`` (see the user guide).

    Parameters
    ----------
    X : array-like of shape (n_X, d)
    Y : array-like of shape (n_Y, d), optional
        Defaults to ``X``; then the result is exactly symmetric with exact diagonal.
    depth : int, default=1
        Number of hidden layers (0 gives the linear kernel ``w^2 x.x'/d + b^2``).
    w_std : float, default=1.0
    b_std : float, default=0.0
    kind : {"ntk", "nngp", "both"}, default="ntk"
        ``"both"`` returns ``(nngp, ntk)``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the computation (the output is always float64 numpy). float32 is
        accurate to about 1e-6 relative for generic rows, but angles below about 1e-3
        cannot be resolved from float32 inner products: nearly parallel rows, and deep
        kernels with ``b_std`` large next to ``w_std`` (which push every pair towards
        parallel), can be off by up to about 1e-4 relative. Use float64 there. A float32
        Gram that overflows (data near 1e19 and beyond) or would underflow (a nonzero row
        with every entry below 1e-15) is computed in float64, with a warning.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    block_size : int, optional
        Rows per tile (see :func:`ntk_kernel_torch`).

    Returns
    -------
    ndarray of shape (n_X, n_Y), or a pair for ``kind="both"``.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels import ntk_kernel
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    >>> ntk_kernel(X, device="cpu")  # antipodal inputs: depth-1 bias-free NTK is 0
    array([[0.5, 0. ],
           [0. , 0.5]])
    """
    _check_hyper(depth, w_std, b_std, kind, block_size)
    torch_dtype = parse_dtype(dtype)
    dev = resolve_device(device)
    Xa = _validate_input(X, "X")
    Ya = None if Y is None else _validate_input(Y, "Y")
    if Ya is not None and Ya.shape[1] != Xa.shape[1]:
        raise ValueError(
            f"X has {Xa.shape[1]} features but Y has {Ya.shape[1]} features; they must match."
        )
    result = gram_from_arrays(Xa, Ya, torch_dtype, dev, depth=depth, w_std=w_std,
                              b_std=b_std, kind=kind, block_size=block_size)
    if kind == "both":
        return to_numpy(result[0]), to_numpy(result[1])
    return to_numpy(result)


class NTKKernel(Kernel):
    """Analytic NTK/NNGP as a :mod:`sklearn.gaussian_process` kernel.

    Usable wherever scikit-learn accepts a kernel object: ``SVC(kernel=NTKKernel())``,
    ``KernelRidge(kernel=NTKKernel())``, ``GaussianProcessRegressor(kernel=...)``.
    It has no tunable hyperparameters (``theta`` is empty); multiply by a
    :class:`~sklearn.gaussian_process.kernels.ConstantKernel` to learn a scale.

    Parameters
    ----------
    depth : int, default=1
    w_std : float, default=1.0
    b_std : float, default=0.0
    kind : {"ntk", "nngp"}, default="ntk"
    dtype : {"float64", "float32"}, default="float64"
    device : str, default="auto"

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from fstat.kernels import NTKKernel
    >>> X = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -2.0], [-2.0, -1.0]])
    >>> SVC(kernel=NTKKernel(device="cpu")).fit(X, [1, 1, 0, 0]).predict(X)
    array([1, 1, 0, 0])
    """

    def __init__(self, depth=1, w_std=1.0, b_std=0.0, kind="ntk", dtype="float64",
                 device="auto"):
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.kind = kind
        self.dtype = dtype
        self.device = device

    def _check_kind(self):
        if self.kind not in ("ntk", "nngp"):
            raise ValueError(f"kind must be 'ntk' or 'nngp'; got kind={self.kind!r}.")

    def __call__(self, X, Y=None, eval_gradient=False):
        self._check_kind()
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        K = ntk_kernel(X, Y, depth=self.depth, w_std=self.w_std, b_std=self.b_std,
                       kind=self.kind, dtype=self.dtype, device=self.device)
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[0], 0))
        return K

    def diag(self, X):
        self._check_kind()
        _check_hyper(self.depth, self.w_std, self.b_std, self.kind)
        Xt = as_tensor(_validate_input(X, "X"), torch.float64)
        return to_numpy(ntk_diag_torch(Xt, depth=self.depth, w_std=self.w_std,
                                       b_std=self.b_std, kind=self.kind))

    def is_stationary(self):
        return False

    @property
    def requires_vector_input(self):
        return True

    def __repr__(self):
        return (f"NTKKernel(depth={self.depth}, w_std={self.w_std}, b_std={self.b_std}, "
                f"kind={self.kind!r})")
