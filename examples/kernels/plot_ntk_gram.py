"""
The NTK and NNGP as functions of the angle, and finite-width convergence
========================================================================

For inputs on the sphere ``||x||^2 / d = 1`` the analytic kernels of a fully connected
ReLU network (:func:`fstat.kernels.ntk_kernel`, NTK parameterisation) depend only on the
angle ``theta`` between the two inputs. We take ``d = 2``, fix ``x = sqrt(2) (1, 0)`` and
move ``x' = sqrt(2) (cos theta, sin theta)`` around the circle.

Left: NTK (solid) and NNGP (dashed) for depths 1 to 4, each divided by its value at
``theta = 0`` so that the shapes can be compared. Middle: the empirical NTK of single
randomly initialised networks of finite width (:func:`fstat.kernels.empirical_ntk`,
depth 2) scattered around the analytic curve. Right: the largest deviation over the
angle grid against the width, averaged over a few random networks, with the
``1/sqrt(width)`` rate as a guide.
"""

import matplotlib.pyplot as plt
import numpy as np

from fstat.kernels import empirical_ntk, ntk_kernel

theta = np.linspace(0.0, np.pi, 61)
d = 2
x0 = np.sqrt(d) * np.array([[1.0, 0.0]])
X = np.sqrt(d) * np.column_stack([np.cos(theta), np.sin(theta)])

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
for depth in range(1, 5):
    nngp, ntk = ntk_kernel(x0, X, depth=depth, kind="both", device="cpu")
    line, = ax1.plot(theta, ntk[0] / ntk[0, 0], label=f"depth {depth}")
    ax1.plot(theta, nngp[0] / nngp[0, 0], "--", color=line.get_color())
ax1.set(xlabel="angle theta between inputs [rad]", ylabel="K(x, x') / K(x, x)",
        title="analytic NTK (solid), NNGP (dashed)")
ax1.legend()

depth = 2
analytic = ntk_kernel(x0, X, depth=depth, device="cpu")[0]
ax2.plot(theta, analytic, "k-", lw=2, label="analytic (infinite width)")
for width, marker in ((64, "o"), (1024, "x")):
    emp = empirical_ntk(x0, X, width=width, depth=depth, random_state=0, device="cpu")[0]
    ax2.plot(theta[::3], emp[::3], marker, ms=5, label=f"empirical, width {width}")
ax2.set(xlabel="angle theta between inputs [rad]", ylabel="NTK(x, x')",
        title=f"depth {depth}: one network per width")
ax2.legend()

widths = [16, 64, 256, 1024, 4096]
seeds = range(5)
errors = [np.mean([np.abs(empirical_ntk(x0, X, width=w, depth=depth, random_state=s,
                                        device="cpu")[0] - analytic).max() for s in seeds])
          for w in widths]
ax3.loglog(widths, errors, "o-", label="mean over 5 networks")
ax3.loglog(widths, errors[0] * np.sqrt(widths[0] / np.asarray(widths)), "k--",
           label="slope -1/2")
ax3.set(xlabel="hidden width", ylabel="max over theta of |empirical - analytic|",
        title="convergence with width")
ax3.legend()
fig.tight_layout()
plt.show()
print("max deviation by width:", {w: round(float(e), 4) for w, e in zip(widths, errors)})
