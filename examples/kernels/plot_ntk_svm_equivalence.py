"""
Wide networks trained with an l2 penalty follow the NTK support vector machine
==============================================================================

A two-layer ReLU network in the NTK parameterisation is trained by full-batch gradient
descent on the hinge loss plus the *anchored* penalty ``(lam/2)||theta - theta_0||^2``
(:class:`fstat.kernels.NTKNetwork`). The infinite-width limit of these dynamics is the
NTK support vector machine trained by subgradient descent with the same ``lam``, step and
number of steps (:meth:`~fstat.kernels.NTKNetwork.matching_kernel_machine`).

Left: decision values of a few test digits along training, machine (lines) and networks
of two widths (markers). Right: the relative gap at the end of training against the width,
with the ``1/sqrt(width)`` guide. Data: scikit-learn's digits 0 vs 1.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from fstat.datasets import load_digits_pair
from fstat.kernels import NTKNetwork, trajectory_gap

X, y = load_digits_pair()
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=120, random_state=0,
                                                    stratify=y)
n = len(y_train)
steps = 200
record = list(range(0, steps + 1, 20))
settings = dict(loss="hinge", lam=0.01 * n, lr=0.5 / n, max_iter=steps, record_steps=record,
                device="cpu", random_state=0)

widths = [128, 512, 2048]
nets = {w: NTKNetwork(w, **settings).fit(X_train, y_train) for w in widths}
machine = nets[widths[0]].matching_kernel_machine().fit(X_train, y_train)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
points = X_test[:4]
g = np.array(list(machine.staged_decision_function(points)))
for j in range(points.shape[0]):
    line, = ax1.plot(record, g[:, j], lw=1.5)
    for w, marker in ((widths[0], "o"), (widths[-1], "x")):
        f = np.array(list(nets[w].staged_decision_function(points)))
        ax1.plot(record, f[:, j], marker, color=line.get_color(), ms=4)
ax1.set_xlabel("gradient step")
ax1.set_ylabel("decision value")
ax1.set_title("machine (lines), width 128 (o), 2048 (x)")

gaps = [trajectory_gap(nets[w], machine, X_test)[-1] for w in widths]
ax2.loglog(widths, gaps, "o-", label="anchored penalty")
ax2.loglog(widths, gaps[0] * np.sqrt(widths[0] / np.asarray(widths)), "k--",
           label="slope -1/2")
ax2.set_xlabel("width per copy")
ax2.set_ylabel("max |f - g| / max |g|")
ax2.legend()
fig.tight_layout()
print("gap by width:", dict(zip(widths, np.round(gaps, 4))))
