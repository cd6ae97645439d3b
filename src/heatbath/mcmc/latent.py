"""HMC in a normalizing flow's latent space: the target pulled back through the flow.

For a bijection x = T(z) (a `BijectiveFlow`'s `transform`: flat z ↦ (x, log|det ∂x/∂z|)) the
target exp(−βU(x)) seen in z is

    π(z) ∝ exp(−βU(T(z))) · |det ∂T/∂z|,    U_latent(z) = βU(T(z)) − log|det ∂T/∂z|.

HMC on U_latent (unit mass, leapfrog in z, exact Metropolis test on π) leaves π invariant, so
T(z) leaves the target invariant for *any* flow; a good flow makes π close to the base
N(0, base_scale² I), which HMC crosses in a few leapfrog steps (NeuTra HMC: Hoffman et al. 2019,
"NeuTra-lizing bad geometry in Hamiltonian Monte Carlo using neural transport"). Each
evaluation of U_latent and its gradient costs one energy and one force evaluation at T(z),
counted by the target, plus one pass through the flow and back (∇_z by the vector-Jacobian
product of T with βF, not by differentiating U inside the flow's graph, so the counts are the
target's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.mcmc.adapt import adapt_step_size
from heatbath.mcmc.continuous import HMC, ChainState, HMCParams
from heatbath.mcmc.density import Energy, energy_and_grad, energy_of


class LatentDensity:
    """log π(z) = −βU(T(z)) + log|det ∂T/∂z| for flat z (N, dim); a `LogDensity` with
    `value_and_grad`, so every continuous kernel runs on it."""

    def __init__(self, flow, energy: Energy, beta: float = 1.0) -> None:
        self.flow, self.energy, self.beta = flow, energy, float(beta)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x, log_det = self.flow.transform(z)
            return -self.beta * energy_of(self.energy, self.flow.unflatten(x)) + log_det

    def value_and_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            x, log_det = self.flow.transform(zg)
            u, grad_u = energy_and_grad(self.energy, self.flow.unflatten(x.detach()))
            (grad,) = torch.autograd.grad((x, log_det), zg,
                                          (-self.beta * grad_u.reshape(x.shape),
                                           torch.ones_like(log_det)))
        return (-self.beta * u + log_det).detach(), grad

    def energy_at(self, state: ChainState) -> tuple[torch.Tensor, torch.Tensor]:
        """(x = T(z), U(x)) at the chains' states without evaluating U again:
        U = (log|det ∂T/∂z| − log π(z)) / β, one pass through the flow."""
        with torch.no_grad():
            x, log_det = self.flow.transform(state.x)
        return self.flow.unflatten(x), (log_det - state.log_prob) / self.beta


@dataclass(frozen=True)
class LatentChains:
    """Traces (chains, steps) after burn-in of U and of each observable of x = T(z)."""

    traces: dict[str, torch.Tensor]
    acceptance: float            # mean Metropolis acceptance after burn-in
    step_size: float             # the leapfrog step in z (tuned during burn-in)
    n_leapfrog: int


def latent_hmc(flow, energy: Energy, chains: int, burn_in: int, steps: int, n_leapfrog: int,
               generator: torch.Generator,
               observables: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
               step_size: float = 0.0) -> LatentChains:
    """`chains` HMC chains in the flow's latent space, started from base draws (x ~ q).

    During `burn_in` steps the step size is tuned by dual averaging (from `step_size`, or from
    base_scale·dim^(−1/4), HMC's scaling on a d-dimensional Gaussian, when it is 0); then
    `steps` steps are kept. `observables` {name: f(x) -> (N,)} are traced beside U.
    """
    density = LatentDensity(flow, energy)
    guess = step_size or flow.base_scale * flow.dim ** -0.25
    z0 = flow.base_scale * torch.randn(chains, flow.dim, generator=generator,
                                       dtype=flow.dtype_anchor.dtype)
    state = HMC.init(density, z0)
    state, params = adapt_step_size(HMC, density, state, generator,
                                    HMCParams(guess, n_leapfrog), burn_in)
    state = HMC.init(density, state.x, log_prob=state.log_prob, grad=state.grad)  # counts at 0
    names = {"energy": None, **(observables or {})}
    traces: dict[str, list] = {name: [] for name in names}
    for _ in range(steps):
        state = HMC.step(density, state, generator, params)
        x, u = density.energy_at(state)
        for name, fn in names.items():
            traces[name].append(u if fn is None else fn(x))
    stacked = {name: torch.stack(values, dim=1) for name, values in traces.items()}
    return LatentChains(stacked, float(state.acceptance_rate.mean()),
                        float(params.step_size), n_leapfrog)
