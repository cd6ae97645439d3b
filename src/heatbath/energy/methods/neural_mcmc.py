"""A learned sampler inside Markov chains, and the one block both kinds of chain report.

* Independence Metropolis–Hastings (`neural_mcmc`): the model's draws are the proposals,
  accepted with min(1, w'/w) (`heatbath.mcmc.independence`); one energy evaluation each.
* HMC in a bijective flow's latent space (`latent_hmc`, flows only): leapfrog on
  U_latent(z) = U(T(z)) − log|det ∂T/∂z| with an exact Metropolis test
  (`heatbath.mcmc.latent`); n_leapfrog energy and force evaluations per step.

Both leave the target invariant whatever the model learned; they do not replace the run's
importance-weighted estimates, they sit beside them in result.json and `estimate --json`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from heatbath.estimators.autocorr import chain_mean_estimate, integrated_time_stderr
from heatbath.mcmc.independence import independence_chains
from heatbath.mcmc.latent import latent_hmc
from heatbath.targets.lattice import field_magnetisation

Observables = dict[str, Callable[[torch.Tensor], torch.Tensor]]


def chain_block(traces: dict[str, np.ndarray], acceptance: float, **info) -> dict:
    """info, acceptance, and per traced quantity (chains, steps): τ_int (Sokal window, chain
    steps) with its Madras–Sokal standard error, ESS = chains·steps/τ_int, and the chain mean
    with the spread of the chains' means."""
    block = {**info, "acceptance": acceptance, "tau_int": {}, "tau_int_stderr": {}, "ess": {}}
    for name, trace in traces.items():
        tau, stderr = integrated_time_stderr(trace)
        block["tau_int"][name], block["tau_int_stderr"][name] = tau, stderr
        block["ess"][name] = trace.size / tau
        block[name] = chain_mean_estimate(trace).to_json()
    return block


def chain_observables(target) -> Observables:
    """What the chains trace besides U: |M|, M = Σₓ φₓ, on real lattice fields (φ⁴)."""
    if target.space.kind == "lattice":
        return {"abs_total_magnetisation": lambda x: field_magnetisation(x).abs()}
    return {}


def independence_block(x: torch.Tensor, log_w: torch.Tensor, energy: torch.Tensor,
                       chains: int, burn_in: int, observables: Observables,
                       generator: torch.Generator, **info) -> dict:
    """Chains over pre-drawn proposals (chain-major, 1 start + burn_in + steps each)."""
    per_chain = x.shape[0] // chains
    index, accepted = independence_chains(log_w.reshape(chains, per_chain), generator)
    kept = slice(1 + burn_in, None)

    def trace(values: torch.Tensor) -> np.ndarray:
        return values.reshape(chains, per_chain).gather(1, index)[:, kept].double().numpy()

    traces = {"energy": trace(energy)}
    traces.update({name: trace(fn(x)) for name, fn in observables.items()})
    return chain_block(traces, float(accepted[:, kept].double().mean()), chains=chains,
                       steps=per_chain - 1 - burn_in, burn_in=burn_in,
                       proposals=chains * per_chain, **info)


def flow_independence_mcmc(flow, target, config, generator: torch.Generator) -> dict:
    """method.chains chains of 1 + method.burn_in + flow.mcmc_steps proposals from the flow."""
    from heatbath.flows import importance_sample

    m = config.method
    per_chain = 1 + m.burn_in + config.flow.mcmc_steps
    evals = target.energy_evals
    drawn = importance_sample(flow, target, m.chains * per_chain, generator)
    return independence_block(drawn.x, drawn.log_w, drawn.energy, m.chains, m.burn_in,
                              chain_observables(target), generator,
                              energy_evals=target.energy_evals - evals)


def flow_latent_hmc(flow, target, config, generator: torch.Generator) -> dict:
    """method.chains latent-space HMC chains: method.burn_in steps tuning the leapfrog step,
    then flow.latent_hmc_steps kept, method.n_leapfrog leapfrog steps each."""
    m = config.method
    evals, forces = target.energy_evals, target.force_evals
    found = latent_hmc(flow, target, m.chains, m.burn_in, config.flow.latent_hmc_steps,
                       m.n_leapfrog, generator, chain_observables(target))
    traces = {name: trace.double().numpy() for name, trace in found.traces.items()}
    return chain_block(traces, found.acceptance, chains=m.chains,
                       steps=config.flow.latent_hmc_steps, burn_in=m.burn_in,
                       n_leapfrog=found.n_leapfrog, step_size=found.step_size,
                       energy_evals=target.energy_evals - evals,
                       force_evals=target.force_evals - forces)
