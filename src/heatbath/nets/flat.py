"""Vector networks on samples of any event shape (images as flat vectors)."""

from __future__ import annotations

from torch import Tensor, nn


class Flattened(nn.Module):
    """A vector network applied to samples of any event shape, flattened to (B, D) and back.

    Keeps the inner network's hollow structure: `hollow` and `context_detached` pass through.
    """

    def __init__(self, net: nn.Module, event_shape: tuple[int, ...]):
        super().__init__()
        self.net, self.event_shape = net, tuple(event_shape)
        self.hollow = getattr(net, "hollow", False)

    def context_detached(self):
        return self.net.context_detached()

    def forward(self, x: Tensor, t: Tensor | float, c: Tensor | None = None,
                drop: Tensor | None = None) -> Tensor:
        return self.net(x.flatten(1), t, c, drop).reshape(x.shape)
