"""The encoder -> stochastic bottleneck -> decoder network of :class:`CSIBRegressor`."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._nn import make_mlp
from .._torch import randn

__all__ = ["NoiseRows", "_IBNetwork", "build_network"]

#: rows of noise drawn per generator call (one call serves 16 steps of 128 rows)
NOISE_BLOCK_ROWS = 2048


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


class NoiseRows:
    """Standard normal rows of width ``width`` for successive training steps.

    Rows are drawn ``NOISE_BLOCK_ROWS`` at a time (at least the rows asked for) with
    ``generator`` and handed out in order: one generator call, and one transfer to the
    device, serves many steps. A request larger than what is left of a block starts a
    new block. Deterministic given the generator state.
    """

    def __init__(self, width, generator, dtype, device):
        self.width, self.generator = int(width), generator
        self.dtype, self.device = dtype, device
        self._block = None
        self._next = 0

    def take(self, n):
        """The next ``n`` rows, a tensor of shape (n, width)."""
        if self._block is None or self._next + n > self._block.shape[0]:
            self._block = randn(max(n, NOISE_BLOCK_ROWS), self.width, generator=self.generator,
                                dtype=self.dtype, device=self.device)
            self._next = 0
        rows = self._block[self._next:self._next + n]
        self._next += n
        return rows
