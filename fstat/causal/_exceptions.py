"""Warnings emitted by :mod:`fstat.causal` (re-exported from the package)."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["DomainViolationWarning", "InvertedBoundsWarning", "UnboundedOutcomeWarning"]


class UnboundedOutcomeWarning(UserWarning):
    """No outcome support was declared.

    Every admissible f-divergence has ``f(0) < inf``, so for outcomes with unbounded support
    the population upper bound is ``+inf``; finite estimates are then driven by the observed
    sample range and grow with the sample size. Pass ``outcome_bounds=(lo, hi)`` (or
    ``"observed"``) to silence this warning.
    """


class DomainViolationWarning(ConvergenceWarning):
    """A fitted dual puts more than 1% of a group's samples outside the conjugate's domain.

    Such samples are kept (with the tangent value of the conjugate), never dropped.
    """


class InvertedBoundsWarning(UserWarning):
    """Some estimated intervals have ``lower > upper``; they are returned unchanged."""
