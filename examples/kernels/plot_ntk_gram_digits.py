"""
NTK and NNGP Gram matrices of sorted digits, depth 1 to 3
=========================================================

Heatmaps of the analytic kernels (:func:`fstat.kernels.ntk_kernel`, NTK parameterisation,
``w_std = sqrt 2`` so that the scale is kept from layer to layer, no bias) on 30 images
each of the digits 0, 1 and 7 from scikit-learn's 8x8 digits, sorted by label. Each Gram
is shown as a correlation, ``K_ij / sqrt(K_ii K_jj)``, so depths can share a colour scale.

The block structure (same digit: high similarity) is visible at every depth. The two
kernels move in opposite directions with depth: the NNGP correlation of different inputs
rises layer after layer (the ReLU arc-cosine map pushes every correlation towards 1, so
deep NNGPs flatten), whereas the NTK's falls here (0.56 to 0.50 between 0s and 1s from
depth 1 to 3) -- its derivative terms keep, and on these data sharpen, the contrast
between digits.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from fstat.kernels import ntk_kernel

digits = load_digits()
X = np.vstack([digits.data[digits.target == c][:30] for c in (0, 1, 7)]) / 16.0

fig, axes = plt.subplots(2, 3, figsize=(11, 7))
for col, depth in enumerate((1, 2, 3)):
    nngp, ntk = ntk_kernel(X, depth=depth, w_std=np.sqrt(2), kind="both", device="cpu")
    for row, (name, K) in enumerate((("NTK", ntk), ("NNGP", nngp))):
        scale = np.sqrt(np.diag(K))
        corr = K / np.outer(scale, scale)
        im = axes[row, col].imshow(corr, vmin=0.0, vmax=1.0, cmap="viridis")
        off = corr[~np.eye(len(X), dtype=bool)]
        axes[row, col].set_title(f"{name}, depth {depth} (off-diagonal mean {off.mean():.2f})",
                                 fontsize=9)
        axes[row, col].set_xticks([15, 45, 75], ["0", "1", "7"])
        axes[row, col].set_yticks([15, 45, 75], ["0", "1", "7"])
        print(f"{name} depth {depth}: correlation within digits "
              f"{np.mean([corr[i:i + 30, i:i + 30].mean() for i in (0, 30, 60)]):.3f}, "
              f"between digits {corr[:30, 30:60].mean():.3f} (0 vs 1), "
              f"{corr[30:60, 60:].mean():.3f} (1 vs 7)")
fig.colorbar(im, ax=axes, shrink=0.8, label="kernel correlation")
plt.show()
