"""Benchmark of fstat.ebm against scikit-learn KernelDensity / GaussianMixture (and zuko NSF).

Usage: ``PYTHONPATH=. python benchmarks/bench_ebm.py [--device cpu|cuda] [--quick]
[--only PART ...]`` (parts: eight_gaussians moons rings gaussian digits timing; separate
parts can run in separate processes, each writing its own JSON).

Workloads: the three 2-D toys (true density known), the 5-D Gaussian (closed-form MLE), the
digits OOD split (PCA-8). Methods: CompositionalEBM ("ma", "msvr", "msvr_ratio"), NCEDensity,
SNLDensity,
KernelDensity (bandwidth by 3-fold CV over 10 log-spaced values; sklearn's score is a sum, we
report the mean), GaussianMixture (n_components by 3-fold CV from {1, 2, 4, 8}), and a zuko
neural spline flow when zuko is importable. Prints a table and writes
``benchmarks/results/bench_ebm_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from fstat.datasets import load_digits_ood, make_toy_density
from fstat.ebm import CompositionalEBM, NCEDensity, SNLDensity


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _kde_cv(X):
    grid = {"bandwidth": np.logspace(-1.5, 0.5, 10) * X.std(0).mean()}
    return GridSearchCV(KernelDensity(), grid, cv=3).fit(X).best_estimator_


def _gmm_cv(X):
    grid = {"n_components": [1, 2, 4, 8]}
    return GridSearchCV(GaussianMixture(covariance_type="full", random_state=0), grid,
                        cv=3).fit(X).best_estimator_


def _zuko_fit(X, n_iter, device):
    import torch
    import zuko

    Xt = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32, device=device)
    log_jac = float(np.log(X.std(0)).sum())
    torch.manual_seed(0)  # benchmark script (not library code): zuko draws from torch's RNG
    flow = zuko.flows.NSF(X.shape[1], transforms=3, hidden_features=(64, 64)).to(device)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    for _ in range(n_iter):
        idx = torch.randint(0, len(Xt), (256,), generator=gen, device=device)
        loss = -flow().log_prob(Xt[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def score_samples(Z):
        with torch.no_grad():
            Zt = torch.tensor((Z - X.mean(0)) / X.std(0), dtype=torch.float32, device=device)
            return flow().log_prob(Zt).double().cpu().numpy() - log_jac

    return score_samples


def _progress(row):
    """Print one finished row at once (a long run killed part-way still leaves its rows)."""
    print("row " + json.dumps(row), flush=True)
    return row


def _ebm_methods(energy, n_iter, lr, device):
    common = dict(energy_model=energy, learning_rate=lr, max_iter=n_iter, device=device,
                  random_state=0)
    if energy == "quadratic":
        common["dtype"] = "float64"
    return {
        "MECO-ma": CompositionalEBM(**common),
        "MECO-msvr": CompositionalEBM(inner_estimator="msvr", **common),
        "MECO-msvr-ratio": CompositionalEBM(inner_estimator="msvr_ratio", **common),
        "NCE": NCEDensity(**common),
        "SNL": SNLDensity(**common),
    }


def _run_workload(name, X, X_test, *, truth=None, X_ood=None, energy="mlp", n_iter, lr,
                  device, zuko_ok):
    rows = []
    truth_ll = float(np.mean(truth(X_test))) if truth is not None else None
    for label, est in _ebm_methods(energy, n_iter, lr, device).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, fit_s = _timed(lambda est=est: est.fit(X))
        ll = est.score(X_test)
        row = {"workload": name, "method": label, "test_loglik": ll, "fit_s": fit_s,
               "ms_per_iter": 1e3 * fit_s / max(est.n_iter_, 1),
               "logz_se": est.log_partition_se_, "logz_ess": est.log_partition_ess_}
        if X_ood is not None:
            y = np.r_[np.ones(len(X_test)), np.zeros(len(X_ood))]
            row["auroc"] = roc_auc_score(y, -est.ood_score(np.r_[X_test, X_ood]))
        if hasattr(est, "n_inner_clamped_"):
            row["clamped"] = est.n_inner_clamped_
        rows.append(_progress(row))
    for label, maker in (("KDE-CV", _kde_cv), ("GMM-CV", _gmm_cv)):
        est, fit_s = _timed(lambda maker=maker: maker(X))
        row = {"workload": name, "method": label, "test_loglik": float(np.mean(
            est.score_samples(X_test))), "fit_s": fit_s}
        if X_ood is not None:
            y = np.r_[np.ones(len(X_test)), np.zeros(len(X_ood))]
            row["auroc"] = roc_auc_score(y, est.score_samples(np.r_[X_test, X_ood]))
        rows.append(_progress(row))
    if zuko_ok and energy == "mlp":
        score, fit_s = _timed(lambda: _zuko_fit(X, n_iter, device))
        row = {"workload": name, "method": "zuko-NSF", "test_loglik": float(np.mean(
            score(X_test))), "fit_s": fit_s, "ms_per_iter": 1e3 * fit_s / n_iter}
        if X_ood is not None:
            y = np.r_[np.ones(len(X_test)), np.zeros(len(X_ood))]
            row["auroc"] = roc_auc_score(y, score(np.r_[X_test, X_ood]))
        rows.append(_progress(row))
    for row in rows:
        if truth_ll is not None:
            row["gap_to_truth"] = truth_ll - row["test_loglik"]
    return rows


def _score_timing(X, device):
    est = CompositionalEBM(hidden_layer_sizes=(64, 64), max_iter=50, device=device,
                           random_state=0).fit(X)
    kde = KernelDensity(bandwidth=0.2).fit(X[:5000])
    big = make_toy_density("moons", 100_000, random_state=9)
    huge = make_toy_density("moons", 1_000_000, random_state=9)
    t_ebm = min(_timed(lambda: est.score_samples(big))[1] for _ in range(3))
    t_kde = _timed(lambda: kde.score_samples(big))[1]
    t_huge = min(_timed(lambda: est.score_samples(huge))[1] for _ in range(2))
    return {"workload": "score_samples 1e5 pts", "method": "MECO (64,64) vs KDE(n=5000)",
            "ebm_s": t_ebm, "kde_s": t_kde, "speedup": t_kde / t_ebm, "ebm_1e6_s": t_huge}


def _step_timing(X, device, n_iter=400, repeats=5):
    """Time per iteration, interleaved across methods, best of ``repeats`` (shared machine)."""
    makers = {"MECO-ma": lambda: CompositionalEBM(**kw),
              "MECO-msvr": lambda: CompositionalEBM(inner_estimator="msvr", **kw),
              "NCE": lambda: NCEDensity(**kw), "SNL": lambda: SNLDensity(**kw)}
    kw = dict(max_iter=n_iter, n_logz_samples=1000, device=device, random_state=0)
    times = {k: [] for k in makers}
    for make in makers.values():  # warm-up (first-call costs of torch kernels)
        make().set_params(max_iter=20).fit(X)
    for _ in range(repeats):
        for label, make in makers.items():
            est = make()
            times[label].append(1e3 * _timed(lambda est=est: est.fit(X))[1] / n_iter)
    best = {k: min(v) for k, v in times.items()}
    return {"ms_per_iter_best": best, "ms_per_iter_all": times, "n_iter": n_iter,
            "ratio_ma_over_nce": best["MECO-ma"] / best["NCE"],
            "ratio_msvr_over_ma": best["MECO-msvr"] / best["MECO-ma"]}


_MEMORY_PROBE = """
import resource, json, warnings
import numpy as np
from fstat.datasets import make_toy_density
from fstat.ebm import CompositionalEBM
warnings.simplefilter("ignore")
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
X = make_toy_density("moons", 5000, random_state=0)
est = CompositionalEBM(max_iter=20, n_logz_samples=1000, device="{device}", random_state=0).fit(X)
out = {{"base_mb": peak()}}
est = CompositionalEBM(max_iter=2000, device="{device}", random_state=0).fit(X)
out["fit_mb"] = peak()
for M in (10**5, 10**6):
    est.log_partition("is", M, random_state=0)
    out[f"is_{{M}}_mb"] = peak()
big = make_toy_density("moons", 10**6, random_state=1)
out["data_1e6_mb"] = peak()
est.score_samples(big)
out["score_1e6_mb"] = peak()
print(json.dumps(out))
"""


def _memory_probe(device):
    """Peak resident memory (ru_maxrss) of a fresh process after each stage, in MB.

    tracemalloc does not see torch's allocator, so the process high-water mark is used: the
    increase over the previous stage bounds the extra memory of that stage.
    """
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [".", os.environ.get(
        "PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE.format(device=device)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


_PARTS = ("eight_gaussians", "moons", "rings", "gaussian", "digits", "timing")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=_PARTS, default=list(_PARTS),
                        help="run only these parts (each run writes its own JSON)")
    args = parser.parse_args(argv)
    parts = set(args.only)
    zuko_ok = False
    if parts & {"eight_gaussians", "moons", "rings", "digits"}:
        try:
            import zuko  # noqa: F401

            zuko_ok = True
        except ImportError as exc:
            print(f"zuko not available ({exc}); the flow peer is skipped.")
    n = 2000 if args.quick else 5000
    toy_iter = 1500 if args.quick else 10_000
    rows = []
    for toy in ("eight_gaussians", "moons", "rings"):
        if toy not in parts:
            continue
        X, logp = make_toy_density(toy, n, random_state=0, return_log_density=True)
        X_test = make_toy_density(toy, n, random_state=1)
        rows += _run_workload(toy, X, X_test, truth=logp, n_iter=toy_iter, lr=2e-3 if not
                              args.quick else 5e-3, device=args.device, zuko_ok=zuko_ok)
        print(f"done {toy}", flush=True)
    if "gaussian" in parts:
        X, logp = make_toy_density("gaussian", 2000, random_state=0, return_log_density=True)
        X_test = make_toy_density("gaussian", 2000, random_state=0)  # train = test set
        rows += _run_workload("gaussian-5d (train)", X, X_test, truth=logp,
                              energy="quadratic", n_iter=3000, lr=1e-2, device=args.device,
                              zuko_ok=False)
        S = np.cov(X.T, bias=True)
        mle = -(2.5 * (1 + math.log(2 * math.pi)) + 0.5 * np.linalg.slogdet(S)[1])
        for row in rows:
            if row["workload"].startswith("gaussian-5d"):
                row["gap_to_mle"] = mle - row["test_loglik"]
    if "digits" in parts:
        digits = load_digits_ood(n_components=8)
        rows += _run_workload("digits-ood (PCA-8)", digits.X_train, digits.X_test,
                              X_ood=digits.X_ood, n_iter=1500 if args.quick else 3000,
                              lr=1e-3, device=args.device, zuko_ok=zuko_ok)
    timing = steps = memory = None
    if "timing" in parts:
        X = make_toy_density("moons", 5000, random_state=0)
        timing = _score_timing(X, args.device)
        steps = _step_timing(X, args.device, repeats=3 if args.quick else 5)
        memory = _memory_probe(args.device)

    keys = ["test_loglik", "gap_to_truth", "gap_to_mle", "auroc", "fit_s", "ms_per_iter",
            "logz_se", "logz_ess", "clamped"]
    print(f"\n{'workload':22s} {'method':10s} " + " ".join(f"{k:>12s}" for k in keys))
    for row in rows:
        cells = []
        for k in keys:
            v = row.get(k)
            cells.append(f"{v:12.4g}" if isinstance(v, (int, float)) else f"{'':>12s}")
        print(f"{row['workload']:22s} {row['method']:10s} " + " ".join(cells))
    if timing is not None:
        _print_timing(timing, steps, memory)
    for name in dict.fromkeys(r["workload"] for r in rows):
        sub = [r for r in rows if r["workload"] == name]
        best_peer = max(r["test_loglik"] for r in sub if r["method"] in ("KDE-CV", "GMM-CV"))
        meco = next(r for r in sub if r["method"] == "MECO-ma")
        nce = next(r for r in sub if r["method"] == "NCE")
        print(f"{name:22s} MECO-ma - best(KDE,GMM) = {meco['test_loglik'] - best_peer:+.3f} "
              f"nats (target >= -0.15 on the 2-D toys); MECO-ma / NCE fit time per iter = "
              f"{meco['ms_per_iter'] / nce['ms_per_iter']:.2f}")
    os.makedirs("benchmarks/results", exist_ok=True)
    suffix = "" if parts == set(_PARTS) else "_" + "-".join(p for p in _PARTS if p in parts)
    path = f"benchmarks/results/bench_ebm_{args.device.replace(':', '')}{suffix}.json"
    with open(path, "w") as fh:
        json.dump({"rows": rows, "score_timing": timing, "step_timing": steps,
                   "memory_mb": memory, "quick": args.quick}, fh, indent=1)
    print(f"wrote {path}")


def _print_timing(timing, steps, memory):
    print(f"\nscore_samples on 1e5 points: EBM {timing['ebm_s']:.3f} s, KDE(n=5000) "
          f"{timing['kde_s']:.3f} s, ratio KDE/EBM {timing['speedup']:.1f}x (target >= 5); "
          f"1e6 points: EBM {timing['ebm_1e6_s']:.2f} s (target <= 10)")
    best = steps["ms_per_iter_best"]
    print(f"time per iteration (moons n=5000, {steps['n_iter']} iterations, interleaved, best "
          "of repeats): " + ", ".join(f"{k} {v:.2f} ms" for k, v in best.items()))
    print(f"  MECO-ma / NCE = {steps['ratio_ma_over_nce']:.2f} (target <= 1.15); "
          f"MECO-msvr / MECO-ma = {steps['ratio_msvr_over_ma']:.2f} (target <= 1.6)")
    print("peak RSS of a fresh process (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                            memory.items()))
    print(f"  fit of a 2-D toy adds {memory['fit_mb'] - memory['base_mb']:.0f} MB (target <= 100);"
          f" IS 1e6 vs 1e5 draws adds {memory['is_1000000_mb'] - memory['is_100000_mb']:.0f} MB;"
          f" score_samples on 1e6 rows adds {memory['score_1e6_mb'] - memory['data_1e6_mb']:.0f}"
          " MB")


if __name__ == "__main__":
    main()
