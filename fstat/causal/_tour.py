"""Tour rows for ``python -m fstat``: exact marginal bounds and a small conditional fit."""

from __future__ import annotations

import time

import numpy as np


def tour(random_state=0, device="auto"):
    """Two rows: exact marginal ATE bounds, and a quick conditional fit vs exact truth."""
    from fstat.causal import ConditionalDivergenceBounds, MarginalDivergenceBounds
    from fstat.datasets import make_confounded_discrete

    rows = []
    X, y, a, truth = make_confounded_discrete(4000, random_state=random_state, return_truth=True)
    start = time.perf_counter()
    marg = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X, y, treatment=a)
    lo, up = marg.effect_bounds_
    true_ate = float(np.mean(truth.mu1 - truth.mu0))
    rows.append({
        "method": "MarginalDivergenceBounds (exact, 5 divergences)",
        "data": "make_confounded_discrete(4000)",
        "quality": f"ATE bounds [{lo:.2f}, {up:.2f}] contain truth {true_ate:.2f}; "
                   f"Manski [{marg.manski_effect_bounds_[0]:.2f}, "
                   f"{marg.manski_effect_bounds_[1]:.2f}]",
        "seconds": time.perf_counter() - start,
    })
    start = time.perf_counter()
    X, y, a, truth = make_confounded_discrete(1000, random_state=random_state, return_truth=True)
    est = ConditionalDivergenceBounds(("kl", "chi2"), outcome_bounds=(0, 4), max_iter=100,
                                      hidden_layer_sizes=(16,), device=device,
                                      random_state=random_state).fit(X, y, treatment=a)
    err = 0.0
    for name in ("kl", "chi2"):
        pop = truth.population_bounds(name)
        fitted = np.stack([est.predict_outcome_bounds(np.eye(4), arm, divergence=name)
                           for arm in (0, 1)])
        err = max(err, float(np.abs(fitted - pop).mean()))
    rows.append({
        "method": "ConditionalDivergenceBounds (kl, chi2; 100 steps)",
        "data": "make_confounded_discrete(1000)",
        "quality": f"mean endpoint error vs exact population bounds {err:.3f} (outcome 0..4)",
        "seconds": time.perf_counter() - start,
    })
    return rows
