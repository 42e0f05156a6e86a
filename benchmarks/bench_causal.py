"""Benchmark of fstat.causal against its peers (itbound; scipy on the same dual).

W1: exact marginal solver (time per divergence and sign, error vs a nested high-precision solve,
    vs scipy.optimize.minimize on the same dual and itbound's marginal solver when installed;
    across radii e = 0.005 ... 0.9, the share of sides left to the nested fallback).
W2: conditional bounds on make_confounded_discrete (errors vs exact population bounds, coverage,
    time), fstat vs itbound's DebiasedCausalBoundEstimator when installed.
W3: conditional bounds on make_confounded_paper (unbounded t3 outcome, observed support):
    coverage of the exact E[Y | do(1), x], mean width, width by propensity bins, domain
    violations, time (fstat only; itbound's conditional run is W2's).
W4: the ATE on W3's data: fstat's one-step averaged bounds vs DoubleML IRM + sensitivity analysis
    and EconML LinearDML / DRLearner + sensitivity_interval (different assumptions; opt-in:
    ``--workloads w4``, the peers from /work/venv-causal).
W5: debiased vs plug-in conditional bounds vs n, with a correct and a perturbed propensity model,
    RMSE against the exact population bounds (opt-in: ``--workloads w5``; ``--quick`` is small).
W6: conditional bounds on continuous covariates: make_probit_sine with y clipped to [-6, 6], RMSE
    of the returned (repaired) bounds, of the plug-in clipped to the support only and of the
    plug-in as fitted, against oracle bounds (``pointwise_bounds`` on 20,000 weighted draws of
    each conditional law) at 21 points along x_0, over the intervals not inverted as fitted
    (their share is reported; opt-in: ``--workloads w6``).

Usage: ``PYTHONPATH=. python benchmarks/bench_causal.py [--quick] [--full]
[--workloads w1,w2,w3,w4,w5,w6]``.
Wall and process CPU seconds are both recorded with the 1-minute load average (the machine is
shared; CPU seconds are less sensitive to other processes).
Writes ``benchmarks/results/causal.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
import traceback
from pathlib import Path

import numpy as np

FIVE = ("kl", "hellinger", "chi2", "tv", "js")


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _scipy_dual_upper(y, eta, divergence, hi):
    """scipy.optimize.minimize (L-BFGS-B with a penalty-free feasible parametrisation)."""
    from scipy.optimize import minimize

    from fstat.divergences import get_divergence

    div = get_divergence(divergence)
    c, s = y.mean(), y.std() or 1.0
    z, zh = (y - c) / s, (hi - c) / s

    def obj(p):
        lam = math.exp(p[0])
        u = zh - lam * div.f0 + math.exp(p[1])
        with np.errstate(all="ignore"):
            v = lam * eta + u + lam * np.mean(div.conjugate((z - u) / lam))
        return v if np.isfinite(v) else 1e10

    res = minimize(obj, x0=[0.0, 0.0], method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    return c + s * res.fun


def workload_w1(sizes, rng):
    from fstat.causal import pointwise_bounds
    from fstat.divergences import get_divergence

    rows = []
    for kind in ("gaussian", "discrete"):
        for n in sizes:
            y = rng.standard_normal(n) if kind == "gaussian" else rng.binomial(4, 0.4, n) * 1.0
            support = (-6.0, 6.0) if kind == "gaussian" else (0.0, 4.0)
            y = np.clip(y, *support)
            for name in FIVE:
                start = time.perf_counter()
                lower, upper, info = pointwise_bounds(y, 0.3, divergence=name, support=support,
                                                      return_info=True)
                seconds = time.perf_counter() - start
                ref = pointwise_bounds(y, 0.3, divergence=name, support=support,
                                       method="nested")
                row = {"workload": "W1", "data": kind, "n": n, "divergence": name,
                       "method": "fstat pointwise_bounds", "seconds_both_signs": seconds,
                       "solver": info["upper"]["method"],
                       "abs_error_vs_nested": max(abs(lower - ref[0]), abs(upper - ref[1]))}
                rows.append(row)
                peer = _itbound()
                if n <= 1_000 and not isinstance(peer, str) and kind == "discrete":
                    a = rng.integers(0, 2, n)
                    start = time.perf_counter()
                    try:
                        m_lo, m_up = _itbound_marginal(y, a, name)
                        ref1 = pointwise_bounds(y[a == 1], a.mean(), divergence=name)
                        rows.append({"workload": "W1", "data": kind, "n": n, "divergence": name,
                                     "method": "itbound compute_marginal_bounds_def6 (arm 1)",
                                     "seconds_both_signs": time.perf_counter() - start,
                                     "abs_error_vs_nested": max(abs(m_lo - ref1[0]),
                                                                abs(m_up - ref1[1]))})
                    except Exception as exc:
                        rows.append({"workload": "W1", "n": n, "divergence": name,
                                     "method": "itbound marginal",
                                     "note": f"failed: {type(exc).__name__}: {exc}"})
                if n <= 10_000:
                    eta = float(get_divergence(name).radius(0.3))
                    start = time.perf_counter()
                    up = _scipy_dual_upper(y, eta, name, support[1])
                    rows.append({"workload": "W1", "data": kind, "n": n, "divergence": name,
                                 "method": "scipy Nelder-Mead on the dual (upper only)",
                                 "seconds_both_signs": 2 * (time.perf_counter() - start),
                                 "abs_error_vs_nested": abs(up - ref[1])})
    return rows


def workload_w1_timing(sizes, repeats=5):
    """Spec §8 timing table: median of ``repeats`` warm runs per divergence and sign (Gaussian y,
    observed support, e = 0.3), with the CPU seconds (less sensitive to other processes)."""
    from fstat.causal import pointwise_bounds

    rows = []
    rng = np.random.default_rng(123)
    for n in sizes:
        y = rng.standard_normal(n)
        for name in FIVE:
            pointwise_bounds(y, 0.3, divergence=name)  # warm-up
            walls, cpus = [], []
            for _ in range(repeats):
                start, cpu = time.perf_counter(), time.process_time()
                pointwise_bounds(y, 0.3, divergence=name)
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - cpu)
            target = 0.010 if n <= 100_000 else 0.100
            per_sign = float(np.median(walls)) / 2.0
            rows.append({"workload": "W1-timing", "data": "gaussian", "n": n, "divergence": name,
                         "method": "fstat pointwise_bounds (per sign = both signs / 2)",
                         "ms_per_sign": 1e3 * per_sign,
                         "cpu_ms_per_sign": 1e3 * float(np.median(cpus)) / 2.0,
                         "spec_target_ms": 1e3 * target if n >= 100_000 else None,
                         "load": _load()})
    return rows


def workload_w1_radii(sizes, seeds=(0, 1, 2)):
    """W1 across radii: the share of sides on which Newton failed (the nested fallback ran) and
    the time per sign, per divergence and propensity e (Gaussian y, observed support; odd seeds
    with U(0, 3) weights). Small e is a large radius: chi2's optimum then puts the top atom's t
    within about p_top^2 of the end of its domain."""
    from fstat.causal import pointwise_bounds

    rows = []
    for n in sizes:
        for name in FIVE:
            for e in (0.005, 0.02, 0.05, 0.2, 0.5, 0.9):
                nested, walls = 0, []
                for seed in seeds:
                    rng = np.random.default_rng(seed)
                    y = rng.standard_normal(n)
                    w = rng.uniform(0.0, 3.0, n) if seed % 2 else None
                    start = time.perf_counter()
                    _, _, info = pointwise_bounds(y, e, divergence=name, weights=w,
                                                  return_info=True)
                    walls.append((time.perf_counter() - start) / 2.0)
                    nested += sum(info[side]["method"] == "nested" for side in ("lower", "upper"))
                rows.append({"workload": "W1-radii", "data": "gaussian", "n": n,
                             "divergence": name, "e": e, "nested_sides": nested,
                             "sides": 2 * len(seeds), "median_ms_per_sign": 1e3 * np.median(walls),
                             "max_ms_per_sign": 1e3 * max(walls), "load": _load()})
    return rows


def _print_radii_table(rows):
    rows = [r for r in rows if r["workload"] == "W1-radii"]
    if not rows:
        return
    print("W1 across radii: sides solved by the nested fallback / sides, median (max) ms per sign")
    for n in sorted({r["n"] for r in rows}):
        radii = sorted({r["e"] for r in rows})
        print(f"n = {n}:" + "".join(f"{'e=' + str(e):>16s}" for e in radii))
        for name in FIVE:
            cells = sorted((r for r in rows if r["n"] == n and r["divergence"] == name),
                           key=lambda r: r["e"])
            print(f"{name:>9s}" + "".join(
                f"{r['nested_sides']}/{r['sides']} {r['median_ms_per_sign']:.0f}"
                f"({r['max_ms_per_sign']:.0f})".rjust(16) for r in cells))


def _print_timing_table(rows):
    rows = [r for r in rows if r["workload"] == "W1-timing"]
    if not rows:
        return
    sizes = sorted({r["n"] for r in rows})
    print("W1 exact solver, median of warm runs, ms per divergence per sign (wall / cpu):")
    print("n".rjust(9) + "".join(name.rjust(16) for name in FIVE))
    for n in sizes:
        cells = {r["divergence"]: r for r in rows if r["n"] == n}
        print(f"{n:9d}" + "".join(
            f"{cells[name]['ms_per_sign']:7.1f} /{cells[name]['cpu_ms_per_sign']:6.1f}"
            .rjust(16) for name in FIVE))
    print("spec §8 targets: < 10 ms at n = 1e5, < 100 ms at n = 1e6 (CPU, float64)")


def _load():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


def workload_w3(sizes, seed, max_iter):
    import warnings

    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_confounded_paper

    rows = []
    for n in sizes:
        X, y, a, truth = make_confounded_paper(n, random_state=seed, return_truth=True)
        Xe = np.random.default_rng(seed + 1).uniform(-2, 2, size=(400, X.shape[1]))
        start, cpu = time.perf_counter(), time.process_time()
        est = ConditionalDivergenceBounds(max_iter=max_iter, random_state=seed, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, treatment=a)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        mu1 = truth.mu_fn(1, Xe)
        e_hat = est.predict_propensity(Xe)
        bins = np.digitize(e_hat, [0.3, 0.5, 0.7])
        allb = est.predict_outcome_bounds(Xe, 1, divergence="all")
        agg = est.predict_outcome_bounds(Xe, 1)
        for name, b in [*zip(est.divergences_, np.moveaxis(allb, 1, 0)), ("intersection", agg)]:
            width = b[:, 1] - b[:, 0]
            cover = (b[:, 0] <= mu1) & (mu1 <= b[:, 1])
            rows.append({"workload": "W3", "n": n, "seed": seed, "divergence": name,
                         "method": "fstat ConditionalDivergenceBounds (all 5 x 2 x 2)",
                         "seconds": seconds, "cpu_seconds": cpu, "load": _load(),
                         "coverage": float(cover.mean()), "mean_width": float(width.mean()),
                         "width_by_ehat_bin": {lab: float(width[bins == i].mean())
                                               for i, lab in enumerate(
                                                   ("<0.3", "0.3-0.5", "0.5-0.7", ">0.7"))
                                               if np.any(bins == i)},
                         "violation_fraction": float(est.domain_violation_fraction_.max())})
    return rows


def _true_ate_paper(seed=12345, n=200_000):
    """Population ATE of make_confounded_paper (Monte Carlo over X of the exact E[Y | do(a), x])."""
    from fstat.datasets import make_confounded_paper

    _, _, _, truth = make_confounded_paper(n, random_state=seed, return_truth=True)
    return float(np.mean(truth.mu1 - truth.mu0))


def workload_w4(n, seed, max_iter):
    """W4 (spec §8): the ATE under different assumptions on W3's data. fstat's one-step averaged
    f-divergence bounds (marginal sensitivity through B_f(e)) vs DoubleML IRM + its
    omitted-variable-bias sensitivity analysis and EconML LinearDML / DRLearner +
    ``sensitivity_interval`` (cf_y, cf_d / c_y, c_t = 0.03; sklearn HistGradientBoosting
    nuisances for both peers). The intervals answer different questions: they are reported side
    by side, not ranked; coverage is of the true ATE by the interval (and by its 95% CI)."""
    import warnings

    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_confounded_paper

    X, y, a = make_confounded_paper(n, random_state=seed)
    ate = _true_ate_paper()
    rows = []

    def row(method, seconds, lo, up, ci_lo=None, ci_up=None, note=None):
        out = {"workload": "W4", "n": n, "seed": seed, "method": method, "seconds": seconds,
               "ate_true": ate, "ate_lower": float(lo), "ate_upper": float(up),
               "covers_ate": bool(lo <= ate <= up), "load": _load()}
        if ci_lo is not None:
            out.update(ci_lower=float(ci_lo), ci_upper=float(ci_up),
                       ci_covers_ate=bool(ci_lo <= ate <= ci_up))
        if note:
            out["note"] = note
        rows.append(out)

    start = time.perf_counter()
    est = ConditionalDivergenceBounds(max_iter=max_iter, random_state=seed, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, treatment=a)
    seconds = time.perf_counter() - start
    avg = est.average_bounds()
    table, ci = avg.table, avg.conf_int(0.05)
    for source in (*est.divergences_, "aggregate", "manski"):
        t, c = table.loc[("effect", source)], ci.loc[("effect", source)]
        row(f"fstat one-step bounds ({source})", seconds, t["lower"], t["upper"], c.iloc[0],
            c.iloc[1], note="f-divergence sensitivity (radius B_f(e)); fit time shared")
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier as HGBC
        from sklearn.ensemble import HistGradientBoostingRegressor as HGBR
    except ImportError as exc:  # pragma: no cover
        rows.append({"workload": "W4", "method": "peers", "note": f"sklearn missing: {exc}"})
        return rows
    try:
        import doubleml as dml

        start = time.perf_counter()
        data = dml.DoubleMLData.from_arrays(X, y, a)
        irm = dml.DoubleMLIRM(data, ml_g=HGBR(random_state=seed), ml_m=HGBC(random_state=seed),
                              n_folds=5)
        irm.fit()
        irm.sensitivity_analysis(cf_y=0.03, cf_d=0.03)
        seconds = time.perf_counter() - start
        sp = irm.sensitivity_params
        row("DoubleML IRM + sensitivity_analysis(cf_y=cf_d=0.03)", seconds,
            np.ravel(sp["theta"]["lower"])[0], np.ravel(sp["theta"]["upper"])[0],
            np.ravel(sp["ci"]["lower"])[0], np.ravel(sp["ci"]["upper"])[0],
            note=f"omitted-variable-bias bounds; point ATE {float(irm.coef[0]):.4g}")
    except Exception as exc:  # pragma: no cover - optional peer
        rows.append({"workload": "W4", "method": "DoubleML IRM",
                     "note": f"not run: {type(exc).__name__}: {exc}"})
    try:
        from econml.dml import LinearDML
        from econml.dr import DRLearner

        for label, make in (
            ("EconML LinearDML", lambda: LinearDML(model_y=HGBR(random_state=seed),
                                                   model_t=HGBC(random_state=seed),
                                                   discrete_treatment=True, cv=5,
                                                   random_state=seed)),
            ("EconML DRLearner", lambda: DRLearner(model_propensity=HGBC(random_state=seed),
                                                   model_regression=HGBR(random_state=seed),
                                                   cv=5, random_state=seed)),
        ):
            start = time.perf_counter()
            model = make()
            model.fit(y, a, X=None, W=X)
            if label.endswith("LinearDML"):
                lo, up = model.sensitivity_interval(alpha=0.05, c_y=0.03, c_t=0.03)
                point = float(np.ravel(model.ate())[0])
            else:
                lo, up = model.sensitivity_interval(T=1, alpha=0.05, c_y=0.03, c_t=0.03)
                point = float(np.ravel(model.ate())[0])
            seconds = time.perf_counter() - start
            row(f"{label} + sensitivity_interval(c_y=c_t=0.03)", seconds, np.ravel(lo)[0],
                np.ravel(up)[0], note=f"95% sensitivity CI (interval_type='ci'); point ATE "
                                      f"{point:.4g}")
    except Exception as exc:  # pragma: no cover - optional peer
        rows.append({"workload": "W4", "method": "EconML",
                     "note": f"not run: {type(exc).__name__}: {exc}"})
    fit = [r for r in rows if r["method"].startswith("fstat") and "seconds" in r]
    peer = [r for r in rows if r["method"].startswith("DoubleML") and "seconds" in r]
    if fit and peer:
        rows.append({"workload": "W4", "n": n, "method": "ratio fstat fit / DoubleML IRM+sens",
                     "seconds": fit[0]["seconds"] / peer[0]["seconds"],
                     "note": "spec target <= 2"})
    return rows


def _shrunk_propensity(shrink):
    """A deliberately wrong propensity model: logistic regression shrunk towards 1/2."""
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.linear_model import LogisticRegression

    class ShrunkPropensity(ClassifierMixin, BaseEstimator):
        def __init__(self, shrink=0.3):
            self.shrink = shrink

        def fit(self, X, y, sample_weight=None):
            self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
            self.classes_ = self.model_.classes_
            return self

        def predict_proba(self, X):
            return (1 - self.shrink) * self.model_.predict_proba(X) + self.shrink / 2

    return ShrunkPropensity(shrink)


def workload_w5(sizes, seeds, max_iter):
    """W5 (spec §8): debiased vs plug-in conditional bounds against the exact population bounds
    of make_confounded_discrete (the oracle), with a correct (logistic) and a perturbed
    propensity model (logistic shrunk 30% towards 1/2), as n grows: RMSE over the 4 cells x 2
    arms x 2 ends, mean width, time."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_confounded_discrete

    rows = []
    for n in sizes:
        for seed in seeds:
            X, y, a, truth = make_confounded_discrete(n, random_state=seed, return_truth=True)
            for prop_label, prop in (("logistic", LogisticRegression()),
                                     ("shrunk 30%", _shrunk_propensity(0.3))):
                for debiased in (True, False):
                    start = time.perf_counter()
                    est = ConditionalDivergenceBounds(
                        outcome_bounds=(0, 4), max_iter=max_iter, debiased=debiased,
                        propensity_model=prop, random_state=seed, device="cpu")
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        est.fit(X, y, treatment=a)
                    seconds = time.perf_counter() - start
                    for name in FIVE:
                        pop = truth.population_bounds(name)
                        fitted = np.stack([est.predict_outcome_bounds(np.eye(4), arm,
                                                                      divergence=name)
                                           for arm in (0, 1)])
                        rows.append({"workload": "W5", "n": n, "seed": seed, "divergence": name,
                                     "method": f"fstat {'debiased' if debiased else 'plug-in'}"
                                               f", propensity {prop_label}",
                                     "seconds": seconds,
                                     "rmse_vs_oracle": float(np.sqrt(np.mean((fitted - pop)
                                                                             ** 2))),
                                     "mean_width": float(np.mean(fitted[..., 1]
                                                                 - fitted[..., 0])),
                                     "oracle_width": float(np.mean(pop[..., 1] - pop[..., 0])),
                                     "load": _load()})
    return rows


def _probit_sine_oracle(points, support, n_draws=20_000, seed=123):
    """Population bounds (arm, point, divergence, [lower, upper]) of make_probit_sine at
    covariate rows ``points`` (only x_0 matters), y clipped to ``support``: the law of y given
    (A = a, x) is that of a tau(x) + U + eps with U weighted by P(A = a | x, U), drawn once."""
    from scipy.special import ndtr

    from fstat.causal import pointwise_bounds

    c, alpha, beta = 0.05, 2.0, 1.0  # the simulator's constants
    rng = np.random.default_rng(seed)
    u, eps = rng.standard_normal(n_draws), rng.standard_normal(n_draws)
    e1 = c + (1 - 2 * c) * ndtr(alpha * points[:, 0] / np.sqrt(1 + beta**2))
    tau = 5.0 * np.sin(2 * np.pi * (e1 - c) / (1 - 2 * c))
    out = np.empty((2, len(points), len(FIVE), 2))
    for i in range(len(points)):
        treated = c + (1 - 2 * c) * ndtr(alpha * points[i, 0] + beta * u)
        for arm, weights, e in ((0, 1 - treated, 1 - e1[i]), (1, treated, e1[i])):
            values = np.clip(arm * tau[i] + u + eps, *support)
            for d, name in enumerate(FIVE):
                out[arm, i, d] = pointwise_bounds(values, e, divergence=name, weights=weights,
                                                  support=support)
    return out


def workload_w6(sizes, seeds):
    """W6: conditional bounds with continuous covariates against an oracle (module docstring)."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_probit_sine

    support = (-6.0, 6.0)
    points = np.zeros((21, 5))
    points[:, 0] = np.linspace(-1.0, 1.0, 21)  # x_0 has sd 0.71
    oracle = _probit_sine_oracle(points, support)
    rows = []
    for n in sizes:
        for seed in seeds:
            X, y, a = make_probit_sine(n, random_state=seed)
            start = time.perf_counter()
            est = ConditionalDivergenceBounds(outcome_bounds=support, random_state=seed,
                                              propensity_model=LogisticRegression(),
                                              device="cpu")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, np.clip(y, *support), treatment=a)
                returned = np.stack([est.predict_outcome_bounds(points, arm, divergence="all")
                                     for arm in (0, 1)])  # (arm, point, divergence, 2)
            seconds = time.perf_counter() - start
            # the plug-in as fitted, lambda (B_f(e) + m) + u per fold (standardised units)
            theta, _ = est._theta(points)
            theta = theta.reshape(len(FIVE), est.dual_state_["layout"]["n_folds"], 2,
                                  len(points), 2).mean(axis=1)
            fitted = np.stack([est.y_center_ - est.y_scale_ * theta[:, 1],
                               est.y_center_ + est.y_scale_ * theta[:, 0]], axis=-1)
            fitted = np.transpose(fitted, (2, 1, 0, 3))  # (arm, point, divergence, 2)
            variants = {"returned": returned, "clipped only": np.clip(fitted, *support),
                        "plug-in as fitted": fitted}
            # inverted estimates are returned unchanged (no interval to score): RMSE over the
            # valid ones, the same set for every variant, and the inverted share reported
            valid = (fitted[..., 0] <= fitted[..., 1])[..., None]
            for label, bounds in variants.items():
                err = np.where(valid, bounds - oracle, 0.0) ** 2
                for d, name in enumerate((*FIVE, "all")):
                    part = (slice(None), slice(None), d) if d < len(FIVE) else (Ellipsis,)
                    rows.append({"workload": "W6", "n": n, "seed": seed, "divergence": name,
                                 "method": f"fstat {label}", "seconds": seconds,
                                 "rmse_vs_oracle": float(np.sqrt(err[part].sum()
                                                                 / (2 * valid[part].sum()))),
                                 "inverted": float(1.0 - valid[part].mean()),
                                 "load": _load()})
    return rows


def _itbound():
    try:
        import itbound  # noqa: F401

        return itbound
    except Exception as exc:  # pragma: no cover - optional peer
        return f"itbound unavailable: {type(exc).__name__}: {exc}"


def workload_w2(sizes, seeds, max_iter, itbound_epochs, full):
    from fstat.causal import ConditionalDivergenceBounds
    from fstat.datasets import make_confounded_discrete

    rows = []
    peer = _itbound()
    for n in sizes:
        for seed in seeds:
            X, y, a, truth = make_confounded_discrete(n, random_state=seed, return_truth=True)
            start, cpu = time.perf_counter(), time.process_time()
            est = ConditionalDivergenceBounds(outcome_bounds=(0, 4), max_iter=max_iter,
                                              random_state=seed, device="cpu")
            est.fit(X, y, treatment=a)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
            for name in FIVE:
                pop = truth.population_bounds(name)
                fitted = np.stack([est.predict_outcome_bounds(np.eye(4), arm, divergence=name)
                                   for arm in (0, 1)])
                err = np.abs(fitted - pop)
                cover = np.mean((fitted[..., 0] <= truth.cell_mu + 1e-12)
                                & (truth.cell_mu <= fitted[..., 1] + 1e-12))
                rows.append({"workload": "W2", "n": n, "seed": seed, "divergence": name,
                             "method": "fstat ConditionalDivergenceBounds (all 5 x 2 x 2)",
                             "seconds": seconds, "cpu_seconds": cpu, "load": _load(),
                             "max_err": float(err.max()),
                             "mean_err": float(err.mean()), "coverage_cells": float(cover),
                             "mean_width": float(np.mean(fitted[..., 1] - fitted[..., 0])),
                             "violation_fraction": float(est.domain_violation_fraction_.max()),
                             "fit_time_stages": est.fit_time_})
            if isinstance(peer, str):
                rows.append({"workload": "W2", "n": n, "seed": seed, "method": "itbound",
                             "note": peer})
            else:
                rows.extend(_run_itbound(peer, X, y, a, truth, n, seed, itbound_epochs, full))
    return rows


def _run_itbound(peer, X, y, a, truth, n, seed, epochs, full):  # pragma: no cover - optional
    rows = []
    names = FIVE if full else ("kl",)
    for name in names:
        try:
            start = time.perf_counter()
            bounds = _itbound_fit_predict(peer, X, y, a, name, epochs, seed)
            seconds = time.perf_counter() - start
            pop = truth.population_bounds(name)
            err = np.abs(bounds - pop)
            rows.append({"workload": "W2", "n": n, "seed": seed, "divergence": name,
                         "method": f"itbound ({epochs} epochs)", "seconds": seconds,
                         "max_err": float(err.max()), "mean_err": float(err.mean())})
        except Exception as exc:
            rows.append({"workload": "W2", "n": n, "seed": seed, "divergence": name,
                         "method": "itbound", "note": f"failed: {type(exc).__name__}: {exc}",
                         "trace": traceback.format_exc()[-800:]})
    return rows


def _itbound_fit_predict(peer, X, y, a, name, epochs, seed):  # pragma: no cover - optional
    """itbound's conditional estimator with the paper's settings; returns (2, 4, 2) bounds.

    ``compute_causal_bounds`` bounds arm 1 only; arm 0 is obtained by relabelling the
    treatment (A -> 1 - A), which is what the estimator's symmetric design implies.
    """
    import torch
    from fbound.estimators.causal_bound import compute_causal_bounds

    dual = {"hidden_sizes": (64, 64), "activation": "relu", "dropout": 0.0, "h_clip": 20.0,
            "device": "cpu"}
    fit = {"n_folds": 2, "num_epochs": epochs, "batch_size": 32, "lr": 5e-4,
           "weight_decay": 1e-4, "max_grad_norm": 10.0, "eps_propensity": 1e-3,
           "deterministic_torch": False, "train_m_on_fold": True,
           "propensity_config": {"C": 1.0, "max_iter": 1000, "penalty": "l2", "solver": "lbfgs",
                                 "n_jobs": 1},
           "m_config": {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 5,
                        "min_samples_split": 10, "n_jobs": 1},
           "verbose": False, "log_every": 1000}
    threads = torch.get_num_threads()
    out = np.empty((2, 4, 2))
    cells = np.argmax(X, axis=1)
    for arm in (0, 1):
        treat = a if arm == 1 else 1 - a
        df = compute_causal_bounds(Y=y.astype(np.float32), A=treat, X=X.astype(np.float32),
                                   divergence=name, phi=lambda t: t,
                                   propensity_model="logistic", m_model="random_forest",
                                   dual_net_config=dual, fit_config=fit, seed=int(seed))
        df = df.sort_values("i")
        lower, upper = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
        for c in range(4):
            sel = cells[df["i"].to_numpy()] == c
            out[arm, c] = np.nanmedian(lower[sel]), np.nanmedian(upper[sel])
    torch.set_num_threads(threads)  # the peer may change global torch state
    return out


def _itbound_marginal(y, a, name):  # pragma: no cover - optional
    from fbound.estimators.causal_bound import compute_marginal_bounds_def6

    res = compute_marginal_bounds_def6(y, a, name)
    return res["mu1_lower"], res["mu1_upper"]


def _print_table(rows):
    keys = ("workload", "data", "n", "divergence", "method", "seconds", "cpu_seconds", "load",
            "seconds_both_signs", "max_err", "mean_err", "abs_error_vs_nested", "coverage_cells",
            "coverage", "mean_width", "violation_fraction", "ate_true", "ate_lower", "ate_upper",
            "covers_ate", "ci_lower", "ci_upper", "ci_covers_ate", "rmse_vs_oracle", "inverted",
            "oracle_width", "note")
    for row in rows:
        parts = []
        for k in keys:
            if k in row:
                v = row[k]
                parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
        print("  ".join(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--workloads", default="w1,w2,w3",
                        help="comma-separated subset of w1,...,w6 (w4, w5, w6 are opt-in)")
    args = parser.parse_args(argv)
    chosen = {w.strip().lower() for w in args.workloads.split(",")}
    rng = np.random.default_rng(0)
    meta = {"machine": platform.node(), "python": platform.python_version(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    try:
        import torch

        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    w1_sizes = (1_000, 10_000, 100_000) if args.quick else (1_000, 10_000, 100_000, 1_000_000)
    rows = workload_w1(w1_sizes, rng) if "w1" in chosen else []
    if "w1" in chosen:
        timing_sizes = (1_000, 10_000, 100_000) if args.quick else (1_000, 10_000, 100_000,
                                                                     1_000_000)
        rows += workload_w1_timing(timing_sizes)
        rows += workload_w1_radii((100_000,) if args.quick else (100_000, 1_000_000))
    if "w2" in chosen:
        if args.quick:
            rows += workload_w2((4000,), (0,), 500, 20, args.full)
        else:
            rows += workload_w2((4000, 8000), (0, 1, 2), 500, 256, args.full)
    if "w3" in chosen:
        rows += workload_w3((4000,) if args.quick else (4000, 16000), 0, 500)
    if "w4" in chosen:
        rows += workload_w4(4000, 0, 500)
    if "w5" in chosen:
        if args.quick:
            rows += workload_w5((1000, 4000), (0,), 300)
        else:
            rows += workload_w5((1000, 2000, 4000, 8000), (0, 1), 500)
    if "w6" in chosen:
        rows += workload_w6((1000,) if args.quick else (1000, 4000), (0,) if args.quick
                            else (0, 1))
    _print_table([r for r in rows if r["workload"] not in ("W1-timing", "W1-radii")])
    _print_timing_table(rows)
    _print_radii_table(rows)
    meta["peak_rss_mb"] = _rss_mb()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "causal.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1,
                                                default=str))
    print(f"wrote {out / 'causal.json'}")


if __name__ == "__main__":
    main()
