"""Rank routes in detail: R1 (sort) and R2 (two pointers) orders, tie starts and ball-end
weights against their definitions, chunking, and the two cumsum evaluation paths."""

import numpy as np
import pytest
import torch
from _reference_sdr import naive_fccov

import fstat.sdr._ranks as ranks_module
from fstat.sdr import fccov
from fstat.sdr._fccov import CumsumLoss, cumsum_terms
from fstat.sdr._metrics import check_response
from fstat.sdr._ranks import ball_ranks


def _dense(ranks, n):
    """Orders, tie starts and weights of all chunks stacked (weights None -> ones)."""
    order = torch.cat([o for o, _, _ in ranks.chunks]).numpy()
    first = torch.cat([f for _, f, _ in ranks.chunks]).numpy()
    weight = torch.cat([torch.ones(o.shape, dtype=torch.int32) if w is None else w
                        for o, _, w in ranks.chunks]).numpy()
    return order, first, weight


def _definition(D, centers):
    """Sorted distances, tie starts f_k(r) and W_kr = #{l : e_k(rank of l) = r} by loops."""
    n = len(D)
    s = np.sort(D[centers], axis=1)
    first = np.empty_like(s, dtype=np.int64)
    weight = np.zeros_like(s, dtype=np.int64)
    for k in range(len(centers)):
        for r in range(n):
            first[k, r] = np.searchsorted(s[k], s[k, r], "left")
            weight[k, np.searchsorted(s[k], s[k, r], "right") - 1] += 1
    return s, first, weight


@pytest.mark.parametrize("n", [5, 64, 150])
@pytest.mark.parametrize("kind", ["continuous", "rounded", "duplicates"])
@pytest.mark.parametrize("route", ["sort", "interval"])
def test_ranks_match_their_definition(n, kind, route):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n) * 2
    if kind == "rounded":
        y = np.round(y)
    elif kind == "duplicates":
        y[: n // 2] = y[n // 2:2 * (n // 2)]
    D = np.abs(y[:, None] - y[None])
    centers = np.arange(n) if n < 100 else np.sort(rng.choice(n, 37, replace=False))
    ranks = ball_ranks(check_response(y), "cpu", centers=centers, route=route)
    order, first, weight = _dense(ranks, n)
    s, first_ref, weight_ref = _definition(D, centers)
    assert np.array_equal(D[centers[:, None], order], s)  # bitwise: same float64 values
    assert np.array_equal(np.sort(order, axis=1), np.tile(np.arange(n), (len(centers), 1)))
    np.testing.assert_array_equal(first, first_ref)
    np.testing.assert_array_equal(weight, weight_ref)
    tied = np.any(s[:, 1:] == s[:, :-1])
    assert any(w is not None for _, _, w in ranks.chunks) == tied  # weights only with ties


@pytest.mark.parametrize("route", ["sort", "interval"])
def test_distances_beyond_the_float64_range_rank_last(route):
    # differences that overflow to inf are the largest distances, as in the distance
    # matrix: the two-pointer route took its +-inf padding on such a tie (a broken order,
    # FCCov 0.0433 or 108.7 and ball-kernel entries near 5e7), and warned from numpy
    import warnings

    from fstat.sdr import ball_kernel

    y = np.array([-1e308, 1e308, 0.0, 1.0, 2.0])
    U = np.array([0.3, -1.2, 0.5, 2.0, -0.4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranks = ball_ranks(check_response(y), "cpu", centers=np.arange(5), route=route)
        order, _, _ = _dense(ranks, 5)
        assert np.array_equal(np.sort(order, axis=1), np.tile(np.arange(5), (5, 1)))
        with np.errstate(over="ignore"):
            D = np.abs(y[:, None] - y[None])
        expected = naive_fccov(U, D)
        assert expected == pytest.approx(fccov(U, y / 1e300, device="cpu"), rel=1e-12)
        for method in ("auto", "cumsum", "kernel"):
            assert fccov(U, y, method=method, device="cpu") == pytest.approx(expected,
                                                                              rel=1e-12)
        K = ball_kernel(y, device="cpu")
        assert np.all((K > 0) & (K <= 1))


@pytest.mark.parametrize("route", ["sort", "interval"])
def test_chunked_ranks_equal_one_block(monkeypatch, route):
    rng = np.random.default_rng(1)
    y = np.round(rng.standard_normal(90), 1)
    U = rng.standard_normal((90, 2))
    response = check_response(y)
    whole = _dense(ball_ranks(response, "cpu", route=route), 90)
    value = fccov(U, y, device="cpu")
    monkeypatch.setattr(ranks_module, "_chunk", lambda n, device, width=1: 7)
    chunked = ball_ranks(response, "cpu", route=route)
    assert len(chunked.chunks) == 13
    for a, b in zip(whole, _dense(chunked, 90)):
        np.testing.assert_array_equal(a, b)
    assert fccov(U, y, device="cpu") == pytest.approx(value, rel=1e-13)


@pytest.mark.parametrize("rounding", [None, 0])
def test_autograd_and_no_grad_cumsum_paths_agree(rounding):
    """The no-grad path (numpy gather, in-place cumsum) equals the differentiable one."""
    rng = np.random.default_rng(2)
    y = rng.standard_normal(60)
    y = y if rounding is None else np.round(y, rounding)
    U = torch.tensor(rng.standard_normal((60, 3)), dtype=torch.float64, requires_grad=True)
    ranks = ball_ranks(check_response(y), "cpu", counts=False)
    with_grad = CumsumLoss(ranks)(U)
    with torch.no_grad():
        without = CumsumLoss(ranks)(U)
    D = np.abs(y[:, None] - y[None])
    ref = naive_fccov(U.detach().numpy(), D)
    with_grad.backward()  # the differentiable path stays differentiable
    assert U.grad is not None and bool(torch.isfinite(U.grad).all())
    assert float(with_grad.detach()) == pytest.approx(ref, rel=1e-12)
    assert float(without) == pytest.approx(ref, rel=1e-12)
    Uc = (U - U.mean(0)).detach()
    M = cumsum_terms(ranks, Uc, matrix=True) / 60**2
    np.testing.assert_allclose(M.numpy(), naive_fccov(Uc.numpy(), D, matrix=True),
                               rtol=1e-10, atol=1e-15)
