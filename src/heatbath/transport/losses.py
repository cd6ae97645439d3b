"""The two objectives a transport sampler's drift is trained on, both off-policy: they read
stored states (with U and ∇U from the walk that visited them) and never backpropagate through
the dynamics, so a gradient step costs network evaluations only.

pinn          NETS (Albergo & Vanden-Eijnden 2024). π_t = e^{−V_t + F_t} with F_t = −ln Z_t is
              carried by b exactly when the continuity equation ∂_t π_t + ∇·(b π_t) = 0 holds
              (the Langevin part leaves π_t invariant), i.e. when the residual

                  r(x, t) = ∂_tF̂(t) + g(x, t),   g = ∇·b − ∇V_t·b − ∂_tV_t,

              vanishes for all x; then the Jarzynski weight dA = g dt = −∂_tF dt is the same
              for every walker. The loss is the mean of r² over stored states with F̂ at its
              optimum for the current drift (see `pinn_loss`); ∇·b is the exact trace
              (`samplers.likelihood.jacobian_trace`: D vector-Jacobian products per state)
              or, with divergence="hutchinson", two independent Rademacher estimates
              εᵀ(∂b/∂x)ε per state (two products, whatever D) whose sample covariance is
              unbiased for the same conditional variance (`_pinn_variance`).
log_variance  CMCD's log-variance divergence (Vargas et al. 2024; Richter et al. 2020): the
              variance over stored walks of their exact discrete path log weights recomputed
              under the current drift (`simulate.path_log_weights`). It is zero exactly when
              every walk has the same weight, i.e. the discrete sampler is perfect.
"""

from __future__ import annotations

import torch

from heatbath.samplers.likelihood import jacobian_trace
from heatbath.transport.path import AnnealedPath
from heatbath.transport.simulate import Trajectories, path_log_weights


def states_by_time(walks: Trajectories, per_time: int, generator: torch.Generator):
    """`per_time` stored states at each grid time (drawn with replacement among the walks):
    x (K + 1, m, D) and the (K + 1, m) indices of the walks they come from."""
    steps_plus_one, n = walks.x.shape[0], walks.x.shape[1]
    pick = torch.randint(n, (steps_plus_one, per_time), generator=generator)
    return torch.gather(walks.x, 1, pick[..., None].expand(-1, -1, walks.x.shape[2])), pick


DIVERGENCES = ("exact", "hutchinson")


def pinn_terms(path: AnnealedPath, drift, x: torch.Tensor, t: torch.Tensor, point,
               probes: torch.Tensor | None = None) -> torch.Tensor:
    """g(x, t) = ∇·b − ∇V_t·b − ∂_tV_t at M states (M,), differentiable in the drift, with
    ∂_tV_t = β'(t)(U + log p0): the PINN residual is ∂_tF̂(t) + g. With `probes` (R, M, D),
    ∇·b is replaced by each probe's εᵀ(∂b/∂x)ε: R estimates of g, (R, M)."""
    beta, rate = path.beta(t).to(x.dtype), path.beta_rate(t).to(x.dtype)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        b = drift(xg, t)
        if probes is None:
            divergence = jacobian_trace(b, xg, create_graph=True)
        else:
            (rows,) = torch.autograd.grad(b, xg, grad_outputs=probes, is_grads_batched=True,
                                          create_graph=True)
            divergence = (rows * probes).sum(dim=-1)
    along = (point.grad_potential(beta) * b).sum(dim=1)
    return divergence - along - rate * point.potential_beta_derivative()


def _rademacher(count: int, shape, dtype, generator: torch.Generator) -> torch.Tensor:
    signs = torch.randint(2, (count, *shape), generator=generator)
    return (2 * signs - 1).to(dtype)


def _pinn_variance(g: torch.Tensor) -> torch.Tensor:
    """E_t Var(g | t) from g (K + 1, m) exact, or (2, K + 1, m) two independent Hutchinson
    estimates: their sample covariance, unbiased because E[ĝ₁ĝ₂ | x] = g(x)² when the probes
    are independent (one estimate's variance would add the probes' noise, which depends on b)."""
    if g.dim() == 2:
        return g.var(dim=1).mean()
    first, second = g - g.mean(dim=2, keepdim=True)
    return ((first * second).sum(dim=1) / (g.shape[2] - 1)).mean()


def pinn_loss(path: AnnealedPath, drift, walks: Trajectories, per_time: int,
              generator: torch.Generator,
              divergence: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, −E[g | t_k] per grid time): the PINN loss with ∂_tF̂ at its optimum.

    For a fixed drift the best rate is ∂_tF̂(t) = −E[g | t], which leaves the conditional
    variance E_t Var(g | t). It is estimated at the K + 1 grid times (where the sampler queries
    the drift) from `per_time` stored states each, with the unbiased variance (or covariance of
    two Hutchinson estimates: `divergence`, one of DIVERGENCES); its minimisers in b are those
    of the PINN loss with a free F̂. The second output estimates ∂_tF_t.
    """
    x, pick = states_by_time(walks, per_time, generator)
    k = torch.arange(x.shape[0])[:, None].expand_as(pick)
    flat = x.reshape(-1, x.shape[-1])
    point = path.point_at(flat, walks.energy[k, pick].reshape(-1),
                          walks.grad_energy[k, pick].reshape(-1, x.shape[-1]))
    t = path.times.to(x.dtype)[:, None].expand_as(pick).reshape(-1)
    if divergence == "exact":
        g = pinn_terms(path, drift, flat, t, point).reshape(pick.shape)
        return _pinn_variance(g), -g.detach().mean(dim=1)
    if divergence != "hutchinson":
        raise ValueError(f"divergence must be one of {', '.join(DIVERGENCES)}, "
                         f"not {divergence!r}")
    probes = _rademacher(2, flat.shape, flat.dtype, generator)
    g = pinn_terms(path, drift, flat, t, point, probes).reshape(2, *pick.shape)
    return _pinn_variance(g), -g.detach().mean(dim=(0, 2))


def log_variance_loss(path: AnnealedPath, drift, walks: Trajectories,
                      step_size: float) -> torch.Tensor:
    """Variance of the stored walks' path log weights under the current drift."""
    log_w = path_log_weights(path, drift, walks, step_size)
    return log_w.var(unbiased=False)
