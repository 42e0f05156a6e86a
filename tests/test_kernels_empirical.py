"""Empirical (finite-width) NTK: structured formula vs torch.func, convergence to analytic."""

import math

import numpy as np
import pytest
import torch

from fstat._torch import make_generator
from fstat.kernels import empirical_ntk, ntk_kernel
from fstat.kernels._empirical import (
    _jacobian_ntk,
    empirical_ntk_torch,
    init_params,
)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("b_std", [0.0, 0.2])
def test_structured_equals_jacobian(depth, b_std):
    rng = np.random.default_rng(depth)
    X = torch.as_tensor(rng.standard_normal((6, 5)))
    Y = torch.as_tensor(rng.standard_normal((4, 5)))
    params = init_params(5, 9, depth, b_std, generator=make_generator(1))
    for Z in (None, Y):
        A = empirical_ntk_torch(params, X, Z, w_std=1.3, b_std=b_std)
        B = _jacobian_ntk(params, X, Z, 1.3, b_std)
        assert (A - B).abs().max().item() <= 1e-10 * B.abs().max().item()
    # the public function, both methods, same seed
    s = empirical_ntk(X.numpy(), width=9, depth=depth, b_std=b_std, random_state=0, device="cpu")
    j = empirical_ntk(X.numpy(), width=9, depth=depth, b_std=b_std, random_state=0,
                      device="cpu", method="jacobian")
    np.testing.assert_allclose(s, j, rtol=0, atol=1e-10 * np.abs(j).max())


def test_empirical_nngp_is_feature_inner_product():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    params = init_params(3, 11, 2, 0.5, generator=make_generator(0))
    Xt = torch.as_tensor(X)
    nngp = empirical_ntk_torch(params, Xt, w_std=1.1, b_std=0.5, kind="nngp")
    x = Xt
    for W, b in params[:-1]:
        x = torch.relu(1.1 / math.sqrt(W.shape[1]) * x @ W.T + 0.5 * b)
    ref = 1.1**2 / 11 * x @ x.T + 0.25
    assert torch.allclose(nngp, ref, rtol=1e-13, atol=1e-14)


def test_block_size_and_both():
    X = np.random.default_rng(0).standard_normal((7, 3))
    a = empirical_ntk(X, width=16, depth=2, random_state=3, device="cpu", kind="both")
    b = empirical_ntk(X, width=16, depth=2, random_state=3, device="cpu", kind="both",
                      block_size=2)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-13)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-13)


@pytest.mark.slow
def test_converges_to_analytic_kernel():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 6))
    K = ntk_kernel(X, w_std=math.sqrt(2), device="cpu")

    def err(width):
        out = []
        for seed in range(3):
            E = empirical_ntk(X, width=width, w_std=math.sqrt(2), random_state=seed,
                              device="cpu")
            out.append(np.linalg.norm(E - K) / np.linalg.norm(K))
        return np.mean(out)

    e_small, e_big = err(256), err(16384)
    assert e_big < 0.05
    assert e_big < e_small / 3


def test_bad_input():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="width"):
        empirical_ntk(X, width=0, device="cpu")
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(X, method="autograd", device="cpu")
