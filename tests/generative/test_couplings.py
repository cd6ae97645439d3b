"""Equivariant OT pairs noise with particle data optimally over the batch, after aligning each
noise configuration to its partner by permutation and rotation."""

import itertools

import pytest
import torch

from heatbath.generative.couplings import couple
from heatbath.spaces import CentredParticles, pair_distances
from heatbath.spaces.align import align

F64 = torch.float64


def _batch(seed: int, n: int = 4, particles: int = 4, d: int = 2) -> torch.Tensor:
    return CentredParticles(particles, d).randn(n, torch.Generator().manual_seed(seed), F64)


def test_equivariant_ot_is_optimal_over_all_pairings_by_enumeration():
    x1, z = _batch(0), _batch(1)
    paired = couple("equivariant_ot", x1, z)
    chosen = float((x1 - paired).pow(2).sum())

    def total(order) -> float:   # the same single-pass alignment, for a given pairing
        return sum(float((x1[i] - align(x1[i], z[j], search=False)).pow(2).sum())
                   for i, j in enumerate(order))
    assert chosen == pytest.approx(min(total(p) for p in itertools.permutations(range(4))),
                                   abs=1e-9)


def test_aligned_noise_is_each_noise_configuration_moved_rigidly():
    x1, z = _batch(2), _batch(3)
    paired = couple("equivariant_ot", x1, z)
    assert paired.mean(dim=1).abs().max() < 1e-12                       # still centred
    radii = lambda t: t.flatten(1).norm(dim=1).sort().values
    assert torch.allclose(radii(paired), radii(z), atol=1e-12)         # a permutation of z
    spacings = lambda t: pair_distances(t).sort(dim=1).values
    assert torch.allclose(spacings(paired).sort(0).values, spacings(z).sort(0).values,
                          atol=1e-12)                                  # rigid: same distances


def test_equivariant_ot_beats_plain_ot_on_rotated_copies():
    """A batch of rotated, re-labelled data copies: aligned pairing costs ~0, plain OT does not.
    (A small rotation: the pinned single pass, Hungarian before Kabsch, undoes it exactly.)"""
    x1 = _batch(4)
    angle = torch.tensor(0.3, dtype=F64)
    rotation = torch.stack([torch.stack([angle.cos(), -angle.sin()]),
                            torch.stack([angle.sin(), angle.cos()])])
    z = (x1 @ rotation.T)[torch.tensor([2, 0, 3, 1])][:, torch.tensor([1, 3, 0, 2])]
    assert float((x1 - couple("equivariant_ot", x1, z)).pow(2).sum()) < 1e-9
    assert float((x1 - couple("ot", x1, z)).pow(2).sum()) > 1e-2
