"""Particle state spaces: (P, d) configurations with the centre of mass removed, or in a box."""

from __future__ import annotations

import math

import torch

from heatbath.spaces.base import FreeSpace


def centring_basis(n_particles: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(P−1, P) orthonormal rows spanning {v ∈ R^P : Σ v = 0} (Helmert's sub-matrix).

    Row k (k = 1 … P−1) is (1, …, 1, −k, 0, …, 0) / sqrt(k(k+1)) with k ones: orthonormal,
    orthogonal to (1, …, 1), so Hᵀ H = I − 11ᵀ/P is the centring projection and H is an
    isometry from the zero-mean subspace onto R^(P−1).
    """
    rows = torch.zeros(n_particles - 1, n_particles, dtype=dtype)
    for k in range(1, n_particles):
        rows[k - 1, :k] = 1.0
        rows[k - 1, k] = -float(k)
        rows[k - 1] /= math.sqrt(k * (k + 1))
    return rows


def pair_distances(x: torch.Tensor, min_distance: float = 0.0, space=None) -> torch.Tensor:
    """(N, P, d) -> (N, P(P−1)/2) distances over unordered pairs i < j, through the space's
    displacement (minimum images in a periodic box) when one is given.

    Squared distances are clamped at min_distance² before the square root: energies pass a
    floor > 0, which keeps the gradient finite (zero) for coinciding particles instead of nan.
    """
    n_particles = x.shape[1]
    first, second = torch.triu_indices(n_particles, n_particles, offset=1, device=x.device)
    delta = (x[:, first] - x[:, second] if space is None
             else space.displacement(x[:, first], x[:, second]))
    return delta.pow(2).sum(dim=-1).clamp_min(min_distance ** 2).sqrt()


class CentredParticles(FreeSpace):
    """P particles in d dimensions with Σᵢ xᵢ = 0: a (P−1)·d-dimensional linear subspace.

    Translation-invariant energies (pair potentials, molecules) are normalisable only here;
    densities and log Z refer to the Euclidean (orthonormal-coordinate) measure on it.
    """

    kind = "centred_particles"

    def __init__(self, n_particles: int, spatial_dim: int) -> None:
        if n_particles < 2 or spatial_dim < 1:
            raise ValueError(f"need at least 2 particles and 1 dimension, got {n_particles}, "
                             f"{spatial_dim}")
        super().__init__((n_particles, spatial_dim))
        self.n_particles, self.spatial_dim = n_particles, spatial_dim
        self.dim = (n_particles - 1) * spatial_dim
        self._basis = centring_basis(n_particles)

    @property
    def measure(self) -> str:
        return (f"Lebesgue measure on the zero-centre-of-mass subspace of R^({self.n_particles}x"
                f"{self.spatial_dim}), dimension {self.dim} = (P-1)*d, in orthonormal "
                f"coordinates (the metric of the full space); translations removed")

    def _basis_like(self, x: torch.Tensor) -> torch.Tensor:
        return self._basis.to(dtype=x.dtype, device=x.device)

    def to_chart(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P, d) -> (N, (P−1)·d): Helmert coordinates (any centre of mass is dropped)."""
        z = torch.einsum("kp,npd->nkd", self._basis_like(x), x.reshape(-1, *self.event_shape))
        return z.reshape(x.shape[0], self.dim)

    def from_chart(self, z: torch.Tensor) -> torch.Tensor:
        blocks = z.reshape(z.shape[0], self.n_particles - 1, self.spatial_dim)
        return torch.einsum("kp,nkd->npd", self._basis_like(z), blocks)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        shaped = v.reshape(-1, *self.event_shape)
        return (shaped - shaped.mean(dim=1, keepdim=True)).reshape(v.shape)


class PeriodicParticles(FreeSpace):
    """P particles in the periodic box [0, box)^d: positions wrap, displacements are minimum
    images. The torus has finite volume box^(P·d), so nothing is removed (dim = P·d)."""

    kind = "periodic_particles"

    def __init__(self, n_particles: int, spatial_dim: int, box: float) -> None:
        if not box > 0:
            raise ValueError(f"the box side must be positive, got {box}")
        super().__init__((n_particles, spatial_dim))
        self.n_particles, self.spatial_dim, self.box = n_particles, spatial_dim, float(box)

    @property
    def measure(self) -> str:
        return (f"Lebesgue measure on the periodic box [0, {self.box:g})^{self.spatial_dim} for "
                f"each of {self.n_particles} particles (volume box^{self.dim})")

    def shift(self, x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        return torch.remainder(x + dx, self.box)

    def displacement(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        delta = x - y
        return delta - self.box * torch.round(delta / self.box)

    def log_normal(self, x: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        raise ValueError("a periodic box has no Gaussian of the space; its natural reference "
                         "is the uniform density, log p = -dim * log(box)")

    def describe(self) -> dict:
        return {**super().describe(), "box": self.box}
