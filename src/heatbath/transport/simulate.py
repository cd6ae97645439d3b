"""Controlled annealed Langevin dynamics with exact discrete-time path weights.

Walkers start from the base p0 and take K Euler–Maruyama steps, h = 1/K, t_k = k/K,

    x_k = x_{k−1} + h·b(x_{k−1}, t_{k−1}) − δ∇V_{β_k}(x_{k−1}) + √(2δ)·ξ,   β_k = β(t_k),

the annealed Langevin dynamics of AIS plus a drift b (NETS; CMCD). Step k draws x_k from the
forward kernel F_k = N(x_{k−1} − δ∇V_{β_k}(x_{k−1}) + h·b(x_{k−1}, t_{k−1}), 2δ) and is weighed
against the backward kernel B_k = N(x_k − δ∇V_{β_k}(x_k) − h·b(x_k, t_k), 2δ), which runs the
same Langevin part and the drift in reverse. The incremental log weight

    log w_k = V_{β_{k−1}}(x_{k−1}) − V_{β_k}(x_k) + log B_k(x_{k−1} | x_k) − log F_k(x_k | x_{k−1})

telescopes to log w = −U(x_K) − log p0(x_0) + Σ_k (log B_k − log F_k): an importance weight
on path space (Del Moral et al. 2006; CMCD, Vargas et al. 2024), so E[w] = Z *exactly* at any
K, any δ and any drift, trained or not. As the steps shrink its sum tends to NETS's Jarzynski
weight A = ∫ (∇·b − ∇V_t·b − ∂_tV_t) dt (Albergo & Vanden-Eijnden 2024) of the SDE
dx = (b − ε∇V_t) dt + √(2ε) dW with ε = δ/h; b = 0 is unadjusted-Langevin AIS.

With resampling (SMC with a learned drift), walkers whose populations' Kish ESS falls below a
threshold are resampled after the step's reweighting, as in `annealing.smc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.samplers.common import per_sample_noise
from heatbath.samplers.transition import gaussian_step, gaussian_step_log_density
from heatbath.transport.path import AnnealedPath, PathPoint

DriftFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (x (N, D), t (N,)) -> (N, D)


def kernel_mean(x: torch.Tensor, grad_v: torch.Tensor, drift: torch.Tensor, step_size: float,
                h: float, tame: float, direction: float) -> torch.Tensor:
    """x − δ∇V/(1 + δ|∇V|/tame) + direction·h·b: the forward (+1) or backward (−1) kernel's
    mean. The Langevin displacement is tamed (Hutzenthaler et al. 2012) so that no step moves
    further than `tame`, where Euler–Maruyama on a quartic wall would diverge; it is plain
    δ∇V wherever δ|∇V| ≪ tame. Any mean function keeps the weights exact, as long as the
    forward draw and both densities use this one."""
    force = step_size * grad_v
    return x - force / (1.0 + force.norm(dim=-1, keepdim=True) / tame) + direction * h * drift


def log_weight_increment(x_prev, x_next, v_prev, v_next, grad_prev, grad_next, drift_prev,
                         drift_next, step_size: float, h: float, tame: float) -> torch.Tensor:
    """log w_k of the module docstring, for any leading batch shape (…, D) of the states.

    v_prev = V_{β_{k−1}}(x_{k−1}), v_next = V_{β_k}(x_k); grad_prev, grad_next = ∇V_{β_k} at
    x_{k−1} and x_k; drift_prev = b(x_{k−1}, t_{k−1}), drift_next = b(x_k, t_k).
    """
    shape = x_prev.shape
    flat = (lambda a: a.reshape(-1, shape[-1]))
    forward_mean = kernel_mean(x_prev, grad_prev, drift_prev, step_size, h, tame, 1.0)
    backward_mean = kernel_mean(x_next, grad_next, drift_next, step_size, h, tame, -1.0)
    log_forward = gaussian_step_log_density(flat(x_next), flat(forward_mean), 2.0 * step_size)
    log_backward = gaussian_step_log_density(flat(x_prev), flat(backward_mean), 2.0 * step_size)
    return v_prev - v_next + (log_backward - log_forward).reshape(shape[:-1])


@dataclass(frozen=True)
class Trajectories:
    """Stored walks: states x (K + 1, N, D) with U and ∇U at each (the base's parts are
    recomputed, they cost nothing), in the order they were visited."""

    x: torch.Tensor
    energy: torch.Tensor
    grad_energy: torch.Tensor

    def points(self, path: AnnealedPath) -> PathPoint:
        """The stacked PathPoint of every stored state, shapes (K + 1, N[, D])."""
        return path.point_at(self.x, self.energy, self.grad_energy)


@dataclass(frozen=True)
class Transported:
    """Walkers at t = 1: x (N, D) with log w (since the last resampling of their population),
    U(x), the log Z each population banked at its resamplings, and the stored walks if asked
    for."""

    x: torch.Tensor
    log_w: torch.Tensor
    energy: torch.Tensor
    banked: torch.Tensor | float
    n_resamples: int
    trajectories: Trajectories | None


def _drift(drift: DriftFn | None, x: torch.Tensor, t: float) -> torch.Tensor:
    if drift is None:
        return torch.zeros_like(x)
    times = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
    return drift(x, times)


def transport(path: AnnealedPath, drift: DriftFn | None, *, n: int, step_size: float,
              seed: int, ids: torch.Tensor | None = None, dtype: torch.dtype = torch.float64,
              keep: bool = False, resampler=None,
              generator: torch.Generator | None = None) -> Transported:
    """n walkers from the base through the path (see the module docstring), without gradients.

    Walker i's noise is keyed by (seed, ids[i], step), so without resampling it does not depend
    on n or on the batching. `resampler` is `annealing.smc.replica_resampler(...)` (then
    `generator` draws its uniforms); `keep` stores every state and its U, ∇U for training.
    """
    if step_size <= 0:
        raise ValueError(f"the Langevin step size must be positive, got {step_size}")
    ids = torch.arange(n) if ids is None else ids
    betas, times, h = path.betas.tolist(), path.times.tolist(), 1.0 / path.steps
    tame = path.base.scale
    x = path.base.sample_keyed(seed, ids).reshape(n, -1).to(dtype)
    noise = per_sample_noise(seed, ids, x)
    log_w = torch.zeros(n, dtype=torch.float64)
    banked, n_resamples = 0.0, 0
    stored = []
    with torch.no_grad():
        point, b = path.evaluate(x), _drift(drift, x, times[0])
        for k in range(1, path.steps + 1):
            if keep:
                stored.append((x, point))
            beta = betas[k]
            mean = kernel_mean(x, point.grad_potential(beta), b, step_size, h, tame, 1.0)
            x_next = gaussian_step(mean, 2.0 * step_size, noise(k - 1))
            alive = torch.isfinite(x_next).all(dim=1)
            x_next = torch.where(alive[:, None], x_next, x)
            point_next, b_next = path.evaluate(x_next), _drift(drift, x_next, times[k])
            increment = log_weight_increment(
                x, x_next, point.potential(betas[k - 1]), point_next.potential(beta),
                point.grad_potential(beta), point_next.grad_potential(beta), b, b_next,
                step_size, h, tame).to(torch.float64)
            # A walker whose step overflowed stays put with weight zero: it drops out of every
            # estimate (its path's target density is zero to working precision).
            log_w = log_w + torch.where(alive & torch.isfinite(increment), increment, -torch.inf)
            x, point, b = x_next, point_next, b_next
            if resampler is not None and k < path.steps:
                rows, log_w, bank, count = resampler(log_w, generator)
                banked, n_resamples = banked + bank, n_resamples + count
                if rows is not None:
                    x, point, b = x[rows], point.take(rows), b[rows]
    if keep:
        stored.append((x, point))
    trajectories = _stack(stored) if keep else None
    return Transported(x, log_w, point.energy, banked, n_resamples, trajectories)


def _stack(stored) -> Trajectories:
    return Trajectories(torch.stack([x for x, _ in stored]),
                        torch.stack([p.energy for _, p in stored]),
                        torch.stack([p.grad_energy for _, p in stored]))


def path_log_weights(path: AnnealedPath, drift: DriftFn, walks: Trajectories,
                     step_size: float) -> torch.Tensor:
    """log w (N,) of stored walks (no resampling) under `drift`, differentiable in its
    parameters: the same increments as `transport`, with the states held fixed (the log-variance
    loss of CMCD trains on them without backpropagating through the dynamics)."""
    steps, n, dim = walks.x.shape[0] - 1, walks.x.shape[1], walks.x.shape[2]
    points = walks.points(path)
    times = path.times.to(walks.x.dtype)[:, None].expand(steps + 1, n)
    b = drift(walks.x.reshape(-1, dim), times.reshape(-1)).reshape(walks.x.shape)
    betas = path.betas.to(walks.x.dtype)
    v = points.potential(betas[:, None])                        # V_{β_k}(x_k), (K + 1, N)
    beta_next = betas[1:, None, None]
    grad_prev = points.take(slice(None, -1)).grad_potential(beta_next)   # ∇V_{β_k}(x_{k−1})
    grad_next = points.take(slice(1, None)).grad_potential(beta_next)    # ∇V_{β_k}(x_k)
    increments = log_weight_increment(walks.x[:-1], walks.x[1:], v[:-1], v[1:], grad_prev,
                                      grad_next, b[:-1], b[1:], step_size, 1.0 / path.steps,
                                      path.base.scale)
    return increments.sum(0)
