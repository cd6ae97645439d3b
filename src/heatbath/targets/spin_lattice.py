"""The interface every spin-lattice target declares, so methods never guess from `discrete`.

A `SpinLattice` is exp(−βH) over a periodic L×M lattice of discrete sites (bonds to the right
and down neighbour of every site). The base class is the Ising case, ±1 spins with
H = −J Σ⟨ij⟩ sᵢsⱼ − h Σᵢ sᵢ; other models (`targets.potts.Potts2D`) override what differs:
`num_states` and the state mapping, `model()` (H without β), `uniform` (exact draws at β = 0,
where Z = num_states^N), and `updates()` (the exact local and cluster moves, keyed by
`method.kernel`). The methods anneal in β from 0, sweep with `update(kernel)`, and ask the
lattice for the exact ln Z at another β where it knows one.
"""

from __future__ import annotations

from functools import cached_property

import torch

from heatbath.core.errors import UserError
from heatbath.mcmc.spins import (SPIN_UPDATES, IsingModel, Sweep, lattice_colouring,
                                 magnetisation, uniform_spins)
from heatbath.spaces import LatticeSpace
from heatbath.targets.base import EnergyTarget, ExactValues


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

    @staticmethod
    def magnetisation(x: torch.Tensor) -> torch.Tensor:
        """The order parameter m per configuration, (B,): the mean spin, in [−1, 1]."""
        return magnetisation(x)

    def colouring(self) -> list[torch.Tensor]:
        """Masks of sites that can be updated together (no two neighbours share one)."""
        return lattice_colouring(self.L, self.M)

    def updates(self) -> dict[str, Sweep]:
        """The exact moves of this lattice by `method.kernel` name (sweep(x, β, J, h, gen))."""
        return SPIN_UPDATES

    def refusal(self, update: str) -> str | None:
        """Why `update` is not exact on this lattice (one line that names the fix), or None."""
        if update == "wolff" and self.h != 0:
            return "the Wolff cluster move needs zero field (h = 0); use heatbath"
        return None

    def update(self, name: str) -> Sweep:
        """The move `name`; a UserError where it is not exact on this lattice."""
        reason = self.refusal(name)
        if reason is not None:
            raise UserError(reason)
        return self.updates()[name]

    def uniform(self, n: int, generator: torch.Generator,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Exact draws at β = 0 (each site uniform over its num_states states)."""
        return uniform_spins(n, self.L, self.M, generator, dtype)

    def _thermo(self):
        """(thermodynamics with n_sites, log_z, mean_energy, energy_variance; the name of the
        method that computed them), or None where no exact method reaches this lattice."""
        return None

    @cached_property
    def _exact(self) -> ExactValues:
        found = self._thermo()
        if found is None:
            return ExactValues()
        thermo, method = found
        n = thermo.n_sites
        extra = {"log_z_per_site": thermo.log_z / n,
                 "energy_per_site": thermo.mean_energy / n,   # ⟨U⟩/N in kT, like "energy"
                 "heat_capacity_per_site": thermo.energy_variance / n, "exact_method": method}
        return ExactValues(log_z=thermo.log_z, energy_mean=thermo.mean_energy,
                           heat_capacity=thermo.energy_variance, extra=extra)

    @property
    def exact(self) -> ExactValues:
        return self._exact

    def at_beta(self, beta: float) -> "SpinLattice":
        """The same lattice at another inverse temperature."""
        raise NotImplementedError

    def exact_log_z_at(self, beta: float) -> float | None:
        """ln Z of exp(−βH), where the lattice knows it."""
        return self.at_beta(beta).exact.log_z
