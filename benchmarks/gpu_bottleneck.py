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


def _training_terms(device):
    """The default float32 training path at batch 128: the per-epoch stacked data terms
    (widths by the device's median branch, contexts) and the fused losses with their
    gradients, device against CPU; then a 2-epoch float32 fit's loss curve."""
    from fstat.bottleneck._bandwidth import widths_from_sq_dists
    from fstat.bottleneck._fused import (
        compression_context,
        conditional_cs_loss,
        cs_qmi_loss,
        prediction_context,
    )
    from fstat.kernels._gram import batch_sq_dists

    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(16, 128, 16, generator=gen), torch.randn(16, 128, 1, generator=gen)
    t, y_pred = torch.randn(128, 128, generator=gen), torch.randn(128, 1, generator=gen)
    out = {}
    for where in ("cpu", device):
        start = time.perf_counter()
        sq = batch_sq_dists(x.to(where))
        widths = [w for w, _ in widths_from_sq_dists(sq, x.to(where), "median")]
        pred = prediction_context(y.to(where), sq.clone(), [0.25 * w for w in widths],
                                  [1.0] * 16)
        comp = compression_context(sq, widths)
        # detached leaves: on the "cpu" pass .to() returns t itself, which would then carry
        # requires_grad, and the device pass's copy would be a non-leaf without .grad
        ts = t.to(where).detach().requires_grad_(True)
        ps = y_pred.to(where).detach().requires_grad_(True)
        q = cs_qmi_loss(ts, tuple(c[0] for c in comp), 9.0)
        c = conditional_cs_loss(y[0].to(where), ps, tuple(c[0] for c in pred), 1.0)
        (q + 0.5 * c).backward()
        _sync(where)
        out[where] = (np.array(widths), q.item(), c.item(), ts.grad.cpu().double(),
                      ps.grad.cpu().double(), time.perf_counter() - start)
    a, b = out["cpu"], out[device]
    # the loss values are small differences of O(1) logs: relative to 1 + |value|
    rel = [float(np.max(np.abs(a[0] - b[0]) / a[0])),
           abs(a[1] - b[1]) / (1.0 + abs(a[1])), abs(a[2] - b[2]) / (1.0 + abs(a[2])),
           float((a[3] - b[3]).abs().max() / a[3].abs().max()),
           float((a[4] - b[4]).abs().max() / a[4].abs().max())]
    rows = [_row("f32 batch-128 terms: widths, CS-QMI, cond. CS, grads (rel)", max(rel),
                 a[5], b[5], rel[0] <= 1e-5 and max(rel[1:3]) <= 1e-4 and max(rel[3:]) <= 1e-3)]
    Xf, yf = make_heavy_tailed_friedman(4096, 16, random_state=0)
    params = dict(max_iter=2, batch_size=128, early_stopping=False, random_state=0)
    cpu_model, tc = _timed(lambda: CSIBRegressor(device="cpu", **params).fit(Xf, yf))
    dev_model, td = _timed(lambda: CSIBRegressor(device=device, **params).fit(Xf, yf))
    curve_a, curve_b = np.array(cpu_model.loss_curve_), np.array(dev_model.loss_curve_)
    diff = float(np.max(np.abs(curve_a - curve_b) / np.abs(curve_a)))
    rows.append(_row("CSIBRegressor f32 batch 128, 2 epochs: loss curve (rel)", diff, tc, td,
                     diff <= 1e-2))
    return rows


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
    rows.append(_row("CSIBRegressor f64 fit 5 epochs, pickled, predictions", diff, tc, td,
                     np.all(np.isfinite(pd_)) and diff <= 1e-6 * (1 + np.abs(pc).max())))
    rows.extend(_training_terms(device))

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
            # fresh leaves on each device (v.to("cpu") is v itself: without detach the CPU
            # pass would make t and p leaves and the device copies non-leaves whose
            # gradients flow back to the CPU inside the timed step)
            xs, ts, ys, ps = (v.to(where).detach().requires_grad_(v is t or v is p)
                              for v in (x, t, yy, p))

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
