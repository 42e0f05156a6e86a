"""Estimation of the log-partition function log Z = log ∫ exp(-E(z)) dz.

Importance sampling (``"is"``), annealed importance sampling (``"ais"``, MALA transitions),
a midpoint quadrature grid (``"grid"``, d <= 2) and the closed form of the untilted quadratic
energy (``"exact"``). All computations in float64; IS/AIS/grid evaluate in chunks, so memory
does not grow with the number of draws.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch

from .._sklearn_compat import check_is_fitted
from .._torch import make_generator, resolve_device
from .._validation import check_integer, check_positive, check_unit_interval
from .._warnings import warn_user
from ._energies import evaluate_no_grad, use_inplace_activations
from ._sampling import mala_step, value_and_grad

__all__ = ["LogPartitionEstimate", "PartitionEstimateWarning", "estimate_log_partition"]


class PartitionEstimateWarning(UserWarning):
    """The log-partition estimate is unreliable (low effective sample size)."""


class LogPartitionEstimate(NamedTuple):
    """A log-partition estimate with its delta-method standard error and ESS."""

    log_z: float
    se: float
    ess: float
    n_samples: int
    method: str


class _WeightAccumulator:
    """Streaming log-mean-exp, ESS and chi^2 of log-weights (rescaled running sums)."""

    def __init__(self):
        self.shift = -math.inf
        self.s1 = 0.0
        self.s2 = 0.0
        self.count = 0

    def add(self, s):
        s = s.double()
        s = torch.where(torch.isnan(s), torch.full_like(s, -math.inf), s)
        self.count += s.numel()
        top = float(s.max()) if s.numel() else -math.inf
        if top == math.inf:
            raise ValueError("a log-weight is +inf: the energy is unbounded below (Z infinite).")
        new_shift = max(self.shift, top)
        if new_shift == -math.inf:
            return
        if self.shift > -math.inf:
            r = math.exp(self.shift - new_shift)
            self.s1 *= r
            self.s2 *= r * r
        w = torch.exp(s - new_shift)
        self.s1 += float(w.sum())
        self.s2 += float((w * w).sum())
        self.shift = new_shift

    def result(self, method):
        m = self.count
        if self.s1 == 0.0:
            return LogPartitionEstimate(-math.inf, math.inf, 0.0, m, method)
        log_z = self.shift + math.log(self.s1) - math.log(m)
        ess = self.s1**2 / self.s2
        chi2 = max(m * self.s2 / self.s1**2 - 1.0, 0.0)
        return LogPartitionEstimate(log_z, math.sqrt(chi2 / m), ess, m, method)


def log_weight_stats(s):
    """(log Z-hat, se, ESS) of a 1-D tensor of log-weights."""
    acc = _WeightAccumulator()
    acc.add(torch.as_tensor(s))
    est = acc.result("is")
    return est.log_z, est.se, est.ess


def _is(model, noise, n, chunk, generator):
    acc = _WeightAccumulator()
    remaining = n
    with torch.no_grad():
        while remaining > 0:
            k = min(chunk, remaining)
            y = noise.sample(k, generator)
            acc.add(evaluate_no_grad(model.log_weight, y))
            remaining -= k
    return acc.result("is")


def _ais_run(model, noise, n_chains, betas, n_steps, step_sizes, generator, target_accept,
             adapt):
    x = noise.sample(n_chains, generator)
    with torch.no_grad():
        s = model.log_weight(x)
    logw = torch.zeros(n_chains, dtype=torch.float64, device=x.device)
    sizes = list(step_sizes)
    log_h = math.log(sizes[0])
    used = []
    K = len(betas) - 1
    for k in range(1, K + 1):
        logw = logw + (betas[k] - betas[k - 1]) * s.double()
        if k == K:
            break
        beta = betas[k]

        def log_f(z, beta=beta):
            lq = noise(z)
            val = lq + beta * model.log_weight(z, lq)
            return torch.where(torch.isfinite(lq), val, torch.full_like(val, -math.inf))

        h = math.exp(log_h) if adapt else sizes[k - 1]
        used.append(h)
        value, grad = value_and_grad(log_f, x)
        acc_total = 0.0
        for _ in range(n_steps):
            x, value, grad, accept = mala_step(x, value, grad, log_f, h, generator)
            acc_total += float(accept.double().mean()) if adapt else 0.0
        if adapt:
            log_h += 0.5 * (acc_total / max(n_steps, 1) - target_accept)
        with torch.no_grad():
            s = model.log_weight(x)
    return logw, used


def _ais(model, noise, n_chains, n_temperatures, n_steps, step_size, target_accept, generator):
    K = int(n_temperatures)
    betas = [(k / K) ** 4 for k in range(K + 1)]
    if K > 1:
        pilot = max(64, n_chains // 10)
        _, sizes = _ais_run(model, noise, pilot, betas, n_steps, [step_size], generator,
                            target_accept, adapt=True)
    else:
        sizes = [step_size]
    logw, _ = _ais_run(model, noise, n_chains, betas, n_steps, sizes, generator, target_accept,
                       adapt=False)
    acc = _WeightAccumulator()
    acc.add(logw)
    return acc.result("ais")


def _grid(model, bounds, grid_size, chunk):
    d = len(bounds)
    axes, log_delta = [], 0.0
    for lo, hi in bounds:
        delta = (hi - lo) / grid_size
        axes.append(lo + delta * (np.arange(grid_size) + 0.5))
        log_delta += math.log(delta)
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    acc = _WeightAccumulator()
    dev = next(iter(model.buffers()), torch.zeros(0)).device
    with torch.no_grad():
        for start in range(0, len(mesh), chunk):
            z = torch.tensor(mesh[start:start + chunk], dtype=torch.float64, device=dev)
            acc.add(-evaluate_no_grad(model, z))
    est = acc.result("grid")
    log_z = est.log_z + math.log(len(mesh)) + log_delta
    return LogPartitionEstimate(log_z, 0.0, math.inf, len(mesh), "grid")


def check_options(*, n_temperatures=1000, n_mcmc_steps=2, step_size=0.1, target_accept=0.6,
                  chunk_size=65536, grid_size=None, **_):
    """The numeric options of :func:`estimate_log_partition`, validated (a ValueError naming
    the option); the others (``bounds``, ``device``, ``noise``...) are ignored here."""
    return (check_integer(n_temperatures, "n_temperatures"),
            check_integer(n_mcmc_steps, "n_mcmc_steps", minimum=0),
            check_positive(step_size, "step_size"),
            check_unit_interval(target_accept, "target_accept", closed_right=False),
            check_integer(chunk_size, "chunk_size"),
            None if grid_size is None else check_integer(grid_size, "grid_size"))


def _check_bounds(bounds, d):
    """``bounds`` as d finite ``(low, high)`` pairs with ``low < high``."""
    try:
        array = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or not numeric
        array = np.full((0,), np.nan)
    if (array.shape != (d, 2) or not np.all(np.isfinite(array))
            or np.any(array[:, 0] >= array[:, 1])):
        raise ValueError(f"bounds must be {d} finite (low, high) pairs with low < high; got "
                         f"bounds={bounds!r}.")
    return [tuple(pair) for pair in array]


def _warn_if_proposal_truncates(proposal, support):
    """Warn when a uniform proposal's box does not contain the model's support (the box
    of the model's own uniform noise, or all of R^d): IS and AIS then integrate only
    inside the box and underestimate log Z."""
    from ._noise import UniformNoise

    if proposal is support or not isinstance(proposal, UniformNoise):
        return
    covered = isinstance(support, UniformNoise) and bool(
        np.all(proposal.low_ <= support.low_) and np.all(proposal.high_ >= support.high_))
    if not covered:
        warn_user("the uniform proposal's box does not cover the model's support: "
                  "importance sampling integrates the model inside the box only, so log Z "
                  "is underestimated by the mass outside it.", UserWarning)


def _default_bounds(noise_obj, data_range):
    from ._noise import UniformNoise

    if isinstance(noise_obj, UniformNoise):
        return list(zip(noise_obj.low_, noise_obj.high_, strict=True))
    lo, hi = data_range
    return [(a - 4.0, b + 4.0) for a, b in zip(lo, hi, strict=True)]


class _AgainstProposal(torch.nn.Module):
    """A tilted energy ``E = f - log q`` with log importance weights ``-E - log p`` against
    a proposal ``p`` other than its own ``q`` (``q`` stays inside ``E``: replacing it would
    change the model)."""

    def __init__(self, energy, proposal):
        super().__init__()
        self.energy = energy
        self.noise = proposal

    def forward(self, z):
        return self.energy(z)

    def log_weight(self, y, log_q=None):
        return -self.energy(y) - (self.noise(y) if log_q is None else log_q)

    def exact_log_partition(self):
        return self.energy.exact_log_partition()


def _against(energy, noise_obj):
    """``energy`` whose ``log_weight`` and ``noise`` refer to the proposal ``noise_obj``."""
    if not energy.tilted:  # the noise only enters the weights
        energy.noise = noise_obj._module()
        return energy
    return _AgainstProposal(energy, noise_obj._module())


def _working_model(model, noise, device):
    """(float64-ready energy with weights against the proposal, proposal noise object,
    the noise whose box (if uniform) bounds the default grid, user-space shift, data
    range, device). The grid integrates the model, so a fitted model's own noise, not a
    user proposal, sets its box."""
    from ._energies import EnergyModel

    if isinstance(model, torch.nn.Module):
        if noise is None:
            raise ValueError("estimate_log_partition with a torch.nn.Module needs noise=.")
        energy = copy.deepcopy(model)
        if not isinstance(energy, EnergyModel):
            energy = EnergyModel(energy, noise._module(), tilted=False)
        return (_against(energy, noise), noise, noise, 0.0, None,
                resolve_device(device or "cpu"))
    from ._base import _BaseEnergyDensity

    if isinstance(model, _BaseEnergyDensity):
        check_is_fitted(model)
    if not hasattr(model, "energy_module_"):
        raise TypeError(
            "model must be a fitted fstat EBM or a torch.nn.Module energy; got "
            f"{type(model).__name__}."
        )
    energy = copy.deepcopy(model.energy_module_)
    energy.noise = model.noise_._module()
    if noise is not None:
        energy = _against(energy, noise)
    device = model._eval_device() if device is None else resolve_device(device)
    shift = float(np.log(model.scale_).sum())
    noise_obj = noise if noise is not None else model.noise_
    return energy, noise_obj, model.noise_, shift, model._data_range_, device


def estimate_log_partition(model, method="is", n_samples=None, *, noise=None,
                           n_temperatures=1000, n_mcmc_steps=2, step_size=0.1,
                           target_accept=0.6, grid_size=None, bounds=None, chunk_size=65536,
                           device=None, random_state=None, verbose=0):
    """Estimate log Z of an energy-based model.

    Parameters
    ----------
    model : fitted CompositionalEBM / NCEDensity / SNLDensity, or torch.nn.Module
        A fitted fstat EBM (result in user units: working-space log Z plus Σ log ``scale_``)
        or a module mapping working-space points (n, d) to energies (n,), together with
        ``noise`` (working-space result).
    method : {"is", "ais", "grid", "exact"}, default="is"
    n_samples : int, default=None
        IS draws (default 100 000) or AIS chains (default 1 000). Must be None for
        "grid" and "exact".
    noise : fstat noise object, default=None
        Fitted proposal (working space). Defaults to the model's ``noise_``. Only the
        proposal changes: a tilted model's energy keeps the noise it was fitted with.
    n_temperatures : int, default=1000
        AIS: number K of annealing steps, β_k = (k/K)^4.
    n_mcmc_steps : int, default=2
        AIS: MALA steps per temperature.
    step_size : float, default=0.1
        AIS: initial MALA step size of the pilot run.
    target_accept : float, default=0.6
    grid_size : int, default=None
        Grid points per axis (4001 for d = 1, 512 for d = 2).
    bounds : sequence of (low, high), default=None
        Grid bounds in working space (default: data range ± 4, or the box of the model's
        own uniform noise; a user ``noise`` does not change the grid).
    chunk_size : int, default=65536
    device : str, default=None
        Defaults to the model's device when available, else CPU.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        Unused (kept for API symmetry).

    Returns
    -------
    LogPartitionEstimate
        ``(log_z, se, ess, n_samples, method)``; se is the delta-method standard error of
        log Ẑ, sqrt(χ̂²/M); ESS = (Σw)²/Σw². ``se = 0`` and ``ess = inf`` for grid/exact.

    Warns
    -----
    PartitionEstimateWarning
        When the IS/AIS effective sample size is below ``max(100, 1e-4 M)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from fstat.ebm import GaussianNoise, estimate_log_partition
    >>> class Half(torch.nn.Module):
    ...     def forward(self, z):
    ...         return 0.5 * (z ** 2).sum(1)
    >>> q = GaussianNoise(mean=[0.0], covariance=[[2.0]]).fit(None)
    >>> est = estimate_log_partition(Half(), "is", 20000, noise=q, random_state=0)
    >>> bool(abs(est.log_z - 0.5 * np.log(2 * np.pi)) < 0.02)
    True
    """
    if method not in ("is", "ais", "grid", "exact"):
        raise ValueError(f"method must be 'is', 'ais', 'grid' or 'exact'; got method={method!r}.")
    if method in ("grid", "exact") and n_samples is not None:
        raise ValueError(f"n_samples must be None for method={method!r}; got {n_samples!r}.")
    if n_samples is not None:
        n_samples = check_integer(n_samples, "n_samples")
    n_temperatures, n_mcmc_steps, step_size, target_accept, chunk_size, grid_size = (
        check_options(n_temperatures=n_temperatures, n_mcmc_steps=n_mcmc_steps,
                      step_size=step_size, target_accept=target_accept,
                      chunk_size=chunk_size, grid_size=grid_size))
    energy, noise_obj, support, shift, data_range, dev = _working_model(model, noise, device)
    if method in ("is", "ais"):
        _warn_if_proposal_truncates(noise_obj, support)
    energy = energy.to(dev, torch.float64).eval()
    for p in energy.parameters():
        p.requires_grad_(False)
    if method in ("is", "grid"):  # no gradients needed
        use_inplace_activations(getattr(energy, "energy", energy))
    noise_mod = energy.noise
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=make_generator(random_state))))
    d = noise_obj.n_features_in_
    if method == "is":
        est = _is(energy, noise_mod, int(n_samples or 100_000), int(chunk_size), gen)
    elif method == "ais":
        if not getattr(noise_mod, "differentiable", True):
            raise ValueError("method='ais' needs a differentiable built-in noise; the noise is "
                             "an adapter object.")
        est = _ais(energy, noise_mod, int(n_samples or 1000), n_temperatures, n_mcmc_steps,
                   step_size, target_accept, gen)
    elif method == "grid":
        if d > 2:
            raise ValueError(f"method='grid' needs d <= 2; got d={d}.")
        if bounds is None:
            if data_range is None and not hasattr(support, "low_"):
                c = support._center()
                data_range = (c - 4.0, c + 4.0)
            bounds = _default_bounds(support, data_range)
        bounds = _check_bounds(bounds, d)
        size = grid_size or (4001 if d == 1 else 512)
        est = _grid(energy, bounds, int(size), int(chunk_size))
    else:
        est = LogPartitionEstimate(energy.exact_log_partition(), 0.0, math.inf, 0, "exact")
    warn_if_degenerate(est)
    return est._replace(log_z=est.log_z + shift)


def warn_if_degenerate(est):
    """Emit :class:`PartitionEstimateWarning` when the IS/AIS ESS is too small."""
    if est.method in ("is", "ais") and est.ess < max(100.0, 1e-4 * est.n_samples):
        warn_user(
            f"log-partition estimate ({est.method}) has effective sample size {est.ess:.1f} "
            f"of {est.n_samples} (se={est.se:.3g}); use AIS (method='ais', or "
            "logz_method='ais' in the estimators) or more samples.",
            PartitionEstimateWarning)
