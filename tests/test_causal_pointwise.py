"""Exact pointwise solver, Manski bounds, aggregation and the dual risk."""

import math
import time
import warnings

import numpy as np
import pytest
import torch

from fstat import divergences as fdiv
from fstat.causal import (
    InvertedBoundsWarning,
    aggregate_bounds,
    dual_risk,
    manski_bounds,
    pointwise_bounds,
)
from fstat.divergences import get_divergence
from tests._reference_causal import divergence_value, nested_dual_upper, primal_upper

FIVE = ("kl", "hellinger", "chi2", "tv", "js")


def _law(seed, n=6):
    rng = np.random.default_rng(seed)
    y = np.sort(rng.choice(np.arange(24.0), size=n, replace=False)) * 0.25
    w = rng.dirichlet(np.ones(n))
    return y, w


def test_reexports_are_the_registry_functions():
    import fstat.causal as causal

    for name in ("radius", "radius_derivative", "conjugate", "conjugate_derivative",
                 "conjugate_domain"):
        assert getattr(causal, name) is getattr(fdiv, name)


@pytest.mark.slow
@pytest.mark.parametrize("divergence", FIVE)
@pytest.mark.parametrize("declared", [False, True])
def test_solver_matches_primal_and_nested_references(divergence, declared):
    # spec §6.3: e over {0.05 ... 0.95}, both ends against R1 (1e-4) and R2 (1e-7)
    for seed, e in enumerate((0.05, 0.1, 0.3, 0.6, 0.95)):
        y, w = _law(seed)
        lo, hi = (y.min() - 1.0, y.max() + 1.5) if declared else (None, None)
        support = (lo, hi) if declared else None
        eta = float(get_divergence(divergence).radius(e))
        lower, upper = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support)
        r1_up = primal_upper(y, w, eta, divergence, lo=lo, hi=hi)
        r1_lo = -primal_upper(-y, w, eta, divergence, lo=None if hi is None else -hi,
                              hi=None if lo is None else -lo)
        assert upper == pytest.approx(r1_up, abs=1e-4)
        assert lower == pytest.approx(r1_lo, abs=1e-4)
        r2_up = nested_dual_upper(y, w, eta, divergence, hi=hi)
        r2_lo = -nested_dual_upper(-y, w, eta, divergence, hi=None if lo is None else -lo)
        assert upper == pytest.approx(r2_up, abs=1e-7)
        assert lower == pytest.approx(r2_lo, abs=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("divergence, f, f0", [
    ("kl", lambda t: t * np.log(t), 0.0),
    ("hellinger", lambda t: 0.5 * (np.sqrt(t) - 1.0) ** 2, 0.5),
])
def test_a_registered_copy_gives_identical_bounds(divergence, f, f0):
    # spec 6.1: c f + c'(t - 1) is the same divergence ball (radius and divergence both
    # scale by c), so its bounds, solved with numeric conjugates, equal the built-in's
    c, c_affine = 2.5, 0.7
    copy = fdiv.register_divergence(f"copy_{divergence}_for_test",
                                    lambda t: c * f(t) + c_affine * (t - 1.0),
                                    c * f0 - c_affine, overwrite=True)
    try:
        y, w = _law(3)
        for support in (None, (y.min() - 1.0, y.max() + 1.0)):
            expected = pointwise_bounds(y, 0.3, divergence=divergence, weights=w,
                                        support=support)
            got = pointwise_bounds(y, 0.3, divergence=copy, weights=w, support=support)
            np.testing.assert_allclose(got, expected, atol=1e-8)
    finally:
        fdiv._REGISTRY.pop(copy.name, None)


@pytest.mark.parametrize("divergence", ["kl", "tv"])
@pytest.mark.parametrize("support", [None, (-1.0, 7.0)])
def test_closed_forms_match_iterative_solvers(divergence, support):
    y, w = _law(4, n=12)
    for e in (0.05, 0.3, 0.7, 0.95):
        closed = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                  method="closed_form")
        other = "newton" if divergence == "kl" else "nested"
        iterative = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                     method=other)
        np.testing.assert_allclose(closed, iterative, atol=1e-8)
        nested = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                  method="nested")
        np.testing.assert_allclose(closed, nested, atol=1e-8)


@pytest.mark.parametrize("divergence", FIVE)
def test_containment_monotonicity_and_symmetry(divergence):
    y, w = _law(5, n=8)
    support = (y.min() - 0.5, y.max() + 0.5)
    previous = None
    for e in (0.95, 0.8, 0.5, 0.3, 0.1, 0.02):
        lower, upper = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support)
        m_lo, m_hi = manski_bounds(y, e, weights=w, support=support)
        assert support[0] - 1e-9 <= lower <= m_lo + 1e-9
        assert m_hi - 1e-9 <= upper <= support[1] + 1e-9
        if previous is not None:  # monotone in eta (eta grows as e falls)
            assert lower <= previous[0] + 1e-10 and upper >= previous[1] - 1e-10
        previous = (lower, upper)
        lo_neg, up_neg = pointwise_bounds(-y, e, divergence=divergence, weights=w,
                                          support=(-support[1], -support[0]))
        assert lower == -up_neg and upper == -lo_neg  # bit-for-bit


@pytest.mark.parametrize("divergence", FIVE)
def test_affine_equivariance(divergence):
    y, w = _law(6, n=7)
    base = np.array(pointwise_bounds(y, 0.4, divergence=divergence, weights=w,
                                     support=(-1.0, 6.0)))
    for alpha, beta in ((3.0, -2.0), (0.01, 5.0), (250.0, 1e3)):
        moved = pointwise_bounds(alpha * y + beta, 0.4, divergence=divergence, weights=w,
                                 support=(alpha * -1.0 + beta, alpha * 6.0 + beta))
        np.testing.assert_allclose(moved, alpha * base + beta, rtol=1e-9, atol=1e-9 * alpha)


@pytest.mark.parametrize("divergence", FIVE)
def test_worst_case_law_identities_to_the_spec_tolerance(divergence):
    # spec 2.3 / 6.3: the ratios and the phantom mass sum to 1 and E_Q* y equals the bound to
    # 1e-8 of the outcome scale; the Newton solvers stop on the value, which left the gradient
    # (and these identities, on the boundary and off it) near 1e-7
    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(2, 30))
        y = rng.standard_normal(n) * rng.choice([0.1, 1.0, 10.0])
        w = rng.random(n)
        w /= w.sum()
        support = None if trial % 2 else (y.min() - 3 * rng.random(), y.max() + 3 * rng.random())
        lower, upper, info = pointwise_bounds(y, float(rng.uniform(0.05, 0.95)),
                                              divergence=divergence, weights=w,
                                              support=support, return_info=True)
        lo, hi = (y.min(), y.max()) if support is None else support
        for side, bound, end in (("upper", upper, hi), ("lower", lower, lo)):
            ratio, phantom = info[side]["ratio"], info[side]["phantom_mass"]
            assert abs(w @ ratio + phantom - 1.0) <= 1e-10
            assert abs(w @ (ratio * y) + phantom * end - bound) <= 1e-8 * (hi - lo)


@pytest.mark.parametrize("divergence", FIVE)
@pytest.mark.parametrize("support", [None, (-2.0, 8.0)])
def test_worst_case_law_reproduces_the_bound(divergence, support):
    y, w = _law(7, n=9)
    lower, upper, info = pointwise_bounds(y, 0.3, divergence=divergence, weights=w,
                                          support=support, return_info=True)
    wn = w / w.sum()
    for side, sign, value in (("upper", 1.0, upper), ("lower", -1.0, -lower)):
        d = info[side]
        ratio, phantom = d["ratio"], d["phantom_mass"]
        assert np.all(ratio >= -1e-12)
        assert np.dot(wn, ratio) + phantom == pytest.approx(1.0, abs=1e-6)
        top = sign * (y.max() if support is None else (support[1] if sign > 0 else support[0]))
        mean_q = np.dot(wn * ratio, sign * y) + phantom * top
        assert mean_q == pytest.approx(value, abs=1e-6)
        assert d["converged"] and d["binding"]
        if divergence != "tv":  # the ball binds: D_f(P || Q*) = eta
            q = np.concatenate([wn * ratio, [phantom]])
            p = np.concatenate([wn, [0.0]])
            eta = float(get_divergence(divergence).radius(0.3))
            assert divergence_value(p, q, divergence) == pytest.approx(eta, abs=1e-6)


def test_duplicates_collapse_and_zero_weights():
    y = np.array([0.0, 1.0, 1.0, 3.0, 3.0, 3.0])
    collapsed = pointwise_bounds([0.0, 1.0, 3.0], 0.4, divergence="chi2", weights=[1, 2, 3])
    repeated = pointwise_bounds(y, 0.4, divergence="chi2")
    np.testing.assert_allclose(repeated, collapsed, atol=1e-12)
    with_zero = pointwise_bounds(np.append(y, 100.0), 0.4, divergence="chi2",
                                 weights=np.append(np.ones(6), 0.0))
    np.testing.assert_allclose(with_zero, collapsed, atol=1e-12)


@pytest.mark.parametrize("divergence", FIVE)
def test_limits(divergence):
    y, w = _law(8, n=5)
    mean = np.dot(w, y)
    np.testing.assert_allclose(pointwise_bounds(y, 1.0, divergence=divergence, weights=w),
                               (mean, mean), atol=1e-12)
    near_one = pointwise_bounds(y, 1 - 1e-9, divergence=divergence, weights=w)
    np.testing.assert_allclose(near_one, (mean, mean), atol=1e-3)
    lower, upper = pointwise_bounds(y, 1e-12, divergence=divergence, weights=w,
                                    support=(-1.0, 9.0))
    assert upper > 9.0 - 0.05 and lower < -1.0 + 0.05
    assert pointwise_bounds([2.5], 0.3, divergence=divergence) == (2.5, 2.5)
    two = pointwise_bounds([0.0, 1.0], 0.3, divergence=divergence, weights=[0.3, 0.7])
    eta = float(get_divergence(divergence).radius(0.3))
    assert two[1] == pytest.approx(primal_upper([0.0, 1.0], [0.3, 0.7], eta, divergence),
                                   abs=1e-4)


def test_tv_with_large_radius_gives_the_support():
    y, w = _law(9)
    assert pointwise_bounds(y, divergence="tv", weights=w, radius=1.0,
                            support=(-3.0, 11.0)) == (-3.0, 11.0)
    assert pointwise_bounds(y, divergence="tv", weights=w, radius=5.0) == (y.min(), y.max())


def test_declared_support_widens_the_upper_bound():
    y, w = _law(10)
    _, observed = pointwise_bounds(y, 0.5, divergence="hellinger", weights=w)
    _, declared = pointwise_bounds(y, 0.5, divergence="hellinger", weights=w,
                                   support=(y.min(), y.max() + 2.0))
    assert declared > observed
    eta = float(get_divergence("hellinger").radius(0.5))
    assert declared == pytest.approx(primal_upper(y, w, eta, "hellinger", hi=y.max() + 2.0),
                                     abs=1e-4)


def test_unbounded_outcomes_upper_bound_grows_with_n():
    z = np.random.default_rng(0).standard_normal(10_000)
    for divergence in FIVE:
        _, small = pointwise_bounds(z[:100], 0.5, divergence=divergence)
        _, large = pointwise_bounds(z, 0.5, divergence=divergence)
        assert large >= small + 0.3, divergence


def test_theorem1_radius_bounds_the_divergence():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n_u, n_y = rng.integers(3, 6), rng.integers(4, 9)
        p_u = rng.dirichlet(np.ones(n_u))
        p_a = rng.uniform(0.02, 0.98, n_u)  # P(A=1 | u)
        kernel = rng.dirichlet(np.ones(n_y) * 0.7, size=n_u)  # P(y | u, a=1)
        e = float(np.dot(p_u, p_a))
        post = p_u * p_a / e
        p_obs = post @ kernel
        q_do = p_u @ kernel
        for divergence in FIVE:
            bound = float(get_divergence(divergence).radius(e))
            assert divergence_value(p_obs, q_do, divergence) <= bound + 1e-12
    # equality: U determines A (a = 1 iff u = 0) and Y reveals U
    p_u = np.array([0.3, 0.45, 0.25])
    p_obs = np.array([1.0, 0.0, 0.0])
    for divergence in FIVE:
        bound = float(get_divergence(divergence).radius(0.3))
        assert divergence_value(p_obs, p_u, divergence) == pytest.approx(bound, abs=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        pointwise_bounds([1.0, 2.0])
    with pytest.raises(ValueError, match="exactly one"):
        pointwise_bounds([1.0, 2.0], 0.5, radius=0.1)
    with pytest.raises(ValueError, match="propensity"):
        pointwise_bounds([1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="outside support.*extremes are 1.0 and 2.0"):
        pointwise_bounds([1.0, 2.0], 0.5, support=(0.0, 1.5))
    with pytest.raises(ValueError, match="non-finite"):
        pointwise_bounds([1.0, np.nan], 0.5)
    # complex input is refused (numpy dropped the imaginary part with only a warning)
    from fstat.causal import manski_bounds

    for call in (lambda v, w: pointwise_bounds(v, 0.5, weights=w),
                 lambda v, w: manski_bounds(v, 0.5, weights=w)):
        with pytest.raises(ValueError, match="values must be real"):
            call(np.array([1.0, 2.0]) + 1j, None)
        with pytest.raises(ValueError, match="weights must be real"):
            call([1.0, 2.0], np.array([1.0, 1.0]) + 0j)
    # dual_risk: NaN in y or the dual variables is an error (it returned nan); a column y is
    # flattened as before
    lam, u = np.ones((3, 2)), np.zeros((3, 2))
    assert dual_risk(np.array([[0.5], [0.0], [1.0]]), [0, 1, 1], [0.5] * 3, lam, u,
                     divergence="kl") == dual_risk([0.5, 0.0, 1.0], [0, 1, 1], [0.5] * 3, lam,
                                                   u, divergence="kl")
    with pytest.raises(ValueError, match="y contains non-finite"):
        dual_risk([np.nan, 0.0, 1.0], [0, 1, 1], [0.5] * 3, lam, u, divergence="kl")
    with pytest.raises(ValueError, match="finite"):
        dual_risk([0.5, 0.0, 1.0], [0, 1, 1], [0.5] * 3, lam, np.full((3, 2), np.nan),
                  divergence="kl")
    with pytest.raises(ValueError, match="method"):
        pointwise_bounds([1.0, 2.0], 0.5, method="adam")
    with pytest.raises(ValueError, match="closed_form"):
        pointwise_bounds([1.0, 2.0], 0.5, divergence="chi2", method="closed_form")
    with pytest.raises(ValueError, match="f\\(0\\) = inf"):
        pointwise_bounds([1.0, 2.0], 0.5, divergence="reverse_kl")


def test_large_n_speed():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(100_000)
    for support in ((-6.0, 6.0), None):
        start = time.process_time()
        for divergence in FIVE:
            lower, upper, info = pointwise_bounds(y, 0.3, divergence=divergence,
                                                  support=support, return_info=True)
            assert -6.0 <= lower < upper <= 6.0
            # the fast exact paths, never the nested fallback
            assert info["upper"]["method"] in ("newton", "closed_form")
            assert info["lower"]["method"] in ("newton", "closed_form")
        # spec §8: 10 ms per divergence per sign (0.1 s here) is measured by
        # benchmarks/bench_causal.py; CPU seconds with a 20x margin for shared CI machines
        assert time.process_time() - start < 2.0


def test_manski_bounds():
    assert manski_bounds([1.0, 3.0], 0.5, support=(0.0, 4.0)) == (1.0, 3.0)
    assert manski_bounds([1.0, 3.0], 0.5) == pytest.approx((1.5, 2.5))


def test_aggregation_modes():
    lower = np.array([[0.0, 1.0, 2.0], [3.0, 0.5, 1.0]])
    upper = np.array([[5.0, 4.0, 3.0], [2.0, 2.5, 6.0]])
    lo, up, k = aggregate_bounds(lower, upper)
    np.testing.assert_array_equal(lo, [2.0, 3.0])
    np.testing.assert_array_equal(up, [3.0, 2.0])
    np.testing.assert_array_equal(k, [1, 1])
    lo, up, k = aggregate_bounds(lower, upper, method="union")
    np.testing.assert_array_equal(lo, [0.0, 0.5])
    np.testing.assert_array_equal(up, [5.0, 6.0])
    np.testing.assert_array_equal(k, [3, 3])
    lo, up, _ = aggregate_bounds(lower, upper, method="kth", k=2)
    np.testing.assert_array_equal(lo, [1.0, 1.0])
    np.testing.assert_array_equal(up, [4.0, 2.5])
    lo, up, k = aggregate_bounds(lower, upper, method="adaptive")
    np.testing.assert_array_equal(k, [1, 2])
    np.testing.assert_array_equal(lo, [2.0, 1.0])
    np.testing.assert_array_equal(up, [3.0, 2.5])
    with pytest.warns(InvertedBoundsWarning):  # even the union inverts: it is returned
        lo, up, k = aggregate_bounds([[3.0, 4.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 0.5]],
                                     method="adaptive")
    np.testing.assert_array_equal(lo, [3.0, 0.0])  # row 2: k = 2 (union) is not inverted
    np.testing.assert_array_equal(up, [2.0, 2.0])
    np.testing.assert_array_equal(k, [2, 2])
    with pytest.raises(ValueError, match="k"):
        aggregate_bounds(lower, upper, method="kth")
    with pytest.raises(ValueError, match="k"):
        aggregate_bounds(lower, upper, method="kth", k=4)
    with pytest.raises(ValueError, match="method"):
        aggregate_bounds(lower, upper, method="tight_kth")
    assert aggregate_bounds([0.0, 1.0], [3.0, 2.0]) == (1.0, 2.0, 1)
    # None: no aggregation (spec 2.9), the per-divergence intervals as given
    lo, up, k = aggregate_bounds(lower.tolist(), upper, method=None)
    np.testing.assert_array_equal(lo, lower)
    np.testing.assert_array_equal(up, upper)
    assert k is None and lo.dtype == np.float64
    lo, _, _ = aggregate_bounds(lower, upper, method=None)
    lo[0, 0] = 99.0
    assert lower[0, 0] == 0.0  # a copy, not the caller's array
    lo, up, k = aggregate_bounds([0.0, 1.0], [3.0, 2.0], method=None)
    np.testing.assert_array_equal(np.stack([lo, up]), [[0.0, 1.0], [3.0, 2.0]])
    assert k is None


def _population(seed):
    rng = np.random.default_rng(seed)
    n_x, n_y = 3, 5
    y_vals = np.linspace(0.0, 4.0, n_y)
    p_x = rng.dirichlet(np.ones(n_x))
    e1 = rng.uniform(0.2, 0.8, n_x)
    pmf = rng.dirichlet(np.ones(n_y), size=(n_x, 2))  # P(y | x, a)
    rows = []
    for x in range(n_x):
        for a in (0, 1):
            pa = e1[x] if a else 1 - e1[x]
            for j in range(n_y):
                rows.append((x, a, y_vals[j], p_x[x] * pa * pmf[x, a, j]))
    x, a, y, w = (np.array(c) for c in zip(*rows))
    return x.astype(int), a.astype(int), y, w, e1


@pytest.mark.parametrize("divergence", FIVE)
def test_dual_risk_is_neyman_orthogonal(divergence):
    x, a, y, w, e1 = _population(0)
    rng = np.random.default_rng(1)
    lam_x = rng.uniform(0.5, 2.0, (3, 2))
    f0 = get_divergence(divergence).f0
    u_x = 4.0 - lam_x * f0 + rng.uniform(0.1, 1.0, (3, 2))  # feasible for every y <= 4
    direction = rng.normal(size=3)
    lam, u = lam_x[x], u_x[x]

    def risk(t, debiased):
        e = e1[x] + t * direction[x]
        return dual_risk(y, a, e, lam, u, divergence=divergence, debiased=debiased,
                         sample_weight=w)

    h = 1e-5
    d_db = (risk(h, True) - risk(-h, True)) / (2 * h)
    d_plain = (risk(h, False) - risk(-h, False)) / (2 * h)
    assert abs(d_db) < 1e-5
    assert abs(d_plain) > 1e-2


def test_dual_risk_per_sample_and_surrogate():
    y = np.array([0.0, 1.0, 3.0])
    lam = np.ones((3, 2))
    u = np.full((3, 2), 1.5)
    a = np.array([0, 1, 1])
    e = np.array([0.5, 0.4, 0.6])
    per = dual_risk(y, a, e, lam, u, divergence="kl", reduce=None, debiased=False)
    assert np.isinf(per[2]) and np.all(np.isfinite(per[:2]))
    expected0 = 1.0 * (-np.log(0.5) + (-1.0 - np.log(1.5))) + 1.5
    assert per[0] == pytest.approx(expected0)
    smooth = dual_risk(y, a, e, lam, u, divergence="kl", reduce=None, surrogate=(1e-3, 1e3))
    assert np.all(np.isfinite(smooth))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dual_risk(y[:2], a[:2], e[:2], lam[:2], u[:2], divergence="chi2")


@pytest.mark.parametrize("divergence", FIVE)
def test_newton_closed_forms_and_nested_agree_on_random_laws(divergence):
    # the fast path (auto: closed form or warm-started Newton) against the independent nested
    # 1-D solver, on laws with ties, random weights, declared and observed supports
    rng = np.random.default_rng(11)
    for trial in range(3):
        n = int(rng.integers(5, 40))
        y = np.round(rng.standard_normal(n) * 2.0, 1)  # ties
        w = rng.dirichlet(np.ones(n)) if trial else None
        support = (y.min() - 0.5, y.max() + 1.0) if trial == 2 else None
        e = float(rng.uniform(0.1, 0.9))
        _, _, info = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                      return_info=True)
        nested = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                  method="nested")
        fast = (-info["lower"]["value"], info["upper"]["value"])
        # TV's dual is piecewise linear: the nested Brent reference itself is good to ~1e-8
        np.testing.assert_allclose(fast, nested, rtol=0, atol=1e-7 if divergence == "tv" else 1e-9)
        if divergence != "tv":  # TV's Hessian is zero: Newton is not its solver
            assert {info["upper"]["method"], info["lower"]["method"]} <= {"newton",
                                                                        "closed_form"}
            newton = pointwise_bounds(y, e, divergence=divergence, weights=w, support=support,
                                      method="newton")
            np.testing.assert_allclose(newton, nested, rtol=0, atol=1e-9)


@pytest.mark.parametrize("divergence", ("kl", "hellinger", "chi2", "js"))
def test_warm_started_solver_at_large_n_matches_the_cold_solver(divergence, monkeypatch):
    # n above the compression threshold: the warm start from the binned law must not change the
    # bound (same optimum to rounding), with and without a declared support
    from fstat.causal import _pointwise

    rng = np.random.default_rng(3)
    y = np.concatenate([rng.standard_normal(6000), rng.exponential(size=3000)])
    for support in (None, (-6.0, 12.0)):
        warm = pointwise_bounds(y, 0.25, divergence=divergence, support=support)
        with monkeypatch.context() as m:
            m.setattr(_pointwise, "_COMPRESS_MIN", 10**9)
            cold = pointwise_bounds(y, 0.25, divergence=divergence, support=support)
        np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-10)


def test_chi2_with_a_large_radius_at_large_n_is_solved_by_newton():
    # chi2 at e = 0.02 (radius 24.5): at the optimum the top atom's t lies about p_top^2 from
    # the end of the domain, where g*' is infinite. Newton stalled there from the default start
    # and from the binned law's (its Newton failed too), and the nested fallback took ~1 s at
    # n = 2e5 (10-20 s at n = 1e6); the binned law's nested optimum is a start from which
    # Newton converges, to the nested solver's bound
    rng = np.random.default_rng(5)
    y, w = rng.normal(size=200_000), rng.uniform(0.0, 3.0, 200_000)
    lo, up, info = pointwise_bounds(y, 0.02, divergence="chi2", weights=w, return_info=True)
    assert info["upper"]["method"] == info["lower"]["method"] == "newton"
    nested = pointwise_bounds(y, 0.02, divergence="chi2", weights=w, method="nested")
    np.testing.assert_allclose((lo, up), nested, rtol=0, atol=1e-12 * np.ptp(y))


def test_kl_with_a_tiny_radius_at_large_n_stays_on_the_warm_newton(monkeypatch):
    # e = 0.9999: the KL profile's slope is flat (dslope ~ eta), so Newton from the binned
    # law's root reached the slope's rounding floor with steps of ~1e-11 that never fell
    # below 1e-12, and the whole law was searched again by Brent (3-10x the time at n = 1e5)
    from fstat.causal import _pointwise

    rng = np.random.default_rng(0)
    y = rng.standard_t(2, 100_000)
    sizes = []
    brent = _pointwise._kl_brent

    def spy(gap, *args):
        sizes.append(gap.size)
        return brent(gap, *args)

    monkeypatch.setattr(_pointwise, "_kl_brent", spy)
    warm = pointwise_bounds(y, 0.9999, divergence="kl")
    assert sizes and max(sizes) < y.size  # Brent ran on the binned laws only
    monkeypatch.setattr(_pointwise, "_COMPRESS_MIN", 10**9)
    cold = pointwise_bounds(y, 0.9999, divergence="kl")
    np.testing.assert_allclose(warm, cold, rtol=0, atol=1e-12 * np.ptp(y))


def test_binned_warm_start_law_keeps_both_ends_the_mean_and_the_mass():
    # the warm-start law: the 64 largest and 64 smallest values exact (ties at an end
    # merged), everything between in bins replaced by their means, zero weights dropped
    from fstat.causal._pointwise import _binned_law

    rng = np.random.default_rng(5)
    y = np.concatenate([rng.standard_normal(5000), np.full(400, 7.0), np.full(300, -9.0)])
    w = rng.uniform(0.5, 2.0, y.size)
    w[:10] = 0.0
    atoms, probs = _binned_law(y, w)
    keep = w > 0
    yk, pk = y[keep], w[keep] / w[keep].sum()
    assert atoms.size <= 64 * 2 + 1024 and np.all(probs > 0)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(probs @ atoms, pk @ yk, rtol=0, atol=1e-12)
    assert atoms.max() == 7.0 and atoms.min() == -9.0  # tied ends: one atom each, exact mass
    np.testing.assert_allclose(probs[atoms == 7.0], pk[yk == 7.0].sum(), rtol=1e-12)
    np.testing.assert_allclose(probs[atoms == -9.0], pk[yk == -9.0].sum(), rtol=1e-12)
    # distinct ends: the 64 extreme values of each side are atoms of the binned law
    z = rng.standard_normal(6000)
    atoms, _ = _binned_law(z, np.ones(z.size))
    ends = np.concatenate([np.sort(z)[:64], np.sort(z)[-64:]])
    assert np.isin(ends, atoms).all()
    atoms, probs = _binned_law(np.repeat([0.0, 1.0], 3000), np.ones(6000))  # ends only
    np.testing.assert_array_equal(atoms, [0.0, 1.0])
    np.testing.assert_allclose(probs, [0.5, 0.5], rtol=1e-12)
    assert _binned_law(np.full(5000, 2.5), np.ones(5000)) is None  # no width


def test_both_sides_share_the_scratch_arrays(monkeypatch):
    # the lower side reuses the upper side's scratch arrays (no second set of fresh pages)
    from fstat.causal import _pointwise

    seen = []
    original = _pointwise._Dual._buffers

    def record(self):
        buffers = original(self)
        if self.z.size == 6000:
            seen.append(buffers[0])
        return buffers

    monkeypatch.setattr(_pointwise._Dual, "_buffers", record)
    y = np.random.default_rng(4).standard_normal(6000)
    pointwise_bounds(y, 0.3, divergence="js")
    assert len(seen) >= 2 and all(b is seen[0] for b in seen)


@pytest.mark.parametrize("divergence", ("kl", "hellinger", "chi2", "js", "tv"))
def test_lower_is_minus_upper_of_minus_y_bit_for_bit_at_large_n(divergence):
    # spec 2.4: the lower bound is minus the upper bound of -y, exactly; at n >= 4096 the
    # warm start comes from a binned law, which must be the one the mirrored call would bin
    rng = np.random.default_rng(4)
    y = np.concatenate([rng.standard_normal(5000), rng.exponential(size=1000)])
    for support in (None, (-8.0, 12.0)):
        lower, upper = pointwise_bounds(y, 0.3, divergence=divergence, support=support)
        mirrored = None if support is None else (-support[1], -support[0])
        m_lower, m_upper = pointwise_bounds(-y, 0.3, divergence=divergence, support=mirrored)
        assert lower == -m_upper and upper == -m_lower


def test_tv_selection_path_matches_the_sorted_path():
    # equal weights take an O(n) selection; a zero-weight extra value forces the sorted atoms
    rng = np.random.default_rng(8)
    for y, support in ((rng.binomial(4, 0.4, 57) * 1.0, (0.0, 4.0)),
                       (rng.binomial(4, 0.4, 57) * 1.0, None),
                       (rng.standard_normal(40), (-3.0, 5.0))):
        for e in (0.03, 0.3, 0.77):
            fast = pointwise_bounds(y, e, divergence="tv", support=support, return_info=True)
            y0 = np.append(y, y[0])
            w0 = np.append(np.ones(y.size), 0.0)
            ref = pointwise_bounds(y0, e, divergence="tv", support=support, weights=w0,
                                   return_info=True)
            np.testing.assert_allclose(fast[:2], ref[:2], rtol=0, atol=1e-12)
            for side in ("upper", "lower"):
                np.testing.assert_allclose(fast[2][side]["ratio"], ref[2][side]["ratio"][:-1],
                                           rtol=0, atol=1e-12)
                assert fast[2][side]["phantom_mass"] == pytest.approx(
                    ref[2][side]["phantom_mass"], abs=1e-12)


@pytest.mark.slow
def test_boundary_newton_stops_at_the_rounding_floor_at_large_n(monkeypatch):
    # A declared support above the data puts the optimum on the boundary u = hi - lam f(0)
    # (phantom mass). At n = 1e6 the slope along the boundary is known only to its rounding
    # floor; the 1-D Newton must stop on its decrement instead of wandering (it took ~1200
    # passes over the data, 18-35 s, before).
    from scipy.optimize import minimize_scalar

    from fstat.causal import _pointwise

    passes = []
    derivatives = _pointwise._Dual.derivatives

    def counted(self, lam, u):
        passes.append(self.z.size)
        return derivatives(self, lam, u)

    monkeypatch.setattr(_pointwise._Dual, "derivatives", counted)
    n, hi, e = 1_000_000, 6.0, 0.3
    div = get_divergence("chi2")
    eta = float(div.radius(e))
    for seed in (0, 1):
        y = np.clip(np.random.default_rng(seed).standard_normal(n), -hi, hi)
        passes.clear()
        lower, upper = pointwise_bounds(y, e, divergence="chi2", support=(-hi, hi))
        assert sum(size == n for size in passes) <= 30
        # reference: the dual restricted to the boundary, minimised over log lam by Brent
        for values, bound in ((y, upper), (-y, -lower)):
            def on_boundary(log_lam, values=values):
                lam = np.exp(log_lam)
                u = hi - lam * div.f0
                return lam * eta + u + lam * np.mean(div.conjugate((values - u) / lam))

            ref = minimize_scalar(on_boundary, bounds=(-5.0, 5.0), method="bounded",
                                  options={"xatol": 1e-10})
            assert abs(bound - ref.fun) <= 1e-11 * (1.0 + abs(ref.fun))


def _two_atom_upper(div, eta):
    """Largest ``3 q`` with ``D_f(P || Q) <= eta`` for P = (1/2 at 0, 1/2 at 3), Q = (1 - q, q):
    bisection on ``log r``, ``r = 1 - q`` (no rounding of a ``q`` close to 1)."""

    def divergence(r):
        with np.errstate(all="ignore"):
            value = (1.0 - r) * div.f(0.5 / (1.0 - r)) + r * div.f(0.5 / r)
        return float(value) if np.isfinite(value) else np.inf

    lo, hi = math.log(1e-300), math.log(0.5)  # divergence(e^lo) > eta >= divergence(e^hi) = 0
    if divergence(math.exp(lo)) <= eta:
        return 3.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if divergence(math.exp(mid)) <= eta else (mid, hi)
    return 3.0 * (1.0 - math.exp(hi))


@pytest.mark.parametrize("divergence", FIVE)
def test_tiny_propensities_match_the_two_atom_primal(divergence):
    # huge radii put the optimal multiplier far below 1e-12 (chi2: lam ~ e); the solver used to
    # stop there and overshoot sup S by about 1e-12 eta (3.075 instead of 3 at e = 1e-11)
    div = get_divergence(divergence)
    y = np.array([0.0, 3.0, 0.0, 3.0])
    for e in (1e-3, 1e-6, 1e-8, 1e-11, 1e-15):
        eta = float(div.radius(e))
        lower, upper = pointwise_bounds(y, e, divergence=divergence)
        expected = _two_atom_upper(div, eta)
        assert 0.0 <= lower <= upper <= 3.0
        assert upper == pytest.approx(expected, abs=3e-9)
        assert lower == pytest.approx(3.0 - expected, abs=3e-9)  # the law is symmetric
    if divergence == "chi2":  # closed form: Q(3) = (1 + sqrt(1 - e)) / 2
        for e in (1e-7, 1e-11):
            assert pointwise_bounds(y, e, divergence="chi2")[1] == pytest.approx(
                1.5 * (1.0 + math.sqrt(1.0 - e)), abs=1e-12)


@pytest.mark.parametrize("radius", [1e3, 1e4, 1e8])
def test_kl_huge_radius_reaches_the_support_ends(radius):
    y, w = np.array([3.0, 3.0, 0.0]), np.array([1.15, 2.83, 0.61])
    for support, top in ((None, 3.0), ((0.0, 3.0), 3.0), ((0.0, 4.0), 4.0)):
        lower, upper, info = pointwise_bounds(y, divergence="kl", weights=w, radius=radius,
                                              support=support, return_info=True)
        assert (lower, upper) == (0.0, top)
        assert math.copysign(1.0, lower) == 1.0  # no negative zero
        ratio = info["upper"]["ratio"]
        assert np.all(np.isfinite(ratio))
        total = np.dot(w / w.sum(), ratio) + info["upper"]["phantom_mass"]
        assert total == pytest.approx(1.0, abs=1e-12)
    assert pointwise_bounds(y, 1e-300, divergence="kl", weights=w) == (0.0, 3.0)


def test_js_radius_at_tiny_propensities():
    # B_js(e) -> log 2 as e -> 0; -(1 - e) / (1 + e) rounds to -1 below e ~ 5e-17
    js = get_divergence("js")
    e = np.array([1e-12, 1e-16, 1e-17, 1e-100, 1e-300])
    exact = 0.5 * (e * np.log(e) - (1.0 + e) * np.log1p(e)) + math.log(2.0)
    np.testing.assert_allclose(js.radius(e), exact, rtol=1e-15)
    np.testing.assert_allclose(js.radius(torch.as_tensor(e)).numpy(), exact, rtol=1e-15)
    assert pointwise_bounds([0.0, 1.0, 2.0, 3.0], 1e-17, divergence="js",
                            support=(0.0, 3.0)) == (0.0, 3.0)


@pytest.mark.parametrize("divergence", FIVE)
def test_worst_case_ratio_identities_at_small_propensities(divergence):
    # sum_j p_j s_j + phantom = 1 and E_Q* y = the bound; the top atom's t sits at the domain
    # end, where g*' amplified rounding (sums off by 3e-7 for chi2 at e = 1e-3, inf for kl)
    cases = [([0.0, 1.0], [1.0, 1.0], None), ([1.0, 3.0], [2.25, 2.375], (1.0, 3.0)),
             ([0.0, 0.0, 1.0, 0.0, 3.0, 1.0], [1.0] * 6, (0.0, 3.0)),
             ([0.0, 1.0, 2.0], [1.0, 2.0, 1.0], (0.0, 2.5))]  # the last: phantom mass at 2.5
    for y, w, support in cases:
        y, w = np.array(y), np.array(w)
        p = w / w.sum()
        hi = y.max() if support is None else support[1]
        for e in (1e-3, 1e-6, 1e-9):
            _, upper, info = pointwise_bounds(y, e, divergence=divergence, weights=w,
                                              support=support, return_info=True)
            side = info["upper"]
            ratio, phantom = side["ratio"], side["phantom_mass"]
            assert np.all(np.isfinite(ratio)) and np.all(ratio >= 0.0)
            assert np.dot(p, ratio) + phantom == pytest.approx(1.0, abs=1e-8)
            assert np.dot(p, ratio * y) + phantom * hi == pytest.approx(upper, abs=1e-8)


@pytest.mark.parametrize("divergence", ["chi2", "alpha:2", "alpha:3"])
@pytest.mark.parametrize("ball", [dict(propensity=1e-300), dict(radius=1e200)])
def test_huge_balls_stay_inside_the_support(divergence, ball):
    """Tiny propensities / huge radii: the multiplier search ends at its floor, whose dual
    value overshoots; the bound is sup S (spec 2.3, 6.3), not 1e103, and no overflow leaks."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lower, upper = pointwise_bounds([0.0, 1.0, 3.0], divergence=divergence,
                                        weights=[0.2, 0.5, 0.3], support=(0.0, 3.0), **ball)
    assert (lower, upper) == (0.0, 3.0)


@pytest.mark.parametrize("divergence", ["js", "alpha:0.5", "hellinger", "kl", "tv"])
def test_large_discrete_samples_solve_on_distinct_atoms(divergence):
    # A large sample of a few distinct outcomes is solved on its atoms (the same law): the
    # bounds and the per-value worst-case ratios equal the nested solver's on the values as
    # given. JS used to fail Newton from its default start here (sliding to lam -> 0) and
    # fall back to the nested solver over every value (about 1 s at n = 1e5).
    from fstat.causal import _pointwise

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 20000).astype(float)
    lo, up, info = pointwise_bounds(y, 0.3, divergence=divergence, support=(0, 4),
                                    return_info=True)
    assert _pointwise._many_ties(y)
    with pytest.MonkeyPatch.context() as mp:  # the reference: no collapse, every value
        mp.setattr(_pointwise, "_many_ties", lambda values: False)
        ref_lo, ref_up, ref = pointwise_bounds(y, 0.3, divergence=divergence, support=(0, 4),
                                               method="nested", return_info=True)
    np.testing.assert_allclose([lo, up], [ref_lo, ref_up], rtol=1e-8, atol=1e-8)
    for side in ("upper", "lower"):
        assert info[side]["method"] in ("newton", "closed_form")
        assert info[side]["converged"]
        ratio = info[side]["ratio"]
        assert ratio.shape == y.shape
        # the worst-case law attains the bound (phantom mass at the support's end)
        attained = np.mean(ratio * y) + info[side]["phantom_mass"] * (4.0 if side == "upper"
                                                                        else 0.0)
        np.testing.assert_allclose(attained, up if side == "upper" else lo, rtol=1e-7)
        if divergence != "tv":  # TV's worst-case law is not unique
            np.testing.assert_allclose(ratio, ref[side]["ratio"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("divergence", ["js", "alpha:0.5"])
def test_newton_restarts_where_the_default_start_slides_to_zero(divergence):
    # five atoms, standardised by their sd (the solver itself now uses the support width, in
    # which this start converges), where Newton from the default start fails for JS (a
    # direction of almost no curvature: g* levels off at -inf); a restart converges to the
    # nested optimum
    from fstat.causal._pointwise import _collapse, _Dual, _newton, _newton_restarts
    from fstat.divergences import get_divergence

    rng = np.random.default_rng(0)
    atoms, probs = _collapse(rng.integers(0, 5, 10000).astype(float), np.ones(10000))
    div = get_divergence(divergence)
    mean = probs @ atoms
    z = (atoms - mean) / np.sqrt(probs @ (atoms - mean) ** 2)
    dual = _Dual(z, probs, float(div.radius(0.3)), z.max(), div)
    lam, u, ok, _, value = _newton_restarts(dual)
    assert ok
    if divergence == "js":
        assert not _newton(dual)[2]  # the case this guards: the first start fails
    ref = pointwise_bounds(atoms, 0.3, divergence=divergence, weights=probs,
                           support=(0, 4), method="nested")[1]
    np.testing.assert_allclose(mean + np.sqrt(probs @ (atoms - mean) ** 2) * value, ref,
                               rtol=1e-9)


def test_newton_boundary_search_survives_a_nearly_flat_direction():
    # binary outcomes with a little noise and a declared support above the data: the boundary
    # Newton of the warm start met a nearly flat direction, and its step in log lam
    # overflowed math.exp (OverflowError from method="newton")
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 5000) + 0.01 * rng.standard_normal(5000)
    for divergence in ("kl", "hellinger", "chi2", "js"):
        newton = pointwise_bounds(y, 0.77, divergence=divergence, support=(-1.0, 3.0),
                                  method="newton")
        nested = pointwise_bounds(y, 0.77, divergence=divergence, support=(-1.0, 3.0),
                                  method="nested")
        np.testing.assert_allclose(newton, nested, rtol=0, atol=1e-9)


@pytest.mark.parametrize("divergence", FIVE)
def test_constant_outcome_with_a_declared_support_gives_manski(divergence):
    # a point mass P: every law in the ball keeps mass >= e on it, so each f-interval equals
    # Manski's. Seven equal values have a mean off by one rounding and an sd of ~1e-16, which
    # the solver took as its unit: Newton and the nested solver returned almost [lo, hi]
    support = (0.18092224718657857, 1.0647376962859472)
    for n in (3, 7, 100):
        y = np.ones(n)
        for e in (0.999, 0.9, 0.5):
            got = pointwise_bounds(y, e, divergence=divergence, support=support)
            np.testing.assert_allclose(got, manski_bounds(y, e, support=support), rtol=0,
                                       atol=1e-9)


@pytest.mark.parametrize("divergence", ("hellinger", "chi2", "js", "kl"))
def test_wide_declared_support_matches_the_primal(divergence):
    # a support a billion sds wide: the bounds were up to half the support off (no warning)
    y = np.random.default_rng(0).standard_normal(10)
    width = 1e9
    eta = float(get_divergence(divergence).radius(0.95))
    # the primal reference on the data in units of the support (the bounds are equivariant)
    upper = width * primal_upper(y / width, np.ones(10), eta, divergence, lo=-1.0, hi=0.7)
    lower = -width * primal_upper(-y / width, np.ones(10), eta, divergence, lo=-0.7, hi=1.0)
    got = pointwise_bounds(y, 0.95, divergence=divergence, support=(-width, 0.7 * width))
    np.testing.assert_allclose(np.array(got) / width, [lower / width, upper / width], rtol=0,
                               atol=1e-10)


@pytest.mark.parametrize("divergence", FIVE)
def test_overflowing_weight_sums_and_value_ranges(divergence):
    """Finite inputs whose weight sum or value range overflows a double: weights are
    normalised (only ratios matter) and values rescaled by a power of two (affine
    equivariance), instead of NaN or inverted intervals."""
    ref = pointwise_bounds([0.0, 1.0], 0.5, divergence=divergence)
    got = pointwise_bounds([0.0, 1.0], 0.5, divergence=divergence, weights=[1e308, 1e308])
    assert got == ref
    assert manski_bounds([0.0, 1.0], 0.5, weights=[1e308, 1e308]) == manski_bounds(
        [0.0, 1.0], 0.5)
    unit = pointwise_bounds([-1.0, 0.0, 1.0], 0.3, divergence=divergence, return_info=True)
    big = pointwise_bounds([-1e308, 0.0, 1e308], 0.3, divergence=divergence, return_info=True)
    np.testing.assert_allclose(big[:2], np.multiply(unit[:2], 1e308), rtol=1e-12)
    for side in ("lower", "upper"):
        for key in ("lam", "u", "value"):
            np.testing.assert_allclose(big[2][side][key], 1e308 * unit[2][side][key],
                                       rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(big[2][side]["ratio"], unit[2][side]["ratio"], rtol=1e-12)
    # values far below the overflowing support width are not flushed to 0 by the unit
    tiny = [1e-300, 3e-300]
    for name in ("kl", "tv", "chi2"):
        assert pointwise_bounds(tiny, 1.0, divergence=name, support=(-1e308, 1e308)) == (
            2e-300, 2e-300)
    assert pointwise_bounds([0.1, 0.2, 0.7], 1.0, divergence=divergence,
                            support=(-1e308, 1e308)) == pointwise_bounds(
        [0.1, 0.2, 0.7], 1.0, divergence=divergence)
    lo, hi = manski_bounds([-1e308, 0.0, 1e308], 0.3, weights=[1.0, 0.0, 3.0])
    assert (lo, hi) == pytest.approx((0.3 * 0.5e308 - 0.7e308, 0.3 * 0.5e308 + 0.7e308),
                                     rel=1e-12)
