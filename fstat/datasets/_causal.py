"""Simulators for f-divergence causal bounds under unmeasured confounding (numpy only).

Every simulator returns ``(X, y, treatment)`` and, with ``return_truth=True``, a
:class:`sklearn.utils.Bunch` with at least ``propensity`` (P(A=1|X)), ``mu0``, ``mu1``
(E[y | do(a), X]) and the functions ``propensity_fn(X)`` and ``mu_fn(a, X)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr
from sklearn.utils import Bunch, check_random_state

from .._validation import check_integer

__all__ = [
    "make_confounded_discrete",
    "make_confounded_paper",
    "make_cyclic",
    "make_probit_sine",
]

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()  # E[h(U)], U ~ N(0, 1)


def _check_n_features(n_features, *, minimum):
    check_integer(n_features, "n_features", minimum=minimum)


def _noise(noise, n, rng):
    if noise == "gaussian":
        return rng.standard_normal(n)
    if noise == "t3":
        return rng.standard_t(3, n)
    raise ValueError(f"noise must be 'gaussian' or 't3'; got noise={noise!r}.")


# ----------------------------------------------------------------------------------------------
# discrete DGP with exact population bounds
# ----------------------------------------------------------------------------------------------


def _discrete_p_treat(x, u):
    return 0.05 + 0.9 * expit(-1.0 + 0.6 * x + 1.5 * u)


def _discrete_p_y(a, x, u):
    return expit(-0.5 + 0.8 * a + 0.3 * x + 1.2 * u - 0.4 * a * u)


def _binom_pmf(p):
    k = np.arange(5)
    coef = np.array([1, 4, 6, 4, 1], dtype=float)
    return coef * p**k * (1 - p) ** (4 - k)


def _discrete_truth():
    cell_prop = np.empty((2, 4))
    cell_pmf = np.empty((2, 4, 5))
    cell_mu = np.empty((2, 4))
    for x in range(4):
        p1 = np.array([_discrete_p_treat(x, u) for u in (0, 1)])
        for a in (0, 1):
            pa = p1 if a == 1 else 1 - p1
            cell_prop[a, x] = 0.5 * pa.sum()
            post = 0.5 * pa / cell_prop[a, x]  # P(u | a, x)
            cell_pmf[a, x] = sum(post[u] * _binom_pmf(_discrete_p_y(a, x, u)) for u in (0, 1))
            cell_mu[a, x] = sum(0.5 * 4 * _discrete_p_y(a, x, u) for u in (0, 1))
    return cell_prop, cell_pmf, cell_mu


def make_confounded_discrete(n_samples=4000, *, random_state=None, return_truth=False):
    """Bounded discrete DGP with a binary unobserved confounder and exact population bounds.

    x ~ Uniform{0, 1, 2, 3} (returned one-hot, shape (n, 4)); U ~ Bernoulli(1/2) independent
    of x; P(A=1 | x, u) = 0.05 + 0.9 sigmoid(-1 + 0.6x + 1.5u);
    Y | a, x, u ~ Binomial(4, sigmoid(-0.5 + 0.8a + 0.3x + 1.2u - 0.4au)).

    Parameters
    ----------
    n_samples : int, default=4000
    random_state : int, RandomState or None
    return_truth : bool, default=False

    Returns
    -------
    X : ndarray of shape (n, 4)
    y : ndarray of shape (n,)
    treatment : ndarray of int64 of shape (n,)
    truth : Bunch, only if ``return_truth``
        ``cell`` (n,), ``cell_propensity`` (2, 4) = e_a(x), ``cell_pmf`` (2, 4, 5) = P(y | a,
        x), ``cell_mu`` (2, 4) = E[y | do(a), x], ``support`` (0, 4), ``propensity``, ``mu0``,
        ``mu1``, ``propensity_fn``, ``mu_fn`` and ``population_bounds(divergence)`` -> (2, 4, 2)
        exact population bounds (arm, cell, (lower, upper)) on the support [0, 4].

    Examples
    --------
    >>> from fstat.datasets import make_confounded_discrete
    >>> X, y, a, truth = make_confounded_discrete(100, random_state=0, return_truth=True)
    >>> X.shape, truth.cell_pmf.shape
    ((100, 4), (2, 4, 5))
    """
    n = check_integer(n_samples, "n_samples")
    rng = check_random_state(random_state)
    x = rng.randint(0, 4, n)
    u = rng.randint(0, 2, n)
    a = (rng.uniform(size=n) < _discrete_p_treat(x, u)).astype(np.int64)
    y = rng.binomial(4, _discrete_p_y(a, x, u)).astype(np.float64)
    X = np.eye(4)[x]
    if not return_truth:
        return X, y, a
    cell_prop, cell_pmf, cell_mu = _discrete_truth()

    def cells(X_):
        return np.argmax(np.asarray(X_), axis=1)

    def population_bounds(divergence):
        from fstat.causal._pointwise import pointwise_bounds

        out = np.empty((2, 4, 2))
        for arm in (0, 1):
            for c in range(4):
                out[arm, c] = pointwise_bounds(np.arange(5.0), cell_prop[arm, c],
                                               divergence=divergence, weights=cell_pmf[arm, c],
                                               support=(0.0, 4.0))
        return out

    truth = Bunch(
        cell=x, cell_propensity=cell_prop, cell_pmf=cell_pmf, cell_mu=cell_mu,
        support=(0.0, 4.0), propensity=cell_prop[1, x], mu0=cell_mu[0, x], mu1=cell_mu[1, x],
        propensity_fn=lambda X_: cell_prop[1, cells(X_)],
        mu_fn=lambda arm, X_: cell_mu[int(arm), cells(X_)],
        population_bounds=population_bounds,
    )
    return X, y, a, truth


# ----------------------------------------------------------------------------------------------
# continuous DGPs
# ----------------------------------------------------------------------------------------------


def make_confounded_paper(n_samples=4000, n_features=5, *, noise="t3", coef_random_state=0,
                          random_state=None, return_truth=False):
    """The confounded DGP of the paper's appendix (unbounded outcome).

    X_j ~ U(-2, 2); U ~ N(0, 1); w ~ N(0, 0.6^2 I) drawn from ``coef_random_state``;
    L = Xw + 0.8U + 0.5 sin X_0 - 0.25 X_0^2; p = 0.05 + 0.9 sigmoid(L); A ~ Bernoulli(p);
    Y = mu(X) + tau(X, p) A + 0.7U + eps, mu = 0.5 + 0.8 tanh X_0 + 0.25 X_1^2 - 0.15 sin X_2,
    tau = 0.7 + 0.2 sin X_0 + 0.1 X_0 + 0.8(p - 0.5), eps ~ t_3 or N(0, 1).

    Truth: e(x) = E_U[0.05 + 0.9 sigmoid(L_0(x) + 0.8U)] (40-node Gauss-Hermite) and
    E[y | do(a), x] = mu(x) + a (0.7 + 0.2 sin x_0 + 0.1 x_0 + 0.8 (e(x) - 1/2)).

    Parameters
    ----------
    n_samples : int, default=4000
    n_features : int >= 3, default=5
    noise : {"t3", "gaussian"}, default="t3"
    coef_random_state : int, default=0
    random_state : int, RandomState or None
    return_truth : bool, default=False

    Returns
    -------
    X, y, treatment[, truth]
    """
    n = check_integer(n_samples, "n_samples")
    _check_n_features(n_features, minimum=3)
    coef = check_random_state(coef_random_state).normal(0.0, 0.6, n_features)
    rng = check_random_state(random_state)
    X = rng.uniform(-2.0, 2.0, (n, n_features))
    u = rng.standard_normal(n)

    def l0(X_):
        return X_ @ coef + 0.5 * np.sin(X_[:, 0]) - 0.25 * X_[:, 0] ** 2

    def mu(X_):
        return 0.5 + 0.8 * np.tanh(X_[:, 0]) + 0.25 * X_[:, 1] ** 2 - 0.15 * np.sin(X_[:, 2])

    p = 0.05 + 0.9 * expit(l0(X) + 0.8 * u)
    a = (rng.uniform(size=n) < p).astype(np.int64)
    eps = _noise(noise, n, rng)
    tau = 0.7 + 0.2 * np.sin(X[:, 0]) + 0.1 * X[:, 0] + 0.8 * (p - 0.5)
    y = mu(X) + tau * a + 0.7 * u + eps
    if not return_truth:
        return X, y, a

    def propensity_fn(X_):
        X_ = np.asarray(X_, dtype=float)
        z = l0(X_)[:, None] + 0.8 * _GH_NODES[None, :]
        return (0.05 + 0.9 * expit(z)) @ _GH_WEIGHTS

    def mu_fn(arm, X_):
        X_ = np.asarray(X_, dtype=float)
        e = propensity_fn(X_)
        return mu(X_) + arm * (0.7 + 0.2 * np.sin(X_[:, 0]) + 0.1 * X_[:, 0] + 0.8 * (e - 0.5))

    truth = Bunch(propensity=propensity_fn(X), mu0=mu_fn(0, X), mu1=mu_fn(1, X),
                  propensity_fn=propensity_fn, mu_fn=mu_fn, coef=coef)
    return X, y, a, truth


def make_probit_sine(n_samples=4000, n_features=5, *, noise="gaussian", random_state=None,
                     return_truth=False):
    """Probit confounding with a sine effect in the propensity scale.

    c = 0.05, alpha = 2, beta = 1; X ~ N(0, 1)^d except X_0 ~ N(0, (1 + beta^2)/alpha^2);
    U ~ N(0, 1); P(A=1 | X, U) = c + (1 - 2c) Phi(alpha X_0 + beta U);
    e(X) = c + (1 - 2c) Phi(alpha X_0 / sqrt(1 + beta^2)); e~ = (e - c)/(1 - 2c);
    tau = 5 sin(2 pi e~); Y = A tau + U + eps. Truth: E[y | do(a), x] = a tau(x).

    Parameters
    ----------
    n_samples : int, default=4000
    n_features : int >= 1, default=5
    noise : {"gaussian", "t3"}, default="gaussian"
        Distribution of the additive outcome noise eps.
    random_state : int, RandomState or None
        Seed of every draw.
    return_truth : bool, default=False
        Also return a Bunch with the true propensity and E[y | do(a), x] (arrays and
        callables ``propensity_fn(X)``, ``mu_fn(arm, X)``).

    Returns
    -------
    X, y, treatment[, truth]
    """
    n = check_integer(n_samples, "n_samples")
    _check_n_features(n_features, minimum=1)
    c, alpha, beta = 0.05, 2.0, 1.0
    rng = check_random_state(random_state)
    X = rng.standard_normal((n, n_features))
    X[:, 0] *= np.sqrt(1 + beta**2) / alpha
    u = rng.standard_normal(n)
    a = (rng.uniform(size=n) < c + (1 - 2 * c) * ndtr(alpha * X[:, 0] + beta * u)).astype(
        np.int64
    )

    def propensity_fn(X_):
        return c + (1 - 2 * c) * ndtr(alpha * np.asarray(X_, float)[:, 0] / np.sqrt(1 + beta**2))

    def tau(X_):
        return 5.0 * np.sin(2 * np.pi * (propensity_fn(X_) - c) / (1 - 2 * c))

    y = a * tau(X) + u + _noise(noise, n, rng)
    if not return_truth:
        return X, y, a
    truth = Bunch(propensity=propensity_fn(X), mu0=np.zeros(n), mu1=tau(X),
                  propensity_fn=propensity_fn,
                  mu_fn=lambda arm, X_: arm * tau(np.asarray(X_, float)))
    return X, y, a, truth


def make_cyclic(n_samples=4000, n_features=5, *, noise="gaussian", random_state=None,
                return_truth=False):
    """Cyclic effect with a confounder entering treatment and outcome through sigmoid(2U).

    X ~ U(-pi, pi)^d; U ~ N(0, 1); beta = linspace(1.5, 0.5, d); L = sigmoid(X beta / d);
    G = sigmoid(2U); P(A=1 | X, U) = 0.05 + 0.9 sigmoid(sin X_0 + G);
    Y = 5(2A - 1) sin X_0 + 0.25 (L + G) + eps. Truth: 5(2a - 1) sin x_0 + 0.25 (L(x) + 1/2);
    e(x) by Gauss-Hermite.

    Parameters
    ----------
    n_samples : int, default=4000
    n_features : int >= 1, default=5
    noise : {"gaussian", "t3"}, default="gaussian"
        Distribution of the additive outcome noise eps.
    random_state : int, RandomState or None
        Seed of every draw.
    return_truth : bool, default=False
        Also return a Bunch with the true propensity and E[y | do(a), x] (arrays and
        callables ``propensity_fn(X)``, ``mu_fn(arm, X)``).

    Returns
    -------
    X, y, treatment[, truth]
    """
    n = check_integer(n_samples, "n_samples")
    _check_n_features(n_features, minimum=1)
    rng = check_random_state(random_state)
    beta = np.linspace(1.5, 0.5, n_features)
    X = rng.uniform(-np.pi, np.pi, (n, n_features))
    u = rng.standard_normal(n)
    g = expit(2.0 * u)
    a = (rng.uniform(size=n) < 0.05 + 0.9 * expit(np.sin(X[:, 0]) + g)).astype(np.int64)

    def big_l(X_):
        return expit(np.asarray(X_, float) @ beta / n_features)

    y = 5.0 * (2 * a - 1) * np.sin(X[:, 0]) + 0.25 * (big_l(X) + g) + _noise(noise, n, rng)
    if not return_truth:
        return X, y, a

    def propensity_fn(X_):
        X_ = np.asarray(X_, float)
        z = np.sin(X_[:, 0])[:, None] + expit(2.0 * _GH_NODES)[None, :]
        return (0.05 + 0.9 * expit(z)) @ _GH_WEIGHTS

    def mu_fn(arm, X_):
        X_ = np.asarray(X_, float)
        return 5.0 * (2 * arm - 1) * np.sin(X_[:, 0]) + 0.25 * (big_l(X_) + 0.5)

    truth = Bunch(propensity=propensity_fn(X), mu0=mu_fn(0, X), mu1=mu_fn(1, X),
                  propensity_fn=propensity_fn, mu_fn=mu_fn)
    return X, y, a, truth
