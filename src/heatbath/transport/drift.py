"""The learned part of a transport sampler: the drift b(x, t).

It is any network of `heatbath.nets` that fits the target's samples (an MLP with its time
embedding on vectors, the E(n)-equivariant EGNN on particles), the data half's networks.
"""

from __future__ import annotations

import torch
from torch import nn


class Drift(nn.Module):
    """b(x, t) = s·net(x/s, t) on flat states (N, D), s the base's scale (fixed, a buffer).

    Working in units of s lets one initialisation serve a target 1 wide and one 40 wide. With a
    `space` (zero-CoM particles), x are chart coordinates: the network sees the configurations
    (N, P, d) and its CoM-free output is mapped back, b = to_chart(net(from_chart(x))), which is
    exact because the chart is an isometry onto the subspace.
    """

    def __init__(self, net: nn.Module, scale: float, space=None) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"the drift's scale must be positive, got {scale}")
        self.net, self.space = net, space
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dtype = next(self.net.parameters()).dtype
        s = self.scale.to(dtype)
        y = x.to(dtype) / s
        if self.space is not None:
            out = self.space.to_chart(self.net(self.space.from_chart(y), t.to(dtype)))
        else:
            out = self.net(y, t.to(dtype))
        return (s * out).to(x.dtype)
