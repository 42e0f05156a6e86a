"""Toy densities with exact log-densities, and an offline digits OOD split (ebm family)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_digits_ood", "make_toy_density"]

_NAMES = ("eight_gaussians", "moons", "rings", "gaussian", "shifted_gaussian")
_DEFAULT_STD = {"eight_gaussians": 0.2, "moons": 0.08, "rings": 0.08}
_RADII = np.array([0.75, 1.5, 2.25])
_LOG_2PI = np.log(2 * np.pi)


def _chunked(fn, chunk=8192):
    def log_density(X_eval):
        X_eval = np.asarray(X_eval, dtype=np.float64)
        out = np.empty(X_eval.shape[0])
        for start in range(0, X_eval.shape[0], chunk):
            out[start:start + chunk] = fn(X_eval[start:start + chunk])
        return out

    return log_density


def _norm_logpdf(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * _LOG_2PI


def make_toy_density(name, n_samples=1000, *, n_features=None, std=None, shift=None,
                     random_state=None, return_log_density=False):
    """Simulate a toy density with a known log-density.

    Parameters
    ----------
    name : {"eight_gaussians", "moons", "rings", "gaussian", "shifted_gaussian"}
        The 2-D names are "eight_gaussians", "moons" and "rings"; "gaussian" is a
        correlated d-dimensional Gaussian (``n_features``, default 5) with a random mean and
        covariance Σ = A Aᵀ + 0.5 I, A = G/√d; "shifted_gaussian" is N(shift, 1) in 1-D.
    n_samples : int, default=1000
    n_features : int, default=None
        Only for "gaussian".
    std : float, default=None
        Noise level of the 2-D toys (0.2, 0.08, 0.08).
    shift : float, default=None
        Only for "shifted_gaussian" (default 6.0).
    random_state : int, RandomState or None, default=None
    return_log_density : bool, default=False
        Also return ``log_density(X_eval) -> (m,)``, the exact true log-density (moons: a
        2048-point midpoint rule along each arc).

    Returns
    -------
    X : ndarray of shape (n_samples, d)
    log_density : callable, optional

    Examples
    --------
    >>> from fstat.datasets import make_toy_density
    >>> X, logp = make_toy_density("rings", 100, random_state=0, return_log_density=True)
    >>> X.shape, logp(X).shape
    ((100, 2), (100,))
    """
    if name not in _NAMES:
        raise ValueError(f"name must be one of {_NAMES}; got name={name!r}.")
    if n_features is not None and name != "gaussian":
        raise ValueError(f"n_features applies to name='gaussian' only; got name={name!r}.")
    if std is not None and name not in _DEFAULT_STD:
        raise ValueError(f"std applies to the 2-D toys only; got name={name!r}.")
    if shift is not None and name != "shifted_gaussian":
        raise ValueError(f"shift applies to name='shifted_gaussian' only; got name={name!r}.")
    n = int(n_samples)
    if n < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples!r}.")
    rs = check_random_state(random_state)
    if name in _DEFAULT_STD:
        sd = float(_DEFAULT_STD[name] if std is None else std)
        if not sd > 0:
            raise ValueError(f"std must be > 0; got std={std!r}.")

    if name == "eight_gaussians":
        k = rs.randint(0, 8, size=n)
        eps = rs.standard_normal((n, 2))
        centres = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4),
                                  np.sin(np.arange(8) * np.pi / 4)], 1)
        X = centres[k] + sd * eps

        def fn(x):
            comp = (_norm_logpdf(x[:, None, 0], centres[None, :, 0], sd)
                    + _norm_logpdf(x[:, None, 1], centres[None, :, 1], sd))
            return logsumexp(comp, axis=1) - np.log(8)

    elif name == "moons":
        k = rs.randint(0, 2, size=n)
        t = rs.uniform(0, np.pi, size=n)
        eps = rs.standard_normal((n, 2))
        pts = np.where(k[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1),
                       np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
        X = 1.5 * (pts + sd * eps - np.array([0.5, 0.25]))
        tt = (np.arange(2048) + 0.5) * np.pi / 2048
        arcs = np.concatenate([np.stack([np.cos(tt), np.sin(tt)], 1),
                               np.stack([1 - np.cos(tt), 0.5 - np.sin(tt)], 1)])

        arc_sq = (arcs**2).sum(1)
        const = -2 * np.log(sd) - _LOG_2PI - np.log(2 * 2048) - 2 * np.log(1.5)

        def fn(x):
            p = x / 1.5 + np.array([0.5, 0.25])
            sq = (p**2).sum(1)[:, None] + arc_sq[None, :] - 2.0 * (p @ arcs.T)
            # average over t in each arc (1/2048 each), then 1/2 per arc
            return logsumexp(-0.5 * np.maximum(sq, 0.0) / sd**2, axis=1) + const

        fn = _chunked(fn, chunk=1024)

    elif name == "rings":
        r0 = rs.choice(_RADII, size=n)
        r = r0 + sd * rs.standard_normal(n)
        theta = rs.uniform(0, 2 * np.pi, size=n)
        X = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)

        def fn(x):
            rho = np.sqrt((x**2).sum(1))
            lp = logsumexp(_norm_logpdf(rho[:, None], _RADII, sd), axis=1) - np.log(3)
            lm = logsumexp(_norm_logpdf(-rho[:, None], _RADII, sd), axis=1) - np.log(3)
            with np.errstate(divide="ignore"):
                return np.logaddexp(lp, lm) - np.log(2 * np.pi * rho)

    elif name == "gaussian":
        d = 5 if n_features is None else int(n_features)
        if d < 1:
            raise ValueError(f"n_features must be >= 1; got {n_features!r}.")
        G = rs.standard_normal((d, d))
        A = G / np.sqrt(d)
        cov = A @ A.T + 0.5 * np.eye(d)
        mu = rs.standard_normal(d)
        L = np.linalg.cholesky(cov)
        X = mu + rs.standard_normal((n, d)) @ L.T
        inv_L = np.linalg.inv(L)
        logdet = 2 * np.log(np.diag(L)).sum()

        def fn(x):
            sol = (x - mu) @ inv_L.T
            return -0.5 * (sol**2).sum(1) - 0.5 * logdet - 0.5 * d * _LOG_2PI

    else:
        mu = 6.0 if shift is None else float(shift)
        X = (mu + rs.standard_normal(n))[:, None]

        def fn(x):
            return _norm_logpdf(x[:, 0], mu, 1.0)

    X = np.ascontiguousarray(X, dtype=np.float64)
    if return_log_density:
        return X, (fn if name == "moons" else _chunked(fn))
    return X


def load_digits_ood(*, in_classes=(0, 1, 2, 3, 4), n_components=8, dequantize=True,
                    test_size=0.3, random_state=0):
    """Digits split into in-distribution (train/test) and out-of-distribution rows.

    scikit-learn's bundled 8×8 digits (offline), scaled to [0, 1] and dequantised with
    U(0, 1/16) noise; rows of ``in_classes`` are split into train/test, the other classes
    form ``X_ood``. A StandardScaler + PCA(n_components, whiten=True) is fitted on X_train
    and applied to all three sets (``n_components=None``: scaler only).

    Parameters
    ----------
    in_classes : sequence of int, default=(0, 1, 2, 3, 4)
    n_components : int or None, default=8
    dequantize : bool, default=True
    test_size : float, default=0.3
    random_state : int, RandomState or None, default=0

    Returns
    -------
    Bunch
        ``X_train, X_test, X_ood`` (float64 ndarrays) and ``preprocessor``.
    """
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rs = check_random_state(random_state)
    data = load_digits()
    X = data.data / 16.0
    if dequantize:
        X = X + rs.uniform(0, 1.0 / 16.0, size=X.shape)
    inside = np.isin(data.target, np.asarray(in_classes))
    X_tr, X_te = train_test_split(X[inside], test_size=test_size,
                                  random_state=rs.randint(2**31 - 1))
    steps = [StandardScaler()]
    if n_components is not None:
        steps.append(PCA(n_components, whiten=True, random_state=0))
    # numpy arrays whatever sklearn's global transform_output is
    pre = make_pipeline(*steps).set_output(transform="default").fit(X_tr)
    return Bunch(X_train=pre.transform(X_tr), X_test=pre.transform(X_te),
                 X_ood=pre.transform(X[~inside]), preprocessor=pre)
