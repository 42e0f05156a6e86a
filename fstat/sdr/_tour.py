"""The sdr row of ``python -m fstat``."""

import time


def tour(random_state=0, device="auto"):
    """Fit FCCovNet on model M1o (5 % gross outliers) and report test dCor with the truth."""
    from ..datasets import make_frechet_sdr
    from ._dcor import _distance_correlation
    from ._net import FCCovNet

    start = time.perf_counter()
    X, Y, H = make_frechet_sdr("M1o", n_samples=600, random_state=random_state)
    est = FCCovNet(max_epochs=400, random_state=random_state, device=device)
    est.fit(X[:400], Y[:400])
    dcor = _distance_correlation(est.transform(X[400:]), H[400:])
    return [{
        "method": "FCCovNet",
        "data": "M1o: y = x1^2 + x2^2 + noise, 5% gross outliers (n=400)",
        "quality": f"test dCor with true predictor {dcor:.2f} (1 = perfect)",
        "seconds": time.perf_counter() - start,
    }]
