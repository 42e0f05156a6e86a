"""Discovery of fstat's public estimators (for tests, docs and the tour)."""

import importlib
import inspect

from sklearn.base import BaseEstimator

FAMILIES = ("causal", "sdr", "bottleneck", "ebm", "kernels")


def family_modules():
    """Import and return the family sub-packages that exist in this installation."""
    modules = []
    for family in FAMILIES:
        try:
            modules.append(importlib.import_module(f"fstat.{family}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"fstat.{family}":
                raise
    return modules


def all_estimators():
    """Every public estimator class in fstat, as sorted ``(name, class)`` pairs.

    A class counts when a family package lists it in ``__all__``, it subclasses
    :class:`sklearn.base.BaseEstimator`, it is not abstract and it is not a building
    block of other estimators (a class attribute ``_component = True``, as the ebm
    noise distributions have).

    Returns
    -------
    list of (str, type)

    Examples
    --------
    >>> from fstat.utils import all_estimators
    >>> isinstance(all_estimators(), list)
    True
    """
    found = {}
    for module in family_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not inspect.isabstract(obj)
                and not getattr(obj, "_component", False)
            ):
                found[name] = obj
    return sorted(found.items())
