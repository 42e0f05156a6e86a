"""Benchmark of fstat.sdr: FCCovNet vs its peers on the §7 simulators, plus speed rows.

Peers on identical data: statsmodels SIR / SAVE (linear, scalar Y), a Fréchet kernel
GSIR (benchmarks/_frechet_gsir.py), sklearn KernelPCA (unsupervised floor),
FCCovNet(objective="distance") and LinearFCCov; the ``dcor`` package (optional) for
``distance_covariance`` timing and for cross-checking fstat's dCor. Quality = test
dCor(transform(X_test), H_test). Speed rows time fccov and the fits.

Every workload (each quality fit, each speed task) runs in a fresh process forked from a
server that has only imported the libraries, so its RSS high-water mark
(``resource.getrusage``) is its own: rows carry ``peak_mem_mb`` (the fresh process's peak)
and ``mem_increase_mb`` (peak minus the mark after a small warm-up of the same code path,
which faults in the library pages a forked process maps lazily), and, on CUDA,
``gpu_peak_mem_mb`` (``torch.cuda.max_memory_allocated``). Speed ratios (R2 vs R1 ranks,
fccov vs dcor) are timed interleaved in one process, best of several repeats. CPU runs pin
one thread.

Usage: ``python benchmarks/bench_sdr.py [--quick] [--reps R] [--device cpu] [--speed-only]
[--out f.json]``
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")
# dcor's numba kernels start an OpenMP pool sized by NUMBA_NUM_THREADS (default: all cores)
# and that resets the thread count torch shares with it: pin both to one thread
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _frechet_gsir import FrechetGSIR  # noqa: E402
from sklearn.decomposition import KernelPCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fstat._torch import resolve_device  # noqa: E402
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
# imported once by the fork server: a fresh worker starts with them (and with torch._dynamo,
# which the first optimiser of a process would otherwise import inside the timed fit)
_PRELOAD = ["numpy", "torch", "torch._dynamo", "sklearn.decomposition", "sklearn.exceptions",
            "statsmodels.regression.dimred", "fstat.sdr", "fstat.datasets", "_frechet_gsir"]


def _dcor_module():
    """The optional ``dcor`` peer, or None (with the reason printed once by the caller)."""
    threads = torch.get_num_threads()
    try:
        import dcor
    except ImportError:
        return None
    torch.set_num_threads(threads)  # (importing numba can reset it)
    return dcor


# --------------------------------------------------------------------------- fresh processes


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


_BASELINE = {}


def _mark_baseline():
    """Record the RSS high-water mark after a workload's small warm-up (see ``_measured``)."""
    _BASELINE["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _measured(fn, args, device):
    """Run ``fn(*args)`` in this (fresh) process and report its own peak memory.

    A forked process maps the libraries' pages lazily, so the first call of any code path
    faults in code pages that are not the workload's memory: every workload first runs a
    small warm-up of the same path and calls ``_mark_baseline``; ``mem_increase_mb`` is the
    peak minus that mark.
    """
    torch.set_num_threads(1)
    cuda = str(device).startswith("cuda")
    _BASELINE["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = fn(*args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    memory = {"peak_mem_mb": peak, "mem_increase_mb": peak - _BASELINE["rss"]}
    if cuda:
        memory["gpu_peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out, memory


def in_fresh_process(ctx, fn, *args, device="cpu"):
    """``fn(*args)`` in a new process forked from the preloaded server: (result, memory)."""
    with ProcessPoolExecutor(1, mp_context=ctx, max_tasks_per_child=1) as pool:
        return pool.submit(_measured, fn, args, device).result()


# --------------------------------------------------------------------------- quality


def _methods(metric, d, scalar, device, warm_up=False):
    # the warm-up run of a net takes the same code paths (validation included) in few epochs
    short = {"max_epochs": 30, "min_epochs": 0} if warm_up else {}

    def net(objective):
        def fit(X, Y, D):
            est = FCCovNet(d, metric=metric, objective=objective, random_state=0, device=device,
                           **short)
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


def _data(model, metric, rep, n):
    X, Y, H = make_frechet_sdr(model, n_samples=2 * n, random_state=1000 + rep)
    D = pairwise_response_distances(Y[:n], metric, device="cpu")
    return X, Y, H, D


def _quality_fit(setting, rep, method, device, n):
    """One quality row (runs in a fresh process): fit on n rows, test dCor on the next n."""
    _, model, metric, d = next(s for s in SETTINGS if s[0] == setting)
    X, Y, H, D = _data(model, metric, rep, n)
    fit = _methods(metric, d, Y.ndim == 1, device)[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = _methods(metric, d, Y.ndim == 1, device, warm_up=True)[method]
        warm(X[:40], Y[:40], D[:40, :40])  # warm-up (code pages, lazy imports)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _mark_baseline()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        transform = fit(X[:n], Y[:n], D)
    fit_s = time.perf_counter() - start
    Z = transform(X[n:])
    # Z and the truth go back to the parent, which cross-checks dCor with the dcor package
    # there (dcor's numba kernels compile once per process, several seconds each time)
    return {"fit_s": fit_s, "dcor": _distance_correlation(Z, H[n:]), "Z": np.asarray(Z),
            "H": np.asarray(H[n:])}


def quality(ctx, settings, reps, device, n=500):
    rows = []
    dcor = _dcor_module()
    for name, model, metric, d in settings:
        X, Y, _, _ = _data(model, metric, 0, 8)
        for rep in range(reps):
            for method in _methods(metric, d, Y.ndim == 1, device):
                try:  # a peer failing must not stop the benchmark
                    result, memory = in_fresh_process(ctx, _quality_fit, name, rep, method,
                                                      device, n, device=device)
                except Exception as exc:
                    print(f"  {method} failed on {name}: {exc!r}")
                    continue
                Z, H = result.pop("Z"), result.pop("H")
                if dcor is not None:  # cross-check of fstat's dCor against the dcor package
                    result["dcor_peer"] = float(dcor.distance_correlation(
                        np.asarray(Z, dtype=np.float64), np.asarray(H, dtype=np.float64)))
                rows.append({"setting": name, "rep": rep, "method": method, **result, **memory})
                print(f"  {name:8s} rep {rep} {method:20s} dCor {result['dcor']:.3f}  fit "
                      f"{result['fit_s']:6.2f} s  peak {memory['peak_mem_mb']:6.0f} MB "
                      f"(+{memory['mem_increase_mb']:.0f})", flush=True)
    return rows


# --------------------------------------------------------------------------- speed


def _timed(fn, repeat=1):
    """Best wall and best process-CPU seconds over ``repeat`` calls.

    On a shared machine the wall time grows with the load while the CPU time of a
    single-thread workload barely does; both are reported, the targets use the wall time.
    """
    return _interleaved({"fn": fn}, repeat)["fn"]


def _interleaved(fns, repeat):
    """Best (wall, CPU) seconds of each callable, the callables alternating."""
    best = {key: (np.inf, np.inf) for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
    return best


def _scalar_data(n=2000, d=2):
    rng = np.random.default_rng(0)
    y = rng.standard_normal(n)
    U = rng.standard_normal((n, d))
    return U, y


def _speed_task(task, size, device):
    """Seconds of one speed workload after a small warm-up (runs in a fresh process)."""
    U, y = _scalar_data(2000)
    X, Y, _ = make_frechet_sdr("M1", n_samples=2000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if task == "fccov scalar Y (auto)":
            fccov(U[:50], y[:50], device=device)
            _mark_baseline()
            return _timed(lambda: fccov(U[:size], y[:size], device=device), 2)
        if task == "fccov precomputed D":
            D = np.abs(y[:size, None] - y[None, :size])
            fccov(U[:50], D[:50, :50], metric="precomputed", device=device)
            _mark_baseline()
            return _timed(lambda: fccov(U[:size], D, metric="precomputed", device=device), 2)
        if task == "ball_kernel":
            ball_kernel(y[:50], device=device)
            _mark_baseline()
            return _timed(lambda: ball_kernel(y[:size], device=device), 2)
        if task == "FCCovNet.fit":
            FCCovNet(max_epochs=20, min_epochs=0, device=device).fit(X[:40], Y[:40])
            _mark_baseline()
            return _timed(lambda: FCCovNet(random_state=0, device=device).fit(X[:size],
                                                                               Y[:size]))
        if task == "Frechet-GSIR.fit":
            FrechetGSIR(1).fit(X[:40], pairwise_response_distances(Y[:40], device="cpu"))
            _mark_baseline()
            Ds = pairwise_response_distances(Y[:size], device="cpu")
            return _timed(lambda: FrechetGSIR(1).fit(X[:size], Ds))
        if task == "LinearFCCov.fit":
            LinearFCCov(device=device).fit(X[:50], Y[:50])
            _mark_baseline()
            return _timed(lambda: LinearFCCov(device=device).fit(X[:size], Y[:size]), 2)
        from statsmodels.regression.dimred import SAVE, SlicedInverseReg

        peer = {"SIR.fit": SlicedInverseReg, "SAVE.fit": SAVE}[task]
        peer(Y[:100], X[:100]).fit(slice_n=20)
        _mark_baseline()
        return _timed(lambda: peer(Y[:size], X[:size]).fit(slice_n=20), 2)


def _rank_routes(n, repeat):
    """R1 (sort) vs R2 (two-pointer) ranks on the same scalar data, interleaved."""
    from fstat.sdr._metrics import check_response
    from fstat.sdr._ranks import ball_ranks

    response = check_response(_scalar_data(n)[1])
    for route in ("sort", "interval"):
        ball_ranks(check_response(response.data[:50, 0]), "cpu", route=route)
    _mark_baseline()
    return _interleaved({r: (lambda r=r: ball_ranks(response, "cpu", route=r))
                         for r in ("sort", "interval")}, repeat)


def _versus_dcor(n, d, repeat):
    """fccov vs dcor.distance_covariance on the same (U, y), interleaved."""
    dcor = _dcor_module()
    U, y = _scalar_data(n, d)
    U = U[:, 0] if d == 1 else U
    fccov(U[:50], y[:50], device="cpu")
    dcor.distance_covariance(U[:50], y[:50])  # (compiles dcor's numba kernels)
    _mark_baseline()
    return _interleaved({"fccov": lambda: fccov(U, y, device="cpu"),
                         "dcor": lambda: dcor.distance_covariance(U, y)}, repeat)


def speed(ctx, device, quick):
    rows = []
    fit_sizes = (500,) if quick else (500, 2000)
    tasks = [("fccov scalar Y (auto)", 2000, "auto"), ("fccov precomputed D", 2000, "sort"),
             ("ball_kernel", 1000, "kernel")]
    tasks += [(t, s, r) for s in fit_sizes for t, r in (("FCCovNet.fit", "kernel"),
                                                          ("Frechet-GSIR.fit", "dense"))]
    tasks += [("LinearFCCov.fit", 2000, "cumsum"), ("SIR.fit", 2000, "peer"),
              ("SAVE.fit", 2000, "peer")]
    for task, size, route in tasks:
        dev = "cpu" if task in ("Frechet-GSIR.fit", "SIR.fit", "SAVE.fit") else device
        print(f"  {task} n={size}", flush=True)
        (seconds, cpu), memory = in_fresh_process(ctx, _speed_task, task, size, dev,
                                                  device=dev)
        rows.append({"task": task, "n": size, "d": 2, "route": route, "device": dev,
                     "seconds": seconds, "cpu_seconds": cpu, **memory})
    repeat = 3 if quick else 7
    best, memory = in_fresh_process(ctx, _rank_routes, 2000, repeat)
    for route, (seconds, cpu) in best.items():
        rows.append({"task": f"ranks {route}", "n": 2000, "d": 2, "route": route,
                     "device": "cpu", "seconds": seconds, "cpu_seconds": cpu, **memory})
    if _dcor_module() is None:
        print("  dcor is not installed (pip install dcor): the fccov-vs-dcor rows are skipped")
    else:
        for d in (2, 1):
            best, memory = in_fresh_process(ctx, _versus_dcor, 2000, d, repeat)
            rows.append({"task": f"fccov vs dcor d={d}", "n": 2000, "d": d, "route": "auto",
                         "device": "cpu", "seconds": best["fccov"][0],
                         "cpu_seconds": best["fccov"][1], **memory})
            rows.append({"task": f"dcor.distance_covariance d={d}", "n": 2000, "d": d,
                         "route": "peer", "device": "cpu", "seconds": best["dcor"][0],
                         "cpu_seconds": best["dcor"][1], **memory})
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
    if qrows:
        print("\nPeak memory of the fresh fit process: mean increase over its warm-up (MB)")
        print(f"{'setting':9s}" + "".join(f"{m:>22s}" for m in methods))
        for setting, by in table.items():
            cells = [f"{np.mean([r['mem_increase_mb'] for r in by[m]]):.0f}" if m in by else "-"
                     for m in methods]
            print(f"{setting:9s}" + "".join(f"{c:>22s}" for c in cells))
    peer = [abs(r["dcor"] - r["dcor_peer"]) for r in qrows if "dcor_peer" in r]
    if peer:
        checks.append((f"fstat dCor equals dcor.distance_correlation (max |diff| "
                       f"{max(peer):.1e} over {len(peer)} rows)", max(peer) <= 1e-10))
    speed_by = {(r["task"], r["n"]): r for r in srows}
    print("\nSpeed: best wall and process-CPU seconds (1 thread), peak memory of a fresh "
          "process")
    for r in srows:
        print(f"  {r['task']:30s} n={r['n']:5d} wall {r['seconds']:8.3f} s  cpu "
              f"{r['cpu_seconds']:8.3f} s  peak {r['peak_mem_mb']:6.0f} MB  increase "
              f"{r['mem_increase_mb']:6.0f} MB")
    ratios = [("FCCovNet.fit", "Frechet-GSIR.fit", 500), ("FCCovNet.fit", "Frechet-GSIR.fit", 2000),
              ("LinearFCCov.fit", "SIR.fit", 2000), ("LinearFCCov.fit", "SAVE.fit", 2000),
              ("ranks interval", "ranks sort", 2000),
              ("fccov vs dcor d=2", "dcor.distance_covariance d=2", 2000),
              ("fccov vs dcor d=1", "dcor.distance_covariance d=1", 2000)]
    print("\nSide by side (time ratio = fstat / peer or route; < 1 means fstat is faster)")
    for a, b, n in ratios:
        if (a, n) in speed_by and (b, n) in speed_by:
            ta, tb = speed_by[(a, n)]["seconds"], speed_by[(b, n)]["seconds"]
            ca, cb = speed_by[(a, n)]["cpu_seconds"], speed_by[(b, n)]["cpu_seconds"]
            print(f"  {a:22s} {ta:8.3f} s  vs  {b:30s} {tb:8.3f} s  ratio {ta / tb:6.2f}"
                  f"  (CPU time ratio {ca / cb:6.2f})")
    targets = [("fccov scalar Y (auto)", 2000, 1.0), ("fccov precomputed D", 2000, 1.5),
               ("ball_kernel", 1000, 3.0), ("FCCovNet.fit", 500, 10.0),
               ("FCCovNet.fit", 2000, 20.0), ("LinearFCCov.fit", 2000, 5.0)]
    for task, n, limit in targets:
        if (task, n) in speed_by:
            seconds, cpu = speed_by[(task, n)]["seconds"], speed_by[(task, n)]["cpu_seconds"]
            checks.append((f"{task} n={n} < {limit} s (wall {seconds:.2f} s; process CPU "
                           f"{cpu:.2f} s)", seconds < limit))
    if ("fccov precomputed D", 2000) in speed_by:
        increase = speed_by[("fccov precomputed D", 2000)]["mem_increase_mb"]
        bound = 64 * 2000**2 / 2**20
        checks.append((f"fccov precomputed D: no O(n^3) memory (increase {increase:.0f} MB < "
                       f"64 n^2 bytes = {bound:.0f} MB)", increase < bound))
    if ("ranks sort", 2000) in speed_by:
        ratio = speed_by[("ranks sort", 2000)]["seconds"] / speed_by[("ranks interval", 2000)][
            "seconds"]
        checks.append((f"R2 ranks >= 1.5x faster than R1 ({ratio:.2f}x, interleaved)",
                       ratio >= 1.5))
    if ("fccov vs dcor d=2", 2000) in speed_by:
        ratio = (speed_by[("fccov vs dcor d=2", 2000)]["seconds"]
                 / speed_by[("dcor.distance_covariance d=2", 2000)]["seconds"])
        checks.append((f"fccov <= 10x dcor.distance_covariance, n=2000, d=2 ({ratio:.2f}x)",
                       ratio <= 10))
    if ("FCCovNet.fit", 2000) in speed_by:
        ratio = speed_by[("FCCovNet.fit", 2000)]["seconds"] / speed_by[("Frechet-GSIR.fit",
                                                                        2000)]["seconds"]
        checks.append((f"FCCovNet.fit <= 2x GSIR fit at n=2000 ({ratio:.2f}x)", ratio <= 2))
    print("\nTargets")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality table")
    parser.add_argument("--settings", default=None,
                        help="comma-separated quality settings (default: all, or the quick ones)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "sdr.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.device = str(resolve_device(args.device))  # "auto" -> the device actually used
    reps = args.reps or (2 if args.quick else 5)
    chosen = args.settings.split(",") if args.settings else QUICK if args.quick else None
    settings = [s for s in SETTINGS if chosen is None or s[0] in chosen]
    ctx = _context()
    print("quality")
    qrows = [] if args.speed_only else quality(ctx, settings, reps, args.device)
    print("speed")
    srows = speed(ctx, args.device, args.quick)
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
                    "torch_threads": torch.get_num_threads(), "git_sha": sha,
                    "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
                    "dcor": getattr(_dcor_module(), "__version__", None),
                    "memory": "peak_mem_mb: RSS high-water mark of a fresh process forked from a "
                              "server holding the imports; mem_increase_mb: peak minus the mark "
                              "after a small warm-up of the same workload"},
           "quality": qrows, "speed": srows,
           "checks": [{"check": c, "ok": bool(ok)} for c, ok in checks]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
