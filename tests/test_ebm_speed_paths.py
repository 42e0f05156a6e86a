"""The fast paths of the training step change no bit: closed-form quadratic gradient, lean Adam.

Each fast path is compared with the plain path it replaces (torch autograd, torch.optim.Adam)
on the same inputs, op by op and end to end on whole fits (loss curves and log Z equal).
"""

import warnings

import pytest
import torch

from fstat._adam import FusedAdam
from fstat.datasets import make_toy_density
from fstat.ebm import CompositionalEBM, NCEDensity, SNLDensity, _base
from fstat.ebm._energies import QuadraticEnergy, _QuadraticEnergyFunction


def _plain_quadratic(self, z):
    proj = z @ self.cholesky()
    return 0.5 * (proj * proj).sum(-1) - z @ self.b


def _random_quadratic(d, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    q = QuadraticEnergy(d).to(dtype)
    with torch.no_grad():
        for p in q.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return q, gen


@pytest.mark.parametrize("d", [1, 3, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quadratic_function_equals_autograd_bitwise(d, dtype):
    q, gen = _random_quadratic(d, dtype, seed=d)
    z = torch.randn(300, d, generator=gen, dtype=torch.float64).to(dtype)
    weight = torch.randn(300, generator=gen, dtype=torch.float64).to(dtype)
    weight[:7] = 0.0
    params = list(q.parameters())
    fast = q(z)
    assert fast.grad_fn is not None and "QuadraticEnergyFunction" in type(fast.grad_fn).__name__
    plain = _plain_quadratic(q, z)
    assert torch.equal(fast, plain)
    # a loss with MECO's shape: data mean + mean of exponentiated weights
    g_fast = torch.autograd.grad(fast[:100].mean() + torch.exp(-fast[100:] * weight[100:]).mean(),
                                 params)
    g_plain = torch.autograd.grad(plain[:100].mean()
                                  + torch.exp(-plain[100:] * weight[100:]).mean(), params)
    for a, b in zip(g_fast, g_plain, strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(q(z), plain)


def test_quadratic_function_falls_back_for_gradients_in_z():
    q, gen = _random_quadratic(3, torch.float64, seed=0)
    z = torch.randn(20, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    (gz,) = torch.autograd.grad(q(z).sum(), z)
    # dE/dz = z L L' - b
    L = q.cholesky().detach()
    assert torch.allclose(gz, z.detach() @ L @ L.T - q.b.detach(), rtol=0, atol=1e-12)
    with pytest.raises(RuntimeError):  # no silent wrong second derivatives
        out = _QuadraticEnergyFunction.apply(z.detach(), q.log_diag, q.lower, q.mask, q.b)
        (gb,) = torch.autograd.grad(out.sum(), q.b, create_graph=True)
        torch.autograd.grad(gb.sum(), q.lower)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_adam_equals_torch_fused_adam_bitwise(dtype):
    gen = torch.Generator().manual_seed(0)

    def params():
        g = torch.Generator().manual_seed(1)
        return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
                for s in ((4, 3), (3,), ())]

    pa, pb = params(), params()
    groups = lambda p: [{"params": p[:2]}, {"params": p[2:], "lr": 0.05}]  # noqa: E731
    ours = FusedAdam(groups(pa), 0.01, betas=(0.7, 0.999), weight_decay=1e-3)
    ref = torch.optim.Adam(groups(pb), lr=0.01, betas=(0.7, 0.999), weight_decay=1e-3,
                           fused=True)
    for step in range(25):
        grads = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype) for p in pa]
        for k, (a, b, g) in enumerate(zip(pa, pb, grads, strict=True)):
            skip = k == 1 and step % 4 == 1  # a tensor without gradient keeps its state
            a.grad = None if skip else g.clone()
            b.grad = None if skip else g.clone()
        ours.step()
        ref.step()
        for a, b in zip(pa, pb, strict=True):
            assert torch.equal(a, b)


def _fit_pair(monkeypatch, cls, kw, X, patch):
    fast = cls(max_iter=150, device="cpu", random_state=0, **kw).fit(X)
    with monkeypatch.context() as mp:
        patch(mp)
        plain = cls(max_iter=150, device="cpu", random_state=0, **kw).fit(X)
    assert fast.loss_curve_ == plain.loss_curve_
    assert fast.log_partition_ == plain.log_partition_


def _torch_adam(mp):
    def make(groups, learning_rate, *, betas, weight_decay):
        return torch.optim.Adam(groups, lr=learning_rate, betas=betas,
                                weight_decay=weight_decay, fused=True)
    mp.setattr(_base, "FusedAdam", make)


@pytest.mark.parametrize("cls,kw", [
    (CompositionalEBM, {}), (CompositionalEBM, {"inner_estimator": "msvr"}),
    (NCEDensity, {}), (SNLDensity, {})])
def test_fits_identical_to_the_plain_paths(monkeypatch, cls, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xq = make_toy_density("gaussian", 400, n_features=3, random_state=0)
        quad = dict(energy_model="quadratic", learning_rate=1e-2, dtype="float64", **kw)
        _fit_pair(monkeypatch, cls, quad, Xq,
                  lambda mp: mp.setattr(QuadraticEnergy, "forward", _plain_quadratic))
        Xm = make_toy_density("moons", 400, random_state=0)
        _fit_pair(monkeypatch, cls, dict(hidden_layer_sizes=(16,), **kw), Xm, _torch_adam)


def test_first_fit_does_not_import_dynamo():
    """torch.optim's first optimiser imports torch._dynamo (seconds); the Adam path avoids it."""
    from _dynamo_probe import imports_dynamo

    assert not imports_dynamo(
        "import warnings; warnings.simplefilter('ignore')\n"
        "from fstat.datasets import make_toy_density\n"
        "from fstat.ebm import CompositionalEBM\n"
        "X = make_toy_density('gaussian', 100, n_features=2, random_state=0)\n"
        "CompositionalEBM(energy_model='quadratic', max_iter=3, device='cpu').fit(X)")
