"""Benchmark fstat.kernels against neural-tangents and scikit-learn on the same data.

Usage::

    PYTHONPATH=. python benchmarks/bench_kernels.py [--quick] [--device cpu|cuda]
        [--nt-python /work/venv-kernels/bin/python] [--out FILE]

1. Gram matrices (n x 50 inputs, depth 1-3, two (w_std, b_std) settings, float64/float32):
   fstat's ``ntk_kernel_torch`` vs neural-tangents' jitted analytic ``kernel_fn`` (run in its
   own interpreter, ``--nt-python``; it needs numpy < 2 and JAX): median of 5 warm runs, first
   call (incl. JIT compilation for neural-tangents), max relative difference.
2. Solvers on one precomputed NTK Gram of teacher data (d = 20): NTKRidge vs KernelRidge,
   NTKSVC/NTKSVR with intercept vs SVC/SVR, NTKSVC without intercept (newton, cd) with the
   objective of SVC's coefficients without the intercept alongside, NTKLogisticRegression
   vs LogisticRegression on Cholesky features, 1000 subgradient steps.

Prints a table and writes JSON to ``benchmarks/results/kernels_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NT_WORKER = r'''
import json, sys, time, types
import numpy as np
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import neural_tangents as nt
from neural_tangents import stax

data = np.load(sys.argv[1])
configs = json.loads(sys.argv[2])
out, times = {}, []
for cfg in configs:
    depth, w, b, dtype = cfg["depth"], cfg["w_std"], cfg["b_std"], cfg["dtype"]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=w, b_std=(b or None)), stax.Relu()]
    layers += [stax.Dense(1, W_std=w, b_std=(b or None))]
    _, _, kernel_fn = stax.serial(*layers)
    fn = jax.jit(kernel_fn, static_argnames="get")
    X = jnp.asarray(data["X"], dtype=jnp.float64 if dtype == "float64" else jnp.float32)
    t0 = time.perf_counter()
    k = fn(X, X, get=("nngp", "ntk"))
    k.ntk.block_until_ready()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        k = fn(X, X, get=("nngp", "ntk"))
        k.ntk.block_until_ready()
        runs.append(time.perf_counter() - t0)
    key = cfg["key"]
    out[key + "_ntk"] = np.asarray(k.ntk, dtype=np.float64)
    out[key + "_nngp"] = np.asarray(k.nngp, dtype=np.float64)
    times.append({"key": key, "first": first, "median": float(np.median(runs))})
np.savez(sys.argv[3], **out)
print(json.dumps({"times": times, "jax": jax.__version__,
                  "nt": getattr(nt, "__version__", "0.6.5"), "device": str(jax.devices()[0])}))
'''


SKNTK_WORKER = r'''
import json, sys, time
import numpy as np
import skntk
from skntk import NeuralTangentKernel

data = np.load(sys.argv[1])
depths = json.loads(sys.argv[2])
out, times = {}, []
X = data["X"]
for depth in depths:
    kern = NeuralTangentKernel(depth, bias=0.0, bias_bounds="fixed")
    t0 = time.perf_counter()
    K = kern(X)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(int(sys.argv[4])):
        t0 = time.perf_counter()
        K = kern(X)
        runs.append(time.perf_counter() - t0)
    out[f"d{depth}"] = K
    times.append({"depth": depth, "first": first, "median": float(np.median(runs))})
np.savez(sys.argv[3], **out)
print(json.dumps({"times": times, "skntk": getattr(skntk, "__version__", "1.2.1")}))
'''


def run_skntk(python, X, depths, repeats=5):
    """scikit-ntk Grams (bias 0) in the peer interpreter; ``(info, grams)`` or ``(None, why)``."""
    if not python:
        return None, "no --nt-python given (scikit-ntk runs in the peer venv)"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "X.npz"), os.path.join(tmp, "K.npz")
        np.savez(src, X=X)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            proc = subprocess.run([python, "-c", SKNTK_WORKER, src, json.dumps(list(depths)), dst,
                                   str(repeats)], capture_output=True, text=True, timeout=1800,
                                  env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, repr(exc)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return None, lines[-1] if lines else "failed"
        return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(dst))


def skntk_scale(d, depth):
    """scikit-ntk ``NeuralTangentKernel(depth, bias=0)`` = fstat NTK (w_std=sqrt 2, b_std=0)
    times this factor (spec §2.2: no 1/d, sigma_w^2 = 2, final 1/(L+1))."""
    return d / (2.0 * (depth + 1))


def _median_time(fn, repeats=5):
    first_start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - first_start
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return result, float(np.median(runs)), first


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_gram(n, device, nt_python, rows):
    import torch

    from fstat.kernels import ntk_kernel_torch

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 50))
    configs = []
    for depth in (1, 2, 3):
        for w, b in ((1.0, 0.0), (math.sqrt(2), 0.1)):
            for dtype in ("float64", "float32"):
                configs.append({"depth": depth, "w_std": w, "b_std": b, "dtype": dtype,
                                "key": f"d{depth}_w{w:.3f}_b{b}_{dtype}"})
    nt_result, nt_error = None, None
    if nt_python:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "X.npz")
            dst = os.path.join(tmp, "K.npz")
            np.savez(src, X=X)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            if os.environ.get("OMP_NUM_THREADS") == "1":  # same thread budget for XLA
                env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                    "intra_op_parallelism_threads=1")
            try:
                proc = subprocess.run([nt_python, "-c", NT_WORKER, src, json.dumps(configs), dst],
                                      capture_output=True, text=True, timeout=1800, env=env)
                if proc.returncode != 0:
                    nt_error = proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
                else:
                    info = json.loads(proc.stdout.strip().splitlines()[-1])
                    grams = dict(np.load(dst))
                    nt_result = (info, grams)
            except (OSError, subprocess.TimeoutExpired) as exc:
                nt_error = repr(exc)
    else:
        nt_error = "no --nt-python given"
    if nt_error:
        print(f"[neural-tangents not run: {nt_error}]")
    sk_info, sk_grams = run_skntk(nt_python, X, (1, 2, 3))
    if sk_info is None:
        print(f"[scikit-ntk not run: {sk_grams}]")
    for cfg in configs:
        dt = torch.float64 if cfg["dtype"] == "float64" else torch.float32
        Xt = torch.as_tensor(X, dtype=dt, device=device)

        def run(Xt=Xt, cfg=cfg):
            K = ntk_kernel_torch(Xt, depth=cfg["depth"], w_std=cfg["w_std"], b_std=cfg["b_std"],
                                 kind="both")
            _sync(device)
            return K

        (nngp, ntk), med, first = _median_time(run)
        row = {"workload": "gram", "config": cfg["key"], "n": n, "fstat_s": med,
               "fstat_first_s": first}
        if nt_result is not None:
            info, grams = nt_result
            t = next(x for x in info["times"] if x["key"] == cfg["key"])
            ref = grams[cfg["key"] + "_ntk"]
            refg = grams[cfg["key"] + "_nngp"]
            ours = ntk.double().cpu().numpy()
            oursg = nngp.double().cpu().numpy()
            off = ~np.eye(n, dtype=bool)
            err = np.abs(ours - ref) / np.abs(ref).max()
            errg = np.abs(oursg - refg) / np.abs(refg).max()
            row.update({
                "nt_s": t["median"], "nt_first_s": t["first"], "ratio_fstat_over_nt":
                med / t["median"],
                # neural-tangents takes arccos of a rounded correlation 1 on the diagonal
                # (error ~ sqrt(eps)); fstat's diagonal is the exact closed form
                "max_rel_err_ntk": float(err.max()),
                "max_rel_err_ntk_offdiag": float(err[off].max()),
                "max_rel_err_nngp_offdiag": float(errg[off].max()),
            })
        if (sk_info is not None and cfg["b_std"] == 0.0 and cfg["dtype"] == "float64"):
            t = next(x for x in sk_info["times"] if x["depth"] == cfg["depth"])
            ref = sk_grams[f"d{cfg['depth']}"]
            Xt = torch.as_tensor(X, dtype=torch.float64, device=device)

            def run_sk(Xt=Xt, cfg=cfg):  # fstat with scikit-ntk's convention (w_std=sqrt 2)
                K = ntk_kernel_torch(Xt, depth=cfg["depth"], w_std=math.sqrt(2), b_std=0.0)
                _sync(device)
                return K

            ours, med_sk, _ = _median_time(run_sk)
            ours = ours.double().cpu().numpy() * skntk_scale(X.shape[1], cfg["depth"])
            rows.append({"workload": "gram-skntk", "config": f"depth {cfg['depth']} bias 0",
                         "n": n, "fstat_s": med_sk, "peer_s": t["median"],
                         "ratio": med_sk / t["median"],
                         "quality": f"rel err vs scikit-ntk "
                                    f"{np.abs(ours - ref).max() / np.abs(ref).max():.1e}"})
        rows.append(row)
    return {"neural_tangents": nt_result[0] if nt_result else {"error": nt_error},
            "scikit_ntk": sk_info if sk_info is not None else {"error": sk_grams}}


def _interleaved(ours, peer, repeats=5):
    """Best-of-``repeats`` times of two callables run alternately (shared, noisy machine)."""
    t_ours, t_peer, out_ours, out_peer = [], [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_ours = ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_peer = peer()
        t_peer.append(time.perf_counter() - t0)
    return out_ours, min(t_ours), out_peer, min(t_peer)


def _objective(K, beta, b, y, lam, loss, eps=0.1):
    g = K @ beta + b
    if loss == "hinge":
        val = np.maximum(0, 1 - y * g)
    elif loss == "epsilon_insensitive":
        val = np.maximum(0, np.abs(g - y) - eps)
    else:
        val = np.logaddexp(0, -y * g)
    return float(val.sum() + 0.5 * lam * beta @ K @ beta)


def bench_solvers(n, device, rows):
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, SVR

    from fstat.datasets import make_ntk_teacher
    from fstat.kernels import NTKSVC, NTKSVR, NTKLogisticRegression, NTKRidge, ntk_kernel

    X, y = make_ntk_teacher(n, 20, flip_y=0.05, random_state=0)
    Xr, yr = make_ntk_teacher(n, 20, task="regression", noise=0.3, random_state=0)
    K = ntk_kernel(X, device=device)
    Kr = ntk_kernel(Xr, device=device)

    def timed(fn, repeats=3):
        out, med, _ = _median_time(fn, repeats)
        return out, med

    for lam in (1.0,):
        ours, t_ours, ref, t_ref = _interleaved(
            lambda lam=lam: NTKRidge(lam, kernel="precomputed", device=device).fit(Kr, yr),
            lambda lam=lam: KernelRidge(alpha=lam / 2, kernel="precomputed").fit(Kr, yr))
        diff = np.abs(ours.dual_coef_ - ref.dual_coef_).max() / np.abs(ref.dual_coef_).max()
        rows.append({"workload": "NTKRidge vs KernelRidge", "n": n, "fstat_s": t_ours,
                     "peer_s": t_ref, "ratio": t_ours / t_ref,
                     "quality": f"dual_coef rel diff {diff:.1e}"})
    lam = 0.1
    ours, t, svc, t_svc = _interleaved(
        lambda: NTKSVC(lam, kernel="precomputed", fit_intercept=True, tol=1e-3,
                       device=device).fit(K, y),
        lambda: SVC(C=1 / lam, kernel="precomputed", tol=1e-3).fit(K, y))
    beta_svc = np.zeros(n)
    beta_svc[svc.support_] = svc.dual_coef_[0]
    P_svc = _objective(K, beta_svc, svc.intercept_[0], y, lam, "hinge")
    P_svc0 = _objective(K, beta_svc, 0.0, y, lam, "hinge")
    rows.append({"workload": "NTKSVC+intercept (libsvm) vs SVC", "n": n, "fstat_s": t,
                 "peer_s": t_svc, "ratio": t / t_svc,
                 "quality": f"objective {ours.objective_:.6f} vs {P_svc:.6f}"})
    for solver in ("newton", "cd"):
        ours, t = timed(lambda s=solver: NTKSVC(lam, kernel="precomputed", solver=s,
                                                device=device, random_state=0).fit(K, y), 3)
        rows.append({"workload": f"NTKSVC no intercept ({solver})", "n": n, "fstat_s": t,
                     "peer_s": t_svc, "ratio": t / t_svc,
                     "quality": f"objective {ours.objective_:.6f} (SVC beta with b=0: "
                                f"{P_svc0:.6f}); gap {ours.duality_gap_:.1e}"})
    ours, t, svr, t_svr = _interleaved(
        lambda: NTKSVR(lam, kernel="precomputed", fit_intercept=True, tol=1e-3,
                       device=device).fit(Kr, yr),
        lambda: SVR(C=1 / lam, epsilon=0.1, kernel="precomputed", tol=1e-3).fit(Kr, yr))
    beta_svr = np.zeros(n)
    beta_svr[svr.support_] = svr.dual_coef_[0]
    P_svr = _objective(Kr, beta_svr, svr.intercept_[0], yr, lam, "epsilon_insensitive")
    rows.append({"workload": "NTKSVR+intercept (libsvm) vs SVR", "n": n, "fstat_s": t,
                 "peer_s": t_svr, "ratio": t / t_svr,
                 "quality": f"objective {ours.objective_:.6f} vs {P_svr:.6f}"})
    L = np.linalg.cholesky(K + 1e-10 * np.trace(K) / n * np.eye(n))
    lr_ref, t_lr = timed(lambda: LogisticRegression(C=1 / lam, fit_intercept=False, tol=1e-8,
                                                    max_iter=5000).fit(L, y), 1)
    ours, t = timed(lambda: NTKLogisticRegression(lam, kernel="precomputed",
                                                  device=device).fit(K, y), 1)
    diff = np.abs(ours.decision_function(K) - lr_ref.decision_function(L)).max()
    rows.append({"workload": "NTKLogisticRegression vs LogReg(Cholesky features)", "n": n,
                 "fstat_s": t, "peer_s": t_lr, "ratio": t / t_lr,
                 "quality": f"max |decision diff| {diff:.1e}"})
    _, t = timed(lambda: NTKSVC(lam, kernel="precomputed", solver="subgradient", max_iter=1000,
                                device=device).fit(K, y), 1)
    rows.append({"workload": "1000 subgradient steps (hinge)", "n": n, "fstat_s": t,
                 "peer_s": float("nan"), "ratio": float("nan"), "quality": "-"})


def bench_certify(n_test, device, rows, n_train=12665, d=784):
    """Spec §8 certificate workload: n_test x 12 665 MNIST-sized random points, 40 bisection
    steps. Timing only: the coefficients of a small fitted NTKSVC are replaced by random ones
    on random sparse non-negative "images" (fitting a 12 665-point machine is not the point)."""
    from fstat.kernels import NTKSVC

    rng = np.random.default_rng(0)
    Xs = rng.uniform(0, 1, (40, d))
    model = NTKSVC(1.0, device=device).fit(Xs, np.where(Xs[:, 0] > 0.5, 1, -1))
    model.X_fit_ = rng.uniform(0, 1, (n_train, d)) * (rng.uniform(size=(n_train, d)) < 0.2)
    model.dual_coef_ = rng.standard_normal(n_train) * 1e-3
    Xt = rng.uniform(0, 1, (n_test, d)) * (rng.uniform(size=(n_test, d)) < 0.2)
    t0 = time.perf_counter()
    radii = model.certify(Xt)
    _sync(device)
    elapsed = time.perf_counter() - t0
    rows.append({"workload": f"certify {n_test} x {n_train} (d={d}, 40 bisections)",
                 "n": n_test, "fstat_s": elapsed, "peer_s": float("nan"),
                 "ratio": float("nan"),
                 "quality": f"target <= 30 s CPU for 2000 points; mean radius {radii.mean():.2e}"})


def make_nt_reference(nt_python, path):
    """Write ``tests/data/nt_reference.npz``: neural-tangents Grams on fixed inputs."""
    rng = np.random.default_rng(20211111)
    X = rng.standard_normal((12, 5))
    X = np.vstack([X, 2.0 * X[:1], -X[1:2], np.zeros((1, 5))])
    configs = [{"depth": L, "w_std": w, "b_std": b, "dtype": "float64",
                "key": f"L{L}_w{w:.4f}_b{b}"}
               for L in (0, 1, 2, 3) for w, b in ((1.0, 0.0), (math.sqrt(2), 0.0),
                                                  (1.5, 0.3), (math.sqrt(2), 0.1))]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "X.npz"), os.path.join(tmp, "K.npz")
        np.savez(src, X=X)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([nt_python, "-c", NT_WORKER, src, json.dumps(configs), dst], check=True,
                       capture_output=True, env=env)
        grams = dict(np.load(dst))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, X=X, configs=json.dumps(configs), **grams)
    print(f"wrote {path}")


def make_skntk_reference(python, path):
    """Write ``tests/data/skntk_reference.npz``: scikit-ntk Grams (bias 0) on fixed inputs."""
    rng = np.random.default_rng(20211112)
    X = rng.standard_normal((12, 5))
    X = np.vstack([X, 2.0 * X[:1], -X[1:2]])
    info, grams = run_skntk(python, X, (1, 2, 3), repeats=1)
    if info is None:
        raise SystemExit(f"scikit-ntk failed: {grams}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, X=X, version=info["skntk"], **grams)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nt-python", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--make-nt-reference", default=None, metavar="NPZ",
                        help="only write the neural-tangents reference Grams used by the tests")
    parser.add_argument("--make-skntk-reference", default=None, metavar="NPZ",
                        help="only write the scikit-ntk reference Grams used by the tests")
    args = parser.parse_args(argv)
    if args.make_skntk_reference:
        make_skntk_reference(args.nt_python, args.make_skntk_reference)
        return [1]
    if args.make_nt_reference:
        make_nt_reference(args.nt_python, args.make_nt_reference)
        return [1]
    import sklearn
    import torch

    n_gram = 1000 if args.quick else 2000
    n_solve = 1000 if args.quick else 2000
    rows = []
    nt_info = bench_gram(n_gram, args.device, args.nt_python, rows)
    bench_solvers(n_solve, args.device, rows)
    bench_certify(200 if args.quick else 2000, args.device, rows)
    print(f"\n{'workload':<52} {'n':>5} {'fstat s':>9} {'peer s':>9} {'ratio':>7}  quality")
    for r in rows:
        if r["workload"] == "gram" and "nt_s" not in r:
            peer, qual, name, ratio = (float("nan"), "neural-tangents not run",
                                       "gram " + r["config"], float("nan"))
        elif r["workload"] == "gram":
            peer = r.get("nt_s", float("nan"))
            qual = (f"rel err ntk off-diag {r['max_rel_err_ntk_offdiag']:.1e}, diag "
                    f"{r['max_rel_err_ntk']:.1e}; nt 1st call {r['nt_first_s']:.2f}s"
                    if "nt_s" in r else "neural-tangents not run")
            name = "gram " + r["config"]
            ratio = r.get("ratio_fstat_over_nt", float("nan"))
        else:
            peer, qual, ratio = r["peer_s"], r["quality"], r["ratio"]
            name = r["workload"] + (f" {r['config']}" if "config" in r else "")
        print(f"{name:<52} {r['n']:>5} {r['fstat_s']:>9.4f} {peer:>9.4f} {ratio:>7.2f}  {qual}")
    out = Path(args.out) if args.out else (Path(__file__).parent / "results"
                                                / f"kernels_{args.device.replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads(),
            "omp": os.environ.get("OMP_NUM_THREADS"), "device": args.device,
            "peers": nt_info, "machine": platform.processor() or platform.machine()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    print(f"\nwrote {out}")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
