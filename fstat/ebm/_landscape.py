"""Population NCE and MLE objectives of the 1-D Gaussian-mean benchmark, by quadrature.

Data N(R, 1), noise q = N(0, 1), model log p̃(x) = -(x - θ)²/2 - c, noise ratio ν. With
G = log p̃ - log(ν q): L_NCE = E_data softplus(-G) + ν E_q softplus(G); the MLE objective is
F(θ) = ((R - θ)² + 1)/2 + ½ log 2π.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize
from sklearn.utils import Bunch

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _normal_pdf(x, mu):
    return math.exp(-0.5 * (x - mu) ** 2 - _HALF_LOG_2PI)


def _nce_terms(theta, R, c, nu):
    log_nu = math.log(nu)

    def G(x):
        return -0.5 * (x - theta) ** 2 - c + 0.5 * x * x + _HALF_LOG_2PI - log_nu

    lo, hi = min(0.0, R) - 12.0, max(0.0, R) + 12.0
    pts = sorted({0.0, float(R), float(theta)})

    def quad(f):
        return integrate.quad(f, lo, hi, points=pts, limit=200, epsabs=1e-13, epsrel=1e-11)[0]

    loss = quad(lambda x: _normal_pdf(x, R) * _softplus(-G(x))) + nu * quad(
        lambda x: _normal_pdf(x, 0.0) * _softplus(G(x)))
    # d softplus(-G)/dθ = -σ(-G) (x - θ);  d softplus(G)/dθ = σ(G) (x - θ)
    g_theta = quad(lambda x: -_normal_pdf(x, R) * _sigmoid(-G(x)) * (x - theta)) + nu * quad(
        lambda x: _normal_pdf(x, 0.0) * _sigmoid(G(x)) * (x - theta))
    g_c = quad(lambda x: _normal_pdf(x, R) * _sigmoid(-G(x))) - nu * quad(
        lambda x: _normal_pdf(x, 0.0) * _sigmoid(G(x)))
    return loss, g_theta, g_c


def gaussian_mean_landscape(theta, data_mean, *, c=None, noise_ratio=1.0):
    """Population NCE and MLE losses and gradients of the 1-D Gaussian-mean problem.

    Parameters
    ----------
    theta : float
        Model mean θ.
    data_mean : float
        Data mean R (data ~ N(R, 1)); the noise is N(0, 1).
    c : float, default=None
        Model log-normaliser; None profiles it (minimises L_NCE over c ∈ [-50, 50]).
    noise_ratio : float, default=1.0
        ν.

    Returns
    -------
    Bunch
        ``mle_loss, mle_grad, nce_loss, nce_grad_theta, nce_grad_c, c``.

    Examples
    --------
    >>> import math
    >>> from fstat.ebm import gaussian_mean_landscape
    >>> out = gaussian_mean_landscape(0.0, 3.0, c=0.5 * math.log(2 * math.pi))
    >>> round(out.nce_loss, 6) == round(2 * math.log(2), 6)
    True
    """
    theta, R, nu = float(theta), float(data_mean), float(noise_ratio)
    if not nu > 0:
        raise ValueError(f"noise_ratio must be > 0; got {noise_ratio!r}.")
    if c is None:
        res = optimize.minimize_scalar(lambda cc: _nce_terms(theta, R, cc, nu)[0],
                                       bounds=(-50.0, 50.0), method="bounded",
                                       options={"xatol": 1e-10})
        c = float(res.x)
    loss, g_theta, g_c = _nce_terms(theta, R, float(c), nu)
    return Bunch(
        mle_loss=((R - theta) ** 2 + 1.0) / 2.0 + _HALF_LOG_2PI,
        mle_grad=theta - R,
        nce_loss=loss,
        nce_grad_theta=g_theta,
        nce_grad_c=g_c,
        c=float(c),
    )
