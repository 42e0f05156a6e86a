"""
Particles flowing along the CS divergence
=========================================

200 + 200 points from N((-4, -4), I) and N((4, 4), I). 400 free particles start from
N(0, I) and move by gradient descent on the two-sample CS divergence
``D_CS(particles; data; sigma = 1)`` (computed in the log domain, differentiated by
autograd). The particles split between the two modes, unlike the single Gaussian that
minimises KL(data || Gaussian), which sits between them.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from fstat.bottleneck import cs_divergence
from fstat.bottleneck._estimators import cs_divergence_core

rng = np.random.default_rng(0)
data = np.vstack([rng.standard_normal((200, 2)) - 4, rng.standard_normal((200, 2)) + 4])
particles = torch.tensor(rng.standard_normal((400, 2)), requires_grad=True)
target = torch.tensor(data)
optimizer = torch.optim.Adam([particles], lr=0.25)
trace, snapshots = [], {}
for step in range(121):
    optimizer.zero_grad()
    loss = cs_divergence_core(particles, target, 1.0)
    loss.backward()
    optimizer.step()
    trace.append(float(loss.detach()))
    if step in (0, 15, 120):
        snapshots[step] = particles.detach().numpy().copy()
print(f"final D_CS = {cs_divergence(particles.detach().numpy(), data, sigma=1.0):.4f}")

mean, cov = data.mean(axis=0), np.cov(data.T)  # the KL (maximum-likelihood) Gaussian
angles = np.linspace(0, 2 * np.pi, 200)
vals, vecs = np.linalg.eigh(cov)
ellipse = mean + (vecs @ (2 * np.sqrt(vals)[:, None] * np.vstack([np.cos(angles),
                                                                    np.sin(angles)]))).T

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
for ax, (step, points) in zip(axes[:3], snapshots.items()):
    ax.scatter(*data.T, s=4, c="grey", alpha=0.4, label="data")
    ax.scatter(*points.T, s=4, c="C3", label="particles")
    ax.plot(*ellipse.T, "C0--", lw=1, label="KL Gaussian (2 sd)")
    ax.set(title=f"step {step}", xlim=(-9, 9), ylim=(-9, 9), aspect="equal")
axes[0].legend(loc="upper left", fontsize=7)
axes[3].plot(trace)
axes[3].set(yscale="log", xlabel="step", ylabel="D_CS(particles; data)")
fig.tight_layout()
plt.show()
