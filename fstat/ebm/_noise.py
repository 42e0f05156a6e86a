"""Noise distributions q for energy-based density estimation (working space).

Each noise is a small scikit-learn estimator with ``fit(Z, sample_weight=None)``,
``score_samples(Z)`` (log-density, nats) and ``sample(n_samples, random_state)`` on numpy
arrays, plus a private ``_module()`` that returns a float64 CPU ``torch.nn.Module`` whose
``forward(y)`` is ``log q(y)`` and whose ``sample(n, generator)`` draws from q with a torch
generator (used in the training loop, importance sampling and AIS). ``dilated(s)`` returns
the fixed noise q_s(y) = s^-d q(c + (y - c)/s) about the centre c.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from scipy.special import gammaln
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import has_fit_parameter

from .._sklearn_compat import check_is_fitted
from .._torch import as_tensor, make_generator
from .._validation import check_array_finite, check_integer, check_sample_weight
from .._warnings import warn_user

__all__ = [
    "DiagonalGaussianNoise",
    "GaussianNoise",
    "MixtureNoise",
    "StudentTNoise",
    "UniformNoise",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _fit_data(Z, sample_weight):
    """Validated working-space data (2-D, finite, at least one row) and weights."""
    Z = check_array_finite(Z, "Z")
    return Z, None if sample_weight is None else check_sample_weight(sample_weight, Z)


def _weights(Z, sample_weight):
    if sample_weight is None:
        return np.full(Z.shape[0], 1.0 / Z.shape[0])
    a = np.asarray(sample_weight, dtype=np.float64)
    return a / a.sum()


def resample_by_weight(Z, sample_weight, random_state):
    """Rows standing for the weighted sample, for fitters without ``sample_weight``.

    ``Z`` itself when the weights are absent or uniform, the rows of positive weight when
    those weights are equal (zero weight is the same as dropping the row), else
    ``max(n, 1000)`` rows drawn with replacement in proportion to the weights.
    """
    if sample_weight is None:
        return Z
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    positive = sample_weight > 0
    if np.ptp(sample_weight[positive]) == 0:
        return Z if positive.all() else Z[positive]
    rs = check_random_state(random_state)
    return Z[rs.choice(len(Z), size=max(len(Z), 1000), p=_weights(Z, sample_weight))]


def weighted_range(Z, sample_weight):
    """Column minima and maxima over the rows of positive weight (all rows without weights)."""
    if sample_weight is not None:
        Z = Z[np.asarray(sample_weight) > 0]
    return Z.min(0), Z.max(0)


def _weighted_mean(Z, sample_weight):
    return Z.mean(0) if sample_weight is None else _weights(Z, sample_weight) @ Z


def _weighted_moments(Z, sample_weight):
    a = _weights(Z, sample_weight)
    mean = a @ Z
    diff = Z - mean
    cov = (diff * a[:, None]).T @ diff
    return mean, cov


def _regularise(cov, reg_covar):
    d = cov.shape[0]
    return cov + reg_covar * (1.0 + np.trace(cov) / d) * np.eye(d)


def _warn_singular(Z):
    if Z.shape[0] <= Z.shape[1]:
        warn_user(
            f"n_samples={Z.shape[0]} <= n_features={Z.shape[1]}: noise covariance singular, "
            "regularised; consider noise='diag_gaussian'.",
            UserWarning)


class _NoiseBase(BaseEstimator):
    """Shared numpy interface on top of the torch module.

    Noise objects are small scikit-learn estimators (``clone``, ``get_params``, repr,
    pickling) but building blocks of the EBM estimators: ``_component = True`` keeps them
    out of :func:`fstat.utils.all_estimators` and so out of the common estimator checks.
    """

    _component = True

    # names of the parameters that, all given, fix the noise (no data needed)
    _fixed_by = ()

    def _is_fixed(self):
        return bool(self._fixed_by) and all(getattr(self, name) is not None
                                            for name in self._fixed_by)

    def _ready(self):
        """``self`` when fitted; an unfitted noise with all its parameters given is usable
        as it is (spec 2.2): a fitted copy built from the current parameters (``self`` is
        left unfitted, so a later ``set_params`` takes effect)."""
        if hasattr(self, "n_features_in_"):
            return self
        if self._is_fixed():
            return copy.copy(self).fit(None)
        raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; fit "
                             f"it or give all of {self._fixed_by} to use it without data.")

    def score_samples(self, Z):
        """Log-density log q(Z) in nats, shape (n,)."""
        noise = self._ready()
        Z = check_array_finite(Z, "Z")
        if Z.shape[1] != noise.n_features_in_:
            raise ValueError(f"Z has {Z.shape[1]} features, but {type(self).__name__} has "
                             f"{noise.n_features_in_}.")
        with torch.no_grad():
            return noise._module()(as_tensor(Z)).double().numpy()

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points, shape (n_samples, d)."""
        noise = self._ready()
        n_samples = check_integer(n_samples, "n_samples", minimum=0)
        if n_samples == 0:
            return np.empty((0, noise.n_features_in_))
        with torch.no_grad():
            return noise._module().sample(n_samples, make_generator(random_state)).numpy()



def _t(x):
    return as_tensor(x)


class _GaussianModule(torch.nn.Module):
    def __init__(self, mean, chol):
        super().__init__()
        chol = np.asarray(chol, dtype=np.float64)
        self.register_buffer("mean", _t(mean))
        self.register_buffer("chol", _t(chol))
        self.register_buffer("inv_chol_t", _t(np.linalg.inv(chol).T))
        d = chol.shape[0]
        self.log_norm = float(-np.log(np.diag(chol)).sum() - 0.5 * d * _LOG_2PI)

    def forward(self, y):
        sol = (y - self.mean) @ self.inv_chol_t
        return -0.5 * (sol * sol).sum(-1) + self.log_norm

    def sample(self, n, generator):
        eps = torch.randn(n, self.mean.shape[0], generator=generator,
                          dtype=self.mean.dtype, device=generator.device).to(self.mean.device)
        return self.mean + eps @ self.chol.T


def _standard_gamma(shape, n, generator, dtype, device):
    """Marsaglia--Tsang Gamma(shape, 1) draws from a torch generator (vectorised rejection)."""
    boost = shape < 1.0
    a = shape + 1.0 if boost else shape
    dd = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * dd)
    out = torch.empty(n, dtype=dtype, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel():
        k = todo.numel()
        x = torch.randn(k, generator=generator, dtype=dtype, device=generator.device).to(device)
        u = torch.rand(k, generator=generator, dtype=dtype, device=generator.device).to(device)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + dd - dd * v + dd * torch.log(
            torch.clamp_min(v, 1e-300)))
        out[todo[ok]] = (dd * v)[ok]
        todo = todo[~ok]
    if boost:
        u = torch.rand(n, generator=generator, dtype=dtype, device=generator.device).to(device)
        out = out * u ** (1.0 / shape)
    return out


class _StudentTModule(_GaussianModule):
    def __init__(self, mean, chol, df):
        super().__init__(mean, chol)
        d = len(mean)
        self.df = float(df)
        self.log_norm = float(
            gammaln((df + d) / 2) - gammaln(df / 2) - 0.5 * d * math.log(df * math.pi)
            - np.log(np.diag(chol)).sum()
        )

    def forward(self, y):
        sol = (y - self.mean) @ self.inv_chol_t
        d = self.mean.shape[0]
        return self.log_norm - 0.5 * (self.df + d) * torch.log1p((sol * sol).sum(-1) / self.df)

    def sample(self, n, generator):
        gauss = super().sample(n, generator) - self.mean
        w = 2.0 * _standard_gamma(self.df / 2.0, n, generator, self.mean.dtype, self.mean.device)
        return self.mean + gauss / torch.sqrt(w / self.df)[:, None]


class _MixtureModule(torch.nn.Module):
    def __init__(self, weights, means, chols):
        super().__init__()
        chols = np.asarray(chols, dtype=np.float64)
        d = chols.shape[1]
        self.register_buffer("weights", _t(weights))
        self.register_buffer("log_weights", _t(np.log(weights)))
        self.register_buffer("means", _t(means))
        self.register_buffer("chols", _t(chols))
        self.register_buffer("inv_chols", _t(np.linalg.inv(chols)))
        self.register_buffer("log_norms", _t(
            -np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(1) - 0.5 * d * _LOG_2PI))

    def forward(self, y):
        diff = y[:, None, :] - self.means[None]
        sol = torch.einsum("kij,nkj->nki", self.inv_chols, diff)
        comp = -0.5 * (sol * sol).sum(-1) + self.log_norms + self.log_weights
        return torch.logsumexp(comp, dim=1)

    def sample(self, n, generator):
        dev = generator.device
        k = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype,
                          device=dev).to(self.means.device)
        k = k.to(self.means.device)
        return self.means[k] + torch.einsum("nij,nj->ni", self.chols[k], eps)


class _UniformModule(torch.nn.Module):
    def __init__(self, low, high):
        super().__init__()
        self.register_buffer("low", _t(low))
        self.register_buffer("high", _t(high))
        self.log_density = float(-np.log(np.asarray(high) - np.asarray(low)).sum())

    def forward(self, y):
        inside = ((y >= self.low) & (y <= self.high)).all(-1)
        value = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device) + self.log_density
        # keep a (zero) gradient path to y for AIS
        value = value + 0.0 * y.sum(-1)
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    def sample(self, n, generator):
        u = torch.rand(n, self.low.shape[0], generator=generator, dtype=self.low.dtype,
                       device=generator.device).to(self.low.device)
        return self.low + (self.high - self.low) * u


class _AdapterModule(torch.nn.Module):
    """Calls a numpy density object (``score_samples`` + ``sample``); not differentiable."""

    differentiable = False

    def __init__(self, density, center, scale):
        super().__init__()
        self.density = density
        self.register_buffer("center", _t(center))
        self.scale = float(scale)

    def forward(self, y):
        c = self.center.to(y.device, y.dtype)
        base = ((y.detach() - c) / self.scale + c).cpu().double().numpy()
        values = np.asarray(self.density.score_samples(base), dtype=np.float64)
        d = y.shape[1]
        return torch.tensor(values, dtype=y.dtype, device=y.device) - d * math.log(self.scale)

    def sample(self, n, generator):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator,
                                 device=generator.device).item())
        try:
            draws = self.density.sample(n, random_state=seed)
        except TypeError:
            draws = self.density.sample(n)
        if isinstance(draws, tuple):  # GaussianMixture-style (X, labels)
            draws = draws[0]
        draws = torch.tensor(np.asarray(draws, dtype=np.float64), dtype=self.center.dtype,
                             device=self.center.device)
        return self.center + self.scale * (draws - self.center)


class GaussianNoise(_NoiseBase):
    """Full-covariance Gaussian noise N(m, C), fitted by weighted moments.

    Parameters
    ----------
    mean : array-like of shape (d,), default=None
        Fixed mean (working space). With ``covariance`` also given, ``fit`` does not refit.
    covariance : array-like of shape (d, d), default=None
    reg_covar : float, default=1e-6
        Ridge ``reg_covar * (1 + tr(C)/d)`` added to the fitted covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.ebm import GaussianNoise
    >>> q = GaussianNoise().fit(np.random.RandomState(0).normal(size=(500, 2)))
    >>> q.sample(3, random_state=0).shape
    (3, 2)
    """

    _fixed_by = ("mean", "covariance")

    def __init__(self, mean=None, covariance=None, *, reg_covar=1e-6):
        self.mean = mean
        self.covariance = covariance
        self.reg_covar = reg_covar

    def fit(self, Z, sample_weight=None):
        """Fit to working-space data ``Z`` (unless all parameters are fixed)."""
        if self._is_fixed():
            self.mean_ = np.atleast_1d(np.asarray(self.mean, dtype=np.float64))
            self.covariance_ = np.atleast_2d(np.asarray(self.covariance, dtype=np.float64))
        else:
            Z, sample_weight = _fit_data(Z, sample_weight)
            _warn_singular(Z)
            mean, cov = _weighted_moments(Z, sample_weight)
            self.mean_ = mean if self.mean is None else np.asarray(self.mean, np.float64)
            self.covariance_ = (_regularise(cov, self.reg_covar) if self.covariance is None
                                else np.asarray(self.covariance, np.float64))
        self.n_features_in_ = len(self.mean_)
        return self

    def _center(self):
        return self.mean_

    def _module(self):
        return _GaussianModule(self.mean_, np.linalg.cholesky(self.covariance_))

    def dilated(self, scale):
        """The fixed noise dilated by ``scale`` about its mean."""
        return GaussianNoise(self.mean_, self.covariance_ * scale**2).fit(self.mean_[None])


class DiagonalGaussianNoise(_NoiseBase):
    """Diagonal Gaussian noise N(m, diag(v)), fitted by weighted moments.

    Parameters
    ----------
    mean : array-like of shape (d,), default=None
    variance : array-like of shape (d,), default=None
    reg_covar : float, default=1e-6
    """

    _fixed_by = ("mean", "variance")

    def __init__(self, mean=None, variance=None, *, reg_covar=1e-6):
        self.mean = mean
        self.variance = variance
        self.reg_covar = reg_covar

    def fit(self, Z, sample_weight=None):
        """Fit to working-space data ``Z`` (unless all parameters are fixed)."""
        mean = var = None
        if not self._is_fixed():
            mean, cov = _weighted_moments(*_fit_data(Z, sample_weight))
            var = np.diag(cov)
            var = var + self.reg_covar * (1.0 + var.mean())
        self.mean_ = mean if self.mean is None else np.atleast_1d(np.asarray(self.mean, float))
        self.variance_ = (var if self.variance is None
                          else np.atleast_1d(np.asarray(self.variance, float)))
        self.n_features_in_ = len(self.mean_)
        return self

    def _center(self):
        return self.mean_

    def _module(self):
        return _GaussianModule(self.mean_, np.diag(np.sqrt(self.variance_)))

    def dilated(self, scale):
        """The fixed noise dilated by ``scale`` about its mean."""
        return DiagonalGaussianNoise(self.mean_, self.variance_ * scale**2).fit(self.mean_[None])


class StudentTNoise(_NoiseBase):
    """Multivariate Student-t noise with covariance C (scale matrix C (df-2)/df).

    Parameters
    ----------
    df : float, default=5.0
        Degrees of freedom (> 2).
    mean, covariance : array-like, default=None
        Fixed location and *covariance* (not scale matrix).
    reg_covar : float, default=1e-6
    """

    _fixed_by = ("mean", "covariance")

    def __init__(self, df=5.0, mean=None, covariance=None, *, reg_covar=1e-6):
        self.df = df
        self.mean = mean
        self.covariance = covariance
        self.reg_covar = reg_covar

    def fit(self, Z, sample_weight=None):
        """Fit location and covariance by weighted moments (unless fixed)."""
        if not self.df > 2:
            raise ValueError(f"df must be > 2 (finite covariance); got df={self.df!r}.")
        g = GaussianNoise(self.mean, self.covariance, reg_covar=self.reg_covar)
        g.fit(Z, sample_weight)
        self.mean_, self.covariance_ = g.mean_, g.covariance_
        self.n_features_in_ = len(self.mean_)
        return self

    def _center(self):
        return self.mean_

    def _module(self):
        scale = self.covariance_ * (self.df - 2.0) / self.df
        return _StudentTModule(self.mean_, np.linalg.cholesky(scale), self.df)

    def dilated(self, scale):
        """The fixed noise dilated by ``scale`` about its location."""
        return StudentTNoise(self.df, self.mean_, self.covariance_ * scale**2).fit(
            self.mean_[None])


class MixtureNoise(_NoiseBase):
    """Gaussian-mixture noise, fitted with :class:`sklearn.mixture.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default=8
    weights, means, covariances : array-like, default=None
        Fixed mixture (all three given: not refitted).
    reg_covar : float, default=1e-3
    random_state : int, RandomState or None, default=None
    """

    _fixed_by = ("weights", "means", "covariances")

    def __init__(self, n_components=8, weights=None, means=None, covariances=None, *,
                 reg_covar=1e-3, random_state=None):
        self.n_components = n_components
        self.weights = weights
        self.means = means
        self.covariances = covariances
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, Z, sample_weight=None):
        """Fit the mixture (rows of zero weight are dropped; other unequal weights are used
        by resampling rows in proportion to them)."""
        if self._is_fixed():
            self.weights_ = np.asarray(self.weights, np.float64)
            self.means_ = np.asarray(self.means, np.float64)
            self.covariances_ = np.asarray(self.covariances, np.float64)
        else:
            from sklearn.mixture import GaussianMixture

            Z, sample_weight = _fit_data(Z, sample_weight)
            k = int(self.n_components)
            rows = Z.shape[0] if sample_weight is None else int(np.sum(sample_weight > 0))
            if k > rows:  # rows of zero weight do not count
                warn_user(f"n_components={k} > n_samples={rows}; reduced to {rows}.",
                          UserWarning)
                k = rows
            rs = check_random_state(self.random_state)
            Z = resample_by_weight(Z, sample_weight, rs)
            gm = GaussianMixture(k, covariance_type="full", reg_covar=self.reg_covar,
                                 random_state=rs.randint(2**31 - 1)).fit(Z)
            self._set_from_mixture(gm)
        self.n_features_in_ = self.means_.shape[1]
        return self

    def _set_from_mixture(self, gm):
        self.weights_ = np.asarray(gm.weights_, np.float64)
        self.means_ = np.asarray(gm.means_, np.float64)
        cov = np.asarray(gm.covariances_, np.float64)
        kind = gm.covariance_type
        k, d = self.means_.shape
        if kind == "full":
            self.covariances_ = cov
        elif kind == "tied":
            self.covariances_ = np.repeat(cov[None], k, axis=0)
        elif kind == "diag":
            self.covariances_ = np.stack([np.diag(c) for c in cov])
        else:
            self.covariances_ = np.stack([c * np.eye(d) for c in cov])

    @classmethod
    def _from_mixture(cls, gm):
        tmp = cls(n_components=len(gm.weights_))
        tmp._set_from_mixture(gm)
        return cls(len(tmp.weights_), tmp.weights_, tmp.means_, tmp.covariances_).fit(None)

    def _center(self):
        return self.weights_ @ self.means_

    def _module(self):
        return _MixtureModule(self.weights_, self.means_, np.linalg.cholesky(self.covariances_))

    def dilated(self, scale):
        """The fixed mixture dilated by ``scale`` about its mean."""
        c = self._center()
        return MixtureNoise(len(self.weights_), self.weights_, c + scale * (self.means_ - c),
                            self.covariances_ * scale**2).fit(None)


class UniformNoise(_NoiseBase):
    """Uniform noise on a box (data range enlarged by ``margin`` times the range).

    Parameters
    ----------
    low, high : array-like of shape (d,), default=None
        Fixed box (both given: not refitted).
    margin : float, default=0.1
    """

    _fixed_by = ("low", "high")

    def __init__(self, low=None, high=None, *, margin=0.1):
        self.low = low
        self.high = high
        self.margin = margin

    def fit(self, Z, sample_weight=None):
        """Fit the box to the range of the rows of positive weight (unless fixed)."""
        if self._is_fixed():
            self.low_ = np.atleast_1d(np.asarray(self.low, np.float64))
            self.high_ = np.atleast_1d(np.asarray(self.high, np.float64))
        else:
            Z, sample_weight = _fit_data(Z, sample_weight)
            lo, hi = weighted_range(Z, sample_weight)
            width = np.where(hi > lo, hi - lo, 1.0)
            self.low_, self.high_ = lo - self.margin * width, hi + self.margin * width
        if np.any(self.high_ <= self.low_):
            raise ValueError("UniformNoise needs high > low in every coordinate.")
        self.n_features_in_ = len(self.low_)
        return self

    def _center(self):
        return 0.5 * (self.low_ + self.high_)

    def _module(self):
        return _UniformModule(self.low_, self.high_)

    def dilated(self, scale):
        """The fixed box dilated by ``scale`` about its centre."""
        c = self._center()
        return UniformNoise(c + scale * (self.low_ - c), c + scale * (self.high_ - c)).fit(None)


class _DensityAdapter(_NoiseBase):
    """Any object with ``score_samples`` and ``sample`` (e.g. KernelDensity), optionally dilated."""

    def __init__(self, density=None, scale=1.0):
        self.density = density
        self.scale = scale

    def fit(self, Z, sample_weight=None, random_state=None):
        """Fit a clone of an unfitted density on ``Z``: with ``sample_weight`` passed on
        when its ``fit`` takes one, else on rows resampled by weight (as
        :class:`MixtureNoise`). The dilation centre is the weighted mean of ``Z``."""
        for method in ("score_samples", "sample"):
            if not callable(getattr(self.density, method, None)):
                raise TypeError(
                    f"noise object {type(self.density).__name__} lacks the method {method!r}; "
                    "a noise needs score_samples and sample."
                )
        density = self.density
        Z = np.asarray(Z, np.float64) if Z is not None else None
        if Z is not None:
            try:
                check_is_fitted(density)
            except (NotFittedError, TypeError):
                density = clone(density)
                if sample_weight is not None and has_fit_parameter(density, "sample_weight"):
                    density = density.fit(Z, sample_weight=sample_weight)
                else:
                    density = density.fit(resample_by_weight(Z, sample_weight, random_state))
        self.density_ = density
        self.center_ = (_weighted_mean(Z, sample_weight) if Z is not None else
                        np.asarray(density.sample(1000)[0] if isinstance(density.sample(1000),
                                                                         tuple)
                                   else density.sample(1000)).mean(0))
        self.n_features_in_ = len(self.center_)
        return self

    def _center(self):
        return self.center_

    def _module(self):
        return _AdapterModule(self.density_, self.center_, self.scale)

    def dilated(self, scale):
        out = _DensityAdapter(self.density_, self.scale * scale)
        out.density_, out.center_, out.n_features_in_ = (self.density_, self.center_,
                                                         self.n_features_in_)
        return out
