"""
FCCovNet is robust to gross outliers in the response
====================================================

Model M1: :math:`y = x_1^2 + x_2^2 + 0.5\\varepsilon` with ten predictors; in M1o a
fraction of responses is shifted by :math:`100(1 + |C|)`, :math:`C` Cauchy. We fit
FCCovNet with its rank-based FCCov objective and with the distance-weighted objective,
plot the learned predictor against the true one on test data, and draw test dCor
against the contamination level. (Reduced epochs for speed.)
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from fstat.datasets import make_frechet_sdr
from fstat.sdr import FCCovNet
from fstat.sdr._dcor import _distance_correlation

warnings.simplefilter("ignore")
n = 300


def fit(model, objective, contamination=0.05, seed=0):
    X, Y, H = make_frechet_sdr(model, n_samples=2 * n, contamination=contamination,
                               random_state=seed)
    est = FCCovNet(objective=objective, max_epochs=400, random_state=0, device="cpu")
    Z = est.fit(X[:n], Y[:n]).transform(X[n:])[:, 0]
    return Z, H[n:], _distance_correlation(Z, H[n:])


fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
curve = {"fccov": {}, "distance": {}}
for ax, (model, objective) in zip(axes[:4], [("M1", "fccov"), ("M1", "distance"),
                                             ("M1o", "fccov"), ("M1o", "distance")]):
    Z, h, d = fit(model, objective)
    curve[objective][0.0 if model == "M1" else 0.05] = d  # M1 = M1o without contamination
    ax.scatter(h, Z, s=4)
    ax.set(title=f"{model}, {objective}: dCor {d:.2f}", xlabel="true h", ylabel="learned")

levels = [0.0, 0.025, 0.05, 0.10]
for objective in ("fccov", "distance"):
    scores = [curve[objective][c] if c in curve[objective] else fit("M1o", objective, c)[2]
              for c in levels]
    axes[4].plot(np.array(levels) * 100, scores, "o-", label=objective)
axes[4].set(xlabel="contamination (%)", ylabel="test dCor", ylim=(0, 1),
            title="robustness curve")
axes[4].legend()
fig.tight_layout()
plt.show()
