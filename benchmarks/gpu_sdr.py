"""GPU check of fstat.sdr: device results vs CPU results, and large-n timings.

``run(device) -> list of dict`` with keys check, max_abs_diff, cpu_seconds,
device_seconds, ok. ``run("cpu")`` works without a GPU (the comparisons are then trivial
but every code path runs).
"""

import time
import warnings

import numpy as np
import torch


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def _row(check, a, b, t_cpu, t_dev, rtol=1e-12):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(a))) if a.size else 1.0
    return {"check": check, "max_abs_diff": diff, "cpu_seconds": t_cpu,
            "device_seconds": t_dev, "ok": bool(diff <= rtol * max(scale, 1e-300))}


def run(device):
    from sklearn.exceptions import ConvergenceWarning

    from fstat.datasets import make_frechet_sdr
    from fstat.sdr import FCCovNet, ball_kernel, fccov, fccov_matrix
    from fstat.sdr._metrics import check_response
    from fstat.sdr._ranks import ball_ranks, counts_from_ranks

    rows = []
    rng = np.random.default_rng(0)
    n = 600
    y = np.round(rng.standard_normal(n), 1)
    U = rng.standard_normal((n, 2))
    fccov(U[:20], y[:20], device=device)  # warm-up
    for name, fn in [
        ("fccov float64", lambda dev: fccov(U, y, device=dev)),
        ("fccov_matrix float64", lambda dev: fccov_matrix(U, y, device=dev)),
        ("ball_kernel float64", lambda dev: ball_kernel(y, device=dev)),
        ("fccov statistic U", lambda dev: fccov(U[:200], y[:200], statistic="U", device=dev)),
    ]:
        a, t_cpu = _timed(lambda f=fn: f("cpu"), "cpu")
        b, t_dev = _timed(lambda f=fn: f(device), device)
        rows.append(_row(name, a, b, t_cpu, t_dev))
    response = check_response(y)
    c_cpu, t_cpu = _timed(lambda: counts_from_ranks(ball_ranks(response, "cpu")), "cpu")
    c_dev, t_dev = _timed(lambda: counts_from_ranks(ball_ranks(response, device)), device)
    rows.append({"check": "counts exact", "max_abs_diff": float(
        (c_cpu.double() - c_dev.cpu().double()).abs().max()), "cpu_seconds": t_cpu,
        "device_seconds": t_dev, "ok": bool(torch.equal(c_cpu, c_dev.cpu()))})
    # float32 training on the device vs float64 on CPU: the first loss (same initial net)
    X, Y, _ = make_frechet_sdr("M1", n_samples=400, random_state=0)
    params = dict(max_epochs=1, early_stopping=False, random_state=0)
    (a, t_cpu) = _timed(lambda: FCCovNet(dtype="float64", device="cpu", **params).fit(X, Y),
                        "cpu")
    (b, t_dev) = _timed(lambda: FCCovNet(dtype="float32", device=device, **params).fit(X, Y),
                        device)
    diff = abs(a.loss_curve_[0] - b.loss_curve_[0])
    rows.append({"check": "float32 device loss vs float64 cpu", "max_abs_diff": diff,
                 "cpu_seconds": t_cpu, "device_seconds": t_dev,
                 "ok": bool(diff <= 1e-5 * abs(a.loss_curve_[0]))})
    # full fit on the device, then transform on CPU after pickling
    import pickle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est, t_dev = _timed(lambda: FCCovNet(max_epochs=300, random_state=0,
                                             device=device).fit(X, Y), device)
    again = pickle.loads(pickle.dumps(est))
    fitted_on = again.device_
    again.device_ = "cpu"  # as on a CPU-only machine: the stored network runs on the CPU
    Z = est.transform(X)
    diff = float(np.abs(again.transform(X) - Z).max())
    rows.append({"check": f"fit on {fitted_on}, pickle, transform on cpu",
                 "max_abs_diff": diff, "cpu_seconds": float("nan"), "device_seconds": t_dev,
                 "ok": diff <= 1e-10 * (1.0 + float(np.abs(Z).max()))
                 and fitted_on == str(torch.device(device))})
    # large-n timings against the spec §8 GPU targets (gated on CUDA only; CPU runs a
    # small version of every path in seconds)
    cuda = str(device).startswith("cuda")
    big = 10_000 if cuda else 1000

    def timing(check, seconds, target, **extra):
        rows.append({"check": f"{check} (target < {target} s on an H100/H200)",
                     "max_abs_diff": 0.0, "cpu_seconds": float("nan"), "device_seconds": seconds,
                     "ok": bool(seconds < target) if cuda else True, **extra})

    yb = rng.standard_normal(big)
    Ub = rng.standard_normal((big, 2))
    _, t_dev = _timed(lambda: fccov(Ub, yb, device=device), device)
    timing(f"fccov n={big} d=2 incl. distances", t_dev, 0.5)
    _, t_dev = _timed(lambda: ball_kernel(yb, device=device), device)
    timing(f"ball_kernel n={big}", t_dev, 5.0)
    Xb, Yb, _ = make_frechet_sdr("M1", n_samples=big, random_state=1)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, t_dev = _timed(lambda: FCCovNet(max_epochs=1000, early_stopping=False,
                                             random_state=0, device=device).fit(Xb, Yb), device)
    timing(f"FCCovNet.fit n={big} full batch 1000 epochs incl. precompute", t_dev, 5.0)
    if cuda:  # resident K (float32) + transient precompute chunks: <= 2 n^2 floats + chunks
        n_train = big  # early_stopping=False: every row trains
        peak = torch.cuda.max_memory_allocated(device)
        rows.append({"check": f"GPU peak memory of that fit {peak / 2**20:.0f} MiB vs 2 n^2 "
                              f"float32 = {2 * n_train**2 * 4 / 2**20:.0f} MiB (+ float64 "
                              "precompute chunks, not gated)",
                     "max_abs_diff": 0.0, "cpu_seconds": float("nan"), "device_seconds": t_dev,
                     "ok": True})
        Xh, Yh, _ = make_frechet_sdr("M1", n_samples=100_000, random_state=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, t_dev = _timed(lambda: FCCovNet(max_epochs=20, batch_size=1024,
                                               early_stopping=False, random_state=0,
                                               device=device).fit(Xh, Yh), device)
        timing("FCCovNet.fit n=1e5 batch 1024 in-batch ranks 20 epochs", t_dev, 30.0)
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        print(row)
