"""State spaces: where the configurations of a target live, and the measure densities refer to.

Every density heatbath reports (log q, log p0, log Z) is with respect to the Lebesgue measure of
the target's *state space*, which need not be the whole of R^event_shape:

* `FreeSpace(shape)`: all of R^shape (Gaussians, mixtures, double wells, φ⁴ fields).
* `CentredParticles(P, d)`: P particles in d dimensions with zero centre of mass, the
  (P−1)·d-dimensional subspace of R^(P×d) on which a translation-invariant energy is
  normalisable (on the full space Z = ∞). Its measure is the one induced by the Euclidean
  metric of R^(P×d): orthonormal coordinates on the subspace (`to_chart`).
* `PeriodicParticles(P, d, box)`: P particles in a periodic box [0, box)^d (a torus: finite
  volume, so nothing is removed); positions wrap, displacements take the minimum image.

The seam follows jax-md's `space` module: code that moves particles asks the space to `shift`
them and to measure `displacement`s, and code that draws noise or evaluates a Gaussian asks it
for `randn` and `log_normal`, instead of assuming flat R^n. `to_chart` / `from_chart` are
an isometry onto R^dim, so a method written for flat vectors (a coupling flow, AIS from a
Gaussian base, every MCMC kernel) runs on the space unchanged and its densities are densities
on the space.
"""

from __future__ import annotations

import math

import torch


class FreeSpace:
    """R^event_shape with its Lebesgue measure; the chart only flattens."""

    kind = "free"
    sites: int | None = None     # lattice sites, where per-site quantities make sense

    def __init__(self, event_shape: tuple[int, ...]) -> None:
        self.event_shape = tuple(int(n) for n in event_shape)
        self.dim = math.prod(self.event_shape)           # intrinsic dimension

    @property
    def measure(self) -> str:
        return f"Lebesgue measure on R^{self.dim}"

    @property
    def reduced(self) -> bool:
        """True when the chart removes directions (the space is a proper subspace)."""
        return self.dim != math.prod(self.event_shape)

    # -- the chart: an isometry between the space and R^dim ------------------------------
    def to_chart(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.dim)

    def from_chart(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], *self.event_shape)

    # -- moving and measuring ------------------------------------------------------------
    def project(self, v: torch.Tensor) -> torch.Tensor:
        """The orthogonal projection of (N, *event_shape) vectors onto the space's tangent."""
        return v

    def shift(self, x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """x moved by the tangent vector dx (wrapped back into a periodic box)."""
        return x + dx

    def displacement(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x − y (the minimum image in a periodic box)."""
        return x - y

    # -- the standard Gaussian of the space -----------------------------------------------
    def randn(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32,
              device: torch.device | str = "cpu") -> torch.Tensor:
        """n draws of N(0, I) on the space (its tangent directions), shape (n, *event_shape)."""
        noise = torch.randn((n, *self.event_shape), generator=generator, dtype=dtype)
        return self.project(noise.to(device))

    def log_normal(self, x: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        """log N(x; 0, scale²·I) on the space, w.r.t. its measure, for x on the space: (N,)."""
        squared = self.to_chart(x).pow(2).sum(dim=1)
        scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
        return (-0.5 * squared / scale ** 2
                - self.dim * (torch.log(scale) + 0.5 * math.log(2 * math.pi)))

    def describe(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "measure": self.measure}
