"""
Bound width per divergence against the propensity
=================================================

The radius :math:`B_f(e) = e f(1/e) + (1 - e) f(0)` of every divergence shrinks to zero as the
propensity :math:`e(x) \\to 1` and grows as :math:`e(x) \\to 0`, but at different rates, so the
divergences rank differently across the propensity range. On
:func:`~fstat.datasets.make_probit_sine` (probit confounding, a sine effect in the propensity
scale) we fit :class:`~fstat.causal.ConditionalDivergenceBounds` once for the five admissible
divergences and plot the mean width of the bounds on :math:`E[Y \\mid do(1), x]` in bins of the
estimated propensity :math:`\\hat e(x)`, one line per divergence.
The run is kept small (n = 2000, 150 steps) so the example builds in seconds on a CPU.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from fstat.causal import ConditionalDivergenceBounds
from fstat.datasets import make_probit_sine

X, y, a = make_probit_sine(2000, random_state=0)
est = ConditionalDivergenceBounds(max_iter=150, hidden_layer_sizes=(32, 32), random_state=0,
                                  device="cpu")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the unbounded-outcome warning: see plot_randhie.py
    est.fit(X, y, treatment=a)

e_hat = est.predict_propensity(X)
per_divergence = est.predict_outcome_bounds(X, 1, divergence="all")  # (n, 5, 2)
edges = np.quantile(e_hat, np.linspace(0, 1, 9))
bins = np.clip(np.digitize(e_hat, edges[1:-1]), 0, 7)
centres = np.array([e_hat[bins == b].mean() for b in range(8)])


def binned_width(bounds):
    width = bounds[:, 1] - bounds[:, 0]
    return np.array([width[bins == b].mean() for b in range(8)])


fig, ax = plt.subplots(figsize=(6, 4))
for j, name in enumerate(est.divergences_):
    widths = binned_width(per_divergence[:, j])
    ax.plot(centres, widths, marker="o", label=name)
    print(f"{name:10s} mean width {widths.mean():6.2f} (lowest e bin {widths[0]:6.2f}, "
          f"highest {widths[-1]:6.2f})")
ax.set_xlabel("estimated propensity e(x) (bin means)")
ax.set_ylabel("mean width of the bounds on E[Y | do(1), x]")
ax.set_title("make_probit_sine: width per divergence")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
