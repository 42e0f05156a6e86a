"""fstat: statistical estimators with a scikit-learn API and torch internals.

The five method families live in sub-packages that are imported on first use, so
``import fstat`` stays light (it does not import torch):

- :mod:`fstat.causal` -- f-divergence bounds on causal effects under unmeasured confounding;
- :mod:`fstat.sdr` -- Fréchet cumulative covariance sufficient dimension reduction;
- :mod:`fstat.bottleneck` -- Cauchy--Schwarz divergence information bottleneck regression;
- :mod:`fstat.ebm` -- energy-based densities by stochastic compositional optimisation;
- :mod:`fstat.kernels` -- analytic neural tangent kernels and NTK kernel machines.

Shared modules: :mod:`fstat.divergences` (the f-divergence registry) and
:mod:`fstat.datasets` (simulators with known truth).

Examples
--------
>>> import fstat
>>> fstat.__version__  # doctest: +SKIP
'0.1.0.dev0'
"""

import importlib

from ._version import __version__

_SUBMODULES = (
    "causal",
    "sdr",
    "bottleneck",
    "ebm",
    "kernels",
    "divergences",
    "datasets",
    "utils",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
