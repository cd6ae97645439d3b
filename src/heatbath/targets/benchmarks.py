"""The standard Boltzmann-sampling benchmarks, in pinned conventions (see each `convention`).

* gmm40     — FAB's 2-D mixture of 40 Gaussians (normalised: log Z = 0, exact samples).
* manywell  — FAB's ManyWell: dim/2 independent 2-D double wells (exact log Z by quadrature,
              exact samples by inverse CDF); dim = 32 is ManyWell-32.
* dw4       — Köhler et al. (2020) 4-particle double-well pair potential (no closed-form Z).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from scipy import integrate

from heatbath.core.errors import UserError
from heatbath.core import checks as check
from heatbath.targets.base import EnergyTarget, ExactValues
from heatbath.spaces import pair_distances
from heatbath.targets.particles import ParticleTarget

GMM_COMPONENTS = 40
GMM_LOC_SCALE = 40.0
GMM_STD = math.log1p(math.e)   # softplus(1) = 1.3132616875...


def fab_gmm_means() -> torch.Tensor:
    """(40, 2) float64 means 40·(2u − 1), u = torch.rand(40, 2) right after manual_seed(0).

    A local generator seeded 0 gives the same draw as the global one after manual_seed(0)
    without touching global RNG state. u is drawn in float32 (torch's default, as FAB does)
    and the affine map is applied in float64.
    """
    generator = torch.Generator().manual_seed(0)
    uniform = torch.rand(GMM_COMPONENTS, 2, generator=generator, dtype=torch.float32)
    return GMM_LOC_SCALE * (2.0 * uniform.double() - 1.0)


class GMM40(EnergyTarget):
    """U(x) = −log p(x), p the equal-weight 40-component mixture with per-axis std softplus(1)."""

    name = "gmm40"
    convention = ("FAB GMM: 2-D, 40 equal-weight components, means 40*(2u-1) with u = "
                  "torch.rand(40, 2) after torch.manual_seed(0), per-axis std softplus(1); "
                  "U = -log p (normalised, log Z = 0); exact samples")

    def __init__(self) -> None:
        super().__init__((2,), {})
        self.means = fab_gmm_means()

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x.reshape(x.shape[0], 1, 2) - self.means.to(x)) / GMM_STD
        log_kernels = -0.5 * scaled.pow(2).sum(dim=-1)
        log_norm = math.log(GMM_COMPONENTS) + 2 * math.log(GMM_STD) + math.log(2 * math.pi)
        return log_norm - torch.logsumexp(log_kernels, dim=1)

    @property
    def exact(self) -> ExactValues:
        return ExactValues(log_z=0.0)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A uniformly chosen component plus Gaussian noise; float64, returned in default dtype."""
        component = torch.randint(GMM_COMPONENTS, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[component] + GMM_STD * noise).to(torch.get_default_dtype())


def _well_energy(a: float) -> float:
    """The a-part of the ManyWell pair energy, a⁴ − 6a² − 0.5a (the b-part is 0.5b²)."""
    return a ** 4 - 6 * a ** 2 - 0.5 * a


def _well_moment(power: int) -> float:
    """∫ E(a)^power exp(−E(a)) da in float64 quadrature (both wells at a ≈ ±1.7 as breakpoints)."""
    value, _ = integrate.quad(lambda a: _well_energy(a) ** power * math.exp(-_well_energy(a)),
                              -8.0, 8.0, points=(-1.7, 0.0, 1.7), epsabs=0.0, epsrel=1e-13,
                              limit=200)
    return value


@lru_cache(maxsize=1)
def well_integrals() -> tuple[float, float, float]:
    """(Z_a, ⟨E_a⟩, Var E_a) for the 1-D well; |a| > 8 carries < exp(−3700) of the mass."""
    z_a = _well_moment(0)
    mean = _well_moment(1) / z_a
    return z_a, mean, _well_moment(2) / z_a - mean ** 2


@lru_cache(maxsize=1)
def _well_inverse_cdf_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Grid and normalised CDF of exp(−E(a)) on [−5, 5] (2¹⁸ cells, trapezoid masses)."""
    grid = torch.linspace(-5.0, 5.0, 2 ** 18 + 1, dtype=torch.float64)
    energy = grid ** 4 - 6 * grid ** 2 - 0.5 * grid
    density = torch.exp(-(energy - energy.min()))
    cell_mass = 0.5 * (density[1:] + density[:-1])
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(cell_mass, 0)])
    return grid, cdf / cdf[-1]


def sample_well(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Draws of a ~ exp(−E(a))/Z_a by inverting the tabulated CDF (linear within each cell)."""
    grid, cdf = _well_inverse_cdf_grid()
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
    right = torch.searchsorted(cdf, uniform).clamp(1, grid.numel() - 1)
    left = right - 1
    fraction = (uniform - cdf[left]) / (cdf[right] - cdf[left]).clamp_min(1e-300)
    return grid[left] + fraction * (grid[right] - grid[left])


class ManyWell(EnergyTarget):
    """dim/2 copies of E(a, b) = a⁴ − 6a² − 0.5a + 0.5b² on (x₂ᵢ, x₂ᵢ₊₁); dim = 32 by default."""

    convention = ("FAB ManyWell: U = sum_i [a^4 - 6a^2 - 0.5a + 0.5b^2] with "
                  "(a, b) = (x_2i, x_2i+1), in kT; log Z = (dim/2)[ln Z_a + 1/2 ln 2 pi], "
                  "Z_a by float64 quadrature; "
                  "exact samples (inverse CDF on a 2^18-cell grid for a, Gaussian b)")

    def __init__(self, dim: int = 32) -> None:
        dim = check.integer("dim", dim, "manywell", minimum=2)
        if dim % 2:
            raise UserError(f"manywell: dim must be even (pairs of coordinates), got {dim}")
        self.name = "manywell32" if dim == 32 else f"manywell{dim}"
        self.n_wells = dim // 2
        super().__init__((dim,), {"dim": dim})

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.reshape(x.shape[0], self.n_wells, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return (a.pow(4) - 6 * a.pow(2) - 0.5 * a + 0.5 * b.pow(2)).sum(dim=1)

    @property
    def exact(self) -> ExactValues:
        z_a, mean_a, var_a = well_integrals()
        log_z = self.n_wells * (math.log(z_a) + 0.5 * math.log(2 * math.pi))
        # b is Gaussian: its energy 0.5 b² has mean 1/2 and variance 1/2.
        return ExactValues(log_z=log_z, energy_mean=self.n_wells * (mean_a + 0.5),
                           heat_capacity=self.n_wells * (var_a + 0.5))

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        a = sample_well((n, self.n_wells), generator)
        b = torch.randn(n, self.n_wells, generator=generator, dtype=torch.float64)
        return torch.stack([a, b], dim=2).reshape(n, -1).to(torch.get_default_dtype())


# Below this the distance is floored only so that sqrt has a finite (zero) gradient when two
# particles coincide; the DW4 energy itself is finite there (b d0² + c d0⁴ per pair).
DW_MIN_DISTANCE = 1e-6


class DW4(ParticleTarget):
    """Köhler et al. 2020: Σ_{i<j} [a(d−d0) + b(d−d0)² + c(d−d0)⁴]/τ, 4 particles in 2-D."""

    name = "dw4"
    convention = ("DW4 (Koehler et al. 2020): U = sum over unordered pairs of "
                  "[a(d-d0) + b(d-d0)^2 + c(d-d0)^4]/tau, a=0, b=-4, c=0.9, d0=4, tau=1; "
                  "4 particles in 2-D, event_shape (4, 2); translation invariant: densities "
                  "and log Z on the zero-centre-of-mass subspace (6 dims); no closed-form Z")

    n_particles = 4
    spatial_dim = 2

    def __init__(self, a: float = 0.0, b: float = -4.0, c: float = 0.9, d0: float = 4.0,
                 tau: float = 1.0) -> None:
        self.a, self.b = check.real("a", a, "dw4"), check.real("b", b, "dw4")
        self.c = check.positive("c (quartic term; <= 0 is unbounded below)", c, "dw4")
        self.d0 = check.real("d0", d0, "dw4")
        self.tau = check.positive("tau (temperature)", tau, "dw4")
        super().__init__((4, 2), {"a": self.a, "b": self.b, "c": self.c, "d0": self.d0,
                                "tau": self.tau})

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        shifted = pair_distances(self.positions(x), DW_MIN_DISTANCE) - self.d0
        pair = self.a * shifted + self.b * shifted.pow(2) + self.c * shifted.pow(4)
        return pair.sum(dim=1) / self.tau
