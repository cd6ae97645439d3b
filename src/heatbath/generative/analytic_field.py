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


class GaussianPhaseField:
    """The optimal ε-predictor of a phase-space path for data x₀ ~ N(mean, diag(var)) on
    vectors: u_s = (x, v) is Gaussian per coordinate with mean Φ·(m, 0) and covariance
    C = Φ·diag(var, 0)·Φᵀ + K (K the hybrid-score-matching kernel's), so ∇log p = −C⁻¹(u − μ)
    and E[ε | u] = Lᵀ·C⁻¹·(u − μ) with K = L·Lᵀ. A `PhaseField` without a network."""

    prediction = "eps"
    net = None

    def __init__(self, path, mean: torch.Tensor, var: torch.Tensor) -> None:
        self.path = path
        self.mean = mean.to(torch.float64).reshape(1, -1)
        self.var = var.to(torch.float64).reshape(1, -1)

    def marginal(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ (B, 2, D), C (B, D, 2, 2)) of u at times t."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        c = self.path.coefficients(t)
        phi, kernel = c.phi[:, None], (c.chol @ c.chol.transpose(-1, -2))[:, None]
        column = phi[..., :, 0]                                    # (B, 1, 2)
        cov = kernel + self.var[..., None, None] * column[..., :, None] * column[..., None, :]
        mu = column.transpose(1, 2) * self.mean[:, None, :]        # (B, 2, D)
        return mu, cov

    def _whitened(self, u: torch.Tensor, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        t = t.expand(u.shape[0]) if t.dim() == 0 else t.reshape(-1)
        mu, cov = self.marginal(t)
        x, v = (part.to(torch.float64) for part in u.chunk(2, dim=1))
        centred = torch.stack([x - mu[:, 0], v - mu[:, 1]], -1)[..., None]   # (B, D, 2, 1)
        return t, centred, cov

    def eps(self, u: torch.Tensor, t):
        t, centred, cov = self._whitened(u, t)
        c = self.path.coefficients(t)
        eps = c.chol.transpose(-1, -2)[:, None] @ torch.linalg.solve(cov, centred)
        return torch.cat([eps[..., 0, 0], eps[..., 1, 0]], 1).to(u.dtype), c

    def velocity(self, u: torch.Tensor, t) -> torch.Tensor:
        eps, c = self.eps(u, t)
        return self.path.velocity(u, eps, c)

    def marginal_log_prob(self, u: torch.Tensor, t: float) -> torch.Tensor:
        """log p_t(u), the exact joint density of (x, v) at time t (nats)."""
        _, centred, cov = self._whitened(u, t)
        quad = (centred.transpose(-1, -2) @ torch.linalg.solve(cov, centred))[..., 0, 0]
        return -0.5 * (quad + torch.logdet(cov) + 2 * math.log(2 * math.pi)).sum(1)


def phase_sampler_output_law(field: GaussianPhaseField, settings) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of u = (x, v) that a phase-space sampler returns on this field,
    exactly: every step is affine in the state and in its Gaussian draws, so the output is
    b + J·u₀ + Σ_k K_k·ξ_k, read off by running the sampler from 0, from the unit vectors, and
    with one unit draw at a time; u₀ ~ N(0, Σ∞) per coordinate (`samplers.phase_start`)."""
    from heatbath.samplers import phase_sampler_grid

    dim = 2 * field.mean.shape[1]
    grid = phase_sampler_grid(field, settings)
    draws = 2 * (len(grid) - 1) if settings.stochastic else 0
    eye = torch.eye(dim, dtype=torch.float64)
    start = torch.cat([torch.zeros(1, dim, dtype=torch.float64), eye,
                       torch.zeros(draws * dim, dim, dtype=torch.float64)])
    probe_draw = torch.arange(draws).repeat_interleave(dim)

    def noise(k: int) -> torch.Tensor:
        out = torch.zeros_like(start)
        rows = 1 + dim + torch.nonzero(probe_draw == k).flatten()
        out[rows] = eye
        return out

    out = settings.sampler.phase_step(field, start, grid, noise, settings, None).x
    offset = out[0]
    jacobian, kicks = (out[1:1 + dim] - offset).T, (out[1 + dim:] - offset).T
    stationary = torch.block_diag(*[field.path.process.stationary] * (dim // 2))
    order = torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])  # pairs → x…, v…
    prior = torch.empty_like(stationary)
    prior[order[:, None], order[None, :]] = stationary
    return offset, jacobian @ prior @ jacobian.T + kicks @ kicks.T
