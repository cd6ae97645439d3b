"""`MaskedLatticeNet`: q logits per site of a partially masked categorical lattice.

    states (B, L, M) long, masked (B, L, M) bool
      → [one-hot of the visible states (q channels, zero where masked) ‖ mask channel
         (‖ a constant β plane when `conditioned`)]
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
        # how far a site's logits read: depth hidden convolutions and the head, each k×k
        self.reach = (depth + 1) * (KERNEL // 2)
        generator = generator or torch.Generator().manual_seed(
            int(torch.randint(2**62, ())))   # no seed: follow the global RNG, as build_net
        self.body = PeriodicConvNet(num_states + extra, num_states, channels, depth, KERNEL,
                                    generator)


class MaskedLatticeNet(LatticeLogitsNet):
    """`conditioned`: the conditionals also read β (one value per lattice), so one network
    covers a temperature range (the energy half's β-conditioned spin models)."""

    def __init__(self, num_states: int, channels: int = 32, depth: int = 4,
                 generator: torch.Generator | None = None, conditioned: bool = False) -> None:
        super().__init__(num_states, 2 if conditioned else 1, channels, depth, generator)
        self.conditioned = conditioned

    def forward(self, x: torch.Tensor, masked: torch.Tensor,
                beta: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.body[0].weight.dtype
        visible = (~masked).unsqueeze(1).to(dtype)
        # clamp: a masked site may hold any placeholder; its one-hot is zeroed anyway
        onehot = nn.functional.one_hot(x.clamp(0, self.num_states - 1), self.num_states)
        channels = [onehot.movedim(-1, 1).to(dtype) * visible, 1.0 - visible]
        if self.conditioned != (beta is not None):
            raise ValueError("pass beta exactly when the network is conditioned on it")
        if beta is not None:
            plane = torch.as_tensor(beta, dtype=dtype, device=x.device).reshape(-1, 1, 1, 1)
            channels.append(plane.expand_as(visible))
        return self.body(torch.cat(channels, dim=1))
