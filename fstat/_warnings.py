"""Warnings that name the user's line, however deep inside fstat / scikit-learn they arise."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings

import joblib
import sklearn

__all__ = ["warn_user", "collecting_warnings"]

#: the list that warn_user appends to instead of warning, per thread / context
_COLLECTOR = contextvars.ContextVar("fstat_warning_collector", default=None)

_INTERNAL = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,  # fstat/
    os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,  # fit wrappers, Pipeline
    os.path.dirname(os.path.abspath(joblib.__file__)) + os.sep,  # cross_validate, GridSearchCV
)


def warn_user(message, category=UserWarning):
    """``warnings.warn`` with the stacklevel of the first frame outside fstat, sklearn, joblib.

    A fixed ``stacklevel`` breaks as soon as the call depth changes (``fit`` runs through
    scikit-learn's ``_fit_context`` wrapper, a shared helper is reached from ``fit`` and
    from ``score`` at different depths, a Pipeline adds more frames); walking the stack
    does not. Every warning fstat emits goes through this function.
    """
    collector = _COLLECTOR.get()
    if collector is not None:
        collector.append((str(message), category))
        return
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 = the caller of warn_user
    while frame.f_back is not None and os.path.abspath(
            frame.f_code.co_filename).startswith(_INTERNAL):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


@contextlib.contextmanager
def collecting_warnings():
    """Within the block, :func:`warn_user` appends ``(message, category)`` to the yielded
    list instead of warning, in this thread only.

    Used where a caller reports repeated warnings once (e.g. per fit rather than per batch).
    ``warnings.catch_warnings`` would do it for the whole process: other threads' warnings
    would be caught (and misread) too.
    """
    collected = []
    token = _COLLECTOR.set(collected)
    try:
        yield collected
    finally:
        _COLLECTOR.reset(token)
