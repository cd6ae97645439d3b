"""Annealed importance sampling (Neal 2001) along a tempered path, with exact Jarzynski weights.

The path is the linear-in-β family of `TemperedDensity`, log γ_β(x) = a(x) + β·φ(x):

  * from a base p0 (β: 0 → 1):  log γ_β = (1 − β) log p0 + β(−U); γ_0 = p0 is normalised, so
    log_z_start = 0 and the result estimates log Z of exp(−U);
  * in inverse temperature (no base): log γ_β = −βU. From β = 0 on spins (uniform, Z_0 = 2^N) use
    log_z_start = N ln 2; between two temperatures β_a → β_b of one target, x0 must be samples at
    β_a, and with log_z_start = 0 the estimate is log Z(β_b) − log Z(β_a) = −Δ(βF).

Each step t adds the work increment (β_t − β_{t−1})·φ(x) at the current x to log w, *then* moves x
with an MCMC transition that leaves γ_{β_t} invariant. The energy evaluation made for the
increment also seeds the move (its log π and gradient at β_t), so a step costs one evaluation plus
the move's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core.estimate import Estimate
from heatbath.annealing.weights import ess_estimate, log_z_estimate
from heatbath.mcmc.density import Base, Energy, TemperedDensity, energy_evals_of
from heatbath.mcmc.moves import Move

# (log_w, generator) -> (rows to keep or None, new log_w, log Z banked per replica, resamples)
Resampler = Callable[[torch.Tensor, torch.Generator],
                     tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, int]]


@dataclass(frozen=True)
class AnnealResult:
    x: torch.Tensor                 # final particles (n, *event), weighted by exp(log_w)
    log_w: torch.Tensor             # (n,) log weights (SMC: since the replica's last resampling)
    log_z: Estimate                 # log Z at betas[-1] (plus log_z_start)
    ess: Estimate                   # Kish ESS of the final weights (SMC: mean per replica)
    energy_evals: int | None        # the target's count for this run; None for a plain callable
    betas: torch.Tensor
    n_resamples: int = 0            # SMC: resampling events, summed over replicas
    replica_log_z: torch.Tensor | None = None   # SMC: log Ẑ of each replica, (R,)


def check_betas(betas: torch.Tensor | list[float]) -> torch.Tensor:
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError(f"betas must be a 1-D grid of at least 2 points, got {tuple(betas.shape)}")
    steps = betas[1:] - betas[:-1]
    if not (bool((steps > 0).all()) or bool((steps < 0).all())):
        raise ValueError("betas must be strictly monotone")
    return betas


def anneal(energy: Energy, x0: torch.Tensor, betas: torch.Tensor, move: Move,
           generator: torch.Generator, base: Base | None = None,
           resampler: Resampler | None = None,
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float, int]:
    """The loop shared by AIS and SMC; returns (x, log_w, banked log Z, resamples)."""
    density = TemperedDensity(energy, float(betas[0]), base)
    x = x0.detach()
    point = density.point(x, need_grad=move.needs_grad)
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    banked: torch.Tensor | float = 0.0
    n_resamples = 0
    for t in range(1, betas.shape[0]):
        beta = float(betas[t])
        log_w = log_w + (beta - float(betas[t - 1])) * point.phi.to(torch.float64)   # work
        if resampler is not None:
            rows, log_w, bank, count = resampler(log_w, generator)
            banked, n_resamples = banked + bank, n_resamples + count
            if rows is not None:
                x, point = x[rows], point.take(rows)
        x = move(density.with_beta(beta), x, generator, log_prob=point.log_prob(beta),
                 grad=point.grad(beta))
        if t < betas.shape[0] - 1:
            point = density.point(x, need_grad=move.needs_grad)
    return x, log_w, banked, n_resamples


def ais(energy: Energy, x0: torch.Tensor, betas: torch.Tensor | list[float], move: Move,
        generator: torch.Generator, base: Base | None = None,
        log_z_start: float = 0.0) -> AnnealResult:
    """AIS from exact samples x0 of γ_{betas[0]} to γ_{betas[-1]}; see the module docstring.

    `move` is an `MCMCMove` (continuous) or `SpinMove` (Ising), applied once per β after the
    first. log Z = log_z_start + log mean(w), with a delta-method standard error.
    """
    betas = check_betas(betas)
    before = energy_evals_of(energy)
    x, log_w, _, _ = anneal(energy, x0, betas, move, generator, base)
    evals = None if before is None else energy_evals_of(energy) - before
    return AnnealResult(x, log_w, log_z_estimate(log_w, log_z_start, evals), ess_estimate(log_w),
                        evals, betas)


def ais_from_base(energy: Energy, base: Base, n: int, betas: torch.Tensor | list[float],
                  move: Move, generator: torch.Generator) -> AnnealResult:
    """AIS from n exact draws of a normalised base along (1 − β) log p0 + β(−U), β: 0 → 1."""
    betas = check_betas(betas)
    if float(betas[0]) != 0.0:
        raise ValueError(f"draws from the base are exact only at beta = 0, got betas[0] = "
                         f"{float(betas[0])}")
    x0 = base.sample(n, generator)
    return ais(energy, x0, betas, move, generator, base=base)
