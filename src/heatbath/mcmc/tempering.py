"""Parallel tempering (replica exchange) over a ladder of tempered distributions.

Rung k targets log π_k(x) = β_k·(−U(x)) + (1 − β_k)·log p0(x) with a base p0, or β_k·(−U(x))
without one (see `TemperedDensity`). Each round every replica takes one `move` at its own β, then
neighbouring rungs propose to swap configurations, alternating even pairs (0↔1, 2↔3, …) and odd
pairs (1↔2, …) between rounds ("deterministic even–odd" scheme). With log π_k = a + β_k φ the
swap of x_k and x_{k+1} is accepted with probability

    min(1, exp[(β_{k+1} − β_k)·(φ(x_k) − φ(x_{k+1}))]),   φ = −U − log p0  (or −U).

The N columns of the (K, N, *event) replica array are N independent PT systems, so samples taken
from different columns are independent and their spread gives honest standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.mcmc.density import Base, Energy, PathPoint, TemperedDensity, energy_evals_of
from heatbath.mcmc.moves import Move


@dataclass(frozen=True)
class PTResult:
    samples: torch.Tensor            # (n_kept, N, *event): the top rung (betas[-1]) after burn-in
    x: torch.Tensor                  # (K, N, *event): every replica at the end
    swap_acceptance: torch.Tensor    # (K − 1,): accepted fraction of swaps between rungs k, k+1
    betas: torch.Tensor              # (K,)
    energy_evals: int | None         # the target's count for this run; None for a plain callable


def _check_ladder(betas: torch.Tensor, x0: torch.Tensor) -> None:
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError("betas must be a 1-D ladder of at least 2 values, got "
                         f"{tuple(betas.shape)}")
    if not bool((betas[1:] > betas[:-1]).all()):
        raise ValueError("betas must be strictly increasing (the last rung is the one sampled)")
    if x0.shape[0] != betas.shape[0] or x0.ndim < 2:
        raise ValueError(f"x0 must be (K={betas.shape[0]}, N, *event), got {tuple(x0.shape)}")


def _swap(x: torch.Tensor, point: PathPoint, betas: torch.Tensor, parity: int,
          generator: torch.Generator) -> tuple[torch.Tensor, PathPoint, torch.Tensor]:
    """One sweep of swap proposals between pairs (k, k+1), k ≡ parity (mod 2), per column."""
    K = betas.shape[0]
    N = x.shape[0] // K
    lower = torch.arange(parity, K - 1, 2, device=x.device)
    accepted = torch.zeros(K - 1, dtype=torch.int64, device=x.device)
    if lower.numel() == 0:
        return x, point, accepted
    upper = lower + 1
    phi = point.phi.reshape(K, N)
    log_alpha = (betas[upper] - betas[lower]).unsqueeze(1) * (phi[lower] - phi[upper])
    u = torch.rand(log_alpha.shape, generator=generator, dtype=x.dtype, device=x.device)
    accept = torch.log(u) < log_alpha
    rung = torch.arange(K, device=x.device).unsqueeze(1).expand(K, N).clone()
    rung[lower] = torch.where(accept, upper.unsqueeze(1), lower.unsqueeze(1))
    rung[upper] = torch.where(accept, lower.unsqueeze(1), upper.unsqueeze(1))
    rows = (rung * N + torch.arange(N, device=x.device)).reshape(-1)
    accepted[lower] = accept.sum(dim=1)
    return x[rows], point.take(rows), accepted


def parallel_tempering(energy: Energy, x0: torch.Tensor, betas: torch.Tensor, move: Move,
                       generator: torch.Generator, n_rounds: int, burn_in: int = 0,
                       thin: int = 1, base: Base | None = None) -> PTResult:
    """Run replica exchange; returns the top-rung samples kept after `burn_in` rounds.

    x0 is (K, N, *event): K rungs × N independent systems. `move` is an `MCMCMove`/`SpinMove`
    (or anything with the same call), applied once per round at every rung. Step sizes of an
    `MCMCMove` may be per row, (K·N,) in rung-major order, to suit each β.
    """
    betas = torch.as_tensor(betas, dtype=x0.dtype, device=x0.device)
    _check_ladder(betas, x0)
    if not 0 <= burn_in < n_rounds or thin < 1:
        raise ValueError(f"need 0 <= burn_in < n_rounds and thin >= 1, got {burn_in}, "
                         f"{n_rounds}, {thin}")
    K, N = x0.shape[:2]
    evals_before = energy_evals_of(energy)
    row_betas = betas.repeat_interleave(N)
    density = TemperedDensity(energy, row_betas, base)
    x = x0.reshape(K * N, *x0.shape[2:])
    point = density.point(x, need_grad=move.needs_grad)
    accepted = torch.zeros(K - 1, dtype=torch.int64, device=x.device)
    attempts = torch.zeros(K - 1, dtype=torch.int64, device=x.device)
    kept = []
    for r in range(n_rounds):
        x = move(density, x, generator, log_prob=point.log_prob(row_betas),
                 grad=point.grad(row_betas))
        point = density.point(x, need_grad=move.needs_grad)
        x, point, newly = _swap(x, point, betas, r % 2, generator)
        accepted += newly
        attempts[r % 2::2] += N
        if r >= burn_in and (r - burn_in) % thin == 0:
            kept.append(x.reshape(K, N, *x.shape[1:])[-1])
    evals = None if evals_before is None else energy_evals_of(energy) - evals_before
    rate = accepted.to(x.dtype) / attempts.clamp(min=1).to(x.dtype)
    return PTResult(torch.stack(kept), x.reshape(K, N, *x.shape[1:]), rate, betas, evals)
