"""The energy-method registry: every `--method` name is interpreted here and nowhere else.

A `Method` record says how to run it on a `Problem` and what its result is: importance weights
or equal weights, whether it trains a sampler that `heatbath sample` can draw from again (and
which setting `--steps` means), and whether it needs a continuous target or a spin lattice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from heatbath.energy.methods import cnf, flows, idem, sampling, spin_models, transport


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable                 # run(problem) -> EnergyResult
    weighted: bool                # log_w are importance weights (E[w] = Z); else equal weights
    continuous_only: bool         # needs forces / a density on R^d (no spin lattices)
    exact_log_q: bool             # the trained sampler has a tractable density (FAB needs it)
    steps_key: str                # what `fit --steps N` sets
    summary: str
    # learned samplers: redraw(config, working, original, weights_file, n, generator) -> dict
    # of x (working coordinates), log_w, energy[, log_q]; `heatbath sample` calls it
    redraw: Callable | None = None
    # its training evaluates U and stops at method.budget evaluations
    budgeted: bool = False
    # needs a spin lattice (heatbath.targets.SpinLattice); no continuous targets
    spins_only: bool = False
    # trains a β-conditioned model over method.beta_range
    beta_conditioned: bool = False
    # its saved model runs at any size and (within what it was trained over) any β of the
    # target's family, so `sample RUN --target SPEC --out NEW` can draw for another lattice
    transfers: bool = False

    @property
    def learned(self) -> bool:
        """Trains a model kept as model.safetensors, from which `sample` draws more."""
        return self.redraw is not None


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("mcmc", sampling.run_mcmc, False, False, False, "method.steps",
           "independent Markov chains (RWM, MALA, HMC, BAOAB; spin sweeps, Wolff)"),
    Method("pt", sampling.run_pt, False, False, False, "method.steps",
           "replica exchange over a geometric β ladder"),
    Method("ais", sampling.run_ais, True, False, False, "method.steps",
           "annealed importance sampling (Jarzynski weights)"),
    Method("smc", sampling.run_smc, True, False, False, "method.steps",
           "AIS with systematic resampling, independent replicas"),
    Method("ti", sampling.run_ti, False, False, False, "method.steps",
           "thermodynamic integration of E_β[φ] over β (Simpson)"),
    Method("flow", flows.run_flow, True, True, True, "flow.steps",
           "coupling spline flow (reverse KL, FAB, forward KL), exact q", flows.redraw, True),
    Method("snf", flows.run_snf, True, True, False, "flow.steps",
           "stochastic normalizing flow: flow layers + Langevin blocks, exact path weights",
           flows.redraw, True),
    Method("cnf", cnf.run_cnf, True, True, True, "cnf.steps",
           "continuous normalizing flow (EGNN for particles) by flow matching on heatbath's "
           "own MCMC samples, exact q", cnf.redraw),
    Method("nets", transport.run_transport, True, True, False, "transport.steps",
           "NETS: annealed Langevin + a drift learned by the PINN loss, exact path weights",
           transport.redraw, True),
    Method("cmcd", transport.run_transport, True, True, False, "transport.steps",
           "CMCD: annealed Langevin + a drift learned by the log-variance loss, exact path "
           "weights", transport.redraw, True),
    Method("idem", idem.run_idem, True, True, True, "idem.steps",
           "iDEM: a diffusion model trained from the energy alone (Monte-Carlo score "
           "targets, replay buffer), weighted by a CNF refit to its samples, exact q",
           idem.redraw, True),
    Method("autoregressive", spin_models.run_spin_model, True, False, True,
           "autoregressive.steps",
           "autoregressive masked-convolution model of ±1 spins (any L×M, optionally "
           "β-conditioned) by reverse KL, exact q; neural MCMC", spin_models.redraw, True,
           spins_only=True, beta_conditioned=True, transfers=True),
    Method("masked", spin_models.run_spin_model, True, False, True, "masked.steps",
           "the data half's masked lattice model (q states, any L×M, optionally β-conditioned) "
           "revealing one site per step, by reverse KL, exact q; neural MCMC",
           spin_models.redraw, True, spins_only=True, beta_conditioned=True, transfers=True),
)}


def method_named(name: str) -> Method:
    from heatbath.core.errors import UserError

    if name not in METHODS:
        raise UserError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]
