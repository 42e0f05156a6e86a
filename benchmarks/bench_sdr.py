"""Benchmark of fstat.sdr: FCCovNet vs its peers on the §7 simulators, plus speed rows.

Peers on identical data: statsmodels SIR / SAVE (linear, scalar Y), a Fréchet kernel
GSIR (benchmarks/_frechet_gsir.py), sklearn KernelPCA (unsupervised floor),
FCCovNet(objective="distance") and LinearFCCov. Quality = test dCor(transform(X_test),
H_test). Speed rows time fccov and the fits. CPU runs pin one thread.

Usage: ``python benchmarks/bench_sdr.py [--quick] [--reps R] [--device cpu] [--speed-only]
[--out f.json]``
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _frechet_gsir import FrechetGSIR  # noqa: E402
from sklearn.decomposition import KernelPCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fstat.datasets import make_frechet_sdr  # noqa: E402
from fstat.sdr import FCCovNet, LinearFCCov, ball_kernel, fccov, pairwise_response_distances  # noqa: E402,E501
from fstat.sdr._dcor import _distance_correlation  # noqa: E402

SETTINGS = [  # (name, model, metric, d)
    ("M1", "M1", "euclidean", 1), ("M1c", "M1c", "euclidean", 1),
    ("M1o", "M1o", "euclidean", 1), ("M2", "M2", "wasserstein", 2),
    ("M2o", "M2o", "wasserstein", 2), ("M3-frob", "M3", "spd_frobenius", 1),
    ("M3-logE", "M3", "log_euclidean", 1), ("M3-AI", "M3", "affine_invariant", 1),
    ("M4", "M4", "sphere", 2),
]
QUICK = ("M1", "M1o", "M4")


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _methods(metric, d, scalar, device):
    def net(objective):
        def fit(X, Y, D):
            est = FCCovNet(d, metric=metric, objective=objective, random_state=0, device=device)
            return est.fit(X, Y).transform

        return fit

    def gsir(X, Y, D):
        return FrechetGSIR(d).fit(X, D).transform

    def linear(X, Y, D):
        return LinearFCCov(d, metric=metric, device=device).fit(X, Y).transform

    def kpca(X, Y, D):
        return KernelPCA(d, kernel="rbf").fit(X).transform

    methods = {"FCCovNet": net("fccov"), "FCCovNet(distance)": net("distance"),
               "Frechet-GSIR": gsir, "LinearFCCov": linear, "KernelPCA": kpca}
    if scalar:
        from statsmodels.regression.dimred import SAVE, SlicedInverseReg

        def sir(X, Y, D):
            B = SlicedInverseReg(Y, X).fit(slice_n=20).params[:, :d]
            return lambda Z: Z @ B

        def save(X, Y, D):
            B = SAVE(Y, X).fit(slice_n=20).params[:, :d]
            return lambda Z: Z @ B

        methods.update({"SIR": sir, "SAVE": save})
    return methods


def quality(settings, reps, device, n=500):
    rows = []
    for name, model, metric, d in settings:
        for rep in range(reps):
            X, Y, H = make_frechet_sdr(model, n_samples=2 * n, random_state=1000 + rep)
            D = pairwise_response_distances(Y[:n], metric, device="cpu")
            for method, fit in _methods(metric, d, Y.ndim == 1, device).items():
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        transform = fit(X[:n], Y[:n], D)
                    fit_s = time.perf_counter() - start
                    value = _distance_correlation(transform(X[n:]), H[n:])
                except Exception as exc:  # a peer failing must not stop the benchmark
                    print(f"  {method} failed on {name}: {exc!r}")
                    continue
                rows.append({"setting": name, "rep": rep, "method": method, "dcor": value,
                             "fit_s": fit_s, "peak_mem_mb": _peak_mb()})
                print(f"  {name:8s} rep {rep} {method:20s} dCor {value:.3f}  fit {fit_s:6.2f} s",
                      flush=True)
    return rows


def _timed(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speed(device, quick):
    rng = np.random.default_rng(0)
    rows = []
    n = 2000
    y = rng.standard_normal(n)
    U = rng.standard_normal((n, 2))
    fccov(U[:50], y[:50], device=device)  # warm-up
    D = np.abs(y[:, None] - y[None])
    tasks = [
        ("fccov scalar Y (auto)", n, lambda: fccov(U, y, device=device), "auto"),
        ("fccov precomputed D", n, lambda: fccov(U, D, metric="precomputed", device=device),
         "sort"),
        ("ball_kernel", 1000, lambda: ball_kernel(y[:1000], device=device), "kernel"),
    ]
    for task, size, fn, route in tasks:
        seconds = _timed(fn, 2)
        rows.append({"task": task, "n": size, "d": 2, "route": route, "device": device,
                     "seconds": seconds, "peak_mem_mb": _peak_mb()})
    from fstat.sdr._metrics import check_response
    from fstat.sdr._ranks import ball_ranks

    response = check_response(y)
    for route in ("sort", "interval"):
        seconds = _timed(lambda r=route: ball_ranks(response, "cpu", route=r), 2)
        rows.append({"task": f"ranks {route}", "n": n, "d": 2, "route": route, "device": "cpu",
                     "seconds": seconds, "peak_mem_mb": _peak_mb()})
    X, Y, H = make_frechet_sdr("M1", n_samples=2000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # warm-up: the first optimiser of a process imports torch._dynamo (seconds)
        FCCovNet(max_epochs=1, early_stopping=False, device=device).fit(X[:20], Y[:20])
        sizes = (500,) if quick else (500, 2000)
        for size in sizes:
            seconds = _timed(lambda s=size: FCCovNet(random_state=0, device=device).fit(
                X[:s], Y[:s]))
            rows.append({"task": "FCCovNet.fit", "n": size, "d": 1, "route": "kernel",
                         "device": device, "seconds": seconds, "peak_mem_mb": _peak_mb()})
            Ds = pairwise_response_distances(Y[:size], device="cpu")
            seconds = _timed(lambda s=size, Ds=Ds: FrechetGSIR(1).fit(X[:s], Ds))
            rows.append({"task": "Frechet-GSIR.fit", "n": size, "d": 1, "route": "dense",
                         "device": "cpu", "seconds": seconds, "peak_mem_mb": _peak_mb()})
    seconds = _timed(lambda: LinearFCCov(device=device).fit(X, Y))
    rows.append({"task": "LinearFCCov.fit", "n": 2000, "d": 1, "route": "cumsum",
                 "device": device, "seconds": seconds, "peak_mem_mb": _peak_mb()})
    try:
        import dcor

        seconds = _timed(lambda: dcor.distance_covariance(U, y))
        rows.append({"task": "dcor.distance_covariance", "n": n, "d": 2, "route": "peer",
                     "device": "cpu", "seconds": seconds, "peak_mem_mb": _peak_mb()})
    except ImportError:
        print("  dcor is not installed: the fccov-vs-dcor speed row is skipped")
    for row in rows:
        print(f"  {row['task']:28s} n={row['n']:5d} {row['seconds']:7.3f} s")
    return rows


def summary(qrows, srows):
    print("\nQuality: mean dCor (sd) over reps, mean fit seconds")
    table = {}
    for r in qrows:
        table.setdefault(r["setting"], {}).setdefault(r["method"], []).append(r)
    methods = ["FCCovNet", "FCCovNet(distance)", "Frechet-GSIR", "LinearFCCov", "SIR", "SAVE",
               "KernelPCA"]
    print(f"{'setting':9s}" + "".join(f"{m:>22s}" for m in methods))
    checks = []
    for setting, by in table.items():
        cells = []
        for m in methods:
            if m in by:
                v = np.array([r["dcor"] for r in by[m]])
                t = np.mean([r["fit_s"] for r in by[m]])
                cells.append(f"{v.mean():.3f} ({v.std():.3f}) {t:5.1f}s")
            else:
                cells.append("-")
        print(f"{setting:9s}" + "".join(f"{c:>22s}" for c in cells))
        mean = {m: np.mean([r["dcor"] for r in by[m]]) for m in by}
        net, g = mean["FCCovNet"], mean["Frechet-GSIR"]
        checks.append((f"{setting}: FCCovNet >= GSIR - 0.05", net >= g - 0.05))
        if setting in ("M1", "M1c", "M1o", "M3-frob", "M3-logE", "M3-AI", "M4"):
            checks.append((f"{setting}: FCCovNet >= GSIR + 0.05", net >= g + 0.05))
        if setting in ("M1", "M3-frob"):
            checks.append((f"{setting}: FCCovNet >= LinearFCCov + 0.3",
                           net >= mean["LinearFCCov"] + 0.3))
        if setting in ("M1", "M2", "M3-frob", "M4"):
            checks.append((f"{setting}: |FCCovNet - distance| <= 0.06",
                           abs(net - mean["FCCovNet(distance)"]) <= 0.06))
        if setting == "M1o":
            checks.append(("M1o: FCCovNet >= distance + 0.4",
                           net >= mean["FCCovNet(distance)"] + 0.4))
    speed_by = {(r["task"], r["n"]): r["seconds"] for r in srows}
    targets = [("fccov scalar Y (auto)", 2000, 1.0), ("fccov precomputed D", 2000, 1.5),
               ("ball_kernel", 1000, 3.0), ("FCCovNet.fit", 500, 10.0),
               ("FCCovNet.fit", 2000, 20.0), ("LinearFCCov.fit", 2000, 5.0)]
    for task, n, limit in targets:
        if (task, n) in speed_by:
            checks.append((f"{task} n={n} < {limit} s ({speed_by[(task, n)]:.2f} s)",
                           speed_by[(task, n)] < limit))
    if ("ranks sort", 2000) in speed_by:
        ratio = speed_by[("ranks sort", 2000)] / speed_by[("ranks interval", 2000)]
        checks.append((f"R2 ranks >= 1.5x faster than R1 ({ratio:.2f}x)", ratio >= 1.5))
    if ("FCCovNet.fit", 2000) in speed_by:
        ratio = speed_by[("FCCovNet.fit", 2000)] / speed_by[("Frechet-GSIR.fit", 2000)]
        checks.append((f"FCCovNet.fit <= 2x GSIR fit at n=2000 ({ratio:.2f}x)", ratio <= 2))
    print("\nTargets")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality table")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "sdr.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    reps = args.reps or (2 if args.quick else 5)
    settings = [s for s in SETTINGS if not args.quick or s[0] in QUICK]
    print("quality")
    qrows = [] if args.speed_only else quality(settings, reps, args.device)
    print("speed")
    srows = speed(args.device, args.quick)
    checks = summary(qrows, srows)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        sha = ""
    device_name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                   else platform.processor() or platform.machine())
    out = {"meta": {"python": sys.version.split()[0], "torch": torch.__version__,
                    "numpy": np.__version__, "device": device_name,
                    "torch_threads": torch.get_num_threads(), "git_sha": sha},
           "quality": qrows, "speed": srows,
           "checks": [{"check": c, "ok": bool(ok)} for c, ok in checks]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
