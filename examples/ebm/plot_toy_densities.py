"""
Energy-based densities on 2-D toys
==================================

Heat maps of the true density, :class:`~fstat.ebm.CompositionalEBM`,
:class:`~fstat.ebm.NCEDensity` and a cross-validated kernel density estimate on three toys
with exact log-densities (:func:`fstat.datasets.make_toy_density`), with the held-out mean
log-likelihood in each panel title. The EBMs use ``max_iter=800`` and
``learning_rate=5e-3`` here to keep the gallery fast (the benchmark uses 10 000 iterations
at 2e-3); their log Z comes from importance sampling (its standard error is printed).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from fstat.datasets import make_toy_density
from fstat.ebm import CompositionalEBM, NCEDensity

grid = np.linspace(-3.2, 3.2, 120)
xx, yy = np.meshgrid(grid, grid)
points = np.c_[xx.ravel(), yy.ravel()]

fig, axes = plt.subplots(3, 4, figsize=(12, 9))
for row, name in enumerate(("eight_gaussians", "moons", "rings")):
    X, log_density = make_toy_density(name, 2000, random_state=0, return_log_density=True)
    X_test = make_toy_density(name, 2000, random_state=1)
    kde = GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1.5, -0.3, 6)},
                       cv=3).fit(X).best_estimator_
    panels = [("truth", log_density, float(np.mean(log_density(X_test))))]
    for cls in (CompositionalEBM, NCEDensity):
        est = cls(learning_rate=5e-3, max_iter=800, n_logz_samples=50_000, device="cpu",
                  random_state=0).fit(X)
        print(f"{name:16s} {cls.__name__:17s} test log-lik {est.score(X_test):.3f}, "
              f"log Z se {est.log_partition_se_:.4f}, ESS {est.log_partition_ess_:.0f}")
        panels.append((cls.__name__, est.score_samples, est.score(X_test)))
    panels.append(("KDE (CV)", kde.score_samples, float(np.mean(kde.score_samples(X_test)))))
    for col, (label, fn, ll) in enumerate(panels):
        ax = axes[row, col]
        ax.imshow(np.exp(fn(points)).reshape(xx.shape), origin="lower",
                  extent=(grid[0], grid[-1], grid[0], grid[-1]), cmap="viridis")
        ax.set_title(f"{label}\ntest log-lik {ll:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
fig.tight_layout()
plt.show()
