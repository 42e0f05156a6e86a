"""Training of the batched dual networks (one per fold x divergence x sign)."""

from __future__ import annotations

import math

import torch

from .._training import make_optimizer, minibatch_indices, progress_bar
from ..divergences import get_divergence
from ._batched_mlp import BatchedMLP
from ._risk import surrogate_conjugate

__all__ = ["dual_outputs", "fit_dual_groups", "group_generator", "train_full_batch",
           "train_groups"]


def _key(key):
    if isinstance(key, str):  # stable across processes (unlike hash())
        return sum((i + 1) * 131 ** (i % 7) * ord(c) for i, c in enumerate(key))
    return int(key)


def group_seed(seed, *keys):
    """A seed in ``[0, 2^61 - 1)`` derived from a base seed and keys (fold index, divergence
    name, ...): the same keys give the same seed whatever the group's position."""
    value = int(seed) % (2**61 - 1)
    for key in keys:
        value = (value * 1_000_003 + _key(key) + 1) % (2**61 - 1)
    return value


def group_generator(seed, *keys):
    """A CPU generator seeded by :func:`group_seed`."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(group_seed(seed, *keys))
    return gen


def _make_adam(params, learning_rate, weight_decay):
    """Adam through torch's fused kernel (:class:`fstat._adam.FusedAdam`: the same update as
    ``torch.optim.Adam(fused=True)``, without its first-use ``torch._dynamo`` import)."""
    return make_optimizer(params, "adam", learning_rate=learning_rate,
                          weight_decay=weight_decay, fused=True)


def train_full_batch(model, loss_fn, *, max_iter, learning_rate, weight_decay, verbose=0,
                     desc="training"):
    """Full-batch Adam; ``loss_fn()`` returns per-group losses (G,). Returns the loss curve."""
    result = train_groups(model, lambda step: loss_fn(), max_iter=max_iter,
                          learning_rate=learning_rate, weight_decay=weight_decay,
                          verbose=verbose, desc=desc)
    return result["curve"]


def train_groups(model, loss_fn, *, max_iter, learning_rate, weight_decay, validate=None,
                 eval_every=10, n_iter_no_change=10, tol=1e-4, verbose=0, desc="training"):
    """Adam on a sum of per-group losses, with optional per-group early stopping.

    ``loss_fn(step)`` returns the per-group losses (G,) of optimiser step ``step`` (the
    closure picks its minibatch, if any). With ``validate`` (a no-grad callable returning
    per-group validation losses (G,), lower is better), every ``eval_every`` steps each group
    whose loss fell below ``best - tol * |best|`` takes a snapshot of its own parameters;
    training stops once no group has improved for ``n_iter_no_change`` checks in a row, and
    every group is restored to its best snapshot. No host synchronisation happens between
    checks.

    Returns
    -------
    dict with ``curve`` (n_steps, G) float64 CPU tensor, ``validation`` (n_checks, G) float64
    CPU tensor or None, ``n_iter`` (steps run) and ``best_iteration`` (G,) int ndarray or None.
    """
    params = list(model.parameters())
    optimizer = _make_adam(params, learning_rate, weight_decay)
    curve, val_curve = [], []
    best = best_state = best_iter = None
    stale, n_iter = 0, 0
    bar = progress_bar(max_iter, verbose=verbose, desc=desc)
    for step in range(max_iter):
        optimizer.zero_grad(set_to_none=True)
        per_group = loss_fn(step)
        per_group.sum().backward()
        optimizer.step()
        curve.append(per_group.detach())
        n_iter = step + 1
        if bar is not None:
            bar.update(1)
        if validate is None or n_iter % eval_every:
            continue
        with torch.no_grad():
            score = validate().to(torch.float64)
            val_curve.append(score)
            if best is None:
                best = torch.full_like(score, math.inf)
                best_state = [p.detach().clone() for p in params]
                best_iter = torch.zeros(score.shape, dtype=torch.int64)
            improved = score < best - tol * torch.where(torch.isfinite(best), best.abs(),
                                                        torch.zeros_like(best))
            best = torch.where(improved, score, best)
            for p, snap in zip(params, best_state):  # per group, without a host sync
                keep = improved.view(-1, *[1] * (p.dim() - 1))
                snap.copy_(torch.where(keep, p.detach(), snap))
            improved_cpu = improved.cpu()
            best_iter[improved_cpu] = n_iter
        stale = 0 if bool(improved_cpu.any()) else stale + 1
        if stale >= n_iter_no_change:
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        with torch.no_grad():
            for p, snap in zip(params, best_state):
                p.copy_(snap)
    out = torch.stack(curve).to("cpu", torch.float64) if curve else torch.zeros(0)
    val = torch.stack(val_curve).to("cpu", torch.float64) if val_curve else None
    return {"curve": out, "validation": val, "n_iter": n_iter,
            "best_iteration": None if best_iter is None else best_iter.numpy()}


# ----------------------------------------------------------------------------------------------
# the dual networks of the conditional bounds
# ----------------------------------------------------------------------------------------------
#: folds longer than this are trained on minibatches of ``MINIBATCH_SIZE`` rows (batch_size="auto")
MINIBATCH_THRESHOLD = 131_072
MINIBATCH_SIZE = 65_536
_SOFTPLUS_INV_HALF = math.log(math.expm1(0.5))


def divergence_runs(names):
    """Contiguous runs ``[(name, slice), ...]`` of a per-group list of divergence names."""
    runs, start = [], 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            runs.append((names[start], slice(start, i)))
            start = i
    return runs


def dual_outputs(out, f0, margin, declared):
    """``(lam, u)`` (G, n, 2) from the raw output (G, n, 4); ``f0`` (G,) per-group f(0).

    With a declared support ``u = 1 - lam (f(0) - margin) + softplus(v)`` is feasible for
    every standardised outcome by construction; otherwise ``u = v``.
    """
    lam = torch.exp(torch.clamp(out[..., :2], -20.0, 20.0))
    v = out[..., 2:]
    if not declared:
        return lam, v
    f0 = torch.as_tensor(f0, dtype=out.dtype, device=out.device)[:, None, None]
    return lam, 1.0 - lam * (f0 - margin) + torch.nn.functional.softplus(v)


def _risk_terms(e1, a, names, dtype):
    """Observed-arm radius (G, L) and debiasing coefficients (G, L, 2), float64 -> dtype."""
    e = torch.stack([1.0 - e1, e1], dim=-1)
    rad = torch.empty_like(e)
    drad = torch.empty_like(e)
    for name, sl in divergence_runs(names):
        div = get_divergence(name)
        rad[sl], drad[sl] = div.radius(e[sl]), div.radius_derivative(e[sl])
    onehot = torch.nn.functional.one_hot(a, 2).to(e.dtype)
    rad_obs = rad.gather(2, a.unsqueeze(-1)).squeeze(-1)
    return rad_obs.to(dtype), (e * drad * (onehot - e)).to(dtype)


def fit_dual_groups(data, names, keys, *, seed, declared, hidden, activation, dtype, device,
                    max_iter, learning_rate, weight_decay, debiased, margin, penalty,
                    validation=None, n_iter_no_change=10, verbose=0, desc="dual networks"):
    """Train the batched dual networks of a set of groups; a picklable joblib task.

    Parameters
    ----------
    data : dict of ndarray
        ``x`` (G, L, d) float64 standardised covariates, ``y`` (G, L) signed standardised
        outcome, ``a`` (G, L) int arms, ``e`` (G, L) out-of-fold e_1, ``w`` (G, L) weights
        (zero for padding).
    names : list of str
        Divergence of each group (contiguous runs).
    keys : list of tuple
        Initialisation keys of each group (fold, divergence name).
    validation : ndarray of bool (G, L), optional
        Early-stopping rows (excluded from training); None trains on every row.
    verbose : int, default=0
        A progress bar over the training steps when >= 1.
    desc : str, default="dual networks"
        The progress bar's label.

    Returns
    -------
    dict with ``state`` (CPU float64 state dict), ``curve`` (n_iter, G), ``validation``
    ((n_checks, G) or None), ``n_iter``, ``best_iteration``.
    """
    device = torch.device(device)
    dtype = torch.float32 if str(dtype) in ("float32", "torch.float32") else torch.float64
    x = torch.as_tensor(data["x"]).to(device=device, dtype=dtype)
    y = torch.as_tensor(data["y"], dtype=torch.float64).to(device)
    a = torch.as_tensor(data["a"]).to(device)
    w = torch.as_tensor(data["w"], dtype=torch.float64).to(device)
    gens = [group_generator(seed, *key) for key in keys]
    net = BatchedMLP(len(gens), x.shape[2], hidden, 4, gens, activation=activation,
                     dtype=dtype, device=device)
    with torch.no_grad():
        last = net.biases[-1]
        last[..., :2] = 0.0
        if declared:
            last[..., 2:] = _SOFTPLUS_INV_HALF
        else:
            top = torch.where(w > 0, y, torch.full_like(y, -math.inf)).max(dim=1).values
            last[..., 2:] = (top.to(dtype) + 1.0)[:, None, None]
    rad_obs, corr = _risk_terms(torch.as_tensor(data["e"], dtype=torch.float64).to(device),
                                a, names, dtype)
    # on the device once (a Python list would be copied to the device at every step)
    f0 = torch.tensor([get_divergence(nm).f0 for nm in names], dtype=dtype, device=device)
    runs = [(get_divergence(nm), sl) for nm, sl in divergence_runs(names)]
    target, a_idx = y.to(dtype), a.unsqueeze(-1)
    if validation is None:
        w_fit, w_val = w, None
    else:
        val = torch.as_tensor(validation).to(device)
        w_fit, w_val = torch.where(val, 0.0, w), torch.where(val, w, 0.0)

    def per_sample(rows=slice(None)):
        lam, u = dual_outputs(net(x[:, rows]), f0, margin, declared)
        ai = a_idx[:, rows]
        lam_a, u_a = lam.gather(2, ai).squeeze(-1), u.gather(2, ai).squeeze(-1)
        t = (target[:, rows] - u_a) / lam_a
        gstar = torch.cat([surrogate_conjugate(t[sl], div, margin, penalty)
                           for div, sl in runs])
        loss = lam_a * (rad_obs[:, rows] + gstar) + u_a
        if debiased:
            loss = loss + (corr[:, rows] * lam).sum(dim=-1)
        return loss

    def normalised(weights):
        return (weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-300)).to(dtype)

    length = x.shape[1]
    if length > MINIBATCH_THRESHOLD:
        gen = group_generator(seed, "minibatch")
        batches = []

        def loss_fn(step):
            if not batches:
                batches.extend(minibatch_indices(length, MINIBATCH_SIZE, gen,
                                                 min_last=MINIBATCH_SIZE // 2, device=device))
            rows = batches.pop(0)
            return (normalised(w_fit[:, rows]) * per_sample(rows)).sum(dim=1)
    else:
        wn = normalised(w_fit)

        def loss_fn(step):
            return (wn * per_sample()).sum(dim=1)

    validate = None
    if w_val is not None:
        wv = normalised(w_val)

        def validate():
            return (wv * per_sample()).sum(dim=1)

    result = train_groups(net, loss_fn, max_iter=max_iter, learning_rate=learning_rate,
                          weight_decay=weight_decay, validate=validate,
                          n_iter_no_change=n_iter_no_change, verbose=verbose, desc=desc)
    result["state"] = {k: v.detach().to("cpu", torch.float64)
                       for k, v in net.state_dict().items()}
    return result
