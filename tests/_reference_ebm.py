"""Slow references for the ebm tests: the far-noise mean-shift experiment of spec §6.16."""

import math
import warnings

import numpy as np
import torch

from fstat.ebm import CompositionalEBM, GaussianNoise


class MeanShiftEnergy(torch.nn.Module):
    """E(x) = (x - θ)² / 2 (module-level class, so fitted models pickle)."""

    def __init__(self, n_features):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(n_features))

    def forward(self, z):
        return 0.5 * ((z - self.theta) ** 2).sum(1)


def _far_noise_errors(gamma, seeds):
    errors = []
    for seed in seeds:
        X = 4.0 + np.random.RandomState(seed).normal(size=(1000, 1))
        est = CompositionalEBM(
            MeanShiftEnergy, tilt=False, noise=GaussianNoise(mean=[0.0], covariance=[[1.0]]),
            noise_scale=1.0, standardize=False, optimizer="sgd", learning_rate=0.1,
            dtype="float64", batch_size=128, n_noise=128, max_iter=2000, gamma=gamma,
            logz_method="grid", device="cpu", random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.fit(X)
            except ValueError:  # non-finite: diverged
                errors.append(math.inf)
                continue
        errors.append(abs(float(est.energy_module_.core.theta[0]) - X.mean()))
    return np.array(errors)
