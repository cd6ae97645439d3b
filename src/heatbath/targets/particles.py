"""Lennard-Jones clusters (LJ13, LJ55) and the pair-distance helper shared with DW4.

Configurations are flattened: event_shape = (n_particles * spatial_dim,), particle i occupying
entries [i*spatial_dim, (i+1)*spatial_dim). Pairs are counted once (unordered, i < j).

The energies are invariant under translations of the whole cluster, so exp(−U) is normalisable
only on the zero-centre-of-mass subspace; samplers that care should remove the centre of mass.
"""

from __future__ import annotations

import torch

from heatbath.core import checks as check
from heatbath.targets.base import EnergyTarget, ExactValues

# Distances are floored at this value (in units of r_m) before the LJ terms are formed. At the
# floor a pair already costs 1e24 kT, so no configuration a sampler can reach is affected; the
# floor only stops overlapping particles (d -> 0, e.g. an all-zero start) from producing
# inf - inf = nan, or a float32 overflow when many pairs overlap at once.
LJ_MIN_DISTANCE = 1e-2

# Global minima of the pair part (pairs once), Cambridge Cluster Database; reported, not exact Z.
LJ_GLOBAL_MINIMUM = {13: -44.326801, 55: -279.248470}


def pair_distances(x: torch.Tensor, n_particles: int, spatial_dim: int,
                   min_distance: float) -> torch.Tensor:
    """(N, n_particles*spatial_dim) -> (N, n_pairs) distances over unordered pairs i < j.

    Squared distances are clamped at min_distance² before the square root, which keeps the
    gradient finite (zero) for coinciding particles instead of nan.
    """
    positions = x.reshape(x.shape[0], n_particles, spatial_dim)
    first, second = torch.triu_indices(n_particles, n_particles, offset=1, device=x.device)
    squared = (positions[:, first] - positions[:, second]).pow(2).sum(dim=-1)
    return squared.clamp_min(min_distance ** 2).sqrt()


def centroid_restraint(x: torch.Tensor, n_particles: int, spatial_dim: int) -> torch.Tensor:
    """0.5 Σᵢ ‖xᵢ − x̄‖²: keeps the cluster together (it does not pin the centre of mass)."""
    positions = x.reshape(x.shape[0], n_particles, spatial_dim)
    centred = positions - positions.mean(dim=1, keepdim=True)
    return 0.5 * centred.pow(2).sum(dim=(1, 2))


def lj_pair_energy(x: torch.Tensor, n_particles: int, spatial_dim: int = 3) -> torch.Tensor:
    """Σ_{i<j} [(1/d)¹² − 2(1/d)⁶] with ε = r_m = 1 (not counted as a target evaluation)."""
    distances = pair_distances(x, n_particles, spatial_dim, LJ_MIN_DISTANCE)
    inverse_six = distances.pow(-6)
    return (inverse_six.pow(2) - 2.0 * inverse_six).sum(dim=1)


class LennardJones(EnergyTarget):
    """LJ cluster in kT: ε Σ_{i<j}[(r_m/d)¹² − 2(r_m/d)⁶] + 0.5 Σᵢ‖xᵢ−x̄‖², ε = r_m = 1."""

    convention = ("E = sum over unordered pairs i<j of [(1/d)^12 - 2 (1/d)^6] (epsilon = r_m = 1, "
                  "pairs counted once) + 0.5 sum_i |x_i - mean(x)|^2, in kT; flattened "
                  "event_shape (n_particles*3,); distances floored at 0.01 for numerical safety; "
                  "translation invariant (normalisable only with the centre of mass removed)")

    def __init__(self, n_particles: int = 13, spatial_dim: int = 3) -> None:
        self.n_particles = check.integer("n_particles", n_particles, "lj", minimum=2)
        self.spatial_dim = check.integer("spatial_dim", spatial_dim, "lj", minimum=1)
        self.name = f"lj{self.n_particles}"
        super().__init__((self.n_particles * self.spatial_dim,), {})

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return (lj_pair_energy(flat, self.n_particles, self.spatial_dim)
                + centroid_restraint(flat, self.n_particles, self.spatial_dim))

    @property
    def exact(self) -> ExactValues:
        minimum = LJ_GLOBAL_MINIMUM.get(self.n_particles) if self.spatial_dim == 3 else None
        extra = {} if minimum is None else {"pair_energy_global_minimum": minimum}
        return ExactValues(extra=extra)
