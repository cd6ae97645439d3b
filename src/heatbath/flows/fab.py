"""Flow annealed importance sampling bootstrap (FAB; Midgley et al., ICLR 2023).

FAB trains a flow q_θ on the α = 2 divergence D₂(p‖q) = log ∫ p²/q. Unlike the reverse KL, it
punishes a missed mode without bound (p²/q explodes where q has no mass), so the minimiser
covers every mode. Its gradient is −E_g[w̄ ∇ log q_θ] under g ∝ p²/q, the distribution that
minimises the variance of importance weights for p under q. Each step therefore runs AIS from q
to g and takes the surrogate loss

    L(θ) = −Σᵢ w̄ᵢ log q_θ(xᵢ),      w̄ = softmax(log w_AIS), held fixed.

The AIS path between q and g is linear in β:

    log γ_β = (1 − β) log q + β (−2U − log q),

i.e. the tempered family of `heatbath.mcmc.density.TemperedDensity` with the flow as base and
the "energy" 2U + log q — so the existing AIS loop and MCMC moves run it unchanged. Gradients
of log q with respect to x come from autograd through the spline inverse; the flow's
parameters are held fixed inside AIS.

With a prioritised replay buffer, one AIS run serves several gradient steps: entries are drawn
with probability ∝ w (approximate draws from g), the loss is −mean log q_θ, and after each step
the drawn entries are rescored, log w += log q_old − log q_new, since the target p²/q moved
with q. The buffer cuts the energy evaluations per gradient step by the updates per AIS run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.annealing.ais import ais
from heatbath.core.errors import TrainingDiverged
from heatbath.mcmc.moves import Move
from heatbath.targets.base import EnergyTarget


@dataclass(frozen=True)
class FabAnnealing:
    """FAB's AIS runs — β grid (0 → 1) and the move made at each β — and their reuse.

    buffer      replay-buffer capacity in samples; 0: every step uses its own AIS batch.
    updates     with a buffer: gradient steps per AIS run.
    """

    betas: torch.Tensor
    move: Move
    buffer: int = 0
    updates: int = 4


class _FlowAsBase:
    """The flow seen by AIS as a normalised base p₀ = q (flat coordinates, no parameter grads)."""

    def __init__(self, flow) -> None:
        self.flow = flow

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return self.flow.flatten(self.flow.sample(n, generator))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(x)


def fab_batch(flow, target: EnergyTarget, n: int, generator: torch.Generator,
              annealing: FabAnnealing) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, log w): n AIS samples from q towards g ∝ p²/q, detached, x flat (n, dim)."""
    event_shape = target.event_shape

    def doubled_energy_plus_log_q(x: torch.Tensor) -> torch.Tensor:
        return 2.0 * target.energy(x.reshape(x.shape[0], *event_shape)) + flow.log_prob(x)

    base = _FlowAsBase(flow)
    result = ais(doubled_energy_plus_log_q, base.sample(n, generator), annealing.betas,
                 annealing.move, generator, base=base)
    return result.x.detach(), result.log_w.detach()


def fab_loss(flow, x: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """−Σ w̄ log q_θ(x) with self-normalised, fixed weights w̄."""
    weights = torch.softmax(log_w.to(torch.float64), 0).to(x.dtype)
    return -(weights * flow.log_prob(x)).sum()


class ReplayBuffer:
    """A ring of AIS samples with their log w (towards p²/q) and the log q they were scored at."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size, self.next = capacity, 0, 0
        self.x = self.log_w = self.log_q = None

    def add(self, x: torch.Tensor, log_w: torch.Tensor, log_q: torch.Tensor) -> None:
        finite = torch.isfinite(log_w) & torch.isfinite(log_q)   # a NaN would poison every draw
        x, log_w, log_q = x[finite], log_w[finite], log_q[finite]
        if len(x) == 0:
            return
        if self.x is None:
            self.x = x.new_empty((self.capacity, *x.shape[1:]))
            self.log_w = log_w.new_empty(self.capacity)
            self.log_q = log_q.new_empty(self.capacity)
        for start in range(0, len(x), self.capacity):   # a batch larger than the ring wraps
            part = slice(start, min(len(x), start + self.capacity))
            rows = (self.next + torch.arange(part.stop - part.start)) % self.capacity
            self.x[rows], self.log_w[rows], self.log_q[rows] = x[part], log_w[part], log_q[part]
            self.next = int(rows[-1] + 1) % self.capacity
            self.size = min(self.capacity, self.size + len(rows))

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n distinct row indices, drawn with probability ∝ w (as many as there are, if fewer)."""
        if self.size == 0:
            raise TrainingDiverged("FAB: every AIS weight so far was NaN or infinite; lower "
                                   "method.step_size or flow.lr, or check the target's energy")
        weights = torch.softmax(self.log_w[:self.size].to(torch.float64), 0)
        return torch.multinomial(weights, min(n, self.size), replacement=False,
                                 generator=generator)

    def rescore(self, rows: torch.Tensor, log_q_new: torch.Tensor) -> None:
        """The flow moved: retarget the rows' weights from p²/q_old to p²/q_new."""
        self.log_w[rows] += self.log_q[rows] - log_q_new.to(self.log_q.dtype)
        self.log_q[rows] = log_q_new.to(self.log_q.dtype)


class FabObjective:
    """The FAB loss of each training step, with or without a replay buffer."""

    def __init__(self, flow, target: EnergyTarget, annealing: FabAnnealing, batch_size: int,
                 generator: torch.Generator) -> None:
        self.flow, self.target, self.annealing = flow, target, annealing
        self.batch_size, self.generator = batch_size, generator
        self.buffer = ReplayBuffer(annealing.buffer) if annealing.buffer > 0 else None
        self.steps, self.rows = 0, None

    def _run_ais(self) -> tuple[torch.Tensor, torch.Tensor]:
        return fab_batch(self.flow, self.target, self.batch_size, self.generator, self.annealing)

    def loss(self) -> torch.Tensor:
        if self.buffer is None:
            return fab_loss(self.flow, *self._run_ais())
        # A full round of updates' worth of samples before the first step, then one AIS run
        # per `updates` steps.
        runs = self.annealing.updates if self.steps == 0 else int(
            self.steps % self.annealing.updates == 0)
        for _ in range(runs):
            x, log_w = self._run_ais()
            with torch.no_grad():
                self.buffer.add(x, log_w, self.flow.log_prob(x))
        self.steps += 1
        self.rows = self.buffer.draw(self.batch_size, self.generator)
        return -self.flow.log_prob(self.buffer.x[self.rows]).mean()

    def after_update(self) -> None:
        """Rescore the entries the last step trained on (the flow has just changed)."""
        if self.buffer is not None and self.rows is not None:
            with torch.no_grad():
                self.buffer.rescore(self.rows, self.flow.log_prob(self.buffer.x[self.rows]))
