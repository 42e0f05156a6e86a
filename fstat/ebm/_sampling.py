"""Sampling-importance-resampling and the MALA kernel shared with AIS."""

from __future__ import annotations

import math

import torch

#: the most categories torch.multinomial accepts
_MULTINOMIAL_MAX = 2**24


def draw_categorical(probs, n, generator):
    """``n`` indices drawn with replacement with probabilities ``probs`` (on the generator's
    device). ``torch.multinomial`` up to 2^24 categories (its limit); beyond, by inverting
    the float64 cumulative distribution at uniform draws (zero-probability categories are
    never drawn)."""
    if probs.numel() <= _MULTINOMIAL_MAX:
        return torch.multinomial(probs, n, replacement=True, generator=generator)
    cdf = torch.cumsum(probs.double(), 0)
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=cdf.device) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.numel() - 1)


def value_and_grad(log_f, x):
    """log f(x) and its input gradient (rows independent); non-finite gradients zeroed."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        value = log_f(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
    grad = torch.where(torch.isfinite(grad), grad, torch.zeros_like(grad))
    return value.detach(), grad.detach()


def mala_step(x, value, grad, log_f, h, generator):
    """One Metropolis-adjusted Langevin step targeting ``exp(log_f)``.

    ``h`` is a scalar or a per-chain (n,) step size. Proposals with log f = -inf are
    rejected. Returns ``(x, value, grad, accepted)``.
    """
    h = torch.as_tensor(h, dtype=x.dtype, device=x.device)
    hcol = h.reshape(-1, 1) if h.dim() else h
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype,
                     device=generator.device).to(x.device)
    prop = x + hcol * grad + torch.sqrt(2.0 * hcol) * xi
    pvalue, pgrad = value_and_grad(log_f, prop)
    fwd = -((prop - x - hcol * grad) ** 2).sum(-1) / (4.0 * h)
    bwd = -((x - prop - hcol * pgrad) ** 2).sum(-1) / (4.0 * h)
    log_alpha = pvalue - value + bwd - fwd
    log_alpha = torch.where(torch.isfinite(pvalue) & torch.isfinite(log_alpha), log_alpha,
                            torch.full_like(log_alpha, -math.inf))
    u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype,
                   device=generator.device).to(x.device)
    accept = torch.log(u) < log_alpha
    x = torch.where(accept[:, None], prop, x)
    value = torch.where(accept, pvalue, value)
    grad = torch.where(accept[:, None], pgrad, grad)
    return x, value, grad, accept


def sir(log_weight_fn, noise, n_samples, n_proposals, generator, chunk_size=65536):
    """Draw proposals from ``noise``, resample ``n_samples`` with probabilities softmax(s).

    Returns ``(samples, ess)``.
    """
    proposals, logw = [], []
    remaining = n_proposals
    with torch.no_grad():
        while remaining > 0:
            k = min(chunk_size, remaining)
            y = noise.sample(k, generator)
            proposals.append(y)
            logw.append(log_weight_fn(y).double())
            remaining -= k
        y = torch.cat(proposals)
        s = torch.cat(logw)
        s = torch.where(torch.isnan(s), torch.full_like(s, -math.inf), s)
        w = torch.exp(s - s.max())
        ess = float(w.sum() ** 2 / (w * w).sum())
        idx = draw_categorical((w / w.sum()).to(generator.device), n_samples,
                               generator).to(y.device)
    return y[idx], ess
