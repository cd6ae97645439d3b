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


def vmapped_divergence(field, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(u(x, t), tr ∂u/∂x) for any network: D vector-Jacobian products in one vmapped pass."""
    batch, dim = x.shape[0], x[0].numel()
    basis = torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, 1, *x.shape[1:])
    basis = basis.expand(dim, batch, *x.shape[1:])                     # (D, B, *event)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        velocity = field.velocity(xg, t)
        (rows,) = torch.autograd.grad(velocity, xg, grad_outputs=basis, is_grads_batched=True)
    # rows[i, b] is row i of the Jacobian at sample b; its i-th entry is on the diagonal.
    trace = torch.diagonal(rows.reshape(dim, batch, dim), dim1=0, dim2=2).sum(-1)
    return velocity.detach(), trace.detach()


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
    dim = x[0].numel()
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
    """
    from torchdiffeq import odeint

    dim = x[0].numel()
    if method == "auto":
        method = "exact" if dim <= EXACT_MAX_DIM or is_hollow(field) else "hutchinson"
    if method not in ("exact", "hutchinson"):
        raise ValueError(f"unknown likelihood method '{method}'; use exact, hutchinson or auto")
    ids = torch.arange(x.shape[0]) if ids is None else ids
    eps = (rademacher(seed, ids, probes, x.shape[1:], x.dtype).to(x.device)
           if method == "hutchinson" else None)
    calls = [0]

    def rhs(t, state):
        calls[0] += 1
        xt = state[0]
        if eps is None:
            velocity, div = exact_divergence(field, xt, float(t))
            div = div[:, None]
        else:
            velocity, div = hutchinson_divergence(field, xt, float(t), eps)
        return velocity, div

    t_lo, t_hi = safe_time_range(field.path, field.prediction)
    times = torch.tensor([t_hi, t_lo], dtype=x.dtype, device=x.device)
    width = 1 if eps is None else probes
    state0 = (x.detach(), torch.zeros(x.shape[0], width, dtype=x.dtype, device=x.device))
    options = {"step_t": times} if solver in ("dopri5", "dopri8", "bosh3", "adaptive_heun") \
        else {"step_size": (t_hi - t_lo) / steps}
    with torch.no_grad():
        xs, accumulated = odeint(rhs, state0, times, rtol=rtol, atol=atol, method=solver,
                                 options=options)
    per_probe = prior_log_prob(field.path, xs[-1], t_lo)[:, None] + accumulated[-1]
    log_q = per_probe.mean(1)
    if width > 1:
        stderr = per_probe.std(1, unbiased=True) / math.sqrt(width)
    else:
        stderr = torch.zeros_like(log_q)
    return LogLikelihood(log_q, stderr, calls[0], method)


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
