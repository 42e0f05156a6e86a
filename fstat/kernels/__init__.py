"""Analytic neural tangent kernels and the NTK kernel machines.

Reference: Y. Chen, W. Huang, L. M. Nguyen, T.-W. Weng, "On the Equivalence between Neural
Network and Support Vector Machine", NeurIPS 2021 (arXiv:2111.06063).

The shared Gaussian Gram helpers used by other families live in the private module
:mod:`fstat.kernels._gram`.
"""

__all__ = []
