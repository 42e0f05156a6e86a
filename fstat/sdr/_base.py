"""Shared pieces of the FCCov estimators: input checks, the sign rule, the FCCor score."""

from __future__ import annotations

import numpy as np
from sklearn.base import TransformerMixin

from .._sklearn_compat import StrOptions, check_is_fitted, validate_data
from .._warnings import warn_user
from ._fccov import _evaluate
from ._metrics import METRICS, check_min_n, check_response

METRIC_CONSTRAINT = [StrOptions(set(METRICS)), callable]


def check_xy(estimator, X, y, *, reset=True):
    """Validate X with sklearn and y with the estimator's metric; returns (X, response)."""
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    X = validate_data(estimator, X, reset=reset, dtype=np.float64, order="C")
    if not hasattr(y, "__len__"):
        y = np.asarray(y)
    n_y = np.shape(y)[0] if hasattr(y, "shape") else len(y)
    if n_y != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: X has {X.shape[0]}, "
            f"y has {n_y}."
        )
    check_min_n(X.shape[0], "X")
    response = check_response(y, estimator.metric, estimator.metric_params)
    if reset and response.all_equal():
        warn_user("all response distances are equal (constant y): FCCov is 0 for every "
                  "summary, so the fit carries no information.", UserWarning)
    return X, response


def sign_rule(R):
    """Make the largest-|.| entry of each column positive."""
    idx = np.argmax(np.abs(R), axis=0)
    signs = np.sign(R[idx, np.arange(R.shape[1])])
    signs[signs == 0] = 1.0
    return R * signs


def fccor_score(estimator, X, y):
    """FCCor_n(transform(X), y) with the fitted metric, in [0, 1]."""
    import torch

    check_is_fitted(estimator)
    X, response = check_xy(estimator, X, y, reset=False)
    U = torch.tensor(estimator._transform_array(X), dtype=torch.float64)
    return float(_evaluate(U, response, torch.device("cpu"), normalize=True))


class SDRTransformerMixin(TransformerMixin):
    """``transform`` (with ``set_output`` support), ``score`` and the tags shared by the
    FCCov estimators.

    The estimator provides ``_transform_array(X)`` (validated float64 array in, projected
    array out) and ``n_components``.
    """

    def transform(self, X):
        """The estimated sufficient predictors of ``X`` (see the class description).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        return self._transform_array(X)

    def score(self, X, y):
        """FCCor_n of ``transform(X)`` with ``y`` under the fitted metric (in [0, 1]; higher
        is better)."""
        return fccor_score(self, X, y)

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
