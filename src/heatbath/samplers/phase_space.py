"""Samplers of phase-space paths (CLD, PSLD): splitting and conjugate integrators, and the driver.

In heatbath's time t (s = 1 − t) the reverse processes over u = (x, v) are

    ODE  du/dt = −β·A·u − ½β·D·L⁻ᵀ·ε̂(u, t)                       (probability flow)
    SDE  du = β·(−A·u + D·∇log p) dt + √(βD) dW̄                   (reverse diffusion)

with 2×2 matrices acting on each coordinate's (x, v) pair (`paths.phase_path.mix`). Both
samplers here solve the linear part exactly and hold the network's output over a step, so
each costs one network evaluation per step; Euler, Heun and dopri5 integrate the ODE through
`PhaseField.velocity` like any other path.
"""

from __future__ import annotations

import math

import torch

from heatbath.core import rng
from heatbath.paths.phase_path import join, mix, split, state_shape
from heatbath.paths.phase_space import SAMPLING_GRID, expm_2x2, noise_covariance
from heatbath.samplers.common import SamplerResult
from heatbath.samplers.grids import quadratic_times

# Magnus substeps per step for the conjugate step's matrices: with these, one step across the
# whole time range is the exact Gaussian flow to ~2e-6 (4th order: 16 substeps give ~1e-4).
SUBSTEPS = 48
SUBSTEP_OFFSET = 0.01


def _linearisation(path, r: torch.Tensor):
    """At times r, (F, G, E) of du/dt = F·u + G·(ε̂ − E·u), (n, 2, 2) each: E·u is the ε of
    the optimal model for Gaussian data N(0, σ_data²), whose probability-flow ODE is the
    linear du/dt = F·u. The residual ε̂ − E·u is what a network adds to that Gaussian model."""
    c = path.coefficients(r)
    d = torch.diag(path.process.d)
    beta = c.beta[:, None, None]
    g = -0.5 * beta * d @ torch.linalg.inv(c.chol).transpose(-1, -2)
    # −½β·D·∇log p of the Gaussian model is G·E·u: F = −β·A + G·E.
    return -beta * path.process.a + g @ c.gaussian_eps, g, c.gaussian_eps


def _substeps(t: float, t_next: float) -> torch.Tensor:
    """SUBSTEPS + 1 times from t to t_next, equally spaced in log(s + SUBSTEP_OFFSET): the
    linear part's rates grow toward the data end (s → 0), and so does the resolution (the
    offset, chosen by measurement, keeps a few substeps for the slow noise end)."""
    ends = torch.tensor([1.0 - t, 1.0 - t_next], dtype=torch.float64) + SUBSTEP_OFFSET
    fractions = torch.linspace(0.0, 1.0, SUBSTEPS + 1, dtype=torch.float64)
    s = torch.exp(torch.log(ends[0]) + fractions * (torch.log(ends[1]) - torch.log(ends[0])))
    return 1.0 - (s - SUBSTEP_OFFSET)


def _propagator(t: float, t_next: float, generator_at) -> torch.Tensor:
    """The map from t to t_next of d/dr w = K(r)·w, K = generator_at(times) (n, k, k), by
    fourth-order Magnus steps (two Gauss points each) over `_substeps`: exponentials of the
    whole generator, so the stiff linear part near the data end is integrated stably at any
    substep length."""
    edges = _substeps(t, t_next)
    width = (edges[1:] - edges[:-1])[:, None, None]
    offset = math.sqrt(3.0) / 6.0
    gauss = torch.cat([edges[:-1] + (0.5 - offset) * width[:, 0, 0],
                       edges[:-1] + (0.5 + offset) * width[:, 0, 0]])
    first, second = generator_at(gauss).chunk(2)
    magnus = (0.5 * width * (first + second)
              + (math.sqrt(3.0) / 12.0) * width ** 2 * (second @ first - first @ second))
    propagator = torch.eye(first.shape[-1], dtype=torch.float64)
    for step in torch.linalg.matrix_exp(magnus):
        propagator = step @ propagator
    return propagator


def conjugate_step(path, t: float, t_next: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Ψ, M) of one step: Ψ the linear ODE's map from t to t', M = ∫ e^{−λ(r−t)}·Ψ(t' ← r)·G(r) dr.

    Both are blocks of the propagator of the augmented linear system
    d/dr (u, ρ̃) = [[F, G], [0, −λ]]·(u, ρ̃), ρ̃ = e^{−λ(r−t)}·ρ."""
    def generator_at(r):
        f, g, _ = _linearisation(path, r)
        generator = torch.zeros(len(r), 4, 4, dtype=torch.float64)
        generator[:, :2, :2], generator[:, :2, 2:] = f, g
        generator[:, 2:, 2:] = -lam * torch.eye(2, dtype=torch.float64)
        return generator

    propagator = _propagator(t, t_next, generator_at)
    return propagator[None, :2, :2], propagator[None, :2, 2:]


def _residual(field, u: torch.Tensor, t: float) -> torch.Tensor:
    """ρ = ε̂ − E·u: what the field's ε adds to the Gaussian model's (`path.gaussian_eps`)."""
    eps, c = field.eps(u, t)
    return eps - field.path.gaussian_eps(u, c)


def phase_conjugate(field, u: torch.Tensor, grid: torch.Tensor, lam: float = 0.0) -> SamplerResult:
    """The conjugate integrator (Pandey, Rudolph & Mandt 2024) on a phase-space path, built
    around the Gaussian model: du/dt = F·u + G·ρ with ρ = ε̂ − E·u (`_linearisation`).

    In ū = e^{−λ(r−t)}·Ψ(t ← r)·u the linear part vanishes; one step holds the residual ρ at
    its start value, integrates its coefficient exactly and takes −λū explicitly:
    u' = e^{λh}·[(1 − λh)·Ψ·u + M·ρ]. Exact in one step for Gaussian data of scale σ_data
    (ρ = 0); λ = 0 is the exponential integrator that on ordinary diffusions is DDIM.
    """
    times = grid.tolist()
    for t, t_next in zip(times[:-1], times[1:]):
        rho = _residual(field, u, t)
        psi, integral = conjugate_step(field.path, t, t_next, lam)
        h = t_next - t
        px, pv = mix(psi, *split(u))
        mx, mv = mix(integral, *split(rho))
        u = math.exp(lam * h) * join((1.0 - lam * h) * px + mx, (1.0 - lam * h) * pv + mv)
    return SamplerResult(u, len(times) - 1)


def _gaussian_marginal(path, t: float) -> torch.Tensor:
    """C(t) (2, 2): the covariance of u at t when the data are N(0, σ_data²)."""
    c = path.coefficients(torch.tensor([t], dtype=torch.float64))
    data = torch.diag(torch.tensor([path.sigma_data ** 2, 0.0], dtype=torch.float64))
    return (c.chol @ c.chol.transpose(-1, -2) + c.phi @ data @ c.phi.transpose(-1, -2))[0]


def exponential_sde_step(path, t: float, t_next: float, churn: float = 1.0):
    """(Φ, M₀, M₁, L_Q) of one step of the reverse SDE with squared diffusion churn·β·D,
    written around the Gaussian model: with k = 1 + churn (2 for the reverse SDE proper, 1 for
    the probability-flow ODE), ρ = ε̂ − E·u and F_k = −β·A + k·G·E,
    du = (F_k·u + k·G·ρ) dt + √(churn·β·D) dW̄, and

        u' = Φ·u + M₀·ρ(t) + M₁·ρ'(t) + L_Q·ξ,   M_j = ∫ Φ(t' ← r)·k·G(r)·(r − t)ʲ dr,

    for a residual ρ(r) = ρ(t) + (r − t)·ρ'(t). Φ, M₀ and M₁ are blocks of the propagator of
    d/dr (u, ρ₀, w, ρ₁) = (F_k·u + k·G·(ρ₀ + w), 0, ρ₁, 0). The noise covariance Q of the
    linear SDE does not depend on the data, and for Gaussian data the exact transition carries
    the marginal C(t) to C(t') whatever the churn, so Q = C(t') − Φ·C(t)·Φᵀ; L_Q is its
    symmetric square root (eigenvalues clamped at 0 against rounding)."""
    k = 1.0 + churn

    def generator_at(r):
        f, g, e = _linearisation(path, r)
        generator = torch.zeros(len(r), 8, 8, dtype=torch.float64)
        generator[:, :2, :2] = f + churn * g @ e
        generator[:, :2, 2:4] = generator[:, :2, 4:6] = k * g
        generator[:, 4:6, 6:8] = torch.eye(2, dtype=torch.float64)
        return generator

    propagator = _propagator(t, t_next, generator_at)
    phi, m0, m1 = propagator[:2, :2], propagator[:2, 2:4], propagator[:2, 6:8]
    q = _gaussian_marginal(path, t_next) - phi @ _gaussian_marginal(path, t) @ phi.T
    values, vectors = torch.linalg.eigh(0.5 * (q + q.T))
    root = vectors @ torch.diag(values.clamp(min=0.0).sqrt()) @ vectors.T
    return phi[None], m0[None], m1[None], root[None]


def exponential_sde(field, u: torch.Tensor, grid: torch.Tensor, noise,
                    churn: float = 1.0) -> SamplerResult:
    """The reverse SDE by an exponential integrator around the Gaussian model, second order
    in the network's residual by a multistep slope (DPM-Solver++(2M)-SDE's idea on phase
    space): each step solves the linear part and its noise exactly and integrates the
    residual ρ = ε̂ − E·u as the line through this step's and the last step's ρ (the first
    step holds it). Exact in law at any step count for Gaussian data of scale σ_data (ρ = 0).
    `churn` scales the squared diffusion (1: the reverse SDE; 0: the probability-flow ODE,
    deterministic, no draws). One network evaluation and one Gaussian draw (noise(k)) per
    step."""
    times = grid.tolist()
    previous = None
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        rho = _residual(field, u, t)
        slope = torch.zeros_like(rho) if previous is None else (rho - previous[1]) / (t - previous[0])
        phi, m0, m1, root = exponential_sde_step(field.path, t, t_next, churn)
        parts = [mix(phi, *split(u)), mix(m0, *split(rho)), mix(m1, *split(slope))]
        if churn > 0:
            parts.append(mix(root, *split(noise(k))))
        u = join(sum(part[0] for part in parts), sum(part[1] for part in parts))
        previous = (t, rho)
    return SamplerResult(u, len(times) - 1)


def _ou_half_step(process, s_from: float, s_to: float):
    """The linear part of the reverse SDE, du = β·(−A − D·Σ∞⁻¹)·u dt + √(βD) dW̄, over
    forward times s_from → s_to < s_from: its exact map and the Cholesky factor of its noise.
    (It keeps N(0, Σ∞) invariant: Ã·Σ∞ + Σ∞·Ãᵀ + D = 0.)"""
    d = torch.diag(process.d)
    reverse = -process.a - d @ torch.linalg.inv(process.stationary)
    gap = torch.tensor([process.beta_between(s_from, s_to)], dtype=torch.float64)
    covariance = noise_covariance(reverse, process.d, gap)
    return expm_2x2(reverse, gap), torch.linalg.cholesky(covariance)


def splitting(field, u: torch.Tensor, grid: torch.Tensor, noise) -> SamplerResult:
    """Symmetric splitting for the reverse SDE (SSCS, Dockhorn et al. 2022): half a step of
    the exactly solved linear OU part, a full Euler step of the score part
    β·D·(∇log p + Σ∞⁻¹u), half a step of the OU part. One network evaluation per step; two
    Gaussian draws (noise(2k), noise(2k + 1)) per step."""
    times = grid.tolist()
    process = field.path.process
    d_inverse = torch.diag(process.d) @ torch.linalg.inv(process.stationary)
    for k, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        s, s_half, s_next = 1.0 - t, 1.0 - 0.5 * (t + t_next), 1.0 - t_next
        u = _ou(process, u, s, s_half, noise(2 * k))
        eps, c = field.eps(u, 0.5 * (t + t_next))
        dsx, dsv = field.path.diffused_score(eps, c)
        lx, lv = mix(d_inverse[None], *split(u))
        u = u + process.beta_between(s, s_next) * join(dsx + lx, dsv + lv)
        u = _ou(process, u, s_half, s_next, noise(2 * k + 1))
    return SamplerResult(u, len(times) - 1)


def _ou(process, u: torch.Tensor, s_from: float, s_to: float, normal: torch.Tensor):
    transition, chol = _ou_half_step(process, s_from, s_to)
    return join(*mix(transition, *split(u))) + join(*mix(chol, *split(normal)))


PHASE_GRIDS = ("quadratic", "uniform")


def phase_grid(path, steps: int, kind: str | None = None) -> torch.Tensor:
    """From pure noise to the data end: quadratic (the default, `SAMPLING_GRID`: steps shrink
    toward the data end, where the reverse dynamics move fastest) or equal steps in t. Phase
    paths have a 2×2 covariance, not a scalar noise level, so the karras and logsnr grids do
    not apply."""
    kind = kind or SAMPLING_GRID
    t_lo, t_hi = path.time_range
    if kind == "uniform":
        return torch.linspace(t_lo, t_hi, steps + 1, dtype=torch.float64)
    if kind == "quadratic":
        return quadratic_times(t_lo, t_hi, steps)
    raise ValueError(f"phase-space paths sample on a quadratic or uniform grid, not '{kind}' "
                     f"(karras and logsnr space a scalar noise level these paths do not have); "
                     f"use {' or '.join(PHASE_GRIDS)}")


def phase_start(path, ids: torch.Tensor, event_shape, seed: int, dtype) -> torch.Tensor:
    """u at t = 0 from the stationary law N(0, Σ∞), keyed by (seed, sample id)."""
    normal = rng.normal(seed, ids, 0, state_shape(event_shape), dtype)
    return path.prior_from_normal(normal).to(dtype)
