"""Energy-based density estimation by compositional optimisation.

An energy-based model p_w(x) = exp(-E_w(x)) / Z_w is fitted by maximum likelihood although
Z_w = ∫ exp(-E_w) is unknown: writing Z_w = E_q[exp(-E_w(y)) / q(y)] under a noise q turns
the negative log-likelihood into a stochastic compositional objective, "data term + log of
an expectation", which :class:`CompositionalEBM` minimises with a moving-average (or
STORM-corrected) inner estimate of Z tracked in log space across iterations (MECO; W. Jiang,
J. Qin, L. Wu, C. Chen, T. Yang, L. Zhang, "Learning Unnormalized Statistical Models via
Compositional Optimization", ICML 2023). :class:`NCEDensity` (noise-contrastive estimation,
Gutmann & Hyvärinen 2010) and :class:`SNLDensity` (learnable log Z, self-normalised
likelihood) share the energies, noise, evaluation and sampling.

After training, log Z is re-estimated (importance sampling, annealed importance sampling,
quadrature or closed form; :func:`estimate_log_partition`) with a standard error and an
effective sample size, so ``score_samples`` returns normalised log-densities in nats.

Reconstruction caveat: the paper's algorithm box, constants and defaults were not available;
the recursion, the variance-reduced variant, the tilted parameterisation, the noise families
and all defaults are fstat's definitions built from the abstract and the stochastic
compositional optimisation literature. Results reproduce the paper's claims in shape only.
"""

from ._landscape import gaussian_mean_landscape
from ._meco import CompositionalEBM
from ._nce import NCEDensity
from ._noise import (
    DiagonalGaussianNoise,
    GaussianNoise,
    MixtureNoise,
    StudentTNoise,
    UniformNoise,
)
from ._partition import LogPartitionEstimate, PartitionEstimateWarning, estimate_log_partition
from ._snl import SNLDensity

__all__ = [
    "CompositionalEBM",
    "DiagonalGaussianNoise",
    "GaussianNoise",
    "LogPartitionEstimate",
    "MixtureNoise",
    "NCEDensity",
    "PartitionEstimateWarning",
    "SNLDensity",
    "StudentTNoise",
    "UniformNoise",
    "estimate_log_partition",
    "gaussian_mean_landscape",
]
