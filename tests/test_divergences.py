"""Tests for fstat.divergences: closed forms against independent references written here.

The references are the generators f typed in from the spec (§2.2-2.3 of specs/causal.md), the
radius from its definition e f(1/e) + (1 - e) f(0), and the conjugate as a brute-force supremum
over s (dense grid in log s plus bounded Brent refinement).
"""

import math
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar

import fstat.divergences as dv
from fstat.divergences import (
    FDivergence,
    available_divergences,
    conjugate,
    conjugate_derivative,
    conjugate_domain,
    get_divergence,
    radius,
    radius_derivative,
    register_divergence,
)

torch = pytest.importorskip("torch")

INF = math.inf
LOG2 = math.log(2.0)


def _alpha_f(a):
    return lambda t: (t**a - a * t - (1.0 - a)) / (a * (a - 1.0))


def _alpha_radius(a):
    return lambda e: (e ** (1.0 - a) - 1.0) / (a * (a - 1.0))


def _inf_radius(e):
    return np.where(e == 1, 0.0, INF)


# name -> reference generator f (numpy, t > 0), f(0), spec radius, points inside the domain
REFERENCE = {
    "kl": dict(
        f=lambda t: t * np.log(t),
        f0=0.0,
        radius=lambda e: -np.log(e),
        points=[-20.0, -5.0, -2.0, -1.0, -0.5, -0.1, -0.01],
    ),
    "reverse_kl": dict(
        f=lambda t: -np.log(t),
        f0=INF,
        radius=_inf_radius,
        points=[-10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 8.0],
    ),
    "hellinger": dict(
        f=lambda t: 0.5 * (np.sqrt(t) - 1.0) ** 2,
        f0=0.5,
        radius=lambda e: 1.0 - np.sqrt(e),
        points=[-20.0, -3.0, -1.0, 0.0, 0.2, 0.4, 0.49],
    ),
    "chi2": dict(
        f=lambda t: 0.5 * (t - 1.0) ** 2,
        f0=0.5,
        radius=lambda e: (1.0 - e) / (2.0 * e),
        points=[-20.0, -3.0, -1.0, 0.0, 0.2, 0.4, 0.49],
    ),
    "tv": dict(
        f=lambda t: 0.5 * np.abs(t - 1.0),
        f0=0.5,
        radius=lambda e: 1.0 - e,
        points=[-3.0, -1.0, -0.6, -0.3, 0.0, 0.3, 0.45],
    ),
    "js": dict(
        f=lambda t: 0.5 * (t * np.log(t) - (t + 1.0) * np.log((t + 1.0) / 2.0)),
        f0=0.5 * LOG2,
        radius=lambda e: 0.5 * (e * np.log(e) - (1.0 + e) * np.log(1.0 + e)) + LOG2,
        points=[-10.0, -3.0, -1.0, 0.0, 0.2, 0.3, 0.34],
    ),
    "alpha:0.5": dict(
        f=_alpha_f(0.5),
        f0=2.0,
        radius=_alpha_radius(0.5),
        points=[-20.0, -3.0, -1.0, 0.0, 1.0, 1.5, 1.9],
    ),
    "alpha:2": dict(
        f=_alpha_f(2.0),
        f0=0.5,
        radius=_alpha_radius(2.0),
        points=[-20.0, -3.0, -1.0, 0.0, 0.2, 0.4, 0.49],
    ),
    "alpha:3": dict(
        f=_alpha_f(3.0),
        f0=1.0 / 3.0,
        radius=_alpha_radius(3.0),
        points=[-20.0, -3.0, -1.0, 0.0, 0.2, 0.3, 0.33],
    ),
    "alpha:-1": dict(
        f=_alpha_f(-1.0),
        f0=INF,
        radius=_inf_radius,
        points=[-5.0, -2.0, -0.9, -0.5, 0.0, 1.0, 3.0, 10.0],
    ),
}
NAMES = list(REFERENCE)
CLOSED = {"chi2", "tv", "alpha:2", "alpha:3"}
# points where g* is not differentiable (excluded from derivative checks)
KINKS = {"tv": [-0.5, 0.5], "alpha:-1": [-1.0]}


def _ref_g(name):
    f = REFERENCE[name]["f"]
    return lambda s: s * f(1.0 / s)


def reference_conjugate(f, t):
    """sup_{s>0} s t - s f(1/s): dense grid over log s in [-40, 40], then bounded Brent."""

    def objective(x):
        s = np.exp(x)
        with np.errstate(all="ignore"):
            return s * t - s * f(1.0 / s)

    grid = np.linspace(-40.0, 40.0, 16001)
    values = objective(grid)
    k = int(np.nanargmax(values))
    res = minimize_scalar(
        lambda x: -objective(x),
        bounds=(grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(-res.fun, values[k])


def five_point(func, x, h):
    return (-func(x + 2 * h) + 8 * func(x + h) - 8 * func(x - h) + func(x - 2 * h)) / (12 * h)


def smooth_points(name):
    """Interior points at least 0.01 away from kinks, with a safe finite-difference step."""
    div = get_divergence(name)
    points = np.array(REFERENCE[name]["points"])
    keep = np.ones(points.size, dtype=bool)
    for kink in KINKS.get(name, []):
        keep &= np.abs(points - kink) > 0.02
    points = points[keep]
    distance = np.full(points.shape, 1.0)
    if math.isfinite(div.domain_max):
        distance = np.minimum(distance, div.domain_max - points)
    for kink in KINKS.get(name, []):
        distance = np.minimum(distance, np.abs(points - kink))
    return points, 1e-3 * distance


@pytest.fixture
def registry_cleanup():
    """Remove every divergence a test registers, so tests stay order-independent."""
    before = set(dv._REGISTRY)
    yield
    for name in set(dv._REGISTRY) - before:
        del dv._REGISTRY[name]


# ------------------------------------------------------------------------------------------
# f, f(0), radius
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_f_normalised_convex_and_matches_reference(name):
    div = get_divergence(name)
    ref = REFERENCE[name]
    assert div.name == name
    assert abs(div.f(1.0)) <= 1e-15
    t = np.logspace(-6, 3, 400)
    values = div.f(t)
    assert_allclose(values, ref["f"](t), rtol=1e-10, atol=1e-12)
    slopes = np.diff(values) / np.diff(t)
    assert np.all(np.diff(slopes) >= -1e-8 * (1.0 + np.abs(slopes[1:])))
    # f0 is the limit of f at 0
    assert div.f0 == ref["f0"]
    assert div.domain_max == div.f0
    if math.isfinite(ref["f0"]):
        assert div.f(1e-12) == pytest.approx(ref["f0"], abs=1e-5)
        assert div.f(0.0) == ref["f0"]
    else:
        assert div.f(1e-12) > 10.0
        assert div.f(0.0) == INF
    assert div.f(-1.0) == INF


@pytest.mark.parametrize("name", NAMES)
def test_g_is_perspective(name):
    div = get_divergence(name)
    s = np.logspace(-5, 5, 50)
    assert_allclose(div.g(s), _ref_g(name)(s), rtol=1e-10, atol=1e-12)
    assert div.g(-1.0) == INF


@pytest.mark.parametrize("name", NAMES)
def test_radius_matches_definition_and_spec(name):
    div = get_divergence(name)
    ref = REFERENCE[name]
    e = np.array([1e-6, 0.01, 0.1, 0.3, 0.5, 0.9, 0.999, 1.0])
    with np.errstate(all="ignore"):
        definition = np.where(e == 1, 0.0, e * ref["f"](1.0 / e) + (1.0 - e) * ref["f0"])
    got = div.radius(e)
    assert got.dtype == np.float64
    assert_allclose(got, definition, rtol=1e-10, atol=1e-13)
    assert_allclose(got, ref["radius"](e), rtol=1e-12, atol=1e-14)
    assert div.radius(1.0) == 0.0
    assert isinstance(div.radius(0.5), np.floating)
    assert_allclose(radius(e, name), got, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_radius_derivative_matches_finite_differences(name):
    div = get_divergence(name)
    e = np.array([0.05, 0.2, 0.5, 0.8, 0.95])
    got = div.radius_derivative(e)
    if math.isinf(div.f0):
        assert np.all(got == -INF)
        return
    h = 1e-3 * np.minimum(e, 1.0 - e)
    assert_allclose(got, five_point(div.radius, e, h), rtol=1e-6)
    assert_allclose(radius_derivative(e, name), got, rtol=0)


def test_radius_numerically_careful_near_one():
    # near e = 1 the spec's JS form (an O(1) sum) and 1 - sqrt(e) lose digits; the library's
    # forms must match a 50-digit evaluation at the same floating-point e
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    exact = {
        "js": lambda e: (e * mpmath.log(e) - (1 + e) * mpmath.log(1 + e)) / 2 + mpmath.log(2),
        "hellinger": lambda e: 1 - mpmath.sqrt(e),
        "kl": lambda e: -mpmath.log(e),
        "alpha:0.5": lambda e: (e**0.5 - 1) / (0.5 * -0.5),
        "alpha:3": lambda e: (e ** (-2) - 1) / 6,
    }
    for name, ref in exact.items():
        for e in (1.0 - 1e-6, 1.0 - 1e-12, 0.5, 1e-8):
            expected = float(ref(mpmath.mpf(e)))
            assert get_divergence(name).radius(e) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
@pytest.mark.parametrize("method", ["radius", "radius_derivative"])
def test_radius_rejects_e_outside_unit_interval(bad, method):
    div = get_divergence("kl")
    text = "nan" if math.isnan(bad) else np.format_float_positional(bad, trim="-")
    with pytest.raises(ValueError, match=re.escape(f"e={text}")):
        getattr(div, method)(bad)
    with pytest.raises(ValueError, match=r"e=\[.*" + re.escape(text)):
        getattr(div, method)(np.array([0.5, bad]))
    with pytest.raises(ValueError, match=re.escape(text)):
        getattr(div, method)(torch.tensor([0.5, bad], dtype=torch.float64))


# ------------------------------------------------------------------------------------------
# conjugate
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_conjugate_matches_brute_force_supremum(name):
    div = get_divergence(name)
    points = list(REFERENCE[name]["points"])
    got = div.conjugate(np.array(points))
    expected = np.array([reference_conjugate(REFERENCE[name]["f"], t) for t in points])
    assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert_allclose(conjugate(np.array(points), name), got, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_conjugate_infinite_outside_domain(name):
    div = get_divergence(name)
    low, high, closed = conjugate_domain(name)
    assert low == -INF and high == div.domain_max and closed == (name in CLOSED)
    if math.isinf(high):
        assert np.all(np.isfinite(div.conjugate(np.array([-50.0, 0.0, 50.0]))))
        return
    outside = np.array([high + 1e-3, high + 0.5, high + 10.0] + ([] if closed else [high]))
    for method in ("conjugate", "conjugate_derivative", "conjugate_second_derivative"):
        assert np.all(getattr(div, method)(outside) == INF)
    assert np.isnan(div.conjugate(np.nan))


@pytest.mark.parametrize("name", NAMES)
def test_conjugate_derivatives_match_finite_differences(name):
    div = get_divergence(name)
    t, h = smooth_points(name)
    d1 = div.conjugate_derivative(t)
    assert_allclose(d1, five_point(div.conjugate, t, h), rtol=1e-6, atol=1e-12)
    assert_allclose(conjugate_derivative(t, name), d1, rtol=0)
    d2 = div.conjugate_second_derivative(t)
    assert_allclose(d2, five_point(div.conjugate_derivative, t, h), rtol=1e-6, atol=1e-12)
    assert np.all(d1 >= 0) and np.all(d2 >= 0)


@pytest.mark.parametrize("name", NAMES)
def test_fenchel_young_identity(name):
    div = get_divergence(name)
    t = np.array(REFERENCE[name]["points"])
    s = div.conjugate_derivative(t)
    positive = s > 0
    # at s* = 0 (flat parts of TV and alpha < 0) g(0) is the limit s f(1/s)
    gs = np.where(positive, _ref_g(name)(np.where(positive, s, 1.0)), div.g(0.0))
    assert_allclose(div.conjugate(t), s * t - gs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "value"), [("chi2", 1.0), ("tv", 0.5), ("alpha:2", 1.0), ("alpha:3", 0.5)]
)
def test_conjugate_at_closed_domain_end(name, value):
    # g*(f0) = -f'(0+) = lim_{r -> 0} (f0 - f(r)) / r, finite for closed domains
    div = get_divergence(name)
    assert div.domain_closed
    assert div.conjugate(div.domain_max) == pytest.approx(value, rel=1e-14, abs=0)
    assert div.conjugate(div.domain_max - 1e-12) == pytest.approx(value, abs=1e-4)
    assert div.conjugate_derivative(div.domain_max) == (1.0 if name == "tv" else INF)


def test_tv_subgradient_choices():
    tv = get_divergence("tv")
    t = np.array([-1.0, -0.5, 0.0, 0.5])
    assert_allclose(tv.conjugate(t), [-0.5, -0.5, 0.0, 0.5])
    assert_allclose(tv.conjugate_derivative(t), [0.0, 1.0, 1.0, 1.0])
    assert_allclose(tv.conjugate_second_derivative(t), 0.0)


def test_alpha_family_special_members():
    chi2, a2 = get_divergence("chi2"), get_divergence("alpha:2")
    hel, a05 = get_divergence("hellinger"), get_divergence("alpha", alpha=0.5)
    t = np.linspace(-5, 0.49, 30)
    e = np.linspace(0.01, 1, 30)
    assert_allclose(a2.conjugate(t), chi2.conjugate(t), rtol=1e-13)
    assert_allclose(a2.radius(e), chi2.radius(e), rtol=1e-13)
    # f_{1/2} = 4 * hellinger: radius times 4, conjugate c g*(t / c)
    assert_allclose(a05.radius(e), 4.0 * hel.radius(e), rtol=1e-13, atol=1e-15)
    assert_allclose(a05.conjugate(t), 4.0 * hel.conjugate(t / 4.0), rtol=1e-13)
    assert get_divergence("alpha", alpha=1) is get_divergence("kl")
    assert get_divergence("alpha:0") is get_divergence("reverse_kl")
    assert get_divergence("ALPHA:0.5") is a05
    assert get_divergence("alpha:-1").f0 == INF


@pytest.mark.parametrize("alpha", [1 - 1e-12, 1 + 1e-10, 1 - 1e-7, 1e-12, -1e-12, 3e-9,
                                   0.3, 0.7, 2.5, -2.0])
def test_alpha_family_is_accurate_next_to_kl_and_reverse_kl(alpha):
    # f = (t^a - 1 - a (t - 1)) / (a (a - 1)), g = s f(1/s), g*(t) = (1 - (1 - a t)^((a-1)/a))
    # / (a - 1), evaluated in 50 digits: the terms cancel to O(a - 1) or O(a) in float64
    mp = pytest.importorskip("mpmath")
    with mp.workdps(50):
        _check_alpha_against_mpmath(mp, alpha)


def _check_alpha_against_mpmath(mp, alpha):
    a = mp.mpf(alpha)
    div = get_divergence("alpha", alpha=alpha)

    def f_ref(t):
        t = mp.mpf(t)
        return (t**a - 1 - a * (t - 1)) / (a * (a - 1))

    for t in (1e-300, 0.01, 0.5, 3.0, 10.0, 1e6):
        assert float(div.f(t)) == pytest.approx(float(f_ref(t)), rel=1e-13)
        assert float(div.g(t)) == pytest.approx(float(mp.mpf(t) * f_ref(1 / mp.mpf(t))),
                                                rel=1e-13)
    for t in (-5.0, -1.0, -1e-3, 0.5):
        if 1 - alpha * t <= 0:  # a > 0: outside the domain; a < 0: the limit s -> 0
            assert float(div.conjugate(t)) == (np.inf if alpha > 0 else 1 / (alpha - 1))
            continue
        ref = (1 - (1 - a * t) ** ((a - 1) / a)) / (a - 1)
        assert float(div.conjugate(t)) == pytest.approx(float(ref), rel=1e-13)


# ------------------------------------------------------------------------------------------
# numerical care (spec §5)
# ------------------------------------------------------------------------------------------


def test_chi2_conjugate_near_zero():
    chi2 = get_divergence("chi2")
    for t in (1e-12, -1e-12, 1e-300):
        assert chi2.conjugate(t) == pytest.approx(t + t * t / 2.0, rel=1e-12, abs=0)
    assert get_divergence("hellinger").conjugate(1e-12) == pytest.approx(1e-12, rel=1e-11, abs=0)
    assert get_divergence("alpha:0.5").conjugate(1e-12) == pytest.approx(1e-12, rel=1e-11, abs=0)
    assert get_divergence("alpha:-1").conjugate(-1e-13) == pytest.approx(-1e-13, rel=1e-11, abs=0)


def test_js_conjugate_extremes():
    mpmath = pytest.importorskip("mpmath")
    js = get_divergence("js")
    mpmath.mp.dps = 60

    def exact(t):
        t = mpmath.mpf(t)
        return float(-mpmath.log(2 - mpmath.exp(2 * t)) / 2), float(
            mpmath.exp(2 * t) / (2 - mpmath.exp(2 * t))
        )

    end = 0.5 * LOG2
    for t in (-200.0, -50.0, -1e-12, 1e-12, 0.1, 0.3, end - 1e-6, end - 1e-12):
        value, ratio = exact(t)
        assert np.isfinite(js.conjugate(t))
        assert js.conjugate(t) == pytest.approx(value, rel=1e-12, abs=0)
        assert js.conjugate_derivative(t) == pytest.approx(ratio, rel=1e-10, abs=0)
    assert js.conjugate(-50.0) == pytest.approx(-0.5 * LOG2, rel=1e-15, abs=0)


def test_kl_conjugate_near_zero_from_below():
    kl = get_divergence("kl")
    for t in (-1e-12, -1e-300, -5e-324):
        assert kl.conjugate(t) == pytest.approx(-1.0 - math.log(-t), rel=1e-14, abs=0)
    assert kl.conjugate_derivative(-1e-300) == pytest.approx(1e300, rel=1e-14, abs=0)
    assert kl.conjugate(0.0) == INF
    assert kl.conjugate(-0.0) == INF


# ------------------------------------------------------------------------------------------
# torch
# ------------------------------------------------------------------------------------------

METHODS_T = ("conjugate", "conjugate_derivative", "conjugate_second_derivative")


@pytest.mark.parametrize("name", NAMES)
def test_torch_matches_numpy(name):
    div = get_divergence(name)
    t = np.array(REFERENCE[name]["points"] + [div.domain_max + 0.5, div.domain_max])
    e = np.array([0.01, 0.3, 0.7, 1.0])
    s = np.array([0.0, 1e-3, 0.5, 1.0, 4.0])
    cases = [(m, t) for m in METHODS_T] + [("radius", e), ("radius_derivative", e)]
    cases += [("f", s), ("g", s)]
    for method, x in cases:
        expected = getattr(div, method)(x)
        got = getattr(div, method)(torch.tensor(x, dtype=torch.float64))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-300)
        got32 = getattr(div, method)(torch.tensor(x, dtype=torch.float32))
        assert got32.dtype == torch.float32
        finite = np.isfinite(expected) & (np.abs(expected) < 1e30)
        assert_allclose(got32.numpy()[finite], expected[finite], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradients(name):
    div = get_divergence(name)
    t_np, _ = smooth_points(name)
    outside = [div.domain_max + 1.0] if math.isfinite(div.domain_max) else []
    t = torch.tensor(list(t_np) + outside, dtype=torch.float64, requires_grad=True)
    div.conjugate(t).sum().backward()
    grad = t.grad.numpy()
    assert np.all(np.isfinite(grad))
    assert_allclose(grad[: t_np.size], div.conjugate_derivative(t_np), rtol=1e-12)
    assert np.all(grad[t_np.size :] == 0.0)
    if math.isfinite(div.f0):
        e = torch.tensor([0.05, 0.3, 0.9], dtype=torch.float64, requires_grad=True)
        div.radius(e).sum().backward()
        assert_allclose(e.grad.numpy(), div.radius_derivative(e.detach().numpy()), rtol=1e-12)


def test_torch_integer_and_scalar_inputs():
    kl = get_divergence("kl")
    assert kl.conjugate(torch.tensor([-1, -2])).dtype == torch.float64
    out = kl.conjugate(-1)
    assert isinstance(out, np.float64) and out == -1.0
    assert kl.conjugate([[-1.0, 1.0]]).shape == (1, 2)


# ------------------------------------------------------------------------------------------
# lookup and registry
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("KL", "kl"),
        ("Chi2", "chi2"),
        ("chi-squared", "chi2"),
        ("chisq", "chi2"),
        ("pearson", "chi2"),
        ("TV", "tv"),
        ("total_variation", "tv"),
        ("JS", "js"),
        ("jensen-shannon", "js"),
        (" Hellinger ", "hellinger"),
        ("reverse-kl", "reverse_kl"),
        ("Reverse_KL", "reverse_kl"),
    ],
)
def test_aliases_case_insensitive(alias, canonical):
    assert get_divergence(alias) is get_divergence(canonical)
    assert get_divergence(alias).name == canonical


def test_lookup_errors_and_passthrough():
    kl = get_divergence("kl")
    assert get_divergence(kl) is kl
    with pytest.raises(ValueError, match="'kullback'.*available: chi2, hellinger, js, kl"):
        get_divergence("kullback")
    with pytest.raises(ValueError, match="no parameters"):
        get_divergence("kl", alpha=1)
    with pytest.raises(ValueError, match="needs a value"):
        get_divergence("alpha")
    with pytest.raises(ValueError, match="alpha:abc"):
        get_divergence("alpha:abc")
    with pytest.raises(ValueError, match="finite"):
        get_divergence("alpha", alpha=float("nan"))
    with pytest.raises(ValueError, match="twice"):
        get_divergence("alpha:0.5", alpha=2)
    with pytest.raises(ValueError, match="str"):
        get_divergence(3)
    names = available_divergences()
    assert names == sorted(names)
    assert {"kl", "reverse_kl", "hellinger", "chi2", "tv", "js"} <= set(names)


def test_frozen_and_picklable():
    kl = get_divergence("kl")
    assert isinstance(kl, FDivergence)
    with pytest.raises(AttributeError):
        kl.name = "other"
    assert pickle.loads(pickle.dumps(kl)) is kl
    a = get_divergence("alpha:0.5")
    assert pickle.loads(pickle.dumps(a)) is a
    assert "kl" in repr(kl)


def test_import_does_not_import_torch():
    code = "import sys, fstat.divergences as d; d.get_divergence('kl').conjugate(-1.0);"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


C, C_AFFINE = 2.5, 0.7


def _scaled_kl_f(t):
    log = t.log() if isinstance(t, torch.Tensor) else np.log(t)
    return C * t * log + C_AFFINE * (t - 1.0)


def test_register_numeric_fallbacks_against_scaled_kl(registry_cleanup):
    div = register_divergence("Scaled_KL", _scaled_kl_f, -C_AFFINE)
    assert get_divergence("scaled_kl") is div
    assert "scaled_kl" in available_divergences()
    assert div.numeric >= {"conjugate", "conjugate_derivative", "radius_derivative"}
    assert div.conjugate_domain() == (-INF, -C_AFFINE, False)
    e = np.array([0.01, 0.2, 0.5, 0.9, 1.0])
    kl = get_divergence("kl")
    # invariance (spec §2.1): c f + c'(t - 1) multiplies the radius by c
    assert_allclose(div.radius(e), C * kl.radius(e), rtol=1e-12, atol=1e-15)
    assert_allclose(div.radius_derivative(e), -C / e, rtol=1e-8)
    t = np.array([-30.0, -5.0, -2.0, -1.0, -0.8, -0.75])
    u = (t + C_AFFINE) / C
    assert_allclose(div.conjugate(t), C * kl.conjugate(u) - C_AFFINE, rtol=1e-10)
    assert_allclose(div.conjugate_derivative(t), kl.conjugate_derivative(u), rtol=1e-7)
    assert_allclose(div.conjugate_second_derivative(t), 1.0 / (C * u * u), rtol=1e-5)
    outside = np.array([-C_AFFINE, 0.0, 3.0])
    assert np.all(div.conjugate(outside) == INF)
    assert np.all(div.conjugate_derivative(outside) == INF)
    for method in ("conjugate", "conjugate_derivative", "radius_derivative"):
        with pytest.raises(ValueError, match="closed form"):
            getattr(div, method)(torch.tensor([0.5], dtype=torch.float64))
    # the radius from its definition works for torch because f does
    assert_allclose(div.radius(torch.tensor(e)).numpy(), div.radius(e), rtol=1e-14)


def test_register_numeric_second_derivative_is_zero_where_the_conjugate_is_flat(
        registry_cleanup):
    # a TV copy: g*(t) = -1/2 for t <= -1/2, attained as s -> 0 (f'' of huge r is 0/0 noise)
    div = register_divergence("tv_copy", lambda t: 0.5 * np.abs(t - 1.0), 0.5)
    assert_allclose(div.conjugate_second_derivative(np.array([-3.0, -1.0])), 0.0)
    assert_allclose(div.conjugate(np.array([-3.0, -1.0])), -0.5, rtol=1e-12)


def test_register_duplicates_and_validation(registry_cleanup):
    register_divergence("mine", _scaled_kl_f, -C_AFFINE)
    with pytest.raises(ValueError, match="already registered"):
        register_divergence("MINE", _scaled_kl_f, -C_AFFINE)
    replaced = register_divergence("mine", lambda t: 0.5 * (t - 1) ** 2, 0.5, overwrite=True)
    assert get_divergence("mine") is replaced
    for reserved in ("kl", "Chi-Squared", "alpha:3"):
        with pytest.raises(ValueError, match="reserved"):
            register_divergence(reserved, _scaled_kl_f, 0.0)
    for bad in ("a", float("nan"), -INF, None, True):
        with pytest.raises(ValueError, match="f0"):
            register_divergence("bad_f0", _scaled_kl_f, bad)
    with pytest.raises(ValueError, match=r"f\(1\)"):
        register_divergence("not_normalised", lambda t: t * np.log(t) + 1.0, 1.0)
    with pytest.raises(ValueError, match="callable"):
        register_divergence("not_callable", 3.0, 0.0)
    with pytest.raises(ValueError, match="callable"):
        register_divergence("bad_conj", _scaled_kl_f, -C_AFFINE, conjugate="x")
    assert "bad_f0" not in available_divergences()


def test_register_closed_domain_and_closed_forms(registry_cleanup):
    # chi2 without a conjugate: domain closure inferred, g*(f0) = 1 numerically
    numeric = register_divergence("num_chi2", lambda t: 0.5 * (t - 1.0) ** 2, 0.5)
    assert numeric.domain_closed
    # (at a closed end the numeric supremum is limited by rounding in s t - g(s) for huge s)
    assert numeric.conjugate(0.5) == pytest.approx(1.0, abs=1e-7)
    chi2 = get_divergence("chi2")
    t = np.array([-4.0, -1.0, 0.0, 0.3, 0.45])
    assert_allclose(numeric.conjugate(t), chi2.conjugate(t), rtol=1e-11, atol=1e-14)
    assert_allclose(
        numeric.conjugate_second_derivative(t), chi2.conjugate_second_derivative(t), rtol=1e-5
    )
    # with closed forms given, torch works and the numeric set is empty for those
    closed = register_divergence(
        "closed_chi2",
        lambda t: 0.5 * (t - 1.0) ** 2,
        0.5,
        radius=lambda e: (1 - e) / (2 * e),
        radius_derivative=lambda e: -0.5 / e**2,
        conjugate=lambda t: 1 - (1 - 2 * t) ** 0.5,
        conjugate_derivative=lambda t: (1 - 2 * t) ** -0.5,
        conjugate_second_derivative=lambda t: (1 - 2 * t) ** -1.5,
    )
    assert closed.numeric == frozenset() and closed.domain_closed
    tt = torch.tensor(t, requires_grad=True)
    value = closed.conjugate(tt)
    value.sum().backward()
    assert_allclose(value.detach().numpy(), chi2.conjugate(t), rtol=1e-12)
    assert_allclose(tt.grad.numpy(), chi2.conjugate_derivative(t), rtol=1e-12)
    assert closed.conjugate(0.6) == INF
    # module-level functions accept registered names
    assert radius(0.5, "closed_chi2") == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["kl", "chi2", "js", "tv", "hellinger", "alpha:2", "alpha:0.5"])
def test_radius_autograd_at_one_is_the_one_sided_derivative(name):
    """B(1) = 0 exactly, and its torch gradient there is B'(1), not 0."""
    torch = pytest.importorskip("torch")
    div = get_divergence(name)
    e = torch.tensor([1.0, 0.3], dtype=torch.float64, requires_grad=True)
    value = div.radius(e)
    value.sum().backward()
    assert float(value[0]) == 0.0
    np.testing.assert_allclose(e.grad.numpy(), div.radius_derivative([1.0, 0.3]), rtol=1e-12)



# --------------------------------------------------------------------------------------------
# limits at the ends of the domains, and accuracy where closed forms cancel
# --------------------------------------------------------------------------------------------
_LIMIT_CASES = {  # name: (f(+inf), g(+inf), g*(-inf) = -g(0))
    "kl": (np.inf, -np.inf, -np.inf),
    "reverse_kl": (-np.inf, np.inf, 0.0),
    "hellinger": (np.inf, np.inf, -0.5),
    "chi2": (np.inf, np.inf, -np.inf),
    "tv": (np.inf, np.inf, -0.5),
    "js": (np.inf, np.inf, -0.5 * math.log(2.0)),
    "alpha:0.5": (np.inf, np.inf, -2.0),
    "alpha:2": (np.inf, np.inf, -np.inf),
    "alpha:-1": (np.inf, np.inf, -0.5),
    "alpha:3": (np.inf, np.inf, -np.inf),
}


@pytest.mark.parametrize("name", sorted(_LIMIT_CASES))
def test_limits_at_infinity_are_not_nan(name):
    # the closed forms give inf - inf or inf / inf (NaN) there for several divergences
    torch = pytest.importorskip("torch")
    f_inf, g_inf, conj_minus_inf = _LIMIT_CASES[name]
    div = dv.get_divergence(name)
    pos = torch.tensor(np.inf, dtype=torch.float64)
    assert div.f(np.inf) == f_inf == div.f(pos).item()
    assert div.g(np.inf) == g_inf == div.g(pos).item()
    assert div.conjugate(-np.inf) == conj_minus_inf == div.conjugate(-pos).item()
    assert div.conjugate_derivative(-np.inf) == 0.0 == div.conjugate_second_derivative(-np.inf)
    # the limits continue the finite values
    big = div.f(np.array([1e10, 1e100, 1e300]))
    assert np.all(np.sign(big) == np.sign(f_inf)) and abs(big[2]) > abs(big[0])
    far = div.conjugate(np.array([-1e6, -1e300]))
    if math.isfinite(conj_minus_inf):
        assert_allclose(far[1], conj_minus_inf, rtol=1e-12, atol=1e-12)
    else:
        assert far[1] < far[0] < 0


@pytest.mark.parametrize("name", ["hellinger", "chi2"])
def test_conjugate_far_left_branch_accurate_with_gradient(name):
    # hellinger and chi2 switch to a form finite at -inf for t < -1: continuous, accurate,
    # and the torch gradient equals the closed-form derivative on both sides
    torch = pytest.importorskip("torch")
    import mpmath as mp

    mp.mp.dps = 40
    exact = {"hellinger": lambda t: t / (1 - 2 * t), "chi2": lambda t: 1 - mp.sqrt(1 - 2 * t)}
    div = dv.get_divergence(name)
    ts = np.concatenate([-np.logspace(-8, 300, 400), [-1.0 - 1e-15, -1.0, -1.0 + 1e-15]])
    for t in ts:
        ref = exact[name](mp.mpf(float(t)))
        assert abs(div.conjugate(t) - ref) <= 4e-16 * abs(ref)
    tt = torch.tensor(ts[ts > -1e150], dtype=torch.float64, requires_grad=True)
    div.conjugate(tt).sum().backward()
    assert_allclose(tt.grad.numpy(), div.conjugate_derivative(tt.detach().numpy()), rtol=1e-13)


def test_js_generator_is_relatively_accurate_near_one_and_far_out():
    # f(t) = O((t - 1)^2) near 1 (the closed form cancelled to O(1) relative error there) and
    # t log t cancelled to ~1e-13 at huge t
    import mpmath as mp

    mp.mp.dps = 60
    js = dv.get_divergence("js")
    ts = np.concatenate([1.0 + np.logspace(-15, 0.5, 300), 1.0 - np.logspace(-15, -0.01, 300),
                         np.logspace(-300, 300, 300), [0.6, 1.0 + 2.0 / 3.0]])
    worst = 0.0
    for t in ts:
        tm = mp.mpf(float(t))
        ref = (tm * mp.log(tm) - (tm + 1) * mp.log((tm + 1) / 2)) / 2
        worst = max(worst, float(abs(js.f(t) - ref) / ref), float(abs(js.g(t) - ref) / ref))
    assert worst < 5e-15
    assert js.f(1.0) == 0.0


def test_numeric_radius_derivative_stays_inside_the_domain_at_e_one():
    # B(e) is defined on (0, 1]; a central difference at e = 1 used B(1 + h), across the kink
    # of a TV-like f at 1, and gave -0.5 instead of -1
    tv_like = dv.register_divergence("test_kinked_tv", lambda t: 0.5 * np.abs(t - 1.0), 0.5,
                                     overwrite=True)
    kl_like = dv.register_divergence("test_smooth_kl", lambda t: t * np.log(t), 0.0,
                                     overwrite=True)
    e = np.array([0.01, 0.3, 0.998, 0.9995, 1.0])
    try:
        assert_allclose(tv_like.radius_derivative(e), -1.0, rtol=1e-9)
        assert_allclose(kl_like.radius_derivative(e), -1.0 / e, rtol=1e-9)
    finally:
        dv._REGISTRY.pop("test_kinked_tv", None)
        dv._REGISTRY.pop("test_smooth_kl", None)


def test_js_radius_gradient_at_tiny_propensities():
    # the unused log1p(-delta / (1 + e)) branch reached log1p(-1) below e ~ 5e-17: its infinite
    # derivative made the autograd gradient NaN where the value is finite
    import torch

    js = dv.get_divergence("js")
    e = torch.tensor([1e-17, 1e-100, 1e-300, 0.3], dtype=torch.float64, requires_grad=True)
    js.radius(e).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), js.radius_derivative(e.detach().numpy()),
                               rtol=1e-12)


def test_chi2_perspective_does_not_overflow():
    # g(s) = (1 - s)^2 / (2 s) squared first and overflowed above s ~ 1.3e154 (true ~ s / 2)
    chi2 = dv.get_divergence("chi2")
    s = np.array([1e155, 1e200, 1e300])
    np.testing.assert_allclose(chi2.g(s), s / 2.0 - 1.0, rtol=1e-15)
    assert chi2.g(1e-300) == pytest.approx(0.5e300, rel=1e-15)


@pytest.mark.parametrize("name", ["chi2", "alpha:1.5", "alpha:2", "alpha:3", "alpha:7.25"])
def test_autograd_slope_at_a_closed_domain_end_is_plus_infinity(name):
    """At a closed end of the domain of g* the slope is +inf (conjugate_derivative says so);
    autograd must agree, not return 0 * inf = NaN (alpha > 1: log(1 - a t) = -inf there)."""
    div = get_divergence(name)
    end = div.domain_max
    t = torch.tensor([end, 0.5 * end, -2.0], dtype=torch.float64, requires_grad=True)
    value = div.conjugate(t)
    value.sum().backward()
    assert div.conjugate_derivative(end) == INF
    assert t.grad[0] == INF
    assert_allclose(t.grad[1:].numpy(), div.conjugate_derivative([0.5 * end, -2.0]), rtol=1e-12)
    assert_allclose(value.detach().numpy(), div.conjugate([end, 0.5 * end, -2.0]), rtol=1e-15)
