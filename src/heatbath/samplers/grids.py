"""Time grids for samplers: increasing t from noise (t₀) to data (t_n = 1).

Grids are built here, once, for every sampler (k-diffusion style), instead of each sampler
carrying its own copy of the spacing logic.
"""

from __future__ import annotations

import torch

from heatbath.paths.schedules import Schedule

GRIDS = ("uniform", "karras", "logsnr", "quadratic")
_LEVEL_CAP = 1e3   # start noise level λ = σ/α for schedules whose λ(0) is infinite


def _level_range(schedule: Schedule, t_start: float):
    t = torch.tensor([t_start, 1.0], dtype=torch.float64)
    levels = schedule.noise_level(t)
    level_max = float(min(levels[0], _LEVEL_CAP)) if torch.isfinite(levels[0]) else _LEVEL_CAP
    level_min = float(getattr(schedule, "sigma_min", 0.0) or 0.0)
    if float(levels[1]) > 0:
        level_min = float(levels[1])
    if level_min <= 0:
        level_min = 2e-3   # EDM's σ_min for paths that reach σ = 0 exactly
    return level_max, level_min


def time_grid(schedule: Schedule, steps: int, kind: str = "uniform", rho: float = 7.0,
              t_start: float | None = None) -> torch.Tensor:
    """Increasing float64 grid of steps + 1 times ending at t = 1.

    uniform    equal steps in t;
    quadratic  equal steps in √(1 − t): finer toward the data end (`quadratic_times`);
    karras     EDM: λ_i^(1/ρ) equally spaced between λ_max and λ_min, then a final step to t = 1;
    logsnr     equal steps in log(α/σ) between the same bounds, then a final step to t = 1.
    Karras/logsnr grids start at t(λ_max), where λ_max is capped at 1e3 for paths whose
    noise level is infinite at t = 0 (their t₀ = 0 endpoint is then replaced by that time).
    """
    if steps < 1:
        raise ValueError(f"a sampler needs at least 1 step, got {steps}")
    t0 = 0.0 if t_start is None else float(t_start)
    if kind == "uniform":
        return torch.linspace(t0, 1.0, steps + 1, dtype=torch.float64)
    if kind == "quadratic":
        return quadratic_times(t0, 1.0, steps)
    if kind not in GRIDS:
        raise ValueError(f"unknown grid '{kind}'; choose one of {', '.join(GRIDS)}")
    level_max, level_min = _level_range(schedule, t0)
    reaches_data = float(schedule.noise_level(torch.tensor(1.0, dtype=torch.float64))) == 0.0
    inner = steps if reaches_data else steps + 1
    frac = torch.linspace(0, 1, inner, dtype=torch.float64)
    if kind == "karras":
        levels = (level_max ** (1 / rho) + frac * (level_min ** (1 / rho) - level_max ** (1 / rho))) ** rho
    else:
        levels = torch.exp(torch.log(torch.tensor(level_max)) * (1 - frac)
                           + torch.log(torch.tensor(level_min)) * frac)
    times = schedule.t_from_noise_level(levels)
    if reaches_data:
        times = torch.cat([times, torch.ones(1, dtype=torch.float64)])
    else:
        times[-1] = 1.0
    return times


def quadratic_times(t_start: float, t_end: float, steps: int) -> torch.Tensor:
    """steps + 1 increasing times from t_start to t_end whose distances to the data end,
    s = 1 − t, fall quadratically: s_i = s_end + (s_start − s_end)·(1 − i/steps)² — the
    "quadratic striding" of DDIM's few-step grids, for paths without a scalar noise level
    (phase space) as well as ordinary ones."""
    fractions = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    s_start, s_end = 1.0 - t_start, 1.0 - t_end
    times = 1.0 - (s_end + (s_start - s_end) * (1.0 - fractions) ** 2)
    times[0], times[-1] = t_start, t_end
    return times


def default_grid(schedule_name: str) -> str:
    """The grid the path registry pairs with a schedule: Karras spacing for σ-parametrised
    diffusion (EDM's recommendation), uniform t otherwise."""
    from heatbath.paths.registry import PATHS

    return next(kind.grid for kind in PATHS.values() if kind.schedule == schedule_name)
