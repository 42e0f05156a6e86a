"""Validation shared by the causal estimators: treatment extraction and outcome support."""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse
from sklearn.exceptions import DataConversionWarning

from .._sklearn_compat import InvalidParameterError
from .._validation import check_array_finite
from .._warnings import warn_user
from ..divergences import get_divergence
from ._aggregate import AGGREGATIONS
from ._exceptions import UnboundedOutcomeWarning

__all__ = [
    "check_divergences",
    "check_outcome_bounds",
    "split_treatment",
]

_UNBOUNDED_MESSAGE = (
    "outcome_bounds=None: every admissible f-divergence has f(0) < inf, so for outcomes with "
    "unbounded support the population upper bound is +inf; these estimates are driven by the "
    "observed sample range and grow with n. Pass outcome_bounds=(lo, hi) or 'observed'."
)


class SparseInputError(ValueError, TypeError):
    """Sparse ``X``: the specification's ValueError, also the TypeError scikit-learn raises."""


def check_dense(X):
    """Raise :class:`SparseInputError` for a scipy sparse ``X`` (the estimators need dense X)."""
    if scipy.sparse.issparse(X):
        raise SparseInputError(
            "Sparse data was passed for X, but dense data is required; use X.toarray()."
        )

def check_divergences(divergences, aggregation, k):
    """Canonical divergence names (tuple) after checking admissibility and aggregation/k.

    Every problem is an ``InvalidParameterError`` (a ``ValueError``), as for sklearn's own
    parameter validation.
    """
    if isinstance(divergences, str):
        divergences = (divergences,)
    try:
        names = tuple(get_divergence(d).name for d in divergences)
    except TypeError as exc:
        raise InvalidParameterError(
            f"divergences must be a sequence of names; got {divergences!r}.") from exc
    except ValueError as exc:  # an unknown name: the message lists the available ones
        raise InvalidParameterError(str(exc)) from exc
    if not names:
        raise InvalidParameterError("divergences must name at least one divergence.")
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"divergences contains duplicates: {names}.")
    for name in names:
        if not math.isfinite(get_divergence(name).f0):
            raise InvalidParameterError(
                f"divergence {name!r} has f(0) = inf: its radius is infinite, so it gives no "
                "bound. Use 'kl', 'hellinger', 'chi2', 'tv' or 'js'."
            )
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise InvalidParameterError(
            f"aggregation must be one of {AGGREGATIONS} or None; got aggregation={aggregation!r}."
        )
    if aggregation == "kth" and (
        k is None or isinstance(k, bool) or not isinstance(k, numbers.Integral)
        or not 1 <= k <= len(names)
    ):
        raise InvalidParameterError(
            f"aggregation='kth' needs an integer k in [1, {len(names)}]; got k={k!r}."
        )
    return names


def column_index(X, treatment_col, n_features):
    """The index of ``treatment_col`` (an int index, or a column name of a DataFrame
    ``X``) among the ``n_features`` columns of the validated X."""
    columns = getattr(X, "columns", None)
    if isinstance(treatment_col, numbers.Integral) and not isinstance(treatment_col, bool):
        if not -n_features <= treatment_col < n_features:
            raise ValueError(
                f"treatment_col={treatment_col!r} is not a column index of X with "
                f"n_features={n_features}."
            )
        return int(treatment_col) % n_features
    if columns is None:
        raise ValueError(
            f"treatment_col={treatment_col!r} is a name but X has no column names; pass a "
            "DataFrame or an integer index."
        )
    names = [str(c) for c in columns]
    if str(treatment_col) not in names:
        raise ValueError(
            f"treatment_col={treatment_col!r} is not a column of X; available columns: "
            f"{names[:20]}."
        )
    return names.index(str(treatment_col))


def split_treatment(X_array, col):
    """Covariates (all columns but ``col``) and their indices."""
    idx = np.array([j for j in range(X_array.shape[1]) if j != col], dtype=np.int64)
    return X_array[:, idx], idx


def check_outcome_y(y):
    """A finite 1-D outcome; a single column (n, 1) is raveled with a DataConversionWarning
    (as sklearn's regressors do), wider arrays raise ValueError."""
    array = np.asarray(y) if not hasattr(y, "iloc") else y
    if getattr(array, "ndim", 1) == 2 and array.shape[1] == 1:
        warn_user(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel().",
            DataConversionWarning,
        )
        y = np.asarray(y)[:, 0]
    return check_array_finite(y, "y", ensure_2d=False)


def check_scored_y(estimator, y):
    """Held-out y against the support fixed at ``fit`` (``score``, averaged bounds on new data).

    A declared support raises for y outside it (spec section 4). The training range of
    ``outcome_bounds="observed"`` warns instead: held-out folds of a continuous outcome
    routinely pass it (cross-validation must not fail), but the bounds assume that range.
    A fit that saw a constant outcome (a point-mass law) raises for any other value.
    """
    lo, hi = estimator.support_
    source = estimator.support_source_
    if source == "declared":
        check_outcome_bounds((lo, hi), y, warn=False)
    if getattr(estimator, "constant_outcome_", False) and np.any(y != lo):
        raise ValueError(
            f"the fit saw a constant outcome (y = {lo:g}); {int(np.sum(y != lo))} held-out "
            "value(s) differ, and the fitted bounds (that constant) do not apply to them. "
            "Fit on data where y varies, or declare outcome_bounds."
        )
    if source == "observed":
        outside = int(np.sum((y < lo) | (y > hi)))
        if outside:
            warn_user(
                f"{outside} held-out value(s) of y lie outside the training range "
                f"[{lo:g}, {hi:g}] that outcome_bounds='observed' declared; the bounds "
                "assume that range (declare a wider outcome_bounds if it is too narrow).",
                UserWarning,
            )


def arm_weights(treatment, weights):
    """Total weight of arms 0 and 1; a ValueError when an arm has none (after weighting)."""
    totals = np.array([weights[treatment == 0].sum(), weights[treatment == 1].sum()])
    if np.any(totals <= 0):
        raise ValueError(
            "treatment has a single arm with positive weight (one class): both treatment "
            f"arms need samples with positive weight; found arm totals {totals.tolist()}."
        )
    return totals


def outcome_name(y):
    """The name of a pandas Series outcome, else ``"y"`` (for summary headers)."""
    name = getattr(y, "name", None) if hasattr(y, "iloc") else None
    return "y" if name is None else str(name)


def warn_constant_outcome(value, detail=""):
    """The spec's UserWarning for a constant y without a wider declared support."""
    warn_user(
        f"y is constant ({value!r}) and no wider outcome support is declared: every bound "
        f"equals it{detail}.",
        UserWarning,
    )


def check_outcome_bounds(outcome_bounds, y, weights=None, *, warn=True):
    """Return ``(lo, hi, source)`` with source in {"declared", "observed", "sample"}."""
    pos = y if weights is None else y[weights > 0]
    if outcome_bounds is None:
        if warn:
            warn_user(_UNBOUNDED_MESSAGE, UnboundedOutcomeWarning)
        return float(pos.min()), float(pos.max()), "sample"
    if isinstance(outcome_bounds, str):
        if outcome_bounds != "observed":
            raise ValueError(
                "outcome_bounds must be None, 'observed' or a pair (lo, hi); got "
                f"outcome_bounds={outcome_bounds!r}."
            )
        return float(pos.min()), float(pos.max()), "observed"
    try:
        lo, hi = (float(v) for v in outcome_bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "outcome_bounds must be None, 'observed' or a pair (lo, hi); got "
            f"outcome_bounds={outcome_bounds!r}."
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"outcome_bounds must be finite with lo < hi; got outcome_bounds={outcome_bounds!r}."
        )
    outside = (y < lo) | (y > hi)
    if np.any(outside):
        raise ValueError(
            f"{int(outside.sum())} value(s) of y lie outside outcome_bounds=({float(lo)!r}, "
            f"{float(hi)!r}); y ranges over [{float(y.min())!r}, {float(y.max())!r}]."
        )
    return lo, hi, "declared"
