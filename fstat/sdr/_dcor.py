"""Biased V-statistic distance correlation (not squared), for tests, benchmarks and docs."""

import numpy as np


def _centred_distances(Z):
    Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
    sq = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    d = np.sqrt(sq)
    return d - d.mean(0) - d.mean(1)[:, None] + d.mean()


def _distance_correlation(A, B):
    """dCor_n(A, B) in [0, 1] (Székely, Rizzo & Bakirov's V-statistic)."""
    a, b = _centred_distances(A), _centred_distances(B)
    ab, aa, bb = (a * b).mean(), (a * a).mean(), (b * b).mean()
    if aa <= 0 or bb <= 0:
        return 0.0
    return float(np.sqrt(max(ab, 0.0) / np.sqrt(aa * bb)))
