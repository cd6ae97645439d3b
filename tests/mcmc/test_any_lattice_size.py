"""Spin updates on any periodic L×M, odd sizes included (where a checkerboard is no colouring):
the colouring is proper, and every update and every method reproduces exact enumeration."""

import math

import pytest
import torch

from heatbath.energy import sample_energy
from heatbath.mcmc import SPIN_UPDATES, ising_energy, uniform_spins
from heatbath.mcmc.spins import lattice_colouring
from heatbath.targets.ising import Ising2D
from heatbath.energy.methods import METHODS

SIZES = [(L, M) for L in range(2, 8) for M in range(2, 8)]


@pytest.mark.parametrize("L,M", SIZES)
def test_colouring_is_proper_and_covers_every_site(L, M):
    masks = lattice_colouring(L, M)
    assert len(masks) == (2 if L % 2 == 0 and M % 2 == 0 else 3)
    assert torch.stack(masks).sum(0).eq(1).all()              # each site exactly one colour
    for mask in masks:
        for shift, dim in ((1, 0), (1, 1)):
            assert not (mask & mask.roll(shift, dims=dim)).any(), (L, M)


def chain_energy_estimate(update, L, M, beta, J, h, chains=64, sweeps=300, burn=100):
    """Mean of H/N over chains and sweeps, with the standard error over independent chains."""
    generator = torch.Generator().manual_seed(11)
    spins = uniform_spins(chains, L, M, generator)
    per_chain = torch.zeros(chains, dtype=torch.float64)
    for sweep in range(sweeps):
        spins = update(spins, beta, J, h, generator)
        if sweep >= burn:
            per_chain += ising_energy(spins, J, h) / (sweeps - burn)
    return float(per_chain.mean()), float(per_chain.std() / math.sqrt(chains))


@pytest.mark.parametrize("name", sorted(SPIN_UPDATES))
@pytest.mark.parametrize("L,M,J,h", [(3, 5, 1.0, 0.3), (3, 3, -0.7, 0.0), (5, 4, 1.0, 0.0)])
def test_every_update_samples_odd_lattices_exactly(name, L, M, J, h):
    if name == "wolff" and h != 0:
        pytest.skip("the Wolff move is exact for h = 0 only (refused otherwise)")
    beta = 0.4
    exact = Ising2D(L=L, M=M, J=J, h=h, beta=beta).exact.energy_mean / beta   # ⟨H⟩
    value, stderr = chain_energy_estimate(SPIN_UPDATES[name], L, M, beta, J, h)
    assert abs(value - exact) < 4 * stderr + 1e-9, (value, exact, stderr)


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if not m.continuous_only))
def test_every_spin_method_gets_log_z_of_an_odd_lattice(name):
    target = Ising2D(L=3, M=5, J=0.8, h=0.2, beta=0.5)
    settings = {"method.steps": 60, "method.samples": 2000, "method.chains": 32,
                "method.burn_in": 50, "method.temperatures": 8, "method.replicas": 4,
                "autoregressive.steps": 60, "masked.steps": 60, "masked.channels": 8,
                "masked.depth": 2}
    found = sample_energy(target, name, settings=settings, seed=3).estimates()
    if found.log_z is not None:
        assert abs(found.log_z.z_score(target.exact.log_z)) < 4, found.log_z
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4, found.energy
