"""Infinite-width ReLU kernels (NNGP/NTK), NTK kernel machines and the network-machine equivalence.

A very wide fully connected ReLU network in the NTK parameterisation behaves, under
gradient descent, like a linear model in the feature space of its *neural tangent
kernel* (Jacot, Gabriel & Hongler, 2018). Chen, Huang, Nguyen & Weng (2021) extend this
to l2-regularised losses: a wide network trained on the hinge loss plus an l2 penalty
follows the same trajectory as a kernel support vector machine with the NTK (and
likewise for squared-hinge, epsilon-insensitive, squared and logistic losses).

This package provides

- :func:`ntk_kernel`, :func:`ntk_kernel_torch`, :class:`NTKKernel`: the analytic NNGP and
  NTK of depth-L ReLU networks (neural-tangents conventions, float64, row-tiled, CPU/GPU);
- :func:`empirical_ntk`: the finite-width kernel of one random network;
- kernel machines with the paper's no-intercept, sum-of-losses convention:
  :class:`NTKSVC`, :class:`NTKSVR`, :class:`NTKRidge`, :class:`NTKRidgeClassifier`,
  :class:`NTKLogisticRegression` and the generic :class:`NTKKernelMachine`, with
  certified robustness radii (``certify``) and a Rademacher ``generalization_bound``;
- :class:`NTKNetwork`: the finite-width network trained by gradient descent with the
  anchored regulariser, which converges to the kernel machine as the width grows
  (:func:`trajectory_gap`), with interval-bound-propagation certificates;
- :func:`pgd_attack`, :func:`attack_radius`: empirical upper bounds on robust radii.

Reference: Y. Chen, W. Huang, L. M. Nguyen, T.-W. Weng, "On the Equivalence between Neural
Network and Support Vector Machine", NeurIPS 2021 (arXiv:2111.06063).

The shared Gaussian Gram helpers used by other families live in the private module
:mod:`fstat.kernels._gram`.
"""

from ._empirical import empirical_ntk
from ._machines import (
    NTKSVC,
    NTKSVR,
    NTKKernelMachine,
    NTKLogisticRegression,
    NTKRidge,
    NTKRidgeClassifier,
)
from ._network import NTKNetwork, trajectory_gap
from ._ntk import NTKKernel, ntk_kernel, ntk_kernel_torch
from ._robust import attack_radius, pgd_attack

__all__ = [
    "NTKKernel",
    "NTKKernelMachine",
    "NTKLogisticRegression",
    "NTKNetwork",
    "NTKRidge",
    "NTKRidgeClassifier",
    "NTKSVC",
    "NTKSVR",
    "empirical_ntk",
    "ntk_kernel",
    "attack_radius",
    "ntk_kernel_torch",
    "pgd_attack",
    "trajectory_gap",
]
