"""2-D Ising: Kaufman's formula against brute-force enumeration and the REFERENCES table."""

import itertools
import math

import mpmath
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.targets.ising import (K_CRITICAL, Ising2D, enumerate_thermo, kaufman_log_z,
                                    kaufman_thermo)
from heatbath.targets.ising_exact import _kaufman_log_z_mp

LATTICES = [(2, 3), (3, 2), (3, 3), (3, 4), (4, 3), (4, 4), (4, 5), (5, 4), (2, 5)]
COUPLINGS = [0.1, 0.3, K_CRITICAL, 0.9]


@pytest.mark.parametrize("L,M", LATTICES)
def test_kaufman_matches_enumeration(L, M):
    for K in COUPLINGS:
        kaufman, brute = kaufman_thermo(L, M, K), enumerate_thermo(L, M, K)
        assert kaufman.log_z == pytest.approx(brute.log_z, abs=1e-10)
        assert kaufman.mean_energy == pytest.approx(brute.mean_energy, abs=1e-10)
        assert kaufman.energy_variance == pytest.approx(brute.energy_variance, abs=1e-10)


def test_antiferromagnet_on_even_lattice_maps_to_ferromagnet():
    kaufman, brute = kaufman_thermo(4, 4, -0.6), enumerate_thermo(4, 4, -0.6)
    assert kaufman.log_z == pytest.approx(brute.log_z, abs=1e-10)
    assert kaufman.mean_energy == pytest.approx(brute.mean_energy, abs=1e-10)
    assert kaufman.energy_variance == pytest.approx(brute.energy_variance, abs=1e-10)
    with pytest.raises(UserError, match="K = beta\\*J > 0"):
        kaufman_thermo(3, 3, -0.6)
    # Frustrated 3x3 antiferromagnet: the target falls back to enumeration.
    frustrated = Ising2D(L=3, J=-1.0, beta=0.6).exact
    assert frustrated.extra["exact_method"] == "enumeration"
    assert frustrated.log_z < Ising2D(L=3, J=1.0, beta=0.6).exact.log_z


# (L, M, K, ln Z, E/N, C/N) as printed in /work/shared/REFERENCES.md; None = not tabulated.
TABLE = [
    (4, 4, "0.2", "11.77147036", None, None),
    (4, 4, "Kc", "15.52191546", "-1.565623788", "0.783266826"),
    (4, 4, "0.7", "23.16096553", None, None),
    (8, 8, "Kc", "60.14178079", "-1.491589107", "1.145559240"),
    (16, 16, "0.1", "180.0271980", None, None),
    (16, 16, "0.3", "202.3832323", None, None),
    (16, 16, "Kc", "238.6422566", "-1.453064853", "1.498704959"),
    (16, 16, "0.5", "263.2962104", None, None),
    (32, 32, "Kc", "952.6480795", None, None),
    (64, 64, "Kc", "3808.672283", None, None),
]


def _printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit (plus a hair for float rounding)."""
    decimals = len(text.split(".")[1])
    return 0.5 * 10.0 ** -decimals + 1e-12


@pytest.mark.parametrize("L,M,K_text,log_z,energy,heat", TABLE)
def test_reference_table(L, M, K_text, log_z, energy, heat):
    K = K_CRITICAL if K_text == "Kc" else float(K_text)
    assert kaufman_log_z(L, M, K) == pytest.approx(float(log_z), abs=_printed_tolerance(log_z))
    if energy is None:
        return
    thermo = kaufman_thermo(L, M, K)
    n = L * M
    # With J = 1: E/N = <H>/N = <U>/(K N); C/N = Var(U)/N.
    assert thermo.mean_energy / (K * n) == pytest.approx(float(energy), abs=1e-8)
    assert thermo.energy_variance / n == pytest.approx(float(heat), abs=1e-8)


def test_kaufman_float64_matches_high_precision():
    for (L, M), K in itertools.product([(64, 64), (5, 64), (64, 5), (16, 16)],
                                       [0.01, 0.3, K_CRITICAL, 3.0]):
        with mpmath.workdps(40):
            reference = float(_kaufman_log_z_mp(L, M, mpmath.mpf(K)))
        assert kaufman_log_z(L, M, K) == pytest.approx(reference, rel=1e-13)
    assert kaufman_log_z(5, 64, 0.2) == pytest.approx(kaufman_log_z(64, 5, 0.2), rel=1e-14)


def test_onsager_limit_is_approached():
    # ln Z / N at K_c tends to 0.92969540 (Onsager); the 64x64 value is 0.92985163.
    assert kaufman_log_z(64, 64, K_CRITICAL) / 64 ** 2 == pytest.approx(0.92985163, abs=1e-8)


def _all_states(L, M):
    states = torch.tensor(list(itertools.product([1.0, -1.0], repeat=L * M)),
                          dtype=torch.float64)
    return states.reshape(-1, L, M)


def test_enumeration_with_field_matches_direct_sum_of_target_energy():
    target = Ising2D(L=3, M=2, J=0.7, beta=1.3, h=0.4)
    energy = target.energy(_all_states(3, 2))
    log_z = torch.logsumexp(-energy, 0).item()
    prob = torch.softmax(-energy, 0)
    mean = (prob * energy).sum().item()
    exact = target.exact
    assert exact.extra["exact_method"] == "enumeration"
    assert exact.log_z == pytest.approx(log_z, abs=1e-12)
    assert exact.energy_mean == pytest.approx(mean, abs=1e-12)
    assert exact.heat_capacity == pytest.approx((prob * (energy - mean) ** 2).sum().item(),
                                                abs=1e-12)


def test_free_spins_in_a_field():
    # K = 0: N independent spins, ln Z = N ln(2 cosh βh).
    beta_h, n = 0.8, 12
    free = enumerate_thermo(3, 4, 0.0, beta_h)
    assert free.log_z == pytest.approx(n * math.log(2 * math.cosh(beta_h)), abs=1e-12)
    assert free.mean_energy == pytest.approx(-n * beta_h * math.tanh(beta_h), abs=1e-12)
    assert free.energy_variance == pytest.approx(n * (beta_h / math.cosh(beta_h)) ** 2, abs=1e-12)
    assert kaufman_thermo(5, 7, 0.0).log_z == pytest.approx(35 * math.log(2.0))


def test_target_energy_of_simple_configurations():
    target = Ising2D(L=4, M=6, J=1.0, beta=0.5, h=0.25)
    up = torch.ones(1, 4, 6)
    checkerboard = (torch.arange(4)[:, None] + torch.arange(6)[None, :]) % 2 * 2.0 - 1.0
    energy = target.energy(torch.cat([up, checkerboard[None]]))
    n_sites, n_bonds = 24, 48
    assert energy.tolist() == pytest.approx([-0.5 * n_bonds - 0.5 * 0.25 * n_sites,
                                             0.5 * n_bonds])
    assert target.energy_evals == 2 and target.discrete
    with pytest.raises(TypeError, match="discrete"):
        target.energy_and_force(up)


def test_exact_samples_on_tiny_lattice():
    target = Ising2D(L=3, M=3, J=1.0, beta=0.5, h=0.2)
    n = 20000
    samples = target.sample_exact(n, torch.Generator().manual_seed(3))
    assert samples.shape == (n, 3, 3) and set(samples.unique().tolist()) == {-1.0, 1.0}
    energy = target.energy(samples.double())
    stderr = math.sqrt(target.exact.heat_capacity / n)
    assert abs(energy.mean().item() - target.exact.energy_mean) < 4 * stderr
    again = target.sample_exact(n, torch.Generator().manual_seed(3))
    assert torch.equal(samples, again)
    assert Ising2D(L=8).sample_exact(2, torch.Generator()) is None


def test_target_exact_values_per_site():
    exact = Ising2D(L=16).exact
    assert exact.extra["exact_method"] == "kaufman"
    assert exact.extra["log_z_per_site"] == pytest.approx(0.93219631, abs=1e-8)
    # ⟨U⟩/N in kT, the unit of the total: β_c · ⟨H⟩/N, with ⟨H⟩/(NJ) = −1.453064853 at L = 16.
    assert exact.extra["energy_per_site"] == pytest.approx(K_CRITICAL * -1.453064853, abs=1e-8)
    assert exact.extra["heat_capacity_per_site"] == pytest.approx(1.498704959, abs=1e-8)
    # T = 1/beta gives the same target; J rescales K.
    assert Ising2D(L=4, T=2.0).exact.log_z == pytest.approx(Ising2D(L=4, beta=0.5).exact.log_z)
    assert Ising2D(L=4, J=2.0, beta=0.25).exact.log_z == pytest.approx(
        Ising2D(L=4, beta=0.5).exact.log_z)
    assert Ising2D(L=6, M=6, h=0.1).exact.log_z is None   # field and 36 spins: not exact


@pytest.mark.parametrize("params,message", [
    ({"L": 1}, "L must be >= 2"), ({"L": 4, "M": 1}, "M must be >= 2"),
    ({"beta": 0.0}, "beta"), ({"beta": -1.0}, "beta"), ({"T": 0}, "T"), ({"T": -2.0}, "T"),
    ({"beta": 0.4, "T": 2.5}, "not both"), ({"L": 4.0}, "whole number"), ({"h": "x"}, "h"),
])
def test_bad_parameters(params, message):
    with pytest.raises(UserError, match=message):
        Ising2D(**params)


def test_enumeration_refuses_large_lattices():
    with pytest.raises(UserError, match="20 spins"):
        enumerate_thermo(5, 5, 0.3)


def test_default_temperature_is_critical_for_any_coupling():
    assert Ising2D(L=4).beta == K_CRITICAL
    assert Ising2D(L=4, J=2.0).coupling == pytest.approx(K_CRITICAL)
    assert Ising2D(L=4, J=-0.5).coupling == pytest.approx(-K_CRITICAL)
