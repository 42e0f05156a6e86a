"""FCCov as defined in fstat: public functions and differentiable losses.

Sample V-statistic (centre k, boundary l, point i; closed balls)::

    delta_ikl = 1{d_ik <= d_lk},  m_kl = (1/n) sum_i u~_i delta_ikl,
    FCCov_n = (1/n^2) sum_{k,l} |m_kl|^2 = (1/n^2) tr(U~' K U~),
    K_ij = (1/n^2) sum_k min(c_ki, c_kj),  c_ki = #{l : d_lk >= d_ik}.

Routes: cumulative sums along each centre's order (R3, no n x n x n object), the ball
kernel K (R4), the discrete closed form (R6), sampled centres (R5) and the leave-pair-out
U-statistic on the U-centred kernel.
"""

from __future__ import annotations

import numpy as np
import torch

from .._torch import make_generator, resolve_device, unit_scale
from .._warnings import warn_user
from ._metrics import Response, check_min_n, check_response, real_float64
from ._ranks import (
    _chunk,
    ball_ranks,
    class_codes,
    counts_from_ranks,
    kernel_from_counts,
    u_center,
    u_kernel_from_counts,
)

__all__ = [
    "fccov", "fccov_matrix", "ball_kernel", "pairwise_response_distances",
    "KernelLoss", "CumsumLoss", "ClassMeansLoss", "batch_fccov",
]

_STATISTICS = ("V", "U")
_METHODS = ("auto", "cumsum", "kernel")


# --------------------------------------------------------------------------- evaluators


def cumsum_terms(ranks, U, *, matrix=False):
    """sum_k sum_l |m_kl|^2 (or the outer-product sum) over the centres of ``ranks``.

    ``U`` is the centred (n, d) tensor; differentiable. The cumulative sums are taken of
    ``U`` itself and the factor 1/n^2 is applied once to the total.
    """
    n, d = U.shape
    total = U.new_zeros((d, d) if matrix else ())
    inplace = not (torch.is_grad_enabled() and U.requires_grad)
    Ut = U.T.contiguous()  # (d, n): gather per coordinate, no (c, n, d) reshuffle
    for order, _, weight in ranks.chunks:
        w = None if weight is None else weight.to(U.dtype)
        step = _chunk(n, U.device, width=max(1, d))
        for start in range(0, order.shape[0], step):
            index = order[start:start + step]
            if inplace and U.device.type == "cpu":  # numpy's gather is ~2x faster here
                C = torch.from_numpy(np.take(Ut.numpy(), index.numpy(), axis=1)).cumsum_(2)
            else:
                C = torch.cumsum(Ut[:, index], dim=2)  # (d, c, n)
            wc = None if w is None else w[start:start + step]
            if matrix:
                flat = C.reshape(d, -1)
                if wc is None:
                    total = total + flat @ flat.T
                else:
                    total = total + (flat * wc.reshape(1, -1)) @ flat.T
            elif wc is None:
                flat = C.reshape(-1)
                total = total + torch.dot(flat, flat)
            else:
                total = total + torch.dot(C.square().sum(0).reshape(-1), wc.reshape(-1))
    return total / (n * n)


#: entries of one one-hot chunk in :func:`class_sums` on CUDA
_ONE_HOT_ENTRIES = 2**24
#: the most classes summed by one-hot products on CUDA (they cost O(n C d))
_ONE_HOT_MAX_CLASSES = 256


def class_sums(codes, n_classes, U, *, one_hot=None):
    """Column sums of ``U`` per class, shape (n_classes, d).

    ``index_add`` on CPU. On CUDA it accumulates with atomics, in a different order from run
    to run, so there (or with ``one_hot=True``) the sums of up to 256 classes are one-hot
    matrix products over row chunks: the same bits on every run. More classes (labels that
    are nearly unique rows) keep ``index_add``, O(n d), reproducible on CUDA to rounding.
    """
    if one_hot is None:
        one_hot = U.device.type == "cuda" and n_classes <= _ONE_HOT_MAX_CLASSES
    if not one_hot:
        return U.new_zeros((n_classes, U.shape[1])).index_add(0, codes, U)
    sums = U.new_zeros((n_classes, U.shape[1]))
    labels = torch.arange(n_classes, device=U.device)[:, None]
    rows = max(1, _ONE_HOT_ENTRIES // max(1, n_classes))
    for start in range(0, U.shape[0], rows):
        stop = start + rows
        sums.addmm_((labels == codes[None, start:stop]).to(U.dtype), U[start:stop])
    return sums


def class_mean_terms(codes, n_classes, U, *, matrix=False):
    """Discrete closed form: sum_c pi_c^4 (u_c - u)(u_c - u)' (U centred)."""
    n, d = U.shape
    sums = class_sums(codes, n_classes, U)
    counts = torch.bincount(codes, minlength=n_classes).to(U.dtype)
    # pi_c^4 |mean_c|^2 = pi_c^2 |sum_c / n|^2
    scaled = (counts / n)[:, None] * (sums / n)
    if matrix:
        return scaled.T @ scaled
    return scaled.square().sum()


def kernel_value(K, U, *, matrix=False):
    """(1/n^2) U' K U (trace or matrix) for a centred U; differentiable."""
    n = U.shape[0]
    KU = K @ U
    if matrix:
        M = U.T @ KU / (n * n)
        return 0.5 * (M + M.T)
    return (U * KU).sum() / (n * n)


def ball_variance(ranks):
    """v_n = (1/(m n)) sum_k sum_r W_kr p_r (1 - p_r), p_r = (r + 1) / n."""
    n = ranks.n
    p = torch.arange(1, n + 1, dtype=torch.float64, device=ranks.centers.device) / n
    total = 0.0
    for order, _, weight in ranks.chunks:
        if weight is None:  # no ties: every ball-end weight is 1
            total += order.shape[0] * float((p * (1 - p)).sum())
        else:
            total += float((weight.to(torch.float64) * (p * (1 - p))).sum())
    return total / (ranks.n_centers * n)


def discrete_variance(codes, n_classes):
    pi = torch.bincount(codes, minlength=n_classes).to(torch.float64) / len(codes)
    return float((pi**3 * (1 - pi)).sum())


# --------------------------------------------------------------------------- validation


def _check_u(U, device):
    array = real_float64(U, "U must be a real numeric array of shape (n,) or (n, d): ")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"U must have shape (n,) or (n, d); got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("U contains NaN or infinity; FCCov needs finite U.")
    check_min_n(len(array), "U")
    # C order: sums over rows must not depend on the input's layout
    return torch.tensor(np.ascontiguousarray(array), dtype=torch.float64, device=device)


def _check_options(statistic, method, normalize, n_centers, n):
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {list(_STATISTICS)}; got {statistic!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}; got {method!r}.")
    if statistic == "U":
        if normalize or n_centers is not None:
            raise ValueError(
                "normalize=True and n_centers are available only for statistic='V'."
            )
        if method == "cumsum":
            raise ValueError("statistic='U' uses the kernel route; method='cumsum' is only for "
                             "statistic='V'.")
    if n_centers is not None:
        if isinstance(n_centers, bool) or not isinstance(n_centers, int | np.integer):
            raise ValueError(f"n_centers must be None or an int; got {n_centers!r}.")
        if not 1 <= n_centers <= n:
            raise ValueError(f"n_centers must lie in [1, n_samples={n}]; got n_centers="
                             f"{n_centers}.")


def sample_centers(n, n_centers, random_state):
    """Sorted indices of ``n_centers`` centres drawn without replacement."""
    if n_centers is None or n_centers == n:
        return None
    generator = random_state if isinstance(random_state, torch.Generator) else make_generator(
        random_state)
    return np.sort(torch.randperm(n, generator=generator)[:n_centers].numpy())


def _prepare(U, Y, metric, metric_params, device):
    device = resolve_device(device)
    response = Y if isinstance(Y, Response) else check_response(Y, metric, metric_params)
    Ut = _check_u(U, device) if U is not None else None
    if Ut is not None and Ut.shape[0] != response.n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: U has {Ut.shape[0]}, "
            f"y has {response.n}."
        )
    if callable(response.metric):  # the functions use every distance: evaluate them once here
        response.callable_distances()
    constant = response.all_equal()
    if constant:
        warn_user("all response distances are equal (constant y): FCCov is 0.",
                  UserWarning)
    return device, response, Ut, constant


def _evaluate(Ut, response, device, *, statistic="V", method="auto", n_centers=None,
              random_state=None, matrix=False, normalize=False):
    """FCCov (or M-hat) of a centred-or-not U tensor; returns a float64 tensor."""
    n = response.n
    _check_options(statistic, method, normalize, n_centers, n)
    # FCCov is quadratic in U: evaluate at unit scale (exact power-of-two division), so the
    # squared cumulative sums neither overflow nor underflow, and scale back (FCCor is
    # scale-free and needs no scaling back)
    scale = unit_scale(Ut)
    value = _evaluate_unit(Ut / scale, response, device, statistic=statistic, method=method,
                           n_centers=n_centers, random_state=random_state, matrix=matrix,
                           normalize=normalize)
    return value if normalize else value * scale * scale


def _evaluate_unit(Ut, response, device, *, statistic, method, n_centers, random_state,
                   matrix, normalize):
    n = response.n
    if statistic == "U":
        counts = counts_from_ranks(ball_ranks(response, device))
        KU = u_center(u_kernel_from_counts(counts))
        # K^U annihilates constants only up to rounding: centred first, a common offset of U
        # (1e8 turned 0.009 into -0.2) cannot enter
        Uc = Ut - Ut.mean(0)
        M = Uc.T @ KU @ Uc / (n * (n - 3))
        M = 0.5 * (M + M.T)
        return M if matrix else torch.trace(M)
    Uc = Ut - Ut.mean(0)
    centers = sample_centers(n, n_centers, random_state)
    if response.is_discrete and centers is None:
        codes, n_classes = class_codes(response, device)
        value = class_mean_terms(codes, n_classes, Uc, matrix=matrix)
        v_n = discrete_variance(codes, n_classes) if normalize else None
    else:
        ranks = ball_ranks(response, device, centers=centers, counts=method == "kernel")
        m = ranks.n_centers
        if method == "kernel":
            K = kernel_from_counts(counts_from_ranks(ranks), n)
            value = kernel_value(K, Uc, matrix=matrix)
        else:
            value = cumsum_terms(ranks, Uc, matrix=matrix) / (n * m)
            if matrix:
                value = 0.5 * (value + value.T)
        v_n = ball_variance(ranks) if normalize else None
    if not normalize:
        return value
    lam = float(torch.linalg.eigvalsh(Uc.T @ Uc / n)[-1])
    denominator = lam * v_n
    # a constant U leaves only the rounding of its centring, (a few eps |U|)^2; the test is
    # relative to the scale of U, so FCCor(cU) = FCCor(U) for every c > 0
    rounding = (64.0 * torch.finfo(Uc.dtype).eps * float(Ut.abs().max())) ** 2
    if not denominator > 1e-300 or lam <= rounding:
        warn_user("FCCor denominator is 0 (U has zero variance or all response distances "
                  "are equal); returning 0.0.", UserWarning)
        return value.new_zeros(())
    return torch.clamp(value / denominator, 0.0, 1.0)


def _warn_constant_u(Ut):
    """Warn and return True when every row of ``U`` is the same."""
    constant = bool(torch.all(Ut == Ut[:1]))
    if constant:
        warn_user("U has zero variance: FCCov is 0.", UserWarning)
    return constant


# --------------------------------------------------------------------------- public API


def fccov(U, Y, *, metric="euclidean", metric_params=None, statistic="V", normalize=False,
          method="auto", n_centers=None, random_state=None, device="auto"):
    """Sample Fréchet cumulative covariance (FCCov as defined in fstat).

    ``FCCov_n(U, Y) = (1/n^2) sum_{k,l} |m_kl|^2`` with
    ``m_kl = (1/n) sum_i (u_i - u_bar) 1{d(y_i, y_k) <= d(y_l, y_k)}``: the mean squared
    covariance between ``U`` and membership of the closed ball centred at ``y_k`` through
    ``y_l``, over all ``n^2`` balls. ``Y`` enters only through the ranks of the distances,
    so the value is unchanged by any increasing transform of the metric.

    Parameters
    ----------
    U : array-like of shape (n_samples,) or (n_samples, d)
        Candidate predictor (finite).
    Y : response accepted by ``metric``
        See :func:`pairwise_response_distances`.
    metric : str or callable, default="euclidean"
        One of "euclidean", "precomputed", "discrete", "wasserstein", "sphere" (alias
        "geodesic"), "chordal", "spd_frobenius", "log_euclidean", "affine_invariant",
        "power", or a callable ``metric(a, b, **metric_params)``.
    metric_params : dict, optional
        ``{"p": 2}`` for wasserstein, ``{"alpha": 0.5}`` for power, or the callable's kwargs.
    statistic : {"V", "U"}, default="V"
        "U" is the leave-pair-out U-statistic on the U-centred ball kernel: exactly centred
        under independence, can be negative, O(n^3) (kernel route).
    normalize : bool, default=False
        Return FCCor_n = FCCov_n / (lambda_max(Cov U) v_n) in [0, 1] (V only).
    method : {"auto", "cumsum", "kernel"}, default="auto"
        "cumsum": cumulative sums along each centre's order, O(n^2 d) time, O(chunk n d)
        memory; "kernel": builds the n x n ball kernel (O(n^3)). The discrete metric always
        uses its O(n d) closed form; all routes agree to float64 rounding.
    n_centers : int, optional
        Use this many ball centres drawn without replacement (unbiased for FCCov_n over
        the draw); V only.
    random_state : int, RandomState or None
        Draw of the sampled centres.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.sdr import fccov
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal(200)
    >>> round(fccov(y, y, normalize=True, device="cpu"), 2)
    0.29
    """
    device, response, Ut, constant = _prepare(U, Y, metric, metric_params, device)
    constant = _warn_constant_u(Ut) or constant
    value = _evaluate(Ut, response, device, statistic=statistic, method=method,
                      n_centers=n_centers, random_state=random_state, normalize=normalize)
    # the warned cases are exactly 0 (the sums leave rounding residue, of either sign)
    return 0.0 if constant else float(value)


def fccov_matrix(U, Y, *, metric="euclidean", metric_params=None, statistic="V",
                 method="auto", n_centers=None, random_state=None, device="auto"):
    """The d x d FCCov matrix ``M = (1/n^2) sum_{k,l} m_kl m_kl'`` (its trace is FCCov).

    Parameters are those of :func:`fccov` (without ``normalize``).

    Returns
    -------
    ndarray of shape (d, d), symmetric positive semi-definite for statistic="V"

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.sdr import fccov_matrix
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2))
    >>> M = fccov_matrix(X, X[:, 0], device="cpu")
    >>> round(float(M[0, 0] / np.trace(M)), 2)
    0.99
    """
    device, response, Ut, constant = _prepare(U, Y, metric, metric_params, device)
    constant = _warn_constant_u(Ut) or constant
    value = _evaluate(Ut, response, device, statistic=statistic, method=method,
                      n_centers=n_centers, random_state=random_state, matrix=True)
    value = value.detach().cpu().numpy().astype(np.float64)
    return np.zeros_like(value) if constant else value


def ball_kernel(Y, *, metric="euclidean", metric_params=None, statistic="V", n_centers=None,
                random_state=None, device="auto"):
    """The n x n ball kernel ``K_ij = (1/n^2) sum_k min(c_ki, c_kj)`` (or K^U).

    ``FCCov_n(U, Y) = (1/n^2) tr(U~' K U~)``. K is symmetric positive semi-definite with
    entries in (0, 1]. ``statistic="U"`` returns the leave-pair-out kernel K^U (zero
    diagonal, not centred); ``n_centers`` the sampled-centre kernel
    ``(1/(m n)) sum_{k in S} min(c_ki, c_kj)``.

    Parameters
    ----------
    Y, metric, metric_params, statistic, n_centers, random_state, device
        As in :func:`fccov`.

    Returns
    -------
    ndarray of shape (n, n)

    Examples
    --------
    >>> from fstat.sdr import ball_kernel
    >>> K = ball_kernel([0.0, 1.0, 2.0, 4.0], device="cpu")
    >>> round(float(K[0, 0]), 4)
    0.625
    """
    device, response, _, _ = _prepare(None, Y, metric, metric_params, device)
    n = response.n
    _check_options(statistic, "auto", False, n_centers, n)
    centers = sample_centers(n, n_centers, random_state)
    if statistic == "U":
        K = u_kernel_from_counts(counts_from_ranks(ball_ranks(response, device)))
    elif response.is_discrete and centers is None:
        codes, n_classes = class_codes(response, device)
        pi = torch.bincount(codes, minlength=n_classes).to(torch.float64) / n
        K = (pi * (1 - pi)).sum() + (pi**2)[codes][:, None] * (codes[:, None] == codes[None, :])
    else:
        K = kernel_from_counts(counts_from_ranks(ball_ranks(response, device, centers=centers)),
                               n)
    return K.cpu().numpy().astype(np.float64)


def pairwise_response_distances(Y, metric="euclidean", *, metric_params=None, device="auto"):
    """Response distance matrix in float64 (exactly symmetric, zero diagonal).

    ================ ========================== =============================================
    metric           y                          distance
    ================ ========================== =============================================
    euclidean        (n,) or (n, q)             ``||y - y'||_2``
    precomputed      (n, n)                     D itself (validated, symmetrised)
    discrete         (n,) or (n, q) labels      ``1{y != y'}`` (rows compared entirely)
    wasserstein      (n, m) quantiles/samples   ``(mean_j |q_j - q'_j|^p)^(1/p)``, sorted rows
    sphere           (n, q) unit rows           ``2 asin(||y - y'|| / 2)`` (alias "geodesic")
    chordal          (n, q) unit rows           ``||y - y'||_2``
    spd_frobenius    (n, q, q) SPD              ``||A - B||_F``
    log_euclidean    (n, q, q) SPD              ``||log A - log B||_F``
    affine_invariant (n, q, q) SPD              ``(sum_r log^2 lambda_r(A^-1 B))^(1/2)``
    power            (n, q, q) SPD              ``||A^a - B^a||_F / |a|``
    callable         sequence of n objects      ``metric(a, b, **metric_params)``
    ================ ========================== =============================================

    Parameters
    ----------
    Y : response
    metric : str or callable, default="euclidean"
    metric_params : dict, optional
    device : str, default="auto"

    Returns
    -------
    ndarray of shape (n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.sdr import pairwise_response_distances
    >>> Y = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> round(float(pairwise_response_distances(Y, "sphere", device="cpu")[0, 2]), 4)
    3.1416
    """
    device, response, _, _ = _prepare(None, Y, metric, metric_params, device)
    return response.pairwise(device).cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------- losses


class KernelLoss:
    """FCCov_n = (1/n^2) tr(U~' K U~) with a precomputed kernel (or -D/d_bar)."""

    def __init__(self, K):
        self.K = K

    def __call__(self, U, index=None):
        K = self.K if index is None else self.K[index][:, index]
        return kernel_value(K, U - U.mean(0))


class DistanceLoss(KernelLoss):
    """Dist_n = -(1/n^2) tr(U~' (D / d_bar) U~): the distance-covariance objective, the
    kernel route with K = -D / d_bar (``d_bar`` the mean off-diagonal distance of ``D``
    unless given)."""

    def __init__(self, D, d_bar=None, dtype=None):
        if d_bar is None:
            n = D.shape[0]
            d_bar = float(D.sum()) / (n * (n - 1))
        K = -D / d_bar
        super().__init__(K if dtype is None else K.to(dtype))


class CumsumLoss:
    """FCCov_n by cumulative sums along precomputed centre orders (R3)."""

    def __init__(self, ranks):
        self.ranks = ranks

    def __call__(self, U, index=None):
        n = U.shape[0]
        return cumsum_terms(self.ranks, U - U.mean(0)) / (n * self.ranks.n_centers)


class ClassMeansLoss:
    """Discrete-metric closed form sum_c pi_c^4 |u_c - u|^2."""

    def __init__(self, codes, n_classes):
        self.codes, self.n_classes = codes, n_classes

    def __call__(self, U, index=None):
        codes = self.codes if index is None else self.codes[index]
        return class_mean_terms(codes, self.n_classes, U - U.mean(0))


def batch_fccov(response, index, U, device):
    """In-batch ranks (R7): FCCov_n of the batch rows with the batch's own balls."""
    sub = response.subset(index)
    Uc = U - U.mean(0)
    if sub.is_discrete:
        codes, n_classes = class_codes(sub, device)
        return class_mean_terms(codes, n_classes, Uc)
    ranks = ball_ranks(sub, device, counts=False)
    return cumsum_terms(ranks, Uc) / (sub.n * sub.n)
