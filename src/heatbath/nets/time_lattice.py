"""`TimeLatticeNet`: q posterior logits per site of a noisy categorical lattice at time t.

    states (B, L, M) long, t (B,)
      → [one-hot states (q channels) ‖ sinusoidal features of t as constant channels]
      → PeriodicConvNet → logits (B, q, L, M)

The network of the uniform-source discrete flow matching path (`paths.uniform`), whose
posterior p(x₁ | x_t) depends on t (the masked path's does not, so `MaskedLatticeNet` has no
time input). Time enters as channels that are constant over the lattice: they are unchanged by
any lattice translation, so the map still commutes with `torch.roll` and runs on any L×M.
The features are `nets.embedding.sinusoidal_embedding` — fixed, no weights — so the network's
weights are all drawn from the explicit generator (equal seeds, equal networks); the learned
`TimeConditionEmbedding` MLP would draw from the global RNG instead. The head starts at zero:
an untrained model is uniform over the q states.
"""

from __future__ import annotations

import torch
from torch import nn

from heatbath.nets.embedding import broadcast_times, sinusoidal_embedding
from heatbath.nets.masked_lattice import LatticeLogitsNet

TIME_FEATURES = 16   # constant channels of sin/cos features of t


class TimeLatticeNet(LatticeLogitsNet):
    def __init__(self, num_states: int, channels: int = 32, depth: int = 4,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(num_states, TIME_FEATURES, channels, depth, generator)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        dtype = self.body[0].weight.dtype
        onehot = nn.functional.one_hot(x, self.num_states).movedim(-1, 1).to(dtype)
        times = broadcast_times(t, x.shape[0], onehot)
        features = sinusoidal_embedding(times, TIME_FEATURES)[:, :, None, None]
        return self.body(torch.cat([onehot, features.expand(-1, -1, *x.shape[1:])], dim=1))
