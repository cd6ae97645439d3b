"""Noise distributions z of a path x_t = α·x₁ + σ·z.

Gaussian noise gives diffusion / flow matching. PFGM++ (Xu et al. 2023) perturbs data with the
kernel p_r(x|y) ∝ (‖x − y‖² + r²)^(−(N+D)/2); with r = σ√D this is exactly x = y + σ·z where z is
a multivariate Student-t with D degrees of freedom and unit scale, independent of σ. So PFGM++ is
the EDM path with t-distributed noise, and D → ∞ recovers the Gaussian.
"""

from __future__ import annotations

import math

import torch


class GaussianNoise:
    """z ~ N(0, I)."""

    name = "gaussian"
    is_gaussian = True

    def sample(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype)

    def from_normal(self, normal: torch.Tensor, chi2: torch.Tensor | None = None) -> torch.Tensor:
        """Map standard normal draws to this noise (identity here); see StudentTNoise."""
        return normal

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1)
        return -0.5 * (flat ** 2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)

    def dim(self, z: torch.Tensor) -> int:
        """Dimension of the space the noise lives on (what a change of scale multiplies)."""
        return z[0].numel()

    def describe(self) -> dict:
        return {"name": self.name}


class SpaceGaussianNoise(GaussianNoise):
    """z ~ N(0, I) on a state space (`heatbath.spaces`), e.g. the zero-CoM subspace of particles:
    draws are projected onto it and log densities refer to its own (P−1)·d-dimensional measure."""

    def __init__(self, space) -> None:
        self.space = space

    def sample(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        return self.space.project(torch.randn(shape, generator=generator, dtype=dtype))

    def from_normal(self, normal: torch.Tensor, chi2: torch.Tensor | None = None) -> torch.Tensor:
        return self.space.project(normal)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.space.log_normal(z)

    def dim(self, z: torch.Tensor) -> int:
        return self.space.dim

    def describe(self) -> dict:
        return {"name": self.name, "space": self.space.describe()}


class ProjectedGaussianNoise(GaussianNoise):
    """z ~ N(0, P) for an orthogonal projection P per sample: standard normal on a linear
    subspace, exactly zero off it. The base of a data-dependent coupling lives there
    (`generative.corruptions`): an in-painting's missing pixels, or the images whose f×f
    block means vanish (super-resolution). Densities refer to each sample's own subspace,
    so `dim` is a (B,) tensor."""

    def __init__(self, project, dims: torch.Tensor) -> None:
        self.project, self.dims = project, dims

    def sample(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        return self.project(torch.randn(shape, generator=generator, dtype=dtype))

    def from_normal(self, normal: torch.Tensor, chi2: torch.Tensor | None = None) -> torch.Tensor:
        return self.project(normal)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        dims = self.dim(z)
        return -0.5 * (self.project(z).flatten(1) ** 2).sum(1) - 0.5 * dims * math.log(2 * math.pi)

    def dim(self, z: torch.Tensor) -> torch.Tensor:
        return self.dims.to(device=z.device, dtype=z.dtype)

    def describe(self) -> dict:
        return {"name": "projected_gaussian"}


class StudentTNoise:
    """Multivariate Student-t with `dof` = D degrees of freedom, unit scale (PFGM++ kernel)."""

    name = "pfgm"
    is_gaussian = False

    def __init__(self, dof: float) -> None:
        if not dof > 0:
            raise ValueError(f"PFGM++ augmentation dimension D must be > 0, got {dof}")
        self.dof = float(dof)

    def sample(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        normal = torch.randn(shape, generator=generator, dtype=torch.float64)
        gamma = torch._standard_gamma(torch.full((shape[0],), 0.5 * self.dof, dtype=torch.float64),
                                      generator=generator)
        return self.from_normal(normal, 2 * gamma).to(dtype)

    def from_normal(self, normal: torch.Tensor, chi2: torch.Tensor | None = None) -> torch.Tensor:
        """z = g·√(D/u) with g ~ N(0, I) and u ~ χ²_D (one u per sample)."""
        if chi2 is None:
            raise ValueError("Student-t noise needs a chi-square draw per sample")
        scale = torch.sqrt(self.dof / chi2).reshape(-1, *([1] * (normal.dim() - 1)))
        return normal * scale.to(normal.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1)
        n, nu = flat.shape[1], self.dof
        norm = (math.lgamma(0.5 * (nu + n)) - math.lgamma(0.5 * nu)
                - 0.5 * n * math.log(nu * math.pi))
        return norm - 0.5 * (nu + n) * torch.log1p((flat ** 2).sum(1) / nu)

    def dim(self, z: torch.Tensor) -> int:
        return z[0].numel()

    def describe(self) -> dict:
        return {"name": self.name, "D": self.dof}
