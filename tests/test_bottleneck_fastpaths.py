"""The fast paths (training-loss Functions, clamped logsumexp, blocked CS-QMI) equal the cores."""

import numpy as np
import pytest
import torch
from _reference_bottleneck import cs_qmi_abc_ref
from scipy.spatial.distance import pdist

from fstat.bottleneck import _estimators, _fused, cs_mutual_information, kernel_width
from fstat.bottleneck._bandwidth import rule_width, width_from_sq_dists
from fstat.bottleneck._estimators import (
    _cs_qmi_terms,
    conditional_cs_core,
    cs_qmi_core,
    lse,
)
from fstat.bottleneck._fused import (
    compression_context,
    conditional_cs_loss,
    cs_qmi_loss,
    prediction_context,
)
from fstat.kernels._gram import sq_dists


def _cond_loss(y, y_pred, sq_x, sigma_x, sigma_y):
    """The fused conditional CS loss of one batch, its data context stacked alone."""
    y2 = y.reshape(len(y), -1)
    context = [c[0] for c in prediction_context(y2[None], sq_x[None], [sigma_x], [sigma_y])]
    return conditional_cs_loss(y, y_pred, context, sigma_y)


def _qmi_loss(t, sq_x, sigma_x, sigma_t):
    """The fused CS-QMI of one batch, its data context stacked alone."""
    return cs_qmi_loss(t, [c[0] for c in compression_context(sq_x[None], [sigma_x])], sigma_t)


def _tensors(n, dx, dt, dy, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dx, generator=g, dtype=dtype)
    t = (x[:, :1] + 0.5 * torch.randn(n, dt, generator=g, dtype=dtype)).requires_grad_(True)
    y = x[:, :1].repeat(1, dy) + 0.3 * torch.randn(n, dy, generator=g, dtype=dtype)
    y_pred = (y + 0.8 * torch.randn(n, dy, generator=g, dtype=dtype)).requires_grad_(True)
    return x, t, y, y_pred


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lse_equals_torch_logsumexp(dtype):
    g = torch.Generator().manual_seed(0)
    a = -torch.rand(40, 50, generator=g, dtype=dtype) * 2000  # most exps underflow
    a[3] = -torch.inf
    a[5, :10] = -torch.inf
    for dim in (None, 0, 1):
        ref = torch.logsumexp(a.reshape(-1), 0) if dim is None else torch.logsumexp(a, dim)
        tol = 1e-14 if dtype == torch.float64 else 1e-6
        torch.testing.assert_close(lse(a, dim), ref, rtol=tol, atol=0, equal_nan=True)
    assert lse(torch.tensor([-torch.inf, -torch.inf])) == -torch.inf
    assert torch.isnan(lse(torch.tensor([torch.nan, 0.0])))
    # gradient: softmax weights, exact
    b = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(lse(b, 1).sum(), b)
    torch.testing.assert_close(grad, torch.softmax(b.detach(), 1), rtol=1e-14, atol=1e-16)


def _assert_losses_match_cores(x, t, y, y_pred, widths, *, cast=None, tol=(1e-10, 1e-13),
                               grad_tol=(1e-10, 1e-13)):
    """The fused losses (inputs optionally cast, e.g. to float32) against the float64 cores."""
    cast = cast or (lambda v: v)
    t_in, yp_in = (cast(v.detach()).requires_grad_(True) for v in (t, y_pred))
    sq_x, y_in = sq_dists(cast(x)), cast(y)
    pairs = (
        (lambda sx, st: cs_qmi_core(x, t, sx, st),
         lambda sx, st: _qmi_loss(t_in, sq_x, sx, st), t, t_in),
        (lambda sx, st: conditional_cs_core(x, y, y_pred, sx, st),
         lambda sx, st: _cond_loss(y_in, yp_in, sq_x, sx, st), y_pred, yp_in))
    for sx, st in widths:
        for core, fused, wrt, wrt_in in pairs:
            ref = core(sx, st)
            (g_ref,) = torch.autograd.grad(ref, wrt)
            got = fused(sx, st)
            (g_got,) = torch.autograd.grad(got, wrt_in)
            torch.testing.assert_close(got.double(), ref, rtol=tol[0], atol=tol[1])
            torch.testing.assert_close(g_got.double(), g_ref, rtol=grad_tol[0], atol=grad_tol[1])


@pytest.mark.parametrize("n,dx,dt,dy", [(2, 1, 1, 1), (17, 3, 5, 1), (64, 8, 12, 2)])
def test_fused_losses_match_autograd_cores(n, dx, dt, dy):
    x, t, y, y_pred = _tensors(n, dx, dt, dy, seed=n + dx)
    _assert_losses_match_cores(x, t, y, y_pred, ((0.6, 1.7), (2.5, 0.4)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_no_grad_paths_are_bit_identical(dtype):
    # lse without autograd and _log_gram_ work in place on one temporary: the values
    # must be exactly those of the out-of-place (autograd) operations.
    from fstat.bottleneck._fused import _log_gram_
    from fstat.kernels._gram import gram_from_sq_dists

    g = torch.Generator().manual_seed(1)
    a = -torch.rand(30, 40, generator=g, dtype=dtype) * 300
    a[2] = -torch.inf
    for dim in (None, 0, 1):
        with_grad = lse(a.clone().requires_grad_(True), dim).detach()
        assert torch.equal(lse(a, dim), with_grad)
    D = sq_dists(torch.randn(25, 3, generator=g, dtype=dtype))
    for sigma in (1e-3, 0.7, 4.0):
        ref = gram_from_sq_dists(D.clone().requires_grad_(True), sigma, log=True).detach()
        assert torch.equal(_log_gram_(D.clone(), sigma), ref)


def test_fused_losses_gradcheck():
    x, t, y, y_pred = _tensors(8, 3, 4, 2, seed=3)
    sq_x = sq_dists(x)
    assert torch.autograd.gradcheck(lambda v: _qmi_loss(v, sq_x, 1.1, 1.3), (t,))
    assert torch.autograd.gradcheck(lambda v: _cond_loss(y, v, sq_x, 0.8, 0.9),
                                    (y_pred,))


def test_fused_losses_float32_large_residuals():
    # far residuals: every off-diagonal L21 weight underflows; value and gradient stay finite
    x = torch.randn(128, 4)
    y = torch.zeros(128, 1)
    y_pred = torch.full((128, 1), 30.0, requires_grad=True)
    value = _cond_loss(y, y_pred, sq_dists(x), 0.5, 1.0)
    value.backward()
    assert abs(float(value.detach()) - 900.0) <= 1e-3 * 900.0
    assert torch.isfinite(y_pred.grad).all()


@pytest.mark.parametrize("block_entries", [7, 64, 2**18])
def test_blocked_cs_qmi_matches_reference(monkeypatch, block_entries):
    monkeypatch.setattr(_estimators, "_BLOCK_ENTRIES", block_entries)
    rng = np.random.default_rng(4)
    for dx, dt in ((1, 1), (3, 5)):
        X = rng.standard_normal((37, dx))
        T = X[:, :1] + 0.4 * rng.standard_normal((37, dt))
        with torch.no_grad():
            got = _cs_qmi_terms(torch.as_tensor(X), torch.as_tensor(T), 0.9, 1.4)
        ref = cs_qmi_abc_ref(X, T, 0.9, 1.4)
        np.testing.assert_allclose([float(v) for v in got], np.log(ref), rtol=1e-12)


def test_blocked_and_unblocked_public_values_agree():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 4))
    T = np.tanh(X @ rng.standard_normal((4, 6))) + 0.1 * rng.standard_normal((300, 6))
    x, t = torch.as_tensor(X), torch.as_tensor(T).requires_grad_(True)
    unblocked = float(cs_qmi_core(x, t, 1.5, 2.0).detach())  # t requires grad: N x N path
    blocked = cs_mutual_information(X, T, sigma_x=1.5, sigma_t=2.0, device="cpu")
    assert blocked == pytest.approx(unblocked, rel=1e-12)


def test_median_with_ties_matches_numpy():
    # many tied distances around the middle exercise the one-selection even-count rule
    rng = np.random.default_rng(6)
    for n in (4, 5, 8, 9, 16):
        for X in (rng.integers(0, 3, (n, 1)).astype(float),
                  rng.integers(0, 2, (n, 2)).astype(float), rng.standard_normal((n, 2))):
            ref = np.median(pdist(X))
            if ref > 0:
                assert kernel_width(X) == pytest.approx(ref, rel=1e-12)
            else:  # a zero median is degenerate (spec), not the mean of the other distances
                with pytest.warns(UserWarning, match="degenerate kernel width"):
                    assert kernel_width(X) == 1.0


def test_zero_median_of_mostly_duplicate_rows_is_degenerate():
    # 8 rows at the origin and 2 at (1, 1): 29 of 45 distances are 0, so the median is 0
    X = np.array([[0.0, 0.0]] * 8 + [[1.0, 1.0]] * 2)
    assert np.median(pdist(X)) == 0.0
    with pytest.warns(UserWarning, match="degenerate kernel width"):
        assert kernel_width(X) == 1.0
    D = sq_dists(torch.as_tensor(X))
    assert width_from_sq_dists(D, torch.as_tensor(X), "median") == (1.0, True)
    assert rule_width(torch.as_tensor(X), "median") == (1.0, True)
    # one more distinct pair moves the median off zero: the plain numpy median again
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    assert kernel_width(X) == pytest.approx(np.median(pdist(X)), rel=1e-12)
    assert width_from_sq_dists(sq_dists(torch.as_tensor(X)), torch.as_tensor(X),
                               "median") == (pytest.approx(np.median(pdist(X))), False)


def test_fused_losses_float32_batch_matches_float64_cores():
    # a training-sized batch in float32 (the default dtype) against the float64 cores
    x, t, y, y_pred = _tensors(128, 16, 32, 1, seed=11)
    _assert_losses_match_cores(x, t, y, y_pred, ((0.3, 1.0), (1.5, 4.0)),
                               cast=lambda v: v.float(), tol=(1e-4, 1e-5),
                               grad_tol=(1e-3, 1e-6))


def test_fused_losses_tiny_width_without_overflow():
    # -1 / (2 sigma^2) overflows float32 for sigma = 1e-20: the losses fall back to two
    # divisions, so the zero diagonal never becomes 0 * inf = NaN. Values stay finite and
    # equal the float64 cores; gradients (of order 1 / sigma^2) may overflow, never NaN.
    x, t, y, y_pred = _tensors(20, 2, 3, 1, seed=12)
    x32, y32 = x.float(), y.float()
    yp32 = y_pred.detach().float().requires_grad_(True)
    t32 = t.detach().float().requires_grad_(True)
    value = _cond_loss(y32, yp32, sq_dists(x32), 0.7, 1e-20)
    value.backward()
    assert torch.isfinite(value) and not torch.isnan(yp32.grad).any()
    ref = conditional_cs_core(x, y, y_pred, 0.7, 1e-20)
    assert float(value.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    q = _qmi_loss(t32, sq_dists(x32), 1e-20, 1.0)
    q.backward()
    ref = cs_qmi_core(x, t, 1e-20, 1.0)
    assert float(q.detach()) == pytest.approx(float(ref.detach()), rel=1e-5, abs=1e-6)
    assert torch.isfinite(t32.grad).all()  # t's own width is moderate


@pytest.mark.parametrize("sigma", [5e-20, 1e-3, 2.0])
def test_pull_scale_is_finite_where_one_over_sigma_squared_overflows(sigma):
    # float32: 1 / sigma^2 overflows for sigma = 5e-20 although 1 / (2 sigma^2) does not;
    # the gradient pull then divides twice and stays finite (reference in float64)
    gen = torch.Generator().manual_seed(13)
    S = torch.rand(6, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(6, 2, generator=gen, dtype=torch.float64) * sigma ** 2 * 1e3
    ref = (S @ v - S.sum(dim=1)[:, None] * v) / sigma / sigma
    S32, v32 = S.float(), v.float()
    got = _fused._pull(S32.sum(dim=1), S32 @ v32, v32, sigma)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=1e-3)


def test_fused_losses_width_whose_square_underflows_float64():
    # sigma^2 = 0 in float64 for sigma = 1e-200: no ZeroDivisionError; the values equal the
    # autograd cores (a moderate t width keeps t's gradient finite)
    x, t, y, y_pred = _tensors(12, 2, 3, 1, seed=14)
    t = t.detach().requires_grad_(True)
    q = _qmi_loss(t, sq_dists(x), 1e-200, 1.0)
    q.backward()
    ref = cs_qmi_core(x, t.detach(), 1e-200, 1.0)
    assert float(q.detach()) == pytest.approx(float(ref), rel=1e-10)
    assert torch.isfinite(t.grad).all()
    value = _cond_loss(y, y_pred.detach().requires_grad_(True), sq_dists(x), 1e-200, 1.0)
    ref = conditional_cs_core(x, y, y_pred, 1e-200, 1.0)
    assert float(value.detach()) == pytest.approx(float(ref.detach()), rel=1e-10)


@pytest.mark.parametrize("dy", [1, 2])
def test_stacked_contexts_equal_single_batch_contexts(dy):
    # one stack with a different width per batch, one of which (1e-20 in float32) takes the
    # two-division fallback; each batch's context equals the context of that batch alone
    from fstat.kernels._gram import batch_sq_dists

    g = torch.Generator().manual_seed(dy)
    for dtype, tiny in ((torch.float64, 1e-3), (torch.float32, 1e-20)):
        x = torch.randn(4, 11, 3, generator=g, dtype=dtype)
        y = torch.randn(4, 11, dy, generator=g, dtype=dtype)
        sq = batch_sq_dists(x)
        sx, sy = [0.4, 1.3, tiny, 2.0], [1.0, 0.5, 0.7, tiny]
        stacked = prediction_context(y, sq, sx, sy), compression_context(sq, sx)
        for b in range(4):
            alone = (prediction_context(y[b:b + 1], sq[b:b + 1], sx[b:b + 1], sy[b:b + 1]),
                     compression_context(sq[b:b + 1], sx[b:b + 1]))
            for got, ref in zip(stacked, alone):
                for g_part, r_part in zip(got, ref):
                    torch.testing.assert_close(g_part[b], r_part[0], rtol=1e-6, atol=0)
                    assert not torch.isnan(g_part[b]).any()  # log K may be -inf


def test_stacked_widths_equal_single_widths():
    from fstat.bottleneck._bandwidth import widths_from_sq_dists
    from fstat.kernels._gram import batch_sq_dists

    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 10, 2, generator=g, dtype=torch.float64)
    x[1] = 0.0  # degenerate: all rows equal
    sq = batch_sq_dists(x)
    for rule in ("median", "silverman"):
        got = widths_from_sq_dists(sq, x, rule, scale=0.5)
        for b in range(3):
            ref = width_from_sq_dists(sq_dists(x[b]), x[b], rule, scale=0.5)
            assert got[b][1] == ref[1]
            assert got[b][0] == pytest.approx(ref[0], rel=1e-12)
        assert got[1] == (1.0, True)
    median = 0.5 * np.median(pdist(x[0].numpy()))
    assert widths_from_sq_dists(sq, x, "median", scale=0.5)[0][0] == pytest.approx(median,
                                                                                  rel=1e-12)
