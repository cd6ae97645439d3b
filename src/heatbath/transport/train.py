"""Training a transport sampler's drift: simulate, store the walks, take gradient steps on them.

Every `updates` gradient steps the current drift runs `batch_size` fresh walks, and plain
annealed Langevin (no drift) `explore`·batch_size more (K + 1 energy and force evaluations per
walk, counted by the target); they join a buffer of the latest `buffer` walks, and the objective
(`losses`) is evaluated on states or walks drawn from it. Gradient steps read the stored U and
∇U, so they evaluate no energy: training costs the simulations' evaluations only, and `budget`
stops it before a simulation would exceed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from heatbath.core.errors import TrainingDiverged
from heatbath.core.optim import BudgetCosine, finite_step
from heatbath.estimators.importance import kish_ess
from heatbath.transport.losses import log_variance_loss, pinn_loss
from heatbath.transport.path import AnnealedPath
from heatbath.transport.simulate import Trajectories, transport

OBJECTIVES = ("pinn", "log_variance")
MAX_GRAD_NORM, MAX_NONFINITE = 10.0, 20


@dataclass(frozen=True)
class TransportTraining:
    """How to train: the objective, gradient steps, walks per simulation, gradient steps per
    simulation, walks kept, PINN states per grid time and step, Adam's rate, the evaluation
    budget (0: none)."""

    objective: str
    steps: int
    batch_size: int
    updates: int
    buffer: int
    points: int
    lr: float
    budget: int = 0
    # extra walks without the drift per simulation, as a fraction of batch_size
    explore: float = 0.0
    # the PINN loss's ∇·b: exact | hutchinson (`losses.DIVERGENCES`)
    divergence: str = "exact"


@dataclass
class TrainingLog:
    metrics: list = field(default_factory=list)
    simulations: int = 0
    gradient_steps: int = 0
    energy_evals: int = 0
    budget_reached: bool = False
    skipped_steps: int = 0


class WalkBuffer:
    """The latest `capacity` stored walks (at least one simulation's worth)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.parts = capacity, []
        self._joined: Trajectories | None = None

    def add(self, walks: Trajectories) -> None:
        self.parts.append(walks)
        while sum(p.x.shape[1] for p in self.parts) - self.parts[0].x.shape[1] >= self.capacity:
            self.parts.pop(0)
        self._joined = None

    def walks(self) -> Trajectories:
        """Every kept walk, joined once per simulation (gradient steps reuse the join)."""
        if self._joined is None:
            self._joined = Trajectories(*(torch.cat([getattr(p, name) for p in self.parts], 1)
                                          for name in ("x", "energy", "grad_energy")))
        return self._joined

    def subset(self, count: int, generator: torch.Generator) -> Trajectories:
        every = self.walks()
        pick = torch.randperm(every.x.shape[1], generator=generator)[:count]
        return Trajectories(every.x[:, pick], every.energy[:, pick], every.grad_energy[:, pick])


def _loss(settings: TransportTraining, path, drift, buffer: WalkBuffer,
          step_size: float, generator: torch.Generator) -> torch.Tensor:
    if settings.objective == "pinn":
        return pinn_loss(path, drift, buffer.walks(), settings.points, generator,
                         settings.divergence)[0]
    return log_variance_loss(path, drift, buffer.subset(settings.batch_size, generator),
                             step_size)


def train_transport(path: AnnealedPath, drift: torch.nn.Module, settings: TransportTraining, *,
                    step_size: float,
                    generator: torch.Generator, dtype: torch.dtype = torch.float64,
                    log_every: int = 50) -> TrainingLog:
    """Adam on `settings.objective` with a cosine rate that reaches 0 where the steps or the
    budget run out (`core.optim.BudgetCosine`); see the module docstring."""
    if settings.objective not in OBJECTIVES:
        raise ValueError(f"unknown transport objective {settings.objective!r}")
    parameters = list(drift.parameters())
    optimizer = torch.optim.Adam(parameters, lr=settings.lr)
    schedule = BudgetCosine(optimizer, settings.steps, settings.budget)
    buffer, log, window = WalkBuffer(settings.buffer), TrainingLog(), []
    per_simulation = (settings.batch_size + _explored(settings)) * (path.steps + 1)
    started = path.target.energy_evals
    ess = math.nan
    for step in range(1, settings.steps + 1):
        if (step - 1) % settings.updates == 0:
            spent = path.target.energy_evals - started
            if settings.budget and spent + per_simulation > settings.budget:
                log.budget_reached = True
                break
            ess = _simulate_into(buffer, path, drift, settings, step_size, generator, dtype)
            log.simulations += 1
        loss = _loss(settings, path, drift, buffer, step_size, generator)
        if finite_step(optimizer, parameters, loss, MAX_GRAD_NORM):
            window.append(float(loss.detach()))
            schedule.step(path.target.energy_evals - started)
        else:
            log.skipped_steps += 1
            if log.skipped_steps > MAX_NONFINITE:
                raise TrainingDiverged(f"transport training: {log.skipped_steps} steps had a "
                                       f"non-finite loss or gradient (last at step {step}); "
                                       f"lower transport.lr or transport.step_size")
        log.gradient_steps = step
        if step % log_every == 0 or step == settings.steps:
            log.metrics.append({"step": step, "loss": sum(window) / max(len(window), 1),
                                "ess": ess, "energy_evals": path.target.energy_evals - started})
            window = []
    log.energy_evals = path.target.energy_evals - started
    return log


def _explored(settings: TransportTraining) -> int:
    """Walks without the drift added to each simulation."""
    return int(round(settings.explore * settings.batch_size))


def _simulate_into(buffer: WalkBuffer, path, drift, settings: TransportTraining,
                   step_size: float, generator: torch.Generator, dtype) -> float:
    """One simulation of the current drift into the buffer; its reverse ESS fraction."""
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    drift.eval()
    walks = transport(path, drift, n=settings.batch_size, step_size=step_size, seed=seed,
                      dtype=dtype, keep=True)
    drift.train()
    buffer.add(walks.trajectories)
    n_explore = _explored(settings)
    if n_explore:
        plain = transport(path, None, n=n_explore, step_size=step_size, seed=seed + 1,
                          dtype=dtype, keep=True)
        buffer.add(plain.trajectories)
    finite = torch.isfinite(walks.log_w)
    return kish_ess(walks.log_w.numpy()).value if bool(finite.all()) else math.nan
