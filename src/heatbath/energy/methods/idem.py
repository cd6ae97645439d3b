"""`--method idem`: iterated denoising energy matching (Akhound-Sadegh et al. 2024), weighted
by a CNF refit to its samples.

1. a diffusion model of exp(−U) is trained from the energy alone (`heatbath.idem`: the data
   half's network, variance-exploding path and Euler–Maruyama sampler; every energy and force
   evaluation of the Monte-Carlo score estimate counts toward method.budget);
2. it draws `idem.refit_samples` samples by the reverse SDE: a stochastic sampler whose
   density is not tractable, so they are never weighted themselves;
3. `--method cnf`'s flow (EGNN for particles) is fitted to them by flow matching, and its fresh
   samples are reweighted by the flow's exact log q: log w = −U − log q, E[w] = Z. The run's
   ESS, log Z and estimates are the refit flow's, unbiased whatever iDEM reached; iDEM decides
   only how good a proposal the flow can become. `heatbath sample` redraws from the flow.
"""

from __future__ import annotations

import torch

from heatbath.core.runs import DTYPES
from heatbath.energy.methods import cnf
from heatbath.energy.methods.flows import remaining_budget
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.generative.field import Field
from heatbath.idem import IDEMTraining, draw, train_idem
from heatbath.nets import build_net, resolved_net, space_modality
from heatbath.paths.noise import SpaceGaussianNoise
from heatbath.paths.path import Path
from heatbath.paths.schedules import VESchedule

redraw = cnf.redraw   # the saved model is the refit flow

LOG_W_MEANING = ("exact density of a CNF refit by flow matching to iDEM's reverse-SDE samples "
                 "(iDEM's own sampler has no tractable density); log w = -U - log q_CNF")


def net_kind(config, space) -> str:
    return resolved_net(config.idem.net, space_modality(space))


def build_field(config, space) -> Field:
    """The score model `config` describes: ε-prediction on the VE path over `space`."""
    c = config.idem
    net = build_net(net_kind(config, space), space.event_shape, hidden=c.hidden, depth=c.depth,
                    seed=config.method.seed).to(DTYPES[c.dtype])
    path = Path(VESchedule(c.sigma_min, c.sigma_max), SpaceGaussianNoise(space))
    return Field(net, path, "eps")


def model_energy_and_force(target, space):
    """(U, F) of configurations on the model's space, evaluated (and counted) by the problem's
    target in its coordinates: the chart is an isometry, so F maps back by `cnf.to_model` and
    stays on the zero-CoM subspace."""
    def evaluate(x: torch.Tensor):
        energy, force = target.energy_and_force(cnf.from_model(space, x).to(torch.float64))
        return energy, cnf.to_model(space, force).reshape(x.shape)
    return evaluate


def training(problem: Problem) -> IDEMTraining:
    c = problem.config.idem
    return IDEMTraining(steps=c.steps, batch_size=c.batch_size, mc_samples=c.mc_samples,
                        lr=c.lr, max_score_norm=c.max_score_norm or float("inf"),
                        generate=c.generate, updates=c.updates, buffer=c.buffer, nfe=c.nfe,
                        budget=remaining_budget(problem))


def run_idem(problem: Problem) -> EnergyResult:
    config, c = problem.config, problem.config.idem
    space = cnf.model_space(problem.target, problem.user_target)
    field = build_field(config, space)
    log = train_idem(field, space, model_energy_and_force(problem.target, space),
                     training(problem), problem.generator)
    training_evals = problem.energy_evals()
    seed = int(torch.randint(2 ** 62, (1,), generator=problem.generator))
    samples = draw(field, c.refit_samples, space.event_shape, c.nfe, seed, DTYPES[c.dtype])
    flow, refit_metrics, drawn = cnf.fit_and_draw(problem, samples.to(problem.dtype), space)
    diagnostics = {"net": net_kind(config, space), "training_energy_evals": training_evals,
                   "gradient_steps": log.gradient_steps, "buffer_rounds": log.rounds,
                   "budget_reached": log.budget_reached, "skipped_steps": log.skipped_steps,
                   "refit_samples": len(samples), "refit_net": cnf.net_kind(config, space),
                   "sampling_nfe": drawn["nfe"], "log_q": cnf.log_q_meaning(config.cnf),
                   "log_w": LOG_W_MEANING}
    metrics = log.metrics + [{"step": m["step"], "cnf_refit_loss": m["loss"]}
                             for m in refit_metrics]
    return EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], True,
                        diagnostics=diagnostics, metrics=metrics, model=flow,
                        arrays={"log_q": drawn["log_q"]})
