"""Input checks shared by every family.

Each check raises a ``ValueError`` or ``TypeError`` whose message names the argument
and the offending value, so users see *what* was wrong, not just that something was.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_array

from ._sklearn_compat import InvalidParameterError, _check_sample_weight

__all__ = [
    "check_array_finite",
    "check_matching_length",
    "check_min_samples",
    "check_positive",
    "check_probability",
    "check_sample_weight",
    "check_treatment",
    "check_unit_interval",
]


def check_array_finite(X, name="X", *, ensure_2d=True, dtype=np.float64, min_samples=1):
    """Validate a numeric array: right dimensionality, finite, enough rows.

    Parameters
    ----------
    X : array-like
    name : str
        The argument's name, used in error messages.
    ensure_2d : bool, default=True
        ``True`` requires a 2-D array; ``False`` accepts 1-D (and returns 1-D).
    dtype : numpy dtype, default=float64
    min_samples : int, default=1

    Returns
    -------
    ndarray
        A validated C-contiguous array (a copy only when a conversion was needed: results
        then do not depend on the input's memory layout, and torch can wrap it).
    """
    try:
        array = check_array(
            X,
            dtype=dtype,
            order="C",
            ensure_2d=ensure_2d,
            ensure_all_finite=False,
            ensure_min_samples=0,
            input_name=name,
        )
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if not ensure_2d and array.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        value = array[tuple(bad)]
        raise ValueError(
            f"{name} contains non-finite values (NaN or inf); the first is {value!r} at "
            f"index {tuple(int(b) for b in bad)}."
        )
    check_min_samples(array, min_samples, name)
    return array


def check_min_samples(X, min_samples, name="X"):
    """Raise if ``X`` has fewer than ``min_samples`` rows."""
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    if n < min_samples:
        raise ValueError(
            f"{name} has {n} sample(s), but at least {min_samples} are required."
        )


def check_matching_length(*named_arrays):
    """Raise unless every ``(name, array)`` pair has the same number of rows."""
    lengths = {name: len(array) for name, array in named_arrays if array is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"Inconsistent numbers of samples: {desc}.")


def check_treatment(treatment, name="treatment", *, n_samples=None):
    """Validate a binary treatment vector and return it as an int array of 0/1.

    Accepted encodings: {0, 1} numbers or booleans. Anything else (missing values,
    a third level, strings) raises a ``ValueError`` naming the offending values.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
    name : str
    n_samples : int, optional
        Expected length.

    Returns
    -------
    ndarray of int64
    """
    if treatment is None:
        raise ValueError(f"{name} is required (a binary 0/1 vector); got None.")
    values = np.asarray(treatment)
    if values.ndim != 1:  # a column (n, 1) too: one treatment per row, as a vector
        raise ValueError(f"{name} must be 1-D of shape (n_samples,); got shape {values.shape}.")
    if n_samples is not None and len(values) != n_samples:
        raise ValueError(f"{name} has {len(values)} entries but X has {n_samples} rows.")
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        levels = np.unique(values.astype(str))[:5]
        raise ValueError(f"{name} must be binary 0/1; found values {levels.tolist()}.")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains missing or non-finite values.")
    levels = np.unique(values)
    offending = levels[~np.isin(levels, [0, 1])]
    if offending.size:
        raise ValueError(
            f"{name} must be binary with values in {{0, 1}}; found {offending[:5].tolist()}."
        )
    return values.astype(np.int64)


def check_sample_weight(sample_weight, X, name="sample_weight"):
    """Validate non-negative, finite sample weights with a positive sum; ``None`` → ones."""
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{name} contains non-finite values.")
    if np.any(weights < 0):
        raise ValueError(f"{name} must be non-negative; found min {float(weights.min())!r}.")
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not total > 0:
        raise ValueError(f"{name} must have a positive sum.")
    if not np.isfinite(total):
        raise ValueError(f"{name} sums beyond the float64 range; divide the weights by a "
                         "constant.")
    return weights


def check_layer_sizes(sizes, name="hidden_layer_sizes", *, allow_empty=True):
    """``sizes`` as a tuple of ints >= 1; ``InvalidParameterError`` naming ``name`` otherwise."""
    try:
        values = tuple(sizes)
    except TypeError:
        values = None
    if (values is None or (not values and not allow_empty)
            or any(isinstance(h, bool) or not isinstance(h, Integral | np.integer) or h < 1
                   for h in values)):
        kind = "a tuple" if allow_empty else "a non-empty tuple"
        raise InvalidParameterError(
            f"{name} must be {kind} of ints >= 1; got {name}={sizes!r}."
        )
    return tuple(int(h) for h in values)


def check_weighted_classes(y, weights):
    """Raise unless the samples with positive weight hold at least 2 classes of ``y``."""
    present = np.unique(np.asarray(y)[weights > 0])
    if present.size < 2:
        raise ValueError(
            "The classifier needs samples of at least 2 classes with positive sample_weight; "
            f"got only class {present[0]!r}."
        )


def check_integer(value, name, minimum=1):
    """Return ``int(value)`` after checking it is an integer (not a bool) >= ``minimum``.

    Raises
    ------
    ValueError
        Naming ``name``, the bound and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name}={value!r}.")
    return int(value)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, Real | np.floating | Integral):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    return value


def check_positive(value, name, *, strict=True):
    """Return ``float(value)`` after checking it is a finite number > 0 (or >= 0)."""
    value = _check_real(value, name)
    if value < 0 or (strict and value == 0):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {bound}; got {name}={value!r}.")
    return value


def check_unit_interval(value, name, *, closed_left=False, closed_right=True):
    """Return ``float(value)`` after checking it lies in the unit interval (ends as asked)."""
    value = _check_real(value, name)
    ok_left = value >= 0 if closed_left else value > 0
    ok_right = value <= 1 if closed_right else value < 1
    if not (ok_left and ok_right):
        interval = ("[" if closed_left else "(") + "0, 1" + ("]" if closed_right else ")")
        raise ValueError(f"{name} must lie in {interval}; got {name}={value!r}.")
    return value


def check_probability(values, name, *, closed_left=False, closed_right=True):
    """Vectorised :func:`check_unit_interval` for arrays; returns a float64 array."""
    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    left = array >= 0 if closed_left else array > 0
    right = array <= 1 if closed_right else array < 1
    bad = ~(finite & left & right)
    if np.any(bad):
        interval = ("[" if closed_left else "(") + "0, 1" + ("]" if closed_right else ")")
        first = array[bad].ravel()[0]
        raise ValueError(f"{name} must lie in {interval}; found {first!r}.")
    return array
