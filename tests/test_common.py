"""scikit-learn's common estimator checks on every public fstat estimator.

Estimators are discovered automatically (:func:`fstat.utils.all_estimators`); fast
constructor parameters and written reasons for expected failures come from
``fstat/<family>/_testing.py`` through :mod:`fstat.utils._test_common`.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fstat.utils import all_estimators
from fstat.utils._test_common import expected_failed_checks, fast_params


def _instances():
    return [cls(**fast_params(name)) for name, cls in all_estimators()]


@parametrize_with_checks(_instances(), expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_discovery_finds_only_public_estimators():
    from sklearn.base import BaseEstimator

    for name, cls in all_estimators():
        assert not name.startswith("_")
        assert issubclass(cls, BaseEstimator)


@pytest.mark.parametrize("name_cls", all_estimators(), ids=lambda p: p[0])
def test_init_only_stores_parameters(name_cls):
    """``__init__`` assigns its arguments unchanged (sklearn's clone relies on this)."""
    from sklearn.base import clone

    name, cls = name_cls
    estimator = cls(**fast_params(name))
    params = estimator.get_params(deep=False)
    cloned = clone(estimator).get_params(deep=False)
    assert params.keys() == cloned.keys()


def test_merged_tables_are_importable_by_name():
    # the specs name FAST_PARAMS / EXPECTED_FAILED_CHECKS in fstat.utils._test_common
    from fstat.utils._test_common import EXPECTED_FAILED_CHECKS, FAST_PARAMS

    assert FAST_PARAMS["CSIBRegressor"] == fast_params("CSIBRegressor") != {}
    for name, reasons in EXPECTED_FAILED_CHECKS.items():
        assert all(isinstance(r, str) and r for r in reasons.values()), name
    with pytest.raises(AttributeError):
        from fstat.utils import _test_common

        _test_common.NOT_A_TABLE  # noqa: B018
