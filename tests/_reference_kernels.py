"""Shared data for the kernel-machine tests."""

import numpy as np
from sklearn.datasets import load_breast_cancer


def standardised_breast_cancer(n_samples, seed=1):
    """``n_samples`` random rows of the standardised breast-cancer data, labels in {-1, 1}."""
    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    y = np.where(data.target == 1, 1, -1)
    idx = np.random.default_rng(seed).permutation(len(y))[:n_samples]
    return X[idx], y[idx]
