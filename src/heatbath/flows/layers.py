"""Bijective flow layers: x ↦ y with a tractable Jacobian.

Every bijection is a module with

    forward(x) = (y, log|det ∂y/∂x|)        inverse(y) = (x, log|det ∂x/∂y|)

on flat batches (n, dim); in a flow's layer sequence its Δ log w is its log|det J| (see
`sequential.py`). The layers here:

  CouplingLayer   one half of the coordinates moves through a rational-quadratic spline whose
                  knots a `Conditioner` reads off the other half: a triangular Jacobian, so
                  log|det J| is a sum of elementwise log-slopes and the inverse is as cheap.
  Standardise     x = loc + exp(log_scale)·y, learnable: log|det J| = Σ log_scale.
  InStandardUnits T = A⁻¹ ∘ (L_K ∘ … ∘ L_1) ∘ A with the fixed affine A(x) = (x − loc)/scale:
                  the inner layers work in standardised units; A and A⁻¹ cancel in the
                  determinant, so log|det J_T| = Σ_k log|det J_{L_k}| exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from heatbath.flows.spline import make_knots, spline_forward, spline_inverse
from heatbath.nets.conditioner import Conditioner


def scale_vector(value, dim: int, name: str) -> torch.Tensor:
    """A number broadcast to `dim` entries, or a list/tensor with exactly `dim` entries."""
    vector = torch.as_tensor(value, dtype=torch.get_default_dtype()).reshape(-1)
    if vector.numel() == 1:
        vector = vector.expand(dim).clone()
    if vector.numel() != dim:
        raise ValueError(f"{name} needs 1 or {dim} entries, got {vector.numel()}")
    return vector


def positive_scale_vector(value, dim: int, name: str = "scale") -> torch.Tensor:
    vector = scale_vector(value, dim, name)
    if not bool((vector > 0).all()):
        raise ValueError(f"{name} must be positive")
    return vector


def init_generator(generator: torch.Generator | None) -> torch.Generator:
    """The generator that initialises a flow's weights: a fixed seed 0 unless one is given,
    so that two flows built with the same arguments are identical."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


def compose(layers: Sequence[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_K ∘ … ∘ L_1)(x) and its log|det J| = Σ_k log|det J_k| (summed from 0 in layer order)."""
    log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for layer in layers:
        x, step = layer(x)
        log_det = log_det + step
    return x, log_det


def compose_inverse(layers: Sequence[nn.Module],
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_1⁻¹ ∘ … ∘ L_K⁻¹)(y) and its log|det J| (the negative of `compose`'s at the image)."""
    log_det = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    for layer in reversed(layers):
        y, step = layer.inverse(y)
        log_det = log_det + step
    return y, log_det


class Bijection(nn.Module):
    """Base class of invertible layers; `bijective` tells a flow's path how to book Δ log w."""

    bijective = True

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class CouplingLayer(Bijection):
    """x[transformed] ← spline_θ(x[conditioning])(x[transformed]); the rest passes through."""

    def __init__(self, dim: int, transformed: torch.Tensor, hidden: int, bins: int,
                 bound: float, generator: torch.Generator) -> None:
        super().__init__()
        conditioning = torch.tensor([i for i in range(dim) if i not in set(transformed.tolist())],
                                    dtype=torch.long)
        self.register_buffer("transformed", transformed, persistent=False)
        self.register_buffer("conditioning", conditioning, persistent=False)
        self.bins, self.bound = bins, float(bound)
        # With nothing to condition on (dim 1) the net reads a constant 1: an unconditional spline.
        self.net = Conditioner(max(len(conditioning), 1), len(transformed) * (3 * bins - 1),
                               hidden, generator)

    def _knots(self, x: torch.Tensor):
        if len(self.conditioning):
            context = x[:, self.conditioning]
        else:
            context = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        raw = self.net(context).reshape(x.shape[0], len(self.transformed), 3 * self.bins - 1)
        widths, heights, derivatives = raw.split([self.bins, self.bins, self.bins - 1], dim=-1)
        return make_knots(widths, heights, derivatives, self.bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base → data direction: (y, log|det ∂y/∂x|)."""
        moved, log_det = spline_forward(x[:, self.transformed], self._knots(x), self.bound)
        return x.index_copy(1, self.transformed, moved), log_det.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data → base direction: (x, log|det ∂x/∂y|). The conditioning half is unchanged."""
        moved, log_det = spline_inverse(y[:, self.transformed], self._knots(y), self.bound)
        return y.index_copy(1, self.transformed, moved), log_det.sum(dim=1)


class Standardise(Bijection):
    """x = loc + exp(log_scale)·y elementwise; learnable, started from a location/scale guess."""

    def __init__(self, dim: int, loc=0.0, scale=1.0) -> None:
        super().__init__()
        scale = positive_scale_vector(scale, dim)
        self.loc = nn.Parameter(scale_vector(loc, dim, "loc"))
        self.log_scale = nn.Parameter(scale.log())

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = self.log_scale.sum().expand(y.shape[0])
        return self.loc + self.log_scale.exp() * y, log_det

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = -self.log_scale.sum().expand(x.shape[0])
        return (x - self.loc) * torch.exp(-self.log_scale), log_det


class InStandardUnits(Bijection):
    """The bijections `layers` applied in units y = (x − loc)/scale; log|det J| is theirs.

    `loc` and `scale` are fixed tensors (the owner's buffers, not parameters of this layer).
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor,
                 layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.loc, self.scale = loc, scale
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, log_det = compose(self.layers, (x - self.loc) / self.scale)
        return self.loc + self.scale * y, log_det

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, log_det = compose_inverse(self.layers, (x - self.loc) / self.scale)
        return self.loc + self.scale * y, log_det


def alternating_couplings(dim: int, layers: int, hidden: int, bins: int, bound: float,
                          generator: torch.Generator) -> nn.ModuleList:
    """Coupling layers that transform even, then odd coordinates, and so on (dim 1: always 0)."""
    modules = []
    for k in range(layers):
        parity = k % 2 if dim > 1 else 0
        transformed = torch.arange(parity, dim, 2, dtype=torch.long)
        modules.append(CouplingLayer(dim, transformed, hidden, bins, bound, generator))
    return nn.ModuleList(modules)
