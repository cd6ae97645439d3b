"""A target seen through the orthonormal chart of its state space.

A translation-invariant particle energy lives on the zero-centre-of-mass subspace, not on
R^(P×d). Every flat-vector method (MCMC kernels, AIS/SMC/TI from a Gaussian base, coupling
flows, SNFs, FAB) runs unchanged on `ChartTarget(target)`: z ∈ R^dim with U(z) = U(x(z)) for
the isometry x(z) = space.from_chart(z). Because the chart is an isometry, a density in z *is*
the density on the subspace, so log q, log p0 and log Z all refer to the space's measure
(`target.space.measure`), and nothing a method does can leave the subspace.
"""

from __future__ import annotations

import torch

from heatbath.spaces import FreeSpace
from heatbath.targets.base import EnergyTarget, ExactValues


class ChartTarget(EnergyTarget):
    """`original` in chart coordinates z (N, dim); energies are counted here (and there)."""

    def __init__(self, original: EnergyTarget) -> None:
        self.original = original
        self.chart = original.space
        self.name, self.convention = original.name, original.convention
        super().__init__((self.chart.dim,), original.params)

    def to_original(self, z: torch.Tensor) -> torch.Tensor:
        return self.chart.from_chart(z)

    def _energy(self, z: torch.Tensor) -> torch.Tensor:
        return self.original.energy(self.to_original(z))

    def energy_and_force(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The original's (U, F); the chart is linear and orthonormal, so F_z = to_chart(F_x)."""
        u, force = self.original.energy_and_force(self.to_original(z))
        self.energy_evals += z.shape[0]
        self.force_evals += z.shape[0]
        return u, self.chart.to_chart(force)

    @property
    def space(self) -> FreeSpace:
        return FreeSpace(self.event_shape)

    @property
    def exact(self) -> ExactValues:
        return self.original.exact

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        drawn = self.original.sample_exact(n, generator)
        return None if drawn is None else self.chart.to_chart(drawn)

    def base_hint(self) -> tuple[torch.Tensor, float] | None:
        hint = self.original.base_hint()
        if hint is None:
            return None
        centre, scale = hint
        return self.chart.to_chart(centre.reshape(1, *self.original.event_shape))[0], scale

    def observables(self, z: torch.Tensor) -> dict:
        return self.original.observables(self.to_original(z))

    def describe(self) -> dict:
        return self.original.describe()


def working_target(target: EnergyTarget) -> EnergyTarget:
    """What methods run on: the chart view where the space is a proper subspace, else target."""
    return ChartTarget(target) if target.space.reduced else target


def to_original(working: EnergyTarget, x: torch.Tensor) -> torch.Tensor:
    """Samples of `working_target(...)` back as configurations of the original target."""
    return working.to_original(x) if isinstance(working, ChartTarget) else x
