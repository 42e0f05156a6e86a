"""CompositionalEBM: maximum likelihood with a moving-average inner estimate of Z (MECO).

Pure functions :func:`_gamma_at`, :func:`_ema_log_update`, :func:`_msvr_log_update` and
:func:`_msvr_ratio_log_update` are the inner-estimator recursions in log space;
:class:`_MecoObjective` is the per-step surrogate.
"""

from __future__ import annotations

import copy
import math

import torch

from .._sklearn_compat import Interval, Real, StrOptions, _fit_context
from .._warnings import warn_user
from ._base import _BaseEnergyDensity, _Objective

_GUARD = 50.0
_KAPPA = 1e-3


def _gamma_at(t, gamma, schedule, max_iter):
    """γ_t of the schedule ("constant", "cosine" from 1 down to γ, "inv_sqrt")."""
    if schedule == "constant":
        return float(gamma)
    if schedule == "cosine":
        return float(gamma + (1.0 - gamma) * 0.5 * (1.0 + math.cos(math.pi * t / max_iter)))
    if schedule == "inv_sqrt":
        return float(max(gamma, (t + 1) ** -0.5))
    raise ValueError(f"unknown gamma_schedule={schedule!r}")


def _ema_log_update(ell, lam, gamma):
    """log((1-γ) e^ell + γ e^lam) computed stably; γ = 1 returns ``lam`` (no log 0)."""
    if gamma >= 1.0:
        return lam.clone() if isinstance(lam, torch.Tensor) else lam
    ell = torch.as_tensor(ell, dtype=torch.float64)
    lam = torch.as_tensor(lam, dtype=torch.float64, device=ell.device)
    return torch.logaddexp(math.log1p(-gamma) + ell, math.log(gamma) + lam)


def _msvr_log_update(ell, lam, lam_prev, gamma, kappa=_KAPPA):
    """STORM-corrected inner update of the spec (§2.6) in log space with the floor κ·ĝ.

    u_t = (1-γ) u_{t-1} + ĝ_t - (1-γ) ĝ'_t, evaluated with the shift a = max(ell, λ, λ');
    if u_t <= κ ĝ_t it is set to κ ĝ_t. Returns ``(log u_t, clamped)`` (tensors, branch-free).
    The additive correction can go negative when a heavy importance weight makes
    ĝ'_t >> u_{t-1}; :func:`_msvr_ratio_log_update` is the always-positive alternative.
    """
    ell = torch.as_tensor(ell, dtype=torch.float64)
    lam = torch.as_tensor(lam, dtype=torch.float64, device=ell.device)
    lam_prev = torch.as_tensor(lam_prev, dtype=torch.float64, device=ell.device)
    a = torch.maximum(ell, torch.maximum(lam, lam_prev))
    g = torch.exp(lam - a)
    u = (1.0 - gamma) * torch.exp(ell - a) + g - (1.0 - gamma) * torch.exp(lam_prev - a)
    floor = kappa * g
    clamped = u <= floor
    u = torch.where(clamped, floor, u)
    return a + torch.log(u), clamped


def _msvr_ratio_log_update(ell, lam, lam_prev, gamma, kappa=_KAPPA):
    """STORM-type inner update with a multiplicative transport (fstat extension "msvr_ratio").

    u_t = (1-γ) u_{t-1} · ĝ_t / ĝ'_t + γ ĝ_t, i.e. in log space
    log u_t = logaddexp(log(1-γ) + ell + λ - λ', log γ + λ); γ = 1 gives λ. The ratio
    ĝ_t / ĝ'_t (same noise draws at w_t and w_{t-1}) estimates Z(w_t) / Z(w_{t-1}) and is
    bounded by the largest per-draw change exp(max_j |s_j - s'_j|), so its error shrinks
    with the step size as in STORM, and u_t > 0 always. It differs from the additive update
    of :func:`_msvr_log_update` by exactly (1-γ)(ĝ_t - ĝ'_t)(u_{t-1}/ĝ'_t - 1), which vanishes
    when u_{t-1} = ĝ'_t and with the step. If u_t <= κ ĝ_t (possible only for γ < κ) it is
    set to κ ĝ_t. Returns ``(log u_t, clamped)`` (tensors, branch-free).
    """
    ell = torch.as_tensor(ell, dtype=torch.float64)
    lam = torch.as_tensor(lam, dtype=torch.float64, device=ell.device)
    lam_prev = torch.as_tensor(lam_prev, dtype=torch.float64, device=ell.device)
    if gamma >= 1.0:
        return lam.clone(), torch.zeros((), dtype=torch.bool, device=ell.device)
    out = torch.logaddexp(math.log1p(-gamma) + ell + (lam - lam_prev), math.log(gamma) + lam)
    floor = math.log(kappa) + lam
    clamped = out <= floor
    return torch.where(clamped, floor, out), clamped


_CORRECTED_UPDATES = {"msvr": _msvr_log_update, "msvr_ratio": _msvr_ratio_log_update}


def _meco_surrogate(e_data, s, ell):
    """L_t = mean E(z) + mean exp(s - ell) with ell detached; ∇L_t is the MECO gradient G_t."""
    return _meco_terms(e_data, s, ell)[0]


def _meco_terms(e_data, s, ell):
    """(L_t, mean E(z)): the surrogate and its data term (reused by the monitor)."""
    e_mean = e_data.mean()
    return e_mean + torch.exp(s - ell.detach().to(s.dtype)).mean(), e_mean


class _MecoObjective(_Objective):
    def __init__(self, est, energy, m, device):
        super().__init__()
        self.est = est
        self.m = m
        self.log_m = math.log(m)
        self.ell = torch.zeros((), dtype=torch.float64, device=device)
        self.n_resets = torch.zeros((), dtype=torch.long, device=device)
        self.n_clamped = torch.zeros((), dtype=torch.long, device=device)
        self._corrected_update = _CORRECTED_UPDATES.get(est.inner_estimator)
        self.msvr = self._corrected_update is not None
        self._energy = [energy]  # not a submodule (avoid double snapshot)
        self.storm_momentum = self.msvr and est.optimizer == "momentum"
        if self.msvr:
            self._prev = [copy.deepcopy(energy)]
            for p in self._prev[0].parameters():
                p.requires_grad_(False)
            # w_{t-1} <- w_t before each update: one foreach copy between cached lists
            self._copy_lists = (list(self._prev[0].parameters()), list(energy.parameters()))
        self._velocity = None
        self._grad_prev = None

    def optimizer_name(self, name):
        # MSVR + momentum: the corrected direction v_t is formed here and applied by plain SGD
        return "sgd" if self.storm_momentum else name

    def _previous_gradient(self, z, y, ell, lq_y=None):
        """Gradient of the surrogate at w_{t-1} on the same z, y and ell (STORM correction)."""
        prev = self._prev[0]
        params = list(prev.parameters())
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            out = prev.raw(torch.cat([z, y]))
            B = z.shape[0]
            s = -out[B:] if prev.tilted else -out[B:] - (prev.noise(y) if lq_y is None else lq_y)
            grads = torch.autograd.grad(_meco_surrogate(out[:B], s, ell), params,
                                        allow_unused=True)
            for p in params:
                p.requires_grad_(False)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads,
                                                                        strict=True)]

    def loss(self, t, e_data, s, s_data, offset, y, z, lq_y=None):
        gamma = _gamma_at(t, self.est.gamma, self.est.gamma_schedule, self.est.max_iter)
        with torch.no_grad():
            s64 = s.detach().double()
            lam = torch.logsumexp(s64, 0) - self.log_m
            if t == 0:
                ell = lam
            elif self.msvr:
                prev = self._prev[0]
                s_prev = prev.log_weight(y, lq_y).double()  # log q(y) reused (untilted)
                lam_prev = torch.logsumexp(s_prev, 0) - self.log_m
                ell, clamped = self._corrected_update(self.ell, lam, lam_prev, gamma)
                self.n_clamped += clamped
            else:
                ell = _ema_log_update(self.ell, lam, gamma)
            bad = (s64.max() - ell) > _GUARD
            self.n_resets += bad
            ell = torch.where(bad, lam, ell)
            self.ell = ell
            if self.storm_momentum and t > 0:
                self._grad_prev = self._previous_gradient(z.detach(), y.detach(), ell, lq_y)
            if self.msvr:
                torch._foreach_copy_(*self._copy_lists)
        loss, e_mean = _meco_terms(e_data, s, ell)
        monitor = (e_mean.detach() + offset).double() + ell
        return loss, monitor

    def before_step(self, t):
        if not self.storm_momentum:
            return
        params = [p for p in self._energy[0].parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if self._velocity is None or self._grad_prev is None:
            velocity = [g.clone() for g in grads]
        else:  # v_t = G_t + (1 - β)(v_{t-1} - G'_t), 1 - β = momentum
            mom = float(self.est.momentum)
            velocity = [g + mom * (v - gp) for g, v, gp in
                        zip(grads, self._velocity, self._grad_prev, strict=True)]
        for p, v in zip(params, velocity, strict=True):
            p.grad = v.clone()
        self._velocity = velocity

    def info(self):
        return {"log_u": float(self.ell)}

    def train_log_partition(self):
        return float(self.ell)

    def finish(self, est):
        est.n_inner_resets_ = int(self.n_resets)
        est.n_inner_clamped_ = int(self.n_clamped)
        if est.n_inner_resets_:
            warn_user(f"MECO overflow guard triggered {est.n_inner_resets_} time(s): the "
                      "inner estimate was reset to the minibatch value.", UserWarning)
        if est.n_inner_clamped_:
            warn_user(f"MSVR clamp triggered {est.n_inner_clamped_} time(s) (u <= κ ĝ).",
                      UserWarning)


class CompositionalEBM(_BaseEnergyDensity):
    """Energy-based density fitted by compositional optimisation of the likelihood (MECO).

    The exact negative log-likelihood F(w) = mean E_w(z_i) + log E_q[exp(s_w(y))] is minimised
    with the chain rule, the inner expectation Z_w being tracked by a moving average in log
    space across iterations (``inner_estimator="ma"``) or a STORM-corrected one (``"msvr"``).
    After training, log Z is re-estimated (importance sampling by default, closed form for the
    quadratic energy) with a standard error and an effective sample size. The recursion,
    defaults, noise families and tilt are fstat's reconstruction of Jiang et al. (2023).

    Parameters
    ----------
    energy_model : {"mlp", "quadratic"} or callable, default="mlp"
        Energy family; a callable ``f(n_features) -> torch.nn.Module`` maps (n, d) to (n,).
    hidden_layer_sizes : tuple of int, default=(64, 64)
    activation : {"silu", "softplus", "tanh", "elu"}, default="silu"
    tilt : "auto" or bool, default="auto"
        E = f - log q (model starts at p = q); "auto": True except for "quadratic".
    confinement : float, default=0.0
        Adds ``confinement * ||z||^2 / 2`` to the energy.
    noise : str, GaussianMixture, noise object or density, default="gaussian"
        A density is any object with score_samples and sample. Strings: one of
        "gaussian", "diag_gaussian", "student_t", "gmm", "uniform".
    noise_scale : float or "auto", default="auto"
        Dilation of the fitted noise (1.0 tilted, 1.5 untilted).
    noise_params : dict, default=None
        Forwarded to the noise constructor.
    standardize : bool, default=True
        Work on (x - mean) / std; densities are reported in user units.
    inner_estimator : {"ma", "msvr", "msvr_ratio"}, default="ma"
        "msvr" adds the STORM correction u_t = (1-γ) u_{t-1} + ĝ_t - (1-γ) ĝ'_t (ĝ'_t: the
        same noise at the previous parameters; one extra forward pass per step), floored at
        1e-3·ĝ_t. "msvr_ratio" (fstat extension) transports the tracked value by the ratio
        instead, u_t = (1-γ) u_{t-1} ĝ_t/ĝ'_t + γ ĝ_t, which stays positive; prefer it at
        larger learning rates (see the user guide).
    gamma : float in (0, 1], default=0.1
        Moving-average weight; 1 is naive self-normalised IS (biased).
    gamma_schedule : {"constant", "cosine", "inv_sqrt"}, default="constant"
    optimizer : {"adam", "momentum", "sgd"}, default="adam"
    learning_rate : float, default=1e-3
    momentum : float, default=0.9
        Adam's β1, or the kept fraction of the old direction for "momentum".
    weight_decay : float, default=0.0
    batch_size : int or "auto", default="auto"
        min(256, n).
    n_noise : int, default=256
    max_iter : int, default=5000
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    validation_interval : int, default=100
        Evaluation (and host flush) interval.
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
        Early stopping: the held-out log-likelihood must improve by more than this many
        nats (absolute).
    logz_method : {"auto", "is", "ais", "grid", "exact"}, default="auto"
    n_logz_samples : int, default=None
        IS draws (100 000) or AIS chains (1 000).
    logz_params : dict, default=None
        Extra arguments of :func:`estimate_log_partition`.
    contamination : float in (0, 0.5], default=0.01
    device : str, default="auto"
    dtype : {"float32", "float64"}, default="float32"
        Training dtype; evaluation is always float64.
    callback : callable, default=None
        ``callback(iteration, module, info) -> bool``; True stops training.
    verbose : int, default=0
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    log_partition_ : float
        log Z in user units (working log Z + Σ log ``scale_``).
    log_partition_se_, log_partition_ess_ : float
    log_partition_method_ : str
    train_log_partition_ : float
        Final inner estimate (lags the final parameters; monitoring only).
    energy_module_ : torch.nn.Module
    noise_ : fitted noise (working space)
    mean_, scale_ : ndarray of shape (n_features,)
    loss_curve_ : list of float
        Running user-unit NLL monitor per iteration.
    validation_scores_ : list of float
    n_iter_, best_iter_ : int
    offset_ : float
    n_inner_resets_, n_inner_clamped_ : int
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray

    Examples
    --------
    >>> from fstat.datasets import make_toy_density
    >>> from fstat.ebm import CompositionalEBM
    >>> X = make_toy_density("gaussian", 500, n_features=2, random_state=0)
    >>> ebm = CompositionalEBM(energy_model="quadratic", learning_rate=1e-2, max_iter=300,
    ...                        device="cpu", random_state=0).fit(X)
    >>> ebm.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **_BaseEnergyDensity._parameter_constraints,
        "inner_estimator": [StrOptions({"ma", "msvr", "msvr_ratio"})],
        "gamma": [Interval(Real, 0, 1, closed="right")],
        "gamma_schedule": [StrOptions({"constant", "cosine", "inv_sqrt"})],
    }

    def __init__(self, energy_model="mlp", *, hidden_layer_sizes=(64, 64), activation="silu",
                 tilt="auto", confinement=0.0, noise="gaussian", noise_scale="auto",
                 noise_params=None, standardize=True, inner_estimator="ma", gamma=0.1,
                 gamma_schedule="constant", optimizer="adam", learning_rate=1e-3, momentum=0.9,
                 weight_decay=0.0, batch_size="auto", n_noise=256, max_iter=5000,
                 early_stopping=False, validation_fraction=0.1, validation_interval=100,
                 n_iter_no_change=10, tol=1e-4, logz_method="auto", n_logz_samples=None,
                 logz_params=None, contamination=0.01, device="auto", dtype="float32",
                 callback=None, verbose=0, random_state=None):
        self.energy_model = energy_model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.tilt = tilt
        self.confinement = confinement
        self.noise = noise
        self.noise_scale = noise_scale
        self.noise_params = noise_params
        self.standardize = standardize
        self.inner_estimator = inner_estimator
        self.gamma = gamma
        self.gamma_schedule = gamma_schedule
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.n_noise = n_noise
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.logz_method = logz_method
        self.n_logz_samples = n_logz_samples
        self.logz_params = logz_params
        self.contamination = contamination
        self.device = device
        self.dtype = dtype
        self.callback = callback
        self.verbose = verbose
        self.random_state = random_state

    def _make_objective(self, energy, B, m, dtype, device):
        return _MecoObjective(self, energy, m, device)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; minibatches are drawn with probabilities a_i / Σ a.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)
