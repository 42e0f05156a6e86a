"""Training objectives on the bottleneck network: prediction and compression terms.

``OBJECTIVES[name] = (prediction_term, compression_term)``. Every term is a plain
module-level function of a :class:`Batch` (tensors and detached widths), so the
registry pickles and each term is testable on its own.

- ``"cs_ib"``: conditional CS divergence + CS-QMI (or normalised CS-QMI) of (x, t).
- ``"mse"``: mean squared error + CS-QMI (beta = 0 and no noise: a plain MLP).
- ``"vib"``: MSE + KL(N(mu, diag s^2) || N(0, I)) (Alemi et al. 2017).
- ``"nib"``: MSE + the pairwise-distance upper bound on I(x; t) with a trained noise
  width (Kolchinsky, Tracey & Wolpert 2019).
- ``"hsic"``: MSE + biased HSIC(x, t) = A + B - 2C (fstat's simplified regression variant).

With ``Batch.approximation`` set, the CS terms (conditional CS, CS-QMI) use random
features / Nyström maps; the HSIC, VIB and NIB terms stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..kernels._gram import log_gaussian_gram
from ._approx import approx_conditional_cs, approx_cs_qmi
from ._estimators import (
    _cs_qmi_terms,
    lse,
    normalized_cs_qmi_core,
)
from ._fused import (
    compression_context,
    conditional_cs_loss,
    cs_qmi_loss,
    prediction_context,
)

__all__ = ["OBJECTIVES", "Batch"]


@dataclass
class Batch:
    """Everything a term may need for one batch (widths are floats, detached)."""

    x: torch.Tensor
    y: torch.Tensor
    mu: torch.Tensor
    t: torch.Tensor
    y_pred: torch.Tensor
    scale: object = None
    sigma_x_pred: float | None = None
    sigma_x: float | None = None
    sigma_y: float | None = None
    sigma_t: float | None = None
    sq_x: torch.Tensor | None = None  # detached sq_dists(x), shared by every x-Gram
    sq_t: torch.Tensor | None = None  # detached sq_dists(t) (the t width; fused CS-QMI)
    # data terms of the fused conditional CS loss and CS-QMI, precomputed for a batch
    # stacked with others; None: the term builds them from sq_x and the widths
    prediction_context: tuple | None = None
    compression_context: tuple | None = None
    approximation: str | None = None  # "rff" / "nystroem": CS terms by feature maps
    n_components: int = 1024
    generator: torch.Generator | None = None  # fresh random features per batch


def _alone(context):
    """The context of a stack of one batch, as that batch's own context."""
    return tuple(part[0] for part in context)


def cs_prediction(b):
    if b.approximation is not None:
        return approx_conditional_cs(b.x, b.y, b.y_pred, b.sigma_x_pred, b.sigma_y,
                                     b.approximation, b.n_components, b.generator,
                                     chunk_size=None)
    context = b.prediction_context or _alone(
        prediction_context(b.y[None], b.sq_x[None], [b.sigma_x_pred], [b.sigma_y]))
    return conditional_cs_loss(b.y, b.y_pred, context, b.sigma_y)


def mse_prediction(b):
    return (b.y - b.y_pred).square().sum(dim=1).mean()


def _approx_qmi(b, normalized):
    return approx_cs_qmi(b.x, b.t, b.sigma_x, b.sigma_t, b.approximation, b.n_components,
                         b.generator, normalized=normalized, chunk_size=None)


def cs_qmi_compression(b):
    if b.approximation is not None:
        return _approx_qmi(b, False)
    context = b.compression_context or _alone(compression_context(b.sq_x[None], [b.sigma_x]))
    return cs_qmi_loss(b.t, context, b.sigma_t, sq_t=b.sq_t)


def normalized_cs_qmi_compression(b):
    if b.approximation is not None:
        return _approx_qmi(b, True)
    return normalized_cs_qmi_core(b.x, b.t, b.sigma_x, b.sigma_t, warn=False, sq_x=b.sq_x)


def vib_kl(mu, s):
    """Mean over rows of KL(N(mu, diag s^2) || N(0, I)) = 1/2 sum(mu^2 + s^2 - 1 - 2 log s)."""
    return 0.5 * (mu.square() + s.square() - 1.0 - 2.0 * s.log()).sum(dim=1).mean()


def vib_compression(b):
    return vib_kl(b.mu, b.scale)


def nib_bound(mu, eta):
    """-(1/N) sum_i log((1/N) sum_j exp(-||mu_i - mu_j||^2 / (2 eta^2))), in [0, log N]."""
    log_g = log_gaussian_gram(mu, None, eta)
    return -(lse(log_g, dim=1) - math.log(mu.shape[0])).mean()


def nib_compression(b):
    return nib_bound(b.mu, b.scale)


def hsic_value(x, t, sigma_x, sigma_t, *, sq_x=None, sq_t=None):
    """Biased HSIC V-statistic A + B - 2C (= tr(KHQH) / N^2)."""
    log_a, log_b, log_c = _cs_qmi_terms(x, t, sigma_x, sigma_t, sq_x=sq_x, sq_t=sq_t)
    return log_a.exp() + log_b.exp() - 2.0 * log_c.exp()


def hsic_compression(b):
    return hsic_value(b.x, b.t, b.sigma_x, b.sigma_t, sq_x=b.sq_x)


OBJECTIVES = {
    "cs_ib": cs_prediction,
    "mse": mse_prediction,
    "vib": mse_prediction,
    "nib": mse_prediction,
    "hsic": mse_prediction,
}

COMPRESSIONS = {
    "cs_qmi": cs_qmi_compression,
    "normalized_cs_qmi": normalized_cs_qmi_compression,
    "vib": vib_compression,
    "nib": nib_compression,
    "hsic": hsic_compression,
}


def compression_for(objective, compression):
    """The compression term used by ``objective`` (``compression`` applies to cs_ib / mse)."""
    return COMPRESSIONS[compression if objective in ("cs_ib", "mse") else objective]


def needs_t_width(objective, compression):
    return compression_for(objective, compression) in (
        cs_qmi_compression, normalized_cs_qmi_compression, hsic_compression)
