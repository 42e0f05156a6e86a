"""GPU check of fstat.bottleneck: CUDA vs CPU results and timing of the large-N paths.

``run(device) -> list of dict`` with keys ``check``, ``max_abs_diff``, ``cpu_seconds``,
``device_seconds``, ``ok`` (called by ``benchmarks/gpu_check.py``). With
``device="cpu"`` it runs the same code on the CPU twice (a smoke test).
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import torch

from fstat.bottleneck import (
    CSIBRegressor,
    conditional_cs_divergence,
    cs_divergence,
    cs_mutual_information,
)
from fstat.bottleneck._estimators import conditional_cs_core, cs_qmi_core
from fstat.datasets import make_heavy_tailed_friedman


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _row(check, diff, cpu_s, dev_s, ok):
    return {"check": check, "max_abs_diff": float(diff), "cpu_seconds": float(cpu_s),
            "device_seconds": float(dev_s), "ok": bool(ok)}


def run(device):
    rows = []
    rng = np.random.default_rng(0)
    # 1. float64 estimator functions: device equals CPU (rtol 1e-10)
    X, T = rng.standard_normal((512, 8)), rng.standard_normal((512, 4))
    y = X[:, :1] + 0.3 * rng.standard_normal((512, 1))
    yp = y + 0.5 * rng.standard_normal((512, 1))
    for name, fn in (
        ("cs_divergence f64 n=512", lambda d: cs_divergence(X, X[::-1] + 0.2, device=d)),
        ("cs_mutual_information f64 n=512", lambda d: cs_mutual_information(X, T, device=d)),
        ("conditional_cs_divergence f64 n=512",
         lambda d: conditional_cs_divergence(X, y, yp, device=d)),
    ):
        a, ta = _timed(lambda fn=fn: fn("cpu"))
        b, tb = _timed(lambda fn=fn: fn(device))
        rows.append(_row(name, abs(a - b), ta, tb, abs(a - b) <= 1e-10 * max(1.0, abs(a))))

    # 2. a float64 fit on the device predicts like the CPU fit; pickled model predicts on CPU
    Xf, yf = make_heavy_tailed_friedman(2000, random_state=0)
    params = dict(max_iter=5, dtype="float64", early_stopping=False, random_state=0,
                  hidden_layer_sizes=(64, 64), bottleneck_dim=32, decoder_hidden_sizes=(64,))
    cpu_model, tc = _timed(lambda: CSIBRegressor(device="cpu", **params).fit(Xf, yf))
    dev_model, td = _timed(lambda: CSIBRegressor(device=device, **params).fit(Xf, yf))
    restored = pickle.loads(pickle.dumps(dev_model))
    pc, pd_ = cpu_model.predict(Xf), restored.predict(Xf)
    diff = float(np.max(np.abs(pc - pd_)))
    rows.append(_row("CSIBRegressor f64 fit 5 epochs, predictions", diff, tc, td,
                     np.all(np.isfinite(pd_)) and diff <= 1e-6 * (1 + np.abs(pc).max())))

    # 3. float32 full-batch forward+backward timings (GPU targets: <= 5 ms at N = 4096)
    cuda = str(device).startswith("cuda")
    for N in ((4096, 16384) if cuda else (1024,)):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(N, 16, generator=gen)
        t = torch.randn(N, 128, generator=gen)
        yy = torch.randn(N, 1, generator=gen)
        p = torch.randn(N, 1, generator=gen)
        values = {}
        for where in ("cpu", device):
            if where == "cpu" and N > 4096:
                continue
            xs, ts, ys, ps = (v.to(where).requires_grad_(v is t or v is p) for v in (x, t, yy, p))

            def step(xs=xs, ts=ts, ys=ys, ps=ps, where=where):
                q = cs_qmi_core(xs, ts, 4.0, 16.0)
                c = conditional_cs_core(xs, ys, ps, 1.0, 1.0)
                (q + c).backward()
                _sync(where)
                return float(q.detach()), float(c.detach())

            step()
            values[where], seconds = _timed(step)
            values[where + "_s"] = seconds
        cpu_s = values.get("cpu_s", float("nan"))
        diff = (max(abs(a - b) for a, b in zip(values["cpu"], values[device]))
                if "cpu" in values else 0.0)
        rows.append(_row(f"CS-QMI + conditional CS fwd+bwd f32 N={N}", diff, cpu_s,
                         values[device + "_s"], diff <= 1e-3 * (1 + abs(values[device][0]))))
    # 4. RFF CS-QMI at n = 1e6, D = 1024, float32 (GPU target <= 0.5 s); device only
    if cuda:
        rng = np.random.default_rng(1)
        Xb = rng.standard_normal((10**6, 16)).astype(np.float32)
        Tb = Xb + 0.1 * rng.standard_normal((10**6, 16)).astype(np.float32)

        def rff():
            value = cs_mutual_information(Xb, Tb, approximation="rff", n_components=1024,
                                          dtype="float32", device=device, random_state=0)
            _sync(device)
            return value

        rff()
        value, seconds = _timed(rff)
        rows.append(_row("RFF CS-QMI n=1e6 D=1024 f32 (device only)", 0.0, float("nan"),
                         seconds, np.isfinite(value)))
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        print(row)
