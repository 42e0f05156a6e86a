"""Tour row of the bottleneck family (``python -m fstat``)."""

from __future__ import annotations

import time

import numpy as np


def tour(random_state=0, device="auto"):
    """CS-IB vs the MSE objective on heavy-tailed Friedman data (RMSE against the mean)."""
    from ..datasets import make_heavy_tailed_friedman
    from ._regressor import CSIBRegressor

    # n = 1500 (1200 training rows), 15 epochs: about 1.2 s of CPU time for both fits
    X, y, f = make_heavy_tailed_friedman(1500, random_state=random_state, return_mean=True)
    train, test = slice(0, 1200), slice(1200, None)
    start = time.perf_counter()
    rmse = {}
    for objective in ("cs_ib", "mse"):
        model = CSIBRegressor(
            beta=0.0, objective=objective, noise_std=0.0, hidden_layer_sizes=(64, 64),
            bottleneck_dim=16, decoder_hidden_sizes=(32,), max_iter=15, early_stopping=False,
            learning_rate=5e-3, random_state=random_state, device=device,
        ).fit(X[train], y[train])
        rmse[objective] = float(np.sqrt(np.mean((model.predict(X[test]) - f[test]) ** 2)))
    return [{
        "method": "CSIBRegressor (CS-IB)",
        "data": "Friedman #1 + t(2) noise, n=1500",
        "quality": (f"test RMSE vs true mean {rmse['cs_ib']:.2f} (CS-IB) vs {rmse['mse']:.2f} "
                    "(same net, MSE loss); lower is better"),
        "seconds": time.perf_counter() - start,
    }]
