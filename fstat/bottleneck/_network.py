"""The encoder -> stochastic bottleneck -> decoder network of :class:`CSIBRegressor`."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._nn import make_mlp

__all__ = ["_IBNetwork", "build_network"]


class _IBNetwork(nn.Module):
    """``x -> mu = encoder(x) -> t = mu + s * eps -> y_hat = decoder(t)``.

    ``noise_mode`` is one of ``"none"`` (t = mu), ``"fixed"`` (s = ``noise_std``),
    ``"learned"`` (s = exp(``log_noise``), trained), ``"vib"`` (the encoder outputs
    ``[mu, rho]`` and s = softplus(rho) + 1e-6 per coordinate).
    """

    def __init__(self, encoder, decoder, bottleneck_dim, noise_mode, noise_std):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.bottleneck_dim = int(bottleneck_dim)
        self.noise_mode = noise_mode
        log_noise = torch.tensor(math.log(noise_std) if noise_std > 0 else 0.0,
                                 dtype=next(encoder.parameters()).dtype)
        if noise_mode == "learned":
            self.log_noise = nn.Parameter(log_noise)
        else:
            self.register_buffer("log_noise", log_noise)
        self.noise_std = float(noise_std)

    def encode(self, x):
        """The noise-free representation mu (and the VIB scale, or None)."""
        h = self.encoder(x)
        if self.noise_mode == "vib":
            mu, rho = h[:, : self.bottleneck_dim], h[:, self.bottleneck_dim:]
            return mu, nn.functional.softplus(rho) + 1e-6
        return h, None

    def noise_scale(self):
        if self.noise_mode == "none":
            return None
        if self.noise_mode == "fixed":
            return self.noise_std
        return self.log_noise.exp()

    def forward(self, x, eps=None):
        """Return ``(mu, t, y_hat, scale)``; ``eps=None`` switches the noise off."""
        mu, vib_scale = self.encode(x)
        scale = vib_scale if self.noise_mode == "vib" else self.noise_scale()
        t = mu if eps is None or scale is None else mu + scale * eps
        return mu, t, self.decoder(t), scale

    def predict(self, x):
        return self.decoder(self.encode(x)[0])


def build_network(n_inputs, n_outputs, *, hidden_layer_sizes, bottleneck_dim,
                  decoder_hidden_sizes, activation, noise_mode, noise_std, generator, dtype,
                  device):
    """Build an :class:`_IBNetwork` initialised from ``generator`` (PyTorch's default scheme)."""
    head = 2 * bottleneck_dim if noise_mode == "vib" else bottleneck_dim
    encoder = make_mlp(n_inputs, hidden_layer_sizes, head, activation=activation,
                       generator=generator, dtype=dtype, device=device)
    decoder = make_mlp(bottleneck_dim, decoder_hidden_sizes, n_outputs, activation=activation,
                       generator=generator, dtype=dtype, device=device)
    return _IBNetwork(encoder, decoder, bottleneck_dim, noise_mode, noise_std).to(device)
