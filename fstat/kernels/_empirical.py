"""Finite-width NTK-parameterised ReLU MLP as plain functions, and its empirical kernels.

Parameters are a list of ``(W, b)`` pairs, one per layer (``L`` hidden + output), with
all entries N(0, 1) at initialisation; ``b`` is ``None`` when ``b_std == 0`` (no bias
parameters). The forward pass is spec §2.1:
``h = (w_std / sqrt(n_in)) x W^T + b_std b``.

Two empirical NTKs are provided: the structured layer-wise formula (no Jacobians,
spec §2.3) and a :mod:`torch.func` Jacobian reference.
"""

from __future__ import annotations

import math

import torch

from .._torch import as_tensor, make_generator, parse_dtype, randn, resolve_device, to_numpy
from .._validation import check_integer
from ._ntk import _check_hyper, _validate_input

__all__ = ["init_params", "mlp_forward", "mlp_forward_cache", "empirical_ntk_torch",
           "empirical_ntk"]


def init_params(n_in, width, depth, b_std, *, generator, dtype=torch.float64, device="cpu"):
    """Draw N(0, 1) parameters layer by layer (W then b) from ``generator`` on CPU."""
    params = []
    fan_in = n_in
    for layer in range(depth + 1):
        fan_out = 1 if layer == depth else width
        W = randn(fan_out, fan_in, generator=generator, dtype=dtype, device=device)
        b = (randn(fan_out, generator=generator, dtype=dtype, device=device)
             if b_std > 0 else None)
        params.append((W, b))
        fan_in = fan_out
    return params


def _layer(x, W, b, w_std, b_std):
    h = x @ W.T
    h = h * (w_std / math.sqrt(W.shape[1]))
    if b is not None:
        h = h + b_std * b
    return h


def mlp_forward(params, X, w_std, b_std):
    """Scalar outputs f(X), shape (n,)."""
    x = X
    for W, b in params[:-1]:
        x = torch.relu(_layer(x, W, b, w_std, b_std))
    W, b = params[-1]
    return _layer(x, W, b, w_std, b_std)[:, 0]


def mlp_forward_cache(params, X, w_std, b_std):
    """Forward pass keeping layer inputs ``x^(l-1)`` and ReLU masks; returns (f, xs, masks)."""
    xs, masks = [X], []
    x = X
    for W, b in params[:-1]:
        h = _layer(x, W, b, w_std, b_std)
        masks.append(h > 0)
        x = torch.relu(h)
        xs.append(x)
    W, b = params[-1]
    return _layer(x, W, b, w_std, b_std)[:, 0], xs, masks


def _deltas(params, masks, w_std, n):
    """Backward sensitivities delta^(l), l = 1..L+1 (delta^(L+1) = 1), each (n, n_l)."""
    dtype, device = params[0][0].dtype, params[0][0].device
    delta = torch.ones((n, 1), dtype=dtype, device=device)
    deltas = [delta]
    for layer in range(len(params) - 2, -1, -1):
        W_next = params[layer + 1][0]
        delta = (delta @ W_next) * (w_std / math.sqrt(W_next.shape[1]))
        delta = delta * masks[layer]
        deltas.append(delta)
    return deltas[::-1]


def empirical_ntk_torch(params, X, Y=None, *, w_std=1.0, b_std=0.0, kind="ntk"):
    """Structured empirical NNGP/NTK of one network (tensors in, tensor out)."""
    symmetric = Y is None
    _, xs_x, m_x = mlp_forward_cache(params, X, w_std, b_std)
    if symmetric:
        xs_y, m_y = xs_x, m_x
    else:
        _, xs_y, m_y = mlp_forward_cache(params, Y, w_std, b_std)
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    last_x, last_y = xs_x[-1], xs_y[-1]
    nngp = (last_x @ last_y.T) * (w2 / last_x.shape[1]) + b2
    if kind == "nngp":
        return nngp
    d_x = _deltas(params, m_x, w_std, X.shape[0])
    d_y = d_x if symmetric else _deltas(params, m_y, w_std, xs_y[0].shape[0])
    ntk = torch.zeros_like(nngp)
    for layer in range(len(params)):
        a_x, a_y = xs_x[layer], xs_y[layer]
        feat = (a_x @ a_y.T) * (w2 / a_x.shape[1]) + b2
        ntk += (d_x[layer] @ d_y[layer].T) * feat
    if kind == "both":
        return nngp, ntk
    return ntk


def _jacobian_ntk(params, X, Y, w_std, b_std):
    """Reference: J_X J_Y^T with per-sample Jacobians from torch.func."""
    flat = [p for pair in params for p in pair if p is not None]
    layout = [(pair[0] is not None, pair[1] is not None) for pair in params]

    def f(flat_params, x):
        it = iter(flat_params)
        rebuilt = [(next(it), next(it) if has_b else None) for _, has_b in layout]
        return mlp_forward(rebuilt, x[None, :], w_std, b_std)[0]

    jac = torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))

    def J(Z):
        parts = jac(tuple(flat), Z)
        return torch.cat([p.reshape(Z.shape[0], -1) for p in parts], dim=1)

    JX = J(X)
    JY = JX if Y is None else J(Y)
    return JX @ JY.T


def empirical_ntk(X, Y=None, *, width=1024, depth=1, w_std=1.0, b_std=0.0, kind="ntk",
                  method="structured", random_state=None, dtype="float64", device="auto",
                  block_size=None):
    """Empirical (finite-width) NTK or NNGP of one randomly initialised ReLU network.

    Parameters
    ----------
    X : array-like of shape (n_X, d)
    Y : array-like of shape (n_Y, d), optional
    width : int, default=1024
        Hidden-layer width ``m``.
    depth : int, default=1
    w_std, b_std : float, default=1.0, 0.0
    kind : {"ntk", "nngp", "both"}, default="ntk"
    method : {"structured", "jacobian"}, default="structured"
        ``"jacobian"`` forms per-sample parameter Jacobians with :mod:`torch.func`
        (slow reference); ``"structured"`` uses the layer-wise formula. ``"jacobian"``
        supports ``kind="ntk"`` only.
    random_state : int, RandomState or None
    dtype : {"float64", "float32"}, default="float64"
    device : str, default="auto"
    block_size : int, optional
        Rows of ``X`` per block.

    Returns
    -------
    ndarray of shape (n_X, n_Y) (a pair for ``kind="both"``). Converges to
    :func:`ntk_kernel` with error ``O(1/sqrt(width))``.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels import empirical_ntk, ntk_kernel
    >>> X = np.random.default_rng(0).standard_normal((3, 4))
    >>> E = empirical_ntk(X, width=4096, random_state=0, device="cpu")
    >>> bool(np.abs(E - ntk_kernel(X, device="cpu")).max() < 0.1)
    True
    """
    _check_hyper(depth, w_std, b_std, kind, block_size)
    check_integer(width, "width")
    if method not in ("structured", "jacobian"):
        raise ValueError(f"method must be 'structured' or 'jacobian'; got method={method!r}.")
    if method == "jacobian" and kind != "ntk":
        raise ValueError("method='jacobian' supports kind='ntk' only.")
    torch_dtype = parse_dtype(dtype)
    dev = resolve_device(device)
    Xa = _validate_input(X, "X")
    Ya = None if Y is None else _validate_input(Y, "Y")
    if Ya is not None and Ya.shape[1] != Xa.shape[1]:
        raise ValueError(
            f"X has {Xa.shape[1]} features but Y has {Ya.shape[1]} features; they must match."
        )
    params = init_params(Xa.shape[1], width, depth, b_std, generator=make_generator(random_state),
                         dtype=torch_dtype, device=dev)
    Xt = as_tensor(Xa, torch_dtype, dev)  # a copy: read-only inputs (pandas) stay quiet
    Yt = None if Ya is None else as_tensor(Ya, torch_dtype, dev)
    with torch.no_grad() if method == "structured" else torch.enable_grad():
        if method == "jacobian":
            K = _jacobian_ntk(params, Xt, Yt, w_std, b_std)
            return to_numpy(K)
        if block_size is None or block_size >= Xt.shape[0]:
            out = empirical_ntk_torch(params, Xt, Yt, w_std=w_std, b_std=b_std, kind=kind)
        else:
            target = Xt if Yt is None else Yt
            pieces = [empirical_ntk_torch(params, Xt[i:i + block_size], target, w_std=w_std,
                                          b_std=b_std, kind=kind)
                      for i in range(0, Xt.shape[0], block_size)]
            if kind == "both":
                out = tuple(torch.cat([p[j] for p in pieces]) for j in range(2))
            else:
                out = torch.cat(pieces)
    if kind == "both":
        return to_numpy(out[0]), to_numpy(out[1])
    return to_numpy(out)
