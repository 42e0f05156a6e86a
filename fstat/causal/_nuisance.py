"""Cross-fitted nuisance models: propensity classifiers and pseudo-outcome regressors."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier

from .._warnings import warn_user
from ._batched_mlp import BatchedMLP
from ._dualnet import group_generator, train_full_batch

__all__ = ["fit_propensities", "fit_batched_regression", "predict_batched_regression",
           "select_groups"]


def _fit_with_weight(model, X, y, sample_weight):
    if sample_weight is None:
        return model.fit(X, y)
    parameters = inspect.signature(model.fit).parameters
    forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if "sample_weight" not in parameters and not forwards:  # fit(**params) may route them
        raise ValueError(
            f"{type(model).__name__}.fit does not accept sample_weight, but sample_weight was "
            "given; use a nuisance model that supports it or drop the weights."
        )
    return model.fit(X, y, sample_weight=sample_weight)


def seeded_clone(template, seed):
    """A clone of ``template`` with ``random_state=seed`` where it has one left at None
    (seeds are drawn up front, so fits are reproducible and n_jobs-independent)."""
    model = clone(template)
    params = model.get_params()
    if "random_state" in params and params["random_state"] is None:
        model.set_params(random_state=seed)
    return model


def _fit_one_propensity(template, seed, X, a, w):
    return _fit_with_weight(seeded_clone(template, seed), X, a, w)


def fit_propensities(propensity_model, X, a, w, folds, seeds, clip, n_jobs):
    """Fit one propensity model per fold on its training part; out-of-fold clipped e_1."""
    template = propensity_model
    if template is None:
        template = HistGradientBoostingClassifier()
    if not hasattr(template, "predict_proba"):
        raise TypeError(
            f"propensity_model must have predict_proba; got {type(template).__name__}."
        )
    models = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one_propensity)(template, seeds[k], X[tr], a[tr],
                                     None if w is None else w[tr])
        for k, (tr, _) in enumerate(folds)
    )
    oof = np.empty(X.shape[0])
    for model, (_, te) in zip(models, folds):
        oof[te] = positive_class_proba(model, X[te])
    clipped = (oof < clip) | (oof > 1 - clip)
    fraction = float(np.mean(clipped))
    if fraction > 0:
        warn_user(
            f"{fraction:.2%} of the out-of-fold propensities were clipped to "
            f"[{clip}, {1 - clip}] (propensity_clip).",
            UserWarning,
        )
    return models, np.clip(oof, clip, 1 - clip), fraction


def positive_class_proba(model, X):
    proba = model.predict_proba(X)
    classes = list(getattr(model, "classes_", [0, 1]))
    return np.asarray(proba[:, classes.index(1)], dtype=np.float64)


def fit_batched_regression(inputs, targets, arms, weights, *, seed, keys, hidden=(32, 32),
                           max_iter=300, learning_rate=3e-3, weight_decay=1e-4, dtype, device,
                           activation="relu"):
    """One small MLP per group with two arm heads; squared error on the observed arm.

    ``inputs`` (G, L, d), ``targets`` (G, L), ``arms`` (G, L) int, ``weights`` (G, L) (zero for
    padding); ``keys`` seed each group's initialisation. Targets are standardised per group.
    Returns a CPU state dict with the scalers.
    """
    n_groups = inputs.shape[0]
    gens = [group_generator(seed, *key) for key in keys]
    net = BatchedMLP(n_groups, inputs.shape[2], hidden, 2, gens, activation=activation,
                     dtype=dtype, device=device)
    wsum = weights.sum(dim=1, keepdim=True).clamp_min(1e-300)
    mean = (weights * targets).sum(dim=1, keepdim=True) / wsum
    var = (weights * (targets - mean) ** 2).sum(dim=1, keepdim=True) / wsum
    scale = torch.sqrt(var).clamp_min(1e-12)
    z = (targets - mean) / scale
    x = inputs.to(dtype)
    zt, wt, at = z.to(dtype), (weights / wsum).to(dtype), arms.unsqueeze(-1)

    def loss_fn():
        pred = net(x).gather(2, at).squeeze(-1)
        return (wt * (pred - zt) ** 2).sum(dim=1)

    train_full_batch(net, loss_fn, max_iter=max_iter, learning_rate=learning_rate,
                     weight_decay=weight_decay)
    state = {k: v.detach().to("cpu", torch.float64) for k, v in net.state_dict().items()}
    return {"state": state, "mean": mean.to("cpu", torch.float64).squeeze(1),
            "scale": scale.to("cpu", torch.float64).squeeze(1), "hidden": tuple(hidden),
            "activation": activation}


def select_groups(fitted, groups):
    """The fitted state of a subset (slice) of the groups of :func:`fit_batched_regression`."""
    return {"state": {k: v[groups].clone() for k, v in fitted["state"].items()},
            "mean": fitted["mean"][groups].clone(), "scale": fitted["scale"][groups].clone(),
            "hidden": fitted["hidden"], "activation": fitted["activation"]}


def predict_batched_regression(fitted, inputs):
    """Predictions (G, m, 2) in float64 from :func:`fit_batched_regression` output."""
    n_groups, _, d = inputs.shape
    net = BatchedMLP(n_groups, d, fitted["hidden"], 2, None,
                     activation=fitted["activation"], dtype=torch.float64)
    net.load_state_dict(fitted["state"])
    with torch.no_grad():
        out = net(inputs.to(torch.float64))
    return out * fitted["scale"][:, None, None] + fitted["mean"][:, None, None]
