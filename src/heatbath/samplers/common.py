"""Shared pieces of the samplers: the result type, noise sources and the safe time range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core import rng

NoiseSource = Callable[[int], torch.Tensor]   # step index -> standard normal like x

LEVEL_AT_NOISE = 1e3   # start here (σ/α) when the parametrisation is singular at α = 0
LEVEL_AT_DATA = 2e-3   # stop here (EDM's σ_min) when it is singular at σ = 0


@dataclass(frozen=True)
class SamplerResult:
    x: torch.Tensor
    nfe: int
    log_q: torch.Tensor | None = None   # float64 nats, see samplers.returned


def per_sample_noise(seed: int, ids: torch.Tensor, like: torch.Tensor) -> NoiseSource:
    """Noise for step k keyed by (seed, k + 1, sample id): independent of batching."""
    return lambda step: rng.normal(seed, ids, step + 1, tuple(like.shape[1:]),
                                   like.dtype).to(like.device)


def safe_time_range(path, prediction: str) -> tuple[float, float]:
    """[t_lo, t_hi] inside which the field's parametrisation has no 0/0.

    ε and EDM predictions divide by α (singular at pure noise when α(0) = 0); x₁ and EDM
    predictions divide by σ (singular at the data when σ(1) = 0). Velocity and v are regular,
    except on schedules whose σ' is infinite at the data (the interpolant's γ(t) = √(t(1−t))).
    """
    if path.is_phase_space:
        return path.time_range
    schedule = path.schedule
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    alpha0 = float(schedule.alpha(ends)[0])
    sigma1 = float(schedule.sigma(ends)[1])
    t_lo, t_hi = 0.0, 1.0
    if alpha0 == 0.0 and prediction in ("eps", "edm"):
        t_lo = float(schedule.t_from_noise_level(torch.tensor(LEVEL_AT_NOISE)))
    steep_end = not bool(torch.isfinite(schedule.d_sigma(ends[1:])).all())   # interpolant σ' → ∞
    if sigma1 == 0.0 and (prediction in ("x1", "edm") or steep_end):
        t_hi = float(schedule.t_from_noise_level(torch.tensor(LEVEL_AT_DATA)))
    return t_lo, t_hi


def sigma_at(field, t: float) -> float:
    """σ(t); a phase-space state is noisy everywhere on its time range (its σ is a matrix):
    reported as 1, so no sampler treats a step as landing on clean data."""
    if field.path.is_phase_space:
        return 1.0
    return float(field.path.schedule.sigma(torch.tensor(t, dtype=torch.float64)))


def alpha_at(field, t: float) -> float:
    return float(field.path.schedule.alpha(torch.tensor(t, dtype=torch.float64)))
