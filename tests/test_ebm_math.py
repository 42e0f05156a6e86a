"""Exact tests of the ebm mathematical core against slow numpy references and closed forms."""

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import expit, logsumexp

from fstat.ebm import (
    CompositionalEBM,
    DiagonalGaussianNoise,
    GaussianNoise,
    MixtureNoise,
    StudentTNoise,
    UniformNoise,
    estimate_log_partition,
    gaussian_mean_landscape,
)
from fstat.ebm._energies import EnergyModel, QuadraticEnergy
from fstat.ebm._meco import (
    _ema_log_update,
    _gamma_at,
    _meco_surrogate,
    _msvr_log_update,
    _msvr_ratio_log_update,
)
from fstat.ebm._nce import _nce_loss
from fstat.ebm._partition import log_weight_stats
from fstat.ebm._snl import _snl_loss


@pytest.mark.parametrize("schedule", ["constant", "cosine", "inv_sqrt"])
@pytest.mark.parametrize("gamma", [1.0, 0.3, 0.01])
def test_ema_log_update_matches_linear_space(schedule, gamma):
    rs = np.random.RandomState(0)
    lam = rs.normal(scale=2.0, size=200)
    u = math.exp(lam[0])
    ell = torch.tensor(lam[0], dtype=torch.float64)
    for t in range(1, 200):
        g = _gamma_at(t, gamma, schedule, 200)
        u = (1 - g) * u + g * math.exp(lam[t])
        ell = _ema_log_update(ell, torch.tensor(lam[t], dtype=torch.float64), g)
        assert abs(float(ell) - math.log(u)) < 1e-10


def test_gamma_schedules():
    assert _gamma_at(0, 0.1, "cosine", 100) == pytest.approx(1.0)
    assert _gamma_at(100, 0.1, "cosine", 100) == pytest.approx(0.1)
    assert _gamma_at(3, 0.1, "inv_sqrt", 100) == pytest.approx(0.5)
    assert _gamma_at(10_000, 0.1, "inv_sqrt", 100) == 0.1


def _msvr_linear_reference(u_prev, g, g_prev, gamma, kappa=1e-3):
    """Spec §2.6 in linear space: u_t = (1-γ) u_{t-1} + ĝ_t - (1-γ) ĝ'_t, floored at κ ĝ_t."""
    u = (1 - gamma) * u_prev + g - (1 - gamma) * g_prev
    if u <= kappa * g:
        return kappa * g, True
    return u, False


def _msvr_ratio_linear_reference(u_prev, g, g_prev, gamma, kappa=1e-3):
    """Linear-space "msvr_ratio": u_t = (1-γ) u_{t-1} ĝ_t / ĝ'_t + γ ĝ_t, floored at κ ĝ_t."""
    u = (1 - gamma) * u_prev * g / g_prev + gamma * g
    if u <= kappa * g:
        return kappa * g, True
    return u, False


def test_msvr_log_update_matches_linear_space_and_clamp():
    rs = np.random.RandomState(1)
    n_clamped_ref, n_clamped = 0, 0
    for _ in range(200):
        ell, lam, lamp = rs.normal(scale=1.5, size=3)
        gamma = rs.uniform(0.01, 1.0)
        u, c = _msvr_linear_reference(math.exp(ell), math.exp(lam), math.exp(lamp), gamma)
        n_clamped_ref += c
        out, clamped = _msvr_log_update(torch.tensor(ell), torch.tensor(lam), torch.tensor(lamp),
                                        gamma)
        n_clamped += int(clamped)
        assert abs(float(out) - math.log(u)) < 1e-10
    assert n_clamped == n_clamped_ref > 0
    # far-apart values do not overflow (common shift)
    out, c = _msvr_log_update(torch.tensor(900.0), torch.tensor(-800.0), torch.tensor(-799.0),
                              0.1)
    assert not bool(c)
    assert float(out) == pytest.approx(math.log(0.9) + 900.0, abs=1e-12)


def test_msvr_ratio_log_update_matches_linear_space_and_clamp():
    rs = np.random.RandomState(1)
    n_clamped_ref, n_clamped = 0, 0
    for i in range(300):
        ell, lam, lamp = rs.normal(scale=1.5, size=3)
        # γ < κ = 1e-3 with u_{t-1} << ĝ'_t is the only way to reach the floor
        gamma = rs.uniform(0.01, 1.0) if i % 3 else 10 ** rs.uniform(-6, -3.5)
        if i % 3 == 0:
            ell -= 12.0
        u, c = _msvr_ratio_linear_reference(math.exp(ell), math.exp(lam), math.exp(lamp), gamma)
        n_clamped_ref += c
        out, clamped = _msvr_ratio_log_update(torch.tensor(ell), torch.tensor(lam),
                                              torch.tensor(lamp), gamma)
        n_clamped += int(clamped)
        assert abs(float(out) - math.log(u)) < 1e-10
    assert n_clamped == n_clamped_ref > 0
    # γ = 1 is the naive estimate; far-apart values do not overflow
    out, _ = _msvr_ratio_log_update(torch.tensor(3.0), torch.tensor(-2.0), torch.tensor(5.0), 1.0)
    assert float(out) == -2.0
    out, c = _msvr_ratio_log_update(torch.tensor(900.0), torch.tensor(-800.0),
                                    torch.tensor(-799.0), 0.1)
    assert math.isfinite(float(out)) and not bool(c)
    assert float(out) == pytest.approx(math.log(0.9) + 900.0 - 1.0, abs=1e-12)


def test_msvr_ratio_update_is_positive_where_the_additive_correction_fails():
    """A heavy weight at w_{t-1} (ĝ'_t >> u_{t-1}) and a step that lowers it: the additive
    correction (1-γ)(u_{t-1} - ĝ'_t) + ĝ_t is negative, the multiplicative one is not; the two
    differ by exactly (1-γ)(ĝ_t - ĝ'_t)(u_{t-1}/ĝ'_t - 1), so they coincide when u_{t-1} = ĝ'_t
    and the difference vanishes with the step."""
    gamma, u_prev, g_prev = 0.1, 1.0, 4.0
    g = g_prev * math.exp(-0.5)
    assert (1 - gamma) * (u_prev - g_prev) + g < 0
    out, clamped = _msvr_ratio_log_update(0.0, math.log(g), math.log(g_prev), gamma)
    assert not bool(clamped) and math.exp(float(out)) > gamma * g
    rs = np.random.RandomState(3)
    for _ in range(50):
        u_prev, g_prev = np.exp(rs.normal(size=2))
        g = g_prev * math.exp(rs.normal(scale=0.1))
        gamma = rs.uniform(0.01, 1.0)
        additive = (1 - gamma) * (u_prev - g_prev) + g
        spec, _ = _msvr_log_update(math.log(u_prev), math.log(g), math.log(g_prev), gamma)
        if additive > 1e-3 * g:
            assert math.exp(float(spec)) == pytest.approx(additive, rel=1e-12)
        out, _ = _msvr_ratio_log_update(math.log(u_prev), math.log(g), math.log(g_prev), gamma)
        diff = (1 - gamma) * (g - g_prev) * (u_prev / g_prev - 1)
        assert math.exp(float(out)) - additive == pytest.approx(diff, abs=1e-12)


def _quadratic_setup(seed=0, d=3, B=7, m=9):
    g = torch.Generator().manual_seed(seed)
    core = QuadraticEnergy(d)
    with torch.no_grad():
        core.log_diag.copy_(0.3 * torch.randn(d, generator=g, dtype=torch.float64))
        core.lower.copy_(0.3 * torch.randn(d, d, generator=g, dtype=torch.float64))
        core.b.copy_(torch.randn(d, generator=g, dtype=torch.float64))
    noise = GaussianNoise(mean=np.zeros(d), covariance=2.0 * np.eye(d)).fit(None)
    energy = EnergyModel(core, noise._module(), tilted=False)
    z = torch.randn(B, d, generator=g, dtype=torch.float64)
    y = torch.randn(m, d, generator=g, dtype=torch.float64) * math.sqrt(2.0)
    return core, energy, noise, z, y


def _numpy_energy_grads(core, x):
    """Per-row E(x) and its gradient w.r.t. (log_diag, lower, b) for E = ½|Lᵀx|² - bᵀx."""
    L = core.cholesky().detach().numpy()
    ld = core.log_diag.detach().numpy()
    b = core.b.detach().numpy()
    mask = np.tril(np.ones_like(L), -1)
    E, g_ld, g_low, g_b = [], [], [], []
    for row in x:
        v = L.T @ row
        E.append(0.5 * v @ v - b @ row)
        outer = np.outer(row, v)  # ∂/∂L of ½ xᵀLLᵀx
        g_ld.append(np.diag(outer) * np.exp(ld))
        g_low.append(outer * mask)
        g_b.append(-row)
    return np.array(E), np.array(g_ld), np.array(g_low), np.array(g_b)


def test_surrogate_gradient_is_meco_gradient_and_snis_at_gamma_one():
    core, energy, noise, z, y = _quadratic_setup()
    e_data = energy.raw(z)
    s = energy.log_weight(y)
    ell = torch.tensor(0.37, dtype=torch.float64)
    loss = _meco_surrogate(e_data, s, ell)
    grads = torch.autograd.grad(loss, [core.log_diag, core.lower, core.b])
    _, gz_ld, gz_low, gz_b = _numpy_energy_grads(core, z.numpy())
    Ey, gy_ld, gy_low, gy_b = _numpy_energy_grads(core, y.numpy())
    s_np = -Ey - noise.score_samples(y.numpy())
    w = np.exp(s_np) / math.exp(0.37) / len(y)
    for got, gz, gy in zip(grads, (gz_ld, gz_low, gz_b), (gy_ld, gy_low, gy_b), strict=True):
        ref = gz.mean(0) - np.tensordot(w, gy, axes=1)
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-10, rtol=1e-10)
    # gamma = 1: ell = logmeanexp(s) (detached) gives the SNIS gradient
    lam = _ema_log_update(None, torch.logsumexp(s.detach(), 0) - math.log(len(y)), 1.0)
    g1 = torch.autograd.grad(_meco_surrogate(energy.raw(z), energy.log_weight(y), lam),
                             [core.log_diag, core.lower, core.b])
    snis = energy.raw(z).mean() + torch.logsumexp(energy.log_weight(y), 0) - math.log(len(y))
    g2 = torch.autograd.grad(snis, [core.log_diag, core.lower, core.b])
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10, rtol=1e-10)


def test_nce_and_snl_losses_vs_numpy():
    rs = np.random.RandomState(2)
    sd, sn = rs.normal(size=11), rs.normal(size=17)
    c, log_nu = 0.4, math.log(17 / 11)

    def softplus(x):
        return np.log1p(np.exp(x))

    ref = (softplus(-(sd - c - log_nu)).mean()
           + (17 / 11) * softplus(sn - c - log_nu).mean())
    c_t = torch.tensor(c, dtype=torch.float64)
    got = _nce_loss(torch.tensor(sd), torch.tensor(sn), c_t, log_nu)
    assert abs(float(got) - ref) < 1e-12
    e = rs.normal(size=11)
    nu = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    got = _snl_loss(torch.tensor(e), torch.tensor(sn), nu)
    assert abs(float(got.detach()) - (e.mean() + 0.2 + np.exp(sn - 0.2).mean() - 1)) < 1e-12
    lam = torch.tensor(logsumexp(sn) - math.log(len(sn)), requires_grad=True)
    (g,) = torch.autograd.grad(_snl_loss(torch.tensor(e), torch.tensor(sn), lam), [lam])
    assert abs(float(g)) < 1e-12


def test_soft_bound_is_the_exact_softplus_formula():
    # spec 2.3: f = -20 + softplus(f_raw + 20), with softplus(v) = log(1 + e^v) everywhere
    # (torch's default softplus is the identity above v = 20: off by up to e^-20)
    class Raw(torch.nn.Module):
        def forward(self, z):
            return z[:, 0]

    class Zero(torch.nn.Module):
        def forward(self, z):
            return torch.zeros(z.shape[0], dtype=z.dtype)

    raw = np.array([-1e4, -60.0, -20.0, -1.0, 0.0, 1e-3, 0.5, 3.0, 25.0, 1e4])
    model = EnergyModel(Raw(), Zero(), tilted=False, soft_bound=True)
    z = torch.tensor(raw[:, None], dtype=torch.float64, requires_grad=True)
    out = model.raw(z)
    ref = -20.0 + np.logaddexp(raw + 20.0, 0.0)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-15, atol=4e-15)
    out.sum().backward()  # d/dv softplus = logistic(v), also above v = 20
    np.testing.assert_allclose(z.grad.numpy()[:, 0], expit(raw + 20.0),
                               rtol=1e-15)


def test_importance_sampling_statistics():
    rs = np.random.RandomState(3)
    s = rs.normal(scale=0.7, size=5000)
    log_z, se, ess = log_weight_stats(torch.tensor(s))
    assert abs(log_z - np.log(np.mean(np.exp(s)))) < 1e-10
    M = len(s)
    w = np.exp(s)
    chi2 = np.mean((w / w.mean() - 1) ** 2)
    assert abs(ess - M / (1 + chi2)) < 1e-8 * M
    assert abs(se - math.sqrt(chi2 / M)) < 1e-12
    assert abs(se**2 - (1 / ess - 1 / M)) < 1e-12
    log_z2, se2, ess2 = log_weight_stats(torch.tensor(s + 1000.0))
    assert log_z2 - log_z == pytest.approx(1000.0, abs=1e-9)
    assert se2 == pytest.approx(se, rel=1e-12) and ess2 == pytest.approx(ess, rel=1e-12)


def test_ais_with_one_temperature_equals_is():
    core, energy, noise, _, _ = _quadratic_setup(seed=4)
    a = estimate_log_partition(core, "is", 3000, noise=noise, random_state=7)
    b = estimate_log_partition(core, "ais", 3000, noise=noise, n_temperatures=1, random_state=7)
    assert a.log_z == pytest.approx(b.log_z, abs=1e-12)
    assert a.ess == pytest.approx(b.ess, rel=1e-12) and b.method == "ais"


def test_grid_and_exact_log_partition_of_quadratic_energy():
    core, energy, noise, _, _ = _quadratic_setup(seed=5, d=2)
    exact = estimate_log_partition(core, "exact", noise=noise)
    grid = estimate_log_partition(core, "grid", noise=noise, bounds=[(-12, 12), (-12, 12)],
                                  grid_size=512)
    assert abs(grid.log_z - exact.log_z) < 1e-3
    assert grid.se == 0 and grid.ess == math.inf
    L = core.cholesky().detach().numpy()
    P = L @ L.T
    b = core.b.detach().numpy()
    mvn = stats.multivariate_normal(np.linalg.solve(P, b), np.linalg.inv(P))
    x = np.array([[0.3, -0.8]])
    E = float(core(torch.tensor(x))[0].detach())
    assert abs(exact.log_z - (-mvn.logpdf(x[0]) - E)) < 1e-10
    with pytest.raises(ValueError, match="n_samples must be None"):
        estimate_log_partition(core, "grid", 10, noise=noise)
    # counts and step settings are validated, never replaced or truncated (n_samples=0 used
    # the default, -5 gave log Z = -inf, 2.5 became 2, n_temperatures=0 divided by zero)
    for method, kwargs, name in (
            ("is", {"n_samples": 0}, "n_samples"), ("is", {"n_samples": -5}, "n_samples"),
            ("is", {"n_samples": 2.5}, "n_samples"), ("is", {"chunk_size": 0}, "chunk_size"),
            ("ais", {"n_temperatures": 0}, "n_temperatures"),
            ("ais", {"n_mcmc_steps": -1}, "n_mcmc_steps"),
            ("ais", {"step_size": 0.0}, "step_size"),
            ("ais", {"target_accept": 1.0}, "target_accept"),
            ("grid", {"grid_size": 0}, "grid_size")):
        with pytest.raises(ValueError, match=name):
            estimate_log_partition(core, method, noise=noise, **kwargs)


def test_tilted_zero_energy_has_log_z_zero_and_full_ess():
    noise = GaussianNoise().fit(np.random.RandomState(0).normal(size=(100, 3)))

    class Zero(torch.nn.Module):
        def forward(self, z):
            return torch.zeros(z.shape[0], dtype=z.dtype)

    energy = EnergyModel(Zero(), noise._module(), tilted=True)
    est = estimate_log_partition(energy, "is", 5000, noise=noise, random_state=0)
    assert abs(est.log_z) < 1e-12 and est.ess == pytest.approx(5000, rel=1e-12)


def _torch_sample(noise, n, seed=0):
    return noise.sample(n, random_state=seed)


def test_noise_log_densities_vs_scipy():
    rs = np.random.RandomState(6)
    Z = rs.normal(size=(400, 3)) @ np.array([[1.0, 0.4, 0], [0, 1.0, 0.2], [0, 0, 0.5]])
    pts = rs.normal(size=(20, 3))
    g = GaussianNoise().fit(Z)
    np.testing.assert_allclose(g.mean_, Z.mean(0), atol=1e-12)
    C = np.cov(Z.T, bias=True)
    np.testing.assert_allclose(g.covariance_, C + 1e-6 * (1 + np.trace(C) / 3) * np.eye(3))
    np.testing.assert_allclose(g.score_samples(pts),
                               stats.multivariate_normal(g.mean_, g.covariance_).logpdf(pts),
                               atol=1e-10)
    dg = DiagonalGaussianNoise().fit(Z)
    np.testing.assert_allclose(
        dg.score_samples(pts),
        stats.multivariate_normal(dg.mean_, np.diag(dg.variance_)).logpdf(pts), atol=1e-10)
    t = StudentTNoise(df=5.0).fit(Z)
    ref = stats.multivariate_t(t.mean_, t.covariance_ * 3 / 5, df=5.0).logpdf(pts)
    np.testing.assert_allclose(t.score_samples(pts), ref, atol=1e-10)
    u = UniformNoise().fit(Z)
    inside = u.sample(5, random_state=0)
    ref = stats.uniform(u.low_, u.high_ - u.low_).logpdf(inside).sum(1)
    np.testing.assert_allclose(u.score_samples(inside), ref, atol=1e-12)
    assert np.isneginf(u.score_samples(u.high_[None] + 1.0))[0]
    mx = MixtureNoise(n_components=2, random_state=0).fit(Z)
    ref = logsumexp([np.log(w) + stats.multivariate_normal(mu, c).logpdf(pts)
                     for w, mu, c in zip(mx.weights_, mx.means_, mx.covariances_, strict=True)],
                    axis=0)
    np.testing.assert_allclose(mx.score_samples(pts), ref, atol=1e-10)


@pytest.mark.parametrize("noise", [
    GaussianNoise(mean=[1.0, -1.0], covariance=[[2.0, 0.5], [0.5, 1.0]]),
    StudentTNoise(df=6.0, mean=[1.0, -1.0], covariance=[[2.0, 0.5], [0.5, 1.0]]),
    UniformNoise(low=[0.0, -2.0], high=[1.0, 3.0]),
    MixtureNoise(2, weights=[0.3, 0.7], means=[[0.0, 0.0], [2.0, 1.0]],
                 covariances=[np.eye(2), 0.5 * np.eye(2)]),
], ids=["gaussian", "student_t", "uniform", "mixture"])
def test_noise_sample_moments_and_dilation(noise):
    noise = noise.fit(None)
    X = noise.sample(100_000, random_state=0)
    if isinstance(noise, UniformNoise):
        mean = 0.5 * (noise.low_ + noise.high_)
        cov = np.diag((noise.high_ - noise.low_) ** 2 / 12)
    elif isinstance(noise, MixtureNoise):
        mean = noise.weights_ @ noise.means_
        cov = sum(w * (c + np.outer(m - mean, m - mean)) for w, m, c in
                  zip(noise.weights_, noise.means_, noise.covariances_, strict=True))
    else:
        mean, cov = noise.mean_, noise.covariance_
    se = np.sqrt(np.diag(cov) / len(X))
    assert np.all(np.abs(X.mean(0) - mean) < 5 * se)
    var_se = np.sqrt(np.var((X - mean) ** 2, axis=0) / len(X))
    assert np.all(np.abs(X.var(0) - np.diag(cov)) < 5 * var_se)
    s = 1.7
    dil = noise.dilated(s)
    c = noise._center()
    y = noise.sample(50, random_state=1)
    np.testing.assert_allclose(dil.score_samples(c + s * (y - c)),
                               noise.score_samples(y) - 2 * math.log(s), atol=1e-10)


def test_landscape_identities():
    c0 = 0.5 * math.log(2 * math.pi)
    for R, nu in [(3.0, 1.0), (2.0, 0.5)]:
        out = gaussian_mean_landscape(0.0, R, c=c0, noise_ratio=nu)
        assert out.nce_loss == pytest.approx(math.log(1 + nu) + nu * math.log(1 + 1 / nu),
                                             abs=1e-6)
        assert out.nce_grad_theta == pytest.approx(-nu * R / (1 + nu), abs=1e-6)
        assert abs(out.nce_grad_c) < 1e-6
        assert out.mle_grad == 0.0 - R
    out = gaussian_mean_landscape(1.3, 4.0, c=0.2)
    assert out.mle_grad == 1.3 - 4.0
    assert out.mle_loss == pytest.approx(((4 - 1.3) ** 2 + 1) / 2 + c0)
    # finite-difference check of the NCE gradients
    h = 1e-5
    fd = (gaussian_mean_landscape(1.3 + h, 4.0, c=0.2).nce_loss
          - gaussian_mean_landscape(1.3 - h, 4.0, c=0.2).nce_loss) / (2 * h)
    assert out.nce_grad_theta == pytest.approx(fd, abs=1e-6)


def test_profiled_nce_gradient_vanishes_along_midpoint():
    grads = [abs(gaussian_mean_landscape(R / 2, R).nce_grad_theta) for R in (4, 6, 8, 10)]
    assert all(a > b for a, b in zip(grads, grads[1:]))
    assert grads[-1] < 1e-3


def test_meco_overflow_guard_resets_to_minibatch_value():
    from types import SimpleNamespace

    from fstat.ebm._meco import _MecoObjective

    core, energy, noise, z, y = _quadratic_setup(seed=8)
    est = SimpleNamespace(gamma=1e-25, gamma_schedule="constant", max_iter=10,
                          inner_estimator="ma", optimizer="adam", momentum=0.9)
    obj = _MecoObjective(est, energy, len(y), "cpu")
    e = torch.zeros(3, dtype=torch.float64)
    s0 = torch.zeros(len(y), dtype=torch.float64)
    obj.loss(0, e, s0, s0, torch.tensor(0.0), y, z)
    assert float(obj.ell) == pytest.approx(0.0, abs=1e-12)
    s1 = s0.clone()
    s1[0] = 80.0  # with γ = 1e-25, u stays stale by > e^50: reset to the minibatch value
    obj.loss(1, e, s1, s1, torch.tensor(0.0), y, z)
    assert int(obj.n_resets) == 1
    assert float(obj.ell) == pytest.approx(float(torch.logsumexp(s1, 0) - math.log(len(y))))
    s2 = s0 + 1.0  # no reset: ordinary moving average
    obj.loss(2, e, s2, s2, torch.tensor(0.0), y, z)
    assert int(obj.n_resets) == 1
    lam1 = float(torch.logsumexp(s1, 0)) - math.log(len(y))
    assert float(obj.ell) == pytest.approx(lam1 + math.log1p(-1e-25), abs=1e-12)
    fitted = SimpleNamespace()
    with pytest.warns(UserWarning, match="overflow guard triggered 1 time"):
        obj.finish(fitted)
    assert fitted.n_inner_resets_ == 1 and fitted.n_inner_clamped_ == 0


@pytest.mark.parametrize("inner,reference", [("msvr", _msvr_linear_reference),
                                             ("msvr_ratio", _msvr_ratio_linear_reference)])
def test_msvr_objective_gradient_is_the_surrogate_gradient_with_tracked_u(inner, reference):
    """Two steps of the msvr objective: ℓ_t follows the linear-space recursion on the same noise
    at w_t and w_{t-1}, and the autograd gradient is G_t = mean ∇E(z) - (1/u_t) mean e^{s}∇E(y)."""
    from types import SimpleNamespace

    from fstat.ebm._meco import _MecoObjective

    core, energy, noise, z, y0 = _quadratic_setup(seed=4)
    est = SimpleNamespace(inner_estimator=inner, optimizer="adam", gamma=0.3,
                          gamma_schedule="constant", max_iter=10, momentum=0.9)
    obj = _MecoObjective(est, energy, len(y0), "cpu")
    params = [core.log_diag, core.lower, core.b]
    g = torch.Generator().manual_seed(5)
    u = None
    for t in range(3):
        y = y0 if t == 0 else torch.randn(y0.shape, generator=g, dtype=torch.float64)
        s_prev = energy.log_weight(y).detach().numpy().copy()  # at w_{t-1} (before the move)
        if t > 0:
            with torch.no_grad():  # move w: w_t = w_{t-1} + small step
                for p in params:
                    p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        e_data = energy.raw(z)
        s = energy.log_weight(y)
        loss, _ = obj.loss(t, e_data, s, -e_data, torch.zeros((), dtype=torch.float64), y, z)
        grads = torch.autograd.grad(loss, params)
        _, gz_ld, gz_low, gz_b = _numpy_energy_grads(core, z.numpy())
        Ey, gy_ld, gy_low, gy_b = _numpy_energy_grads(core, y.numpy())
        s_np = -Ey - noise.score_samples(y.numpy())
        g_hat, g_prev = np.exp(s_np).mean(), np.exp(s_prev).mean()
        u = g_hat if t == 0 else reference(u, g_hat, g_prev, 0.3)[0]
        assert float(obj.ell) == pytest.approx(math.log(u), abs=1e-10)
        w = np.exp(s_np) / u / len(y)
        for got, gz, gy in zip(grads, (gz_ld, gz_low, gz_b), (gy_ld, gy_low, gy_b), strict=True):
            np.testing.assert_allclose(got.numpy(), gz.mean(0) - np.tensordot(w, gy, axes=1),
                                       atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "elu"])
def test_blocked_inplace_evaluation_equals_plain_forward(activation):
    """The inference path (CPU row blocks + in-place activations) changes no value, and the
    in-place switch touches neither the fitted module nor a user-supplied core."""
    from fstat.ebm._energies import (
        build_core,
        evaluate_no_grad,
        use_inplace_activations,
    )

    gen = torch.Generator().manual_seed(0)
    core = build_core("mlp", 3, hidden_layer_sizes=(16, 8), activation=activation,
                      generator=gen, dtype=torch.float64, seed=0)
    with torch.no_grad():
        core[-1].weight.normal_(generator=gen)
    noise = GaussianNoise().fit(np.random.RandomState(0).normal(size=(50, 3)))._module()
    energy = EnergyModel(core, noise, tilted=True)
    z = torch.randn(10_000, 3, generator=gen, dtype=torch.float64)
    z_copy = z.clone()
    with torch.no_grad():
        plain = energy(z)
    fast = copy.deepcopy(energy)
    use_inplace_activations(fast)
    assert any(getattr(m, "inplace", False) for m in fast.core) == (activation != "tanh")
    assert not any(getattr(m, "inplace", False) for m in energy.core)
    blocked = evaluate_no_grad(fast, z, block=999)
    assert torch.equal(z, z_copy)
    np.testing.assert_allclose(blocked.numpy(), plain.numpy(), rtol=1e-13, atol=1e-13)
    user = EnergyModel(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                           torch.nn.Linear(4, 1)).double(), noise, tilted=True)
    use_inplace_activations(user)
    assert not user.core[1].inplace


def test_noise_repr_is_finite_and_shows_changed_parameters():
    assert repr(GaussianNoise()) == "GaussianNoise()"
    assert repr(GaussianNoise(reg_covar=1e-3)) == "GaussianNoise(reg_covar=0.001)"
    assert "noise=GaussianNoise(reg_covar=0.001)" in repr(
        CompositionalEBM(noise=GaussianNoise(reg_covar=1e-3)))


def test_fixed_noises_work_without_fit():
    # spec 2.2: a noise with all its parameters given is not refitted; it is usable as it is
    # (score_samples and sample raised NotFittedError before an explicit fit)
    from sklearn.exceptions import NotFittedError

    Z = np.array([[0.0], [1.5]])
    np.testing.assert_allclose(GaussianNoise(mean=[0.0], covariance=[[1.0]]).score_samples(Z),
                               stats.norm.logpdf(Z[:, 0]), rtol=1e-12)
    np.testing.assert_allclose(
        DiagonalGaussianNoise(mean=[0.0, 1.0], variance=[1.0, 4.0]).score_samples([[0.0, 1.0]]),
        [stats.norm.logpdf(0.0) + stats.norm.logpdf(0.0, scale=2.0)], rtol=1e-12)
    np.testing.assert_allclose(
        StudentTNoise(5.0, mean=[0.0], covariance=[[1.0]]).score_samples(Z),
        stats.t.logpdf(Z[:, 0], 5, scale=np.sqrt(3.0 / 5.0)), rtol=1e-12)
    mix = MixtureNoise(2, [0.5, 0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    np.testing.assert_allclose(mix.score_samples(Z), np.log(
        0.5 * stats.norm.pdf(Z[:, 0]) + 0.5 * stats.norm.pdf(Z[:, 0], 1.0)), rtol=1e-12)
    box = UniformNoise([0.0], [2.0])
    assert box.sample(5, random_state=0).shape == (5, 1)
    np.testing.assert_allclose(box.score_samples(Z), -np.log(2.0), rtol=1e-12)
    with pytest.raises(NotFittedError, match="covariance"):
        GaussianNoise(mean=[0.0]).score_samples(Z)  # a free parameter still needs data
    # no hidden fit: the noise stays unfitted, so changed parameters take effect
    fixed = GaussianNoise(mean=[0.0], covariance=[[1.0]])
    fixed.score_samples(Z)
    fixed.set_params(mean=[5.0])
    np.testing.assert_allclose(fixed.score_samples([[5.0]]), [stats.norm.logpdf(0.0)])
    assert not hasattr(fixed, "mean_")
    partly = DiagonalGaussianNoise(mean=[5.0]).fit(np.random.default_rng(0).normal(size=(50, 1)))
    assert partly.mean_[0] == 5.0 and 0.3 < partly.variance_[0] < 3.0


def test_categorical_draws_beyond_the_multinomial_limit(monkeypatch):
    """torch.multinomial refuses more than 2^24 categories (sampling 840k points with 20x
    proposals, weighted fits on 17M rows): above the limit the draws invert the cumulative
    distribution. Forced here at a small limit: the frequencies match, zero-probability
    categories are never drawn, and below the limit multinomial's stream is unchanged."""
    from fstat.ebm import _sampling

    probs = torch.tensor([0.0, 0.1, 0.0, 0.25, 0.05, 0.6, 0.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    below = _sampling.draw_categorical(probs, 100, gen)
    again = torch.multinomial(probs, 100, replacement=True,
                              generator=torch.Generator().manual_seed(0))
    assert torch.equal(below, again)
    monkeypatch.setattr(_sampling, "_MULTINOMIAL_MAX", 4)
    draws = _sampling.draw_categorical(probs, 200_000, torch.Generator().manual_seed(1))
    counts = np.bincount(draws.numpy(), minlength=7)
    assert counts[[0, 2, 6]].sum() == 0
    expected = 200_000 * probs.numpy()
    positive = expected > 0
    chi2 = ((counts[positive] - expected[positive]) ** 2 / expected[positive]).sum()
    assert chi2 < stats.chi2.ppf(0.999, positive.sum() - 1)
