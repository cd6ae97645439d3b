"""Stochastic samplers: DDIM(η), DDPM ancestral and Euler–Maruyama with tunable diffusion.

They need Gaussian path noise (the injected noise must match the path's). Noise comes from a
NoiseSource keyed by (seed, step, sample), so results do not depend on batching. A `trace`
list, when given, receives (x after step k, the standard deviation of the noise that step
injected) for every step: the states and kernels a path weight is made of (`returned.py`).
"""

from __future__ import annotations

import math

import torch

from heatbath.samplers.common import NoiseSource, SamplerResult, alpha_at, sigma_at
from heatbath.samplers.transition import gaussian_step


def _require_gaussian(field, name: str) -> None:
    if not field.path.noise.is_gaussian:
        raise ValueError(f"the {name} sampler injects Gaussian noise and needs a Gaussian path; "
                         f"use euler, heun, dpm++2m or dopri5 for PFGM++")


def ddim(field, x: torch.Tensor, grid: torch.Tensor, noise: NoiseSource | None = None,
         eta: float = 0.0, trace: list | None = None) -> SamplerResult:
    """DDIM (Song, Meng & Ermon 2021): x_t = α_t·x̂₁ + √(σ_t² − c²)·ẑ + c·ξ.

    c = η·σ_t·√(1 − r²), r = (σ_t α_s)/(α_t σ_s) the ratio of noise levels; η = 0 is the
    deterministic DDIM, η = 1 the DDPM posterior (ancestral) step.
    """
    if eta != 0.0:
        _require_gaussian(field, "ddim(eta>0)/ddpm")
        if noise is None:
            raise ValueError("a stochastic DDIM step (eta > 0) needs a noise source")
    times = grid.tolist()
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        a_s, s_s = alpha_at(field, t), sigma_at(field, t)
        a_t, s_t = alpha_at(field, t_next), sigma_at(field, t_next)
        data, eps = field.predict(x, t)
        ratio = 0.0 if (a_s == 0.0 or s_t == 0.0) else (s_t * a_s) / (a_t * s_s)
        c = eta * s_t * math.sqrt(max(0.0, 1.0 - ratio ** 2))
        x = a_t * data + math.sqrt(max(0.0, s_t ** 2 - c ** 2)) * eps
        if c > 0.0:
            x = x + c * noise(k)
        if trace is not None:
            trace.append((x, c))
    return SamplerResult(x, len(times) - 1)


def ddpm(field, x: torch.Tensor, grid: torch.Tensor, noise: NoiseSource,
         trace: list | None = None) -> SamplerResult:
    """DDPM ancestral sampling: the posterior q(x_t | x_s, x̂₁) step, i.e. DDIM with η = 1."""
    return ddim(field, x, grid, noise, eta=1.0, trace=trace)


def euler_maruyama(field, x: torch.Tensor, grid: torch.Tensor, noise: NoiseSource,
                   churn: float = 1.0, trace: list | None = None) -> SamplerResult:
    """Euler–Maruyama for dx = [u + ½g²·∇log p_t] dt + g dW with g² = churn·g²_natural.

    g²_natural = 2σ²·d/dt log(α/σ) is the diffusion of the reverse-time SDE of the forward
    noising process (churn = 1 is the score-SDE sampler); churn = 0 is the probability-flow ODE.
    The score is −ẑ/σ. The last step is a noise-free DDIM step so no noise is left at the end.
    """
    _require_gaussian(field, "euler-maruyama")
    times = grid.tolist()
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        a, s = alpha_at(field, t), sigma_at(field, t)
        data, eps = field.predict(x, t)
        if k == len(times) - 2:
            x = alpha_at(field, t_next) * data + sigma_at(field, t_next) * eps
            if trace is not None:
                trace.append((x, 0.0))
            break
        tt = torch.tensor(t, dtype=torch.float64)
        da = float(field.path.schedule.d_alpha(tt))
        ds = float(field.path.schedule.d_sigma(tt))
        if a == 0.0:
            raise ValueError("euler-maruyama needs α > 0 at the first grid time; "
                             "use a karras or logsnr grid")
        g2 = churn * 2.0 * s * (s * da / a - ds)
        h = t_next - t
        velocity = da * data + ds * eps
        drift = velocity - 0.5 * g2 * eps / s if s > 0 else velocity
        x = gaussian_step(x + h * drift, max(g2 * h, 0.0), noise(k))
        if trace is not None:
            trace.append((x, math.sqrt(max(g2 * h, 0.0))))
    return SamplerResult(x, len(times) - 1)
