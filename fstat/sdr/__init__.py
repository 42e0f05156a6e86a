"""Fréchet cumulative covariance (FCCov) and FCCov-Net sufficient dimension reduction.

Sufficient dimension reduction looks for a low-dimensional summary ``f(X)`` that carries
all the information ``X`` has about a response ``Y`` (``Y`` independent of ``X`` given
``f(X)``). Here ``Y`` may be a random object in a metric space -- a distribution, an SPD
matrix, a direction, a label -- and only its distances are used.

**FCCov as defined in fstat** averages, over all closed balls centred at an observed
response and reaching another observed response, the squared covariance between the
summary and "Y falls in this ball". Y enters only through distance ranks, so FCCov is
unchanged by monotone transforms of the metric and robust to outlying responses.
:class:`FCCovNet` trains a neural network to maximise FCCov under a whitening penalty;
:class:`LinearFCCov` is the linear baseline (a generalised eigenproblem).

Reference: H. Yuan, C. D. Wang, Z. Yu (2025), "Fréchet Cumulative Covariance Net for
Deep Nonlinear Sufficient Dimension Reduction with Random Objects", arXiv:2502.15374.
Only the paper's abstract was available: the estimator, its V/U-statistics, the
normalisation and every default are fstat's reconstruction.
"""

from ._fccov import ball_kernel, fccov, fccov_matrix, pairwise_response_distances
from ._linear import LinearFCCov
from ._net import FCCovNet  # noqa: E402

__all__ = [
    "FCCovNet",
    "LinearFCCov",
    "ball_kernel",
    "fccov",
    "fccov_matrix",
    "pairwise_response_distances",
]
