"""Simulators for Fréchet sufficient dimension reduction with known true predictors."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.utils import check_random_state

__all__ = ["make_frechet_sdr"]

_MIN_FEATURES = {"M1": 2, "M1c": 2, "M1o": 2, "M2": 4, "M2o": 4, "M3": 2, "M4": 3}
_NOISE = {"M1": 0.5, "M1c": 0.5, "M1o": 0.5, "M2": 0.2, "M2o": 0.2, "M3": 0.3, "M4": 0.2}


def _contaminate(rs, n, contamination):
    idx = rs.choice(n, int(round(contamination * n)), replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return idx, mask


def _sym_expm(E):
    w, V = np.linalg.eigh(E)
    return (V * np.exp(w)[:, None, :]) @ np.swapaxes(V, 1, 2)


def _sym_sqrt(S):
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(w)[:, None, :]) @ np.swapaxes(V, 1, 2)


def make_frechet_sdr(model="M1", n_samples=500, n_features=10, *, noise=None, contamination=0.05,
                     n_quantiles=101, random_state=None, return_outlier_mask=False):
    """Nonlinear Fréchet SDR models with known true predictors H.

    X ~ N(0, I_p). Models (recommended metric, true dimension d0):

    - ``"M1"`` (euclidean, d0=1): h = x1^2 + x2^2, Y = h + sigma eps, eps ~ N(0, 1),
      sigma = 0.5. ``"M1c"``: eps standard Cauchy. ``"M1o"``: M1 with a fraction
      ``contamination`` of rows shifted by ``100 (1 + |C|)``, C standard Cauchy.
    - ``"M2"`` (wasserstein, d0=2): h1 = sin x1 + x2^2, h2 = x3 x4; Y_i = quantiles of
      N(mu_i, s_i^2) on t_j = (j - 1/2)/m with mu = h1 + sigma e1,
      s = exp(tanh(h2)/2 + sigma e2/2), sigma = 0.2. ``"M2o"``: contaminated rows get
      mu + 50 and 5 s.
    - ``"M3"`` (spd_frobenius / log_euclidean / affine_invariant, d0=1): h = x1^2 + x2^2,
      rho = 0.9 tanh(h - 2), Sigma = [[1, rho], [rho, 1]],
      Y = Sigma^(1/2) expm(E) Sigma^(1/2), E symmetric with N(0, 0.3^2) entries.
    - ``"M4"`` (sphere, d0=2): h1 = x1^2 + x2^2, theta = pi Phi((h1 - 2)/2),
      phi = pi Phi(x3), Y = exp_m(v) on the unit sphere around
      m = (sin theta cos phi, sin theta sin phi, cos theta), v tangent N(0, 0.2^2).
      H = (h1, x3).

    Parameters
    ----------
    model : {"M1", "M1c", "M1o", "M2", "M2o", "M3", "M4"}, default="M1"
    n_samples : int, default=500
    n_features : int, default=10
    noise : float, optional
        The model's sigma (defaults above); finite and >= 0.
    contamination : float in [0, 0.5), default=0.05
        Fraction of contaminated rows (M1o, M2o only).
    n_quantiles : int, default=101
        Quantile grid size m (M2, M2o).
    random_state : int, RandomState or None
    return_outlier_mask : bool, default=False

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray, shape (n,), (n, m), (n, 2, 2) or (n, 3)
    H : ndarray of shape (n,) or (n, 2)
        The true predictors.
    mask : ndarray of bool, only with ``return_outlier_mask``

    Examples
    --------
    >>> from fstat.datasets import make_frechet_sdr
    >>> X, Y, H = make_frechet_sdr("M3", n_samples=50, random_state=0)
    >>> X.shape, Y.shape, H.shape
    ((50, 10), (50, 2, 2), (50,))
    """
    if model not in _MIN_FEATURES:
        raise ValueError(f"model must be one of {sorted(_MIN_FEATURES)}; got {model!r}.")
    n, p = int(n_samples), int(n_features)
    if n < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples!r}.")
    if p < _MIN_FEATURES[model]:
        raise ValueError(
            f"model {model!r} needs n_features >= {_MIN_FEATURES[model]}; got {n_features!r}."
        )
    if not 0 <= contamination < 0.5:
        raise ValueError(f"contamination must lie in [0, 0.5); got {contamination!r}.")
    sigma = _NOISE[model] if noise is None else float(noise)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise must be finite and >= 0; got {noise!r}.")
    rs = check_random_state(random_state)
    X = rs.standard_normal((n, p))
    mask = np.zeros(n, dtype=bool)
    if model.startswith("M1"):
        h = X[:, 0] ** 2 + X[:, 1] ** 2
        eps = rs.standard_cauchy(n) if model == "M1c" else rs.standard_normal(n)
        Y = h + sigma * eps
        if model == "M1o":
            idx, mask = _contaminate(rs, n, contamination)
            Y[idx] += 100.0 * (1.0 + np.abs(rs.standard_cauchy(len(idx))))
        H = h
    elif model.startswith("M2"):
        if n_quantiles < 1:
            raise ValueError(f"n_quantiles must be >= 1; got {n_quantiles!r}.")
        h1 = np.sin(X[:, 0]) + X[:, 1] ** 2
        h2 = X[:, 2] * X[:, 3]
        e = rs.standard_normal((n, 2))
        mu = h1 + sigma * e[:, 0]
        s = np.exp(0.5 * np.tanh(h2) + 0.5 * sigma * e[:, 1])
        if model == "M2o":
            idx, mask = _contaminate(rs, n, contamination)
            mu[idx] += 50.0
            s[idx] *= 5.0
        t = (np.arange(1, n_quantiles + 1) - 0.5) / n_quantiles
        Y = mu[:, None] + s[:, None] * ndtri(t)[None, :]
        H = np.column_stack([h1, h2])
    elif model == "M3":
        h = X[:, 0] ** 2 + X[:, 1] ** 2
        rho = 0.9 * np.tanh(h - 2.0)
        S = np.empty((n, 2, 2))
        S[:, 0, 0] = S[:, 1, 1] = 1.0
        S[:, 0, 1] = S[:, 1, 0] = rho
        upper = sigma * rs.standard_normal((n, 3))
        E = np.empty((n, 2, 2))
        E[:, 0, 0], E[:, 1, 1] = upper[:, 0], upper[:, 2]
        E[:, 0, 1] = E[:, 1, 0] = upper[:, 1]
        R = _sym_sqrt(S)
        Y = R @ _sym_expm(E) @ R
        Y = 0.5 * (Y + np.swapaxes(Y, 1, 2))
        H = h
    else:
        h1 = X[:, 0] ** 2 + X[:, 1] ** 2
        theta = np.pi * ndtr((h1 - 2.0) / 2.0)
        phi = np.pi * ndtr(X[:, 2])
        m = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                             np.cos(theta)])
        v = sigma * rs.standard_normal((n, 3))
        v -= (v * m).sum(1, keepdims=True) * m
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        safe = np.where(norm > 0, norm, 1.0)
        Y = np.where(norm > 0, np.cos(norm) * m + np.sin(norm) * v / safe, m)
        Y /= np.linalg.norm(Y, axis=1, keepdims=True)
        H = np.column_stack([h1, X[:, 2]])
    if return_outlier_mask:
        return X, Y, H, mask
    return X, Y, H
