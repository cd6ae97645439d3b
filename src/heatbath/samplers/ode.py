"""Deterministic samplers of the probability-flow ODE dx/dt = α'·x̂₁ + σ'·ẑ.

Pure functions of (field, x, grid): no hidden state, each returns the number of field
evaluations (NFE) it made. Grids are increasing times from noise to data (see grids.py).
"""

from __future__ import annotations

import math

import torch

from heatbath.samplers.common import SamplerResult, alpha_at, sigma_at


def euler(field, x: torch.Tensor, grid: torch.Tensor) -> SamplerResult:
    """First-order Euler steps on the velocity."""
    times = grid.tolist()
    for t, t_next in zip(times[:-1], times[1:]):
        x = x + (t_next - t) * field.velocity(x, t)
    return SamplerResult(x, len(times) - 1)


def heun(field, x: torch.Tensor, grid: torch.Tensor) -> SamplerResult:
    """Heun's second-order method (EDM Algorithm 1, deterministic).

    As in EDM, the correction is skipped on a final step that lands on σ = 0, where the
    denoiser's noise estimate is 0/0; a single Euler step there keeps global order 2.
    """
    times = grid.tolist()
    nfe = 0
    for t, t_next in zip(times[:-1], times[1:]):
        h = t_next - t
        slope = field.velocity(x, t)                      # slope at the start
        predictor = x + h * slope                         # Euler predictor
        nfe += 1
        if sigma_at(field, t_next) == 0.0:
            x = predictor
            continue
        slope_next = field.velocity(predictor, t_next)    # slope at the predicted end
        x = x + 0.5 * h * (slope + slope_next)            # trapezoidal corrector
        nfe += 1
    return SamplerResult(x, nfe)


def _log_snr(alpha: float, sigma: float) -> float:
    if alpha == 0.0:
        return -math.inf
    if sigma == 0.0:
        return math.inf
    return math.log(alpha / sigma)


def dpm_solver_2m(field, x: torch.Tensor, grid: torch.Tensor) -> SamplerResult:
    """DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep, in x-space.

    x_t = (σ_t/σ_s)·x_s − α_t·(e^(−h) − 1)·D,  h = λ_t − λ_s,  λ = log(α/σ),
    D = (1 + 1/2r)·x̂₁(s) − (1/2r)·x̂₁(prev), r = h_prev/h. Steps touching λ = ±∞ (pure noise
    or clean data) are first order, which makes them exact DDIM steps with finite coefficients.
    """
    times = grid.tolist()
    prev_data, prev_h = None, None
    for t, t_next in zip(times[:-1], times[1:]):
        a_s, s_s = alpha_at(field, t), sigma_at(field, t)
        a_t, s_t = alpha_at(field, t_next), sigma_at(field, t_next)
        data, _ = field.predict(x, t)
        h = _log_snr(a_t, s_t) - _log_snr(a_s, s_s)
        second_order = (prev_data is not None and math.isfinite(h) and prev_h is not None
                        and math.isfinite(prev_h))
        if second_order:
            r = prev_h / h
            d = (1 + 0.5 / r) * data - (0.5 / r) * prev_data
        else:
            d = data
        exp_minus_h = 0.0 if (a_s == 0.0 or s_t == 0.0) else (s_t * a_s) / (a_t * s_s)
        x = (s_t / s_s) * x + a_t * (1.0 - exp_minus_h) * d
        prev_data, prev_h = data, h
    return SamplerResult(x, len(times) - 1)


def adaptive(field, x: torch.Tensor, t_start: float, t_end: float, rtol: float = 1e-5,
             atol: float = 1e-5, method: str = "dopri5") -> SamplerResult:
    """Adaptive Runge–Kutta (torchdiffeq, dopri5 by default) with exact NFE counting."""
    from torchdiffeq import odeint

    calls = [0]

    def rhs(t, state):
        calls[0] += 1
        return field.velocity(state, float(t))

    times = torch.tensor([t_start, t_end], dtype=x.dtype, device=x.device)
    # step_t: land exactly on t_end; by default torchdiffeq steps past it and interpolates,
    # which would evaluate the field outside [0, 1].
    out = odeint(rhs, x, times, rtol=rtol, atol=atol, method=method,
                 options={"step_t": times})[-1]
    return SamplerResult(out, calls[0])


_NODES, _WEIGHTS = (torch.from_numpy(a) for a in __import__("numpy").polynomial.legendre
                    .leggauss(16))


def _integral(function, a: float, b: float) -> float:
    """∫_a^b function(s) ds by 16-point Gauss–Legendre (the integrands here are smooth)."""
    s = 0.5 * (b - a) * _NODES.to(torch.float64) + 0.5 * (a + b)
    return float(0.5 * (b - a) * (_WEIGHTS.to(torch.float64) * function(s)).sum())


def conjugate(field, x: torch.Tensor, grid: torch.Tensor, lam: float = 0.0) -> SamplerResult:
    """λ-DDIM, the conjugate integrator of Pandey, Rudolph & Mandt (2024) with B = λ·I.

    In y = x/α the probability-flow ODE is dy/dt = ẑ·dρ/dt, ρ = σ/α. The conjugate variable
    x̄ = e^(−λt)·y obeys dx̄/dt = −λ·x̄ + e^(−λt)·ρ'·ẑ; one step holds ẑ at its start value,
    integrates its coefficient exactly (quadrature) and takes the linear term explicitly:

        x̄' = (1 − λh)·x̄ + ẑ·∫ e^(−λs) ρ'(s) ds.

    λ = 0 is DDIM (η = 0) exactly; other λ trade the linear term's error against ẑ's. One
    network evaluation per step. Needs α > 0 where it starts (y = x/α).
    """
    schedule = field.path.schedule
    times = grid.tolist()
    if alpha_at(field, times[0]) == 0.0:
        raise ValueError("the conjugate sampler needs α > 0 at the first grid time; "
                         "use a karras or logsnr grid")

    def rho(s) -> torch.Tensor:
        s = torch.as_tensor(s, dtype=torch.float64)
        return schedule.sigma(s) / schedule.alpha(s)

    def weighted_rho(s: torch.Tensor) -> torch.Tensor:
        return torch.exp(-lam * s) * rho(s)

    for t, t_next in zip(times[:-1], times[1:]):
        _, eps = field.predict(x, t)
        # ∫ e^(−λs) ρ' ds by parts: the boundary term is exact (λ = 0: DDIM to the last bit),
        # and ρ is smooth where ρ' is steep (α → 0).
        rate = (math.exp(-lam * t_next) * float(rho(t_next)) - math.exp(-lam * t) * float(rho(t))
                + (lam * _integral(weighted_rho, t, t_next) if lam != 0.0 else 0.0))
        bar = math.exp(-lam * t) * x / alpha_at(field, t)
        bar = (1.0 - lam * (t_next - t)) * bar + rate * eps
        x = alpha_at(field, t_next) * math.exp(lam * t_next) * bar
    return SamplerResult(x, len(times) - 1)
