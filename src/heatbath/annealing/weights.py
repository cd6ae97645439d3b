"""Estimates from importance log-weights: log Z by log-mean-exp, and the Kish effective sample size.

Both use the delta method on i.i.d. weights. For log Ẑ = log mean(w):
Var(log Ẑ) ≈ Var(w) / (n·mean(w)²), i.e. stderr ≈ sqrt((n/ESS − 1)/n). This is reliable when the
weights are not heavy-tailed (ESS well above a handful); with a poor path it understates the
error, and the ESS says so.
"""

from __future__ import annotations

import math

import torch

from heatbath.estimate import Estimate


def log_mean_exp(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def kish_ess(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """(Σw)² / Σw², between 1 and n."""
    return torch.exp(2 * torch.logsumexp(log_w, dim=dim) - torch.logsumexp(2 * log_w, dim=dim))


def log_z_estimate(log_w: torch.Tensor, offset: float = 0.0,
                   energy_evals: int | None = None) -> Estimate:
    """log mean(w) + offset with its delta-method standard error."""
    lw = log_w.detach().to(torch.float64).reshape(-1)
    n = lw.shape[0]
    w = torch.exp(lw - lw.max())                      # scaled weights, max 1
    mean = w.mean()
    stderr = float(w.std() / (math.sqrt(n) * mean)) if n > 1 else math.inf
    value = float(torch.log(mean) + lw.max()) + offset
    return Estimate(value, stderr, n, energy_evals=energy_evals)


def ess_estimate(log_w: torch.Tensor) -> Estimate:
    """Kish ESS n·mean(w)²/mean(w²) with a delta-method standard error."""
    lw = log_w.detach().to(torch.float64).reshape(-1)
    n = lw.shape[0]
    w = torch.exp(lw - lw.max())
    a, b = w.mean(), (w * w).mean()
    value = float(n * a * a / b)
    if n < 2:
        return Estimate(value, math.inf, n)
    # Gradient of n·a²/b with respect to (a, b) and the sample covariance of (w, w²).
    grad = torch.stack([2 * n * a / b, -n * a * a / (b * b)])
    cov = torch.cov(torch.stack([w, w * w]))
    stderr = float(torch.sqrt((grad @ cov @ grad).clamp(min=0) / n))
    return Estimate(value, stderr, n)
