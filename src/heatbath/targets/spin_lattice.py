"""The interface every spin-lattice target declares, so methods never guess from `discrete`.

A `SpinLattice` is exp(−βH) over ±1 spins on a periodic L×M lattice with
H = −J Σ⟨ij⟩ sᵢsⱼ − h Σᵢ sᵢ (bonds to the right and down neighbour of every site). The methods
anneal in β from 0 (uniform spins, Z = 2^N), sweep with the updates of `mcmc.SPIN_UPDATES`, and
ask the lattice for the exact ln Z at another β where it knows one.
"""

from __future__ import annotations

import torch

from heatbath.mcmc.spins import IsingModel, lattice_colouring, neighbour_sum, uniform_spins
from heatbath.spaces import LatticeSpace
from heatbath.targets.base import EnergyTarget


class SpinLattice(EnergyTarget):
    """Base class of spin lattices; subclasses set L, M, J, h, beta and call __init__."""

    discrete = True
    L: int
    M: int
    J: float
    h: float
    beta: float

    # states per site; categorical models (method masked) index them 0..num_states-1
    num_states = 2

    @property
    def sites(self) -> int:
        return self.L * self.M

    @staticmethod
    def to_states(spins: torch.Tensor) -> torch.Tensor:
        """Spin values (−1, +1) as category indices (0, 1), long."""
        return (spins > 0).long()

    @staticmethod
    def from_states(states: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Category indices (0, 1) as spin values (−1, +1)."""
        return (2 * states - 1).to(dtype)

    @property
    def space(self) -> LatticeSpace:
        return LatticeSpace((self.L, self.M), spins=True)

    def model(self) -> IsingModel:
        """The couplings and field: H without β (what annealing multiplies by β_t)."""
        return IsingModel(J=self.J, h=self.h)

    def colouring(self) -> list[torch.Tensor]:
        """Masks of sites that can be updated together (no two neighbours share one)."""
        return lattice_colouring(self.L, self.M)

    def local_energy_change(self, spins: torch.Tensor) -> torch.Tensor:
        """ΔH of flipping each site alone, (B, L, M): 2 sᵢ (J Σ neighbours + h)."""
        spins = spins.reshape(-1, self.L, self.M)
        return 2 * spins * (self.J * neighbour_sum(spins) + self.h)

    def uniform(self, n: int, generator: torch.Generator,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Exact draws at β = 0."""
        return uniform_spins(n, self.L, self.M, generator, dtype)

    def at_beta(self, beta: float) -> "SpinLattice":
        """The same lattice at another inverse temperature."""
        raise NotImplementedError

    def exact_log_z_at(self, beta: float) -> float | None:
        """ln Z of exp(−βH), where the lattice knows it."""
        return self.at_beta(beta).exact.log_z
