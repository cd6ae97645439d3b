"""The 2-D Ising model on a periodic L×M lattice, as an energy target over ±1 spins.

U(s) = βH(s), H = −J Σ⟨ij⟩ sᵢsⱼ − h Σᵢ sᵢ, spins stored as float tensors (N, L, M) of ±1.
Exact answers: Kaufman's formula for h = 0 (any size), enumeration for ≤ 20 spins (any h);
exact samples by enumeration for ≤ 20 spins. See `ising_exact` for the formulas.
"""

from __future__ import annotations

import torch

from heatbath.core import checks as check
from heatbath.mcmc.spins import neighbour_sum
from heatbath.targets.spin_lattice import SpinLattice
from heatbath.targets.ising_exact import (K_CRITICAL, MAX_ENUMERATED_SPINS, IsingThermo,
                                          enumerate_profiles, enumerate_sample, enumerate_thermo,
                                          kaufman_thermo,
                                          kaufman_log_z, state_sums)

__all__ = ["Ising2D", "IsingThermo", "K_CRITICAL", "enumerate_sample", "enumerate_thermo",
           "kaufman_log_z", "kaufman_thermo", "state_sums"]


class Ising2D(SpinLattice):
    """Periodic L×M Ising model (M defaults to L); give beta or T = 1/beta (default β = K_c/|J|)."""

    name = "ising2d"
    convention = ("U = beta*H, H = -J sum_<ij> s_i s_j - h sum_i s_i on a periodic LxM lattice "
                  "(bonds to the right and down neighbour of every site, 2LM bonds); spins +-1 as "
                  "floats, event_shape (L, M); exact: Kaufman (h=0), enumeration (<= 20 spins)")

    def __init__(self, L: int = 16, M: int | None = None, J: float = 1.0,
                 beta: float | None = None, T: float | None = None, h: float = 0.0) -> None:
        self.L = check.integer("L", L, "ising2d", minimum=2)
        self.M = self.L if M is None else check.integer("M", M, "ising2d", minimum=2)
        self.J = check.real("J", J, "ising2d")
        self.h = check.real("h", h, "ising2d")
        # Default: the critical point, β = K_c/|J| (K_c = ½ ln(1 + √2) ≈ 0.4406867935).
        critical_beta = K_CRITICAL / abs(self.J) if self.J != 0 else K_CRITICAL
        self.beta = check.inverse_temperature(beta, T, critical_beta, "ising2d")
        super().__init__((self.L, self.M), {"L": self.L, "M": self.M, "J": self.J,
                                            "beta": self.beta, "h": self.h})

    def at_beta(self, beta: float) -> "Ising2D":
        return Ising2D(L=self.L, M=self.M, J=self.J, beta=beta, h=self.h)

    @property
    def coupling(self) -> float:
        """K = βJ, the dimensionless coupling."""
        return self.beta * self.J

    def local_energy_change(self, spins: torch.Tensor) -> torch.Tensor:
        """ΔH of flipping each site alone, (B, L, M): 2 sᵢ (J Σ neighbours + h)."""
        spins = spins.reshape(-1, self.L, self.M)
        return 2 * spins * (self.J * neighbour_sum(spins) + self.h)

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        spins = x.reshape(x.shape[0], self.L, self.M)
        bonds = (spins * spins.roll(-1, 1) + spins * spins.roll(-1, 2)).sum(dim=(1, 2))
        return -self.coupling * bonds - self.beta * self.h * spins.sum(dim=(1, 2))

    def _thermo(self) -> tuple[IsingThermo, str] | None:
        small = self.L * self.M <= MAX_ENUMERATED_SPINS
        even = self.L % 2 == 0 and self.M % 2 == 0
        if self.h == 0 and (self.coupling >= 0 or even):
            return kaufman_thermo(self.L, self.M, self.coupling), "kaufman"
        if small:
            thermo = enumerate_thermo(self.L, self.M, self.coupling, self.beta * self.h)
            return thermo, "enumeration"
        return None

    def exact_profiles(self) -> dict | None:
        """βF(m) and βF(U/N) by enumeration (≤ 20 spins); None for larger lattices."""
        if self.L * self.M > MAX_ENUMERATED_SPINS:
            return None
        return enumerate_profiles(self.L, self.M, self.coupling, self.beta * self.h)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """Exact ±1 configurations by enumeration for ≤ 20 spins; None for larger lattices."""
        if self.L * self.M > MAX_ENUMERATED_SPINS:
            return None
        spins = enumerate_sample(self.L, self.M, self.coupling, self.beta * self.h, n, generator)
        return spins.to(torch.get_default_dtype())
