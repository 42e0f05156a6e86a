"""Cauchy--Schwarz divergence information bottleneck regression (CS-IB).

A regression network ``x -> t -> y_hat`` trained with a Cauchy--Schwarz (CS) divergence
objective (Yu, Yu, Løkse, Jenssen & Príncipe, ICLR 2024, arXiv 2404.17951):

    L = D_CS(p(y | x); q(y_hat | x)) + beta * I_CS(x; t),

where the prediction term is the conditional CS divergence (Yu et al. 2023, arXiv
2301.08970) -- a robust, correntropy-like loss whose target width ``sigma_y`` moves it
from mode seeking (small) to mean squared error (large) -- and the compression term is
the CS quadratic mutual information between the input and the representation. Both are
closed-form sums over Gaussian Gram matrices (Jenssen et al. 2006; Príncipe 2010),
computed here in the log domain so that float32 training stays finite.

Public names
------------
CSIBRegressor
    scikit-learn regressor and transformer (``transform`` gives the representation t).
cs_divergence, conditional_cs_divergence, cs_mutual_information
    The estimators as functions (numpy in, float out).
kernel_width
    Median / Silverman / fixed kernel widths with a degenerate-width guard.
adversarial_rmse, information_plane_path
    FGSM / PGD / transfer-attack evaluation and beta sweeps of the information plane.
"""

from ._attacks import adversarial_rmse
from ._bandwidth import kernel_width
from ._estimators import conditional_cs_divergence, cs_divergence, cs_mutual_information
from ._plane import information_plane_path
from ._regressor import CSIBRegressor

__all__ = [
    "CSIBRegressor",
    "adversarial_rmse",
    "conditional_cs_divergence",
    "cs_divergence",
    "cs_mutual_information",
    "information_plane_path",
    "kernel_width",
]
