"""Device check of fstat.kernels: ``run(device)`` compares ``device`` results with CPU ones.

Called by ``benchmarks/gpu_check.py``; ``run("cpu")`` runs the same code path on the CPU
(agreement is then exact) so the script can be verified without a GPU.
"""

from __future__ import annotations

import time

import numpy as np


def _timed(fn, device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def run(device):
    import torch

    from fstat.datasets import make_ntk_teacher
    from fstat.kernels import NTKSVC, NTKRidge, ntk_kernel, ntk_kernel_torch

    results = []
    rng = np.random.default_rng(0)

    # 1. Gram agreement, float64 and float32
    X = rng.standard_normal((600, 30))
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
        cpu, t_cpu = _timed(lambda dt=dtype: ntk_kernel(X, depth=3, w_std=2**0.5, b_std=0.1,
                                                        dtype=dt, device="cpu"), "cpu")
        dev, t_dev = _timed(lambda dt=dtype: ntk_kernel(X, depth=3, w_std=2**0.5, b_std=0.1,
                                                        dtype=dt, device=device), device)
        diff = float(np.abs(cpu - dev).max() / np.abs(cpu).max())
        results.append({"check": f"ntk_kernel depth 3 n=600 {dtype} (relative)",
                        "max_abs_diff": diff, "cpu_seconds": t_cpu, "device_seconds": t_dev,
                        "ok": diff <= tol})

    # 2. solvers: objective agreement
    Xs, ys = make_ntk_teacher(1000, 20, flip_y=0.05, random_state=0)
    for solver in ("newton",):  # cd runs on CPU numpy whatever the device
        a, t_a = _timed(lambda s=solver: NTKSVC(0.1, solver=s, device="cpu",
                                                random_state=0).fit(Xs, ys), "cpu")
        b, t_b = _timed(lambda s=solver: NTKSVC(0.1, solver=s, device=device,
                                                random_state=0).fit(Xs, ys), device)
        diff = abs(a.objective_ - b.objective_) / abs(a.objective_)
        results.append({"check": f"NTKSVC no intercept ({solver}) objective, n=1000",
                        "max_abs_diff": diff, "cpu_seconds": t_a, "device_seconds": t_b,
                        "ok": diff <= 1e-8})
    # the default solver is coordinate descent on the CPU and projected Newton on CUDA: the
    # two agree to their stopping tolerances, not to rounding
    a, t_a = _timed(lambda: NTKSVC(0.1, device="cpu", random_state=0).fit(Xs, ys), "cpu")
    b, t_b = _timed(lambda: NTKSVC(0.1, device=device, random_state=0).fit(Xs, ys), device)
    diff = abs(a.objective_ - b.objective_) / abs(a.objective_)
    flips = int(np.sum(a.predict(Xs) != b.predict(Xs)))
    results.append({"check": f"NTKSVC default solvers ({a.solver_} vs {b.solver_}) objective",
                    "max_abs_diff": diff, "cpu_seconds": t_a, "device_seconds": t_b,
                    "ok": diff <= 1e-4 and flips <= 2})
    # the finite-width network: same CPU initial draws, float64 training on both devices
    from fstat.kernels import NTKNetwork

    net = dict(width=256, max_iter=200, dtype="float64", random_state=0)
    a, t_a = _timed(lambda: NTKNetwork(device="cpu", **net).fit(Xs, ys), "cpu")
    b, t_b = _timed(lambda: NTKNetwork(device=device, **net).fit(Xs, ys), device)
    fa, fb = a.decision_function(Xs), b.decision_function(Xs)
    diff = float(np.abs(fa - fb).max() / max(np.abs(fa).max(), 1e-300))
    results.append({"check": "NTKNetwork width 256, 200 steps, float64 (relative)",
                    "max_abs_diff": diff, "cpu_seconds": t_a, "device_seconds": t_b,
                    "ok": diff <= 1e-8})
    a, t_a = _timed(lambda: NTKRidge(1.0, device="cpu").fit(Xs, ys.astype(float)), "cpu")
    b, t_b = _timed(lambda: NTKRidge(1.0, device=device).fit(Xs, ys.astype(float)), device)
    diff = float(np.abs(a.dual_coef_ - b.dual_coef_).max())
    results.append({"check": "NTKRidge dual_coef_, n=1000", "max_abs_diff": diff,
                    "cpu_seconds": t_a, "device_seconds": t_b, "ok": diff <= 1e-8})
    # a model fitted on the device predicts from numpy state
    state_ok = isinstance(b.dual_coef_, np.ndarray) and isinstance(b.X_fit_, np.ndarray)
    pred = float(np.abs(a.predict(Xs[:50]) - b.predict(Xs[:50])).max())
    results.append({"check": "device-fitted NTKRidge: numpy state, predictions",
                    "max_abs_diff": pred, "cpu_seconds": 0.0, "device_seconds": 0.0,
                    "ok": state_ok and pred <= 1e-8})

    # 3. certificate: device vs CPU radii, then the spec §8 size (2000 x 12 665, d = 784) on
    # the device with the CPU timed on 100 points for scale (random coefficients: timing only)
    Xc, yc = make_ntk_teacher(300, 20, random_state=1)
    a = NTKSVC(0.5, solver="newton", device="cpu").fit(Xc[:200], yc[:200])
    b = NTKSVC(0.5, solver="newton", device=device).fit(Xc[:200], yc[:200])
    ra, t_a = _timed(lambda: a.certify(Xc[200:]), "cpu")
    rb, t_b = _timed(lambda: b.certify(Xc[200:]), device)
    diff = float(np.abs(ra - rb).max() / max(np.abs(ra).max(), 1e-300))
    results.append({"check": "certify radii n=200 train x 100 test (relative)",
                    "max_abs_diff": diff, "cpu_seconds": t_a, "device_seconds": t_b,
                    "ok": diff <= 1e-8})
    n_tr, d_img = 12665, 784
    Xs = rng.uniform(0, 1, (40, d_img))
    ys = np.where(Xs[:, 0] > 0.5, 1, -1)
    big = {}
    for dev in ("cpu", device):
        mdl = NTKSVC(1.0, device=dev).fit(Xs, ys)
        mdl.X_fit_ = np.random.default_rng(2).uniform(0, 1, (n_tr, d_img)) * (
            np.random.default_rng(3).uniform(size=(n_tr, d_img)) < 0.2)
        mdl.dual_coef_ = np.random.default_rng(4).standard_normal(n_tr) * 1e-3
        big[dev] = mdl
    Xq = np.random.default_rng(5).uniform(0, 1, (2000, d_img)) * (
        np.random.default_rng(6).uniform(size=(2000, d_img)) < 0.2)
    sub = 100
    rc, t_c = _timed(lambda: big["cpu"].certify(Xq[:sub]), "cpu")
    n_dev = 2000 if device.startswith("cuda") else sub
    rd, t_d = _timed(lambda: big[device].certify(Xq[:n_dev]), device)
    diff = float(np.abs(rc - rd[:sub]).max() / max(np.abs(rc).max(), 1e-300))
    results.append({"check": f"certify {n_dev} x {n_tr} d=784 on device (CPU: first {sub} "
                             "points; target <= 2 s GPU)",
                    "max_abs_diff": diff, "cpu_seconds": t_c, "device_seconds": t_d,
                    "ok": diff <= 1e-8})

    # 4. large-n Gram timing on the device (float32), CPU timing on a 1/4 slice for scale
    n_big = 20000 if device.startswith("cuda") else 2000
    Xb = torch.randn(n_big, 784, generator=torch.Generator().manual_seed(0))
    Xd = Xb.to(device)
    _timed(lambda: ntk_kernel_torch(Xd[:256], depth=3), device)  # warm-up
    K, t_dev = _timed(lambda: ntk_kernel_torch(Xd, depth=3), device)
    sub = 500
    Kc, t_cpu = _timed(lambda: ntk_kernel_torch(Xb[:sub].double(), Xb.double(), depth=3), "cpu")
    diff = float((K[:sub].double().cpu() - Kc).abs().max() / Kc.abs().max())
    del K
    results.append({"check": f"ntk_kernel_torch depth 3 n={n_big} d=784 float32 (rows 0..{sub} "
                             "vs CPU float64, relative)",
                    "max_abs_diff": diff, "cpu_seconds": t_cpu, "device_seconds": t_dev,
                    "ok": diff <= 1e-4})
    return results


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        print(row)
