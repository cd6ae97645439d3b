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
