"""
The information plane over beta: CS-IB, VIB, NIB and HSIC
==========================================================

Every objective of :class:`~fstat.bottleneck.CSIBRegressor` trades prediction against
compression with ``beta``. CS-IB uses the conditional CS divergence plus ``beta`` times
the CS quadratic mutual information ``I(x; t)``; the baselines train the *same network*
with mean squared error plus ``beta`` times their own compression term: the VIB
KL bound (``objective="vib"``), the nonlinear-IB pairwise-distance bound
(``objective="nib"``) and the biased HSIC of ``(x, t)`` (``objective="hsic"``).

:func:`fstat.bottleneck.information_plane_path` fits one clone per ``beta`` and
evaluates on held-out rows ``I(x; t)`` and ``I(y; t)`` -- always CS-QMI in nats with
median widths, whatever the training objective, so all four methods share the same
axes -- the RMSE, and fstat's compression ratio ``r = 1 - I_xt(beta) / I_xt(beta_min)``
(an fstat definition, not the paper's; ``beta_min = 0`` here).

Data: heavy-tailed Friedman #1 (Student-t(2) noise), RMSE against the noiseless mean
``f``. Training is deliberately tiny (600 rows, a small network, 10 epochs) so the
24 fits run in seconds; the numbers are illustrative, not a benchmark (see
``benchmarks/bench_bottleneck.py`` for the full grid on 4000 rows).
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.bottleneck import CSIBRegressor, information_plane_path
from fstat.datasets import make_heavy_tailed_friedman

X, y, f = make_heavy_tailed_friedman(600, random_state=0, return_mean=True)
train, test = slice(0, 400), slice(400, None)
betas = [0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
paths = {}
for objective in ("cs_ib", "vib", "nib", "hsic"):
    model = CSIBRegressor(objective=objective, hidden_layer_sizes=(32, 32), bottleneck_dim=8,
                          decoder_hidden_sizes=(32,), max_iter=10, learning_rate=5e-3,
                          early_stopping=False, random_state=0, device="cpu")
    path = information_plane_path(model, X[train], y[train], betas, X_eval=X[test],
                                  y_eval=y[test], random_state=0)
    path["rmse_f"] = np.array([np.sqrt(np.mean((m.predict(X[test]) - f[test]) ** 2))
                               for m in path["estimators"]])
    paths[objective] = path
    for b, r, iyt, e in zip(betas, path["compression_ratio"], path["I_yt"], path["rmse_f"]):
        print(f"{objective:6s} beta={b:<6g} r={r:+.2f}  I(y;t)={iyt:.3f}  RMSE vs f={e:.2f}")

# %%
# Left: ``I(y; t)`` (what the representation says about the target) against the
# compression ratio ``r`` (how much of ``I(x; t)`` at ``beta = 0`` was removed), one
# curve per objective, ``beta`` written next to each point. Right: RMSE against the
# noiseless mean over ``beta`` (symlog axis, ``beta = 0`` at the left edge).

labels = {"cs_ib": "CS-IB", "vib": "VIB", "nib": "NIB", "hsic": "HSIC"}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for objective, path in paths.items():
    line, = ax1.plot(path["compression_ratio"], path["I_yt"], "o-", label=labels[objective])
    for b, r, iyt in zip(betas, path["compression_ratio"], path["I_yt"]):
        ax1.annotate(f"{b:g}", (r, iyt), textcoords="offset points", xytext=(4, 4),
                     fontsize=7, color=line.get_color())
    ax2.plot(betas, path["rmse_f"], "o-", label=labels[objective])
ax1.set(xlabel="compression ratio r = 1 - I(x;t) / I(x;t)[beta=0]",
        ylabel="I(y; t), CS-QMI [nats]", title="information plane (test rows)")
ax2.set_xscale("symlog", linthresh=1e-3)
ax2.set(xlabel="beta", ylabel="test RMSE vs f", title="prediction quality")
ax1.legend()
ax2.legend()
fig.tight_layout()
plt.show()

# %%
# How to read it: moving right means the representation forgets more of ``x``; a curve
# that stays high while moving right compresses without losing target information.
# ``beta`` is not comparable across objectives (a KL in nats, a CS-QMI of order
# 1e-2, an HSIC of order 1e-3 have different scales), which is why the plane uses one
# common pair of CS estimates. A negative ``r`` means ``I(x; t)`` grew relative to
# ``beta = 0`` (run-to-run variation). These are single short runs on 400 training
# rows: differences of a few hundredths of a nat are within seed-to-seed noise.
