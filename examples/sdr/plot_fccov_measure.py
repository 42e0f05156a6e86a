"""
FCCov only sees distance ranks
==============================

FCCov (as defined in fstat) depends on the response only through the ranks of its
distances: monotone transforms of the metric (``D**2``, ``sqrt(D)``) and the switch from
geodesic to chordal distances on the sphere leave it unchanged. The distance-weighted
statistic (the kernel ``-D / mean(D)``) is not rank-based: moving one response to
infinity changes it completely, while FCCov barely moves.
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.sdr import fccov, pairwise_response_distances

rng = np.random.default_rng(0)
n = 300
Y = rng.standard_normal((n, 3))
Y /= np.linalg.norm(Y, axis=1, keepdims=True)
U = Y[:, 2] + 0.3 * rng.standard_normal(n)  # informative about the latitude
D = pairwise_response_distances(Y, "sphere", device="cpu")
rows = {
    "geodesic": fccov(U, Y, metric="sphere", device="cpu"),
    "chordal": fccov(U, Y, metric="chordal", device="cpu"),
    "D**2": fccov(U, D**2, metric="precomputed", device="cpu"),
    "sqrt(D)": fccov(U, np.sqrt(D), metric="precomputed", device="cpu"),
}
for name, value in rows.items():
    print(f"FCCov with {name:8s}: {value:.12f}")

# one response pushed towards infinity (scalar response)
y = rng.standard_normal(n)
u = y + 0.5 * rng.standard_normal(n)
shifts = np.logspace(0, 6, 13)


def distance_stat(u, y):
    Dy = np.abs(y[:, None] - y[None])
    uc = u - u.mean()
    return -np.sum(np.outer(uc, uc) * Dy) / (n * n * Dy.sum() / (n * (n - 1)))


fc, ds = [], []
for s in shifts:
    y_out = y.copy()
    y_out[0] = s
    fc.append(fccov(u, y_out, device="cpu"))
    ds.append(distance_stat(u, y_out))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(shifts, np.array(fc) / fc[0], "o-", label="FCCov")
ax.semilogx(shifts, np.array(ds) / ds[0], "s-", label="distance-weighted")
ax.set(xlabel="position of one response", ylabel="relative to y_1 = 1",
       title="one outlying response")
ax.legend()
fig.tight_layout()
plt.show()
