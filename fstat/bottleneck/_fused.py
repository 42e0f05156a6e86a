"""Training-loss CS terms as autograd Functions with closed-form gradients.

In training the conditioning data ``x`` carry no gradient, and only the
representation ``t`` (compression) or the prediction ``y_pred`` (prediction term)
do. Recording every log-Gram operation on the autograd tape costs several dozen
small operations per batch; at the default batch of 128 this bookkeeping, not the
arithmetic, dominated the epoch time. The two Functions below compute the same
values as :func:`~fstat.bottleneck._estimators.cs_qmi_core` and
:func:`~fstat.bottleneck._estimators.conditional_cs_core` (log domain, one flat
``lse`` per sum) and return the exact gradient from its closed form, with every
weight an ``exp`` of a non-positive log-ratio (no overflow).

CS-QMI, ``I = log sum K∘Q + log sum K + log sum Q - 2 log sum_j rowK_j rowQ_j``
(the N-powers cancel), ``Q_ij = exp(-|t_i - t_j|^2 / (2 s^2))``::

    dI/dlogQ_ij = W_ij = K_ij Q_ij / sum K∘Q + Q_ij / sum Q - 2 rowK_i Q_ij / C
    dI/dt_m = -(1 / s^2) sum_j (W_mj + W_jm) (t_m - t_j)

Conditional CS, ``D = log S1 + log S2 - 2 log S21`` with
``log S(L) = lse_{j,i}(log K_ji - 2 r_j + log L_ji)`` and ``P = softmax`` of those
log-terms over all entries::

    dD/dy_pred_m = -(1 / s^2) sum_i (P2_mi + P2_im) (y_pred_m - y_pred_i)
                   + (2 / s^2) sum_i P21_mi (y_pred_m - y_i)

(section 2.3 of the specification). Tests compare both values and gradients with
the autograd cores at 1e-10 in float64.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..kernels._gram import _check_sigma, sq_dists
from ._estimators import _col, lse

__all__ = ["conditional_cs_loss", "cs_qmi_loss", "x_terms"]


def _log_gram_(D, sigma):
    """``gram_from_sq_dists(D, sigma, log=True)`` computed in place on ``D`` (no autograd).

    The same operations in the same order (``-0.5 * ((D / sigma) / sigma)``), so the
    values are identical; only the temporaries are saved. ``D`` must be a fresh tensor.
    """
    sigma = _check_sigma(sigma)
    return D.div_(sigma).div_(sigma).mul_(-0.5)


def _pull(S, v, sigma):
    """``-(1 / sigma^2) sum_j S_mj (v_m - v_j)`` for every row m."""
    return -((S.sum(dim=1, keepdim=True) * v - S @ v) / sigma) / sigma


class _CSQMI(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, log_k, row_k, sq_t, sigma_t):
        log_q = _log_gram_(sq_t.clone(), sigma_t)
        row_q = lse(log_q, dim=1)
        log_kq = log_k + log_q
        log_a = lse(log_kq)
        # row log-sums lie in [0, log N]: no underflow, so torch's single-op logsumexp
        log_sum_q = torch.logsumexp(row_q, dim=0)
        log_c = torch.logsumexp(row_k + row_q, dim=0)
        value = log_a + torch.logsumexp(row_k, dim=0) + log_sum_q - 2.0 * log_c
        ctx.save_for_backward(t, log_kq, log_q, row_k, log_a, log_sum_q, log_c)
        ctx.sigma_t = sigma_t
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        t, log_kq, log_q, row_k, log_a, log_sum_q, log_c = ctx.saved_tensors
        W = (log_kq - log_a).exp_()
        W += (log_q - log_sum_q).exp_()
        W -= 2.0 * (log_q + (row_k - log_c)[:, None]).exp_()
        return grad * _pull(W + W.T, t, ctx.sigma_t), None, None, None, None


class _ConditionalCS(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y_pred, y, log_m, log_s1, sigma_y):
        a2 = _log_gram_(sq_dists(y_pred), sigma_y).add_(log_m)
        a21 = _log_gram_(sq_dists(y_pred, y), sigma_y).add_(log_m)
        log_s2, log_s21 = lse(a2), lse(a21)
        ctx.save_for_backward(y_pred, y, a2, a21, log_s2, log_s21)
        ctx.sigma_y = sigma_y
        return log_s1 + log_s2 - 2.0 * log_s21

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        y_pred, y, a2, a21, log_s2, log_s21 = ctx.saved_tensors
        sigma = ctx.sigma_y
        P2 = (a2 - log_s2).exp_()
        P21 = (a21 - log_s21).exp_()
        pull_21 = ((P21.sum(dim=1, keepdim=True) * y_pred - P21 @ y) / sigma) / sigma
        return grad * (_pull(P2 + P2.T, y_pred, sigma) + 2.0 * pull_21), None, None, None, None


def x_terms(sq_x, sigma):
    """``(log K, row log-sums r)`` of the conditioning data (no autograd)."""
    with torch.no_grad():
        log_k = _log_gram_(sq_x.detach().clone(), sigma)
        return log_k, lse(log_k, dim=1)


def cs_qmi_loss(t, sq_x, sigma_x, sigma_t, *, sq_t=None):
    """CS-QMI ``I(x; t)`` differentiable in ``t`` only (``x`` enters through ``sq_x``)."""
    t = _col(t)
    log_k, row_k = x_terms(sq_x, sigma_x)
    sq_t = sq_dists(t.detach()) if sq_t is None else sq_t.detach()
    return _CSQMI.apply(t, log_k, row_k, sq_t, sigma_t)


def conditional_cs_loss(y, y_pred, sq_x, sigma_x, sigma_y):
    """Conditional CS divergence differentiable in ``y_pred`` only."""
    y, y_pred = _col(y).detach(), _col(y_pred)
    log_k, row_k = x_terms(sq_x, sigma_x)
    with torch.no_grad():
        log_m = log_k - 2.0 * row_k[:, None]
        log_s1 = lse(_log_gram_(sq_dists(y), sigma_y).add_(log_m))
    return _ConditionalCS.apply(y_pred, y, log_m, log_s1, sigma_y)
