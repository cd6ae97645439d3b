"""One Euler–Maruyama transition as a Gaussian kernel: its draw and its exact log density.

A step x' = m(x) + √v·ξ with ξ ~ N(0, I) is the kernel N(x'; m(x), v·I). The data half's
reverse-SDE sampler only draws from it; path-weighted samplers (the SNF's Langevin layers, the
transport samplers of `heatbath.transport`) also need its log density, for the ratio of a
backward to a forward kernel that makes their weights exact. Both live here, so a sampler's
draw and the density its weight assumes cannot drift apart.
"""

from __future__ import annotations

import math

import torch


def gaussian_step(mean: torch.Tensor, variance: float | torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
    """x' = mean + √variance · noise (variance a number or one per sample, broadcast)."""
    if isinstance(variance, torch.Tensor):
        return mean + variance.sqrt().reshape(-1, *[1] * (mean.dim() - 1)) * noise
    return mean + math.sqrt(variance) * noise


def gaussian_step_log_density(x_next: torch.Tensor, mean: torch.Tensor,
                              variance: float | torch.Tensor) -> torch.Tensor:
    """log N(x_next; mean, variance·I) per sample (N,), normalisation included."""
    dim = x_next[0].numel()
    squared = (x_next - mean).flatten(1).pow(2).sum(dim=1)
    variance = torch.as_tensor(variance, dtype=x_next.dtype, device=x_next.device)
    return -0.5 * squared / variance - 0.5 * dim * torch.log(2 * math.pi * variance)
