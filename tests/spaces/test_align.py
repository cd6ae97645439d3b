"""Alignment recovers exact copies, and Kabsch/Hungarian match brute force."""

import importlib
import itertools
import math

import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.spaces.align import (align, aligned_distance, hungarian_permutation,
                                   kabsch_rotation)

align_module = importlib.import_module("heatbath.spaces.align")


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def _points(shape, seed):
    return torch.randn(*shape, generator=_generator(seed), dtype=torch.float64)


def _orthogonal(d, seed, proper=True):
    q, r = torch.linalg.qr(_points((d, d), seed))
    q = q * torch.sign(torch.diagonal(r))
    if (torch.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def _disguised(x, seed, proper=True):
    """x rotated (or reflected), its particles shuffled and the whole translated."""
    permutation = torch.randperm(x.shape[-2], generator=_generator(seed))
    shift = _points((x.shape[-1],), seed + 1) * 5
    return (x @ _orthogonal(x.shape[-1], seed + 2, proper))[..., permutation, :] + shift


def test_a_rotated_permuted_translated_copy_is_recovered_exactly():
    x = _points((13, 3), 0)
    y = _disguised(x, 1)
    assert aligned_distance(x, y) < 1e-10
    assert torch.allclose(align(x, y), x, atol=1e-10, rtol=0)
    assert aligned_distance(x, y, search=False) > 0.1   # the single pass misses large rotations


def test_a_reflected_copy_needs_reflections():
    x = _points((13, 3), 2)
    y = _disguised(x, 3, proper=False)
    assert aligned_distance(x, y, reflections=True) < 1e-10
    assert aligned_distance(x, y) > 0.1   # a generic cloud is chiral


def test_batches_align_entry_by_entry():
    x = _points((6, 8, 3), 4)
    y = torch.stack([_disguised(config, 10 * i) for i, config in enumerate(x)])
    distances = aligned_distance(x, y)
    assert distances.shape == (6,) and distances.max() < 1e-10
    one_against_many = aligned_distance(x[0], y)
    assert one_against_many[0] < 1e-10 and (one_against_many[1:] > 1e-3).all()


def test_aligned_distance_is_rmsd_times_root_p():
    x, y = _points((7, 3), 5), _points((7, 3), 6)
    aligned = align(x, y)
    rmsd = (x - aligned).pow(2).sum(-1).mean().sqrt()
    assert math.isclose(float(aligned_distance(x, y)), float(rmsd) * math.sqrt(7), rel_tol=1e-12)
    assert torch.allclose(aligned.mean(0), x.mean(0), atol=1e-12)   # placed on x's centroid


def test_search_is_never_worse_than_the_pinned_single_pass():
    x, y = _points((40, 9, 3), 7), _points((40, 9, 3), 8)
    assert (aligned_distance(x, y) <= aligned_distance(x, y, search=False) + 1e-12).all()


def test_the_single_pass_is_hungarian_then_kabsch_on_centred_points():
    x, y = _points((9, 3), 9), _points((9, 3), 10)
    xc, yc = x - x.mean(0), y - y.mean(0)
    matched = yc[hungarian_permutation(xc, yc)]
    expected = matched @ kabsch_rotation(matched, xc) + x.mean(0)
    assert torch.allclose(align(x, y, search=False), expected, atol=1e-12)


def test_single_steps_alone():
    x = _points((9, 3), 11)
    rotated = x @ _orthogonal(3, 12) + 1.0
    assert torch.allclose(align(x, rotated, permutations=False), x, atol=1e-12)
    shuffled = x[torch.randperm(9, generator=_generator(13))] + 1.0
    assert torch.allclose(align(x, shuffled, rotations=False), x, atol=1e-12)


def _rotation_2d(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)


@pytest.mark.parametrize("reflections", [False, True])
def test_kabsch_against_a_fine_angle_grid_in_2d(reflections):
    x, y = _points((6, 2), 14), _points((6, 2), 15) + 3.0
    xc, yc = x - x.mean(0), y - y.mean(0)
    grid = _rotation_2d(torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)[:-1])
    if reflections:
        grid = torch.cat([grid, grid @ torch.diag(torch.tensor([1.0, -1.0], dtype=grid.dtype))])
    brute = (xc @ grid - yc).pow(2).sum((-1, -2)).min()
    rotation = kabsch_rotation(x, y, reflections=reflections)
    best = (xc @ rotation - yc).pow(2).sum()
    assert best <= brute + 1e-12
    assert brute - best < 1e-5   # the grid (spacing 3e-4 rad) gets within its resolution
    assert torch.allclose(rotation @ rotation.T, torch.eye(2, dtype=torch.float64), atol=1e-12)


def test_kabsch_gives_proper_rotations_unless_asked():
    x, y = _points((50, 5, 3), 16), _points((50, 5, 3), 17)
    assert torch.allclose(torch.linalg.det(kabsch_rotation(x, y)),
                          torch.ones(50, dtype=torch.float64), atol=1e-12)
    assert (torch.linalg.det(kabsch_rotation(x, y, reflections=True)) < 0).any()


@pytest.mark.parametrize("particles", [2, 3, 4, 5, 6])
def test_hungarian_against_all_permutations(particles):
    x, y = _points((3, particles, 2), 20 + particles), _points((3, particles, 2), 40 + particles)
    found = hungarian_permutation(x, y)
    for b in range(3):
        costs = [float((x[b] - y[b][list(p)]).pow(2).sum())
                 for p in itertools.permutations(range(particles))]
        assert math.isclose(float((x[b] - y[b][found[b]]).pow(2).sum()), min(costs),
                            rel_tol=1e-12)



@pytest.mark.parametrize("particles", [3, 7])   # the exhaustive search, then scipy's
def test_an_empty_batch_gives_an_empty_assignment(particles):
    empty = torch.zeros(0, particles, 2)
    found = hungarian_permutation(empty, empty)
    assert found.shape == (0, particles) and found.dtype == torch.long


def test_bad_shapes_are_user_errors():
    with pytest.raises(UserError, match="particles, dimensions"):
        align(_points((5, 3), 0), _points((6, 3), 1))
    with pytest.raises(UserError, match="shape"):
        aligned_distance(torch.zeros(3), torch.zeros(3))


@pytest.mark.parametrize("particles", [3, 5])
def test_the_exhaustive_search_matches_scipy_hungarian(particles, monkeypatch):
    """Both paths are exact: on a batch they reach the same total cost pair by pair."""
    x, y = _points((200, particles, 3), 60 + particles), _points((200, particles, 3), 80)
    exhaustive = hungarian_permutation(x, y)
    monkeypatch.setattr(align_module, "EXHAUSTIVE_MAX_PARTICLES", 0)
    hungarian = hungarian_permutation(x, y)

    def totals(permutation):
        return (x - align_module._permuted(y, permutation)).pow(2).sum((-1, -2))

    assert torch.allclose(totals(exhaustive), totals(hungarian), rtol=1e-12, atol=0)
    assert (exhaustive == hungarian).all()   # generic points: the optimum is unique
