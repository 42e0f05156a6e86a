"""LinearFCCov: the linear FCCov baseline by a generalised eigen-decomposition."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin

from .._sklearn_compat import Interval, _fit_context
from .._torch import resolve_device
from ._base import METRIC_CONSTRAINT, SDRTransformerMixin, check_xy, sign_rule
from ._fccov import _evaluate


class LinearFCCov(ClassNamePrefixFeaturesOutMixin, SDRTransformerMixin, BaseEstimator):
    """Linear sufficient dimension reduction by FCCov (a cumulative-slicing analogue).

    With ``U = X`` the FCCov matrix ``M_X = (1/n^2) X~' K X~`` (computed by cumulative sums,
    never forming the ball kernel) is contrasted with the covariance:
    ``M_X b = lambda (Sigma + eps I) b``, ``eps = reg tr(Sigma) / p``. The top
    ``n_components`` generalised eigenvectors, scaled so that ``B'(Sigma + eps I)B = I``,
    are the directions; eigenvalue ``j`` equals FCCov_n of projection ``j`` (for
    ``reg = 0``). Under the linearity condition the directions lie in the central
    subspace. FCCov as defined in fstat.

    Parameters
    ----------
    n_components : int, default=1
        Number of directions (at most n_features).
    metric : str or callable, default="euclidean"
        Response metric, see :func:`fstat.sdr.pairwise_response_distances`.
    metric_params : dict, optional
    reg : float, default=1e-8
        Ridge on the covariance, relative to its mean eigenvalue.
    n_centers : int, optional
        Sampled ball centres (faster, randomised).
    random_state : int, RandomState or None
        Draw of the sampled centres.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"

    Attributes
    ----------
    x_mean_ : ndarray of shape (n_features,)
    covariance_ : ndarray of shape (n_features, n_features)
    fccov_matrix_ : ndarray of shape (n_features, n_features)
    eigenvalues_ : ndarray of shape (n_features,), descending
    directions_ : ndarray of shape (n_features, n_components)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    device_ : str

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.sdr import LinearFCCov
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 5))
    >>> y = X[:, 0] + X[:, 1] + 0.2 * rng.standard_normal(300)
    >>> est = LinearFCCov(device="cpu").fit(X, y)
    >>> b = est.directions_[:, 0] / np.linalg.norm(est.directions_[:, 0])
    >>> round(float(abs(b[0] + b[1]) / np.sqrt(2)), 2)
    1.0
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "metric": METRIC_CONSTRAINT,
        "metric_params": [dict, None],
        "reg": [Interval(Real, 0, None, closed="left")],
        "n_centers": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(self, n_components=1, *, metric="euclidean", metric_params=None, reg=1e-8,
                 n_centers=None, random_state=None, device="auto"):
        self.n_components = n_components
        self.metric = metric
        self.metric_params = metric_params
        self.reg = reg
        self.n_centers = n_centers
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the directions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : response accepted by ``metric``

        Returns
        -------
        self
        """
        device = resolve_device(self.device)
        X, response = check_xy(self, X, y)
        n, p = X.shape
        if self.n_components > p:
            raise ValueError(
                f"n_components={self.n_components} must be <= n_features={p}."
            )
        self.device_ = str(device)
        self.x_mean_ = X.mean(axis=0)
        Xc = X - self.x_mean_
        self.covariance_ = Xc.T @ Xc / n
        Xt = torch.tensor(Xc, dtype=torch.float64, device=device)
        M = _evaluate(Xt, response, device, matrix=True, n_centers=self.n_centers,
                      random_state=self.random_state)
        self.fccov_matrix_ = M.cpu().numpy().astype(np.float64)
        eps = self.reg * np.trace(self.covariance_) / p
        B = self.covariance_ + eps * np.eye(p)
        values, vectors = _generalised_eigh(self.fccov_matrix_, B)
        order = np.argsort(values)[::-1]
        self.eigenvalues_ = values[order]
        self.directions_ = sign_rule(vectors[:, order[: self.n_components]])
        return self

    def _transform_array(self, X):
        return (X - self.x_mean_) @ self.directions_


def _generalised_eigh(M, B):
    """``scipy.linalg.eigh(M, B)``; a B that is singular to rounding (smallest eigenvalue
    at most ``p`` machine epsilons of the largest: a constant or collinear column with
    ``reg = 0``) first gets the smallest jitter, machine epsilon times its trace, on the
    diagonal. A numerically positive definite B is used as it is, so ``reg = 0`` whitens
    exactly."""
    eigenvalues = np.linalg.eigvalsh(B)
    if eigenvalues[0] > len(B) * np.finfo(float).eps * eigenvalues[-1]:
        try:
            return scipy.linalg.eigh(M, B)
        except np.linalg.LinAlgError:  # positive by eigvalsh, yet Cholesky fails
            pass
    jitter = np.finfo(float).eps * max(np.trace(B), 1e-300)
    return scipy.linalg.eigh(M, B + jitter * np.eye(len(B)))
