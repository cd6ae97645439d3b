"""Train a flow (or SNF) on an energy: reverse KL, forward KL from samples, both, or FAB.

reverse_kl  KL(q‖p) = E_q[log q(x) + U(x)] + log Z, by the reparametrisation trick: x = T_θ(z)
            with z drawn from the base, so the gradient flows through U (targets are
            differentiable torch functions). Mode-seeking: needs no samples, may miss modes.
            For an SNF the same loss is the path KL, E[−log w] (see snf.py).
forward_kl  KL(p‖q) = −E_p[log q(x)] + const on given target samples. Mass-covering; needs
            samples and a tractable log q (plain flows only).
both        the sum of the two.
fab         the α = 2 divergence D₂(p‖q), mass-covering from the energy alone: AIS runs from q
            towards p²/q (every step, or every `updates` steps into a replay buffer) and q is
            fitted to the weighted AIS samples (see fab.py). Needs a tractable log q and
            `annealing` (the β grid, the MCMC move and the buffer).

Every step is clipped to `max_grad_norm`. A step whose loss or gradient is not finite is skipped
(counted in the log); after `max_nonfinite` of them training stops with a clear error rather than
silently producing a broken flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core.errors import TrainingDiverged, UserError
from heatbath.core.optim import BudgetCosine, finite_step
from heatbath.estimators.importance import kish_ess
from heatbath.flows.fab import FabAnnealing, FabObjective
from heatbath.targets.base import EnergyTarget

OBJECTIVES = ("reverse_kl", "forward_kl", "both", "fab")


@dataclass(frozen=True)
class FlowTrainingLog:
    """One entry per logged step: the mean loss since the previous log and a reverse ESS.

    `ess` is the Kish ESS fraction of the flow's own batch at that step (reverse objectives) or
    of a fresh gradient-free batch (forward KL); `energy_evals` counts U calls during training.
    """

    steps: tuple[int, ...]
    losses: tuple[float, ...]
    ess: tuple[float, ...]
    skipped_steps: int
    energy_evals: int
    budget_reached: bool = False      # training stopped at method.budget, before `steps`

    @property
    def final_ess(self) -> float:
        return self.ess[-1] if self.ess else math.nan


def _check_arguments(model, objective: str, samples, annealing, steps: int, batch_size: int,
                     log_every: int) -> None:
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    if steps < 1 or batch_size < 2 or log_every < 1:
        raise UserError(f"need steps >= 1, batch_size >= 2, log_every >= 1; "
                        f"got {steps}, {batch_size}, {log_every}")
    if objective == "fab" and annealing is None:
        raise UserError("objective 'fab' needs annealing=FabAnnealing(betas, move)")
    if objective != "reverse_kl":
        if samples is None and objective != "fab":
            raise UserError(f"objective '{objective}' needs target samples (samples=...)")
        if not hasattr(model, "log_prob"):
            raise UserError(f"objective '{objective}' needs a tractable log q; "
                            f"{type(model).__name__} has none (use reverse_kl)")


def _forward_kl(model, samples: torch.Tensor, batch_size: int,
                generator: torch.Generator) -> torch.Tensor:
    """−mean log q on a minibatch of target samples drawn (with replacement) by `generator`."""
    index = torch.randint(samples.shape[0], (batch_size,), generator=generator)
    return -model.log_prob(samples[index.to(samples.device)]).mean()


def _loss_and_ess(model, target: EnergyTarget, objective: str, samples,
                  fab: FabObjective | None, batch_size: int, generator: torch.Generator,
                  want_ess: bool) -> tuple[torch.Tensor, float]:
    """The step's loss, and (when asked) the reverse ESS fraction of a flow batch."""
    loss = torch.zeros(())
    ess = math.nan
    if fab is not None:
        return fab.loss(), _fresh_ess(model, target, batch_size, generator, want_ess)
    if objective in ("reverse_kl", "both"):
        batch = model.weighted_sample(batch_size, generator, target)
        loss = loss - batch.log_w.mean()
        if want_ess and bool(torch.isfinite(batch.log_w).all()):
            ess = kish_ess(batch.log_w.detach()).value
    if objective in ("forward_kl", "both"):
        loss = loss + _forward_kl(model, samples, batch_size, generator)
        if objective == "forward_kl":
            ess = _fresh_ess(model, target, batch_size, generator, want_ess)
    return loss, ess


def _fresh_ess(model, target: EnergyTarget, batch_size: int, generator: torch.Generator,
               want_ess: bool) -> float:
    """Reverse ESS fraction of a gradient-free batch (objectives that draw no flow batch)."""
    if not want_ess:
        return math.nan
    with torch.no_grad():
        log_w = model.weighted_sample(batch_size, generator, target).log_w
    return kish_ess(log_w).value if bool(torch.isfinite(log_w).all()) else math.nan


def train_flow(model, target: EnergyTarget, *, steps: int, batch_size: int = 256,
               lr: float = 1e-3, objective: str = "reverse_kl",
               samples: torch.Tensor | None = None,
               annealing: FabAnnealing | None = None, generator: torch.Generator,
               progress: Callable[[int], None] | None = None, log_every: int = 50,
               max_grad_norm: float = 10.0, max_nonfinite: int = 20,
               lr_decay: bool = True, budget: int = 0) -> FlowTrainingLog:
    """Adam on `objective`; with `lr_decay` the rate follows a cosine from lr to 0 over the
    steps or the budget, whichever runs out first (`core.optim.BudgetCosine`).

    `model` is a `Flow` or an `SNF`; `progress(done)` is called after every step. `annealing`
    (objective "fab" only) sets the AIS run of every step. `budget` (0: none) stops training
    before a step whose cost, taken as the dearest step so far, would take the target
    evaluations made during training past it.
    """
    _check_arguments(model, objective, samples, annealing, steps, batch_size, log_every)
    if samples is not None:
        samples = samples.to(dtype=next(model.parameters()).dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = BudgetCosine(optimizer, steps, budget) if lr_decay else None
    fab = (FabObjective(model, target, annealing, batch_size, generator)
           if objective == "fab" else None)
    evals_before = target.energy_evals
    logged_steps, logged_losses, logged_ess, window = [], [], [], []
    skipped, dearest, budget_reached = 0, 0, False
    model.train()
    for step in range(1, steps + 1):
        spent = target.energy_evals - evals_before
        if budget and spent + dearest > budget:
            budget_reached = True
            break
        want_log = step % log_every == 0 or step == steps
        loss, ess = _loss_and_ess(model, target, objective, samples, fab, batch_size,
                                  generator, want_log)
        if finite_step(optimizer, list(model.parameters()), loss, max_grad_norm):
            window.append(float(loss.detach()))
            if fab is not None:
                fab.after_update()
            if schedule is not None:   # a skipped step does not advance the schedule
                schedule.step(target.energy_evals - evals_before)
        else:
            skipped += 1
            if skipped > max_nonfinite:
                raise TrainingDiverged(f"train_flow: {skipped} steps had a non-finite loss or "
                                       f"gradient (last at step {step}); lower flow.lr, widen "
                                       f"the flow's scale/bound, or check the target's energy")
        if want_log:
            logged_steps.append(step)
            logged_losses.append(sum(window) / len(window) if window else math.nan)
            logged_ess.append(ess)
            window = []
        if progress is not None:
            progress(step)
        dearest = max(dearest, target.energy_evals - evals_before - spent)
    model.eval()
    return FlowTrainingLog(tuple(logged_steps), tuple(logged_losses), tuple(logged_ess),
                           skipped, target.energy_evals - evals_before, budget_reached)
