"""Configuration of an energy run (`heatbath fit --target SPEC --method NAME`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from heatbath.core.settings import (AT_LEAST_1, FRACTION_OPEN, NON_NEGATIVE, POSITIVE, Bounds,
                                    setting)



@dataclass
class TargetSection:
    spec: str = ""                   # NAME[:k=v,...] or path/to/file.py:NAME[:k=v,...]


@dataclass
class MethodSection:
    name: str = "ais"
    samples: int = setting(2000, AT_LEAST_1)             # returned samples (particles; MCMC: chains × kept steps)
    chains: int = setting(64, AT_LEAST_1)                # mcmc / pt / ti: independent chains
    steps: int = setting(200, AT_LEAST_1)                # mcmc: steps per chain; ais/smc: annealing steps;
                                     # pt: rounds; ti: steps per temperature
    burn_in: int = setting(100, NON_NEGATIVE)              # mcmc / pt / ti: discarded steps (step size adapted here)
    thin: int = setting(1, AT_LEAST_1)
    kernel: str = "auto"             # continuous: rwm|mala|hmc|baoab; spins: metropolis|heatbath|wolff
    step_size: float = setting(0.0, Bounds(0, high_open=True))          # 0: tuned on the target during a pilot run
    n_leapfrog: int = setting(5, AT_LEAST_1)
    moves_per_step: int = setting(1, AT_LEAST_1)         # kernel steps (spins: sweeps) per annealing step / round
    temperatures: int = setting(8, AT_LEAST_1)           # pt: rungs; ti: β grid points
    beta_min: float = setting(0.05, FRACTION_OPEN)          # pt: lowest β of the geometric ladder
    schedule: str = "geometric"      # ais/smc β grid
    beta_start: float = setting(0.0, Bounds(0, 1, high_open=True))         # ais/smc: start at this fraction of the target's β instead
                                     # of the base (chains equilibrated there by burn_in steps)
    base_scale: float = setting(0.0, Bounds(0, high_open=True))         # 0: from the target's exact samples if it has them, else 1
    replicas: int = setting(8, AT_LEAST_1)               # smc: independent populations (for the standard error)
    ess_threshold: float = setting(0.5, Bounds(0, 1, low_open=True))      # smc: resample when ESS < threshold·n
    seed: int = 0
    dtype: str = "float64"


@dataclass
class FlowSection:
    layers: int = setting(8, AT_LEAST_1)
    hidden: int = setting(64, AT_LEAST_1)
    bins: int = setting(8, AT_LEAST_1)
    steps: int = setting(2000, AT_LEAST_1)
    batch_size: int = setting(256, AT_LEAST_1)
    lr: float = setting(1e-3, POSITIVE)
    objective: str = "reverse_kl"    # reverse_kl | forward_kl | both | fab
    training_samples: str = "exact"  # forward KL data: exact target samples, or "smc": particles
                                     # of an SMC run on the energy (resampled by weight)
    fab_steps: int = setting(8, AT_LEAST_1)              # fab: AIS steps from q to p²/q in every AIS run
                                     # (moves: method.kernel, step_size, n_leapfrog)
    fab_buffer: int = setting(20000, NON_NEGATIVE)         # fab: replay-buffer capacity in samples (0: no buffer)
    fab_updates: int = setting(4, AT_LEAST_1)            # fab with a buffer: gradient steps per AIS run
    snf_blocks: int = setting(4, AT_LEAST_1)             # snf: stochastic blocks interleaved with flow layers
    langevin_steps: int = setting(1, NON_NEGATIVE)         # snf: Langevin steps per stochastic block
    langevin_step_size: float = setting(0.01, POSITIVE)


@dataclass
class EnergyRunConfig:
    target: TargetSection = field(default_factory=TargetSection)
    method: MethodSection = field(default_factory=MethodSection)
    flow: FlowSection = field(default_factory=FlowSection)


def resolved_kernel(config: EnergyRunConfig, discrete: bool) -> str:
    if config.method.kernel != "auto":
        return config.method.kernel
    return "heatbath" if discrete else "hmc"
