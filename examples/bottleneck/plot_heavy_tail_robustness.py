"""
Robust regression under heavy-tailed noise
==========================================

Friedman #1 data with Student-t(2) noise (infinite variance). The same network is
trained with the CS-IB objective and with mean squared error; we compare predictions
with the *noiseless* mean ``f`` on held-out rows, then sweep the target kernel width
``sigma_y`` -- CS-IB's robustness knob (small: robust, large: MSE-like).
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.bottleneck import CSIBRegressor
from fstat.datasets import make_heavy_tailed_friedman

X, y, f = make_heavy_tailed_friedman(1500, random_state=0, return_mean=True)
train, test = slice(0, 1200), slice(1200, None)
small = dict(hidden_layer_sizes=(64, 64), bottleneck_dim=16, decoder_hidden_sizes=(64,),
             max_iter=12, learning_rate=5e-3, early_stopping=False, noise_std=0.0, beta=0.0,
             random_state=0, device="cpu")


def rmse_vs_mean(model):
    return float(np.sqrt(np.mean((model.predict(X[test]) - f[test]) ** 2)))


mse = CSIBRegressor(objective="mse", **small).fit(X[train], y[train])
csib = CSIBRegressor(objective="cs_ib", **small).fit(X[train], y[train])
print(f"RMSE vs f: CS-IB {rmse_vs_mean(csib):.2f}, MSE {rmse_vs_mean(mse):.2f}")

widths = [0.25, 1.0, 4.0]
sweep = [rmse_vs_mean(CSIBRegressor(sigma_y=s, **small).fit(X[train], y[train]))
         for s in widths]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.scatter(f[test], mse.predict(X[test]), s=8, alpha=0.6, label="MSE")
ax1.scatter(f[test], csib.predict(X[test]), s=8, alpha=0.6, label="CS-IB")
lims = [f[test].min(), f[test].max()]
ax1.plot(lims, lims, "k--", lw=1)
ax1.set(xlabel="noiseless mean f(x)", ylabel="prediction", title="held-out predictions")
ax1.legend()
ax2.plot(widths, sweep, "o-", label="CS-IB")
ax2.axhline(rmse_vs_mean(mse), color="C0", ls="--", label="MSE")
ax2.set(xscale="log", xlabel="sigma_y (target sd units)", ylabel="RMSE vs f",
        title="the robustness knob")
ax2.legend()
fig.tight_layout()
plt.show()
