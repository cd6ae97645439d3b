"""Sequential Monte Carlo sampler: AIS plus adaptive systematic resampling (Del Moral et al. 2006).

Same path, weights and moves as `ais.py`. After each reweighting, a population whose Kish ESS
falls below `ess_threshold · n` is resampled systematically and its weights reset to zero; the
mean weight at that moment is banked, so for each population

    log Ẑ = log_z_start + Σ_epochs log mean(w over the epoch) + log mean(w since the last
            resampling),

which is the standard unbiased SMC estimate of Z (unbiased in Z, not in log Z).

Error bars: after resampling the particles are no longer independent, so the delta method of AIS
does not apply. Instead R independent populations (`n_replicas`, default 8) run batched side by
side, each with its own resampling, and

    value  = log mean_r Ẑ_r   (pooling the replicas' unbiased Ẑ; its log bias is R× smaller than a
                               single replica's),
    stderr = std_r(log Ẑ_r) / √R   (the spread across replicas; by the delta method this equals the
                               stderr of the pooled log Ẑ when the spread is small).

With few replicas the stderr itself is noisy (it has R − 1 degrees of freedom).
"""

from __future__ import annotations

import math

import torch

from heatbath.core.estimate import Estimate
from heatbath.annealing.ais import AnnealResult, anneal, check_betas
from heatbath.annealing.weights import kish_ess_count, log_mean_exp
from heatbath.mcmc.density import Base, Energy, energy_evals_of
from heatbath.mcmc.moves import Move


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Systematic resampling of each row of log_w (R, n) -> ancestor indices (R, n) within the row.

    One uniform per row: particle i is picked once for every point (u + j)/n, j = 0..n−1, that
    falls in its slice of the cumulative weights, i.e. ⌊n·wᵢ⌋ or ⌈n·wᵢ⌉ times.
    """
    R, n = log_w.shape
    cdf = torch.cumsum(torch.softmax(log_w.to(torch.float64), dim=1), dim=1)
    cdf[:, -1] = 1.0                                   # guard against rounding below 1
    u = torch.rand(R, 1, generator=generator, dtype=torch.float64, device=log_w.device)
    points = (u + torch.arange(n, dtype=torch.float64, device=log_w.device)) / n
    return torch.searchsorted(cdf, points, right=True).clamp(max=n - 1)


def replica_resampler(n_replicas: int, ess_threshold: float):
    """The resampling step of `smc`: (log_w, generator) -> (rows to keep or None, new log_w,
    log Z banked per replica, resampling events), for n_replicas populations back to back."""
    def resample(log_w: torch.Tensor, generator: torch.Generator):
        lw = log_w.reshape(n_replicas, -1)
        n = lw.shape[1]
        need = kish_ess_count(lw, dim=1) < ess_threshold * n
        ancestors = systematic_resample(lw, generator)     # drawn every time: same stream
        if not bool(need.any()):
            return None, log_w, torch.zeros(n_replicas, dtype=torch.float64), 0
        own = torch.arange(n, device=lw.device).expand(n_replicas, n)
        ancestors = torch.where(need.unsqueeze(1), ancestors, own)
        offset = (torch.arange(n_replicas, device=lw.device) * n).unsqueeze(1)
        rows = (ancestors + offset).reshape(-1)
        banked = torch.where(need, log_mean_exp(lw, dim=1), 0.0)
        new_log_w = torch.where(need.unsqueeze(1), 0.0, lw).reshape(-1)
        return rows, new_log_w, banked, int(need.sum())
    return resample


def smc(energy: Energy, x0: torch.Tensor, betas: torch.Tensor | list[float], move: Move,
        generator: torch.Generator, base: Base | None = None, log_z_start: float = 0.0,
        n_replicas: int = 8, ess_threshold: float = 0.5) -> AnnealResult:
    """SMC from exact samples x0 of γ_{betas[0]}: x0 holds n_replicas populations back to back.

    x0 is (n_replicas·n, *event); rows r·n … (r+1)·n − 1 form replica r. See `ais` for the path,
    `move` and `log_z_start`.
    """
    betas = check_betas(betas)
    if n_replicas < 2:
        raise ValueError(f"n_replicas must be >= 2 to give a standard error, got {n_replicas}")
    if x0.shape[0] % n_replicas or x0.shape[0] < 2 * n_replicas:
        raise ValueError(f"x0 has {x0.shape[0]} rows: need n_replicas={n_replicas} populations "
                         "of equal size >= 2")
    if not 0.0 < ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must lie in (0, 1], got {ess_threshold}")
    before = energy_evals_of(energy)
    x, log_w, banked, n_resamples = anneal(energy, x0, betas, move, generator, base,
                                           replica_resampler(n_replicas, ess_threshold))
    evals = None if before is None else energy_evals_of(energy) - before
    log_z, ess_est, replica_log_z = replica_estimates(log_w, banked, n_replicas, log_z_start,
                                                      evals)
    return AnnealResult(x, log_w, log_z, ess_est, evals, betas, n_resamples, replica_log_z)


def replica_estimates(log_w: torch.Tensor, banked, n_replicas: int, log_z_start: float = 0.0,
                      evals: int | None = None) -> tuple[Estimate, Estimate, torch.Tensor]:
    """(pooled log Z, mean per-replica ESS fraction, log Ẑ_r of each replica) from the weights
    since each replica's last resampling and what it banked (see the module docstring)."""
    lw = log_w.reshape(n_replicas, -1)
    replica_log_z = banked + log_mean_exp(lw, dim=1) + log_z_start
    log_z = Estimate(float(log_mean_exp(replica_log_z, dim=0)),
                     float(replica_log_z.std() / math.sqrt(n_replicas)), n_replicas,
                     energy_evals=evals)
    ess = kish_ess_count(lw, dim=1) / lw.shape[1]       # a fraction, as everywhere else
    ess_est = Estimate(float(ess.mean()), float(ess.std() / math.sqrt(n_replicas)), n_replicas)
    return log_z, ess_est, replica_log_z


def pooled_weights(log_w: torch.Tensor, replica_log_z: torch.Tensor) -> torch.Tensor:
    """Per-particle log weights relative to the target: each replica's weights (since its last
    resampling) rescaled so that their log-mean-exp is the replica's whole log Ẑ_r, so every
    self-normalised estimate and the pooled log Z read them like importance weights."""
    per = log_w.reshape(replica_log_z.shape[0], -1)
    return (per - log_mean_exp(per, dim=1)[:, None] + replica_log_z[:, None]).reshape(-1)
