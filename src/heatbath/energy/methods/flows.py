"""Learned samplers for energies: normalizing flows and stochastic normalizing flows.

Both are trained from the energy (reverse KL; FAB's α = 2 divergence with AIS, flows only;
forward KL on exact samples or SMC particles, or reverse + forward),
then draw importance-weighted samples whose weights have E[w] = Z, so log Z and every
self-normalised observable are unbiased whatever the training reached.

`flow.net` picks the flow: spline couplings with MLP conditioners (`mlp`), or on real fields of
an L×M lattice (φ⁴) the translation-equivariant `LatticeFlow` (`conv`, the default there). A
trained flow can then drive Markov chains (`neural_mcmc.py`): independence Metropolis–Hastings
(`flow.mcmc_steps`) and HMC in its latent space (`flow.latent_hmc_steps`).
"""

from __future__ import annotations

import torch

from pathlib import Path

from heatbath.core.checkpoint import load_model_weights
from heatbath.core.runs import DTYPES
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.core.errors import UserError
from heatbath.estimators.importance import forward_ess
from heatbath.annealing.schedules import linear_betas
from heatbath.energy.methods.neural_mcmc import flow_independence_mcmc, flow_latent_hmc
from heatbath.flows import SNF, BijectiveFlow, Flow, LatticeFlow, importance_sample, train_flow
from heatbath.flows.fab import FabAnnealing

FORWARD_ESS_SAMPLES = 2000


def _standardisation(problem: Problem) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """Where the flow starts: the target's hint, or exact samples' mean and 1.5× spread, or N(0, 1)."""
    target = problem.target
    hint = target.base_hint()
    if hint is not None:
        centre, scale = hint
        return centre.to(problem.dtype), float(scale)
    probe = target.sample_exact(2000, torch.Generator().manual_seed(12345))
    if probe is None:
        return 0.0, max(problem.base_scale(), 1.0)
    flat = probe.to(problem.dtype).flatten(1)
    return flat.mean(0), 1.5 * flat.std(0)


TRAINING_SAMPLES = 20000


def _training_samples(problem: Problem):
    """Data for the forward-KL term: exact samples, or SMC particles resampled by weight."""
    f = problem.config.flow
    if f.objective in ("reverse_kl", "fab"):
        return None
    if f.training_samples == "smc":
        return resampled_smc(problem, TRAINING_SAMPLES)[0].to(problem.dtype).flatten(1)
    samples = problem.target.sample_exact(TRAINING_SAMPLES, problem.generator)
    if samples is None:
        raise UserError(f"flow.objective={f.objective} needs exact samples, which "
                        f"{problem.target.name} cannot draw; set flow.training_samples=smc "
                        f"(particles from the energy alone), or use reverse_kl or fab")
    return samples.to(problem.dtype).flatten(1)


def resampled_smc(problem: Problem, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the configured SMC on the energy and resample n of its particles by weight:
    (x, U(x)), the energies as SMC evaluated them."""
    from heatbath.energy.methods.sampling import run_smc

    result = run_smc(problem)
    weights = torch.softmax(result.log_w.to(torch.float64), 0)
    index = torch.multinomial(weights, n, replacement=True, generator=problem.generator)
    return result.x[index], result.energy[index]


def _train_and_sample(problem: Problem, model) -> EnergyResult:
    f, m = problem.config.flow, problem.config.method
    model = model.to(problem.dtype)
    samples, annealing = _training_samples(problem), _fab_annealing(problem)
    log = train_flow(model, problem.target, steps=f.steps, batch_size=f.batch_size, lr=f.lr,
                     objective=f.objective, samples=samples, annealing=annealing,
                     generator=problem.generator, budget=remaining_budget(problem))
    model.eval()
    drawn = importance_sample(model, problem.target, m.samples, problem.generator)
    metrics = [{"step": s, "loss": l, "ess": e}
               for s, l, e in zip(log.steps, log.losses, log.ess)]
    diagnostics = {"training_energy_evals": log.energy_evals, "skipped_steps": log.skipped_steps,
                   "final_training_ess": log.final_ess, "budget_reached": log.budget_reached}
    if isinstance(model, BijectiveFlow):
        fwd = _forward_ess(problem, model)
        if fwd is not None:
            diagnostics["forward_ess"] = fwd
        diagnostics.update(_flow_chains(problem, model))
    x = drawn.x.reshape(len(drawn.x), *problem.target.event_shape)
    return EnergyResult(x, drawn.log_w, drawn.energy, True, diagnostics=diagnostics,
                        metrics=metrics, model=model)


def remaining_budget(problem: Problem) -> int:
    """What method.budget leaves for training after the evaluations made so far (step-size
    tuning, training data); 0 when there is no budget. UserError when nothing is left."""
    budget = problem.config.method.budget
    if not budget:
        return 0
    spent = problem.energy_evals()
    if spent >= budget:
        raise UserError(f"method.budget={budget} is spent before training starts: step-size "
                        f"tuning and training data took {spent} energy evaluations; raise the "
                        f"budget or draw fewer training samples")
    return budget - spent


def _fab_annealing(problem: Problem) -> FabAnnealing | None:
    """FAB's AIS from q to p²/q: a linear β grid and the method's move (step size tuned on U)."""
    f = problem.config.flow
    if f.objective != "fab":
        return None
    betas = linear_betas(f.fab_steps).to(problem.dtype)
    return FabAnnealing(betas, problem.move(), f.fab_buffer, f.fab_updates)


def _flow_chains(problem: Problem, flow: BijectiveFlow) -> dict:
    """The trained flow inside Markov chains, where asked for (see `neural_mcmc.py`)."""
    f, found = problem.config.flow, {}
    with torch.no_grad():
        if f.mcmc_steps:
            found["neural_mcmc"] = flow_independence_mcmc(flow, problem.target, problem.config,
                                                          problem.generator)
    if f.latent_hmc_steps:
        found["latent_hmc"] = flow_latent_hmc(flow, problem.target, problem.config,
                                              problem.generator)
    return found


def _forward_ess(problem: Problem, flow: BijectiveFlow) -> dict | None:
    """Forward ESS on exact target samples (Midgley et al.), when the target can draw them."""
    exact = problem.target.sample_exact(FORWARD_ESS_SAMPLES, problem.generator)
    if exact is None:
        return None
    exact = exact.to(problem.dtype)
    with torch.no_grad():
        log_w = -problem.target.energy(exact) - flow.log_prob(exact.flatten(1))
    return forward_ess(log_w.numpy()).to_json()


def flow_net(config, target) -> str:
    """flow.net, with auto resolved: conv for a flow on real fields of an L×M lattice with even
    sides (what `LatticeFlow` takes), mlp otherwise."""
    if config.flow.net != "auto":
        return config.flow.net
    shape = target.event_shape
    lattice = (target.space.kind == "lattice" and len(shape) == 2
               and all(n % 2 == 0 for n in shape))
    return "conv" if config.method.name == "flow" and lattice else "mlp"


def build_model(config, target, loc=0.0, scale=1.0):
    """The flow or SNF that config describes for `target` (the working target; weights as
    initialised from method.seed)."""
    f, dim = config.flow, target.dim
    generator = torch.Generator().manual_seed(config.method.seed)
    if config.method.name == "flow" and flow_net(config, target) == "conv":
        return LatticeFlow(target.event_shape, layers=f.layers, channels=f.channels,
                           kernel=f.kernel, bins=f.bins if f.coupling == "spline" else 0,
                           spectral=f.spectral, generator=generator)
    if config.method.name == "flow":
        return Flow(dim, layers=f.layers, hidden=f.hidden, bins=f.bins, loc=loc, scale=scale,
                    event_shape=(dim,), generator=generator)
    return SNF(dim, n_blocks=f.snf_blocks, layers_per_block=max(1, f.layers // f.snf_blocks),
               hidden=f.hidden, bins=f.bins, loc=loc, scale=scale, mcmc_steps=f.langevin_steps,
               step_size=f.langevin_step_size, generator=generator)


def run_flow(problem: Problem) -> EnergyResult:
    loc, scale = _standardisation(problem)
    return _train_and_sample(problem, build_model(problem.config, problem.target, loc, scale))


run_snf = run_flow      # the configured method name picks Flow or SNF in build_model


def redraw(config, working, original, weights: Path, n: int,
           generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n fresh weighted samples from a saved flow / SNF (see `Method.redraw`)."""
    model = build_model(config, working).to(DTYPES[config.method.dtype])
    load_model_weights(model, weights)
    model.eval()
    drawn = importance_sample(model, working, n, generator)
    out = {"x": drawn.x.reshape(n, *working.event_shape), "log_w": drawn.log_w,
           "energy": drawn.energy}
    if drawn.log_q is not None:
        out["log_q"] = drawn.log_q
    return out
