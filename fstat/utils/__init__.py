"""Public utilities for developers building on fstat.

- :func:`all_estimators` lists every public estimator class in fstat;
- :mod:`fstat.utils._test_common` holds the fast parameters and expected-failure
  reasons used by the common scikit-learn estimator checks.
"""

from ._discovery import all_estimators

__all__ = ["all_estimators"]
