"""sklearn compatibility of the causal estimators (common checks on binarising subclasses)."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from fstat.causal import ConditionalDivergenceBounds, MarginalDivergenceBounds
from fstat.causal._testing import FAST_PARAMS


def _binarise(X):
    """Column 0 -> 1{X0 > median}; anything that is not a 2-D float array passes through."""
    if X is None:
        return X
    if hasattr(X, "iloc"):
        try:
            col = X.iloc[:, 0].astype(float)
        except (TypeError, ValueError, IndexError):
            return X
        X = X.copy()
        X[X.columns[0]] = (col > col.median()).astype(X.dtypes.iloc[0])
        return X
    try:
        arr = np.array(X, dtype=np.float64)
    except (TypeError, ValueError):
        return X
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0 or not np.all(np.isfinite(arr)):
        return X
    arr[:, 0] = (arr[:, 0] > np.median(arr[:, 0])).astype(float)
    return arr


class _Binarising:
    def fit(self, X, y, treatment=None, sample_weight=None):
        return super().fit(_binarise(X), y, treatment=treatment, sample_weight=sample_weight)

    def score(self, X, y, treatment=None, sample_weight=None):
        return super().score(_binarise(X), y, treatment=treatment, sample_weight=sample_weight)


class BinarisingMarginal(_Binarising, MarginalDivergenceBounds):
    pass


class BinarisingConditional(_Binarising, ConditionalDivergenceBounds):
    pass


# check_sample_weight_equivalence_on_dense_data passes: with the check's explicit folds,
# integer weights equal repeated rows (fold trimming, weighted outcome scale, keyed seeds)
REASONS = {
    "check_fit2d_1feature": "the only feature is the treatment: no covariates left",
}


def _expected(estimator):
    reasons = dict(REASONS)
    if isinstance(estimator, MarginalDivergenceBounds):
        # covariates are ignored and bounds are exact: only the one-sample fit fails
        return {}
    return reasons


@parametrize_with_checks(
    [BinarisingMarginal(**FAST_PARAMS["MarginalDivergenceBounds"]),
     BinarisingConditional(**FAST_PARAMS["ConditionalDivergenceBounds"])],
    expected_failed_checks=_expected,
)
def test_sklearn_checks_on_binarising_subclasses(estimator, check):
    check(estimator)


def test_fast_params_are_fast():
    assert FAST_PARAMS["ConditionalDivergenceBounds"]["max_iter"] <= 20
