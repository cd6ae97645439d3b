"""State spaces: the zero-CoM chart is an isometry, its Gaussian is the closed form, boxes wrap."""

import math

import pytest
import torch

from heatbath.spaces import (CentredParticles, FreeSpace, LatticeSpace, PeriodicParticles,
                             centring_basis, pair_distances)

F64 = torch.float64


@pytest.mark.parametrize("n_particles", [2, 3, 13])
def test_centring_basis_is_orthonormal_and_orthogonal_to_translations(n_particles):
    basis = centring_basis(n_particles)
    assert torch.allclose(basis @ basis.T, torch.eye(n_particles - 1, dtype=F64), atol=1e-14)
    assert torch.allclose(basis.sum(dim=1), torch.zeros(n_particles - 1, dtype=F64), atol=1e-14)
    projection = torch.eye(n_particles, dtype=F64) - 1.0 / n_particles
    assert torch.allclose(basis.T @ basis, projection, atol=1e-14)


def test_chart_round_trip_is_an_isometry_onto_the_centred_subspace():
    space = CentredParticles(5, 3)
    x = space.project(torch.randn(7, 5, 3, generator=torch.Generator().manual_seed(0),
                                  dtype=F64))
    z = space.to_chart(x)
    assert z.shape == (7, 12) and space.dim == 12 and space.reduced
    assert torch.allclose(space.from_chart(z), x, atol=1e-13)
    assert torch.allclose(z.norm(dim=1), x.flatten(1).norm(dim=1), atol=1e-13)
    back = space.from_chart(torch.randn(4, 12, dtype=F64))
    assert back.mean(dim=1).abs().max() < 1e-14


def test_chart_ignores_the_centre_of_mass():
    space = CentredParticles(4, 2)
    x = torch.randn(3, 4, 2, dtype=F64)
    shifted = x + torch.tensor([[[2.0, -5.0]]], dtype=F64)
    assert torch.allclose(space.to_chart(x), space.to_chart(shifted), atol=1e-12)


def test_standard_noise_lives_on_the_subspace_with_identity_covariance_in_the_chart():
    space = CentredParticles(4, 2)
    noise = space.randn(40000, torch.Generator().manual_seed(1), F64)
    assert noise.mean(dim=1).abs().max() < 1e-14
    covariance = torch.cov(space.to_chart(noise).T)
    # Each entry's standard error is about sqrt(2 / n) on the diagonal, sqrt(1 / n) off it.
    assert (covariance - torch.eye(6, dtype=F64)).abs().max() < 5 * math.sqrt(2 / 40000)


def test_log_normal_is_the_closed_form_gaussian_of_dimension_p_minus_one_times_d():
    space = CentredParticles(4, 2)
    x = space.randn(5, torch.Generator().manual_seed(2), F64)
    scale = 1.7
    squared = x.flatten(1).pow(2).sum(dim=1)
    expected = -0.5 * squared / scale ** 2 - 6 * math.log(scale * math.sqrt(2 * math.pi))
    assert torch.allclose(space.log_normal(x, scale), expected, atol=1e-12)
    free = FreeSpace((4, 2))
    assert not torch.allclose(free.log_normal(x, scale), expected)   # 8 dims, not 6


def test_periodic_box_wraps_positions_and_takes_minimum_images():
    space = PeriodicParticles(2, 3, box=2.0)
    x = torch.tensor([[[0.1, 1.9, 1.0], [1.9, 0.1, 1.0]]], dtype=F64)
    moved = space.shift(x, torch.tensor([[[-0.2, 0.2, 3.0], [0.0, 0.0, 0.0]]], dtype=F64))
    assert torch.allclose(moved[0, 0], torch.tensor([1.9, 0.1, 0.0], dtype=F64), atol=1e-14)
    delta = space.displacement(x[:, 0], x[:, 1])
    assert torch.allclose(delta, torch.tensor([[0.2, -0.2, 0.0]], dtype=F64), atol=1e-14)
    assert pair_distances(x, space=space).item() == pytest.approx(math.sqrt(0.08))
    assert space.dim == 6 and not space.reduced


def test_lattice_spaces_count_sites_and_state_their_measure():
    spins = LatticeSpace((3, 5), spins=True)
    assert spins.sites == 15 and "counting measure" in spins.measure
    assert LatticeSpace((4, 4)).sites == 16 and FreeSpace((4, 4)).sites is None
