"""Information-plane paths over a grid of beta values."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

__all__ = ["information_plane_path"]


def information_plane_path(estimator, X, y, betas, *, X_eval=None, y_eval=None,
                           normalized=False, max_samples=4096, random_state=None):
    """Fit ``estimator`` at each ``beta`` and record its information-plane coordinates.

    Parameters
    ----------
    estimator : CSIBRegressor
        Cloned for each ``beta`` (sorted ascending) and fitted on ``(X, y)``.
    X, y : array-like
        Training data.
    betas : array-like of float
        Non-empty, all >= 0.
    X_eval, y_eval : array-like, optional
        Evaluation data (default: the training data).
    normalized : bool, default=False
    max_samples : int, default=4096
    random_state : None, int or RandomState
        Subsampling in :meth:`CSIBRegressor.information_plane`.

    Returns
    -------
    dict
        ``"beta"``, ``"I_xt"``, ``"I_yt"``, ``"rmse"``, ``"compression_ratio"`` (ndarrays)
        and ``"estimators"`` (list). The compression ratio (fstat's definition) is
        ``r = 1 - I_xt(beta) / I_xt(beta_min)`` with ``beta_min`` the smallest beta; it
        is not clipped, and is NaN when ``I_xt(beta_min)`` is 0 (a constant
        representation).
    """
    betas = np.sort(np.atleast_1d(np.asarray(betas, dtype=np.float64)))
    if betas.size == 0 or betas.ndim != 1 or np.any(~np.isfinite(betas)) or np.any(betas < 0):
        raise ValueError(
            f"betas must be a non-empty list of finite values >= 0; got {betas.tolist()!r}.")
    X_eval = X if X_eval is None else X_eval
    y_eval = y if y_eval is None else y_eval
    out = {"beta": betas, "I_xt": [], "I_yt": [], "rmse": [], "estimators": []}
    y_true = np.asarray(y_eval, dtype=np.float64)
    for beta in betas:
        model = clone(estimator).set_params(beta=float(beta)).fit(X, y)
        ixt, iyt = model.information_plane(X_eval, y_eval, normalized=normalized,
                                           max_samples=max_samples, random_state=random_state)
        pred = model.predict(X_eval).reshape(y_true.shape)
        out["I_xt"].append(ixt)
        out["I_yt"].append(iyt)
        out["rmse"].append(float(np.sqrt(np.mean((pred - y_true) ** 2))))
        out["estimators"].append(model)
    for key in ("I_xt", "I_yt", "rmse"):
        out[key] = np.asarray(out[key])
    first = out["I_xt"][0]  # 0.0: a constant representation at beta_min, no reference
    out["compression_ratio"] = (1.0 - out["I_xt"] / first if first != 0.0
                                else np.full(betas.size, np.nan))
    return out
