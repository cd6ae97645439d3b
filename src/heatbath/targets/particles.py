"""Particle targets: Lennard-Jones clusters (LJ13, LJ55), a harmonic cluster with exact answers,
and the pair-distance helper shared with DW4.

Configurations are arrays (N, P, d): event_shape = (n_particles, spatial_dim). The energies are
invariant under translations of the whole cluster, so exp(−U) is normalisable only on the
zero-centre-of-mass subspace: their `space` is `CentredParticles(P, d)`, and log Z, log q and
every base density refer to its (P−1)·d-dimensional Lebesgue measure (see `heatbath.spaces`).
"""

from __future__ import annotations

import math

import torch

from heatbath.core import checks as check
from heatbath.spaces import CentredParticles, pair_distances
from heatbath.targets.base import EnergyTarget, ExactValues

# Distances are floored at this value (in units of r_m) before the LJ terms are formed. At the
# floor a pair already costs 1e24 kT, so no configuration a sampler can reach is affected; the
# floor only stops overlapping particles (d -> 0, e.g. an all-zero start) from producing
# inf - inf = nan, or a float32 overflow when many pairs overlap at once.
LJ_MIN_DISTANCE = 1e-2

# Global minima of the pair part (pairs once), Cambridge Cluster Database; reported, not exact Z.
LJ_GLOBAL_MINIMUM = {13: -44.326801, 55: -279.248470}

# The two published LJ conventions: the factor multiplying the sum over unordered pairs i < j.
LJ_PAIR_FACTORS = {
    "once": 1.0,      # bgflow (after its 2021 fix), SE(3)-augmented coupling flows
    "doubled": 2.0,   # ordered pairs i != j without 1/2: the iDEM code and the equivariant
                      # flow matching MCMC data sets it reproduces
}


def centroid_restraint(x: torch.Tensor) -> torch.Tensor:
    """0.5 Σᵢ ‖xᵢ − x̄‖² for (N, P, d): keeps the cluster together (translation invariant)."""
    return 0.5 * (x - x.mean(dim=1, keepdim=True)).pow(2).sum(dim=(1, 2))


def lj_pair_energy(x: torch.Tensor) -> torch.Tensor:
    """Σ_{i<j} [(1/d)¹² − 2(1/d)⁶] with ε = r_m = 1 (not counted as a target evaluation)."""
    inverse_six = pair_distances(x, LJ_MIN_DISTANCE).pow(-6)
    return (inverse_six.pow(2) - 2.0 * inverse_six).sum(dim=1)


class ParticleTarget(EnergyTarget):
    """A translation-invariant energy of P particles in d dimensions (event_shape (P, d))."""

    n_particles: int
    spatial_dim: int

    @property
    def space(self) -> CentredParticles:
        return CentredParticles(self.n_particles, self.spatial_dim)

    def positions(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.n_particles, self.spatial_dim)


class LennardJones(ParticleTarget):
    """LJ cluster in kT: f ε Σ_{i<j}[(r_m/d)¹² − 2(r_m/d)⁶] + 0.5 Σᵢ‖xᵢ−x̄‖², ε = r_m = 1,
    f = 1 (pairs="once") or 2 (pairs="doubled")."""

    def __init__(self, n_particles: int = 13, spatial_dim: int = 3, pairs: str = "once") -> None:
        self.n_particles = check.integer("n_particles", n_particles, "lj", minimum=2)
        self.spatial_dim = check.integer("spatial_dim", spatial_dim, "lj", minimum=1)
        check.choice(pairs, LJ_PAIR_FACTORS, "lj pairs")
        self.pairs = pairs
        self.name = f"lj{self.n_particles}" + ("" if self.pairs == "once" else "_doubled")
        counted = ("pairs counted once (bgflow, SE(3)-augmented coupling flows)"
                   if self.pairs == "once" else
                   "pair term doubled: ordered pairs i != j without 1/2 (iDEM, equivariant "
                   "flow matching data sets)")
        self.convention = (
            f"E = {LJ_PAIR_FACTORS[self.pairs]:g} * sum over unordered pairs i<j of "
            f"[(1/d)^12 - 2 (1/d)^6] (epsilon = r_m = 1, {counted}) + 0.5 sum_i |x_i - "
            f"mean(x)|^2, in kT; event_shape ({self.n_particles}, {self.spatial_dim}); "
            f"distances floored at 0.01 for numerical safety; translation invariant: densities "
            f"and log Z on the zero-centre-of-mass subspace")
        super().__init__((self.n_particles, self.spatial_dim), {"pairs": self.pairs})

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        positions = self.positions(x)
        return (LJ_PAIR_FACTORS[self.pairs] * lj_pair_energy(positions)
                + centroid_restraint(positions))

    @property
    def exact(self) -> ExactValues:
        minimum = LJ_GLOBAL_MINIMUM.get(self.n_particles) if self.spatial_dim == 3 else None
        if minimum is None:
            return ExactValues()
        return ExactValues(extra={"pair_energy_global_minimum":
                                  LJ_PAIR_FACTORS[self.pairs] * minimum})


class HarmonicCluster(ParticleTarget):
    """U = (k/2) Σᵢ ‖xᵢ − x̄‖²: P particles on springs to their centroid, exact in everything.

    On the zero-CoM subspace (dimension n = (P−1)·d) this is N(0, I/k): ln Z = (n/2) ln(2π/k),
    ⟨U⟩ = Var(U) = n/2, and exact samples are the space's standard noise / √k. It is the
    check that a method reports log Z on the subspace (on R^(P×d) it would be infinite).
    """

    name = "harmonic_cluster"

    def __init__(self, P: int = 4, d: int = 2, k: float = 1.0) -> None:
        self.n_particles = check.integer("P", P, self.name, minimum=2)
        self.spatial_dim = check.integer("d", d, self.name, minimum=1)
        self.k = check.positive("k", k, self.name)
        self.convention = (f"U = k/2 sum_i |x_i - mean(x)|^2 in kT, k = {self.k:g}, "
                           f"event_shape ({self.n_particles}, {self.spatial_dim}); exact on the "
                           f"zero-centre-of-mass subspace: ln Z = ((P-1) d / 2) ln(2 pi / k)")
        super().__init__((self.n_particles, self.spatial_dim),
                         {"P": self.n_particles, "d": self.spatial_dim, "k": self.k})

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.k * centroid_restraint(self.positions(x))

    @property
    def exact(self) -> ExactValues:
        n = self.space.dim
        return ExactValues(log_z=0.5 * n * math.log(2 * math.pi / self.k), energy_mean=0.5 * n,
                           heat_capacity=0.5 * n)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.space.randn(n, generator, torch.float64) / math.sqrt(self.k)
