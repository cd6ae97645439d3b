"""Samplers: stateless integrators of the reverse process, and the driver that runs them.

`draw_samples` builds the grid, draws per-sample starting noise, runs one sampler in batches and
returns the samples with the exact number of field evaluations (NFE) per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core import rng
from heatbath.samplers.common import SamplerResult, per_sample_noise, safe_time_range, sigma_at
from heatbath.samplers.grids import default_grid, time_grid
from heatbath.samplers.phase_space import phase_grid, phase_start
from heatbath.samplers.ode import adaptive, conjugate, dpm_solver_2m, euler, heun
from heatbath.samplers.registry import SAMPLERS, Sampler, phase_samplers
from heatbath.samplers.returned import DENSITY_MEANING, returned_log_q
from heatbath.samplers.stochastic import ddim, ddpm, euler_maruyama


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample: which integrator, how many evaluations, which grid, and its knobs."""

    name: str = "heun"
    nfe: int = 35
    grid: str | None = None        # None: the path's default (karras for σ-paths, else uniform)
    eta: float = 0.0               # DDIM stochasticity
    churn: float = 1.0             # Euler–Maruyama diffusion scale (0 = ODE)
    conjugate_lambda: float = 0.0  # λ of the conjugate sampler (λ-DDIM; 0 = DDIM)
    rtol: float = 1e-5             # dopri5 tolerances
    atol: float = 1e-5

    def validate(self) -> None:
        """ValueError naming the bad setting (the CLI shows it as one line)."""
        if self.name not in SAMPLERS:
            raise ValueError(f"unknown sampler '{self.name}'; choose one of {', '.join(SAMPLERS)}")
        if self.nfe < 1:
            raise ValueError(f"--nfe must be at least 1, got {self.nfe}")
        if not 0.0 <= self.eta <= 1.0:      # also refuses NaN
            raise ValueError(f"--eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM), "
                             f"got {self.eta}")
        if not 0.0 <= self.churn < math.inf:
            raise ValueError(f"--churn must be a finite number >= 0 (0: the ODE), "
                             f"got {self.churn}")
        if not math.isfinite(self.conjugate_lambda):
            raise ValueError(f"--conjugate-lambda must be a finite number, got "
                             f"{self.conjugate_lambda}")
        for key, value in (("rtol", self.rtol), ("atol", self.atol)):
            if not 0.0 < value < math.inf:
                raise ValueError(f"sample.{key} must be a positive number, got {value}")

    @property
    def sampler(self) -> Sampler:
        return SAMPLERS[self.name]

    @property
    def stochastic(self) -> bool:
        """True when this run injects Gaussian noise (needs a Gaussian path)."""
        return self.sampler.stochastic(self)


def steps_for_nfe(settings: SamplerSettings, reaches_zero: bool) -> int:
    """Number of grid steps that spends about `nfe` evaluations (adaptive: the grid's ends only
    matter, so the budget is ignored)."""
    per_step = settings.sampler.evals_per_step
    if per_step == 2:   # Heun: the last step to σ = 0 is a single Euler evaluation
        return max(1, (settings.nfe + 1) // 2 if reaches_zero else settings.nfe // 2)
    return settings.nfe


def initial_noise(path, t_start: float, ids: torch.Tensor, event_shape, seed: int,
                  dtype: torch.dtype) -> torch.Tensor:
    """x at the first grid time: α·mean + σ·z, widened by the remaining signal α·σ_data."""
    normal = rng.normal(seed, ids, 0, tuple(event_shape), dtype)
    t = torch.tensor(t_start, dtype=torch.float64)
    alpha, sigma = float(path.schedule.alpha(t)), float(path.schedule.sigma(t))
    centre = 0.0 if path.data_mean is None else alpha * path.data_mean.to("cpu", dtype)
    if path.noise.is_gaussian:   # from_normal: onto the noise's space (zero-CoM particles)
        return centre + path.noise.from_normal(normal) * (sigma ** 2 + (alpha * path.sigma_data)
                                                          ** 2) ** 0.5
    chi2 = rng.chi_square(seed, ids, 0, path.noise.dof)
    return centre + sigma * path.noise.from_normal(normal, chi2)


def sampler_grid(field, settings: SamplerSettings) -> torch.Tensor:
    t_lo, _ = safe_time_range(field.path, field.prediction)
    reaches_zero = sigma_at(field, 1.0) == 0.0
    kind = settings.grid or default_grid(field.path.schedule.name)
    if settings.sampler.needs_signal and kind == "uniform" and t_lo == 0.0:
        kind = "karras"   # EM's diffusion and the conjugate variable x/α are infinite at α = 0
    steps = steps_for_nfe(settings, reaches_zero)
    return time_grid(field.path.schedule, steps, kind, t_start=t_lo if t_lo > 0 else None)


def phase_sampler_grid(field, settings: SamplerSettings) -> torch.Tensor:
    """`sampler_grid` for phase-space paths: settings.grid (quadratic when unset), one
    network evaluation per step."""
    return phase_grid(field.path, steps_for_nfe(settings, reaches_zero=False), settings.grid)


def run_sampler(field, x: torch.Tensor, settings: SamplerSettings, grid: torch.Tensor,
                noise, trace: list | None = None) -> SamplerResult:
    return settings.sampler.step(field, x, grid, noise, settings, trace)


def end_time(field, settings: SamplerSettings, grid: torch.Tensor) -> float:
    """Where a sampler stops: the grid's end, or for an adaptive one the last regular time."""
    if settings.sampler.adaptive:
        return safe_time_range(field.path, field.prediction)[1]
    return float(grid[-1])


def finish(field, x: torch.Tensor, end_time: float) -> tuple[torch.Tensor, int]:
    """Denoise once more when the sampler stopped short of clean data (VE σ_min, or t_hi < 1)."""
    if end_time >= 1.0 and sigma_at(field, 1.0) == 0.0:
        return x, 0
    data, _ = field.predict(x, end_time)
    return float(field.path.schedule.alpha(torch.tensor(1.0, dtype=torch.float64))) * data, 1


def _noise_on_space(field, seed: int, ids: torch.Tensor, x: torch.Tensor):
    """Per-sample step noise, put on the noise's space (zero-CoM particles) where it has one."""
    raw = per_sample_noise(seed, ids, x)
    if not field.path.noise.is_gaussian:
        return raw
    return lambda step: field.path.noise.from_normal(raw(step))


def draw_samples(field, n: int, event_shape, settings: SamplerSettings, *, seed: int = 0,
                 batch_size: int = 1000, first_index: int = 0, dtype=torch.float32,
                 device: str | torch.device = "cpu",
                 progress: Callable[[int], None] | None = None,
                 with_log_q: bool = False) -> SamplerResult:
    """n samples on `device` (where the field's network lives); sample i depends only on
    (seed, first_index + i), never on the batching (noise is drawn on the CPU, then moved).

    with_log_q adds the density of what was returned (`returned.py`: exact for deterministic
    samplers, a path log-weight for stochastic ones; `Sampler.density` says which); the
    samples are the same as without it. Adaptive samplers have no such density here (their
    ODE density is `likelihood.log_likelihood`'s)."""
    settings.validate()
    if field.path.is_phase_space:
        if with_log_q:
            raise ValueError(PHASE_DENSITY_REFUSAL)
        return draw_phase_samples(field, n, event_shape, settings, seed=seed,
                                  batch_size=batch_size, first_index=first_index, dtype=dtype,
                                  device=device, progress=progress)
    kind = settings.sampler.density(settings)
    if with_log_q and kind == "ode":
        raise ValueError(f"the {settings.name} sampler's density is the ODE's: use "
                         f"likelihood.log_likelihood")
    grid = sampler_grid(field, settings)
    t_end = end_time(field, settings, grid)
    outputs, log_qs, nfe = [], [], 0
    for start in range(0, n, batch_size):
        ids = torch.arange(first_index + start, first_index + min(n, start + batch_size))
        x = initial_noise(field.path, float(grid[0]), ids, event_shape, seed, dtype).to(device)
        noise = _noise_on_space(field, seed, ids, x)

        def run(x0, trace=None):
            result = run_sampler(field, x0, settings, grid, noise, trace)
            x, extra = finish(field, result.x, t_end)
            return x, result.nfe + extra

        if with_log_q:
            x, log_q, used = returned_log_q(field, run, x, grid, noise, kind)
            log_qs.append(log_q)
        else:
            with torch.no_grad():
                x, used = run(x)
        outputs.append(x)
        nfe = max(nfe, used)
        if progress is not None:
            progress(len(ids))
    log_q = torch.cat(log_qs) if with_log_q else None
    return SamplerResult(torch.cat(outputs), nfe, log_q)


PHASE_DENSITY_REFUSAL = (
    "a phase-space model returns x of a sampled (x, v): its density is a marginal over v that "
    "no sampler gives exactly; heatbath estimate reports the likelihood bound instead")


def draw_phase_samples(field, n: int, event_shape, settings: SamplerSettings, *, seed: int = 0,
                       batch_size: int = 1000, first_index: int = 0, dtype=torch.float32,
                       device: str | torch.device = "cpu",
                       progress: Callable[[int], None] | None = None) -> SamplerResult:
    """`draw_samples` on a phase-space path: u = (x, v) from the stationary law at t = 0,
    integrated to the data end by the sampler's phase-space step; x is returned."""
    step = settings.sampler.phase_step
    if step is None:
        raise ValueError(f"the {settings.name} sampler needs an ordinary path's denoiser; on "
                         f"phase-space paths use {phase_samplers()}")
    grid = phase_sampler_grid(field, settings)
    outputs, nfe = [], 0
    for start in range(0, n, batch_size):
        ids = torch.arange(first_index + start, first_index + min(n, start + batch_size))
        u = phase_start(field.path, ids, event_shape, seed, dtype).to(device)
        with torch.no_grad():
            result = step(field, u, grid, per_sample_noise(seed, ids, u), settings, None)
        outputs.append(field.path.data_of(result.x))
        nfe = max(nfe, result.nfe)
        if progress is not None:
            progress(len(ids))
    return SamplerResult(torch.cat(outputs), nfe)


__all__ = ["SAMPLERS", "Sampler", "SamplerSettings", "SamplerResult", "draw_samples",
           "DENSITY_MEANING", "time_grid",
           "euler", "heun", "dpm_solver_2m", "conjugate", "ddim", "ddpm", "euler_maruyama", "adaptive"]
