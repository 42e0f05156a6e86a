"""One optimisation loop for every neural estimator in fstat.

Two layers:

- :func:`run_training` drives a caller-supplied ``step(iteration)`` closure for up to
  ``max_iter`` iterations (an iteration is an epoch or a single step -- the closure
  decides), keeps the loss curve, evaluates a higher-is-better validation score every
  ``eval_every`` iterations, early-stops with patience and a minimum number of
  iterations, snapshots and restores the best weights, detects non-finite losses and
  shows a tqdm progress bar when ``verbose >= 1``. Losses returned as tensors are
  buffered on the device and flushed to the host only at evaluation time, so a GPU
  loop does not synchronise every step.
- :func:`train_minibatches` builds the epoch closure for the common case: a module,
  a loss on a batch of row indices, full batch or generator-shuffled minibatches
  (a short remainder is merged into the previous batch so no row is dropped),
  optional skipping of non-finite steps with a count.

Helpers: :func:`make_optimizer` (adam, adamw, sgd, momentum), :func:`minibatch_indices`,
:func:`validation_split`, :func:`progress_bar`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ._adam import FusedAdam
from ._warnings import warn_user

__all__ = [
    "TrainingResult",
    "make_optimizer",
    "minibatch_indices",
    "progress_bar",
    "run_training",
    "train_minibatches",
    "validation_split",
]

_SOLVERS = ("adam", "adamw", "sgd", "momentum")


def _param_groups(params):
    """A list of parameter-group dicts from tensors or group dicts."""
    params = list(params)
    if params and isinstance(params[0], dict):
        return [dict(g, params=list(g["params"])) for g in params]
    return [{"params": params}]


def make_optimizer(params, solver="adam", *, learning_rate=1e-3, weight_decay=0.0, momentum=0.9,
                   fused=None):
    """Build a torch optimiser by name.

    Parameters
    ----------
    params : iterable of tensors or of parameter-group dicts
    solver : {"adam", "adamw", "sgd", "momentum"}, default="adam"
        ``"momentum"`` is SGD with (dampened) heavy-ball momentum.
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    momentum : float, default=0.9
        Used by ``"momentum"`` only.
    fused : bool, optional
        ``True`` uses torch's fused Adam/AdamW kernel (the same update, one kernel per
        parameter group instead of about ten operations per tensor; on CPU it cut the
        optimiser's share of a small-network step by about half). For ``"adam"`` on CPU or
        CUDA tensors it is driven by :class:`fstat._adam.FusedAdam`, which gives the same
        trajectory bit for bit without ``torch.optim``'s per-step overhead and without the
        ``torch._dynamo`` import (2-3 s) that a ``torch.optim`` optimiser costs on its first
        construction in a process. ``None``: torch's default. Ignored by the SGD solvers.

    Returns
    -------
    torch.optim.Optimizer or FusedAdam
        Both have ``zero_grad(set_to_none=True)``, ``step()`` and ``param_groups``.
    """
    extra = {} if fused is None else {"fused": bool(fused)}
    if solver == "adam" and fused:
        groups = _param_groups(params)
        # FusedAdam reads only "params" and "lr" per group: other per-group options
        # (weight_decay, betas, ...) go to torch.optim, which honours them
        if all(set(g) <= {"params", "lr"} for g in groups) and all(
                p.device.type in ("cpu", "cuda") and p.is_floating_point()
                for g in groups for p in g["params"]):
            return FusedAdam(groups, learning_rate, weight_decay=weight_decay)
        params = groups
    if solver == "adam":
        return torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay, **extra)
    if solver == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, **extra)
    if solver == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, weight_decay=weight_decay)
    if solver == "momentum":
        return torch.optim.SGD(
            params, lr=learning_rate, weight_decay=weight_decay, momentum=momentum,
            dampening=momentum,
        )
    raise ValueError(f"solver must be one of {_SOLVERS}; got solver={solver!r}.")


def minibatch_indices(n_samples, batch_size, generator, *, shuffle=True, min_last=1,
                      device="cpu"):
    """Split ``range(n_samples)`` into batches of row indices.

    Parameters
    ----------
    n_samples : int
    batch_size : int or None
        ``None`` or ``>= n_samples`` gives one full batch (in order).
    generator : torch.Generator
        CPU generator for the permutation.
    shuffle : bool, default=True
    min_last : int, default=1
        A final remainder with fewer rows than this is appended to the previous batch.
    device : str or torch.device

    Returns
    -------
    list of torch.LongTensor
    """
    if batch_size is None or batch_size >= n_samples:
        return [torch.arange(n_samples, device=device)]
    order = (
        torch.randperm(n_samples, generator=generator) if shuffle else torch.arange(n_samples)
    )
    batches = list(torch.split(order, int(batch_size)))
    if len(batches) > 1 and len(batches[-1]) < min_last:
        tail = batches.pop()
        batches[-1] = torch.cat([batches[-1], tail])
    return [b.to(device) for b in batches]


def validation_split(n_samples, validation_fraction, generator, *, stratify=None,
                     min_validation=1):
    """Random train/validation split of row indices (optionally stratified).

    Parameters
    ----------
    n_samples : int
    validation_fraction : float in (0, 1)
    generator : torch.Generator
    stratify : array-like of shape (n_samples,), optional
        Class labels; each class contributes ``round(fraction * count)`` rows.
    min_validation : int, default=1

    Returns
    -------
    train, validation : ndarray of int64
        Sorted index arrays.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must lie in (0, 1); got {validation_fraction!r}."
        )
    groups = [np.arange(n_samples)] if stratify is None else [
        np.flatnonzero(np.asarray(stratify) == level) for level in np.unique(stratify)
    ]
    validation = []
    for members in groups:
        perm = torch.randperm(len(members), generator=generator).numpy()
        n_val = int(round(validation_fraction * len(members)))
        validation.append(members[perm[:n_val]])
    validation = np.sort(np.concatenate(validation)).astype(np.int64)
    if len(validation) < min_validation or len(validation) >= n_samples:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves {len(validation)} validation "
            f"row(s) out of {n_samples}; at least {min_validation} and fewer than all are needed."
        )
    train = np.setdiff1d(np.arange(n_samples), validation).astype(np.int64)
    return train, validation


class _PlainProgress:
    """Plain-text stand-in for a tqdm bar: one line on stderr per update.

    Used when ``verbose >= 1`` but tqdm is not installed; it has the three methods the
    training loop calls (``update``, ``set_postfix``, ``close``).
    """

    def __init__(self, total, desc=None):
        self.total, self.n = total, 0
        self.desc = desc or "training"
        self.pending = False  # an update not printed yet (waits for its postfix)

    def update(self, n=1):
        if self.pending:
            self._print("")
        self.n += n
        self.pending = True

    def set_postfix(self, **values):
        self._print(" ".join(f"{k}={v}" for k, v in values.items()))

    def _print(self, postfix):
        import sys

        line = f"{self.desc}: {self.n}/{self.total}" + (f" {postfix}" if postfix else "")
        print(line, file=sys.stderr, flush=True)
        self.pending = False

    def close(self):
        if self.pending:
            self._print("")


def progress_bar(total, *, verbose=0, desc=None):
    """A progress display on stderr when ``verbose >= 1``, else ``None``.

    A tqdm bar when tqdm is installed; otherwise a plain-text line per update
    (``"desc: i/total loss=..."``).
    """
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return _PlainProgress(total, desc)
    return tqdm(total=total, desc=desc, leave=False)


@dataclass
class TrainingResult:
    """What a training run recorded.

    Attributes
    ----------
    loss_curve : list of float
        Training loss per iteration.
    loss_terms : dict of str to list of float
        Named loss terms per iteration, when the step returned a dict.
    validation_scores : list of float or None
        Higher-is-better validation score at each evaluation (``None`` without validation).
    validation_iterations : list of int
        The iteration (1-based count of completed iterations) of each evaluation.
    n_iter : int
        Iterations run.
    best_iteration : int or None
        Iteration whose weights were restored (``None`` if nothing was restored).
    best_score : float or None
    stopped_early : bool
    n_nonfinite : int
        Non-finite iterations (or skipped steps, see :func:`train_minibatches`).
    fit_time : float
        Seconds.
    """

    loss_curve: list = field(default_factory=list)
    loss_terms: dict = field(default_factory=dict)
    validation_scores: list | None = None
    validation_iterations: list = field(default_factory=list)
    n_iter: int = 0
    best_iteration: int | None = None
    best_score: float | None = None
    stopped_early: bool = False
    n_nonfinite: int = 0
    fit_time: float = 0.0


def _snapshot(modules):
    return [
        {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for m in modules
    ]


def _restore(modules, states):
    for module, state in zip(modules, states, strict=True):
        module.load_state_dict(state)


def _as_modules(model):
    if model is None:
        return []
    if isinstance(model, torch.nn.Module):
        return [model]
    return list(model)


def _split_terms(value):
    """Return (loss, terms) where terms is a dict of named scalars (possibly empty)."""
    if isinstance(value, dict):
        if "loss" not in value:
            raise KeyError("a step returning a dict must include the key 'loss'")
        return value["loss"], {k: v for k, v in value.items() if k != "loss"}
    return value, {}


class _LossBuffer:
    """Collects per-iteration losses (tensors stay on the device until flushed)."""

    def __init__(self):
        self.pending = []
        self.curve = []
        self.terms = {}

    def add(self, value):
        loss, terms = _split_terms(value)
        self.pending.append((loss, terms))

    def flush(self):
        if not self.pending:
            return []
        losses = [p[0] for p in self.pending]
        if all(isinstance(x, torch.Tensor) for x in losses):
            flushed = torch.stack([x.detach().reshape(()).double() for x in losses]).cpu().tolist()
        else:
            flushed = [float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
                       for x in losses]
        for _, terms in self.pending:
            for name, value in terms.items():
                if isinstance(value, torch.Tensor):
                    value = value.detach()
                self.terms.setdefault(name, []).append(float(value))
        self.pending = []
        self.curve.extend(flushed)
        return flushed


def run_training(
    step: Callable,
    *,
    max_iter: int,
    model=None,
    validate: Callable | None = None,
    eval_every: int = 1,
    early_stopping: bool = False,
    n_iter_no_change: int = 10,
    tol: float = 1e-4,
    min_iter: int = 0,
    restore_best: bool = True,
    verbose: int = 0,
    desc: str | None = None,
    callback: Callable | None = None,
    validate_initial: bool = True,
    stop_on_nonfinite: bool = True,
    restore_on_nonfinite: bool = True,
) -> TrainingResult:
    """Drive ``step`` for up to ``max_iter`` iterations with evaluation and early stopping.

    Parameters
    ----------
    step : callable ``step(iteration) -> loss``
        Does one iteration (an epoch or a step; it owns batching, backward and the
        optimiser step) and returns the iteration's loss: a float, a 0-d tensor, or a
        dict with key ``"loss"`` and other named terms.
    max_iter : int
    model : torch.nn.Module or list of modules, optional
        Whose weights are snapshotted (CPU copies) at the best evaluation and restored.
    validate : callable ``validate() -> float``, optional
        A higher-is-better score, evaluated after iteration 0 (before training, when
        ``early_stopping``) and every ``eval_every`` iterations. Without it, early
        stopping monitors the negative training loss.
    eval_every : int, default=1
        Also the interval at which buffered losses are flushed to the host and
        checked for non-finite values.
    early_stopping : bool, default=False
    n_iter_no_change : int, default=10
        Evaluations without an improvement larger than ``tol`` (absolute, in the
        score's units) after which training stops (once ``min_iter`` iterations have
        run). The snapshot kept is the best score seen, however small its improvement.
    tol : float, default=1e-4
    min_iter : int, default=0
    restore_best : bool, default=True
        Restore the best snapshot at the end (only when there was a validation score
        or early stopping).
    verbose : int, default=0
        ``>= 1`` shows a tqdm bar with the last loss and, with ``validate``, the last
        validation score.
    desc : str, optional
        Progress-bar label.
    callback : callable ``callback(iteration, result) -> bool``, optional
        Called after each flush; returning ``True`` stops training.
    validate_initial : bool, default=True
        Evaluate ``validate`` once before training (iteration 0), so the initial weights
        are a restore candidate. ``False`` scores only trained iterations (then
        ``validation_scores`` has one entry per evaluation after training began).
    stop_on_nonfinite : bool, default=True
        Stop at a non-finite iteration loss (see Notes). ``False`` records it in
        ``loss_curve`` and carries on (the caller handles non-finite values itself,
        as :func:`train_minibatches` does with ``max_consecutive_nonfinite``).
    restore_on_nonfinite : bool, default=True
        At a non-finite loss, restore the best finite snapshot and warn (True), or
        raise ``FloatingPointError`` whatever the snapshots (False: callers whose
        specification makes divergence an error).

    Returns
    -------
    TrainingResult

    Raises
    ------
    FloatingPointError
        A non-finite loss occurred before any finite snapshot existed (or at all, with
        ``restore_on_nonfinite=False``).

    Notes
    -----
    A non-finite loss stops training, restores the best finite snapshot and emits a
    ``ConvergenceWarning``. When no validation score was ever finite, the last weights
    are kept (there is nothing better to restore) with a ``ConvergenceWarning``.
    """
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0; got {max_iter!r}.")
    eval_every = max(1, int(eval_every))
    modules = _as_modules(model)
    monitoring = validate is not None or early_stopping
    result = TrainingResult(validation_scores=[] if validate is not None else None)
    buffer = _LossBuffer()
    best_state = _snapshot(modules) if modules else None
    best_score = -math.inf
    evaluations_without_gain = 0
    if validate is not None and validate_initial:
        score = float(validate())
        result.validation_scores.append(score)
        result.validation_iterations.append(0)
        if math.isfinite(score):  # a NaN or -inf start is no candidate (NaN would stick)
            best_score, result.best_iteration = score, 0
    bar = progress_bar(max_iter, verbose=verbose, desc=desc)
    start = time.perf_counter()
    try:
        iteration = 0
        while iteration < max_iter:
            buffer.add(step(iteration))
            iteration += 1
            if iteration % eval_every and iteration != max_iter:
                continue
            flushed = buffer.flush()
            nonfinite = stop_on_nonfinite and not all(math.isfinite(x) for x in flushed)
            if monitoring and not nonfinite:
                score = float(validate()) if validate is not None else -flushed[-1]
            if bar is not None:
                bar.update(len(flushed))
                postfix = {"loss": f"{flushed[-1]:.4g}"}
                if validate is not None and not nonfinite:
                    postfix["validation"] = f"{score:.4g}"
                bar.set_postfix(**postfix)
            if nonfinite:
                result.n_nonfinite += sum(not math.isfinite(x) for x in flushed)
                result.n_iter = iteration
                if (restore_on_nonfinite and modules and best_state is not None
                        and math.isfinite(best_score)):
                    _restore(modules, best_state)
                    result.best_score = best_score if monitoring else None
                    warn_user(
                        f"Non-finite loss at iteration {iteration}; training stopped and the best "
                        "finite weights were restored. Lower the learning rate.",
                        ConvergenceWarning,
                    )
                    return _finish(result, buffer, start, bar)
                raise FloatingPointError(
                    f"Non-finite loss at iteration {iteration} and no finite checkpoint exists; "
                    "lower the learning rate or check the input scale."
                )
            if monitoring:
                if validate is not None:
                    result.validation_scores.append(score)
                    result.validation_iterations.append(iteration)
                significant = not math.isfinite(best_score) or score > best_score + tol
                evaluations_without_gain = 0 if significant else evaluations_without_gain + 1
                if score > best_score:
                    best_score, result.best_iteration = score, iteration
                    if modules:
                        best_state = _snapshot(modules)
                if (
                    early_stopping
                    and evaluations_without_gain >= n_iter_no_change
                    and iteration >= min_iter
                ):
                    result.stopped_early = True
                    break
            if callback is not None and callback(iteration, result):
                break
        result.n_iter = iteration
        if monitoring and not math.isfinite(best_score) and iteration > 0:
            result.best_iteration = None
            warn_user(
                "No finite validation score during training; the last weights are kept.",
                ConvergenceWarning,
            )
        elif monitoring and restore_best and modules and best_state is not None:
            _restore(modules, best_state)
        if monitoring:
            result.best_score = best_score if math.isfinite(best_score) else None
        else:
            result.best_iteration = None
    finally:
        if bar is not None:
            bar.close()
    return _finish(result, buffer, start, None)


def _finish(result, buffer, start, bar):
    buffer.flush()
    result.loss_curve = buffer.curve
    result.loss_terms = buffer.terms
    result.fit_time = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return result


def train_minibatches(
    model,
    loss_fn: Callable,
    n_samples: int,
    *,
    optimizer,
    generator: torch.Generator,
    max_epochs: int,
    batch_size=None,
    min_last_batch: int = 1,
    skip_nonfinite: bool = False,
    max_consecutive_nonfinite: int | None = None,
    device="cpu",
    on_epoch: Callable | None = None,
    **loop_options,
) -> TrainingResult:
    """Epoch-based training on row-index minibatches.

    Parameters
    ----------
    model : torch.nn.Module or list of modules
        Put in train mode; snapshotted for best-weight restore.
    loss_fn : callable ``loss_fn(batch_index) -> loss``
        Loss (0-d tensor, or dict with ``"loss"`` and named terms) on the rows
        ``batch_index`` (a LongTensor on ``device``).
    n_samples : int
    optimizer : torch.optim.Optimizer
    generator : torch.Generator
        CPU generator for the per-epoch permutations.
    max_epochs : int
    batch_size : int or None, default=None
        ``None`` means full batch.
    min_last_batch : int, default=1
        Merge a shorter final remainder into the previous batch.
    skip_nonfinite : bool, default=False
        Skip (do not apply) steps whose loss is non-finite and count them in
        ``n_nonfinite``; an epoch with no finite step reports NaN for its loss and every named term.
    max_consecutive_nonfinite : int, optional
        With ``skip_nonfinite``: stop training at exactly this many consecutive
        skipped steps (counted across epoch boundaries, reset by any finite step),
        keep the best weights as after an early stop (the last finite update without
        monitoring) and emit a ``ConvergenceWarning``. Epochs with no finite step then
        record NaN in ``loss_curve`` and training continues; ``n_nonfinite`` counts
        skipped steps only.
    device : str or torch.device
    on_epoch : callable, optional
        ``on_epoch(batches)`` with the epoch's list of batch indices, before its first
        step (to prepare data-only terms of all its batches at once); ``loss_fn`` then
        receives those same index tensors, in order.
    **loop_options
        Passed to :func:`run_training` (``validate``, ``early_stopping``, ``eval_every``,
        ``n_iter_no_change``, ``tol``, ``min_iter``, ``restore_best``, ``verbose``,
        ``desc``, ``callback``).

    Returns
    -------
    TrainingResult
        ``loss_curve`` holds the row-weighted mean training loss of each epoch.
    """
    modules = _as_modules(model)
    skipped = [0]
    limit = max_consecutive_nonfinite
    if limit is not None and (not skip_nonfinite or int(limit) < 1):
        raise ValueError(
            "max_consecutive_nonfinite must be an int >= 1 and needs skip_nonfinite=True; "
            f"got max_consecutive_nonfinite={limit!r}, skip_nonfinite={skip_nonfinite!r}."
        )
    streak = {"run": 0, "stop": False}

    def epoch(_):
        for module in modules:
            module.train()
        batches = minibatch_indices(
            n_samples, batch_size, generator, min_last=min_last_batch, device=device
        )
        if on_epoch is not None:
            on_epoch(batches)
        total, weight, terms_total = 0.0, 0, {}
        loss, terms = None, {}
        for index in batches:
            optimizer.zero_grad(set_to_none=True)
            loss, terms = _split_terms(loss_fn(index))
            if skip_nonfinite and not bool(torch.isfinite(loss.detach())):
                skipped[0] += 1
                streak["run"] += 1
                if limit is not None and streak["run"] >= limit:
                    streak["stop"] = True
                    break
                continue
            streak["run"] = 0
            loss.backward()
            optimizer.step()
            rows = len(index)
            total = total + loss.detach() * rows
            weight += rows
            for name, value in terms.items():
                terms_total[name] = terms_total.get(name, 0.0) + value.detach() * rows
        if weight == 0:  # no finite step: NaN for the loss and every term, on their device
            nan = torch.tensor(float("nan")) if loss is None else torch.full_like(
                loss.detach().reshape(()), float("nan"))
            return {"loss": nan, **dict.fromkeys(terms, nan)} if terms else nan
        mean = total / weight
        if not terms_total:
            return mean
        return {"loss": mean, **{k: v / weight for k, v in terms_total.items()}}

    if limit is not None:
        user_callback = loop_options.pop("callback", None)

        def callback(iteration, result):
            if streak["stop"]:
                return True
            return bool(user_callback(iteration, result)) if user_callback else False

        loop_options.update(callback=callback, stop_on_nonfinite=False)
    result = run_training(epoch, max_iter=max_epochs, model=model, **loop_options)
    result.n_nonfinite += skipped[0]
    if streak["stop"]:
        warn_user(
            f"{limit} consecutive non-finite training losses at epoch {result.n_iter}; "
            "training stopped and the best weights were kept. Lower the learning rate or "
            "use dtype='float64'.",
            ConvergenceWarning,
        )
    for module in modules:
        module.eval()
    return result


def copy_module_to_cpu(module, dtype=torch.float64):
    """A deep copy of ``module`` on the CPU in ``dtype`` (eval mode), for fitted state."""
    clone = copy.deepcopy(module).to("cpu", dtype)
    clone.eval()
    return clone
