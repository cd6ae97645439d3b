"""φ⁴ scalar field theory on a periodic L×L lattice (Albergo, Kanwar & Shanahan convention).

S(φ) = Σₓ [ Σ_μ φₓ(2φₓ − φₓ₊μ − φₓ₋μ) + m² φₓ² + λ φₓ⁴ ]   (U = S, in kT; event_shape (L, L))
     = Σₓ [ −2 Σ_μ φₓφₓ₊μ + (4 + m²) φₓ² + λ φₓ⁴ ]            (d = 2, summed by parts)

— the action of Albergo, Kanwar & Shanahan (PRD 100, 034515, 2019) and of their 2021 tutorial's
`ScalarPhi4Action` (arXiv:2101.08176), whose point L = 8, m² = −4, λ = 8 is the default here: no
½ in front of the kinetic or mass term, so at m² = −4 the on-site potential is λφ⁴ alone.

For λ = 0 the action is the quadratic form φᵀAφ with A = −Δ + m², whose eigenvalues are
m² + 4 Σ_μ sin²(π k_μ / L). Hence, exactly (m² > 0):
    ln Z = (N/2) ln π − ½ Σ_k ln(m² + 4 Σ_μ sin²(π k_μ / L)),   ⟨S⟩ = Var(S) = N/2,
and φ ~ N(0, (2A)⁻¹) can be drawn exactly; A is circulant, so its square root is applied by FFT.
"""

from __future__ import annotations

import math

import torch

from heatbath.core.errors import UserError
from heatbath.core import checks as check
from heatbath.spaces import LatticeSpace
from heatbath.targets.base import EnergyTarget, ExactValues


def field_magnetisation(phi: torch.Tensor) -> torch.Tensor:
    """M = Σₓ φₓ of each configuration (N, L, L) -> (N,): the order parameter of φ⁴ (total,
    not per site; the action is invariant under φ -> −φ, so ⟨M⟩ = 0 and ⟨|M|⟩ is measured)."""
    return phi.reshape(phi.shape[0], -1).sum(dim=1)


def free_field_eigenvalues(L: int, m2: float) -> torch.Tensor:
    """(L, L) float64 eigenvalues m² + 4 Σ_μ sin²(π k_μ / L) of A = −Δ + m², in FFT order."""
    sin_sq = torch.sin(math.pi * torch.arange(L, dtype=torch.float64) / L).pow(2)
    return m2 + 4.0 * (sin_sq[:, None] + sin_sq[None, :])


def free_field_log_z(L: int, m2: float) -> float:
    """Exact ln Z of the λ = 0 theory on an L×L periodic lattice (needs m² > 0)."""
    eigenvalues = free_field_eigenvalues(L, m2)
    return 0.5 * L * L * math.log(math.pi) - 0.5 * torch.log(eigenvalues).sum().item()


class Phi4(EnergyTarget):
    """φ⁴ on a periodic L×L lattice; defaults are the flows-for-lattice-QFT tutorial's point."""

    name = "phi4"
    convention = ("S = sum_x [sum_mu phi_x (2 phi_x - phi_{x+mu} - phi_{x-mu}) + m2 phi_x^2 + "
                  "lam phi_x^4] on a periodic LxL lattice (Albergo-Kanwar-Shanahan), U = S in kT, "
                  "event_shape (L, L); exact ln Z and samples for lam = 0")

    def __init__(self, L: int = 8, m2: float = -4.0, lam: float = 8.0) -> None:
        self.L = check.integer("L", L, "phi4", minimum=2)
        self.m2 = check.real("m2", m2, "phi4")
        self.lam = check.non_negative("lam (a negative quartic is unbounded below)", lam, "phi4")
        if self.lam == 0 and self.m2 <= 0:
            raise UserError(f"phi4: the free field (lam=0) needs m2 > 0 to be normalisable, "
                            f"got m2={m2}; raise m2 or set lam > 0")
        super().__init__((self.L, self.L), {"L": self.L, "m2": self.m2, "lam": self.lam})

    @property
    def space(self) -> LatticeSpace:
        return LatticeSpace((self.L, self.L))

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        phi = x.reshape(x.shape[0], self.L, self.L)
        kinetic = torch.zeros_like(phi)
        for axis in (1, 2):
            kinetic = kinetic + phi * (2 * phi - phi.roll(1, axis) - phi.roll(-1, axis))
        density = kinetic + self.m2 * phi.pow(2) + self.lam * phi.pow(4)
        return density.sum(dim=(1, 2))

    @property
    def exact(self) -> ExactValues:
        if self.lam != 0:
            return ExactValues()
        half_n = 0.5 * self.L * self.L
        return ExactValues(log_z=free_field_log_z(self.L, self.m2), energy_mean=half_n,
                           heat_capacity=half_n)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """For λ = 0: φ = C^{1/2} w with C = (2A)⁻¹ circulant, applied by FFT (float64)."""
        if self.lam != 0:
            return None
        white = torch.randn(n, self.L, self.L, generator=generator, dtype=torch.float64)
        root_cov = (2.0 * free_field_eigenvalues(self.L, self.m2)).rsqrt()
        phi = torch.fft.ifft2(root_cov * torch.fft.fft2(white)).real
        return phi.to(torch.get_default_dtype())
