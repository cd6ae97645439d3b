"""Exact Potts answers: the transfer matrix against enumeration, q = 2 against the Ising model,
and the potts2d target's energy, exact values and exact samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.mcmc.potts import potts_energy, uniform_potts
from heatbath.targets import build_target
from heatbath.targets.ising import Ising2D
from heatbath.targets.ising_exact import K_CRITICAL, enumerate_thermo
from heatbath.targets.potts import Potts2D
from heatbath.targets.potts_exact import (critical_beta, potts_enumerate_thermo,
                                          potts_transfer_thermo)


@pytest.mark.parametrize("L,M,q,K,beta_h", [(3, 3, 3, 0.9, 0.0), (2, 4, 3, 0.7, 0.3),
                                            (4, 3, 3, 1.0, 0.0), (5, 3, 2, 0.3, -0.1),
                                            (2, 2, 4, -0.6, 0.5), (3, 5, 2, -0.4, 0.2)])
def test_transfer_matrix_matches_enumeration(L, M, q, K, beta_h):
    enumerated = potts_enumerate_thermo(L, M, q, K, beta_h)
    transferred = potts_transfer_thermo(L, M, q, K, beta_h)
    assert transferred.log_z == pytest.approx(enumerated.log_z, abs=1e-10)
    assert transferred.mean_energy == pytest.approx(enumerated.mean_energy, abs=1e-9)
    assert transferred.energy_variance == pytest.approx(enumerated.energy_variance, abs=1e-8)


@pytest.mark.parametrize("L,M,J,h,beta", [(4, 4, 1.0, 0.0, 0.8), (4, 4, 1.0, 0.3, 0.8),
                                          (3, 5, -0.7, 0.2, 1.1)])
def test_two_state_potts_is_ising_at_half_the_coupling(L, M, J, h, beta):
    """δ(s, s') = (1 + σσ')/2, so H_Potts(J, h) = H_Ising(J/2, h/2) − N(J + h/2) on 2N bonds."""
    potts = Potts2D(L=L, M=M, q=2, J=J, h=h, beta=beta).exact
    ising = enumerate_thermo(L, M, beta * J / 2, beta * h / 2)
    shift = beta * L * M * (J + h / 2)
    assert potts.log_z == pytest.approx(ising.log_z + shift, abs=1e-10)
    assert potts.energy_mean == pytest.approx(ising.mean_energy - shift, abs=1e-9)
    assert potts.heat_capacity == pytest.approx(ising.energy_variance, abs=1e-8)


def test_two_state_potts_matches_kaufman_at_its_critical_point():
    beta = critical_beta(2)
    assert beta == pytest.approx(2 * K_CRITICAL)       # Potts at J is Ising at J/2
    potts = Potts2D(L=4, M=6, q=2, beta=beta).exact.log_z
    ising = Ising2D(L=4, M=6, J=0.5, beta=beta).exact.log_z   # Kaufman's formula
    assert potts == pytest.approx(ising + beta * 24, abs=1e-9)


def test_critical_point_constant():
    assert critical_beta(3) == pytest.approx(math.log(1 + math.sqrt(3)))
    assert critical_beta(4, J=2.0) == pytest.approx(math.log(3) / 2)
    assert Potts2D(L=4, q=3).beta == pytest.approx(1.0050525)   # the default: β_c


def test_target_energy_exact_values_and_strips():
    target = build_target("potts2d:L=4,q=3,beta=1.0,h=0.2")
    states = uniform_potts(6, 4, 4, 3, torch.Generator().manual_seed(0))
    assert torch.allclose(target.energy(states), potts_energy(states, 1.0, 0.2))
    exact = target.exact.to_json()
    assert exact["exact_method"] == "transfer_matrix"
    assert exact["log_z_per_site"] == pytest.approx(exact["log_z"] / 16)
    # a long strip: the transfer matrix runs along the long side with the short one as its row
    strip = Potts2D(L=12, M=3, q=3, beta=0.9)
    wide = Potts2D(L=3, M=12, q=3, beta=0.9)
    assert strip.exact.log_z == pytest.approx(wide.exact.log_z, abs=1e-9)
    assert Potts2D(L=8, q=3).exact.log_z is None          # 3^8 row states: too many
    at_half = Potts2D(L=4, q=3, beta=0.5, h=0.2).exact.log_z
    assert target.exact_log_z_at(0.5) == pytest.approx(at_half)
    assert Potts2D(L=4, q=3, beta=1e-9).exact.log_z == pytest.approx(16 * math.log(3))


def test_exact_samples_have_the_exact_mean_energy():
    target = Potts2D(L=3, M=3, q=3, beta=0.9)
    x = target.sample_exact(4000, torch.Generator().manual_seed(2))
    energy = target.energy(x).double()
    z = (energy.mean() - target.exact.energy_mean) / (energy.std() / len(energy) ** 0.5)
    assert abs(z) < 4
    assert Potts2D(L=5, q=3).sample_exact(3, torch.Generator()) is None


def test_state_mapping_and_order_parameter():
    target = Potts2D(L=2, M=3, q=4)
    states = torch.tensor([[[0, 1, 2], [3, 3, 3]], [[2, 2, 2], [2, 2, 2]]])
    values = target.from_states(states)
    assert values.dtype == torch.float64 and torch.equal(target.to_states(values), states)
    assert target.num_states == 4 and Ising2D(L=2).num_states == 2
    m = target.magnetisation(values)
    assert m.tolist() == pytest.approx([(4 * 3 / 6 - 1) / 3, 1.0])
    assert "{0, ..., 3}^6" in target.space.measure


@pytest.mark.parametrize("spec,fragment", [("potts2d:L=4,q=1", "q"), ("potts2d:L=4,q=2.5", "q"),
                                           ("potts2d:L=1", "L"), ("potts2d:L=4,beta=-1", "beta"),
                                           ("potts2d:L=4,J=nan", "J"),
                                           ("potts2d:L=4,colour=3", "colour")])
def test_bad_parameters_are_one_line_errors(spec, fragment):
    with pytest.raises(UserError, match=fragment) as error:
        build_target(spec)
    assert "\n" not in str(error.value)


def test_exact_profiles_are_distributions_with_the_exact_mean():
    target = Potts2D(L=3, M=3, q=3, beta=0.9, h=0.3)
    profiles = target.exact_profiles()
    for name in ("m", "energy_per_site"):
        values, beta_f = profiles[name]
        assert np.exp(-beta_f).sum() == pytest.approx(1.0)
    values, beta_f = profiles["energy_per_site"]
    assert values @ np.exp(-beta_f) == pytest.approx(target.exact.energy_mean / 9)
    m_values = profiles["m"][0]
    assert m_values.min() == pytest.approx(0.0) and m_values.max() == pytest.approx(1.0)
    assert Potts2D(L=5, q=3).exact_profiles() is None
