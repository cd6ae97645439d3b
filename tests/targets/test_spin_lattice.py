"""The spin-lattice interface: local energy changes against brute force, and any lattice that
declares it (not only the built-in Ising2D) runs with the spin methods."""

import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.energy import sample_energy
from heatbath.mcmc import ising_energy, uniform_spins
from heatbath.targets import EnergyTarget, SpinLattice
from heatbath.targets.ising import Ising2D


@pytest.mark.parametrize("L,M,J,h", [(3, 5, 1.0, 0.3), (2, 3, -0.5, -1.0), (4, 4, 0.7, 0.0)])
def test_local_energy_change_is_the_flip_difference(L, M, J, h):
    lattice = Ising2D(L=L, M=M, J=J, h=h, beta=0.3)
    spins = uniform_spins(5, L, M, torch.Generator().manual_seed(0))
    delta = lattice.local_energy_change(spins)
    for i in range(L):
        for j in range(M):
            flipped = spins.clone()
            flipped[:, i, j] *= -1
            brute = ising_energy(flipped, J, h) - ising_energy(spins, J, h)
            assert torch.allclose(delta[:, i, j], brute)


def test_at_beta_keeps_the_lattice_and_changes_only_beta():
    lattice = Ising2D(L=3, M=5, J=0.8, h=0.2, beta=0.5)
    other = lattice.at_beta(0.25)
    assert (other.L, other.M, other.J, other.h, other.beta) == (3, 5, 0.8, 0.2, 0.25)
    assert lattice.exact_log_z_at(0.25) == pytest.approx(other.exact.log_z)


class RenamedLattice(Ising2D):
    """A user's lattice class: inherits the interface, changes only its name."""

    name = "my-lattice"


def test_a_user_spin_lattice_runs_with_the_spin_methods():
    target = RenamedLattice(L=3, M=3, J=1.0, h=0.1, beta=0.4)
    found = sample_energy(target, "ais", settings={"method.steps": 40, "method.samples": 1000},
                          seed=0).estimates()
    assert abs(found.log_z.z_score(target.exact.log_z)) < 4


class LooseSpins(EnergyTarget):
    """discrete = True without the lattice interface."""

    discrete = True

    def __init__(self):
        super().__init__((4,))

    def _energy(self, x):
        return -(x[:, :-1] * x[:, 1:]).sum(1)


def test_a_discrete_target_without_the_interface_is_refused():
    with pytest.raises(UserError, match="SpinLattice"):
        sample_energy(LooseSpins(), "mcmc")
    assert issubclass(Ising2D, SpinLattice)
