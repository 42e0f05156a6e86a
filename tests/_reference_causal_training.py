"""R5 (spec section 6, item 8): a loop-based per-group trainer of the conditional dual networks.

Plain torch, one group (fold k, divergence d, sign sigma) at a time: an ordinary MLP of
``torch.nn.Linear`` layers, the debiased amortised dual risk of spec section 2.6 written out
from its formulas (the radius and conjugate tables of sections 2.2-2.3 are typed in here, not
taken from ``fstat.divergences``), the domain handling of section 2.6 step 4 (feasible-by-
construction ``u`` with a declared support, the C^1 surrogate conjugate without), and a
hand-written full-batch Adam with L2 weight decay. Only the initial weights follow the library's
convention (section 2.7): PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init drawn from a
per-group ``torch.Generator`` seeded from (random_state, fold, divergence) -- not the sign.
"""

import math

import numpy as np
import torch

from fstat.causal._dualnet import group_generator

LOG2 = math.log(2.0)


def _kl_conj(t):
    return -1.0 - torch.log(-t)


def _js_conj(t):
    return -0.5 * torch.log(2.0 - torch.exp(2.0 * t))


#: name -> (f(0), B_f(e), B_f'(e), g*(t) on tensors, g*'(t) on floats), spec tables 2.2 / 2.3
DIVERGENCES = {
    "kl": (0.0, lambda e: -np.log(e), lambda e: -1.0 / e, _kl_conj, lambda t: -1.0 / t),
    "hellinger": (0.5, lambda e: 1.0 - np.sqrt(e), lambda e: -0.5 / np.sqrt(e),
                  lambda t: t / (1.0 - 2.0 * t), lambda t: (1.0 - 2.0 * t) ** -2),
    "chi2": (0.5, lambda e: (1.0 - e) / (2.0 * e), lambda e: -0.5 / e ** 2,
             lambda t: 1.0 - torch.sqrt(1.0 - 2.0 * t), lambda t: (1.0 - 2.0 * t) ** -0.5),
    "tv": (0.5, lambda e: 1.0 - e, lambda e: -np.ones_like(e),
           lambda t: torch.clamp(t, min=-0.5), lambda t: 1.0 if t > -0.5 else 0.0),
    "js": (0.5 * LOG2,
           lambda e: 0.5 * (e * np.log(e) - (1.0 + e) * np.log1p(e)) + LOG2,
           lambda e: 0.5 * np.log(e / (1.0 + e)), _js_conj,
           lambda t: math.exp(2.0 * t) / (2.0 - math.exp(2.0 * t))),
}


def reference_net(n_in, hidden, generator):
    """Linear/ReLU MLP ``n_in -> hidden -> 4`` (h_0, h_1, v_0, v_1), float64; each layer's
    weight (out, in) then bias drawn from ``generator`` as U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    sizes = [n_in, *hidden, 4]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        lin = torch.nn.Linear(fan_in, fan_out, dtype=torch.float64)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            lin.weight.copy_((2.0 * torch.rand(fan_out, fan_in, generator=generator,
                                               dtype=torch.float64) - 1.0) * bound)
            lin.bias.copy_(((2.0 * torch.rand(1, fan_out, generator=generator,
                                              dtype=torch.float64) - 1.0) * bound)[0])
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def dual_variables(raw, f0, declared, margin):
    """lambda = exp(clamp(h, +-20)); u = 1 - lambda (f(0) - delta) + softplus(v) with a declared
    support (standardised sup S = 1), u = v without (spec 2.6 step 4)."""
    lam = torch.exp(torch.clamp(raw[:, :2], -20.0, 20.0))
    v = raw[:, 2:]
    if not declared:
        return lam, v
    return lam, 1.0 - lam * (f0 - margin) + torch.nn.functional.softplus(v)


def group_loss(net, x, target, arm, e1, name, *, declared, margin, penalty, debiased=True):
    """Mean over one fold of the debiased amortised risk l_db of one group (spec 2.6)."""
    f0, rad, drad, conj, dconj = DIVERGENCES[name]
    lam, u = dual_variables(net(x), f0, declared, margin)
    rows = torch.arange(len(arm))
    lam_a, u_a = lam[rows, arm], u[rows, arm]
    e = np.column_stack([1.0 - e1, e1])
    e_a = e[np.arange(len(arm)), arm.numpy()]
    t = (target - u_a) / lam_a
    if declared:  # feasible by construction: the exact conjugate
        g = conj(t)
    else:  # g* up to t0 = f(0) - delta, then g*(t0) + g*'(t0)(t - t0) + rho/2 (t - t0)^2
        t0 = f0 - margin
        g_t0 = float(conj(torch.tensor(t0, dtype=torch.float64)))
        inside = t <= t0
        g = torch.where(inside, conj(torch.where(inside, t, torch.full_like(t, t0))),
                        g_t0 + dconj(t0) * (t - t0) + 0.5 * penalty * (t - t0) ** 2)
    loss = lam_a * (torch.as_tensor(rad(e_a)) + g) + u_a
    if debiased:  # + sum_a e_a lam_a B_f'(e_a) (1{A=a} - e_a), lambda at both arms
        coef = torch.as_tensor(e * drad(e) * (np.eye(2)[arm.numpy()] - e))
        loss = loss + (coef * lam).sum(dim=1)
    return loss.mean()


def train_adam(net, loss_fn, *, steps, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """Full-batch Adam, L2 weight decay (gradient + wd * p), bias-corrected moments.

    Returns the loss before each step (n_steps,).
    """
    params = list(net.parameters())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    curve = []
    for step in range(1, steps + 1):
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        curve.append(float(loss.detach()))
        with torch.no_grad():
            for p, m_p, v_p in zip(params, m, v):
                g = p.grad + weight_decay * p
                m_p.mul_(betas[0]).add_((1.0 - betas[0]) * g)
                v_p.mul_(betas[1]).add_((1.0 - betas[1]) * g * g)
                m_hat = m_p / (1.0 - betas[0] ** step)
                v_hat = v_p / (1.0 - betas[1] ** step)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    return np.array(curve)


def standardise_fold(cov_fold):
    """Covariates of one fold standardised by the fold's own mean and sd (sd 0 -> 1)."""
    sd = cov_fold.std(axis=0)
    sd[sd == 0] = 1.0
    return torch.as_tensor((cov_fold - cov_fold.mean(axis=0)) / sd)


def reference_fit(cov, y, a, e1, folds, *, names, seed, hidden, support, steps, lr,
                  weight_decay, margin, penalty, perturb=None):
    """Train every group (fold k, divergence, sign) separately, one after another.

    ``e1`` are the (fixed) out-of-fold propensities, ``support`` a declared (lo, hi) or None.
    ``perturb`` (optional callable (k, name, sign, target) -> target) alters one group's data
    (negative controls). Returns dict (k, name, sign) -> (net, loss curve, standardised x_k).
    """
    declared = support is not None
    if declared:
        c0, s0 = (support[0] + support[1]) / 2.0, (support[1] - support[0]) / 2.0
    else:
        c0, s0 = float(np.median(y)), float(np.std(y))
    ytil = (y - c0) / s0
    out = {}
    for name in names:
        for k, (_, te) in enumerate(folds):
            xk, arm = standardise_fold(cov[te]), torch.as_tensor(a[te])
            for sign in (1, -1):
                target = torch.as_tensor(sign * ytil[te])
                if perturb is not None:
                    target = perturb(k, name, sign, target)
                net = reference_net(cov.shape[1], hidden, group_generator(seed, k, name))
                with torch.no_grad():  # h bias 0 (lambda = 1); v bias per spec 2.7
                    net[-1].bias[:2] = 0.0
                    net[-1].bias[2:] = (math.log(math.expm1(0.5)) if declared
                                        else float(target.max()) + 1.0)

                def loss_fn(net=net, xk=xk, target=target, arm=arm, e=e1[te], name=name):
                    return group_loss(net, xk, target, arm, e, name, declared=declared,
                                      margin=margin, penalty=penalty)

                curve = train_adam(net, loss_fn, steps=steps, lr=lr, weight_decay=weight_decay)
                out[k, name, sign] = (net, curve, xk)
    return out
