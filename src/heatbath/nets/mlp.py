"""Residual MLP for vector data: x (B, D), t (B,) -> (B, D).

Every block is pre-norm residual with FiLM modulation by the time(+condition) embedding, so the
network can change its behaviour smoothly along the path without relearning a trunk per time.
LayerNorm normalises each sample on its own, so a sample's output never depends on its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from heatbath.nets.embedding import TimeConditionEmbedding

# The last layer starts at 10% of PyTorch's default scale: initial outputs are near zero (so the
# first losses are about the target's variance, not blown up by a random head) while gradients
# still reach every layer - a zero init would make the first backward pass degenerate.
OUTPUT_INIT_SCALE = 0.1


class FiLMResidualBlock(nn.Module):
    """h -> h + W2 silu(FiLM(W1 silu(LN h), emb))."""

    def __init__(self, width: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, width)
        self.film = nn.Linear(emb_dim, 2 * width)
        self.linear2 = nn.Linear(width, width)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        y = self.linear1(F.silu(self.norm(h)))
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=-1)
        y = y * (1 + scale) + shift
        return h + self.linear2(F.silu(y))


class MLP(nn.Module):
    """Time- (and optionally condition-) dependent vector field on R^dim.

    forward(x, t, c=None, drop=None): x (B, dim); t (B,) or scalar in [0, 1]; c class labels (B,)
    long when `num_classes` is set, or (B, cond_dim) floats when `cond_dim` is set; drop (B,) bool,
    True = use the learned null condition for that sample (classifier-free guidance).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 64,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        fourier: int = 0,
        fourier_scale: float = 1.0,
    ):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 0 or fourier < 0:
            raise ValueError(f"need dim >= 1, hidden >= 1, depth >= 0, fourier >= 0; got {dim}, "
                             f"{hidden}, {depth}, {fourier}")
        self.dim = dim
        self.event_shape = (dim,)
        self.embedding = TimeConditionEmbedding(time_dim, hidden, num_classes, cond_dim)
        # Octaves π·2^k/scale, k < fourier: sin/cos of each coordinate let a small trunk draw
        # edges sharper than its width allows from x alone (Tancik et al. 2020).
        # Plain numbers, not a buffer: the weights files (and EMA) hold learned tensors only.
        self.fourier, self.fourier_scale = int(fourier), float(fourier_scale)
        self.input = nn.Linear(dim * (1 + 2 * fourier), hidden)
        self.blocks = nn.ModuleList(FiLMResidualBlock(hidden, hidden) for _ in range(depth))
        self.output_norm = nn.LayerNorm(hidden)
        self.output = nn.Linear(hidden, dim)
        with torch.no_grad():
            self.output.weight.mul_(OUTPUT_INIT_SCALE)
            self.output.bias.mul_(OUTPUT_INIT_SCALE)

    def forward(
        self, x: Tensor, t: Tensor | float, c: Tensor | None = None, drop: Tensor | None = None
    ) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        emb = self.embedding(t, c, drop, like=x)
        h = self.input(self.features(x))
        for block in self.blocks:
            h = block(h, emb)
        return self.output(F.silu(self.output_norm(h)))

    def features(self, x: Tensor) -> Tensor:
        """x, then sin and cos of every coordinate at every octave (none by default)."""
        if self.fourier == 0:
            return x
        octaves = torch.arange(self.fourier, device=x.device, dtype=x.dtype)
        frequencies = torch.pi * 2.0 ** octaves / self.fourier_scale
        angles = (x[:, :, None] * frequencies).flatten(1)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)
