"""Information-theoretic causal bounds under unmeasured confounding.

Under unobserved confounding the interventional mean :math:`E[Y \\mid do(A=a), X=x]` is only
partially identified. Jung & Kang (2026) show that the observed arm law
:math:`P_{a,x} = P(Y \\mid A=a, X=x)` and the interventional law :math:`Q_{a,x}` satisfy

.. math::

    D_f(P_{a,x} \\,\\|\\, Q_{a,x}) \\le B_f(e_a(x)) = e_a f(1/e_a) + (1 - e_a) f(0),

so the largest and smallest :math:`E_Q[Y]` over that f-divergence ball bound the
interventional mean -- with a radius computed from the propensity alone, no sensitivity
parameter. This package provides

- :func:`pointwise_bounds`: exact bounds on a weighted discrete law (convex dual, closed
  forms, Newton, nested fallback), :func:`manski_bounds`, :func:`aggregate_bounds`,
  :func:`dual_risk`;
- :class:`MarginalDivergenceBounds`: exact per-arm and ATE bounds without covariates, with
  influence-function standard errors (an fstat extension);
- :class:`ConditionalDivergenceBounds`: cross-fitted, debiased neural dual for bounds at new
  covariate values (CATE bounds).

Two facts to keep in mind: for outcomes with unbounded support every population upper bound is
infinite (declare ``outcome_bounds``), and on the same support the f-bounds always contain the
Manski interval.

References
----------
Y. Jung and B. Kang (2026). Data-Driven Information-Theoretic Causal Bounds under Unmeasured
Confounding. arXiv:2601.17160.
C. F. Manski (1990). Nonparametric bounds on treatment effects. American Economic Review 80.
Y. Jin, Z. Ren and Z. Zhou (2022). Sensitivity analysis under the f-sensitivity models.
G. W. Imbens and C. F. Manski (2004). Confidence intervals for partially identified parameters.
Econometrica 72.
"""

from ..divergences import (
    conjugate,
    conjugate_derivative,
    conjugate_domain,
    radius,
    radius_derivative,
)
from ._aggregate import aggregate_bounds
from ._conditional import ConditionalDivergenceBounds
from ._display import BoundsDisplay
from ._exceptions import DomainViolationWarning, InvertedBoundsWarning, UnboundedOutcomeWarning
from ._inference import AveragedBounds
from ._marginal import MarginalDivergenceBounds
from ._pointwise import manski_bounds, pointwise_bounds
from ._risk import dual_risk

__all__ = [
    "BoundsDisplay",
    "ConditionalDivergenceBounds",
    "AveragedBounds",
    "MarginalDivergenceBounds",
    "DomainViolationWarning",
    "InvertedBoundsWarning",
    "UnboundedOutcomeWarning",
    "aggregate_bounds",
    "conjugate",
    "conjugate_derivative",
    "conjugate_domain",
    "dual_risk",
    "manski_bounds",
    "pointwise_bounds",
    "radius",
    "radius_derivative",
]
