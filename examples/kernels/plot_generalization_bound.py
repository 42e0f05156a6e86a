"""
The Rademacher generalisation bound against the measured test error
===================================================================

:meth:`fstat.kernels.NTKSVC.generalization_bound` returns, for a fitted binary NTK
support vector machine without intercept,

``bound = L_hat + 2 B sqrt(tr K) / n + 3 sqrt(log(2 / delta) / (2 n))``,
``B = sqrt(beta' K beta)``,

which holds with probability at least ``1 - delta`` (``delta = 0.05``). With the default
ramp loss ``L_hat`` is the training ramp loss and the bound is on the test
misclassification probability (**fstat definition**; ``B`` is chosen after seeing the
data, so a fully rigorous version would need a union bound over radii).

Data: :func:`fstat.datasets.make_ntk_teacher`, labels of a random depth-1 ReLU network
with 10% of the labels flipped, so no classifier can do better than about 10% test
error. Left: bound, its empirical term and the measured test error as the training set
grows, with ``lam = 0.02 n`` (a fixed penalty per sample in the sum-of-losses convention).
Right: the same quantities against ``lam / n`` at a fixed ``n``.
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.datasets import make_ntk_teacher
from fstat.kernels import NTKSVC

X_all, y_all = make_ntk_teacher(3000, 10, flip_y=0.1, random_state=0)
X_test, y_test = X_all[2000:], y_all[2000:]


def evaluate(n, lam_per_sample):
    model = NTKSVC(lam=lam_per_sample * n, device="cpu").fit(X_all[:n], y_all[:n])
    b = model.generalization_bound(delta=0.05)
    test_error = float(np.mean(model.predict(X_test) != y_test))
    return b.bound, b.empirical_loss, b.complexity + b.confidence, test_error


sizes = [50, 100, 200, 400, 800, 1600]
by_n = np.array([evaluate(n, 0.02) for n in sizes])
ratios = [1e-4, 1e-3, 0.005, 0.02, 0.05, 0.2, 2.0]
n_fixed = 800
by_lam = np.array([evaluate(n_fixed, r) for r in ratios])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for ax, x, rows in ((ax1, sizes, by_n), (ax2, ratios, by_lam)):
    ax.plot(x, rows[:, 0], "o-", label="bound (ramp, delta=0.05)")
    ax.plot(x, rows[:, 1], "s--", label="training ramp loss")
    ax.plot(x, rows[:, 3], "^-", label="test error")
    ax.axhline(0.1, color="gray", lw=1, ls=":", label="label-noise floor")
    ax.set_xscale("log")
    ax.set_ylabel("error / loss")
    ax.legend(fontsize=8)
ax1.set(xlabel="training-set size n", title="lam = 0.02 n")
ax2.set(xlabel="lam / n", title=f"n = {n_fixed}")
fig.tight_layout()
plt.show()
for n, row in zip(sizes, by_n):
    print(f"n={n:5d}: bound={row[0]:.3f}  train ramp={row[1]:.3f}  test error={row[3]:.3f}")

# %%
# What the plot shows: the bound lies above the measured test error everywhere, as it
# must, but it is loose. At these sample sizes it stays close to or above 1 (the trivial
# bound for a probability), and it decreases only slowly as the training set grows: its
# complexity and confidence terms shrink while the training ramp loss grows.
#
# Along ``lam`` the bound trades its two terms. Weak regularisation fits the training
# set (small ``L_hat``) with a large RKHS norm ``B`` and hence a large complexity term;
# strong regularisation does the reverse; the bound is smallest in between. The test
# error moves much less and is lowest for the weakest regularisation here, so
# minimising the bound would not pick the best ``lam`` on this problem.
