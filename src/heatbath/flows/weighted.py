"""Importance-weighted samples from a flow: what makes every downstream estimate unbiased.

For x ~ q the log-weight is log w = −U(x) − log q(x), unnormalised, so E_q[w] = Z of exp(−U)
exactly, whatever the flow learned. For a flow with stochastic layers q(x) is intractable and
log w is the path weight instead (same expectation, see `sequential.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.core.estimate import Estimate
from heatbath.estimators.importance import kish_ess, log_z_importance
from heatbath.flows.noise import PathNoise
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


def _concat(parts: list[WeightedSamples]) -> WeightedSamples:
    log_q = None if parts[0].log_q is None else torch.cat([p.log_q for p in parts])
    return WeightedSamples(torch.cat([p.x for p in parts]), torch.cat([p.log_w for p in parts]),
                           log_q, torch.cat([p.energy for p in parts]))


def importance_sample(model, target: EnergyTarget, n: int, generator: torch.Generator,
                      batch_size: int = 4096) -> WeightedSamples:
    """n weighted samples from any flow (`Flow`, `SNF`), drawn in batches without gradients.

    Sample i depends only on the generator's state and i (one seed is drawn from the generator;
    the base draw and every layer's draws are keyed per sample, from the model's
    `base_stream` on), never on n or the batch size. Energy evaluations are counted by `target`.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1; got {n}, {batch_size}")
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            ids = torch.arange(start, min(n, start + batch_size))
            noise = PathNoise(seed=seed, ids=ids, first_stream=model.base_stream)
            parts.append(model.weighted_sample(len(ids), noise, target).detach())
    return _concat(parts)
