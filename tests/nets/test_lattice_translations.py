"""The translation mixture of a spin model: normalised, exactly drawn, invariant under its
group, and refused on a lattice whose sides k does not divide."""

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from heatbath.nets import lattice_translations
from heatbath.nets.lattice_translations import TranslationMixture, translation_shifts
from heatbath.nets.masked_conv import MaskedConvSpins


def all_states(L: int, M: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=L * M))).reshape(-1, L, M)


def mixture(k: int, seed: int = 0, scale: float = 0.5, **options) -> TranslationMixture:
    """The mixture of an untrained model with every weight perturbed (not itself invariant)."""
    generator = torch.Generator().manual_seed(seed)
    base = MaskedConvSpins(layers=2, kernel=3, channels=8, generator=generator, **options)
    base = base.double()
    with torch.no_grad():
        for p in base.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return TranslationMixture(base, k)


@pytest.mark.parametrize("k,L,M,options", [(2, 2, 4, {}), (3, 3, 3, {"z2": True}),
                                           (2, 4, 2, {"conditioned": True})])
def test_q_sums_to_one_over_every_state(k, L, M, options):
    model = mixture(k, **options)
    log_q = model.log_prob(all_states(L, M), 0.4)
    assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-10)


def test_q_is_invariant_under_its_translations_and_the_base_is_not():
    model, states = mixture(2), all_states(2, 4)
    log_q = model.log_prob(states)
    for shift in translation_shifts(2, 2, 4):
        assert torch.allclose(model.log_prob(torch.roll(states, shift, (1, 2))), log_q,
                              atol=1e-12, rtol=0)
    moved = torch.roll(states, (0, 2), (1, 2))
    assert not torch.allclose(model.base.log_prob(moved), model.base.log_prob(states))


def test_draws_carry_their_exact_log_q_and_follow_q_on_a_2x2_lattice():
    model, n = mixture(2, seed=4, scale=0.3), 20000
    spins, log_q = model.sample(n, 2, 2, None, torch.Generator().manual_seed(11))
    assert torch.allclose(log_q, model.log_prob(spins), atol=1e-12, rtol=0)
    codes = ((spins.reshape(n, 4) > 0).long() * (2 ** torch.arange(3, -1, -1))).sum(1)
    counts = torch.bincount(codes, minlength=16).numpy()
    expected = n * model.log_prob(all_states(2, 2)).exp().detach().numpy()   # state order
    assert expected.min() > 20 and expected.max() < 0.5 * n        # a law worth testing
    assert chisquare(counts, expected).pvalue > 1e-3
    assert np.abs((counts - expected) / np.sqrt(expected)).max() < 4.5


def test_same_generator_same_draws():
    model = mixture(2)
    first, second = (model.sample(40, 4, 6, None, torch.Generator().manual_seed(3))
                     for _ in range(2))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_a_side_that_k_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="translations=2"):
        mixture(2).sample(4, 3, 4)


@pytest.mark.parametrize("beta", [0.4406867935, torch.linspace(0.2, 0.6, 40).double()])
def test_a_conditioned_draw_carries_the_log_q_of_its_own_beta(beta, monkeypatch):
    """In float64 the returned log q is the full-pass one to rounding, for a shared β and a
    per-draw β, over several chunks (LOG_PROB_SITES lowered to three 4×4 lattices)."""
    monkeypatch.setattr(lattice_translations, "LOG_PROB_SITES", 3 * 16)
    model = mixture(2, seed=5, conditioned=True)
    spins, log_q = model.sample(40, 4, 4, beta, torch.Generator().manual_seed(2))
    assert torch.allclose(log_q, model.log_prob(spins, beta), atol=1e-12, rtol=0)
