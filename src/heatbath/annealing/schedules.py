"""β grids for annealing: n_steps intervals, n_steps + 1 points, from `start` to `end` inclusive.

All grids are strictly monotone (increasing when end > start; annealing downward in β is allowed
too) and are returned in float64 so that weight increments (β_t − β_{t−1})·φ are exact to
rounding. Which grid is best depends on where log Z(β) curves most: geometric grids crowd points
near a small `start` (good from a broad base), sigmoid grids crowd both ends (Grosse et al. 2013).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch


def _check(n_steps: int, start: float, end: float) -> None:
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not (math.isfinite(start) and math.isfinite(end)) or start == end:
        raise ValueError(f"need finite start != end, got start={start}, end={end}")


def linear_betas(n_steps: int, start: float = 0.0, end: float = 1.0) -> torch.Tensor:
    """Equally spaced β."""
    _check(n_steps, start, end)
    return torch.linspace(start, end, n_steps + 1, dtype=torch.float64)


def geometric_betas(n_steps: int, start: float = 1e-3, end: float = 1.0,
                    prepend_zero: bool = False) -> torch.Tensor:
    """Equal *ratios* β_{t+1}/β_t between start > 0 and end > 0; optionally with β = 0 in front.

    With prepend_zero the grid has n_steps + 2 points: 0, start, …, end.
    """
    _check(n_steps, start, end)
    if start <= 0 or end <= 0:
        raise ValueError(f"geometric grids need start > 0 and end > 0, got {start}, {end}")
    grid = torch.logspace(math.log10(start), math.log10(end), n_steps + 1, dtype=torch.float64)
    grid[0], grid[-1] = start, end      # exact endpoints despite the log/exp round trip
    if prepend_zero:
        grid = torch.cat([torch.zeros(1, dtype=torch.float64), grid])
    return grid


def sigmoid_betas(n_steps: int, start: float = 0.0, end: float = 1.0,
                  steepness: float = 4.0) -> torch.Tensor:
    """σ(δ(2t/T − 1)) rescaled to [start, end]: dense near both ends (Grosse et al. 2013)."""
    _check(n_steps, start, end)
    if steepness <= 0:
        raise ValueError(f"steepness must be positive, got {steepness}")
    t = torch.linspace(-1.0, 1.0, n_steps + 1, dtype=torch.float64)
    s = torch.sigmoid(steepness * t)
    s = (s - s[0]) / (s[-1] - s[0])
    grid = start + (end - start) * s
    grid[0], grid[-1] = start, end
    return grid


def _geometric_from(n_steps: int, start: float) -> torch.Tensor:
    """Geometric from `start`; from β = 0, a geometric grid from 1e-3 with 0 prepended."""
    if start > 0:
        return geometric_betas(n_steps, start=start, end=1.0)
    return geometric_betas(n_steps - 1, start=GEOMETRIC_START, end=1.0, prepend_zero=True)


# A geometric grid from β = 0 has no smooth form (β jumps from 0 to its start); its continuous
# counterpart is the exponential curve with the same dynamic range, whose ratio per unit of
# time is constant (r = 1/GEOMETRIC_START).
GEOMETRIC_START = 1e-3
SIGMOID_STEEPNESS = 4.0


def _linear_curve(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return t, torch.ones_like(t)


def _exponential_curve(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_r = -math.log(GEOMETRIC_START)
    scale = math.expm1(log_r)
    return torch.expm1(t * log_r) / scale, log_r * torch.exp(t * log_r) / scale


def _sigmoid_curve(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = (torch.sigmoid(torch.tensor(-SIGMOID_STEEPNESS, dtype=torch.float64)),
              torch.sigmoid(torch.tensor(SIGMOID_STEEPNESS, dtype=torch.float64)))
    s = torch.sigmoid(SIGMOID_STEEPNESS * (2.0 * t - 1.0))
    return (s - lo) / (hi - lo), 2.0 * SIGMOID_STEEPNESS * s * (1.0 - s) / (hi - lo)


@dataclass(frozen=True)
class BetaSchedule:
    """A `method.schedule`: `grid(n_steps, start)` gives AIS/SMC's n_steps + 1 points from start
    to 1; `curve(t)` gives (β(t), dβ/dt) for t ∈ [0, 1] with β(0) = 0, β(1) = 1, smooth, for
    samplers whose drift is a function of continuous time (`heatbath.transport`)."""

    name: str
    grid: Callable[[int, float], torch.Tensor]
    curve: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


BETA_SCHEDULES = {s.name: s for s in (
    BetaSchedule("linear", lambda n_steps, start: linear_betas(n_steps, start=start),
                 _linear_curve),
    BetaSchedule("geometric", _geometric_from, _exponential_curve),
    BetaSchedule("sigmoid", lambda n_steps, start: sigmoid_betas(n_steps, start=start,
                                                                 steepness=SIGMOID_STEEPNESS),
                 _sigmoid_curve),
)}
