"""Fast parameters and expected failures for the common scikit-learn estimator checks.

Each family may define ``fstat/<family>/_testing.py`` with two dicts:

- ``FAST_PARAMS``: estimator class name -> constructor keyword arguments that make
  ``check_estimator`` fast (few iterations, small networks, ``device="cpu"``);
- ``EXPECTED_FAILED_CHECKS``: estimator class name -> {check name: written reason}.

They are merged here so that adding a family needs no edit to this file; the merged dicts
are also importable as ``FAST_PARAMS`` and ``EXPECTED_FAILED_CHECKS`` (built on access).
"""

import importlib

from ._discovery import FAMILIES


def _merged(attribute):
    merged = {}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"fstat.{family}._testing")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"fstat.{family}", f"fstat.{family}._testing"):
                raise
            continue
        merged.update(getattr(module, attribute, {}))
    return merged


def fast_params(name):
    """Constructor keyword arguments for a fast check of estimator ``name``."""
    return dict(_merged("FAST_PARAMS").get(name, {}))


def expected_failed_checks(estimator):
    """``{check name: reason}`` for an estimator instance (sklearn's callback signature)."""
    return dict(_merged("EXPECTED_FAILED_CHECKS").get(type(estimator).__name__, {}))


def __getattr__(name):
    """``FAST_PARAMS`` / ``EXPECTED_FAILED_CHECKS``: every family's entries, merged."""
    if name in ("FAST_PARAMS", "EXPECTED_FAILED_CHECKS"):
        return _merged(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
