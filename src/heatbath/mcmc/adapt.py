"""Step-size adaptation toward a target acceptance rate, for burn-in only.

Dual averaging (Nesterov 2009, as used for NUTS by Hoffman & Gelman 2014, Alg. 5) on log h, driven
by the acceptance probability averaged over all chains at each step, so every chain shares one
step size. Adapting makes the chain non-Markov, so samples drawn *during* adaptation are not
draws from π: adapt, then run with the returned (fixed) parameters.

The returned step size is the dual-averaging *averaged* iterate, which lands slightly on the
cautious side; and for HMC with a fixed number of leapfrog steps the acceptance rate is not
monotone in ε on near-Gaussian targets (trajectory resonances), so expect the reached rate within
a few percent of the goal rather than on it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from heatbath.mcmc.continuous import ChainState, Kernel, Params
from heatbath.mcmc.density import LogDensity, as_log_density

# Acceptance rates that are roughly optimal in moderate dimension (Roberts & Rosenthal 2001;
# Beskos et al. 2013 for HMC).
DEFAULT_TARGET_ACCEPT = {"rwm": 0.3, "mala": 0.574, "hmc": 0.65}


def adapt_step_size(kernel: Kernel, density: LogDensity, state: ChainState,
                    generator: torch.Generator, params: Params, n_steps: int,
                    target_accept: float | None = None) -> tuple[ChainState, Params]:
    """Run n_steps while tuning `params.step_size`; returns the final state and tuned params."""
    if not kernel.adjusted or not hasattr(params, "step_size"):
        raise ValueError(f"kernel {kernel.name!r} has no accept/reject step to adapt to")
    if isinstance(params.step_size, torch.Tensor) and params.step_size.ndim > 0:
        raise ValueError("adapt_step_size tunes one shared step size; got a per-chain tensor")
    if target_accept is None:
        target_accept = DEFAULT_TARGET_ACCEPT[kernel.name]
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept must lie in (0, 1), got {target_accept}")
    density = as_log_density(density)
    # Hoffman & Gelman's constants: shrink toward 10·h0, γ = 0.05, t0 = 10, κ = 0.75.
    mu, gamma, t0, kappa = math.log(10 * float(params.step_size)), 0.05, 10.0, 0.75
    error_avg, log_h_avg = 0.0, math.log(float(params.step_size))
    for t in range(1, n_steps + 1):
        state = kernel.step(density, state, generator, params)
        accept = float(state.accept_prob.mean())
        error_avg += ((target_accept - accept) - error_avg) / (t + t0)
        log_h = mu - math.sqrt(t) / gamma * error_avg
        weight = t ** -kappa
        log_h_avg = weight * log_h + (1 - weight) * log_h_avg
        params = replace(params, step_size=math.exp(log_h))
    if n_steps > 0:
        params = replace(params, step_size=math.exp(log_h_avg))
    return state, params
