"""The density of what a sampler returned, not of the ODE it approximates.

A deterministic sampler (Euler, Heun, DPM-Solver++(2M), DDIM at η = 0, Euler–Maruyama at
churn 0) is a map Φ from its starting noise x₀ to its sample x, and a different map at every
NFE: at 2–10 NFE its output does not follow the probability-flow ODE's law, so the ODE's density
at x cannot weight it. The output's own density is

    log q(x) = log p₀(x₀) − log|det ∂Φ/∂x₀|,

with the Jacobian taken exactly (one vector–Jacobian product per dimension, back through the
whole sampler) and restricted to the space the noise lives on (zero-CoM particles).

A stochastic sampler's output has no tractable density. Its path does: states x₀ … x_m after
steps that inject noise of standard deviation c_k > 0, then a deterministic tail Φ (the steps
that inject none, and the final denoising) from x_m to x. Against backward kernels L of the
forward noising process (x_s | x_t ~ N((α_s/α_t)·x_t, σ_s² − (α_s/α_t)²σ_t²), s noisier),

    log q_path = log p₀(x₀) + Σ_{k<m} [log N(x_{k+1}; μ_k, c_k²) − log L(x_k | x_{k+1})]
                 − log|det ∂Φ/∂x_m|,

and w = p(x)/q_path is an importance weight on the extended space (x, x₀ … x_{m−1}) whose
target's x-marginal is p (x_m = Φ⁻¹(x) is a function of x, so L(x_{m−1} | x_m) is a kernel
given x): E[w·f(x)] = E_p[f] exactly, at any NFE (auxiliary-variable importance sampling, as in
AIS). It is a path log-weight, not a density of x, and is named so. A backward kernel that
jumped from x straight to x_{m−1} would also be exact, but the final denoising collapses the
noise that its variance expects: log-weight variance O(1) however many steps (measured).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from heatbath.samplers.likelihood import prior_log_prob, restricted_jacobian, tangent_basis

# What each kind of `--log-q` value is (stored beside it; see `Sampler.density`).
DENSITY_MEANING = {
    "map": "log q(x) in nats: the exact density of the returned samples, log p_prior(x0) - "
           "log|det dPhi/dx0| of the sampler's own map Phi at this NFE",
    "path": "path log-weight in nats: log q of the sampler's noise path over the forward "
            "noising process's backward kernels; log p(x) - log_q_path is an unbiased log "
            "importance weight (a stochastic sampler's x has no tractable density)",
    "ode": "log q(x) in nats under the model's probability-flow ODE (the adaptive solver's "
           "map, to its tolerance)",
}

MAP_DENSITY_MAX_DIM = 1024   # one backward pass through the whole sampler per dimension


def kernel_log_density(path, x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; mean, std²·I) on the space the path's noise lives on (per sample)."""
    return path.noise.log_prob((x - mean) / std) - path.noise.dim(x) * math.log(std)


def _coefficients(path, t: float) -> tuple[float, float]:
    tt = torch.tensor(t, dtype=torch.float64)
    return float(path.schedule.alpha(tt)), float(path.schedule.sigma(tt))


def backward_kernel_log_density(path, x_noisier: torch.Tensor, s: float,
                                x_cleaner: torch.Tensor, t: float) -> torch.Tensor:
    """log L(x_s | x_t) for the forward noising process, s < t (s the noisier time)."""
    alpha_s, sigma_s = _coefficients(path, s)
    alpha_t, sigma_t = _coefficients(path, t)
    ratio = alpha_s / alpha_t
    variance = sigma_s ** 2 - (ratio * sigma_t) ** 2
    if not variance > 0.0:
        raise ValueError(f"the forward process adds no noise between t = {s:g} and t = {t:g}; "
                         f"a path weight needs a grid whose noise level falls at every step")
    return kernel_log_density(path, x_noisier, ratio * x_cleaner, math.sqrt(variance))


def _stochastic_prefix(trace: list) -> int:
    """m: the number of leading steps that injected noise; the rest must inject none."""
    stds = [std for _, std in trace]
    m = next((k for k, std in enumerate(stds) if std == 0.0), len(stds))
    if any(std > 0.0 for std in stds[m:]):
        raise ValueError("a path weight needs the noise-free steps at the end of the path")
    return m


def log_abs_det(output: torch.Tensor, inputs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """log|det| of ∂output/∂inputs per sample, restricted to the space `basis` spans."""
    jacobian = restricted_jacobian(output, inputs, basis)
    return torch.linalg.slogdet(jacobian.to(torch.float64))[1]


def returned_log_q(field, run: Callable, x0: torch.Tensor, grid: torch.Tensor,
                   noise, kind: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x, log q, NFE) for one batch: `run(x0, trace)` runs the sampler and its final
    denoising (so x is at t = 1) and returns (x, nfe); `kind` is "map" or "path" (see
    `Sampler.density`)."""
    if x0[0].numel() > MAP_DENSITY_MAX_DIM:
        raise ValueError(f"--log-q of a fixed-step sampler takes one backward pass per "
                         f"dimension; {x0[0].numel()} > {MAP_DENSITY_MAX_DIM} dimensions is too "
                         f"many: use --sampler dopri5 for the ODE density")
    times = grid.tolist()
    with torch.enable_grad():
        start = x0.detach().requires_grad_(True)
        trace: list = []
        x, nfe = run(start, trace if kind == "path" else None)
        m = _stochastic_prefix(trace) if kind == "path" else 0
        states = [start] + [state for state, _ in trace[:m]]
        log_det = log_abs_det(x, states[m], tangent_basis(field.path, x))
    log_q = prior_log_prob(field.path, start.detach(), times[0]).double() - log_det
    for k in range(m):
        # forward: the noise step k drew, over its kernel's width; backward: the noising
        # process taking x_{k+1} back to x_k
        forward = (field.path.noise.log_prob(noise(k)) -
                   field.path.noise.dim(x) * math.log(trace[k][1]))
        backward = backward_kernel_log_density(field.path, states[k].detach(), times[k],
                                               states[k + 1].detach(), times[k + 1])
        log_q = log_q + (forward - backward).double()
    return x.detach(), log_q, nfe

