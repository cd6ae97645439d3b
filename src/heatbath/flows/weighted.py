"""Importance-weighted samples from a flow (or SNF): what makes every downstream estimate unbiased.

For x ~ q the log-weight is log w = −U(x) − log q(x), unnormalised, so E_q[w] = Z of exp(−U)
exactly, whatever the flow learned. For a stochastic normalizing flow q(x) is intractable and
log w is the path weight instead (same expectation, see `snf.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.core.estimate import Estimate
from heatbath.core import rng
from heatbath.estimators.importance import kish_ess, log_z_importance
from heatbath.targets.base import EnergyTarget


@dataclass(frozen=True)
class WeightedSamples:
    """x (n, *event_shape); log_w, energy (n,); log_q (n,) or None where q(x) is intractable."""

    x: torch.Tensor
    log_w: torch.Tensor
    log_q: torch.Tensor | None
    energy: torch.Tensor

    def log_z(self, energy_evals: int | None = None) -> Estimate:
        """log Z = log mean w with its delta-method standard error."""
        return log_z_importance(self.log_w, energy_evals=energy_evals)

    def ess(self) -> Estimate:
        """Kish effective sample size as a fraction of n (1 when q is the target)."""
        return kish_ess(self.log_w)

    def detach(self) -> "WeightedSamples":
        log_q = None if self.log_q is None else self.log_q.detach()
        return WeightedSamples(self.x.detach(), self.log_w.detach(), log_q, self.energy.detach())


def flow_weighted_sample(flow, n: int, generator: torch.Generator,
                         target: EnergyTarget) -> WeightedSamples:
    """x ~ q with log w = −U(x) − log q(x); differentiable in the flow's parameters."""
    x, log_q = flow.sample_and_log_prob(n, generator)
    energy = target.energy(x.reshape(n, *target.event_shape))
    return WeightedSamples(x, -energy - log_q, log_q, energy)


def _concat(parts: list[WeightedSamples]) -> WeightedSamples:
    log_q = None if parts[0].log_q is None else torch.cat([p.log_q for p in parts])
    return WeightedSamples(torch.cat([p.x for p in parts]), torch.cat([p.log_w for p in parts]),
                           log_q, torch.cat([p.energy for p in parts]))


def _flow_batch(flow, target: EnergyTarget, seed: int, ids: torch.Tensor) -> WeightedSamples:
    """Flow samples whose base noise is keyed by (seed, sample id): batch-independent."""
    dtype = next(flow.parameters()).dtype
    z = flow.base_scale * rng.normal(seed, ids, 0, (flow.dim,), dtype)
    x, log_det = flow.transform(z)
    log_q = flow.base_log_prob(z) - log_det
    x = flow.unflatten(x)
    energy = target.energy(x.reshape(len(ids), *target.event_shape))
    return WeightedSamples(x, -energy - log_q, log_q, energy)


def importance_sample(model, target: EnergyTarget, n: int, generator: torch.Generator,
                      batch_size: int = 4096) -> WeightedSamples:
    """n weighted samples from a `Flow` or `SNF`, drawn in batches without gradients.

    Sample i depends only on the generator's state and i (one seed is drawn from the generator;
    the base noise, and an SNF's Langevin / Metropolis draws, are keyed per sample), never on n
    or the batch size. Energy evaluations are counted by `target` itself.
    """
    from heatbath.flows.snf import PathNoise

    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1; got {n}, {batch_size}")
    is_flow = hasattr(model, "transform") and hasattr(model, "base_log_prob")
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            ids = torch.arange(start, min(n, start + batch_size))
            if is_flow:
                parts.append(_flow_batch(model, target, seed, ids))
            else:
                noise = PathNoise(seed=seed, ids=ids)
                parts.append(model.weighted_sample(len(ids), noise, target).detach())
    return _concat(parts)
