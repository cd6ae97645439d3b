"""Periodic convolutional networks: maps of fields on an L×M torus that commute with translations.

    (B, C_in, L, M) → [k×k conv, circular padding → SiLU] × depth → k×k conv → (B, C_out, L, M)

Circular padding wraps the lattice around, so every layer — and hence the network — commutes
with every lattice translation (`torch.roll` along the last two axes), and one network runs on
any L×M. This is the conditioner of the lattice coupling flow (`heatbath.flows.lattice`,
Albergo, Kanwar & Shanahan 2019). SiLU rather than their LeakyReLU: a smooth network gives a
smooth flow, so HMC in the flow's latent space integrates a smooth Hamiltonian.

Weights are drawn from an explicit `torch.Generator` (equal arguments, equal networks) and the
head starts at exactly zero, so a coupling layer starts as the identity (as `Conditioner`).
"""

from __future__ import annotations

from torch import nn

import torch

from heatbath.nets.conditioner import init_linear_uniform


class PeriodicConvNet(nn.Sequential):
    """PeriodicConvNet(in_channels, out_channels, channels, depth, kernel, generator).

    `depth` hidden convolutions of `channels` features, `kernel` odd (a centre site);
    the head (the last module, `net[-1]`) is zero-initialised.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int, depth: int,
                 kernel: int, generator: torch.Generator) -> None:
        if min(in_channels, out_channels, channels, depth) < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"need channels, depth >= 1 and an odd kernel; got channels="
                             f"{channels}, depth={depth}, kernel={kernel}")
        widths = [in_channels] + [channels] * depth
        modules: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            modules += [_conv(fan_in, fan_out, kernel), nn.SiLU()]
        super().__init__(*modules, _conv(channels, out_channels, kernel))
        for layer in list(self)[:-1]:
            if isinstance(layer, nn.Conv2d):
                init_linear_uniform(layer, generator)
        nn.init.zeros_(self[-1].weight)
        nn.init.zeros_(self[-1].bias)


def _conv(fan_in: int, fan_out: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(fan_in, fan_out, kernel, padding=kernel // 2, padding_mode="circular")
