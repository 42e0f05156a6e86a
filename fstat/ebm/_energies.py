"""Energy families in working space: MLP, quadratic (closed-form log Z), user callables.

:class:`EnergyModel` is the module stored as ``energy_module_``. Its ``forward(z)`` returns the
full energy E_w(z); :meth:`EnergyModel.log_weight` returns the log importance weight
s_w(y) = -E_w(y) - log q(y) without the cancelling ``log q`` terms when the energy is tilted
(E = f - log q, so s = -f).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._nn import ACTIVATIONS, make_mlp

ACTIVATIONS_EBM = {**ACTIVATIONS, "silu": nn.SiLU}
_SMOOTH = ("silu", "softplus", "tanh", "elu")


class _QuadraticEnergyFunction(torch.autograd.Function):
    """E(z) = 0.5 |z L|^2 - z'b with its parameter gradient in closed form (z is data).

    The forward runs the same operations as the autograd path of :class:`QuadraticEnergy`; the
    backward forms, with upstream g and P = z L, the same quantities autograd forms from its ~20
    nodes, in the same order: dL = z' (h + h) with h = (g/2) P, d log_diag = diag(dL) *
    exp(log_diag), d lower = dL * mask, db = z' (-g). Gradients are bit-identical (tested); the
    step of a 5-parameter-tensor model is dominated by per-node overhead, not arithmetic.
    """

    @staticmethod
    def forward(ctx, z, log_diag, lower, mask, b):
        diag = torch.exp(log_diag)
        proj = z @ (lower * mask + torch.diag(diag))
        ctx.save_for_backward(z, proj, diag, mask)
        return 0.5 * (proj * proj).sum(-1) - z @ b

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        z, proj, diag, mask = ctx.saved_tensors
        half = (grad * 0.5)[:, None] * proj
        grad_l = z.t().mm(half + half)
        return None, grad_l.diagonal() * diag, grad_l * mask, None, z.t().mv(-grad)


class QuadraticEnergy(nn.Module):
    """E(z) = 0.5 z' L L' z - b'z with L lower triangular, diag(L) = exp(log_diag)."""

    def __init__(self, n_features, dtype=torch.float64):
        super().__init__()
        d = int(n_features)
        self.log_diag = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.lower = nn.Parameter(torch.zeros(d, d, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.register_buffer("mask", torch.tril(torch.ones(d, d, dtype=dtype), -1))

    def cholesky(self, dtype=None):
        """The lower Cholesky factor L of P = L L^T, computed in ``dtype`` (default: the
        parameters' dtype; float64 for the public moments of a float32 model)."""
        lower, mask, log_diag = self.lower, self.mask, self.log_diag
        if dtype is not None:
            lower, mask, log_diag = lower.to(dtype), mask.to(dtype), log_diag.to(dtype)
        return lower * mask + torch.diag(torch.exp(log_diag))

    def forward(self, z):
        if torch.is_grad_enabled() and not z.requires_grad:  # training: closed-form gradient
            return _QuadraticEnergyFunction.apply(z, self.log_diag, self.lower, self.mask,
                                                  self.b)
        proj = z @ self.cholesky()  # no_grad, or gradients in z (AIS, MALA): same ops
        return 0.5 * (proj * proj).sum(-1) - z @ self.b


class EnergyModel(nn.Module):
    """Full working-space energy: ``core`` (+ soft bound) (+ confinement) (- log q if tilted)."""

    def __init__(self, core, noise, *, tilted, soft_bound=False, confinement=0.0):
        super().__init__()
        self.core = core
        self.noise = noise
        self.tilted = bool(tilted)
        self.soft_bound = bool(soft_bound)
        self.confinement = float(confinement)

    def raw(self, z):
        """f_w(z) (tilted) or E_w(z) (untilted): the parameter-dependent part."""
        out = self.core(z)
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if self.soft_bound:
            # softplus(v) = log(1 + e^v), stable everywhere (torch's softplus switches to
            # the identity above v = 20, an error of up to e^-20 against the formula)
            shifted = out + 20.0
            out = -20.0 + torch.logaddexp(shifted, torch.zeros_like(shifted))
        if self.confinement:
            out = out + 0.5 * self.confinement * (z * z).sum(-1)
        return out

    def forward(self, z):
        out = self.raw(z)
        if self.tilted:
            out = out - self.noise(z)
        return out

    def log_weight(self, y, log_q=None):
        """s(y) = -E(y) - log q(y); ``log_q`` is computed when needed and not given."""
        if self.tilted:
            return -self.raw(y)
        if log_q is None:
            log_q = self.noise(y)
        return -self.raw(y) - log_q

    def exact_log_partition(self):
        """Closed-form log Z for an untilted quadratic energy (float64)."""
        if not isinstance(self.core, QuadraticEnergy) or self.tilted or self.soft_bound:
            raise ValueError(
                "logz_method='exact' needs the untilted quadratic energy "
                "(energy_model='quadratic', tilt=False)."
            )
        with torch.no_grad():
            L = self.core.cholesky(torch.float64)
            d = L.shape[0]
            P = L @ L.T + self.confinement * torch.eye(d, dtype=L.dtype, device=L.device)
            b = self.core.b.double()
            chol = torch.linalg.cholesky(P)
            sol = torch.cholesky_solve(b[:, None], chol)[:, 0]
            logdet = 2.0 * torch.log(torch.diagonal(chol)).sum()
            return float(0.5 * d * math.log(2 * math.pi) - 0.5 * logdet + 0.5 * (b @ sol))

    def quadratic_moments(self):
        """(mean, covariance) of the untilted quadratic model (working space, float64)."""
        with torch.no_grad():
            L = self.core.cholesky(torch.float64)
            d = L.shape[0]
            P = L @ L.T + self.confinement * torch.eye(d, dtype=L.dtype, device=L.device)
            cov = torch.linalg.inv(P)
            return (cov @ self.core.b.double()).cpu().numpy(), cov.cpu().numpy()


CPU_BLOCK = 4096


def evaluate_no_grad(fn, z, block=CPU_BLOCK):
    """``fn(z)`` without autograd; on CPU in row blocks of ``block`` rows.

    Rows are independent (batch-coupling layers are refused), so blocking changes no value; it
    keeps the hidden activations of a block inside the CPU cache (1e6 rows through a (64, 64)
    MLP: about 2x faster than 65 536-row chunks).
    """
    with torch.no_grad():
        if z.device.type != "cpu" or len(z) <= block:
            return fn(z)
        return torch.cat([fn(z[start:start + block]) for start in range(0, len(z), block)])


def use_inplace_activations(energy):
    """Switch the activations of an fstat-built MLP core to in-place (inference copies only).

    Safe because every activation of :func:`build_core`'s MLP reads a fresh Linear output; never
    used where gradients are needed (AIS, MALA) nor on user-supplied modules.
    """
    if getattr(energy.core, "_fstat_mlp", False):
        for layer in energy.core:
            if hasattr(layer, "inplace"):
                layer.inplace = True
    return energy


def _zero_last_linear(module):
    last = None
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            last = layer
    if last is not None:
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()


def build_core(energy_model, n_features, *, hidden_layer_sizes, activation, generator, dtype,
               seed):
    """Build the parameterised part of the energy on CPU in float64 (cast later)."""
    if energy_model == "quadratic":
        return QuadraticEnergy(n_features)
    if energy_model == "mlp":
        if activation not in ACTIVATIONS_EBM:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS_EBM)}; got "
                             f"activation={activation!r}.")
        if activation == "silu":
            net = make_mlp(n_features, hidden_layer_sizes, 1, activation="tanh",
                           generator=generator)
            layers = [nn.SiLU() if isinstance(m, nn.Tanh) else m for m in net]
            net = nn.Sequential(*layers)
        else:
            net = make_mlp(n_features, hidden_layer_sizes, 1, activation=activation,
                           generator=generator)
        _zero_last_linear(net)
        net._fstat_mlp = True  # Linear first, activations fed only by Linear outputs
        return net
    # user callable, constructed under a forked and seeded global CPU RNG (restored
    # afterwards). torch.manual_seed would also reseed every CUDA generator, which
    # fork_rng(devices=[]) does not restore.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        module = energy_model(n_features)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"energy_model callable must return a torch.nn.Module; got {type(module).__name__}."
        )
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            raise ValueError("energy_model contains BatchNorm; BatchNorm couples data and noise "
                             "batches and is not allowed.")
    module = module.to(torch.float64)
    with torch.no_grad():
        out = module(torch.zeros(3, n_features, dtype=torch.float64))
    if not (out.shape == (3,) or out.shape == (3, 1)):
        raise ValueError(
            f"energy_model module must map (n, {n_features}) to (n,) or (n, 1); got output "
            f"shape {tuple(out.shape)} for n=3."
        )
    return module
