"""Gaussian Gram matrices and bandwidth rules shared by several families.

Convention: ``kappa_sigma(x, y) = exp(-||x - y||^2 / (2 sigma^2))`` -- ``sigma`` is a
*width*, never a precision ``gamma``. Every function takes torch tensors and returns
tensors on the input's device and dtype, differentiable with respect to ``X`` and ``Y``
(no square roots in the differentiable path, so no NaN gradients at zero distance).
Bandwidth rules are computed without autograd and return Python floats.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .._torch import make_generator
from .._warnings import warn_user

__all__ = [
    "sq_dists",
    "gram_from_sq_dists",
    "gaussian_gram",
    "log_gaussian_gram",
    "median_heuristic",
    "median_and_total_from_sq_dists",
    "median_from_sq_dists",
    "batch_medians_from_sq_dists",
    "batch_sq_dists",
    "silverman_width",
    "resolve_bandwidth",
]

#: rows per chunk when a squared-distance block would otherwise exceed this many entries
_CHUNK_ENTRIES = 2**25
#: entries of the norm expansion below this fraction of ||x||^2 + ||y||^2 are recomputed from
#: differences: there the expansion's rounding (about d eps (||x||^2 + ||y||^2)) is not small
#: relative to the distance itself
_NEAR_FRACTION = 1e-2


def _as_2d(X):
    return X[:, None] if X.dim() == 1 else X


def sq_dists(X, Y=None, *, chunk_size=None, refine_near=None):
    """Squared Euclidean distances between the rows of ``X`` and ``Y``.

    Computed as ``||x||^2 + ||y||^2 - 2 x.y`` after centring both inputs by the
    mean of ``X`` (which removes most cancellation), clamped at 0. With ``Y=None``
    the result has an exactly zero diagonal and is exactly symmetric (with
    ``refine_near`` on, as by default for inputs without gradients; otherwise symmetric
    to rounding, and for an input without gradients formed in one block from the
    product's own diagonal). One-dimensional data use
    direct differences, which are exact. Pairs of (nearly) coincident rows, where
    the expansion's rounding is not small next to the distance, are recomputed as
    sums of squared differences, so equal rows are exactly 0 apart.

    Parameters
    ----------
    X : torch.Tensor of shape (n, d) or (n,)
    Y : torch.Tensor of shape (m, d) or (m,), optional
    chunk_size : int, optional
        Rows of ``X`` per block; by default chosen so a block holds at most about
        ``2**25`` entries. Blocks only bound temporaries; the output is still (n, m).
    refine_near : bool, optional
        Recompute near-coincident pairs from differences. The default does so unless
        an input requires gradients: differentiable inputs are training-time
        representations with data-driven widths, where rounding far below the width
        does not matter and the check would cost a host synchronisation per step on a
        GPU. False skips it (and the exact symmetrisation); True forces it.

    Returns
    -------
    torch.Tensor of shape (n, m)

    Examples
    --------
    >>> import torch
    >>> from fstat.kernels._gram import sq_dists
    >>> sq_dists(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    tensor([[ 0., 25.],
            [25.,  0.]])
    """
    X = _as_2d(X)
    symmetric = Y is None
    Y = X if symmetric else _as_2d(Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of columns; got {X.shape[1]} and {Y.shape[1]}."
        )
    if X.shape[1] == 1:
        return (X - Y.T).square()
    center = X.mean(dim=0, keepdim=True).detach()
    Xc = X - center
    if refine_near is None:
        refine_near = not (X.requires_grad or Y.requires_grad)
    rows_per_block = chunk_size or max(1, _CHUNK_ENTRIES // max(Y.shape[0], 1))
    if symmetric and not (refine_near or X.requires_grad) and rows_per_block >= X.shape[0]:
        return _sq_dists_from_gram(Xc)
    x_norm = Xc.square().sum(dim=1, keepdim=True)
    if symmetric:  # the same values as for a separate Y = X, computed once
        Yc, y_norm = Xc, x_norm.T
    else:
        Yc = Y - center
        y_norm = Yc.square().sum(dim=1, keepdim=True).T
    n = Xc.shape[0]
    blocks = []
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        # one product with the norms added in the same call (no separate -2 and subtract)
        block = torch.addmm(x_norm[start:stop] + y_norm, Xc[start:stop], Yc.T,
                            alpha=-2.0).clamp_min_(0.0)
        if refine_near:
            block = _refine_near(block, X[start:stop], Y, x_norm[start:stop], y_norm)
        blocks.append(block)
    D = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=0)
    if symmetric:
        if refine_near:
            # the product Xc Xc^T is not bitwise symmetric (blocked BLAS): the larger of the
            # two halves, exactly symmetric without overflow or a second temporary
            # (refine_near=False skips this)
            D = torch.maximum(D, D.T)
        if D.requires_grad:  # keep the graph free of in-place writes
            D = D * (1.0 - torch.eye(n, dtype=D.dtype, device=D.device))
        else:
            D.fill_diagonal_(0.0)
    return D


def _sq_dists_from_gram(Xc):
    """Squared distances among the rows of the centred ``Xc`` from its Gram matrix
    ``G = Xc Xc^T``: ``G_ii + G_jj - 2 G_ij``, clamped at 0 (no autograd use). The norms
    are the product's own diagonal, so the diagonal is exactly 0 (where the squared norms
    are finite) and the symmetry is that of the product; one product and three passes (the
    training terms' fast path)."""
    G = Xc @ Xc.T
    norms = G.diagonal()
    return torch.add(norms[:, None], norms).sub_(G, alpha=2.0).clamp_min_(0.0)


def batch_sq_dists(X):
    """``sq_dists(X[b])`` for every matrix of a stack, in one product.

    The same expansion (rows centred by their matrix's mean, clamped at 0, zero diagonal;
    direct differences for one column; near-coincident pairs recomputed from differences,
    so equal rows are exactly 0 apart) batched over the leading dimension, for the
    data-only Gram matrices of many equal-sized training batches at once; symmetric to
    rounding (not symmetrised). No autograd.

    Parameters
    ----------
    X : torch.Tensor of shape (B, n, d)

    Returns
    -------
    torch.Tensor of shape (B, n, n)

    Examples
    --------
    >>> import torch
    >>> from fstat.kernels._gram import batch_sq_dists
    >>> batch_sq_dists(torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 2.0]]]))
    tensor([[[ 0., 25.],
             [25.,  0.]],
    <BLANKLINE>
            [[ 0.,  1.],
             [ 1.,  0.]]])
    """
    with torch.no_grad():
        X = X.detach()
        if X.shape[2] == 1:
            return (X - X.transpose(1, 2)).square_()
        Xc = X - X.mean(dim=1, keepdim=True)
        G = torch.bmm(Xc, Xc.transpose(1, 2))
        norms = G.diagonal(dim1=1, dim2=2)
        pair_norms = norms[:, :, None] + norms[:, None, :]
        D = torch.sub(pair_norms, G, alpha=2.0).clamp_min_(0.0)
        # near-coincident pairs (the diagonal among them) from differences, each pair
        # against its own norms: the expansion leaves duplicate rows rounding noise apart,
        # which would hide a zero median (mostly duplicate rows) from the degenerate-width
        # test
        # The diagonal is exactly 0 (set, not recomputed); other near pairs are rare in
        # continuous data, so the mask is only gathered when it has any (one selection
        # instead of one per diagonal entry on every call)
        D.diagonal(dim1=1, dim2=2).zero_()
        near = D <= pair_norms.mul_(_NEAR_FRACTION)
        near.diagonal(dim1=1, dim2=2).fill_(False)
        if bool(near.any()):
            b, i, j = near.nonzero(as_tuple=True)
            D[b, i, j] = (X[b, i] - X[b, j]).square().sum(dim=1)
        return D


def _refine_near(block, Xb, Y, x_norm, y_norm):
    """``block`` with its near-coincident entries recomputed as sums of squared differences
    of the uncentred rows (exact differences where coordinates agree to a factor of 2).

    One scalar threshold from the largest norms screens the block in a single pass; it selects
    every near pair (and possibly a few more, which are then simply computed exactly too).
    """
    limit = _NEAR_FRACTION * (float(x_norm.detach().max()) + float(y_norm.detach().max()))
    rows, cols = (block <= limit).nonzero(as_tuple=True)
    if rows.numel() == 0:
        return block
    exact = (Xb[rows] - Y[cols]).square().sum(dim=1)
    if block.requires_grad:  # out of place: keep the autograd graph free of in-place writes
        return block.index_put((rows, cols), exact)
    return block.index_put_((rows, cols), exact)


def gram_from_sq_dists(D, sigma, *, log=False):
    """Gaussian (log-)Gram from precomputed squared distances.

    The exponent is formed as ``-0.5 * ((D / sigma) / sigma)`` -- never ``sigma**2``,
    which underflows for tiny widths -- so zero distances give exactly 0 (log) / 1.

    Parameters
    ----------
    D : torch.Tensor
        Squared distances (non-negative).
    sigma : float
        Kernel width, > 0.
    log : bool, default=False
        Return the log-Gram instead of the Gram.
    """
    sigma = _check_sigma(sigma)
    log_gram = -0.5 * ((D / sigma) / sigma)
    return log_gram if log else torch.exp(log_gram)


def gaussian_gram(X, Y=None, sigma=1.0):
    """Gaussian Gram matrix ``exp(-||x_i - y_j||^2 / (2 sigma^2))``.

    Parameters
    ----------
    X : torch.Tensor of shape (n, d) or (n,)
    Y : torch.Tensor of shape (m, d) or (m,), optional
    sigma : float, default=1.0

    Returns
    -------
    torch.Tensor of shape (n, m)
    """
    return gram_from_sq_dists(sq_dists(X, Y), sigma)


def log_gaussian_gram(X, Y=None, sigma=1.0, normalized=False):
    """Log of the Gaussian Gram; with ``normalized=True`` the log-density of N(y; x, sigma^2 I).

    Parameters
    ----------
    X, Y : torch.Tensor
    sigma : float, default=1.0
    normalized : bool, default=False
        Subtract ``(d / 2) log(2 pi sigma^2)``.
    """
    out = gram_from_sq_dists(sq_dists(X, Y), sigma, log=True)
    if normalized:
        d = _as_2d(X).shape[1]
        sigma = float(sigma)
        out = out - 0.5 * d * (math.log(2.0 * math.pi) + 2.0 * math.log(sigma))
    return out


def _check_sigma(sigma):
    if isinstance(sigma, torch.Tensor):
        if not bool(torch.all(torch.isfinite(sigma) & (sigma > 0))):
            raise ValueError(f"sigma must be finite and > 0; got sigma={sigma!r}.")
        return sigma
    if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.floating | np.integer):
        raise TypeError(f"sigma must be a positive number; got sigma={sigma!r}.")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0; got sigma={sigma!r}.")
    return float(sigma)


def _as_tensor_2d(X):
    if not isinstance(X, torch.Tensor):
        X = torch.as_tensor(np.array(X, dtype=np.float64, copy=True))
    return _as_2d(X.detach())


def _subsample(X, max_samples, random_state):
    n = X.shape[0]
    if max_samples is None or n <= max_samples:
        return X
    generator = (
        random_state if isinstance(random_state, torch.Generator) else make_generator(random_state)
    )
    index = torch.randperm(n, generator=generator)[:max_samples].to(X.device)
    return X[index]


def median_heuristic(X, *, max_samples=2000, random_state=None, generator=None,
                     zero_fallback=True):
    """Median Euclidean distance between distinct rows (pairs ``i < j``).

    An even number of pairs uses the mean of the two middle values (numpy's
    convention), so the result equals ``numpy.median(scipy.spatial.distance.pdist(X))``.
    If the median is 0 (many duplicates) the mean of the non-zero distances is used;
    if every distance is 0 the width is 1.0 and a ``UserWarning`` is emitted.
    ``zero_fallback=False`` returns a zero median as 0.0 instead (no warning; the
    caller applies its own degenerate-width rule).

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n, d) or (n,)
    max_samples : int or None, default=2000
        Above this many rows, a random subset of rows is used.
    random_state : None, int, RandomState or torch.Generator
        Draws the subset.
    generator : torch.Generator, optional
        Alias of ``random_state`` for callers holding a generator.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels._gram import median_heuristic
    >>> median_heuristic(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    if generator is not None:
        random_state = generator
    width, problem = median_width(X, max_samples=max_samples, random_state=random_state,
                                  zero_fallback=zero_fallback)
    if problem is not None:
        warn_user(problem, UserWarning)
        return 1.0
    return width


def median_width(X, *, max_samples=2000, random_state=None, zero_fallback=True):
    """:func:`median_heuristic` without warnings: ``(width, None)``, or ``(None, reason)``
    where it would fall back to 1.0 (callers that apply their own rule use this; catching
    the warning instead is not thread-safe, other threads' warnings are caught too)."""
    with torch.no_grad():
        X = _subsample(_as_tensor_2d(X), max_samples, random_state)
        if X.shape[0] < 2:
            return None, "median_heuristic needs at least 2 rows; using width 1.0."
        median = median_from_sq_dists(sq_dists(X.to(torch.float64)),
                                      zero_fallback=zero_fallback)
    if median is None:
        return None, ("All pairwise distances are zero; the median heuristic falls back to "
                      "width 1.0.")
    return median, None


def median_from_sq_dists(D, *, zero_fallback=True):
    """The median-heuristic width from a precomputed symmetric squared-distance matrix.

    Same rule as :func:`median_heuristic` (pairs ``i < j``, numpy's even-count
    convention, mean of the positive distances when the median is 0) for callers
    that already hold ``sq_dists(X)``; returns ``None`` when every distance is 0
    (the caller chooses the fallback). No autograd.

    Parameters
    ----------
    D : torch.Tensor of shape (n, n), n >= 2
    zero_fallback : bool, default=True
        False: return the plain median, 0.0 included (never ``None``).

    Returns
    -------
    float or None
    """
    with torch.no_grad():
        n = D.shape[0]
        if D.device.type == "cpu":
            sq = np.take(D.detach().numpy(), _upper_triangle(n))
            median = _median_of_sqrt(sq)
            if median > 0 or not zero_fallback:
                return median
            dists = np.sqrt(sq)
            positive = dists[dists > 0]
            return float(positive.mean()) if positive.size else None
        iu = torch.triu_indices(n, n, offset=1, device=D.device)
        sq = D.detach()[iu[0], iu[1]]
        median = _rows_median_of_sqrt(sq[None])[0]
        if median > 0 or not zero_fallback:
            return median
        dists = sq.sqrt()
        positive = dists[dists > 0]
        if positive.numel() > 0:
            return float(positive.mean())
    return None


@functools.lru_cache(maxsize=8)
def _upper_triangle(n):
    """Flat (row-major) numpy indices of the pairs i < j of n rows (cached: one batch size
    per fit)."""
    rows, cols = np.triu_indices(n, 1)
    return rows * n + cols


def _median_of_sqrt(sq):
    """numpy's median of ``sqrt(sq)`` for a numpy array ``sq`` by order selection.

    The square root is monotone, so the middle order statistics of the squared values
    give those of the distances; an even count averages the two middle distances. One
    ``numpy.partition`` and the minimum above it (the same order statistics, several
    times faster than the torch selection for a 128-row batch); tensors elsewhere than on
    the CPU use :func:`_rows_median_of_sqrt`.
    """
    m = sq.size
    k = (m + 1) // 2  # 1-based rank of the lower middle value
    part = np.partition(sq, k - 1)  # one selection; the next rank is the upper part's min
    lower = float(np.sqrt(part[k - 1]))  # in the array's dtype, as before
    return lower if m % 2 else 0.5 * (lower + float(np.sqrt(part[k:].min())))


def _rows_median_of_sqrt(sq):
    """:func:`_median_of_sqrt` of every row of a tensor ``sq`` (B, m): the same order
    statistics (``kthvalue``, then the smallest larger value unless the middle is tied),
    selected for all rows at once and read back in one transfer (one host
    synchronisation on a GPU)."""
    m = sq.shape[1]
    k = (m + 1) // 2
    lower_sq = sq.kthvalue(k, dim=1).values
    if m % 2:
        return lower_sq.sqrt().tolist()
    lower = lower_sq[:, None]
    # NaN sorts last, as in numpy: a row with NaN has a NaN upper middle value
    upper_sq = torch.where((sq > lower) | sq.isnan(), sq, torch.inf).amin(dim=1)
    # tied at the middle: the (k+1)-th smallest is lower_sq itself
    tied = ((sq <= lower).sum(dim=1) > k) & ~upper_sq.isnan()
    upper_sq = torch.where(tied, lower_sq, upper_sq)
    pairs = torch.stack((lower_sq.sqrt(), upper_sq.sqrt()), dim=1).tolist()
    return [lo if lo == up else 0.5 * (lo + up) for lo, up in pairs]


def median_and_total_from_sq_dists(D):
    """``(median_from_sq_dists(D, zero_fallback=False), sum of D)`` for one symmetric
    squared-distance matrix with a zero diagonal (no autograd). On the CPU one gather of
    the pairs ``i < j`` serves both (the total is twice their sum, to rounding), which
    saves a pass and a tensor reduction per training step.

    Parameters
    ----------
    D : torch.Tensor of shape (n, n), n >= 2

    Returns
    -------
    (float, float)
    """
    with torch.no_grad():
        D = D.detach()
        if D.device.type == "cpu":
            pairs = np.take(D.numpy(), _upper_triangle(D.shape[0]))
            return _median_of_sqrt(pairs), 2.0 * float(pairs.sum())
        return median_from_sq_dists(D, zero_fallback=False), float(D.sum())


def batch_medians_from_sq_dists(D):
    """Plain median widths (``zero_fallback=False`` of :func:`median_from_sq_dists`) of a
    stack of symmetric squared-distance matrices (one gather of the pairs ``i < j``, then
    the selections: per matrix with numpy on the CPU, for all matrices at once elsewhere,
    with one host synchronisation on a GPU).

    Parameters
    ----------
    D : torch.Tensor of shape (B, n, n), n >= 2

    Returns
    -------
    list of float
    """
    with torch.no_grad():
        B, n = D.shape[0], D.shape[1]
        flat = D.detach().reshape(B, n * n)
        if D.device.type == "cpu":
            return [_median_of_sqrt(row)
                    for row in np.take(flat.numpy(), _upper_triangle(n), axis=1)]
        return _rows_median_of_sqrt(flat[:, torch.from_numpy(_upper_triangle(n)).to(D.device)])


def silverman_width(X):
    """Silverman's rule ``s (4 / ((d + 2) n))^(1 / (d + 4))``, ``s`` the mean per-feature sd.

    Standard deviations use ``ddof=1``. A zero ``s`` (constant data) gives 1.0 with a
    ``UserWarning``.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n, d) or (n,)

    Returns
    -------
    float
    """
    width, problem = silverman_rule(X)
    if problem is not None:
        warn_user(problem, UserWarning)
        return 1.0
    return width


def silverman_rule(X):
    """:func:`silverman_width` without warnings: ``(width, None)`` or ``(None, reason)``."""
    with torch.no_grad():
        X = _as_tensor_2d(X).to(torch.float64)
        n, d = X.shape
        if n < 2:
            return None, "silverman_width needs at least 2 rows; using 1.0."
        # shifted by a row first: the sd of data far from 0 keeps its digits
        s = float((X - X[:1]).std(dim=0, correction=1).mean())
    if not s > 0:
        return None, "Data have zero spread; Silverman's rule falls back to width 1.0."
    return s * (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4)), None


def resolve_bandwidth(sigma, X, *, scale=1.0, max_samples=2000, random_state=None):
    """Resolve a width specification to a positive float.

    Parameters
    ----------
    sigma : float or {"median", "silverman"}
        A positive finite number passes unchanged; a rule name is computed on ``X``
        and multiplied by ``scale``.
    X : array-like or torch.Tensor
        Data for the rules.
    scale : float, default=1.0
    max_samples : int, default=2000
    random_state : None, int, RandomState or torch.Generator

    Returns
    -------
    float
        Rules are floored at ``1e-6`` times the RMS feature scale of ``X`` (with a
        warning when the floor applies).
    """
    if isinstance(sigma, str):
        rule = sigma.lower()
        if rule == "median":
            width = median_heuristic(X, max_samples=max_samples, random_state=random_state)
        elif rule == "silverman":
            width = silverman_width(X)
        else:
            raise _bad_bandwidth(sigma)
        width *= _check_sigma(scale)
        with torch.no_grad():
            Xt = _as_tensor_2d(X).to(torch.float64)
            rms = float((Xt - Xt.mean(dim=0)).square().mean().sqrt())
        floor = 1e-6 * rms
        if width < floor:
            warn_user(
                f"Bandwidth rule {rule!r} gave {width:.3g}; floored at {floor:.3g}.",
                UserWarning,
            )
            width = floor
        return float(width)
    try:
        return _check_sigma(sigma)
    except TypeError:  # None, a list, ...: the spec's ValueError for anything else
        raise _bad_bandwidth(sigma) from None


def _bad_bandwidth(sigma):
    return ValueError(
        f"sigma must be a positive number, 'median' or 'silverman'; got sigma={sigma!r}."
    )
