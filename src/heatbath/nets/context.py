"""A network that also reads a per-sample context image or vector beside x.

Data-dependent couplings (`generative.corruptions`) condition the model on what was observed:
the masked image and its mask for in-painting, the up-sampled low-resolution image for
super-resolution, the paired source for `c → x`. The context is concatenated to x along the
channel (images) or feature (vectors) axis, the inner network maps the concatenation to an
output of the same width, and the first `channels` of that output are returned: any network
of the registry serves, unchanged, and its output still has x's shape.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WithContext(nn.Module):
    """inner(cat[x, context], t, c, drop)[:, :channels]; `channels` is x's width on axis 1."""

    def __init__(self, inner: nn.Module, channels: int, context_channels: int):
        super().__init__()
        if channels < 1 or context_channels < 1:
            raise ValueError(f"need channels, context_channels >= 1; got {channels}, "
                             f"{context_channels}")
        self.inner, self.channels, self.context_channels = inner, channels, context_channels

    def forward(self, x: Tensor, t: Tensor | float, c: Tensor | None = None,
                drop: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        if context is None:
            raise ValueError("this network was trained on observations: pass context=")
        if context.shape[0] != x.shape[0] or context.shape[1] != self.context_channels \
                or context.shape[2:] != x.shape[2:]:
            raise ValueError(f"context must have shape ({x.shape[0]}, {self.context_channels}"
                             f"{''.join(f', {n}' for n in x.shape[2:])}), got "
                             f"{tuple(context.shape)}")
        joined = torch.cat([x, context.to(x.dtype)], dim=1)
        return self.inner(joined, t, c, drop)[:, :self.channels]
