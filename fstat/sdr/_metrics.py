"""Response metrics: validators and float64 distance builders (numpy in, torch out).

Every metric is validated into a private :class:`Response` record holding the canonical
data. Distances are computed in float64 by explicit differences (never the
``|a|^2 + |b|^2 - 2ab`` expansion), so ``D`` is exactly symmetric with a zero diagonal and
ties are not broken by rounding. Most metrics are Euclidean distances of a feature map
(identity, flattened matrix logarithm or power, sorted quantiles), evaluated with
``torch.cdist(..., compute_mode="donot_use_mm_for_euclid_dist")``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from .._torch import unit_scale
from .._warnings import warn_user

__all__ = ["METRICS", "Response", "check_response", "check_min_n"]

METRICS = (
    "euclidean", "precomputed", "discrete", "wasserstein", "sphere", "geodesic", "chordal",
    "spd_frobenius", "log_euclidean", "affine_invariant", "power",
)
_SPD = ("spd_frobenius", "log_euclidean", "affine_invariant", "power")
_PARAMS = {"wasserstein": {"p": 2.0}, "power": {"alpha": 0.5}}
_CALLABLE_WARN_N = 5000


def check_min_n(n, name="the response"):
    """Raise the standard 'at least 4 samples' error."""
    if n < 4:
        raise ValueError(
            f"FCCov needs at least 4 samples; got n_samples={n} in {name}."
        )


@dataclass
class Response:
    """A validated response: metric name, canonical data and parameters."""

    metric: object
    data: object
    n: int
    params: dict = field(default_factory=dict)
    #: a callable metric's distance matrix, evaluated once, when first needed
    distances: np.ndarray | None = None

    @property
    def is_discrete(self):
        return self.metric == "discrete"

    @property
    def is_scalar_euclidean(self):
        return self.metric == "euclidean" and self.data.shape[1] == 1

    def subset(self, idx):
        """The response restricted to rows ``idx`` (precomputed: ``D[ix_(idx, idx)]``)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.metric == "precomputed":
            data = self.data[np.ix_(idx, idx)]
        elif callable(self.metric):
            data = [self.data[i] for i in idx]
        else:
            data = self.data[idx]
        distances = None if self.distances is None else self.distances[np.ix_(idx, idx)]
        return Response(self.metric, data, len(idx), dict(self.params), distances)

    def callable_distances(self):
        """A callable metric's n x n distances (numpy), computed on the first call."""
        if self.distances is None:
            self.distances = _callable(self.metric, self.data, self.params)
        return self.distances

    def pairwise(self, device="cpu", rows=None):
        """The n x n float64 distance matrix as a tensor on ``device``."""
        if rows is not None:
            return self.subset(rows).pairwise(device)
        return _pairwise(self, torch.device(device))

    def all_equal(self):
        """True when every response distance is zero (constant response)."""
        if self.metric == "discrete":
            return bool(np.all(self.data == self.data[0]))
        if self.metric == "precomputed":
            return bool(np.all(self.data == 0))
        if callable(self.metric):  # known only once the distances have been evaluated
            return self.distances is not None and bool(np.all(self.distances == 0))
        return bool(np.all(self.data == self.data[:1]))


# --------------------------------------------------------------------------- validation


def real_float64(values, message):
    """A float64 copy of ``values``; ``ValueError(message + reason)`` when they are not
    real numbers (complex values are rejected, not truncated to their real part)."""
    try:
        array = np.asarray(values)
        if np.iscomplexobj(array):
            raise ValueError("complex values are not supported.")
        return np.array(array, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{message}{exc}") from exc


def _numeric(Y, name="y"):
    array = real_float64(Y, f"{name} must be numeric for this metric: ")
    if not np.all(np.isfinite(array)):  # one message for both (spec 4: "y contains NaN")
        found = "NaN" if np.isnan(array).any() else "infinity"
        raise ValueError(f"y contains NaN or infinity (found {found}); the response must be "
                         "finite.")
    return array


def _check_params(metric, metric_params):
    params = dict(metric_params or {})
    if callable(metric):
        return params
    accepted = _PARAMS.get(metric, {})
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"metric_params {unknown} are not accepted by metric={metric!r}; accepted keys: "
            f"{sorted(accepted) or 'none'}."
        )
    params = {**accepted, **params}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(
                f"metric_params {key} must be a real number for metric={metric!r}; got "
                f"{key}={value!r}."
            )
        params[key] = float(value)
    if metric == "power" and not math.isfinite(params["alpha"]):
        raise ValueError(f"metric_params alpha must be finite for metric='power'; got "
                         f"alpha={params['alpha']!r}.")
    return params


def _check_spd(array):
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ValueError(
            f"SPD metrics need y of shape (n, q, q) (symmetric positive definite matrices); "
            f"got shape {array.shape}."
        )
    scale = np.abs(array).reshape(len(array), -1).max(axis=1)
    asym = np.abs(array - array.transpose(0, 2, 1)).reshape(len(array), -1).max(axis=1)
    bad = np.flatnonzero(asym > 1e-8 * np.maximum(scale, 1e-300))
    if len(bad):
        raise ValueError(f"y[{bad[0]}] is not symmetric (SPD metrics need symmetric matrices).")
    array = 0.5 * (array + array.transpose(0, 2, 1))
    lam_min = np.linalg.eigvalsh(array)[:, 0]
    bad = np.flatnonzero(~(lam_min > 0))
    if len(bad):
        raise ValueError(
            f"y[{bad[0]}] is not positive definite (smallest eigenvalue {lam_min[bad[0]]:.3g})."
        )
    return array


def _check_sphere(array):
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            f"sphere/chordal metrics need y of shape (n, q) with q >= 2 and unit norm rows; "
            f"got shape {array.shape}."
        )
    norms = np.linalg.norm(array, axis=1)
    dev = np.abs(norms - 1.0)
    if np.any(dev > 1e-6):
        worst = int(np.argmax(dev))
        raise ValueError(
            f"sphere/chordal metrics need rows of unit norm (within 1e-6); row {worst} has norm "
            f"{norms[worst]:.8g}."
        )
    return array / norms[:, None]


def _check_precomputed(Y):
    array = np.asarray(Y)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(
            f"metric='precomputed' needs a square (n, n) distance matrix; got shape "
            f"{array.shape}. A precomputed matrix cannot be split: cross-validation splits "
            "rows only; pass objects with a metric or a callable."
        )
    array = _numeric(array)
    if np.any(array < 0):
        raise ValueError("metric='precomputed': the distance matrix has negative entries.")
    tol = 1e-8 * max(float(array.max()), 0.0)
    if np.any(np.abs(np.diag(array)) > tol):
        raise ValueError("metric='precomputed': the distance matrix has a non-zero diagonal.")
    if np.any(np.abs(array - array.T) > tol):
        raise ValueError("metric='precomputed': the distance matrix is not symmetric.")
    array = 0.5 * (array + array.T)
    np.fill_diagonal(array, 0.0)
    return array


def _discrete_codes(Y):
    import pandas as pd

    if isinstance(Y, pd.DataFrame | pd.Series):
        Y = Y.to_numpy()
    array = np.asarray(Y, dtype=object) if not isinstance(Y, np.ndarray) else Y
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"metric='discrete' needs y of shape (n,) or (n, q); got {array.shape}.")
    if np.any(pd.isna(array)):
        raise ValueError("y contains NaN labels; metric='discrete' needs complete labels.")
    if array.ndim == 2:
        keys = [tuple(row) for row in array.tolist()]
    else:
        keys = array.tolist()
    codes, _ = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    return codes.astype(np.int64)


def check_response(Y, metric="euclidean", metric_params=None):
    """Validate ``Y`` for ``metric`` and return a :class:`Response`.

    Raises
    ------
    ValueError
        Unknown metric or parameter key, or data invalid for the metric.
    """
    import pandas as pd

    if Y is None:
        raise ValueError("y is None; FCCov needs a response.")
    if isinstance(Y, pd.DataFrame | pd.Series):
        Y = Y.to_numpy()
    if not callable(metric) and metric not in METRICS:
        raise ValueError(f"metric must be a callable or one of {list(METRICS)}; got {metric!r}.")
    params = _check_params(metric, metric_params)
    if callable(metric):
        objects = list(Y)
        check_min_n(len(objects))
        if len(objects) > _CALLABLE_WARN_N:
            warn_user(
                f"metric is a callable and n={len(objects)}: n(n-1)/2 Python-level metric calls "
                "will be slow; precompute distances or use a named metric.",
                UserWarning,
            )
        return Response(metric, objects, len(objects), params)
    metric = "sphere" if metric == "geodesic" else metric
    if metric == "discrete":
        data = _discrete_codes(Y)
    elif metric == "precomputed":
        data = _check_precomputed(Y)
    elif metric == "wasserstein":
        if params["p"] < 1:
            raise ValueError(f"metric_params p must be >= 1 for wasserstein; got p={params['p']}.")
        try:
            data = _numeric(Y)
        except ValueError as exc:
            if "NaN" in str(exc) or "infinity" in str(exc):
                raise
            raise ValueError(
                "wasserstein needs rectangular (n, m) quantile rows on a common grid; resample "
                "ragged rows to a common grid."
            ) from exc
        if data.ndim != 2:
            raise ValueError(
                f"wasserstein needs a 2-D (n, m) array of quantiles on a common grid; got shape "
                f"{data.shape}."
            )
        data = np.sort(data, axis=1)
    else:
        data = _numeric(Y)
        if metric == "euclidean":
            if data.ndim == 1:
                data = data[:, None]
            if data.ndim != 2:
                raise ValueError(f"metric='euclidean' needs y of shape (n,) or (n, q); got "
                                 f"{data.shape}.")
        elif metric in ("sphere", "chordal"):
            data = _check_sphere(data)
        else:
            data = _check_spd(data)
            if metric == "power" and params["alpha"] == 0:
                raise ValueError(
                    "metric_params alpha must be non-zero for metric='power' (alpha -> 0 is "
                    "metric='log_euclidean')."
                )
    check_min_n(len(data))
    return Response(metric, data, len(data), params)


# --------------------------------------------------------------------------- distances


def _cdist(F, p=2.0):
    """Minkowski distances between the rows of ``F``, finite for every finite ``F``.

    The rows are scaled by a power of two near ``max |F|`` first (exact), so the p-th
    powers inside the norm neither overflow (|F| above about 1e154 for p = 2) nor
    underflow to zero (below about 1e-162). Where some entries are still tiny next to the
    largest (below ``2^(52 - 1022/p)`` of it: a span of more than about 1e138 within the
    data for p = 2, 1e61 for p = 4), the smallest gaps among them could fall below the
    normal range once raised to the p-th power, and every pair is then scaled by its own
    largest gap (:func:`_minkowski_by_pairs`).
    """
    scale = unit_scale(F)
    G = F / scale
    if not math.isinf(p):
        # a nonzero gap between entries of magnitude >= m is at least m 2^-52 (one unit
        # in the last place), whose p-th power is normal for m >= 2^(52 - 1022/p)
        smallest_safe = 2.0 ** (52.0 - 1022.0 / p)
        magnitudes = G.abs()
        if bool(((magnitudes > 0) & (magnitudes < smallest_safe)).any()):
            return _minkowski_by_pairs(G, p) * scale
    return torch.cdist(G, G, p=p, compute_mode="donot_use_mm_for_euclid_dist") * scale


#: above this p the Wasserstein p-th powers are taken relative to each pair's largest gap
_DIRECT_P = 8.0


def _minkowski_by_pairs(G, p, *, mean=False):
    """``(sum_j |g_ij - g_kj|^p)^(1/p)`` (or the mean over j) for every pair of rows, each
    pair's gaps divided by its largest gap before the p-th power (no underflow to 0 for
    close pairs, no overflow); in row blocks of about 2^24 gaps."""
    n, m = G.shape
    D = torch.empty(n, n, dtype=G.dtype, device=G.device)
    rows = max(1, 2**24 // max(n * m, 1))
    for start in range(0, n, rows):
        gaps = (G[start:start + rows, None, :] - G[None, :, :]).abs_()
        largest = gaps.amax(dim=-1)
        gaps /= torch.where(largest > 0, largest, 1.0).unsqueeze(-1)
        powers = gaps.pow_(p)
        total = powers.mean(dim=-1) if mean else powers.sum(dim=-1)
        D[start:start + rows] = largest * total.pow_(1.0 / p)
    return D


def _wasserstein(Q, p):
    """``W_p`` between rows of quantiles on a common grid: ``(mean_j |q_ij - q_kj|^p)^(1/p)``.

    Up to ``p = 8`` through one Minkowski distance. Above it, the relative gaps of a pair
    raised to the p-th power underflow (to 0 for every pair closer than a fraction of the
    largest gap in the data), so each pair's gaps are divided by its own largest gap first;
    ``p = inf`` is the largest gap.
    """
    m = Q.shape[1]
    if p <= _DIRECT_P or math.isinf(p):
        return _cdist(Q, p=p) / m ** (1.0 / p)
    scale = unit_scale(Q)
    return _minkowski_by_pairs(Q / scale, p, mean=True) * scale


def _spd_function(A, fn):
    w, V = torch.linalg.eigh(A)
    return (V * fn(w).unsqueeze(-2)) @ V.transpose(-1, -2)


def _affine_invariant(A):
    # computed once per distinct matrix (sorted by torch.unique) and expanded: d(i, j) used the
    # Cholesky factor of whichever of the two came first, so a duplicate of A_i could sit a
    # rounding error closer to A_j than A_i does, breaking the tie and making FCCov depend on
    # the row order; equal matrices are then exactly 0 apart
    n = A.shape[0]
    unique, group = torch.unique(A.reshape(n, -1), dim=0, return_inverse=True)
    U = unique.reshape(-1, *A.shape[1:])
    m = U.shape[0]
    D = torch.zeros(m, m, dtype=torch.float64, device=A.device)
    L = torch.linalg.cholesky(U)
    for i in range(m - 1):
        B = U[i + 1:]
        Li = L[i].expand_as(B)
        X = torch.linalg.solve_triangular(Li, B, upper=False)
        X = torch.linalg.solve_triangular(Li, X.transpose(-1, -2), upper=False)
        lam = torch.linalg.eigvalsh(0.5 * (X + X.transpose(-1, -2)))
        D[i, i + 1:] = torch.log(lam).square().sum(-1).sqrt()
    D = D + D.T
    return D[group][:, group]


def _callable(metric, objects, params):
    n = len(objects)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            value = float(metric(objects[i], objects[j], **params))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"the callable metric returned {value!r} for the pair (i, j) = ({i}, {j}); "
                    "distances must be finite and >= 0."
                )
            D[i, j] = value
    return D + D.T


def _geodesic_from_chords(chords):
    """``2 asin(min(c / 2, 1))``, plus the rounding excess ``max(c - 2, 0)``: chords of
    nearly antipodal rows round to 2 + a few ulps, and clamping them all to pi would tie
    pairs whose chords differ. Kept, the map is strictly increasing, so the geodesic and
    chordal metrics rank every pair alike (identical FCCov)."""
    return 2.0 * torch.asin(chords.clamp(max=2.0) / 2.0) + (chords - 2.0).clamp_min(0.0)


def _pairwise(response, device):
    metric, data = response.metric, response.data
    if callable(metric):
        return torch.tensor(response.callable_distances(), device=device)
    if metric == "precomputed":
        return torch.tensor(data, dtype=torch.float64, device=device)
    if metric == "discrete":
        codes = torch.tensor(data, device=device)
        return (codes[:, None] != codes[None, :]).to(torch.float64)
    Y = torch.tensor(data, dtype=torch.float64, device=device)
    if metric == "euclidean" and Y.shape[1] == 1:
        return (Y[:, 0][:, None] - Y[:, 0][None, :]).abs()
    if metric in ("euclidean", "chordal"):
        return _cdist(Y)
    if metric == "sphere":
        return _geodesic_from_chords(_cdist(Y))
    if metric == "wasserstein":
        return _wasserstein(Y, float(response.params["p"]))
    n = Y.shape[0]
    if metric == "spd_frobenius":
        return _cdist(Y.reshape(n, -1))
    if metric == "log_euclidean":
        return _cdist(_spd_function(Y, torch.log).reshape(n, -1))
    if metric == "power":
        alpha = float(response.params["alpha"])
        F = _spd_function(Y, lambda w: w ** alpha).reshape(n, -1)
        return _cdist(F) / abs(alpha)
    return _affine_invariant(Y)
