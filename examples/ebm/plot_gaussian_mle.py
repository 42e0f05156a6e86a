"""
Convergence to the closed-form Gaussian MLE
===========================================

With the quadratic energy E(z) = ½ zᵀPz − bᵀz the model family is the Gaussians, the
maximum-likelihood estimate is known in closed form (sample mean and covariance with divisor
n), and log Z is exact. We fit :class:`~fstat.ebm.CompositionalEBM`,
:class:`~fstat.ebm.NCEDensity` and :class:`~fstat.ebm.SNLDensity` to a 5-D Gaussian sample
and plot, against the iteration, the distance of the fitted mean and covariance to the MLE
(recorded by a ``callback``) and the final gap in train log-likelihood. ``max_iter`` is
1500 here (3000 in the test suite).
"""

import math

import matplotlib.pyplot as plt
import numpy as np

from fstat.datasets import make_toy_density
from fstat.ebm import CompositionalEBM, NCEDensity, SNLDensity

X = make_toy_density("gaussian", 2000, random_state=0)
n, d = X.shape
S = np.cov(X.T, bias=True)
mle_nll = d / 2 * (1 + math.log(2 * math.pi)) + 0.5 * np.linalg.slogdet(S)[1]
mu_w = (X - X.mean(0)) / X.std(0)  # working (standardised) space
S_w = np.cov(mu_w.T, bias=True)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for cls in (CompositionalEBM, NCEDensity, SNLDensity):
    mean_err, cov_err = [], []

    def record(t, module, info, mean_err=mean_err, cov_err=cov_err):
        if t % 10 == 0:
            from fstat.ebm._energies import EnergyModel

            mu, cov = EnergyModel.quadratic_moments(module)
            mean_err.append(np.abs(mu).max())
            cov_err.append(np.linalg.norm(cov - S_w) / np.linalg.norm(S_w))

    est = cls(energy_model="quadratic", learning_rate=1e-2, max_iter=1500, dtype="float64",
              callback=record, device="cpu", random_state=0).fit(X)
    gap = -est.score(X) - mle_nll
    steps = np.arange(len(mean_err)) * 10
    ax1.semilogy(steps, mean_err, label=f"{cls.__name__} (NLL gap {gap:.4f})")
    ax2.semilogy(steps, cov_err, label=cls.__name__)
ax1.set_xlabel("iteration")
ax1.set_ylabel("max |μ̂ − x̄| (standardised units)")
ax1.legend()
ax2.set_xlabel("iteration")
ax2.set_ylabel("‖Σ̂ − S‖_F / ‖S‖_F (standardised units)")
ax2.legend()
fig.tight_layout()
plt.show()
