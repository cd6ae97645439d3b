"""Training losses for the data half: each returns the unreduced per-sample loss.

One denoising / flow-matching regression covers every parametrisation: the network output is
compared with `path.regression_target(prediction, ...)`, which gives the standard losses —
ε-MSE (DDPM "simple"), x₁-MSE, v-MSE, the conditional flow-matching loss (velocity) and EDM's
preconditioned loss (prediction "edm", whose weighting λ(σ)·c_out² = 1 is built into F).
"""

from __future__ import annotations

import torch

from heatbath.paths.path import Path, PathSample

TIME_SAMPLINGS = ("uniform", "lognormal")


def sample_times(kind: str, batch: int, path: Path, t_range: tuple[float, float],
                 generator: torch.Generator, dtype=torch.float32,
                 p_mean: float = -1.2, p_std: float = 1.2) -> torch.Tensor:
    """Per-sample training times.

    uniform    t ~ U(t_lo, t_hi);
    lognormal  EDM: ln λ ~ N(p_mean, p_std²) for the noise level λ = σ/α, mapped to t.
    """
    t_lo, t_hi = t_range
    if kind == "uniform":
        return t_lo + (t_hi - t_lo) * torch.rand(batch, generator=generator, dtype=dtype)
    if kind == "lognormal":
        level = torch.exp(p_mean + p_std * torch.randn(batch, generator=generator,
                                                       dtype=torch.float64))
        t = path.schedule.t_from_noise_level(level)
        return t.clamp(t_lo, t_hi).to(dtype)
    raise ValueError(f"unknown time sampling '{kind}'; choose one of {', '.join(TIME_SAMPLINGS)}")


def regression_loss(net, path: Path, prediction: str, ps: PathSample,
                    cond: torch.Tensor | None = None,
                    drop: torch.Tensor | None = None, observation=None,
                    context: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample between the network output and its target (on a
    phase-space path, the part of ε that reaches the ODE: hybrid score matching; with a
    data-dependent coupling's `observation`, the part on the unknown subspace, the only one
    its Field uses, and the network reads `context` beside x)."""
    c = path.coefficients(ps.t, ps.x1)
    net_input = path.network_input(ps.x_t, c)
    extra = {} if context is None else {"context": context}
    out = net(net_input, ps.t, cond, drop, **extra)
    target = path.regression_target(prediction, ps)
    error = path.trained_part(out) - path.trained_part(target)
    if observation is not None:
        error = observation.project(error)
    return error.pow(2).flatten(1).mean(1)
