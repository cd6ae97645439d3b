"""Sampling methods that need no training: MCMC, parallel tempering, AIS, SMC and TI.

Each takes a `Problem` and returns an `EnergyResult` whose weights make every downstream
estimate (asymptotically) unbiased: Jarzynski weights for AIS/SMC, equal weights for the
Markov-chain methods (whose error bars come from independent chains instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.annealing import BETA_SCHEDULES, ais, geometric_betas, linear_betas, smc
from heatbath.annealing.smc import pooled_weights
from heatbath.core.estimate import Estimate
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.estimators.integration import thermodynamic_integration
from heatbath.mcmc import CONTINUOUS_KERNELS, TemperedDensity, parallel_tempering


# Burn-in rescue of stuck chains: every RESCUE_EVERY steps a chain whose acceptance fell below
# STUCK_ACCEPT halves its own step size, and one above EASY_ACCEPT grows it back (never past
# the tuned value). A chain started far out on a stiff potential (DW4's quartic walls: forces
# of several hundred kT per unit length) rejects every proposal at the step size tuned for the
# typical set and would stay there for good; with its own smaller step it walks in, then its
# step grows back. Step sizes are fixed after burn-in, so the kept chains are plain MCMC.
RESCUE_EVERY, STUCK_ACCEPT, EASY_ACCEPT = 10, 0.05, 0.8


def _chain_steps(problem: Problem, density, x: torch.Tensor, n_steps: int, keep: bool,
                 step_size=None):
    """n_steps transitions of every chain; optionally the (steps, chains, ...) trace of x.
    `step_size` (continuous kernels): one per chain (N,), else the problem's shared one."""
    kept = []
    if problem.discrete:
        move = problem.spin_move()
        for _ in range(n_steps):
            x = move(density, x, problem.generator)
            if keep:
                kept.append(x)
        return x, kept
    kernel = CONTINUOUS_KERNELS[problem.kernel_name]
    params = problem.continuous_params(problem.step_size if step_size is None else step_size)
    state = kernel.init(density, x, problem.generator)
    for _ in range(n_steps):
        state = kernel.step(density, state, problem.generator, params)
        if keep:
            kept.append(state.x)
    return state.x, kept


def _burn_in(problem: Problem, density, x: torch.Tensor, n_steps: int):
    """(x after burn-in, per-chain step sizes or None) — see RESCUE_EVERY above."""
    if problem.discrete or not CONTINUOUS_KERNELS[problem.kernel_name].adjusted:
        return _chain_steps(problem, density, x, n_steps, keep=False)[0], None
    kernel = CONTINUOUS_KERNELS[problem.kernel_name]
    tuned = torch.full((len(x),), float(problem.step_size), dtype=x.dtype)
    step_size = tuned.clone()
    state = kernel.init(density, x, problem.generator)
    for start in range(0, n_steps, RESCUE_EVERY):
        accepted = state.n_accepted.clone()
        params = problem.continuous_params(step_size)
        block = min(RESCUE_EVERY, n_steps - start)
        for _ in range(block):
            state = kernel.step(density, state, problem.generator, params)
        rate = (state.n_accepted - accepted).to(x.dtype) / block
        step_size = torch.where(rate < STUCK_ACCEPT, 0.5 * step_size, step_size)
        step_size = torch.where(rate > EASY_ACCEPT, torch.minimum(1.5 * step_size, tuned),
                                step_size)
    return state.x, step_size


def _equal_weight_result(problem: Problem, kept: list, diagnostics: dict) -> EnergyResult:
    """Samples of independent chains, chain-major, with traces for error bars."""
    trace = torch.stack(kept[::problem.config.method.thin])          # (steps, chains, ...)
    steps, chains = trace.shape[:2]
    flat = trace.transpose(0, 1).reshape(steps * chains, *trace.shape[2:])
    energy = problem.target.energy(flat)
    traces = energy.reshape(chains, steps)
    observable = (problem.target.magnetisation(flat).abs().reshape(chains, steps)
                  if problem.discrete else None)
    return EnergyResult(flat, torch.zeros(len(flat), dtype=flat.dtype), energy, False,
                        energy_traces=traces, abs_magnetisation_traces=observable,
                        diagnostics=diagnostics)


def run_mcmc(problem: Problem) -> EnergyResult:
    m = problem.config.method
    problem.prepare_step_size()
    density = TemperedDensity(problem.family_energy(), problem.beta_end())
    x = problem.initial(m.chains)
    x, step_size = _burn_in(problem, density, x, m.burn_in)
    x, kept = _chain_steps(problem, density, x, m.steps, keep=True, step_size=step_size)
    diagnostics = {"kernel": problem.kernel_name}
    if not problem.discrete:
        diagnostics["step_size"] = problem.step_size
    if step_size is not None:
        diagnostics["chain_step_size_range"] = [float(step_size.min()), float(step_size.max())]
    return _equal_weight_result(problem, kept, diagnostics)


def run_pt(problem: Problem) -> EnergyResult:
    m = problem.config.method
    problem.prepare_step_size()
    beta_end = problem.beta_end()
    ladder = geometric_betas(m.temperatures - 1, start=m.beta_min, end=1.0) * beta_end
    x0 = problem.initial(m.temperatures * m.chains).reshape(m.temperatures, m.chains,
                                                            *problem.target.event_shape)
    move = problem.move()
    result = parallel_tempering(problem.family_energy(), x0, ladder.to(problem.dtype), move,
                                problem.generator, m.burn_in + m.steps, burn_in=m.burn_in,
                                thin=m.thin, base=problem.base())
    kept = list(result.samples)
    diagnostics = {"kernel": problem.kernel_name, "betas": ladder.tolist(),
                   "swap_acceptance": result.swap_acceptance.tolist()}
    return _equal_weight_result(problem, kept, diagnostics)


@dataclass(frozen=True)
class AnnealStart:
    """Where an annealing run starts: exact draws at β = 0 of the family (the base, or uniform
    spins), or chains equilibrated at β_start of the inverse-temperature family exp(−βU)."""

    x: torch.Tensor
    betas: torch.Tensor
    base: object
    log_z_start: float | None      # None: unknown, the estimate is a difference from β_start
    beta_start: float


def _betas(problem: Problem, start: float) -> torch.Tensor:
    m = problem.config.method
    return BETA_SCHEDULES[m.schedule].grid(m.steps, start)


def annealing_start(problem: Problem, n: int) -> AnnealStart:
    m = problem.config.method
    betas = _betas(problem, m.beta_start) * problem.beta_end()
    if m.beta_start == 0:
        return AnnealStart(problem.initial(n), betas, problem.base(), problem.log_z_start(), 0.0)
    beta0 = float(betas[0])
    problem.prepare_step_size()
    density = TemperedDensity(problem.family_energy(), beta0)
    x, _ = _burn_in(problem, density, problem.initial(n), max(m.burn_in, 1))
    return AnnealStart(x, betas, None, problem.exact_log_z_at(beta0), beta0)


def _annealed(problem: Problem, result, start: AnnealStart) -> EnergyResult:
    """Weights relative to the target exp(−U): add log Z of the start (spins: N ln q, q = target.num_states)."""
    offset = 0.0 if start.log_z_start is None else start.log_z_start
    log_w = result.log_w + offset
    if result.replica_log_z is not None:
        # SMC: weights count since each replica's last resampling; put back what it banked.
        log_w = pooled_weights(log_w, result.replica_log_z + offset)
    n_steps = len(start.betas) - 1
    energy = problem.target.energy(result.x)
    log_z = Estimate(result.log_z.value + offset, result.log_z.stderr, result.log_z.n)
    diagnostics = {"kernel": problem.kernel_name, "annealing_steps": n_steps,
                   "resamples": result.n_resamples, "beta_start": start.beta_start}
    if start.log_z_start is None:
        diagnostics["delta_from_beta"] = start.beta_start
    return EnergyResult(result.x, log_w, energy, True, log_z=log_z, diagnostics=diagnostics)


def run_ais(problem: Problem) -> EnergyResult:
    start = annealing_start(problem, problem.config.method.samples)
    result = ais(problem.family_energy(), start.x, start.betas.to(problem.dtype), problem.move(),
                 problem.generator, base=start.base)
    return _annealed(problem, result, start)


def run_smc(problem: Problem) -> EnergyResult:
    m = problem.config.method
    per_replica = max(2, -(-m.samples // m.replicas))
    start = annealing_start(problem, per_replica * m.replicas)
    result = smc(problem.family_energy(), start.x, start.betas.to(problem.dtype), problem.move(),
                 problem.generator, base=start.base, n_replicas=m.replicas,
                 ess_threshold=m.ess_threshold)
    return _annealed(problem, result, start)


def run_ti(problem: Problem) -> EnergyResult:
    """Thermodynamic integration: log Z = log Z_0 + ∫ E_β[φ] dβ along the tempered family.

    φ = −U − log p0 from a normalised Gaussian base (continuous) or −H over inverse
    temperature from β = 0 (spins). E_β[φ] is measured by independent chains at each β,
    warm-started from the previous β; Simpson's rule integrates it.
    """
    m = problem.config.method
    problem.prepare_step_size()
    if problem.discrete:
        betas = linear_betas(m.temperatures - 1) * problem.beta_end()
    else:
        betas = geometric_betas(m.temperatures - 2, start=1e-3, end=1.0, prepend_zero=True)
    density = TemperedDensity(problem.family_energy(), 0.0, problem.base())
    x = problem.initial(m.chains)
    means, errors, kept = [], [], []
    for beta in betas.tolist():
        at_beta = density.with_beta(beta)
        x, step_size = _burn_in(problem, at_beta, x, m.burn_in)
        x, kept = _chain_steps(problem, at_beta, x, m.steps, keep=True, step_size=step_size)
        phi = torch.stack([at_beta.point(k, need_grad=False).phi for k in kept[::m.thin]], 1)
        # thermodynamic_integration takes mean *energies* and returns −∫⟨E⟩dβ, so pass −φ.
        chain_means = -phi.to(torch.float64).mean(1)
        means.append(float(chain_means.mean()))
        errors.append(float(chain_means.std() / len(chain_means) ** 0.5))
    integral = thermodynamic_integration(betas.numpy(), means, errors)
    log_z = Estimate(integral.value + problem.log_z_start(), integral.stderr, integral.n)
    result = _equal_weight_result(problem, kept, {"kernel": problem.kernel_name,
                                                  "betas": betas.tolist(),
                                                  "mean_minus_phi": means,
                                                  "stderr": errors})
    result.log_z = log_z
    return result
