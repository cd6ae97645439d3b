"""Exact fields for Gaussian data: the optimal denoiser, the exact ODE flow and the marginals.

For data x₁ ~ N(μ, Σ) and Gaussian noise, x_t ~ N(α·μ, α²Σ + σ²I) and
  E[x₁ | x_t] = μ + α·Σ·(α²Σ + σ²I)⁻¹(x − αμ),   E[z | x_t] = σ·(α²Σ + σ²I)⁻¹(x − αμ).
In Σ's eigenbasis each coordinate of x − αμ is scaled by √(α²s + σ²) along the probability-flow
ODE, which gives its exact solution. Tests drive samplers and likelihoods with these.
"""

from __future__ import annotations

import math

import torch

from heatbath.paths.path import Path


class GaussianDataField:
    """The Field (duck-typed: `path`, `prediction`, `predict`, `velocity`) of the optimal model
    for N(μ, Σ). Its formulas are regular at both ends, like a velocity prediction."""

    prediction = "velocity"

    def __init__(self, path: Path, mean: torch.Tensor, cov: torch.Tensor) -> None:
        if not path.noise.is_gaussian:
            raise ValueError("the analytic Gaussian denoiser needs Gaussian path noise")
        self.path = path
        self.mean = mean.to(torch.float64)
        self.cov = cov.to(torch.float64)
        self.eigvals, self.eigvecs = torch.linalg.eigh(self.cov)

    def _coefficients(self, t, x):
        t = torch.as_tensor(t, dtype=torch.float64)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t.reshape(-1)
        return self.path.coefficients(t, x)

    def _whitened(self, x, c):
        """Eigen-coordinates of x − αμ, and the per-coordinate variance α²s + σ²."""
        y = (x.to(torch.float64) - c.alpha * self.mean) @ self.eigvecs
        var = c.alpha ** 2 * self.eigvals + c.sigma ** 2
        return y, var

    def predict(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._coefficients(t, x)
        y, var = self._whitened(x, c)
        x1 = self.mean + (c.alpha * self.eigvals * y / var) @ self.eigvecs.T
        z = (c.sigma * y / var) @ self.eigvecs.T
        return x1.to(x.dtype), z.to(x.dtype)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        c = self._coefficients(t, x)
        x1, z = self.predict(x, t)
        return (c.d_alpha * x1 + c.d_sigma * z).to(x.dtype)

    def flow_map(self, x: torch.Tensor, t_from: float, t_to: float) -> torch.Tensor:
        """Exact solution of the probability-flow ODE from t_from to t_to."""
        c0 = self._coefficients(t_from, x)
        c1 = self._coefficients(t_to, x)
        y, var0 = self._whitened(x, c0)
        var1 = c1.alpha ** 2 * self.eigvals + c1.sigma ** 2
        return (c1.alpha * self.mean + (y * torch.sqrt(var1 / var0)) @ self.eigvecs.T).to(x.dtype)

    def marginal_log_prob(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """log N(x; αμ, α²Σ + σ²I) — the exact density of x_t."""
        c = self._coefficients(t, x)
        y, var = self._whitened(x, c)
        d = x.shape[1]
        return -0.5 * ((y ** 2 / var).sum(1) + torch.log(var).sum(1) + d * math.log(2 * math.pi))


def sampler_output_law(field: GaussianDataField, settings) -> torch.distributions.MultivariateNormal:
    """The exact law of a deterministic sampler's output on this field: every sampler step is
    affine in x here (the field is), so the whole map is x ↦ b + Jx, read off the sampler at 0
    and at the unit vectors, and it pushes the starting law N(α·mean, (σ² + α²σ_data²)I) of
    `samplers.initial_noise` forward to N(b + Jα·mean, (σ² + α²σ_data²)JJᵀ). An independent
    check of `samplers.returned`, which differentiates the sampler instead."""
    from heatbath.samplers import end_time, finish, run_sampler, sampler_grid

    dim = field.mean.shape[0]
    grid = sampler_grid(field, settings)
    points = torch.cat([torch.zeros(1, dim), torch.eye(dim)]).to(torch.float64)
    no_noise = lambda step: torch.zeros_like(points)   # noqa: E731 (churn 0 still draws)
    result = run_sampler(field, points, settings, grid, no_noise)
    images = finish(field, result.x, end_time(field, settings, grid))[0]
    offset, jacobian = images[0], (images[1:] - images[0]).T
    t0 = torch.tensor(float(grid[0]), dtype=torch.float64)
    alpha, sigma = float(field.path.schedule.alpha(t0)), float(field.path.schedule.sigma(t0))
    centre = torch.zeros(dim, dtype=torch.float64)
    if field.path.data_mean is not None:
        centre = alpha * field.path.data_mean.to(torch.float64).reshape(dim)
    scale2 = sigma ** 2 + (alpha * field.path.sigma_data) ** 2
    return torch.distributions.MultivariateNormal(offset + jacobian @ centre,
                                                  scale2 * jacobian @ jacobian.T)
