"""Generator-driven construction of small torch networks.

``torch.nn.Linear`` draws its initial weights from torch's *global* random state,
which fstat never touches. :func:`reset_parameters` re-initialises every ``Linear``
layer of a module with PyTorch's default scheme (Kaiming-uniform with ``a = sqrt(5)``
for weights, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for biases) from a per-fit CPU
generator, so fits are reproducible and identical on CPU and GPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "make_mlp", "reset_parameters"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


@torch.no_grad()
def reset_parameters(module, generator):
    """Re-initialise all ``nn.Linear`` layers of ``module`` from ``generator`` (CPU).

    Parameters
    ----------
    module : torch.nn.Module
    generator : torch.Generator
        A CPU generator; values are drawn on CPU and copied to each parameter's device.

    Returns
    -------
    module
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            fan_in = layer.weight.shape[1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            # Kaiming-uniform with a = sqrt(5) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            weight = torch.rand(layer.weight.shape, generator=generator, dtype=torch.float64)
            layer.weight.copy_((2.0 * weight - 1.0) * bound)
            if layer.bias is not None:
                bias = torch.rand(layer.bias.shape, generator=generator, dtype=torch.float64)
                layer.bias.copy_((2.0 * bias - 1.0) * bound)
    return module


def make_mlp(n_inputs, hidden_layer_sizes, n_outputs, *, activation="relu", generator,
             dtype=torch.float64, device="cpu"):
    """A fully connected network ``n_inputs -> hidden... -> n_outputs`` (linear head).

    Parameters
    ----------
    n_inputs : int
    hidden_layer_sizes : sequence of int
    n_outputs : int
    activation : str, default="relu"
        One of :data:`ACTIVATIONS`.
    generator : torch.Generator
        CPU generator for the initial weights.
    dtype : torch.dtype, default=torch.float64
    device : str or torch.device, default="cpu"

    Returns
    -------
    torch.nn.Sequential
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}; got activation={activation!r}."
        )
    sizes = [int(n_inputs), *[int(h) for h in hidden_layer_sizes], int(n_outputs)]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out, device="meta"))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    network = nn.Sequential(*layers).to_empty(device="cpu").to(torch.float64)
    reset_parameters(network, generator)
    return network.to(device=device, dtype=dtype)
