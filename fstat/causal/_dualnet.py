"""Batched MLPs with one independent network per group (fold x divergence x sign).

Weights are stacked along a leading group axis and applied with batched matrix products, so
all groups train in one full-batch model. Parameters of different groups never interact: the
loss is a sum of per-group losses and Adam is per-coordinate, so joint training equals
separate training of each group.
"""

from __future__ import annotations

import math

import torch

from .._training import make_optimizer, progress_bar

__all__ = ["BatchedMLP", "group_generator", "train_full_batch"]

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "elu": torch.nn.functional.elu}


def _key(key):
    if isinstance(key, str):  # stable across processes (unlike hash())
        return sum((i + 1) * 131 ** (i % 7) * ord(c) for i, c in enumerate(key))
    return int(key)


def group_generator(seed, *keys):
    """A CPU generator seeded from a base seed and keys (fold index, divergence name, ...)."""
    value = int(seed) % (2**61 - 1)
    for key in keys:
        value = (value * 1_000_003 + _key(key) + 1) % (2**61 - 1)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(value)
    return gen


class BatchedMLP(torch.nn.Module):
    """``G`` independent MLPs ``n_in -> hidden -> n_out`` evaluated in one batched pass.

    Parameters
    ----------
    n_groups, n_in, hidden, n_out : int / tuple of int
    generators : list of torch.Generator
        One CPU generator per group (PyTorch's default uniform initialisation).
    activation : {"relu", "tanh", "elu"}
    dtype, device
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

    def forward(self, x):
        """``x``: (G, n, n_in) -> (G, n, n_out)."""
        act = _ACTIVATIONS[self.activation]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = act(x)
        return x


def train_full_batch(model, loss_fn, *, max_iter, learning_rate, weight_decay, verbose=0,
                     desc="training"):
    """Full-batch Adam; ``loss_fn()`` returns per-group losses (G,). Returns the loss curve."""
    optimizer = make_optimizer(model.parameters(), "adam", learning_rate=learning_rate,
                               weight_decay=weight_decay)
    curve = []
    bar = progress_bar(max_iter, verbose=verbose, desc=desc)
    for _ in range(max_iter):
        optimizer.zero_grad(set_to_none=True)
        per_group = loss_fn()
        per_group.sum().backward()
        optimizer.step()
        curve.append(per_group.detach())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return torch.stack(curve).to("cpu", torch.float64) if curve else torch.zeros(0)
