"""Training-loss CS terms with their gradients computed in the forward pass.

In training the conditioning data ``x`` carry no gradient, and only the
representation ``t`` (compression) or the prediction ``y_pred`` (prediction term)
do. Recording every log-Gram operation on the autograd tape costs several dozen
small operations per batch; at the default batch of 128 that bookkeeping, not the
arithmetic, dominated the epoch time. The two losses below compute the same values
as :func:`~fstat.bottleneck._estimators.cs_qmi_core` and
:func:`~fstat.bottleneck._estimators.conditional_cs_core` and, in the same pass,
the exact gradient from its closed form, reusing the exponentiated Gram matrices
of the value (no exponential is evaluated twice). The backward pass only scales
the stored gradient.

The parts that depend on the data alone (the x Gram matrices, the row weights and
the target's own term of the conditional CS divergence) are computed by
:func:`prediction_context` and :func:`compression_context` for a whole stack of
equal-sized batches at once; each step then only evaluates the terms in ``t`` or
``y_pred``.

CS-QMI, ``I = log sum K∘Q + log sum K + log sum Q - 2 log sum_j rowK_j rowQ_j``
(the N-powers cancel), ``Q_ij = exp(-|t_i - t_j|^2 / (2 s^2))``. Every Gram has a
unit diagonal and entries in [0, 1], so these sums lie in [1, N^2] and are formed
directly (no shift is needed)::

    dI/dlogQ_ij = W_ij = K_ij Q_ij / sum K∘Q + Q_ij (1 / sum Q - 2 rowK_i / C)
    dI/dt_m = -(1 / s^2) sum_j (W_mj + W_jm) (t_m - t_j)

Conditional CS, ``D = log S1 + log S2 - 2 log S21`` with
``log S(L) = lse_{j,i}(log K_ji - 2 r_j + log L_ji)`` and ``P = softmax`` of those
log-terms over all entries::

    dD/dy_pred_m = -(1 / s^2) sum_i (P2_mi + P2_im) (y_pred_m - y_pred_i)
                   + (2 / s^2) sum_i P21_mi (y_pred_m - y_i)

(section 2.3 of the specification). Exponents are clamped at the floor of
:func:`~fstat.bottleneck._estimators.lse` before ``exp`` (and ``K∘Q``, formed as a
product, is floored at the same value), so a weight below about 1e-34 (float32) or
1e-277 (float64) becomes that floor instead of a subnormal number; values and gradients
agree with the autograd cores to rounding (tests compare both at 1e-10 in float64).
"""

from __future__ import annotations

import functools
import math

import torch
from torch.autograd.function import once_differentiable

from ..kernels._gram import _check_sigma, batch_sq_dists, sq_dists
from ._estimators import _col, _exp_floor

__all__ = ["compression_context", "conditional_cs_loss", "cs_qmi_loss", "prediction_context"]


def _log_gram_(D, sigma):
    """``gram_from_sq_dists(D, sigma, log=True)`` computed in place on ``D`` (no autograd).

    The same operations in the same order (``-0.5 * ((D / sigma) / sigma)``), so the
    values are identical; only the temporaries are saved. ``D`` must be a fresh tensor.
    """
    sigma = _check_sigma(sigma)
    return D.div_(sigma).div_(sigma).mul_(-0.5)


def _exp_(a):
    """``exp`` in place, exponents clamped at the floor of ``lse`` (no subnormal results)."""
    return a.clamp_min_(_exp_floor(a.dtype)).exp_()


def _inverse_square(sigma, dtype):
    """``1 / sigma^2``, or None where it overflows ``dtype`` (callers then divide twice)."""
    scale = 1.0 / _check_sigma(sigma) / sigma  # a Python float: inf, never an error
    return scale if scale < torch.finfo(dtype).max else None


def _log_gram_coefficient(sigma, dtype):
    """``-1 / (2 sigma^2)``, or None where ``1 / sigma^2`` overflows ``dtype``."""
    scale = _inverse_square(sigma, dtype)
    return None if scale is None else -0.5 * scale


def _log_gram(sq, sigma):
    """A fresh ``-sq / (2 sigma^2)`` (``sq`` unchanged)."""
    coef = _log_gram_coefficient(sigma, sq.dtype)
    return sq * coef if coef is not None else _log_gram_(sq.clone(), sigma)


def _add_log_gram(base, a, b, sigma):
    """A fresh ``base + log K_sigma(a, b)`` (rows of ``a`` against rows of ``b``)."""
    coef = _log_gram_coefficient(sigma, base.dtype)
    if a.shape[1] == 1 and coef is not None:  # exact differences, squared in the update
        diff = a - b.T
        return torch.addcmul(base, diff, diff, value=coef)
    # self: exactly zero diagonal; per-batch training terms skip the near-pair refinement
    sq = sq_dists(a, refine_near=False) if b is a else sq_dists(a, b, refine_near=False)
    if coef is None:
        return _log_gram_(sq, sigma).add_(base)
    return torch.add(base, sq, alpha=coef)


def _pull(row_sums, Sv, v, sigma):
    """``-(1 / sigma^2) sum_j S_mj (v_m - v_j)`` from ``row_sums = S 1`` and ``Sv = S v``."""
    Sv.addcmul_(row_sums[:, None], v, value=-1.0)
    scale = _inverse_square(sigma, Sv.dtype)
    return Sv.mul_(scale) if scale is not None else Sv.div_(sigma).div_(sigma)


class _ValueAndGradient(torch.autograd.Function):
    """``fn(inp, *args) -> (value, d value / d inp)``: autograd sees one node whose
    backward scales the gradient computed with the value."""

    @staticmethod
    def forward(ctx, inp, fn, *args):
        # inference mode skips autograd's per-operation bookkeeping (a sixth of the two
        # fused terms' time at batch 128, where dispatch, not arithmetic, dominates); its
        # tensors cannot be saved for backward, so both results leave it as plain copies
        with torch.inference_mode():
            value, grad = fn(inp, *args)
        value, grad = value.clone(), grad.clone()
        ctx.save_for_backward(grad)
        ctx.n_args = len(args) + 1
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_value):
        (grad,) = ctx.saved_tensors
        return (grad_value * grad,) + (None,) * ctx.n_args


@functools.lru_cache(maxsize=16)
def _cached_constant(values, dtype, device):
    return torch.tensor(values, dtype=dtype, device=device)


def _constant(values, like):
    """The vector ``values`` in the dtype and on the device of ``like`` (cached)."""
    return _cached_constant(values, like.dtype, like.device)


def _cs_qmi_value_and_grad(t, K, row_k, log_sum_k, sq_t, sigma_t):
    # every log-Gram is <= 0 with a zero diagonal: sums lie in [1, N^2], no shift needed
    Q = _exp_(_log_gram(sq_t, sigma_t))
    # exp(log K + log Q) as a product, floored like every other weight (no subnormals)
    KQ = torch.mul(K, Q).clamp_min_(math.exp(_exp_floor(K.dtype)))
    row_q = Q.sum(dim=1)
    # [sum K∘Q, sum Q, C] in one vector: one log and one reciprocal instead of an
    # operation per 0-d tensor (and no host synchronisation on a GPU)
    sums = torch.stack((KQ.sum(), row_q.sum(), torch.dot(row_k, row_q)))
    value = torch.dot(sums.log(), _constant((1.0, 1.0, -2.0), sums)).add_(log_sum_k)
    inverse = sums.reciprocal()
    # W + W^T = 2 K∘Q / sum K∘Q + Q∘(w_i + w_j), w_i = 1 / sum Q - 2 rowK_i / C
    w = torch.addcmul(inverse[1], row_k, inverse[2], value=-2.0)
    S = Q.mul_(w[:, None] + w[None, :]).addcmul_(KQ, inverse[0], value=2.0)
    return value, _pull(S.sum(dim=1), S @ t, t, sigma_t)


def _conditional_cs_value_and_grad(y_pred, y, log_m, log_s1, sigma_y):
    # log_m + log L2 peaks at the diagonal, at max log_m = 0: no shift needed
    e2 = _exp_(_add_log_gram(log_m, y_pred, y_pred, sigma_y))
    a21 = _add_log_gram(log_m, y_pred, y, sigma_y)
    shift_21 = torch.nan_to_num(a21.amax(), nan=0.0, neginf=0.0)
    e21 = _exp_(a21.sub_(shift_21))
    sum_2, sum_21 = e2.sum(), e21.sum()
    value = log_s1 + sum_2.log() - 2.0 * (sum_21.log() + shift_21)  # common shifts cancel
    # pulls of P2 + P2^T (= (e2 + e2^T) / sum_2) and of P21 (= e21 / sum_21)
    pull_2 = _pull(e2.sum(dim=1) + e2.sum(dim=0), e2 @ y_pred + e2.T @ y_pred, y_pred,
                   sigma_y).div_(sum_2)
    pull_21 = _pull(e21.sum(dim=1), e21 @ y, y_pred, sigma_y).div_(sum_21)
    return value, pull_2.sub_(pull_21, alpha=2.0)


def _stack_log_gram(sq, widths, *, in_place=False):
    """``-sq[b] / (2 widths[b]^2)`` for a stack ``sq`` of shape (B, n, n), fresh or (with
    ``in_place``) in ``sq``: one product, or per matrix (as :func:`_log_gram`: two
    divisions where its ``1 / width^2`` overflows)."""
    inverse = [_inverse_square(float(w), sq.dtype) for w in widths]
    if None in inverse:
        out = sq if in_place else sq.clone()
        for D, w, scale in zip(out, widths, inverse):
            if scale is None:
                _log_gram_(D, float(w))
            else:
                D.mul_(-0.5 * scale)
        return out
    if len(inverse) == 1:  # a lone batch: a Python scalar (no host-to-device copy)
        return sq.mul_(-0.5 * inverse[0]) if in_place else sq * (-0.5 * inverse[0])
    coef = torch.tensor(inverse, dtype=torch.float64).mul_(-0.5)
    coef = coef.to(sq.dtype).to(sq.device)[:, None, None]
    return sq.mul_(coef) if in_place else sq * coef


def prediction_context(y, sq_x, sigma_x, sigma_y, *, sq_y=None):
    """The data-only parts ``(log_m, log_s1)`` of the conditional CS loss of a stack of
    batches: ``y`` of shape (B, n, dy), ``sq_x = batch_sq_dists(x)``, one ``sigma_x`` and
    one ``sigma_y`` per batch. ``log_m[b]`` and ``log_s1[b]`` are the context of batch
    ``b`` for :func:`conditional_cs_loss`; ``sq_y = batch_sq_dists(y)`` when already at
    hand (it is overwritten). No autograd."""
    with torch.no_grad():
        log_m = _stack_log_gram(sq_x, sigma_x)
        two_r = _exp_(log_m.clone()).sum(dim=2).log_().mul_(2.0)  # row maxima are 0
        # log_m = log K - 2 r is largest on the diagonal (-2 r_j); it is stored shifted
        # to maximum 0, which is then also the maximum of every log-term with a unit
        # diagonal (the shift cancels in log S1 + log S2 - 2 log S21)
        log_m.sub_((two_r - two_r.amin(dim=1, keepdim=True))[:, :, None])
        # sq_y is not needed after its widths: its log-Gram is formed in its place
        log_l1 = _stack_log_gram(batch_sq_dists(y) if sq_y is None else sq_y, sigma_y,
                                 in_place=True)
        log_s1 = _exp_(log_l1.add_(log_m)).sum(dim=(1, 2)).log_()
    return log_m, log_s1


def compression_context(sq_x, sigma_x):
    """The data-only parts ``(K, row sums of K, log sum K)`` of CS-QMI for a stack of batches
    (``sq_x = batch_sq_dists(x)``, one ``sigma_x`` per batch); no autograd."""
    with torch.no_grad():
        K = _exp_(_stack_log_gram(sq_x, sigma_x))
        row_k = K.sum(dim=2)
        return K, row_k, row_k.sum(dim=1).log_()


def cs_qmi_loss(t, context, sigma_t, *, sq_t=None):
    """CS-QMI ``I(x; t)`` differentiable in ``t`` only (``x`` enters through ``context``,
    one batch's ``(K, row_k, log_sum_k)`` from :func:`compression_context`)."""
    t = _col(t)
    sq_t = sq_dists(t.detach(), refine_near=False) if sq_t is None else sq_t.detach()
    return _ValueAndGradient.apply(t, _cs_qmi_value_and_grad, *context, sq_t, sigma_t)


def conditional_cs_loss(y, y_pred, context, sigma_y):
    """Conditional CS divergence differentiable in ``y_pred`` only (``x`` enters through
    ``context``, one batch's ``(log_m, log_s1)`` from :func:`prediction_context`)."""
    y, y_pred = _col(y).detach(), _col(y_pred)
    return _ValueAndGradient.apply(y_pred, _conditional_cs_value_and_grad, y, *context,
                                   sigma_y)
