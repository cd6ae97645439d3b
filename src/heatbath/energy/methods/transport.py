"""`--method nets` and `--method cmcd`: annealed Langevin dynamics with a learned drift.

Both walk the annealed path of AIS (`method.schedule`, from the Gaussian base of
`method.base_scale`) in `transport.time_steps` Euler–Maruyama steps, with a drift network from
`nets` (MLP, or the EGNN on particles) and exact discrete path weights (`transport.simulate`),
so log Z and every self-normalised estimate are unbiased whatever the training reached. They
differ in how the drift is learned, from the energy alone:

  nets   NETS's PINN loss (Albergo & Vanden-Eijnden 2024): the continuity-equation residual
         that makes the continuous-time Jarzynski weights constant;
  cmcd   the log-variance loss on the discrete path weights (Vargas et al. 2024, CMCD).

The trained sampler (drift weights, the base's scale and the Langevin step) is kept as
model.safetensors; `heatbath sample` redraws from it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from heatbath.annealing import BETA_SCHEDULES, GaussianBase
from heatbath.annealing.smc import pooled_weights, replica_estimates, replica_resampler
from heatbath.core.checkpoint import load_model_weights
from heatbath.core.runs import DTYPES
from heatbath.energy.methods.cnf import model_space
from heatbath.energy.methods.flows import remaining_budget
from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult
from heatbath.mcmc import CONTINUOUS_KERNELS, MALAParams, TemperedDensity, adapt_step_size
from heatbath.nets import build_net, resolved_net, space_modality
from heatbath.transport import (AnnealedPath, Drift, TransportTraining, train_transport,
                                transport)

OBJECTIVE = {"nets": "pinn", "cmcd": "log_variance"}
TUNING_CHAINS, TUNING_STEPS = 64, 100
UNADJUSTED_FRACTION = 0.1


class TransportSampler(nn.Module):
    """What `heatbath sample` needs again: the drift, the base's centre and scale, the step."""

    def __init__(self, drift: Drift, base_mean: torch.Tensor, step_size: float) -> None:
        super().__init__()
        self.drift = drift
        self.register_buffer("base_mean", base_mean.detach().to(torch.float64).clone())
        self.register_buffer("step_size", torch.tensor(float(step_size), dtype=torch.float64))

    def path(self, target, config) -> AnnealedPath:
        m, k = config.method, config.transport.time_steps
        # Walkers are flat (N, D); the base is the method's Gaussian over the same coordinates.
        base = GaussianBase((target.dim,), scale=float(self.drift.scale),
                            mean=self.base_mean, dtype=DTYPES[m.dtype])
        return AnnealedPath(target, base, BETA_SCHEDULES[m.schedule].curve, k)


def net_kind(config, space) -> str:
    return resolved_net(config.transport.net, space_modality(space))


def build_sampler(config, working, original, scale: float = 1.0,
                  base_mean: torch.Tensor | None = None, step_size: float = 1.0):
    """The sampler `config` describes, weights as initialised from method.seed."""
    c = config.transport
    space = model_space(working, original)
    net = build_net(net_kind(config, space), space.event_shape, hidden=c.hidden, depth=c.depth,
                    seed=config.method.seed)
    chart = space if space.kind == "centred_particles" else None
    drift = Drift(net, scale, chart).to(DTYPES[c.dtype])
    mean = torch.zeros(working.dim) if base_mean is None else base_mean.reshape(-1)
    return TransportSampler(drift, mean, step_size)


def langevin_step_size(problem: Problem) -> float:
    """transport.step_size, or a tenth of δ = h²/2 of a MALA step h tuned (dual averaging) on
    the target from base draws: a Langevin step the target's own curvature can take. The
    tenth: an unadjusted step as large as MALA's (δ ≈ 0.7·σ² on a Gaussian) leaves forward and
    backward kernels so far apart that the path weights turn heavy-tailed (Pareto k̂ ≈ 0.9 on
    the harmonic cluster, ESS 0.002); a tenth of it keeps them light."""
    if problem.config.transport.step_size > 0:
        return problem.config.transport.step_size
    kernel = CONTINUOUS_KERNELS["mala"]
    density = TemperedDensity(problem.target, 1.0)
    state = kernel.init(density, problem.initial(TUNING_CHAINS), problem.generator)
    _, params = adapt_step_size(kernel, density, state, problem.generator,
                                MALAParams(0.1 * problem.base_scale()), TUNING_STEPS)
    return UNADJUSTED_FRACTION * 0.5 * float(params.step_size) ** 2


def _training(problem: Problem) -> TransportTraining:
    config = problem.config
    c = config.transport
    return TransportTraining(OBJECTIVE[config.method.name], c.steps, c.batch_size, c.updates,
                             c.buffer, c.points, c.lr, remaining_budget(problem), c.explore,
                             c.divergence)


def draw(sampler: TransportSampler, path: AnnealedPath, config, n: int,
         seed: int) -> dict:
    """n weighted walkers at t = 1: x, log_w (relative to exp(−U)), U, and the log Z estimate
    (pooled over replicas when transport.resample is on, else None: the weights are i.i.d.)."""
    m = config.method
    dtype = DTYPES[m.dtype]
    sampler.eval()
    step = float(sampler.step_size)
    if not config.transport.resample:
        walked = transport(path, sampler.drift, n=n, step_size=step, seed=seed, dtype=dtype)
        return {"x": walked.x, "log_w": walked.log_w, "energy": walked.energy, "log_z": None,
                "resamples": 0}
    per_replica = max(2, -(-n // m.replicas))
    walked = transport(path, sampler.drift, n=per_replica * m.replicas, step_size=step,
                       seed=seed, dtype=dtype, resampler=replica_resampler(m.replicas,
                                                                           m.ess_threshold),
                       generator=torch.Generator().manual_seed(seed))
    log_z, _, replica_log_z = replica_estimates(walked.log_w, walked.banked, m.replicas)
    return {"x": walked.x, "log_w": pooled_weights(walked.log_w, replica_log_z),
            "energy": walked.energy, "log_z": log_z, "resamples": walked.n_resamples}


def run_transport(problem: Problem) -> EnergyResult:
    config, m = problem.config, problem.config.method
    step = langevin_step_size(problem)
    base = problem.base()
    sampler = build_sampler(config, problem.target, problem.user_target, base.scale,
                            base.mean, step)
    path = sampler.path(problem.target, config)
    log = train_transport(path, sampler.drift, _training(problem), step_size=step,
                          generator=problem.generator, dtype=problem.dtype)
    training_evals = problem.energy_evals()
    drawn = draw(sampler, path, config, m.samples, m.seed)
    diagnostics = {"objective": OBJECTIVE[m.name], "net": net_kind(config, model_space(
        problem.target, problem.user_target)), "time_steps": path.steps,
        "langevin_step_size": step, "diffusion": step * path.steps,
        "training_energy_evals": training_evals, "simulations": log.simulations,
        "gradient_steps": log.gradient_steps, "budget_reached": log.budget_reached,
        "skipped_steps": log.skipped_steps, "resamples": drawn["resamples"],
        "log_w": "exact discrete path weights (forward/backward Euler-Maruyama kernels)"}
    return EnergyResult(drawn["x"], drawn["log_w"], drawn["energy"], True,
                        log_z=drawn["log_z"], diagnostics=diagnostics, metrics=log.metrics,
                        model=sampler)


def redraw(config, working, original, weights: Path, n: int,
           generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n fresh weighted samples from a saved transport sampler (see `Method.redraw`)."""
    sampler = build_sampler(config, working, original)
    load_model_weights(sampler, weights)   # scale, base centre and step are buffers
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    drawn = draw(sampler, sampler.path(working, config), config, n, seed)
    return {key: drawn[key] for key in ("x", "log_w", "energy")}
