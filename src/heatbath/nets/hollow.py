"""Hollow MLP: a vector field on R^D whose exact divergence costs one backward pass.

    f_i(x, t) = τ(x_i, h_i(x₋ᵢ, t), i, t)

h_i is a context that sees every coordinate except x_i; τ is one small network, shared by all
coordinates, that mixes x_i with its own context. Because ∂h_i/∂x_i = 0, the Jacobian diagonal is
∂f_i/∂x_i = ∂τ/∂x_i with the context held fixed, which a single backward pass returns for all i at
once (Chen & Duvenaud 2019, "Neural Networks with Cheap Differential Operators"). An exact trace
then costs one backward pass instead of D: `heatbath.samplers.likelihood.exact_divergence` uses
`context_detached()` for that.

The context network has two masked (MADE-style) streams in one trunk: a forward stream whose
unit of degree m reads x_0..x_m, and a backward stream whose unit of degree m reads x_m..x_{D-1}.
Output i takes forward units of degree < i and backward units of degree > i, so h_i depends on
exactly x₋ᵢ. Masks are kept per layer, so residual blocks and FiLM by the time embedding keep the
property; no normalisation across units is used, because it would mix coordinates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from heatbath.nets.embedding import TimeConditionEmbedding
from heatbath.nets.mlp import OUTPUT_INIT_SCALE


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, mask: Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        # Non-persistent and bool: rebuilt from the shape, never saved or averaged by EMA.
        self.register_buffer("mask", mask.bool(), persistent=False)
        with torch.no_grad():   # keep the default fan-in scale for the inputs a unit really sees
            fan_in = self.mask.sum(1, keepdim=True).clamp(min=1).to(self.weight.dtype)
            self.weight.mul_(torch.sqrt(mask.shape[1] / fan_in))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask.to(self.weight.dtype), self.bias)


def unit_degrees(dim: int, width: int) -> tuple[Tensor, Tensor]:
    """(is_forward, degree) per hidden unit: half the units per stream, degrees cycling.

    A forward unit of degree m reads x_j for j ≤ m (m in 0..D−2), a backward one x_j for j ≥ m
    (m in 1..D−1). With D = 1 no coordinate may be read: degrees −1 / D read nothing.
    """
    units = torch.arange(width)
    is_forward = units < (width + 1) // 2
    index = torch.where(is_forward, units, units - (width + 1) // 2)
    if dim == 1:
        degree = torch.where(is_forward, -1, 1)
    else:
        degree = torch.where(is_forward, index % (dim - 1), 1 + index % (dim - 1))
    return is_forward, degree


def input_mask(is_forward: Tensor, degree: Tensor, dim: int) -> Tensor:
    j = torch.arange(dim)[None, :]
    return torch.where(is_forward[:, None], j <= degree[:, None], j >= degree[:, None])


def hidden_mask(is_forward: Tensor, degree: Tensor) -> Tensor:
    """Unit k may feed unit k' of the same stream when it reads no more coordinates."""
    same_stream = is_forward[:, None] == is_forward[None, :]
    reads_subset = torch.where(is_forward[:, None], degree[None, :] <= degree[:, None],
                               degree[None, :] >= degree[:, None])
    return same_stream & reads_subset


def context_mask(is_forward: Tensor, degree: Tensor, dim: int, features: int) -> Tensor:
    """Output feature (i, w) reads forward units of degree < i and backward ones of degree > i."""
    i = torch.arange(dim).repeat_interleave(features)[:, None]
    return torch.where(is_forward[None, :], degree[None, :] < i, degree[None, :] > i)


class MaskedResidualBlock(nn.Module):
    """h -> h + M2 silu(FiLM(M1 silu(h), emb)), both layers masked with the same hidden mask."""

    def __init__(self, mask: Tensor, emb_dim: int):
        super().__init__()
        self.linear1 = MaskedLinear(mask)
        self.film = nn.Linear(emb_dim, 2 * mask.shape[0])
        self.linear2 = MaskedLinear(mask)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=-1)
        y = self.linear1(F.silu(h)) * (1 + scale) + shift
        return h + self.linear2(F.silu(y))


class PerCoordinateNet(nn.Module):
    """τ: (x_i, h_i, i, emb) -> f_i, the same weights for every coordinate (a 1×1 convolution)."""

    def __init__(self, dim: int, features: int, emb_dim: int, layers: int = 2):
        super().__init__()
        self.x_weight = nn.Parameter(torch.randn(dim, features))   # each coordinate's own input map
        self.position = nn.Parameter(torch.zeros(dim, features))
        self.time = nn.Linear(emb_dim, features)
        self.hidden = nn.ModuleList(nn.Linear(features, features) for _ in range(layers))
        self.output = nn.Linear(features, 1)
        with torch.no_grad():
            self.output.weight.mul_(OUTPUT_INIT_SCALE)
            self.output.bias.mul_(OUTPUT_INIT_SCALE)

    def forward(self, x: Tensor, context: Tensor, emb: Tensor) -> Tensor:
        u = x[..., None] * self.x_weight + context + self.position + self.time(F.silu(emb))[:, None]
        for layer in self.hidden:
            u = u + layer(F.silu(u))
        return self.output(F.silu(u)).squeeze(-1)


class HollowMLP(nn.Module):
    """Vector field on R^dim with a one-backward-pass Jacobian diagonal.

    forward(x, t, c=None, drop=None) as `MLP`. `hidden`/`depth` size the masked context trunk;
    `features` is the width of each coordinate's context h_i and of the shared network τ.
    """

    hollow = True   # exact_divergence looks for this: tr ∂f/∂x = one backward pass

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, features: int = 32,
                 time_dim: int = 64, num_classes: int | None = None, cond_dim: int | None = None):
        super().__init__()
        if dim < 1 or hidden < 2 or depth < 0 or features < 1:
            raise ValueError(f"need dim >= 1, hidden >= 2, depth >= 0, features >= 1; "
                             f"got {dim}, {hidden}, {depth}, {features}")
        self.dim, self.features = dim, features
        self.event_shape = (dim,)
        self._detach_context = False
        is_forward, degree = unit_degrees(dim, hidden)
        self.embedding = TimeConditionEmbedding(time_dim, hidden, num_classes, cond_dim)
        self.input = MaskedLinear(input_mask(is_forward, degree, dim))
        self.blocks = nn.ModuleList(MaskedResidualBlock(hidden_mask(is_forward, degree), hidden)
                                    for _ in range(depth))
        self.context = MaskedLinear(context_mask(is_forward, degree, dim, features))
        self.per_coordinate = PerCoordinateNet(dim, features, hidden)

    @contextmanager
    def context_detached(self) -> Iterator[None]:
        """Compute the contexts h_i from a detached x: autograd then sees only ∂τ/∂x_i."""
        previous, self._detach_context = self._detach_context, True
        try:
            yield
        finally:
            self._detach_context = previous

    def contexts(self, x: Tensor, emb: Tensor) -> Tensor:
        """(B, D, features): h_i(x₋ᵢ) for every coordinate i."""
        h = self.input(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.context(F.silu(h)).reshape(x.shape[0], self.dim, self.features)

    def forward(self, x: Tensor, t: Tensor | float, c: Tensor | None = None,
                drop: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        emb = self.embedding(t, c, drop, like=x)
        context = self.contexts(x.detach() if self._detach_context else x, emb)
        return self.per_coordinate(x, context, emb)

