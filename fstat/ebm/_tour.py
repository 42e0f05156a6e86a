"""Tour row of the ebm family (run by ``python -m fstat``)."""

from __future__ import annotations

import time


def tour(random_state=0, device="auto"):
    """Fit CompositionalEBM on the two-moons toy and compare held-out log-likelihoods."""
    import numpy as np
    from scipy.stats import multivariate_normal

    from ..datasets import make_toy_density
    from ._meco import CompositionalEBM

    start = time.perf_counter()
    X, log_density = make_toy_density("moons", 2000, random_state=random_state,
                                      return_log_density=True)
    X_test = make_toy_density("moons", 2000, random_state=random_state + 1)
    est = CompositionalEBM(hidden_layer_sizes=(32, 32), learning_rate=1e-2, max_iter=600,
                           n_logz_samples=20_000, device=device,
                           random_state=random_state).fit(X)
    truth = float(np.mean(log_density(X_test)))
    gauss = float(np.mean(multivariate_normal(X.mean(0), np.cov(X.T)).logpdf(X_test)))
    return [{
        "method": "CompositionalEBM (MECO)",
        "data": "two moons, n=2000",
        "quality": (f"test log-lik {est.score(X_test):.2f} nats vs truth {truth:.2f}, "
                    f"Gaussian {gauss:.2f}; log Z se {est.log_partition_se_:.3f}"),
        "seconds": time.perf_counter() - start,
    }]
