"""Configuration of an energy run (`heatbath fit --target SPEC --method NAME`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from heatbath.core.errors import UserError

METHODS = ("mcmc", "pt", "ais", "smc", "ti", "flow", "snf")
CONTINUOUS_KERNELS = ("rwm", "mala", "hmc", "baoab")
SPIN_KERNELS = ("metropolis", "heatbath", "wolff")
SCHEDULES = ("linear", "geometric", "sigmoid")


@dataclass
class TargetSection:
    spec: str = ""                   # NAME[:k=v,...] or path/to/file.py:NAME[:k=v,...]


@dataclass
class MethodSection:
    name: str = "ais"
    samples: int = 2000              # returned samples (particles; MCMC: chains × kept steps)
    chains: int = 64                 # mcmc / pt / ti: independent chains
    steps: int = 200                 # mcmc: steps per chain; ais/smc: annealing steps;
                                     # pt: rounds; ti: steps per temperature
    burn_in: int = 100               # mcmc / pt / ti: discarded steps (step size adapted here)
    thin: int = 1
    kernel: str = "auto"             # continuous: rwm|mala|hmc|baoab; spins: metropolis|heatbath|wolff
    step_size: float = 0.0           # 0: tuned on the target during a pilot run
    n_leapfrog: int = 5
    moves_per_step: int = 1          # kernel steps (spins: sweeps) per annealing step / round
    temperatures: int = 8            # pt: rungs; ti: β grid points
    beta_min: float = 0.05           # pt: lowest β of the geometric ladder
    schedule: str = "geometric"      # ais/smc β grid
    beta_start: float = 0.0          # ais/smc: start at this fraction of the target's β instead
                                     # of the base (chains equilibrated there by burn_in steps)
    base_scale: float = 0.0          # 0: from the target's exact samples if it has them, else 1
    replicas: int = 8                # smc: independent populations (for the standard error)
    ess_threshold: float = 0.5       # smc: resample when ESS < threshold·n
    seed: int = 0
    dtype: str = "float64"


@dataclass
class FlowSection:
    layers: int = 8
    hidden: int = 64
    bins: int = 8
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    objective: str = "reverse_kl"    # reverse_kl | forward_kl | both | fab
    training_samples: str = "exact"  # forward KL data: exact target samples, or "smc": particles
                                     # of an SMC run on the energy (resampled by weight)
    fab_steps: int = 8               # fab: AIS steps from q to p²/q in every AIS run
                                     # (moves: method.kernel, step_size, n_leapfrog)
    fab_buffer: int = 20000          # fab: replay-buffer capacity in samples (0: no buffer)
    fab_updates: int = 4             # fab with a buffer: gradient steps per AIS run
    snf_blocks: int = 4              # snf: stochastic blocks interleaved with flow layers
    langevin_steps: int = 1          # snf: Langevin steps per stochastic block
    langevin_step_size: float = 0.01


@dataclass
class EnergyRunConfig:
    target: TargetSection = field(default_factory=TargetSection)
    method: MethodSection = field(default_factory=MethodSection)
    flow: FlowSection = field(default_factory=FlowSection)


def validate(config: EnergyRunConfig, discrete: bool) -> None:
    m = config.method
    _choice(m.name, METHODS, "method")
    if discrete and m.name in ("flow", "snf"):
        raise UserError(f"--method {m.name} needs a continuous target; for spin lattices use "
                        f"mcmc, pt, ais, smc or ti")
    kernels = SPIN_KERNELS if discrete else CONTINUOUS_KERNELS
    if m.kernel != "auto":
        _choice(m.kernel, kernels, "method.kernel")
    _choice(m.schedule, SCHEDULES, "method.schedule")
    _choice(m.dtype, ("float32", "float64"), "method.dtype")
    _choice(config.flow.objective, ("reverse_kl", "forward_kl", "both", "fab"),
            "flow.objective")
    if config.flow.objective == "fab" and m.name == "snf":
        raise UserError("flow.objective=fab needs a tractable log q; use it with --method flow")
    _choice(config.flow.training_samples, ("exact", "smc"), "flow.training_samples")
    for key, value in (("method.samples", m.samples), ("method.chains", m.chains),
                       ("method.steps", m.steps), ("method.thin", m.thin),
                       ("method.temperatures", m.temperatures), ("method.replicas", m.replicas),
                       ("method.moves_per_step", m.moves_per_step),
                       ("flow.steps", config.flow.steps), ("flow.batch_size", config.flow.batch_size),
                       ("flow.fab_steps", config.flow.fab_steps),
                       ("flow.fab_updates", config.flow.fab_updates)):
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    f = config.flow
    for key, value in (("flow.layers", f.layers), ("flow.hidden", f.hidden), ("flow.bins", f.bins),
                       ("flow.snf_blocks", f.snf_blocks)):
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    if f.langevin_steps < 0:
        raise UserError(f"flow.langevin_steps must be >= 0, got {f.langevin_steps}")
    for key, value in (("flow.lr", f.lr), ("flow.langevin_step_size", f.langevin_step_size)):
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"{key} must be a positive number, got {value}")
    if not math.isfinite(m.step_size):
        raise UserError(f"method.step_size must be a finite number (0: tuned), got {m.step_size}")
    _check_method_sizes(m)
    if config.flow.fab_buffer < 0:
        raise UserError(f"flow.fab_buffer must be >= 0 (0: no buffer), got {config.flow.fab_buffer}")
    if m.burn_in < 0 or m.step_size < 0 or m.base_scale < 0:
        raise UserError("method.burn_in, method.step_size and method.base_scale must be >= 0")
    if not 0 <= m.beta_start < 1:
        raise UserError(f"method.beta_start must be in [0, 1), got {m.beta_start}")
    if not 0 < m.beta_min < 1:
        raise UserError(f"method.beta_min must be in (0, 1), got {m.beta_min}")
    if m.name == "smc" and m.replicas < 2:
        raise UserError("method.replicas must be at least 2 for SMC (it sets the error bar)")
    if m.name == "ti" and m.temperatures < 3:
        raise UserError("method.temperatures must be at least 3 for thermodynamic integration")


def _check_method_sizes(m: MethodSection) -> None:
    """Sizes below which a method has nothing to compute (or no error bar)."""
    if m.name in ("ais", "smc") and m.steps < 2:
        raise UserError(f"method.steps must be at least 2 for {m.name} (annealing steps), "
                        f"got {m.steps}")
    if m.name == "pt" and m.temperatures < 2:
        raise UserError(f"method.temperatures must be at least 2 for pt, got {m.temperatures}")
    if m.name == "ti" and m.chains < 2:
        raise UserError(f"method.chains must be at least 2 for ti (it sets the error bar), "
                        f"got {m.chains}")
    if not 0 < m.ess_threshold <= 1:
        raise UserError(f"method.ess_threshold must be in (0, 1], got {m.ess_threshold}")


def resolved_kernel(config: EnergyRunConfig, discrete: bool) -> str:
    if config.method.kernel != "auto":
        return config.method.kernel
    return "heatbath" if discrete else "hmc"


def _choice(value: str, choices, key: str) -> None:
    if value not in choices:
        raise UserError(f"unknown {key} '{value}'; choose one of {', '.join(choices)}")
