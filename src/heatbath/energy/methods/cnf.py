"""`--method cnf`: a Boltzmann generator on the data half's engine.

1. heatbath draws samples from the energy itself (`cnf.data`: MCMC or parallel tempering with
   the method's kernel; every energy and force evaluation counts toward the run's budget), or
   takes the target's exact sampler where one exists;
2. a continuous normalizing flow (`flows.cnf.ContinuousFlow`: EGNN for particles, MLP
   otherwise) learns them by flow matching, on the target's state space;
3. fresh flow samples are reweighted by their exact log q: log w = −U(x) − log q(x), so E[w] = Z
   on the space's measure and every estimate is unbiased whatever the training reached.

The training samples' energies are kept (`reference_energy` in samples.npz) so that `estimate`
can report the energy W2 between the flow's samples and them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from heatbath.core.checkpoint import load_model_weights
from heatbath.core.errors import UserError
from heatbath.core.runs import DTYPES
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.flows.cnf import ContinuousFlow, data_scale, train_cnf
from heatbath.nets import build_net, resolved_net, space_modality
from heatbath.spaces import FreeSpace

EXACT_TRAINING_SAMPLES = 20000
REFERENCE_KEPT = 5000   # training configurations kept in samples.npz for distance metrics


def model_space(problem_target, original):
    """The space the flow lives on: the particles' own (EGNN sees (P, d)), else the chart."""
    if original.space.kind == "centred_particles":
        return original.space
    return FreeSpace(problem_target.event_shape)


def net_kind(config, space) -> str:
    return resolved_net(config.cnf.net, space_modality(space))


def build_cnf(config, space, scale: float = 1.0) -> ContinuousFlow:
    """The flow `config` describes (weights as initialised from method.seed)."""
    c = config.cnf
    net = build_net(net_kind(config, space), space.event_shape, hidden=c.hidden, depth=c.depth,
                    seed=config.method.seed)
    return ContinuousFlow(net, space, scale)


def _training_samples(problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples in the problem's coordinates, their energies) from cnf.data."""
    from heatbath.energy.methods.flows import TRAINING_SAMPLES, resampled_smc
    from heatbath.energy.methods.sampling import run_mcmc, run_pt

    source = problem.config.cnf.data
    if source == "smc":   # annealed from the base, weights resolved by resampling
        drawn, energy = resampled_smc(problem, TRAINING_SAMPLES)
        return drawn.to(problem.dtype), energy
    if source == "exact":
        drawn = problem.target.sample_exact(EXACT_TRAINING_SAMPLES, problem.generator)
        if drawn is None:
            raise UserError(f"cnf.data=exact needs exact samples, which {problem.target.name} "
                            f"cannot draw; use cnf.data=mcmc or pt")
        drawn = drawn.to(problem.dtype)
        with torch.no_grad():
            return drawn, problem.target.energy(drawn)
    result = (run_pt if source == "pt" else run_mcmc)(problem)
    return result.x, result.energy


def to_model(space, z: torch.Tensor) -> torch.Tensor:
    """Problem coordinates (the chart, for particles) -> the flow's (N, P, d)."""
    return space.from_chart(z) if space.kind == "centred_particles" else z


def from_model(space, x: torch.Tensor) -> torch.Tensor:
    """The flow's coordinates -> the problem's (the inverse of `to_model`)."""
    return space.to_chart(x) if space.kind == "centred_particles" else x


def weighted_draw(flow: ContinuousFlow, problem_target, n: int, generator: torch.Generator,
                  config) -> dict[str, torch.Tensor]:
    """n flow samples in problem coordinates with log q, U (counted) and log w = −U − log q."""
    c = config.cnf
    drawn = flow.sample_and_log_q(n, generator, rtol=c.rtol, atol=c.atol, sampler=c.sampler,
                                  nfe=c.nfe)
    dtype = DTYPES[config.method.dtype]
    x = drawn.x.to(dtype)
    x = from_model(flow.space, x).reshape(n, *problem_target.event_shape)
    log_q = drawn.log_q.to(dtype)
    with torch.no_grad():
        energy = problem_target.energy(x)
    log_w = torch.where(torch.isfinite(energy), -energy - log_q,
                        torch.full_like(energy, -torch.inf))
    return {"x": x, "log_q": log_q, "energy": energy, "log_w": log_w, "nfe": drawn.nfe}


def log_q_meaning(c) -> str:
    """What the run's log q is, for its diagnostics."""
    if c.sampler == "dopri5":
        return (f"exact ODE density (exact divergence along the solve), dopri5 rtol={c.rtol:g}, "
                f"atol={c.atol:g}")
    return (f"exact density of the returned samples: {c.sampler} map with {c.nfe} evaluations, "
            f"log p0(z) - log|det dPhi/dz| on the subspace")


def fit_and_draw(problem: Problem, samples: torch.Tensor, space):
    """Step 2 and 3 of the module doc for any samples on `space` (the flow's coordinates):
    the flow fitted to them, its training log, and method.samples fresh weighted draws."""
    c = problem.config.cnf
    flow_dtype = DTYPES[c.dtype]
    flow = build_cnf(problem.config, space, data_scale(samples, space)).to(flow_dtype)
    metrics = train_cnf(flow, samples.to(flow_dtype), steps=c.steps, batch_size=c.batch_size,
                        lr=c.lr, coupling=c.coupling, generator=problem.generator)
    drawn = weighted_draw(flow, problem.target, problem.config.method.samples,
                          problem.generator, problem.config)
    return flow, metrics, drawn


def run_cnf(problem: Problem) -> EnergyResult:
    c = problem.config.cnf
    samples, reference = _training_samples(problem)
    kept = torch.randperm(len(samples), generator=problem.generator)[:REFERENCE_KEPT]
    evals_for_data = problem.energy_evals()
    space = model_space(problem.target, problem.user_target)
    flow, metrics, drawn = fit_and_draw(problem, to_model(space, samples.to(problem.dtype)),
                                        space)
    diagnostics = {"training_samples": len(samples), "training_energy_evals": evals_for_data,
                   "training_data": c.data, "net": net_kind(problem.config, space),
                   "sampling_nfe": drawn["nfe"], "log_q": log_q_meaning(c)}
    return EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], True,
                        diagnostics=diagnostics, metrics=metrics, model=flow,
                        arrays={"log_q": drawn["log_q"], "reference_energy": reference,
                                "reference_x": to_model(space, samples[kept].to(problem.dtype))})


def redraw(config, working, original, weights: Path, n: int,
           generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n fresh weighted samples from a saved CNF (see `Method.redraw`)."""
    flow = build_cnf(config, model_space(working, original)).to(DTYPES[config.cnf.dtype])
    load_model_weights(flow, weights)   # the data scale is a buffer of the flow
    flow.eval()
    drawn = weighted_draw(flow, working, n, generator, config)
    return {key: drawn[key] for key in ("x", "log_w", "energy", "log_q")}
