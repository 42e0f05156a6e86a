"""
Unbounded outcomes: the upper bound follows the sample maximum
==============================================================

Every admissible f-divergence has :math:`f(0) < \\infty`, so the dual certificate must dominate
the largest possible outcome. For an outcome with unbounded support (here standard normal) the
population upper bound is :math:`+\\infty` for every divergence, and the finite numbers computed
from a sample are driven by its maximum: they keep rising with n. For a bounded outcome
(Binomial(4, 0.4) on the declared support [0, 4]) the same bounds converge. We use the exact
solver :func:`~fstat.causal.pointwise_bounds` with propensity 0.3 on nested prefixes of one
sample.
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.causal import pointwise_bounds

DIVERGENCES = ("kl", "hellinger", "chi2", "tv", "js")
sizes = np.array([30, 100, 300, 1000, 3000, 10000])
rng = np.random.default_rng(0)
gaussian = rng.standard_normal(sizes[-1])
binomial = rng.binomial(4, 0.4, size=sizes[-1]).astype(float)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
for name in DIVERGENCES:
    upper_g = [pointwise_bounds(gaussian[:n], 0.3, divergence=name)[1] for n in sizes]
    upper_b = [pointwise_bounds(binomial[:n], 0.3, divergence=name, support=(0, 4))[1]
               for n in sizes]
    axes[0].plot(sizes, upper_g, marker="o", label=name)
    axes[1].plot(sizes, upper_b, marker="o", label=name)
    print(f"{name:10s} normal: {upper_g[0]:6.2f} -> {upper_g[-1]:6.2f}   "
          f"binomial: {upper_b[0]:6.2f} -> {upper_b[-1]:6.2f}")
sample_max = [gaussian[:n].max() for n in sizes]
axes[0].plot(sizes, sample_max, color="black", ls="--", label="sample maximum")
axes[0].set_title("N(0, 1) outcome, observed support")
axes[1].set_title("Binomial(4, 0.4), declared support [0, 4]")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("n")
axes[0].set_ylabel("upper bound on E[Y | do(a)]")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
