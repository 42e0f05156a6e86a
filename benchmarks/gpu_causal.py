"""GPU check of fstat.causal: cuda fit vs cpu fit of the same seed, and large-n timing.

``run(device)`` returns rows with keys check, max_abs_diff, cpu_seconds, device_seconds, ok.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def _fit(device, n, max_iter, divergences=("kl", "chi2"), **options):
    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_confounded_discrete

    X, y, a = make_confounded_discrete(n, random_state=0)
    options = {"outcome_bounds": (0, 4), **options}
    start = time.perf_counter()
    with warnings.catch_warnings():  # outcome_bounds=None warns by design
        warnings.simplefilter("ignore", UserWarning)
        est = ConditionalDivergenceBounds(divergences, max_iter=max_iter, device=device,
                                          random_state=0, **options).fit(X, y, treatment=a)
    seconds = time.perf_counter() - start
    return est, est.predict_outcome_bounds(np.eye(4), 1, divergence="all"), seconds


def run(device):
    """Compare a fit on ``device`` with the same fit on cpu; time a larger fit."""
    import pickle

    rows = []
    _fit(device, 500, 5)  # warm-up
    cpu_est, cpu_pred, cpu_s = _fit("cpu", 2000, 100)
    dev_est, dev_pred, dev_s = _fit(device, 2000, 100)
    diff = float(np.max(np.abs(cpu_pred - dev_pred)))
    rows.append({"check": "conditional fit n=2000 (kl, chi2), 100 steps", "max_abs_diff": diff,
                 "cpu_seconds": cpu_s, "device_seconds": dev_s, "ok": diff < 1e-2})
    # float64 with early stopping (per-group snapshots) and no declared support (the
    # dual's top initialisation): equal to rounding, not only to float32 accuracy
    f64 = dict(dtype="float64", early_stopping=True, outcome_bounds=None)
    _, cpu_pred, cpu_s = _fit("cpu", 1000, 60, **f64)
    _, dev_pred, dev_s = _fit(device, 1000, 60, **f64)
    diff = float(np.max(np.abs(cpu_pred - dev_pred)))
    rows.append({"check": "float64 fit n=1000, early stopping, no outcome_bounds",
                 "max_abs_diff": diff, "cpu_seconds": cpu_s, "device_seconds": dev_s,
                 "ok": diff < 1e-6})
    loaded = pickle.loads(pickle.dumps(dev_est))
    diff = float(np.max(np.abs(loaded.predict(np.eye(4)) - dev_est.predict(np.eye(4)))))
    rows.append({"check": "pickle of device fit predicts on cpu", "max_abs_diff": diff,
                 "cpu_seconds": 0.0, "device_seconds": 0.0, "ok": diff < 1e-10})
    _, cpu_pred, cpu_s = _fit("cpu", 8000, 100, divergences=("kl", "hellinger", "chi2", "tv",
                                                             "js"))
    _, dev_pred, dev_s = _fit(device, 8000, 100, divergences=("kl", "hellinger", "chi2", "tv",
                                                              "js"))
    diff = float(np.max(np.abs(cpu_pred - dev_pred)))
    rows.append({"check": "conditional fit n=8000, 5 divergences, 100 steps",
                 "max_abs_diff": diff, "cpu_seconds": cpu_s, "device_seconds": dev_s,
                 "ok": diff < 5e-2})
    if str(device).startswith("cuda"):  # spec 8: the default fit at n = 8000 in < 5 s
        from fstat.causal import ConditionalDivergenceBounds
        from fstat.datasets import make_confounded_discrete

        X, y, a = make_confounded_discrete(8000, random_state=0)
        start = time.perf_counter()
        ConditionalDivergenceBounds(device=device, random_state=0).fit(X, y, treatment=a)
        seconds = time.perf_counter() - start
        rows.append({"check": "default fit n=8000 (target < 5 s on an H100/H200)",
                     "max_abs_diff": 0.0, "cpu_seconds": float("nan"),
                     "device_seconds": seconds, "ok": seconds < 5.0})
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        print(row)
