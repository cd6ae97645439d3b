"""Conditioner networks: the small MLPs that read a coupling layer's spline knots off the
coordinates it leaves unchanged.

    context (B, n_in) → Linear → SiLU → [Linear → SiLU] × (depth − 1) → Linear → raw (B, n_out)

The hidden layers get PyTorch's default law U(±1/√fan_in), but drawn from an explicit
`torch.Generator` (float64 draws, cast to the parameters' dtype) so that equal arguments give
equal networks without touching the global RNG. The head starts at exactly zero, so a coupling
layer's spline starts as the identity and an untrained flow is its base distribution.

It is an `nn.Sequential`, so its parameters are stored as `0.weight`, `2.weight`, …: the key
names of every flow checkpoint written so far.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_linear_uniform(layer: nn.Linear | nn.Conv2d, generator: torch.Generator) -> None:
    """weight, bias ~ U(±1/√fan_in) (PyTorch's default), drawn from `generator` in that order.
    fan_in is what one output unit reads: in_features, or in_channels·k² for a convolution."""
    limit = 1.0 / math.sqrt(layer.weight[0].numel())
    with torch.no_grad():
        for tensor in (layer.weight, layer.bias):
            draw = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            tensor.copy_((2.0 * draw - 1.0) * limit)


class Conditioner(nn.Sequential):
    """MLP context (B, n_in) → raw spline parameters (B, n_out) with a zero-initialised head.

    Conditioner(n_in, n_out, hidden, generator, depth=2): `depth` hidden layers of width
    `hidden`, SiLU activations; `generator` draws the hidden layers' initial weights.
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, generator: torch.Generator,
                 depth: int = 2) -> None:
        if n_in < 1 or n_out < 1 or hidden < 1 or depth < 1:
            raise ValueError(f"need n_in, n_out, hidden, depth >= 1; "
                             f"got {n_in}, {n_out}, {hidden}, {depth}")
        widths = [n_in] + [hidden] * depth
        modules: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            modules += [nn.Linear(fan_in, fan_out), nn.SiLU()]
        super().__init__(*modules, nn.Linear(hidden, n_out))
        for layer in list(self)[:-1]:   # (slicing a Sequential would rebuild this class)
            if isinstance(layer, nn.Linear):
                init_linear_uniform(layer, generator)
        nn.init.zeros_(self[-1].weight)
        nn.init.zeros_(self[-1].bias)
