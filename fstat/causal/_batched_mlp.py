"""Batched MLPs with one independent network per group (fold x divergence x sign).

Weights are stacked along a leading group axis and applied with batched matrix products, so
all groups train in one full-batch model. Parameters of different groups never interact: the
loss is a sum of per-group losses and Adam is per-coordinate, so joint training equals
separate training of each group.

With gradients enabled the forward and backward passes are one autograd function that keeps
its large (G, n, H) activations and gradients in buffers reused from one step to the next.
Full-batch training otherwise frees and allocates tens of MB per step, and the C allocator
returns that memory to the system and faults it back in every step (about a quarter of a
CPU step at n = 8,000). Values and gradients equal those of plain autograd layers up to
rounding (the last layer's products run in a transposed layout, in training and prediction
alike).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

__all__ = ["BatchedMLP"]

_ACTIVATIONS = {  # in place on a fresh pre-activation
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "elu": lambda x: torch.nn.functional.elu(x, inplace=True),
}


def _activation_backward_(name, grad, out):
    """``grad *= activation'(pre)`` in place, from the activation's output ``out``."""
    if name == "relu":
        torch.ops.aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=grad)
    elif name == "tanh":
        torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=grad)
    else:
        torch.ops.aten.elu_backward.grad_input(grad, 1.0, 1.0, 1.0, True, out,
                                               grad_input=grad)


class _Workspace:
    """Flat buffers, one per role, grown as needed and viewed at each step's shape.

    ``generation`` counts forward passes, so a backward pass can tell that a later forward
    pass has overwritten the activations it needs.
    """

    def __init__(self):
        self.flat = {}
        self.generation = 0

    def __getstate__(self):  # a pickled or copied network starts with empty buffers
        return {}

    def __setstate__(self, state):
        self.__init__()

    def view(self, role, shape, like):
        size = math.prod(shape)
        buf = self.flat.get(role)
        if (buf is None or buf.numel() < size or buf.dtype != like.dtype
                or buf.device != like.device):
            buf = self.flat[role] = torch.empty(size, dtype=like.dtype, device=like.device)
        return buf[:size].view(shape)


def _last_layer_transposed(h, w, b):
    """``(h @ w + b)^T`` per group, (G, m, n), as ``w^T h^T + b^T``."""
    return torch.baddbmm(b.transpose(1, 2), w.transpose(1, 2), h.transpose(1, 2))


class _BufferedMLP(torch.autograd.Function):
    """Forward and backward of the batched MLP on reused activation and gradient buffers.

    The last layer has few outputs ``m``; products with an ``m``-column operand are slow in
    the row layout (a (k, n) x (n, m) weight gradient takes about 3x as long as the same
    product written as (m, n) x (n, k)), so it is computed as ``w^T h^T`` (returned in that
    (G, m, n) layout) and its weight gradient is formed as ``(g^T h)^T``.
    """

    @staticmethod
    def forward(ctx, x, workspace, activation, *params):
        n_layers = len(params) // 2
        weights, biases = params[:n_layers], params[n_layers:]
        workspace.generation += 1
        layers_in = [x]
        for i in range(n_layers - 1):
            h = workspace.view(("h", i), (*x.shape[:2], weights[i].shape[2]), x)
            torch.baddbmm(biases[i], layers_in[-1], weights[i], out=h)
            _ACTIVATIONS[activation](h)
            layers_in.append(h)
        ctx.save_for_backward(x, *weights)
        ctx.hidden, ctx.workspace, ctx.activation = layers_in[1:], workspace, activation
        ctx.generation = workspace.generation
        return _last_layer_transposed(layers_in[-1], weights[-1], biases[-1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_t):
        if ctx.workspace.generation != ctx.generation:
            raise RuntimeError(
                "BatchedMLP: another forward pass with gradients ran before this backward pass "
                "and overwrote its activation buffers; call backward after each forward pass."
            )
        x, *weights = ctx.saved_tensors
        layers_in = [x, *ctx.hidden]
        last = len(weights) - 1
        grad_w, grad_b = [None] * len(weights), [None] * len(weights)
        grad = grad_t.transpose(1, 2)
        grad_w[last] = torch.bmm(grad_t, layers_in[last]).transpose(1, 2).contiguous()
        grad_b[last] = grad_t.sum(dim=2).unsqueeze(1)
        for i in range(last, 0, -1):  # into the output of layer i - 1
            h = layers_in[i]
            g = torch.bmm(grad, weights[i].transpose(1, 2),
                          out=ctx.workspace.view(("g", i), h.shape, h))
            _activation_backward_(ctx.activation, g, h)
            grad_w[i - 1] = torch.bmm(layers_in[i - 1].transpose(1, 2), g)
            grad_b[i - 1] = g.sum(dim=1, keepdim=True)
            grad = g
        grad_x = (torch.bmm(grad, weights[0].transpose(1, 2)) if ctx.needs_input_grad[0]
                  else None)
        return (grad_x, None, None, *grad_w, *grad_b)


class BatchedMLP(torch.nn.Module):
    """``G`` independent MLPs ``n_in -> hidden -> n_out`` evaluated in one batched pass.

    Parameters
    ----------
    n_groups, n_in, hidden, n_out : int / tuple of int
    generators : list of torch.Generator
        One CPU generator per group (PyTorch's default uniform initialisation).
    activation : {"relu", "tanh", "elu"}
    dtype, device

    Notes
    -----
    With gradients enabled, a forward pass must be followed by its backward pass before the
    next forward pass with gradients (the activations live in reused buffers); a backward pass
    that finds its buffers overwritten raises ``RuntimeError``.
    """

    def __init__(self, n_groups, n_in, hidden, n_out, generators, *, activation="relu",
                 dtype=torch.float32, device="cpu"):
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        self.activation = activation
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            w = torch.zeros(n_groups, fan_in, fan_out, dtype=torch.float64)
            b = torch.zeros(n_groups, 1, fan_out, dtype=torch.float64)
            for g, gen in enumerate(generators or ()):  # None: filled by load_state_dict
                w[g] = (2.0 * torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64)
                        - 1.0).T * bound
                b[g] = (2.0 * torch.rand(1, fan_out, generator=gen, dtype=torch.float64)
                        - 1.0) * bound
            self.weights.append(torch.nn.Parameter(w.to(device=device, dtype=dtype)))
            self.biases.append(torch.nn.Parameter(b.to(device=device, dtype=dtype)))
        self._workspace = _Workspace()

    def forward(self, x):
        """``x``: (G, n, n_in) -> (G, n, n_out)."""
        if torch.is_grad_enabled():
            out_t = _BufferedMLP.apply(x, self._workspace, self.activation, *self.weights,
                                       *self.biases)
        else:  # prediction: the same operations, without buffers
            for w, b in zip(self.weights[:-1], self.biases[:-1]):
                x = _ACTIVATIONS[self.activation](torch.baddbmm(b, x, w))
            out_t = _last_layer_transposed(x, self.weights[-1], self.biases[-1])
        return out_t.transpose(1, 2)
