"""Shared machinery of the three energy-based density estimators.

:class:`_BaseEnergyDensity` owns parameters, validation, standardisation, noise fitting,
module building, the training-loop driver (:func:`fstat._training.run_training` with a
per-iteration closure), log Z evaluation, sampling, OOD scores and pickling. Subclasses
supply only the objective through :meth:`_make_objective`.
"""

from __future__ import annotations

import copy
import inspect
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, clone
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state

from .._adam import FusedAdam
from .._sklearn_compat import (
    Integral,
    Interval,
    InvalidParameterError,
    Real,
    StrOptions,
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)
from .._standardise import column_mean_and_scale
from .._torch import cuda_free_bytes, fitted_device, parse_dtype, resolve_device
from .._training import make_optimizer, run_training
from .._validation import check_integer, check_layer_sizes
from .._warnings import warn_user
from .._weighted import weighted_quantile
from ._energies import (
    EnergyModel,
    QuadraticEnergy,
    build_core,
    evaluate_no_grad,
    use_inplace_activations,
)
from ._noise import (
    DiagonalGaussianNoise,
    GaussianNoise,
    MixtureNoise,
    StudentTNoise,
    UniformNoise,
    _DensityAdapter,
    _NoiseBase,
    resample_by_weight,
    weighted_range,
)
from ._partition import (
    _WeightAccumulator,
    check_options,
    estimate_log_partition,
)
from ._sampling import draw_categorical, mala_step, sir, value_and_grad

_CHUNK = 65536

_DEVICE_DATA_FRACTION = 0.25
_NOISES = {
    "gaussian": GaussianNoise,
    "diag_gaussian": DiagonalGaussianNoise,
    "student_t": StudentTNoise,
    "gmm": MixtureNoise,
    "uniform": UniformNoise,
}


def _check_tensor_input(X):
    if isinstance(X, torch.Tensor):
        if X.device.type != "cpu" or X.requires_grad:
            raise TypeError("X is a CUDA tensor or requires grad; convert to a CPU numpy array "
                            "first (X.detach().cpu().numpy()).")
        return X.detach().numpy()
    return X


def _data_device(nbytes, device):
    """Where the training data live during fit.

    On the compute device, unless that is a CUDA device and the data exceed
    ``_DEVICE_DATA_FRACTION`` of its free memory: then they stay in pinned CPU memory and each
    minibatch is copied with ``non_blocking=True`` (spec §5.10).
    """
    if device.type != "cuda":
        return device
    free = cuda_free_bytes(device)
    return torch.device("cpu") if nbytes > _DEVICE_DATA_FRACTION * free else device


class _BaseEnergyDensity(DensityMixin, BaseEstimator):
    """Base class; not for direct use."""

    _parameter_constraints: dict = {
        "energy_model": [StrOptions({"mlp", "quadratic"}), callable],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"silu", "softplus", "tanh", "elu"})],
        "tilt": [StrOptions({"auto"}), "boolean"],
        "confinement": [Interval(Real, 0, None, closed="left")],
        "noise": [StrOptions(set(_NOISES)), GaussianMixture, _NoiseBase, object],
        "noise_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "noise_params": [dict, None],
        "standardize": ["boolean"],
        "optimizer": [StrOptions({"sgd", "momentum", "adam"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "n_noise": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "validation_interval": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "logz_method": [StrOptions({"auto", "is", "ais", "grid", "exact"})],
        "n_logz_samples": [Interval(Integral, 1, None, closed="left"), None],
        "logz_params": [dict, None],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "device": [StrOptions({"auto", "cpu", "cuda"}), str],
        "dtype": [StrOptions({"float32", "float64"})],
        "callback": [callable, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------- fit steps
    def _resolved_tilt(self):
        if self.tilt == "auto":
            return self.energy_model != "quadratic"
        return bool(self.tilt)

    def _standardise(self, X, a):
        d = X.shape[1]
        if not self.standardize:
            return np.zeros(d), np.ones(d)
        mean, scale, constant = column_mean_and_scale(X, a)
        for k in np.flatnonzero(constant):
            warn_user(f"feature {k} is constant; scale set to 1; density degenerate.",
                      UserWarning)
            scale[k] = 1.0
        return mean, scale

    def _check_discrete(self, X):
        n = X.shape[0]
        # doubles of magnitude >= 2^52 are all integers: only smaller entries say anything
        small = np.abs(X) < 2.0**52
        integer = bool(small.any()) and np.all(X[small] == np.round(X[small]))
        dup = n - len(np.unique(X, axis=0)) > 0.1 * n
        if integer or dup:
            warn_user("discrete data: dequantize (add uniform noise) first; a continuous "
                      "density on discrete values is degenerate.", UserWarning)

    def _fit_noise(self, Z, a, rng):
        noise, params = self.noise, dict(self.noise_params or {})
        d = Z.shape[1]
        uniform_weights = a is None
        sw = None if uniform_weights else a
        if isinstance(noise, str):
            cls = _NOISES[noise]
            if noise == "gmm":
                params.setdefault("random_state", rng.randint(2**31 - 1))
            if noise == "uniform" and d > 3:
                warn_user(f"noise='uniform' with d={d} > 3: importance weights degenerate "
                          "in high dimension.", UserWarning)
            base = cls(**params).fit(Z, sw)
        elif isinstance(noise, GaussianMixture):
            gm = noise
            if not hasattr(gm, "means_"):  # GaussianMixture.fit takes no weights
                gm = clone(gm).fit(resample_by_weight(Z, sw, rng))
            base = MixtureNoise._from_mixture(gm)
        elif isinstance(noise, _NoiseBase) and not isinstance(noise, _DensityAdapter):
            base = clone(noise).fit(Z, sw)
        else:
            base = _DensityAdapter(noise).fit(Z, sw, random_state=rng)
        if base.n_features_in_ != d:
            raise ValueError(f"noise has {base.n_features_in_} features; X has {d}.")
        s = (1.0 if self._resolved_tilt() else 1.5) if self.noise_scale == "auto" \
            else float(self.noise_scale)
        return base.dilated(s) if s != 1.0 else base

    def _build_energy(self, d, noise_obj, rng, generator):
        tilted = self._resolved_tilt()
        core = build_core(self.energy_model, d, hidden_layer_sizes=self.hidden_layer_sizes,
                          activation=self.activation, generator=generator, dtype=None,
                          seed=rng.randint(2**31 - 1))
        soft = tilted and isinstance(noise_obj, (StudentTNoise, _DensityAdapter)) \
            and self.energy_model != "quadratic"
        if not tilted and self.energy_model != "quadratic" and self.confinement == 0:
            warn_user("tilt=False with a non-quadratic energy and confinement=0: Z may be "
                      "infinite; use tilt or confinement.", UserWarning)
        return EnergyModel(core, noise_obj._module(), tilted=tilted, soft_bound=soft,
                           confinement=self.confinement)

    def _check_option_dicts(self):
        """``noise_params`` (for a named noise) and ``logz_params``: keys must be arguments of
        what they configure and the log-partition options valid; checked before training, an
        InvalidParameterError naming the parameter."""
        targets = [("logz_params", self.logz_params, estimate_log_partition,
                    {"model", "method", "n_samples", "random_state"})]
        if isinstance(self.noise, str):
            targets.append(("noise_params", self.noise_params, _NOISES[self.noise], set()))
        for name, params, target, reserved in targets:
            allowed = set(inspect.signature(target).parameters) - reserved
            unknown = sorted(set(params or {}) - allowed)
            if unknown:
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} has unknown key(s) "
                    f"{unknown}; allowed: {sorted(allowed)}."
                )
        try:  # the values too, before training rather than after it
            check_options(**(self.logz_params or {}))
        except ValueError as exc:
            raise InvalidParameterError(f"The 'logz_params' parameter of "
                                        f"{type(self).__name__}: {exc}") from None

    # ------------------------------------------------------------------- fit
    def _fit(self, X, y=None, sample_weight=None):
        X = _check_tensor_input(X)
        X = validate_data(self, X, dtype=np.float64, order="C", ensure_min_samples=2)
        n, d = X.shape
        check_layer_sizes(self.hidden_layer_sizes)
        if isinstance(self.noise, str) and self.noise not in _NOISES:
            raise InvalidParameterError(
                f"The 'noise' parameter of {type(self).__name__} must be one of "
                f"{sorted(_NOISES)}, a GaussianMixture or a noise object; got {self.noise!r}."
            )
        self._check_option_dicts()
        try:
            device = resolve_device(self.device)
        except ValueError as exc:  # an unknown device, or CUDA requested but not available
            raise InvalidParameterError(str(exc)) from None
        self.device_ = str(device)
        dtype = parse_dtype(self.dtype)
        weighted = sample_weight is not None
        if weighted:
            try:
                a = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                         ensure_non_negative=True)
            except ValueError as exc:
                raise ValueError(f"invalid sample_weight: {exc}") from None
            if not a.sum() > 0:
                raise ValueError("sample_weight sums to zero; at least one positive weight "
                                 "is needed.")
            weighted = np.ptp(a) > 0
            a_full = a
        else:
            a_full = np.ones(n)
        self._check_discrete(X)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=5)
        init_gen = torch.Generator().manual_seed(int(seeds[0]))

        self.mean_, self.scale_ = self._standardise(X, a_full)
        Z = (X - self.mean_) / self.scale_
        log_scale = float(np.log(self.scale_).sum())

        val_idx = None
        train_idx = np.arange(n)
        if self.early_stopping:
            n_val = int(round(self.validation_fraction * n))
            if n_val < 2 or n - n_val < 2:
                raise ValueError(f"validation_fraction too small (or too large): "
                                 f"validation_fraction={self.validation_fraction} gives "
                                 f"{n_val} validation rows of {n}; at least 2 are needed.")
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seeds[2])))
            val_idx = np.sort(perm[:n_val].numpy())
            train_idx = np.sort(perm[n_val:].numpy())
        Ztr, atr = Z[train_idx], a_full[train_idx]
        if weighted and val_idx is not None and not (
                atr.sum() > 0 and a_full[val_idx].sum() > 0):
            raise ValueError("the early-stopping split left only zero sample_weight rows in "
                             "the training or the validation part; use more rows of positive "
                             "weight, another validation_fraction or early_stopping=False.")
        self._data_range_ = weighted_range(Ztr, atr if weighted else None)

        self.noise_ = self._fit_noise(Ztr, atr if weighted else None,
                                      np.random.RandomState(seeds[3]))
        energy = self._build_energy(d, self.noise_, np.random.RandomState(seeds[1]), init_gen)
        energy = energy.to(device=device, dtype=dtype)

        n_tr = len(train_idx)
        if self.batch_size == "auto":
            B = min(256, n_tr)
        else:
            B = int(self.batch_size)
            if B > n_tr:
                warn_user(f"batch_size={B} > n_samples={n_tr}; clipped to {n_tr}.",
                          UserWarning)
                B = n_tr
        m = int(self.n_noise)

        loop_gen = torch.Generator(device=device)
        loop_gen.manual_seed(int(seeds[4]))
        data_dev = _data_device(Ztr.shape[0] * (Ztr.shape[1] + 1) * dtype.itemsize, device)
        on_host = data_dev.type != device.type
        index_gen = loop_gen
        if on_host:  # batch indices are drawn where the data are (CPU generator)
            index_gen = torch.Generator().manual_seed(int(seeds[4]))
        with torch.no_grad():
            lq_data = self.noise_._module()(torch.tensor(Ztr, dtype=torch.float64)).to(dtype)
        data = torch.cat([torch.tensor(Ztr, dtype=dtype), lq_data[:, None]], 1)
        data = data.pin_memory() if on_host else data.to(device)
        probs = None
        if weighted:
            probs = torch.tensor(atr / atr.sum(), dtype=torch.float64, device=data_dev)
        tilted = energy.tilted
        objective = self._make_objective(energy, B, m, dtype, device)
        monitor_shift = log_scale if objective.monitor_in_data_units else 0.0
        groups = objective.param_groups(energy, self.learning_rate)
        opt_name = objective.optimizer_name(self.optimizer)
        if opt_name == "adam" and device.type in ("cpu", "cuda"):
            # torch's fused Adam kernel (one launch for all tensors) without torch.optim's
            # per-step overhead and first-use torch._dynamo import; same trajectory
            optimizer = FusedAdam(groups, self.learning_rate, betas=(self.momentum, 0.999),
                                  weight_decay=self.weight_decay)
        else:
            optimizer = make_optimizer(groups, opt_name, learning_rate=self.learning_rate,
                                       weight_decay=self.weight_decay, momentum=self.momentum)
            if opt_name == "adam":
                for g in optimizer.param_groups:
                    g["betas"] = (self.momentum, 0.999)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        host_check = device.type == "cpu"  # reading a CPU scalar costs one op, no sync
        first_bad = -1 if host_check else torch.full((), -1, dtype=torch.long, device=device)
        stop = [False]
        needs_s_data = objective.needs_s_data
        zero = torch.zeros((), dtype=dtype, device=device)

        def draw(t):
            if probs is None:
                idx = torch.randint(0, n_tr, (B,), generator=index_gen, device=data_dev)
            else:
                idx = draw_categorical(probs, B, index_gen)
            rows = data.index_select(0, idx)  # = data[idx], cheaper
            if on_host:  # pinned staging copy, asynchronous host-to-device transfer
                rows = rows.pin_memory().to(device, non_blocking=True)
            y = energy.noise.sample(m, loop_gen).to(dtype)
            return rows[:, :-1], rows[:, -1], y

        def step(t):
            nonlocal first_bad
            z, lq_z, y = draw(t)
            out = energy.raw(torch.cat([z, y]))
            e_data, e_noise = out[:B], out[B:]
            lq_y = s_data = None  # s_data only where the objective reads it (NCE)
            if tilted:
                s = -e_noise
                if needs_s_data:
                    s_data = -e_data
                offset = -lq_z.mean()
            else:
                lq_y = energy.noise(y)
                s = -e_noise - lq_y
                if needs_s_data:
                    s_data = -e_data - lq_z
                offset = zero
            loss, monitor = objective.loss(t, e_data, s, s_data, offset, y, z, lq_y=lq_y)
            for p in params:  # = optimizer.zero_grad(set_to_none=True), without its overhead
                p.grad = None
            loss.backward()
            objective.before_step(t)
            optimizer.step()
            monitor = monitor.double() + monitor_shift
            if not host_check:  # branch-free on CUDA: no per-step host sync
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(monitor),
                                        torch.full_like(first_bad, t), first_bad)
            elif first_bad < 0 and not math.isfinite(float(monitor)):
                first_bad = t
            if self.callback is not None:
                info = {"loss": float(monitor), **objective.info()}
                if self.callback(t, energy, info):
                    stop[0] = True
            return monitor

        validate = None
        if self.early_stopping:
            # rows of zero weight are left out (their log-densities may be -inf: 0 * -inf)
            val_rows = val_idx if not weighted else val_idx[a_full[val_idx] > 0]
            Zv = torch.tensor(Z[val_rows], dtype=torch.float64, device=device)
            val_weights = None if not weighted else torch.tensor(
                a_full[val_rows] / a_full[val_rows].sum(), dtype=torch.float64, device=device)
            val_gen = torch.Generator(device=device)
            val_gen.manual_seed(int(seeds[2]))
            n_val_logz = min(self.n_logz_samples or 100_000, 8192)

            def validate():
                energy.eval()
                with torch.no_grad():
                    e64 = copy.deepcopy(energy).double()
                    acc = _WeightAccumulator()
                    acc.add(e64.log_weight(e64.noise.sample(n_val_logz, val_gen)))
                    logz = acc.result("is").log_z
                    log_density = -e64(Zv)
                    mean = (log_density.mean() if val_weights is None
                            else log_density @ val_weights)
                    score = float(mean) - logz - log_scale
                energy.train()
                return score

        energy.train()
        eval_every = self.validation_interval
        if self.callback is not None and not self.early_stopping:
            eval_every = 1
        try:
            result = run_training(
                step, max_iter=self.max_iter, model=[energy, objective],
                validate=validate, eval_every=eval_every, early_stopping=self.early_stopping,
                n_iter_no_change=self.n_iter_no_change, tol=self.tol, verbose=self.verbose,
                desc=type(self).__name__, callback=lambda it, res: stop[0],
                restore_on_nonfinite=False,  # spec 4: divergence is an error, even with
            )  # early stopping
        except FloatingPointError:
            t = int(first_bad)
            raise ValueError(
                f"non-finite value at iteration {t}; lower learning_rate or increase "
                "noise_scale.") from None
        energy.eval()
        self.n_iter_ = result.n_iter
        self.loss_curve_ = list(result.loss_curve)
        self.validation_scores_ = list(result.validation_scores or [])
        self.best_iter_ = (result.best_iteration if result.best_iteration is not None
                           else result.n_iter)
        self.train_log_partition_ = objective.train_log_partition() + log_scale
        objective.finish(self)

        for p in energy.parameters():
            p.requires_grad_(False)
        self.energy_module_ = energy.to("cpu")
        self._set_log_partition()
        ref = val_idx if val_idx is not None else np.arange(n)
        if weighted:  # rows of zero weight take no part (nor warn about their energies)
            ref = ref[a_full[ref] > 0]
        ref_scores = -self._working_energy(Z[ref]) - self.log_partition_
        self.offset_ = weighted_quantile(ref_scores, a_full[ref] if weighted else None,
                                         self.contamination)
        if isinstance(energy.core, QuadraticEnergy) and not energy.tilted:
            mu, cov = energy.quadratic_moments()
            self.quadratic_mean_ = self.mean_ + self.scale_ * mu
            self.quadratic_covariance_ = cov * np.outer(self.scale_, self.scale_)
        else:  # a refit with another energy: no stale moments of an earlier fit
            self.__dict__.pop("quadratic_mean_", None)
            self.__dict__.pop("quadratic_covariance_", None)
        return self

    def _logz_method(self):
        if self.logz_method != "auto":
            return self.logz_method
        em = self.energy_module_
        return "exact" if isinstance(em.core, QuadraticEnergy) and not em.tilted else "is"

    def _set_log_partition(self):
        method = self._logz_method()
        params = dict(self.logz_params or {})
        n = self.n_logz_samples if method in ("is", "ais") else None
        rs = check_random_state(self.random_state)
        est = estimate_log_partition(self, method, n, random_state=rs.randint(2**31 - 1),
                                     **params)
        self.log_partition_ = est.log_z
        self.log_partition_se_ = est.se
        self.log_partition_ess_ = est.ess
        self.log_partition_method_ = est.method

    # ---------------------------------------------------------- evaluation
    def _eval_device(self):
        return fitted_device(getattr(self, "device_", "cpu"), "evaluating")

    def _energy64(self, device=None):
        energy = copy.deepcopy(self.energy_module_)
        energy.noise = self.noise_._module()
        return energy.to(device or self._eval_device(), torch.float64).eval()

    def _validate_eval(self, X):
        check_is_fitted(self)
        X = _check_tensor_input(X)
        return validate_data(self, X, dtype=np.float64, order="C", reset=False)

    def _working_energy(self, Z):
        energy = use_inplace_activations(self._energy64())
        dev = next(energy.buffers()).device
        out = []
        for start in range(0, len(Z), _CHUNK):
            z = torch.tensor(Z[start:start + _CHUNK], dtype=torch.float64, device=dev)
            out.append(evaluate_no_grad(energy, z).cpu().numpy())
        values = np.concatenate(out) if out else np.zeros(0)
        n_nan = int(np.isnan(values).sum())
        if n_nan:
            raise ValueError(f"energy is NaN for {n_nan} row(s).")
        n_inf = int(np.isposinf(values).sum())
        if n_inf:
            warn_user(f"energy is +inf for {n_inf} row(s) (outside the model support or "
                      "astronomical inputs); their log-density is -inf.", UserWarning)
        return values

    def energy(self, X):
        """Unnormalised energies E(z(x)) (no Jacobian term), shape (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._validate_eval(X)
        return self._working_energy((X - self.mean_) / self.scale_)

    def score_samples(self, X):
        """Normalised log-density log p(x) in nats (user units), shape (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            ``-energy(X) - log_partition_``.
        """
        return -self.energy(X) - self.log_partition_

    def score(self, X, y=None):
        """Mean log-likelihood (nats per sample) of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    def ood_score(self, X):
        """Out-of-distribution score ``-score_samples(X)`` (higher = more anomalous)."""
        return -self.score_samples(X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``; negative values flag outliers."""
        return self.score_samples(X) - self.offset_

    def log_partition(self, method=None, n_samples=None, random_state=None, **kwargs):
        """Re-estimate log Z (user units) without changing the fitted attributes.

        Parameters
        ----------
        method : {"is", "ais", "grid", "exact"}, default=None
            None: the fitted ``log_partition_method_``.
        n_samples : int, default=None
        random_state : int, RandomState or None, default=None
        **kwargs
            Passed to :func:`estimate_log_partition`.

        Returns
        -------
        LogPartitionEstimate
        """
        check_is_fitted(self)
        return estimate_log_partition(self, method or self.log_partition_method_, n_samples,
                                      random_state=random_state, **kwargs)

    def sample(self, n_samples=1, random_state=None, *, n_proposals=None, n_mcmc_steps=0):
        """Draw samples by sampling-importance-resampling (+ optional MALA steps).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None, default=None
        n_proposals : int, default=None
            Proposals from the noise; default max(20 * n_samples, 10 000).
        n_mcmc_steps : int, default=0
            MALA steps at β = 1 started from the SIR points.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        n_samples = check_integer(n_samples, "n_samples")
        n_prop = max(20 * n_samples, 10_000) if n_proposals is None else check_integer(
            n_proposals, "n_proposals")
        n_mcmc_steps = check_integer(n_mcmc_steps, "n_mcmc_steps", minimum=0)
        energy = self._energy64()
        dev = next(energy.buffers()).device
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(check_random_state(random_state).randint(2**31 - 1)))
        z, ess = sir(energy.log_weight, energy.noise, int(n_samples), n_prop, gen)
        if ess < n_samples:
            warn_user(f"SIR effective sample size {ess:.1f} < n_samples={n_samples}: the "
                      "samples contain duplicates; increase n_proposals or use "
                      "n_mcmc_steps.", UserWarning)
        if n_mcmc_steps:
            for p in energy.parameters():
                p.requires_grad_(False)

            def log_f(x):
                return -energy(x)

            value, grad = value_and_grad(log_f, z)
            log_h = math.log(0.1)
            for k in range(int(n_mcmc_steps)):
                z, value, grad, acc = mala_step(z, value, grad, log_f, math.exp(log_h), gen)
                if k < n_mcmc_steps // 2:
                    log_h += 0.5 * (float(acc.double().mean()) - 0.6)
        return self.mean_ + self.scale_ * z.cpu().numpy()


class _Objective(torch.nn.Module):
    """Training objective: extra parameters (e.g. c, ν̃), state, loss and monitor.

    ``loss(t, e_data, s, s_data, offset, y, z, lq_y=None)`` returns ``(loss, monitor)``;
    ``s_data`` (log weights of the data rows) is passed only when ``needs_s_data``, ``lq_y``
    (log q of the noise rows) only when the energy is untilted.
    """

    needs_s_data = False
    #: the monitor is a (negative) log-likelihood in working units: ``loss_curve_`` adds
    #: ``sum(log(scale_))`` to report it in the user's units (False: a unitless loss, e.g. NCE)
    monitor_in_data_units = True

    def optimizer_name(self, name):
        return name

    def param_groups(self, energy, learning_rate):
        return [{"params": [p for p in energy.parameters() if p.requires_grad]}]

    def before_step(self, t):
        pass

    def info(self):
        return {}

    def finish(self, estimator):
        pass
