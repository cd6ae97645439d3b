"""The sampler registry: every `--sampler` name is interpreted here and nowhere else.

A `Sampler` record says how to run an integrator on a grid, how many field evaluations one grid
step costs, whether it injects noise (and so needs a Gaussian path), and whether it chooses its
own steps. The driver, config validation, the CLI and the contract tests all read these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from heatbath.samplers.ode import adaptive, dpm_solver_2m, euler, heun
from heatbath.samplers.stochastic import ddim, ddpm, euler_maruyama


@dataclass(frozen=True)
class Sampler:
    """One integrator of the reverse process.

    `step` is called as step(field, x, grid, noise, settings) -> SamplerResult. `evals_per_step`
    is the network evaluations one grid step costs (Heun's last step to σ = 0 costs one).
    `stochastic(settings)` says whether this run injects noise; `adaptive` samplers pick their
    own steps between the grid's ends (then NFE is what the solver spent, not a budget).
    """

    name: str
    step: Callable
    order: str
    evals_per_step: int
    stochastic: Callable[[object], bool]
    adaptive: bool
    summary: str


def _never(settings) -> bool:
    return False


def _always(settings) -> bool:
    return True


def _adaptive_step(field, x, grid, noise, settings):
    from heatbath.samplers.common import safe_time_range

    end = safe_time_range(field.path, field.prediction)[1]
    return adaptive(field, x, float(grid[0]), end, settings.rtol, settings.atol)


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (
    Sampler("euler", lambda f, x, g, noise, s: euler(f, x, g), "1", 1, _never, False,
            "Euler on the probability-flow ODE"),
    Sampler("heun", lambda f, x, g, noise, s: heun(f, x, g), "2", 2, _never, False,
            "EDM's Heun (Algorithm 1); last step to σ = 0 is Euler"),
    Sampler("dpm++2m", lambda f, x, g, noise, s: dpm_solver_2m(f, x, g), "2", 1, _never, False,
            "DPM-Solver++(2M), data prediction, multistep"),
    Sampler("ddim", lambda f, x, g, noise, s: ddim(f, x, g, noise, eta=s.eta), "1", 1,
            lambda s: s.eta > 0, False, "DDIM, --eta from 0 (deterministic) to 1"),
    Sampler("ddpm", lambda f, x, g, noise, s: ddpm(f, x, g, noise), "1", 1, _always, False,
            "ancestral sampling (DDIM with η = 1)"),
    Sampler("euler-maruyama", lambda f, x, g, noise, s: euler_maruyama(f, x, g, noise,
                                                                       churn=s.churn),
            "1/2 (strong)", 1, _always, False,   # needs a Gaussian path even at churn 0
            "reverse SDE with diffusion --churn × the forward process's (0 = ODE)"),
    Sampler("dopri5", _adaptive_step, "5 (adaptive)", 0, _never, True,
            "torchdiffeq, tolerances sample.rtol / sample.atol"),
)}
