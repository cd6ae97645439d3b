"""Exact log-likelihoods through the probability-flow ODE (instantaneous change of variables).

log q(x) = log p_prior(x(t_lo)) − ∫_{t_lo}^{t_hi} div u(x_t, t) dt, integrating the ODE from the
data (t_hi) back to noise (t_lo). The divergence is either exact — one forward pass and one
vmapped backward pass over the D basis cotangents, vectorised rather than a Python loop over
dimensions; for a hollow network (`heatbath.nets.HollowMLP`) a single backward pass — or a multi-probe Hutchinson estimate εᵀ(∂u/∂x)ε with K fixed Rademacher
probes per sample; the K resulting log-likelihoods give a per-sample standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.core import rng
from heatbath.paths.phase_path import join
from heatbath.samplers.common import safe_time_range

EXACT_MAX_DIM = 128   # above this the exact trace costs more than it is worth: use Hutchinson


@dataclass(frozen=True)
class LogLikelihood:
    """Per-sample log q(x) in nats; `stderr` is the Hutchinson error (zeros when exact)."""

    log_q: torch.Tensor
    stderr: torch.Tensor
    nfe: int
    method: str


def _repeat(x: torch.Tensor, copies: int) -> torch.Tensor:
    return x.unsqueeze(1).expand(x.shape[0], copies, *x.shape[1:]).reshape(-1, *x.shape[1:])


def is_hollow(field) -> bool:
    """Whether the field's network gives its Jacobian diagonal in one backward pass (analytic
    fields have no network)."""
    return bool(getattr(getattr(field, "net", None), "hollow", False))


def exact_divergence(field, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(x, t), tr ∂u/∂x): one forward pass, then all D vector-Jacobian products at once.

    The D basis cotangents go through a single vmapped backward pass (`is_grads_batched`),
    so there is no Python loop over dimensions and the forward pass is not repeated. Hollow
    networks take `hollow_divergence` instead: one backward pass, whatever D.
    """
    if is_hollow(field):
        return hollow_divergence(field, x, t)
    return vmapped_divergence(field, x, t)


def tangent_basis(path, x: torch.Tensor) -> torch.Tensor:
    """(n, *event) orthonormal basis of the space the path's noise lives on: the standard basis
    of R^D, or for a subspace (zero-CoM particles) the images of its chart's unit vectors."""
    space = getattr(path.noise, "space", None)
    if space is None:
        dim = x[0].numel()
        return torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, *x.shape[1:])
    unit = torch.eye(space.dim, dtype=x.dtype, device=x.device)
    return space.from_chart(unit).reshape(space.dim, *x.shape[1:])


def vmapped_divergence(field, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(x, t), Σₖ bₖᵀ (∂u/∂x) bₖ) over an orthonormal basis bₖ of the space: the divergence
    on the space (on a subspace, the trace of the Jacobian restricted to it, whatever u does
    off it); n vector-Jacobian products, vmapped."""
    subspace = getattr(field.path.noise, "space", None) is not None
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        velocity = field.velocity(xg, t)
        if subspace:
            basis = tangent_basis(field.path, x)                       # (n, *event)
            return velocity.detach(), _chunked_quadratic_trace(velocity, xg, basis).detach()
        trace = jacobian_trace(velocity, xg)
    return velocity.detach(), trace.detach()


def jacobian_trace(output: torch.Tensor, xg: torch.Tensor,
                   create_graph: bool = False) -> torch.Tensor:
    """tr ∂output/∂x per sample (B,), exact: the D standard-basis vector-Jacobian products in
    one vmapped backward pass. With `create_graph` the trace stays differentiable (a loss that
    contains a divergence, such as NETS's PINN residual, trains through it)."""
    batch, dim = xg.shape[0], xg[0].numel()
    basis = torch.eye(dim, dtype=xg.dtype, device=xg.device).reshape(dim, *xg.shape[1:])
    cotangents = basis[:, None].expand(dim, batch, *xg.shape[1:])
    (rows,) = torch.autograd.grad(output, xg, grad_outputs=cotangents, is_grads_batched=True,
                                  create_graph=create_graph)
    # rows[i, b] is row i of sample b's Jacobian; its i-th entry is on the diagonal.
    return torch.diagonal(rows.reshape(dim, batch, dim), dim1=0, dim2=2).sum(-1)


# Basis vectors per vmapped backward pass on a subspace. A particle network's backward holds
# (chunk × B × P² × H) intermediates, so one pass over all of them is memory-bound: for LJ13's
# 36 (EGNN 32 × 3, 200 samples, one thread) all at once took 5.3 s, chunks of 6 took 3.3 s;
# DW4's 6 go in one pass as before.
TRACE_CHUNK = 6


def restricted_jacobian(output: torch.Tensor, xg: torch.Tensor,
                        basis: torch.Tensor) -> torch.Tensor:
    """(B, n, n) per-sample Jacobian of `output` w.r.t. `xg` restricted to the space spanned by
    the orthonormal `basis` (n, *event): M[b, j, i] = b_jᵀ (∂output_b/∂x_b) b_i. Samples must
    not interact (row j of sample b is the VJP of Σ_b' b_jᵀ output_b'); n VJPs in chunks."""
    blocks = []
    for start in range(0, basis.shape[0], TRACE_CHUNK):
        chunk = basis[start:start + TRACE_CHUNK]
        cotangents = chunk[:, None].expand(chunk.shape[0], *xg.shape)
        (rows,) = torch.autograd.grad(output, xg, grad_outputs=cotangents,
                                      is_grads_batched=True, retain_graph=True)
        blocks.append(torch.einsum("jbd,id->bji", rows.flatten(2), basis.flatten(1)))
    return torch.cat(blocks, dim=1)


def _chunked_quadratic_trace(velocity: torch.Tensor, xg: torch.Tensor,
                             basis: torch.Tensor) -> torch.Tensor:
    """Σₖ bₖᵀ J bₖ per sample: the trace of the Jacobian restricted to the basis' span."""
    return torch.diagonal(restricted_jacobian(velocity, xg, basis), dim1=1, dim2=2).sum(-1)


def hollow_divergence(field, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(x, t), tr ∂u/∂x) for a hollow network: one forward and one backward pass.

    With the contexts h_i(x₋ᵢ) detached, u_j depends on x_i only for j = i: the Field combines
    network output and x coordinate by coordinate (scalar path coefficients, elementwise
    clipping, guidance as a sum of two such outputs). So the gradient of Σ_j u_j is the
    Jacobian diagonal, and it is exact because ∂h_i/∂x_i = 0.
    """
    with torch.enable_grad(), field.net.context_detached():
        xg = x.detach().requires_grad_(True)
        velocity = field.velocity(xg, t)
        (diagonal,) = torch.autograd.grad(velocity.sum(), xg)
    return velocity.detach(), diagonal.flatten(1).sum(1).detach()


def hutchinson_divergence(field, x: torch.Tensor, t: float,
                          probes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(x, t), εₖᵀ(∂u/∂x)εₖ for each of the K probes) — shape (B, K)."""
    batch, k = probes.shape[0], probes.shape[1]
    flat_probes = probes.reshape(batch * k, *x.shape[1:])
    with torch.enable_grad():
        copies = _repeat(x.detach(), k).requires_grad_(True)
        velocity = field.velocity(copies, t)
        (vjp,) = torch.autograd.grad((velocity * flat_probes).sum(), copies)
    estimates = (vjp * flat_probes).flatten(1).sum(1).reshape(batch, k)
    return velocity.detach()[::k], estimates.detach()


def prior_log_prob(path, x: torch.Tensor, t: float) -> torch.Tensor:
    """log density of x_t at the noise end: N(α·mean, σ² + α²σ_data²) or the PFGM++ Student-t."""
    tt = torch.tensor(t, dtype=torch.float64)
    alpha, sigma = float(path.schedule.alpha(tt)), float(path.schedule.sigma(tt))
    dim = path.noise.dim(x)
    if path.data_mean is not None:
        x = x - alpha * path.data_mean.to(device=x.device, dtype=x.dtype)
    if path.noise.is_gaussian:
        scale = math.sqrt(sigma ** 2 + (alpha * path.sigma_data) ** 2)
    else:
        scale = sigma
    return path.noise.log_prob(x / scale) - dim * math.log(scale)


def rademacher(seed: int, ids: torch.Tensor, probes: int, event_shape, dtype) -> torch.Tensor:
    """±1 probes keyed by sample id (stream 10⁶ keeps them apart from sampler noise)."""
    normal = rng.normal(seed, ids, 1_000_000, (probes, *event_shape), dtype)
    return torch.where(normal >= 0, 1.0, -1.0).to(dtype)


def log_likelihood(field, x: torch.Tensor, *, method: str = "auto", probes: int = 4,
                   seed: int = 0, ids: torch.Tensor | None = None, rtol: float = 1e-5,
                   atol: float = 1e-5, solver: str = "dopri5", steps: int = 100) -> LogLikelihood:
    """log q(x) for a batch under the field's probability-flow ODE.

    method: "exact" (vectorised trace), "hutchinson" (K probes, stderr reported) or "auto"
    (exact up to EXACT_MAX_DIM dimensions, and at any dimension for hollow networks). solver: torchdiffeq method; fixed-step ones
    ("rk4", "midpoint", "euler") use `steps` steps.

    On a phase-space path (cld, psld) the ODE gives the joint density of (x, v); each point
    gets log q(x, v₀) − log N(v₀; 0, γM) for one v₀ drawn per (seed, id), whose expectation
    is a lower bound on log q(x) (the dimension counted by the caller is x's).
    """
    ids = torch.arange(x.shape[0]) if ids is None else ids
    path = field.path
    if path.is_phase_space:
        # Joint density of (x, v₀) with one v₀ ~ N(0, γM) per point, minus log N(v₀): its
        # mean is CLD's bound E_v₀[log q(x, v₀) − log p(v₀)] ≤ log q(x).
        normal = rng.normal(seed, ids, 2_000_000, tuple(x.shape[1:]), x.dtype).to(x.device)
        v0 = normal * math.sqrt(path.process.gamma * path.process.mass)
        end, per_probe, calls, method = _ode_log_density(
            field, join(path.centred(x), v0), method, probes, seed, ids, rtol, atol, solver,
            steps)
        per_probe = (per_probe + path.prior_log_prob(end)[:, None]
                     - path.velocity_prior_log_prob(v0)[:, None].to(per_probe))
    else:
        end, per_probe, calls, method = _ode_log_density(field, x, method, probes, seed, ids,
                                                         rtol, atol, solver, steps)
        t_lo = safe_time_range(path, field.prediction)[0]
        per_probe = per_probe + prior_log_prob(path, end, t_lo)[:, None]
    log_q = per_probe.mean(1)
    if per_probe.shape[1] > 1:
        stderr = per_probe.std(1, unbiased=True) / math.sqrt(per_probe.shape[1])
    else:
        stderr = torch.zeros_like(log_q)
    return LogLikelihood(log_q, stderr, calls, method)


def _ode_log_density(field, x: torch.Tensor, method: str, probes: int, seed: int,
                     ids: torch.Tensor, rtol: float, atol: float, solver: str, steps: int):
    """Integrate the probability-flow ODE from x at the data end to the noise end, carrying
    −∫ div u: (end state, (B, probes) accumulated log-density change, NFE, trace method)."""
    from torchdiffeq import odeint

    dim = x[0].numel()
    if method == "auto":
        method = "exact" if dim <= EXACT_MAX_DIM or is_hollow(field) else "hutchinson"
    if method not in ("exact", "hutchinson"):
        raise ValueError(f"unknown likelihood method '{method}'; use exact, hutchinson or auto")
    eps = (rademacher(seed, ids, probes, x.shape[1:], x.dtype).to(x.device)
           if method == "hutchinson" else None)
    rhs, calls = _augmented_rhs(field, eps)
    t_lo, t_hi = safe_time_range(field.path, field.prediction)
    times = torch.tensor([t_hi, t_lo], dtype=x.dtype, device=x.device)
    width = 1 if eps is None else probes
    state0 = (x.detach(), torch.zeros(x.shape[0], width, dtype=x.dtype, device=x.device))
    with torch.no_grad():
        xs, accumulated = odeint(rhs, state0, times, rtol=rtol, atol=atol, method=solver,
                                 options=_solver_options(solver, times, steps))
    return xs[-1], accumulated[-1], calls[0], method


def _augmented_rhs(field, eps: torch.Tensor | None):
    """d/dt (x, ℓ) = (u, div u): the ODE of a sample and its accumulated log-density change;
    with `eps`, the divergence is the K-probe Hutchinson estimate. Also returns a call count."""
    calls = [0]

    def rhs(t, state):
        calls[0] += 1
        if eps is None:
            velocity, div = exact_divergence(field, state[0], float(t))
            return velocity, div[:, None]
        return hutchinson_divergence(field, state[0], float(t), eps)
    return rhs, calls


def _solver_options(solver: str, times: torch.Tensor, steps: int) -> dict:
    if solver in ("dopri5", "dopri8", "bosh3", "adaptive_heun"):
        return {"step_t": times}
    return {"step_size": float(abs(times[-1] - times[0])) / steps}


@dataclass(frozen=True)
class TransportedSamples:
    """Samples carried from noise to data by the ODE, with the exact log q of each (nats)."""

    x: torch.Tensor
    log_q: torch.Tensor
    nfe: int


def transport_with_log_q(field, z: torch.Tensor, *, rtol: float = 1e-5, atol: float = 1e-5,
                         solver: str = "dopri5", steps: int = 100) -> TransportedSamples:
    """Integrate the probability-flow ODE from noise draws z (at t_lo) to data, carrying the
    exact divergence: log q(x) = log p_prior(z) − ∫ div u dt along the very trajectory that
    produced x (a continuous normalizing flow's sample-and-density in one solve).

    The density is the one of the flow's exact ODE map; the solver's tolerance bounds how far
    the returned x and log q are from it (see `rtol`, `atol`).
    """
    from torchdiffeq import odeint

    rhs, calls = _augmented_rhs(field, None)
    t_lo, t_hi = safe_time_range(field.path, field.prediction)
    times = torch.tensor([t_lo, t_hi], dtype=z.dtype, device=z.device)
    state0 = (z.detach(), torch.zeros(z.shape[0], 1, dtype=z.dtype, device=z.device))
    with torch.no_grad():
        xs, accumulated = odeint(rhs, state0, times, rtol=rtol, atol=atol, method=solver,
                                 options=_solver_options(solver, times, steps))
    log_q = prior_log_prob(field.path, z, t_lo) - accumulated[-1][:, 0]
    return TransportedSamples(xs[-1], log_q, calls[0])


def dequantized_bits_per_dim(log_q: torch.Tensor, dim: int, levels: int,
                             data_range: tuple[float, float]) -> torch.Tensor:
    """Bits/dim of L-level data from log q at uniformly dequantised points.

    Values sit on a grid of spacing w = (hi − lo)/(L − 1); dequantising with u ~ U(−w/2, w/2)
    per dimension gives log P(k) ≥ E_u[log q(x + u)] + D·log w (Theis et al. 2016).
    """
    width = (data_range[1] - data_range[0]) / (levels - 1)
    return -(log_q + dim * math.log(width)) / (dim * math.log(2.0))


def dequantize(x: torch.Tensor, levels: int, data_range: tuple[float, float],
               generator: torch.Generator) -> torch.Tensor:
    width = (data_range[1] - data_range[0]) / (levels - 1)
    return x + (torch.rand(x.shape, generator=generator, dtype=x.dtype) - 0.5) * width
