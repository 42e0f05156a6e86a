"""
Adversarial robustness on the diabetes data
===========================================

Test RMSE under FGSM perturbations of size ``eps`` (in feature standard deviations)
for a CS-IB network, the same network trained with MSE, and gradient boosting
attacked by *transfer* (perturbations crafted on the MSE network).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from fstat.bottleneck import CSIBRegressor, adversarial_rmse

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
net = dict(hidden_layer_sizes=(64, 64), bottleneck_dim=16, decoder_hidden_sizes=(64,),
           max_iter=60, random_state=0, device="cpu")
models = {
    "CS-IB (beta=0.01)": CSIBRegressor(beta=0.01, **net),
    "MSE network": CSIBRegressor(objective="mse", beta=0.0, noise_std=0.0, **net),
    "HGB (transfer)": HistGradientBoostingRegressor(random_state=0),
}
eps = np.linspace(0.0, 0.6, 7)
fig, ax = plt.subplots(figsize=(6, 4))
for name, model in models.items():
    model.fit(X_train, y_train)
    surrogate = models["MSE network"] if name.startswith("HGB") else None
    out = adversarial_rmse(model, X_test, y_test, eps=eps, surrogate=surrogate)
    ax.plot(out["eps"], out["rmse"], "o-", label=name)
    print(f"{name:18s} clean {out['rmse'][0]:.1f}  eps=0.6 {out['rmse'][-1]:.1f}")
ax.set(xlabel="FGSM eps (feature sd units)", ylabel="test RMSE", title="diabetes")
ax.legend()
fig.tight_layout()
plt.show()
