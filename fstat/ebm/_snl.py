"""SNLDensity: maximum likelihood with a learnable log Z (self-normalised likelihood)."""

from __future__ import annotations

import math

import torch

from .._sklearn_compat import Interval, Real, _fit_context
from ._base import _BaseEnergyDensity, _Objective


def _snl_loss(e_data, s_noise, nu):
    """mean E(z) + ν̃ + mean exp(s - ν̃) - 1 (an upper bound of the minibatch NLL)."""
    return e_data.mean() + nu + torch.exp(s_noise - nu).mean() - 1.0


class _SnlObjective(_Objective):
    def __init__(self, lr_nu, dtype, device, m):
        super().__init__()
        self.nu = torch.nn.Parameter(torch.zeros((), dtype=dtype, device=device))
        self.lr_nu = lr_nu
        self.log_m = math.log(m)

    def param_groups(self, energy, learning_rate):
        lr = learning_rate if self.lr_nu is None else self.lr_nu
        return [{"params": [p for p in energy.parameters() if p.requires_grad]},
                {"params": [self.nu], "lr": lr}]

    def loss(self, t, e_data, s, s_data, offset, y, z, lq_y=None):
        if t == 0:
            with torch.no_grad():
                self.nu.fill_(torch.logsumexp(s.detach().double(), 0) - self.log_m)
        loss = _snl_loss(e_data, s, self.nu)
        return loss, loss.detach() + offset.detach()

    def info(self):
        return {"nu": float(self.nu.detach())}

    def train_log_partition(self):
        return float(self.nu.detach())


class SNLDensity(_BaseEnergyDensity):
    """Energy-based density fitted by the self-normalised likelihood (learnable log Z).

    Minimises mean E_w(z) + ν̃ + mean exp(s_w(y) - ν̃) - 1, an upper bound of the minibatch
    negative log-likelihood (tangent bound of the logarithm) that is tight at e^ν̃ = Ẑ; its
    w-gradient has the MECO form with u = e^ν̃. ν̃ has its own learning rate.

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

    logz_learning_rate : float, default=None
        Learning rate of ν̃ (its own parameter group); None uses ``learning_rate``.

    Attributes
    ----------
    log_partition_ : float
        log Z in user units, re-estimated after training.
    log_partition_se_, log_partition_ess_ : float
    log_partition_method_ : str
    train_log_partition_ : float
        Final learnt log-normaliser (user units; monitoring only).
    energy_module_ : torch.nn.Module
    noise_ : fitted noise (working space)
    mean_, scale_ : ndarray of shape (n_features,)
    loss_curve_ : list of float
        SNL objective per iteration plus ``sum(log(scale_))`` (a negative log-likelihood in the
        user's units).
    validation_scores_ : list of float
    n_iter_, best_iter_ : int
    offset_ : float
    device_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray

    Examples
    --------
    >>> from fstat.datasets import make_toy_density
    >>> from fstat.ebm import SNLDensity
    >>> X = make_toy_density("gaussian", 500, n_features=2, random_state=0)
    >>> snl = SNLDensity(energy_model="quadratic", learning_rate=1e-2, max_iter=300,
    ...                  device="cpu", random_state=0).fit(X)
    >>> snl.sample(4, random_state=0).shape
    (4, 2)
    """

    _parameter_constraints: dict = {
        **_BaseEnergyDensity._parameter_constraints,
        "logz_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, energy_model="mlp", *, hidden_layer_sizes=(64, 64), activation="silu",
                 tilt="auto", confinement=0.0, noise="gaussian", noise_scale="auto",
                 noise_params=None, standardize=True, optimizer="adam", learning_rate=1e-3,
                 momentum=0.9, weight_decay=0.0, batch_size="auto", n_noise=256, max_iter=5000,
                 early_stopping=False, validation_fraction=0.1, validation_interval=100,
                 n_iter_no_change=10, tol=1e-4, logz_method="auto", n_logz_samples=None,
                 logz_params=None, contamination=0.01, device="auto", dtype="float32",
                 callback=None, verbose=0, random_state=None,
                 logz_learning_rate=None):
        self.energy_model = energy_model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.tilt = tilt
        self.confinement = confinement
        self.noise = noise
        self.noise_scale = noise_scale
        self.noise_params = noise_params
        self.standardize = standardize
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
        self.logz_learning_rate = logz_learning_rate

    def _make_objective(self, energy, B, m, dtype, device):
        return _SnlObjective(self.logz_learning_rate, dtype, device, m)

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
