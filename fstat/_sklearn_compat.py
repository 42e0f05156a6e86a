"""The only module in fstat that imports private scikit-learn helpers.

Everything else imports them from here, so a change in scikit-learn's private API
is fixed in one place. Requires scikit-learn >= 1.6.
"""

from numbers import Integral, Real

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Integral",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Real",
    "StrOptions",
    "_check_sample_weight",
    "_fit_context",
    "check_is_fitted",
    "store_init_params",
    "validate_data",
    "validate_params",
]


def store_init_params(estimator, arguments):
    """Assign each ``__init__`` argument to the attribute of the same name.

    The scikit-learn convention (``__init__`` only stores its parameters) for estimators
    with many parameters: call ``store_init_params(self, locals())`` as the whole body of
    ``__init__``. ``get_params`` still reads the names from the signature.
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
