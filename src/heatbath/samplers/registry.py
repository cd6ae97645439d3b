"""The sampler registry: every `--sampler` name is interpreted here and nowhere else.

A `Sampler` record says how to run an integrator on a grid, how many field evaluations one grid
step costs, whether it injects noise (and so needs a Gaussian path), and whether it chooses its
own steps. The driver, config validation, the CLI and the contract tests all read these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from heatbath.samplers.ode import adaptive, conjugate, dpm_solver_2m, euler, heun
from heatbath.samplers.phase_space import exponential_sde, phase_conjugate, splitting
from heatbath.samplers.stochastic import ddim, ddpm, euler_maruyama


@dataclass(frozen=True)
class Sampler:
    """One integrator of the reverse process.

    `step` is called as step(field, x, grid, noise, settings, trace) -> SamplerResult; `trace`
    (None, or a list for stochastic samplers) collects each step's state and noise scale, see
    `samplers.stochastic`. `evals_per_step`
    is the network evaluations one grid step costs (Heun's last step to σ = 0 costs one).
    `stochastic(settings)` says whether this run injects noise; `adaptive` samplers pick their
    own steps between the grid's ends (then NFE is what the solver spent, not a budget).
    `density(settings)` says what `--log-q` can give for this run's samples: "map" (the exact
    density of a deterministic map's output), "path" (a path log-weight against the forward
    process) or "ode" (the probability-flow ODE's density, to the adaptive solver's tolerance).
    """

    name: str
    step: Callable
    order: str
    evals_per_step: int
    stochastic: Callable[[object], bool]
    adaptive: bool
    density: Callable[[object], str]
    summary: str
    needs_signal: bool = False   # divides by α: its grid must start where α > 0 (not uniform)
    # on phase-space paths (cld, psld): step(field, u, grid, noise, settings, trace), or None
    # where the sampler needs an ordinary path's (x̂₁, ẑ)
    phase_step: Callable | None = None
    phase_only: bool = False     # integrates phase-space paths only (no ordinary `step`)


def _never(settings) -> bool:
    return False


def _always(settings) -> bool:
    return True


def _adaptive_step(field, x, grid, noise, settings, trace=None):
    from heatbath.samplers.common import safe_time_range

    end = safe_time_range(field.path, field.prediction)[1]
    return adaptive(field, x, float(grid[0]), end, settings.rtol, settings.atol)


def _euler(field, x, grid, noise, settings, trace=None):
    return euler(field, x, grid)


def _heun(field, x, grid, noise, settings, trace=None):
    return heun(field, x, grid)


def _dpm_solver_2m(field, x, grid, noise, settings, trace=None):
    return dpm_solver_2m(field, x, grid)


def _conjugate(field, x, grid, noise, settings, trace=None):
    return conjugate(field, x, grid, lam=settings.conjugate_lambda)


def _ddim(field, x, grid, noise, settings, trace=None):
    return ddim(field, x, grid, noise, eta=settings.eta, trace=trace)


def _ddpm(field, x, grid, noise, settings, trace=None):
    return ddpm(field, x, grid, noise, trace=trace)


def _euler_maruyama(field, x, grid, noise, settings, trace=None):
    return euler_maruyama(field, x, grid, noise, churn=settings.churn, trace=trace)


def _phase_conjugate(field, u, grid, noise, settings, trace=None):
    return phase_conjugate(field, u, grid, lam=settings.conjugate_lambda)


def _splitting(field, u, grid, noise, settings, trace=None):
    return splitting(field, u, grid, noise)


def _exponential_sde(field, u, grid, noise, settings, trace=None):
    return exponential_sde(field, u, grid, noise, churn=settings.churn)


def _phase_only(field, x, grid, noise, settings, trace=None):
    raise ValueError(f"the {', '.join(n for n, s in SAMPLERS.items() if s.phase_only)} "
                     f"samplers integrate phase-space paths; use path.name=cld or psld, or "
                     f"another sampler")


def phase_samplers() -> str:
    """The samplers that integrate phase-space paths, for error messages."""
    return ", ".join(name for name, s in SAMPLERS.items() if s.phase_step is not None)


def _map(settings) -> str:
    return "map"


def _map_unless(flag: Callable[[object], bool]) -> Callable[[object], str]:
    return lambda settings: "path" if flag(settings) else "map"


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (
    Sampler("euler", _euler, "1", 1, _never, False, _map,
            "Euler on the probability-flow ODE", phase_step=_euler),
    Sampler("heun", _heun, "2", 2, _never, False, _map,
            "EDM's Heun (Algorithm 1); last step to σ = 0 is Euler", phase_step=_heun),
    Sampler("dpm++2m", _dpm_solver_2m, "2", 1, _never, False, _map,
            "DPM-Solver++(2M), data prediction, multistep"),
    Sampler("conjugate", _conjugate, "1", 1, _never, False, _map,
            "λ-DDIM conjugate integrator (Pandey et al. 2024), --conjugate-lambda λ (0 = DDIM); "
            "on cld/psld the exponential integrator with the same λ",
            needs_signal=True, phase_step=_phase_conjugate),
    Sampler("splitting", _phase_only, "1 (weak)", 1, _always, False, lambda s: "path",
            "cld/psld only: symmetric splitting of the reverse SDE (SSCS), exact OU half-steps",
            phase_step=_splitting, phase_only=True),
    Sampler("exponential-sde", _phase_only, "2 (weak, multistep)", 1, lambda s: s.churn > 0,
            False, _map_unless(lambda s: s.churn > 0),
            "cld/psld only: reverse SDE by an exponential integrator around the Gaussian model, "
            "noise exact, network residual extrapolated linearly (2M); --churn scales the "
            "squared diffusion (0 = the probability-flow ODE)",
            phase_step=_exponential_sde, phase_only=True),
    Sampler("ddim", _ddim, "1", 1, lambda s: s.eta > 0, False,
            _map_unless(lambda s: s.eta > 0), "DDIM, --eta from 0 (deterministic) to 1"),
    Sampler("ddpm", _ddpm, "1", 1, _always, False, lambda s: "path",
            "ancestral sampling (DDIM with η = 1)"),
    # Euler–Maruyama needs a Gaussian path even at churn 0 (stochastic), where its map is an ODE
    # scheme's (density "map").
    Sampler("euler-maruyama", _euler_maruyama, "1/2 (strong)", 1, _always, False,
            _map_unless(lambda s: s.churn > 0),
            "reverse SDE with diffusion --churn × the forward process's (0 = ODE)",
            needs_signal=True),
    Sampler("dopri5", _adaptive_step, "5 (adaptive)", 0, _never, True, lambda s: "ode",
            "torchdiffeq, tolerances sample.rtol / sample.atol", phase_step=_adaptive_step),
)}
