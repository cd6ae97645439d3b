"""HMC in a flow's latent space leaves the target invariant, whatever the flow.

On the free field (φ⁴ with λ = 0, exact moments: ⟨U⟩ = N/2, ⟨M²⟩ = N/(2m²) since the constant
mode is an eigenvector of −Δ + m² with eigenvalue m²) a randomly initialised lattice flow —
whose own draws are far off — drives latent HMC chains whose moments match the exact ones
within z < 4, the standard error corrected by τ_int. The pulled-back density's gradient is
autograd's, and each evaluation is counted once by the target.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.estimators.autocorr import integrated_time
from heatbath.flows import LatticeFlow
from heatbath.mcmc.latent import LatentDensity, latent_hmc
from heatbath.targets.lattice import Phi4, field_magnetisation
from heatbath.testsystems import randomise_heads

F64 = torch.float64
L, M2 = 4, 1.0
N = L * L
EXACT = {"energy": N / 2, "m_squared": N / (2 * M2)}


def random_flow(seed: int = 1, std: float = 0.3) -> LatticeFlow:
    flow = LatticeFlow((L, L), layers=4, channels=4).double()
    randomise_heads(flow, seed=seed, std=std)
    return flow


def z_score(trace: np.ndarray, exact: float) -> float:
    """(mean − exact) / SE with SE² = Var·τ_int / n over (chains, steps) traces."""
    tau = integrated_time(trace)
    stderr = np.sqrt(trace.var() * tau / trace.size)
    return float((trace.mean() - exact) / stderr)


def test_the_pulled_back_density_and_its_gradient_are_exact_and_counted():
    flow, target = random_flow(), Phi4(L=L, m2=M2, lam=0.0)
    density = LatentDensity(flow, target)
    z = torch.randn(3, N, generator=torch.Generator().manual_seed(0), dtype=F64)
    value, grad = density.value_and_grad(z)
    assert target.energy_evals == 3 and target.force_evals == 3
    zg = z.clone().requires_grad_(True)
    x, log_det = flow.transform(zg)
    expected = -target._energy(flow.unflatten(x)) + log_det
    (expected_grad,) = torch.autograd.grad(expected.sum(), zg)
    assert torch.allclose(value, expected.detach(), atol=1e-12)
    assert torch.allclose(grad, expected_grad, atol=1e-10)
    assert torch.allclose(density(z), value, atol=1e-12) and target.energy_evals == 6


def test_latent_hmc_leaves_the_free_field_invariant():
    flow, target = random_flow(), Phi4(L=L, m2=M2, lam=0.0)
    generator = torch.Generator().manual_seed(4)
    observables = {"m_squared": lambda x: field_magnetisation(x).pow(2)}
    found = latent_hmc(flow, target, chains=32, burn_in=100, steps=300, n_leapfrog=5,
                       generator=generator, observables=observables)
    assert 0.4 < found.acceptance < 0.95
    assert target.energy_evals == 32 * (1 + 5 * 400)     # init + every leapfrog step, counted
    for name, exact in EXACT.items():
        trace = found.traces[name].numpy()
        assert trace.shape == (32, 300)
        assert abs(z_score(trace, exact)) < 4, (name, trace.mean(), exact)
    with torch.no_grad():   # the flow alone is far off: the chains' correction is what works
        drawn = flow.sample(4000, torch.Generator().manual_seed(5))
    energy = target.energy(drawn).numpy()
    assert abs(energy.mean() - EXACT["energy"]) > 10 * energy.std() / np.sqrt(len(energy))
