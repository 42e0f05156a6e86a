"""
Conditional bounds against the estimated propensity
===================================================

On :func:`~fstat.datasets.make_confounded_paper` (the paper's appendix DGP, an unbounded
outcome) we fit :class:`~fstat.causal.ConditionalDivergenceBounds` and plot the bound band for
:math:`E[Y \\mid do(1), x]` against :math:`\\hat e(x)` with the Manski band (observed support)
and the exact truth. Without ``outcome_bounds`` fstat warns: the population upper bound of an
unbounded outcome is infinite, so these finite bands are driven by the sample range.
"""

import warnings

import matplotlib.pyplot as plt

from fstat.causal import BoundsDisplay, ConditionalDivergenceBounds, UnboundedOutcomeWarning
from fstat.datasets import make_confounded_paper

X, y, a, truth = make_confounded_paper(2000, random_state=0, return_truth=True)
est = ConditionalDivergenceBounds(("kl", "chi2"), max_iter=200, hidden_layer_sizes=(32, 32),
                                  random_state=0, device="cpu")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    est.fit(X, y, treatment=a)
for w in caught:
    if issubclass(w.category, UnboundedOutcomeWarning):
        print("UnboundedOutcomeWarning:", w.message)

fig, ax = plt.subplots(figsize=(6, 4))
BoundsDisplay.from_estimator(est, X, feature="propensity", arm=1, truth=truth.mu1, ax=ax)
ax.set_title("Intersection bounds on E[Y | do(1), x] (kl, chi2)")
fig.tight_layout()
plt.show()
