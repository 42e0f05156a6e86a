"""Rademacher generalisation bound of a fitted binary NTK machine (spec §2.7, fstat definition).

    bound = L_hat + 2 B sqrt(tr K) / n + 3 sqrt(log(2 / delta) / (2 n)),   B = sqrt(beta' K beta),

holding with probability at least ``1 - delta`` (delta is the *failure* probability). With the
ramp loss (default; 1-Lipschitz, in [0, 1], above the 0-1 loss) the bound is on the test
misclassification probability; the hinge variant (the paper's) is heuristic because the
hinge loss is unbounded. ``B`` is chosen after seeing the data: a fully rigorous statement
needs a union bound over a grid of radii (documented caveat).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import Bunch

from .._warnings import warn_user

__all__ = ["generalization_bound"]


def generalization_bound(model, delta=0.05, *, loss="ramp"):
    """Bound for a fitted binary machine without intercept; see the module docstring."""
    if not isinstance(delta, (int, float, np.floating)) or not 0 < float(delta) < 1:
        raise ValueError(f"delta is a failure probability and must lie in (0, 1); got "
                         f"delta={delta!r}.")
    if loss not in ("ramp", "hinge"):
        raise ValueError(f"loss must be 'ramp' or 'hinge'; got loss={loss!r}.")
    if model.fit_intercept:
        raise NotImplementedError("generalization_bound is derived for the machine without "
                                  "intercept; refit with fit_intercept=False.")
    beta = np.asarray(model.dual_coef_, dtype=np.float64)
    g = np.asarray(model.train_decision_, dtype=np.float64)
    y = model._fit_signs_
    n = beta.shape[0]
    quad = float(beta @ (g - model.intercept_))
    trace = float(model.kernel_trace_)
    if quad < 0:
        # spec 2.7: clearly negative means below -1e-10 ||beta||^2 max(diag K)
        if quad < -1e-10 * float(beta @ beta) * max(model._kernel_diag_max, 1e-300):
            raise ValueError(f"beta' K beta = {quad:.3e} < 0: the kernel matrix is not PSD, "
                             "so the RKHS norm is undefined.")
        warn_user(f"beta' K beta = {quad:.1e} is negative from rounding; using 0.",
                  RuntimeWarning)
        quad = 0.0
    margin = y * g
    hinge = np.maximum(0.0, 1.0 - margin)
    empirical = float(np.mean(np.minimum(1.0, hinge) if loss == "ramp" else hinge))
    rkhs = math.sqrt(quad)
    complexity = 2.0 * rkhs * math.sqrt(max(trace, 0.0)) / n
    confidence = 3.0 * math.sqrt(math.log(2.0 / float(delta)) / (2.0 * n))
    return Bunch(bound=empirical + complexity + confidence, empirical_loss=empirical,
                 complexity=complexity, confidence=confidence, rkhs_norm=rkhs, trace=trace,
                 n=n, delta=float(delta), loss=loss)
