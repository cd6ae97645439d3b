"""The Monte-Carlo estimate of a noised Boltzmann density's score that iDEM regresses on.

On the variance-exploding path x_σ = x + σ·ε, the target p ∝ exp(−U) becomes the convolution
p_σ = p * N(0, σ²I), whose score is an expectation over the noise alone (Akhound-Sadegh et al.
2024, "denoising energy matching"):

    ∇ log p_σ(x) = E_ε[exp(−U(x + σε))·F(x + σε)] / E_ε[exp(−U(x + σε))],   F = −∇U.

With K draws ε_k the self-normalised average Σ_k w_k F(x + σε_k), w = softmax(−U), estimates
it from the energy alone: consistent as K grows, with an O(1/K) bias at finite K (a ratio of
averages). Each estimate costs K energy and force evaluations, which the target counts. On
particle spaces the draws ε_k live on the zero-centre-of-mass subspace, so the estimate does.

iDEM clips each estimate to a maximum norm (20 in its DW4 and LJ13 configurations): near
overlapping particles F is huge, and one such draw would otherwise dominate a training batch.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

EnergyAndForce = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def clip_norm(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Each row of v scaled down to Euclidean norm max_norm where it is longer (inf: none)."""
    if not math.isfinite(max_norm):
        return v
    norm = v.flatten(1).norm(dim=1).clamp_min(1e-30)
    factor = (max_norm / norm).clamp(max=1.0)
    return v * factor.reshape(-1, *([1] * (v.dim() - 1)))


def mc_score(energy_and_force: EnergyAndForce, x: torch.Tensor, sigma: torch.Tensor, k: int,
             noise: Callable[[tuple], torch.Tensor], max_norm: float = math.inf) -> torch.Tensor:
    """The K-draw estimate of ∇ log p_σ at each row of x (B, *event), σ per row (B,);
    `noise(shape)` draws N(0, I) on the space. Draws with a non-finite energy get no weight; a
    row whose draws all lack one gets a zero score (no information, no step)."""
    b, event = len(x), x.shape[1:]
    spread = sigma.to(x.dtype).reshape(1, b, *([1] * len(event)))
    moved = x.unsqueeze(0) + spread * noise((k, b, *event))
    energy, force = energy_and_force(moved.reshape(k * b, *event))
    energy, force = energy.reshape(k, b).to(x.dtype), force.reshape(k, b, *event).to(x.dtype)
    log_w = torch.where(torch.isfinite(energy), -energy, torch.full_like(energy, -math.inf))
    usable = torch.isfinite(log_w).any(dim=0)
    w = torch.softmax(torch.where(usable, log_w, torch.zeros_like(log_w)), dim=0)
    w = torch.where(torch.isfinite(log_w), w, torch.zeros_like(w))
    force = torch.where(torch.isfinite(force), force, torch.zeros_like(force))
    score = (w.reshape(k, b, *([1] * len(event))) * force).sum(dim=0)
    score = torch.where(usable.reshape(b, *([1] * len(event))), score, torch.zeros_like(score))
    return clip_norm(score, max_norm)
