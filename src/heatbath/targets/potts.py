"""The 2-D q-state Potts model on a periodic L×M lattice, as an energy target over state indices.

U(s) = βH(s),  H = −J Σ⟨ij⟩ δ(sᵢ, sⱼ) − h Σᵢ δ(sᵢ, 0),  sᵢ ∈ {0, …, q−1} stored as floats
(N, L, M); the bonds go to the right and down neighbour of every site (2LM bonds). J > 0 is
ferromagnetic (equal neighbours lower H by J), h > 0 favours state 0. q = 2 is the Ising model at
half the coupling: δ(s, s') = (1 + σσ')/2 with σ = 1 − 2s, so H_Potts(J, h) = H_Ising(J/2, h/2)
− (J·2LM + h·LM)/2.
Exact answers: the row transfer matrix when q^min(L, M) ≤ 2187 (any J, h), else enumeration for
q^(LM) ≤ 2^21; exact samples and free-energy profiles by enumeration.
"""

from __future__ import annotations

import torch

from heatbath.core import checks as check
from heatbath.mcmc.potts import PottsModel, potts_energy, potts_updates, uniform_potts
from heatbath.mcmc.spins import Sweep
from heatbath.spaces import LatticeSpace
from heatbath.targets.potts_exact import (MAX_ENUMERATED_STATES, LatticeThermo, critical_beta,
                                          potts_enumerate_profiles, potts_enumerate_sample,
                                          potts_enumerate_thermo,
                                          potts_transfer_thermo, transfer_row_length)
from heatbath.targets.spin_lattice import SpinLattice

__all__ = ["Potts2D", "critical_beta"]


class Potts2D(SpinLattice):
    """Periodic L×M q-state Potts model (M defaults to L); give beta or T = 1/beta (default the
    critical point β_c = ln(1 + √q)/|J|)."""

    name = "potts2d"
    convention = ("U = beta*H, H = -J sum_<ij> delta(s_i, s_j) - h sum_i delta(s_i, 0) on a "
                  "periodic LxM lattice (bonds to the right and down neighbour of every site, "
                  "2LM bonds); states 0..q-1 as floats, event_shape (L, M); exact: row transfer "
                  "matrix (q^min(L,M) <= 2187), enumeration (q^(LM) <= 2^21)")

    def __init__(self, L: int = 8, q: int = 3, M: int | None = None, J: float = 1.0,
                 beta: float | None = None, T: float | None = None, h: float = 0.0) -> None:
        self.L = check.integer("L", L, "potts2d", minimum=2)
        self.M = self.L if M is None else check.integer("M", M, "potts2d", minimum=2)
        self.q = check.integer("q", q, "potts2d", minimum=2)
        self.J = check.real("J", J, "potts2d")
        self.h = check.real("h", h, "potts2d")
        default_beta = critical_beta(self.q, abs(self.J) if self.J != 0 else 1.0)
        self.beta = check.inverse_temperature(beta, T, default_beta, "potts2d")
        super().__init__((self.L, self.M), {"L": self.L, "M": self.M, "q": self.q, "J": self.J,
                                            "beta": self.beta, "h": self.h})

    @property
    def num_states(self) -> int:
        return self.q

    @staticmethod
    def to_states(spins: torch.Tensor) -> torch.Tensor:
        """The stored values are the state indices already: as long."""
        return spins.round().long()

    @staticmethod
    def from_states(states: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """State indices as the stored float values (the identity map)."""
        return states.to(dtype)

    def magnetisation(self, x: torch.Tensor) -> torch.Tensor:
        """The Potts order parameter m = (q·max_k n_k/N − 1)/(q − 1) per configuration, (B,), with
        n_k the sites in state k: 0 for equal occupation, 1 when all sites agree."""
        states = self.to_states(x.reshape(x.shape[0], -1))
        counts = torch.nn.functional.one_hot(states, self.q).sum(1)
        largest = counts.max(1).values.to(x.dtype) / states.shape[1]
        return (self.q * largest - 1) / (self.q - 1)

    @property
    def space(self) -> LatticeSpace:
        return LatticeSpace((self.L, self.M), spins=True, values=f"{{0, ..., {self.q - 1}}}")

    def model(self) -> PottsModel:
        return PottsModel(J=self.J, h=self.h, q=self.q)

    def updates(self) -> dict[str, Sweep]:
        return potts_updates(self.q)

    def refusal(self, update: str) -> str | None:
        if update == "wolff" and self.J < 0:
            return (f"the Potts Wolff cluster move needs J >= 0 (got J={self.J:g}); "
                    f"use method.kernel=heatbath")
        return super().refusal(update)

    def uniform(self, n: int, generator: torch.Generator,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return uniform_potts(n, self.L, self.M, self.q, generator, dtype)

    def at_beta(self, beta: float) -> "Potts2D":
        return Potts2D(L=self.L, M=self.M, q=self.q, J=self.J, beta=beta, h=self.h)

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        states = x.reshape(x.shape[0], self.L, self.M).round()
        return self.beta * potts_energy(states, self.J, self.h)

    @property
    def _enumerable(self) -> bool:
        return self.q ** (self.L * self.M) <= MAX_ENUMERATED_STATES

    def _thermo(self) -> tuple[LatticeThermo, str] | None:
        K, beta_h = self.beta * self.J, self.beta * self.h
        if transfer_row_length(self.L, self.M, self.q) is not None:
            return potts_transfer_thermo(self.L, self.M, self.q, K, beta_h), "transfer_matrix"
        if self._enumerable:
            return potts_enumerate_thermo(self.L, self.M, self.q, K, beta_h), "enumeration"
        return None

    def exact_profiles(self) -> dict | None:
        """βF(m) of the order parameter and βF(U/N) by enumeration (q^(LM) ≤ 2^21); else None."""
        if not self._enumerable:
            return None
        return potts_enumerate_profiles(self.L, self.M, self.q, self.beta * self.J,
                                        self.beta * self.h)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """Exact configurations by enumeration for q^(LM) ≤ 2^21 states; None beyond."""
        if not self._enumerable:
            return None
        states = potts_enumerate_sample(self.L, self.M, self.q, self.beta * self.J,
                                        self.beta * self.h, n, generator)
        return states.to(torch.get_default_dtype())
