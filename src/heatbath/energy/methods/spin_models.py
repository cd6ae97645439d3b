"""Spin Boltzmann generators: models of the lattice with an exact log q (`--method
autoregressive` and `--method masked`).

Two models, one contract (`sample(n, L, M, beta, generator)`, differentiable `log_prob(spins,
beta)`), both running at any L×M: `autoregressive` is the masked-convolution model
(`heatbath.nets.masked_conv`; ±1 spins, a site costs a few one-position convolutions);
`masked` is the data half's masked lattice network and sampler (`heatbath.nets.masked_spins`;
q states per site, a step of its site order costs a pass over the lattice). Either is trained from the energy
alone by reverse KL with the leave-one-out score-function gradient (`score_training`), then
draws method.samples lattices with their exact log q. The weights log w = −βH(s) − log q(s)
have E_q[w] = Z, so Z is unbiased and log Z, βF/N and every self-normalised observable are
consistent however far training got (the ESS and the weights' Pareto k̂ say how far). With method.beta_range the model is conditioned on β and
trained over the whole range at the target's J and h.

SECTION is the method's config section. With SECTION.warm_start the reverse-KL stage starts
from a model fitted by maximum likelihood to heatbath's own MCMC lattices (`warm_start`). With
SECTION.mcmc_steps the model is also the proposal of independence Metropolis–Hastings chains
(`heatbath.mcmc.independence`): the run's result.json and `estimate --json` report them under
"neural_mcmc" (acceptance, τ_int, chain means).
"""

from __future__ import annotations

from pathlib import Path

import torch

from heatbath.core.checkpoint import load_model_weights
from heatbath.core.runs import DTYPES
from heatbath.energy.methods.flows import remaining_budget
from heatbath.energy.methods.neural_mcmc import independence_block
from heatbath.energy.methods.score_training import TrainingBetas, train_reverse_kl
from heatbath.energy.methods.warm_start import chain_betas, warm_start
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.nets.lattice_translations import TranslationMixture
from heatbath.nets.masked_conv import MaskedConvSpins
from heatbath.nets.masked_spins import MaskedLatticeSpins

SpinModel = MaskedConvSpins | MaskedLatticeSpins | TranslationMixture


def beta_range(config) -> tuple[float, float] | None:
    """method.beta_range as (low, high), or None when it is off ([0, 0])."""
    low, high = (float(v) for v in config.method.beta_range)
    return None if low == high == 0 else (low, high)


def trained_betas(config, lattice) -> tuple[float, float]:
    """The β interval the model learns: method.beta_range, else the lattice's own β."""
    return beta_range(config) or (lattice.beta, lattice.beta)


def section(config):
    """The method's own config section (autoregressive or masked)."""
    return getattr(config, config.method.name)


def _autoregressive(s, lattice, conditioned: bool, generator) -> MaskedConvSpins:
    return MaskedConvSpins(layers=s.layers, channels=s.channels, kernel=s.kernel,
                           conditioned=conditioned, z2=s.z2, generator=generator)


def _masked(s, lattice, conditioned: bool, generator) -> MaskedLatticeSpins:
    values = lattice.from_states(torch.arange(lattice.num_states))
    return MaskedLatticeSpins(values, s.channels, s.depth, conditioned, s.z2, generator, s.order,
                              s.order_seed)


# --method name -> the model its config section describes
BUILDERS = {"autoregressive": _autoregressive, "masked": _masked}


def build_model(config, lattice) -> SpinModel:
    """The model config describes for the lattice's states (weights as initialised from
    method.seed)."""
    s = section(config)
    generator = torch.Generator().manual_seed(config.method.seed)
    model = BUILDERS[config.method.name](s, lattice, beta_range(config) is not None, generator)
    if s.translations > 1:
        model = TranslationMixture(model, s.translations)
    return model.to(DTYPES[s.dtype])


def weighted_draw(model: SpinModel, lattice, n: int, generator: torch.Generator,
                  dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """n lattices from the model at the lattice's β: x, log_q, energy U = βH and
    log w = −U − log q (the lattice's own energy, counted)."""
    spins, log_q = model.sample(n, lattice.L, lattice.M, lattice.beta, generator)
    spins = spins.to(dtype)
    energy = lattice.energy(spins)
    return {"x": spins, "log_w": (-energy - log_q).to(dtype), "energy": energy,
            "log_q": log_q.to(dtype)}


def run_spin_model(problem: Problem) -> EnergyResult:
    config, target = problem.config, problem.target
    a, m = section(config), config.method
    model = build_model(config, target)
    interval = trained_betas(config, target)
    warm = (warm_start(model, problem, chain_betas(*interval, m.temperatures), a)
            if a.warm_start else None)
    betas = TrainingBetas(*interval, round(a.anneal * a.steps))
    spin_model = problem.spin_model()
    log = train_reverse_kl(model, (target.L, target.M),
                           lambda s: spin_model.energy(s.to(problem.dtype)), betas,
                           steps=a.steps, batch_size=a.batch_size, lr=a.lr,
                           generator=problem.generator, budget=remaining_budget(problem))
    drawn = weighted_draw(model, target, m.samples, problem.generator, problem.dtype)
    diagnostics = {"training_energy_evals": log.energy_evals, "skipped_steps": log.skipped_steps,
                   "final_training_ess": log.final_ess, "budget_reached": log.budget_reached}
    if warm is not None:
        diagnostics["warm_start"] = warm.to_json()
    if a.mcmc_steps:
        diagnostics["neural_mcmc"] = neural_mcmc(model, target, config, problem.generator,
                                                 problem.dtype)
    metrics = [{"step": s, "loss": l, "ess": e}
               for s, l, e in zip(log.steps, log.losses, log.ess)]
    return EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], True,
                        diagnostics=diagnostics, metrics=metrics, model=model)


def neural_mcmc(model: SpinModel, lattice, config, generator: torch.Generator,
                dtype: torch.dtype) -> dict:
    """method.chains independence Metropolis–Hastings chains with the model as proposal:
    1 start + method.burn_in (discarded) + SECTION.mcmc_steps proposals each."""
    chains, burn_in = config.method.chains, config.method.burn_in
    per_chain = 1 + burn_in + section(config).mcmc_steps
    drawn = weighted_draw(model, lattice, chains * per_chain, generator, dtype)
    return independence_block(drawn["x"], drawn["log_w"], drawn["energy"], chains, burn_in,
                              {"abs_magnetisation": lambda s: lattice.magnetisation(s).abs()},
                              generator, energy_evals=chains * per_chain)


def redraw(config, working, original, weights: Path, n: int,
           generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n fresh weighted lattices from a saved model (see `Method.redraw`)."""
    model = build_model(config, working)
    load_model_weights(model, weights)
    model.eval()
    return weighted_draw(model, working, n, generator, DTYPES[config.method.dtype])
