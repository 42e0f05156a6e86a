"""Certified radii: per-point reference, soundness by sampling, PGD, IBP."""

import math

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from fstat.datasets import load_digits_pair, make_ntk_teacher
from fstat.kernels import (
    NTKSVC,
    NTKNetwork,
    NTKRidge,
    NTKRidgeClassifier,
    attack_radius,
    ntk_kernel,
    pgd_attack,
)
from fstat.kernels._ntk import H_U_STAR, U_STAR


def _h(u):
    u = min(1.0, max(-1.0, u))
    return 2 * u * (math.pi - math.acos(u)) + math.sqrt(max(0.0, 1 - u * u))


def _k(u):
    u = min(1.0, max(-1.0, u))
    return u * (math.pi - math.acos(u)) + math.sqrt(max(0.0, 1 - u * u))


def _div(a, b, inf_sign):
    return a / b if b > 0 else inf_sign * math.inf


def _certified_ref(x, r, Xfit, beta, b, w_std, kind, norm, interval, sign):
    """Per-point, per-training-row Python loop of spec §2.8 steps 1-4."""
    d = len(x)
    c = w_std**4 / (2 * math.pi * d)
    total_lo, total_hi = b, b
    for xi, bi in zip(Xfit, beta):
        ni = float(np.linalg.norm(xi))
        if ni == 0:
            continue
        dot = float(x @ xi)
        if interval == "paper":
            rho = math.sqrt(d) * r
            dl, du = dot - rho * ni, dot + rho * ni
            NL, NU = max(np.linalg.norm(x) - rho, 0.0), np.linalg.norm(x) + rho
        elif norm == "linf":
            q = float(np.abs(xi).sum())
            dl, du = dot - r * q, dot + r * q
            NL = float(np.linalg.norm(np.maximum(np.abs(x) - r, 0)))
            NU = float(np.linalg.norm(np.abs(x) + r))
        else:
            dl, du = dot - r * ni, dot + r * ni
            NL, NU = max(np.linalg.norm(x) - r, 0.0), np.linalg.norm(x) + r
        ul = (dl / NU if dl >= 0 else _div(dl, NL, -1)) / ni
        uu = (_div(du, NL, 1) if du >= 0 else du / NU) / ni
        ul, uu = min(1, max(-1, ul)), min(1, max(-1, uu))
        if kind == "ntk":
            hlo = H_U_STAR if ul <= U_STAR <= uu else min(_h(ul), _h(uu))
            hhi = max(_h(ul), _h(uu))
            tlo = c * ni * (NL if hlo >= 0 else NU) * hlo
            thi = c * ni * (NU if hhi >= 0 else NL) * hhi
        else:
            tlo, thi = c * ni * NL * _k(ul), c * ni * NU * _k(uu)
        total_lo += bi * tlo if bi > 0 else bi * thi
        total_hi += bi * thi if bi > 0 else bi * tlo
    return total_lo > 0 if sign > 0 else total_hi < 0


def _radius_ref(x, g, model, kind, norm, interval, n_bisect=40):
    maxr = np.abs(x).max() if norm == "linf" else np.linalg.norm(x)
    args = (model.X_fit_, model.dual_coef_, model.intercept_, model.w_std, kind, norm, interval,
            np.sign(g))
    if _certified_ref(x, maxr, *args):
        return maxr
    lo, hi = 0.0, maxr
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        if _certified_ref(x, mid, *args):
            lo = mid
        else:
            hi = mid
    return lo


@pytest.fixture(scope="module")
def teacher():
    X, y = make_ntk_teacher(80, 5, random_state=0)
    return X[:60], y[:60], X[60:], y[60:]


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("norm, interval", [("linf", "tight"), ("l2", "tight"),
                                            ("linf", "paper")])
def test_vectorised_equals_loop(teacher, kind, norm, interval):
    X, y, Xt, _ = teacher
    m = NTKSVC(0.5, kernel=kind, w_std=1.3, device="cpu").fit(X, y)
    radii = m.certify(Xt[:8], norm=norm, interval=interval)
    g = m.decision_function(Xt[:8])
    ref = np.array([_radius_ref(x, gi, m, kind, norm, interval) for x, gi in zip(Xt[:8], g)])
    np.testing.assert_allclose(radii, ref, rtol=1e-12, atol=1e-15)
    assert np.all(radii > 0)


@pytest.mark.parametrize("cls", [NTKSVC, NTKRidgeClassifier])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_soundness_by_sampling(teacher, cls, kind, norm):
    X, y, Xt, _ = teacher
    m = cls(1.0, kernel=kind, device="cpu").fit(X, y)
    pts = Xt[:20]
    radii = m.certify(pts, norm=norm)
    g = m.decision_function(pts)
    rng = np.random.default_rng(0)
    d = X.shape[1]
    for x, r, gi in zip(pts, radii, g):
        if r == 0:
            continue
        if norm == "linf":
            corners = x + r * rng.choice([-1.0, 1.0], size=(2000, d))
            inside = x + r * rng.uniform(-1, 1, size=(2000, d))
        else:
            v = rng.standard_normal((2000, d))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            corners = x + r * v
            inside = x + r * v * rng.uniform(0, 1, size=(2000, 1)) ** (1 / d)
        K = ntk_kernel(np.vstack([corners, inside]), m.X_fit_, kind=kind, device="cpu")
        vals = K @ m.dual_coef_ + m.intercept_
        assert np.all(np.sign(vals) == np.sign(gi))


def test_attack_is_above_certificate_and_tight_above_paper(teacher):
    X, y, Xt, _ = teacher
    m = NTKSVC(1.0, device="cpu").fit(X, y)
    pts = Xt[:6]
    cert = m.certify(pts)
    paper = m.certify(pts, interval="paper")
    att = attack_radius(m, pts, n_bisect=12, n_steps=40, random_state=0)
    assert np.all(att >= cert)
    assert np.all(cert >= paper)
    X_adv, flipped = pgd_attack(m, pts, 0.3, n_steps=30, random_start=True, random_state=0)
    assert np.all(np.abs(X_adv - pts).max(axis=1) <= 0.3 + 1e-12)
    X2, _ = pgd_attack(m, pts, 0.3, norm="l2", n_steps=30)
    assert np.all(np.linalg.norm(X2 - pts, axis=1) <= 0.3 * (1 + 1e-12))


def test_pgd_stays_in_the_ball_exactly():
    # spec: PGD respects the ball constraint exactly; x0 + clip(delta) rounded an ulp outside
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = (X[:, 0] > 0).astype(int)
    m = NTKSVC(lam=0.5, device="cpu").fit(X[1:], y[1:])
    for shift in (0.0, 1e3):
        pts = X[1:6] + shift
        adv, _ = pgd_attack(m, pts, 0.3, norm="linf", n_steps=20, random_start=True,
                            random_state=0)
        assert np.abs(adv - pts).max() <= 0.3
        adv, _ = pgd_attack(m, pts, 0.3, norm="l2", n_steps=20, random_start=True,
                            random_state=0)
        diff = torch.as_tensor(adv) - torch.as_tensor(pts)
        assert bool((diff.norm(dim=1) <= 0.3).all())


def test_regularisation_increases_certified_radius():
    X, y = load_digits_pair()
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=240, random_state=0, stratify=y)
    r0 = NTKRidgeClassifier(0.0, device="cpu").fit(Xtr, ytr).certify(Xte, yte)
    r100 = NTKRidgeClassifier(100.0, device="cpu").fit(Xtr, ytr).certify(Xte, yte)
    assert r100.mean() >= 3 * r0.mean()


def test_certify_errors(teacher):
    X, y, Xt, _ = teacher
    with pytest.raises(ValueError, match="paper interval is defined for linf"):
        NTKSVC(device="cpu").fit(X, y).certify(Xt, norm="l2", interval="paper")
    with pytest.raises(NotImplementedError, match="NTKNetwork.certify"):
        NTKSVC(depth=2, device="cpu").fit(X, y).certify(Xt)
    with pytest.raises(ValueError, match="binary"):
        NTKSVC(device="cpu").fit(X, np.arange(60) % 3).certify(Xt)
    with pytest.raises(ValueError, match="max_radius"):
        NTKSVC(device="cpu").fit(X, y).certify(Xt, max_radius=0.0)
    with pytest.raises(TypeError):
        pgd_attack(NTKRidge(device="cpu").fit(X, y.astype(float)), Xt, 0.1)
    # wrong predictions get radius 0 when y is given
    m = NTKSVC(device="cpu").fit(X, y)
    r = m.certify(Xt, -m.predict(Xt))
    assert np.all(r == 0)
    # n_bisect < 1 and labels of the wrong length are errors for every certificate and attack
    # (the IBP certificate returned zeros for n_bisect=0 and broadcast a single label)
    net = NTKNetwork(width=16, max_iter=5, device="cpu", random_state=0).fit(X, y)
    for certify in (m.certify, net.certify):
        with pytest.raises(ValueError, match="n_bisect"):
            certify(Xt[:5], n_bisect=0)
        for labels in (y[:1], y[:3]):
            with pytest.raises(ValueError, match="entries but X has 5 rows"):
                certify(Xt[:5], labels)
    with pytest.raises(ValueError, match="n_bisect"):
        attack_radius(m, Xt[:5], n_bisect=0)
    with pytest.raises(ValueError, match="batch_size"):  # "range() arg 3 must not be zero"
        m.certify(Xt[:3], batch_size=0)
    # labels not seen in fit (NaN included) are errors, not 'misclassified' points of radius 0
    for certify in (m.certify, net.certify):
        for labels in ([np.nan, y[0], y[1]], [5, y[0], y[1]]):
            with pytest.raises(ValueError, match="not seen in fit"):
                certify(Xt[:3], np.asarray(labels))
    # meaningless attack settings are errors (they returned X unchanged, "not flipped",
    # and attack radii of inf)
    for kwargs, name in (({"n_steps": 0}, "n_steps"), ({"n_steps": -2}, "n_steps"),
                         ({"n_steps": 2.5}, "n_steps"), ({"step_size": 0.0}, "step_size"),
                         ({"step_size": -0.1}, "step_size")):
        with pytest.raises(ValueError, match=name):
            pgd_attack(m, Xt[:5], 0.5, **kwargs)
    with pytest.raises(ValueError, match="n_steps"):
        attack_radius(m, Xt[:5], n_steps=0)


def test_ibp_sound_and_shrinks_with_width(teacher):
    X, y, Xt, _ = teacher
    radii = []
    for width in (64, 256):
        net = NTKNetwork(width, max_iter=50, lam=1.0, dtype="float64", device="cpu",
                         random_state=0).fit(X, y)
        r = net.certify(Xt[:10])
        radii.append(r.mean())
        # soundness by sampling corners
        rng = np.random.default_rng(0)
        for x, ri in zip(Xt[:10], r):
            if ri == 0:
                continue
            pts = x + ri * rng.choice([-1.0, 1.0], size=(500, X.shape[1]))
            assert np.all(np.sign(net.decision_function(pts))
                          == np.sign(net.decision_function(x[None]))[0])
    assert radii[1] / radii[0] < 0.8


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("norm, interval", [("linf", "tight"), ("l2", "tight"),
                                            ("linf", "paper")])
def test_bracketed_bisection_equals_plain_bisection(teacher, kind, norm, interval):
    """The Illinois bracket + replayed bisection returns exactly what plain bisection on the
    same worst-case margin returns, for every chunking and both prediction signs."""
    import torch

    from fstat.kernels._robust import _certify_chunk, _Margin

    X, y, Xt, _ = teacher
    m = NTKSVC(0.3, kernel=kind, w_std=1.2, device="cpu").fit(X, y)
    pts = np.vstack([Xt, X[:10]])
    g = m.decision_function(pts)
    order = np.argsort(-np.sign(g), kind="stable")
    pts, g = pts[order], g[order]
    assert (g > 0).any() and (g < 0).any()
    Xfit = torch.as_tensor(m.X_fit_)
    beta = torch.as_tensor(m.dual_coef_)
    Xn = Xfit.norm(dim=1)
    Xq = Xfit.abs().sum(1) if norm == "linf" else Xn
    x = torch.as_tensor(pts)
    c = m.w_std**4 / (2 * math.pi * pts.shape[1])
    margin = _Margin(x, x @ Xfit.T, torch.as_tensor(np.sign(g)), Xn, Xq, beta, 0.0, c, kind,
                     norm, interval)
    R = torch.as_tensor(np.abs(pts).max(1) if norm == "linf" else np.linalg.norm(pts, axis=1))
    lo, hi = torch.zeros_like(R), R.clone()
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        ok = margin(mid) > 0
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    plain = torch.where(margin(R) > 0, R, lo).numpy()
    fast = _certify_chunk(margin, torch.as_tensor(np.abs(g)), R, 40).numpy()
    np.testing.assert_array_equal(fast, plain)
    for batch in (1, 7):  # chunking does not change the radii
        radii = m.certify(pts, norm=norm, interval=interval, batch_size=batch)
        np.testing.assert_allclose(radii, plain, rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_kernel_certificate_exceeds_ibp_at_width_4096():
    """Spec §6: IBP radii of the trained wide network shrink with width (4m vs m < 0.8) and
    at width 4096 fall below the kernel certificate of the matching machine (paper Table 2)."""
    X, y = load_digits_pair()
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=100, random_state=0, stratify=y)
    n = len(ytr)
    pts, labels = Xte[:20], yte[:20]
    ibp = {}
    for width in (1024, 4096):
        net = NTKNetwork(width, loss="hinge", lam=0.01 * n, lr=0.5 / n, max_iter=150,
                         dtype="float32", device="cpu", random_state=0).fit(Xtr, ytr)
        ibp[width] = net.certify(pts, labels, n_bisect=25)
    machine = net.matching_kernel_machine().fit(Xtr, ytr)
    kernel = machine.certify(pts, labels)
    assert np.mean(kernel > 0) >= 0.9
    assert ibp[4096].mean() / ibp[1024].mean() < 0.8
    assert kernel.mean() > ibp[4096].mean()


def test_zero_rows_get_radius_zero_with_the_default_caps():
    # spec 4: zero-norm rows give no error. The default caps (||x||, 2 ||x||) are 0 there and
    # were rejected as "max_radius must be > 0; got None"; without bias g(0) = 0, radius 0
    from fstat.kernels import NTKSVC, NTKNetwork, attack_radius

    X, y = make_ntk_teacher(60, 4, random_state=0)
    Z = X[:3].copy()
    Z[0] = 0.0
    net = NTKNetwork(width=16, max_iter=10, device="cpu", random_state=0).fit(X, y)
    radii = net.certify(Z)
    assert radii[0] == 0.0 and np.all(radii[1:] > 0)
    np.testing.assert_array_equal(radii[1:], net.certify(Z[1:]))
    svc = NTKSVC().fit(X, y)
    attack = attack_radius(svc, Z, random_state=0)
    assert attack[0] == 0.0 and np.all(attack[1:] >= svc.certify(Z)[1:])
    with pytest.raises(ValueError, match="max_radius"):  # a given cap must still be > 0
        attack_radius(svc, Z, max_radius=0.0)
