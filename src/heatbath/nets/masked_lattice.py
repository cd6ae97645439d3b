"""`MaskedLatticeNet`: q logits per site of a partially masked categorical lattice.

    states (B, L, M) long, masked (B, L, M) bool
      → [one-hot of the visible states (q channels, zero where masked) ‖ mask channel]
      → PeriodicConvNet → logits (B, q, L, M)

The periodic convolutions make the map commute with lattice translations and run on any
L×M, so a model trained at one size samples and scores another. The head starts at zero
(PeriodicConvNet's convention): an untrained model is uniform over the q states.
"""

from __future__ import annotations

import torch
from torch import nn

from heatbath.nets.periodic_conv import PeriodicConvNet

KERNEL = 3   # nearest-neighbour stencil; depth sets the receptive field (radius depth + 1)


class LatticeLogitsNet(nn.Module):
    """q logits per site from q one-hot channels plus `extra` input channels: the shared
    body of the lattice paths' networks (masked: a mask channel; uniform: time channels)."""

    def __init__(self, num_states: int, extra: int, channels: int = 32, depth: int = 4,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if num_states < 2:
            raise ValueError(f"a lattice needs at least 2 states per site, got {num_states}")
        self.num_states = num_states
        generator = generator or torch.Generator().manual_seed(
            int(torch.randint(2**62, ())))   # no seed: follow the global RNG, as build_net
        self.body = PeriodicConvNet(num_states + extra, num_states, channels, depth, KERNEL,
                                    generator)


class MaskedLatticeNet(LatticeLogitsNet):
    def __init__(self, num_states: int, channels: int = 32, depth: int = 4,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(num_states, 1, channels, depth, generator)

    def forward(self, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        dtype = self.body[0].weight.dtype
        visible = (~masked).unsqueeze(1).to(dtype)
        # clamp: a masked site may hold any placeholder; its one-hot is zeroed anyway
        onehot = nn.functional.one_hot(x.clamp(0, self.num_states - 1), self.num_states)
        onehot = onehot.movedim(-1, 1).to(dtype) * visible
        return self.body(torch.cat([onehot, 1.0 - visible], dim=1))
