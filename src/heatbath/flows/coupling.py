"""Coupling rational-quadratic spline flow: exact samples *and* exact densities in one pass.

    z ~ N(0, base_scale² I)  →  K spline coupling layers  →  affine standardisation  →  x

Each coupling layer leaves one half of the coordinates (alternating parity) unchanged and moves
the other half through a monotonic spline whose knots a small MLP reads off the unchanged half,
so the Jacobian is triangular: log|det J| is a sum of elementwise log-slopes, and the inverse is
as cheap as the forward map. The splines live on [−bound, bound] in *standardised* units; the
final affine layer x = loc + scale·y (learnable, initialised from a guess of the target's
location and spread) maps them to the target's scale, so GMM-40 (spread over ±40) needs
`scale≈10`, not a spline bound of 40.

Targets with event_shape other than (D,) (e.g. L×L lattices) are flattened on the way in and
reshaped on the way out: pass `event_shape`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heatbath.flows.spline import make_knots, spline_forward, spline_inverse
from heatbath.flows.weighted import WeightedSamples, flow_weighted_sample
from heatbath.targets.base import EnergyTarget


def _scale_vector(value, dim: int, name: str) -> torch.Tensor:
    """A number broadcast to `dim` entries, or a list/tensor with exactly `dim` entries."""
    vector = torch.as_tensor(value, dtype=torch.get_default_dtype()).reshape(-1)
    if vector.numel() == 1:
        vector = vector.expand(dim).clone()
    if vector.numel() != dim:
        raise ValueError(f"{name} needs 1 or {dim} entries, got {vector.numel()}")
    return vector


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default U(±1/√fan_in) initialisation, but drawn from `generator`."""
    limit = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        for tensor in (layer.weight, layer.bias):
            draw = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            tensor.copy_((2.0 * draw - 1.0) * limit)


def init_generator(generator: torch.Generator | None) -> torch.Generator:
    """The generator that initialises a flow's weights: a fixed seed 0 unless one is given,
    so that two flows built with the same arguments are identical."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


class CouplingLayer(nn.Module):
    """x[transformed] ← spline_θ(x[conditioning])(x[transformed]); the rest passes through."""

    def __init__(self, dim: int, transformed: torch.Tensor, hidden: int, bins: int,
                 bound: float, generator: torch.Generator) -> None:
        super().__init__()
        conditioning = torch.tensor([i for i in range(dim) if i not in set(transformed.tolist())],
                                    dtype=torch.long)
        self.register_buffer("transformed", transformed, persistent=False)
        self.register_buffer("conditioning", conditioning, persistent=False)
        self.bins, self.bound = bins, float(bound)
        n_out = len(transformed) * (3 * bins - 1)
        # With nothing to condition on (dim 1) the MLP reads a constant 1: an unconditional spline.
        n_in = max(len(conditioning), 1)
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, n_out))
        for layer in self.net[:-1]:
            if isinstance(layer, nn.Linear):
                _init_linear(layer, generator)
        # Zero head: every spline starts as the identity, so the untrained flow is its base.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

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


class Standardise(nn.Module):
    """x = loc + exp(log_scale)·y elementwise; learnable, started from a location/scale guess."""

    def __init__(self, dim: int, loc=0.0, scale=1.0) -> None:
        super().__init__()
        scale = _scale_vector(scale, dim, "scale")
        if not bool((scale > 0).all()):
            raise ValueError("scale must be positive")
        self.loc = nn.Parameter(_scale_vector(loc, dim, "loc"))
        self.log_scale = nn.Parameter(scale.log())

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = self.log_scale.sum().expand(y.shape[0])
        return self.loc + self.log_scale.exp() * y, log_det

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = -self.log_scale.sum().expand(x.shape[0])
        return (x - self.loc) * torch.exp(-self.log_scale), log_det


def alternating_couplings(dim: int, layers: int, hidden: int, bins: int, bound: float,
                          generator: torch.Generator) -> nn.ModuleList:
    """Coupling layers that transform even, then odd coordinates, and so on (dim 1: always 0)."""
    modules = []
    for k in range(layers):
        parity = k % 2 if dim > 1 else 0
        transformed = torch.arange(parity, dim, 2, dtype=torch.long)
        modules.append(CouplingLayer(dim, transformed, hidden, bins, bound, generator))
    return nn.ModuleList(modules)


class Flow(nn.Module):
    """A normalizing flow distribution: `sample`, `log_prob`, `sample_and_log_prob`.

    Flow(dim, layers=6, hidden=64, bins=8, bound=5.0, base_scale=1.0, loc=0.0, scale=1.0,
         event_shape=None, generator=None)

    bound       spline domain [−bound, bound] in standardised units (identity outside).
    base_scale  std of the Gaussian base; loc/scale are the initial standardisation (numbers or
                one entry per coordinate). The untrained flow is N(loc, (scale·base_scale)² I).
    event_shape shape of one sample (default (dim,)); its size must equal dim.
    generator   draws the initial hidden weights (default: a fixed seed, so equal arguments
                give equal flows).

    Guess `scale` on the wide side: splines map [−bound, bound] onto itself, so a flow that must
    widen (or shift) the base squeezes the spline ends, q's tails become lighter than the
    target's, and rare huge weights bias log Z low at any practical n. An over-dispersed start
    (say 1.5–2× the target's spread) keeps the weight tails light.
    """

    def __init__(self, dim: int, layers: int = 6, hidden: int = 64, bins: int = 8,
                 bound: float = 5.0, base_scale: float = 1.0, loc=0.0, scale=1.0,
                 event_shape: tuple[int, ...] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim < 1 or layers < 0 or hidden < 1 or bins < 2:
            raise ValueError(f"need dim >= 1, layers >= 0, hidden >= 1, bins >= 2; "
                             f"got {dim}, {layers}, {hidden}, {bins}")
        if bound <= 0 or base_scale <= 0:
            raise ValueError(f"bound and base_scale must be positive; got {bound}, {base_scale}")
        self.dim = dim
        self.event_shape = tuple(event_shape) if event_shape is not None else (dim,)
        if math.prod(self.event_shape) != dim:
            raise ValueError(f"event_shape {self.event_shape} does not hold {dim} numbers")
        self.base_scale = float(base_scale)
        self.couplings = alternating_couplings(dim, layers, hidden, bins, bound,
                                               init_generator(generator))
        self.standardise = Standardise(dim, loc, scale)

    # -- base distribution ------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        return self.standardise.loc.dtype

    def sample_base(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """z ~ N(0, base_scale² I), (n, dim), drawn with `generator` only."""
        z = torch.randn(n, self.dim, generator=generator, dtype=self._dtype(),
                        device=generator.device)
        return self.base_scale * z.to(self.standardise.loc.device)

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        var = self.base_scale ** 2
        return -0.5 * (z.pow(2).sum(dim=1) / var + self.dim * math.log(2 * math.pi * var))

    # -- the bijection ------------------------------------------------------------------------
    def transform(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base → data, flat (n, dim): (x, log|det ∂x/∂z|)."""
        log_det = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for layer in self.couplings:
            z, step = layer(z)
            log_det = log_det + step
        x, step = self.standardise(z)
        return x, log_det + step

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data → base, flat (n, dim): (z, log|det ∂z/∂x|)."""
        y, log_det = self.standardise.inverse(x)
        for layer in reversed(self.couplings):
            y, step = layer.inverse(y)
            log_det = log_det + step
        return y, log_det

    # -- the distribution -------------------------------------------------------------------
    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.dim)

    def unflatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.event_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x), (n,), for x of shape (n, *event_shape)."""
        z, log_det = self.inverse(self.flatten(x))
        return self.base_log_prob(z) + log_det

    def sample_and_log_prob(self, n: int,
                            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, log q(x)) in one pass; differentiable in the parameters (reparametrised)."""
        z = self.sample_base(n, generator)
        x, log_det = self.transform(z)
        return self.unflatten(x), self.base_log_prob(z) - log_det

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_and_log_prob(n, generator)[0]

    def weighted_sample(self, n: int, generator: torch.Generator,
                        target: EnergyTarget) -> WeightedSamples:
        """`WeightedSamples` with log w = −U(x) − log q(x); differentiable (reparametrised)."""
        return flow_weighted_sample(self, n, generator, target)

    def sample_with_log_weights(self, n: int, generator: torch.Generator,
                                target: EnergyTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, log w) with log w = −U(x) − log q(x): the same contract as `SNF`."""
        batch = self.weighted_sample(n, generator, target)
        return batch.x, batch.log_w
