"""Free-energy profiles βF(v) = −ln P(v) against enumeration of small Ising lattices."""

import numpy as np
import pytest
import torch

from heatbath.estimators.profiles import chain_free_energy_profile, free_energy_profile
from heatbath.targets.ising import Ising2D
from heatbath.targets.ising_exact import enumerate_profiles


def z_scores(profile, exact, min_mass=0.02):
    support, beta_f = exact
    lookup = dict(zip(support.tolist(), beta_f.tolist()))
    truth = np.array([lookup[v] for v in profile.values.tolist()])
    heavy = np.exp(-truth) > min_mass
    return (profile.beta_f[heavy] - truth[heavy]) / profile.stderr[heavy]


def test_enumerated_profiles_are_normalised_and_symmetric():
    exact = enumerate_profiles(3, 4, 0.4)
    for support, beta_f in exact.values():
        assert np.exp(-beta_f).sum() == pytest.approx(1.0, abs=1e-12)
    support, beta_f = exact["m"]
    assert np.allclose(beta_f, beta_f[::-1], atol=1e-12)    # h = 0: m ↔ −m
    assert np.allclose(support, -support[::-1])


@pytest.mark.parametrize("weighted", [False, True], ids=["exact-draws", "importance"])
def test_profiles_match_enumeration_within_their_error_bars(weighted):
    target = Ising2D(L=3, M=4, beta=0.4)
    generator = torch.Generator().manual_seed(5)
    if weighted:   # uniform spins reweighted by exp(−U): the counting measure's IS estimate
        x = torch.randint(0, 2, (40000, 3, 4), generator=generator).double() * 2 - 1
        log_w = -target.energy(x).double()
    else:
        x = target.sample_exact(20000, generator).double()
        log_w = torch.zeros(len(x), dtype=torch.float64)
    m = x.mean((1, 2))
    u = target.energy(x).double() / 12
    exact = target.exact_profiles()
    for name, values in (("m", m), ("energy_per_site", u)):
        z = z_scores(free_energy_profile(values.numpy(), log_w.numpy()), exact[name])
        assert len(z) >= 4 and np.abs(z).max() < 4, (name, z)


def test_the_error_bar_is_the_spread_over_repeats():
    """One value's z over 40 independent importance-sampling runs: mean 0 and variance 1 within
    their sampling error (the bins of one run share the normalisation, so z² averaged over
    bins is not the check)."""
    target = Ising2D(L=3, M=3, beta=0.4)
    support, beta_f = target.exact_profiles()["m"]
    value = round(1 / 9, 9)   # values are grouped after rounding to 9 places
    truth = dict(zip(support.tolist(), beta_f.tolist()))[value]
    z = []
    for seed in range(40):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randint(0, 2, (3000, 3, 3), generator=generator).double() * 2 - 1
        profile = free_energy_profile(x.mean((1, 2)).numpy(), -target.energy(x).double().numpy())
        at = profile.values.tolist().index(value)
        z.append((profile.beta_f[at] - truth) / profile.stderr[at])
    z = np.array(z)
    assert abs(z.mean()) < 3 / np.sqrt(len(z))
    assert 0.45 < z.var(ddof=1) < 1.75      # ±3 SE of a sample variance from 40 draws


def test_equal_weights_give_the_binomial_error():
    values = np.array([0.0] * 30 + [1.0] * 70)
    profile = free_energy_profile(values, np.zeros(100))
    assert profile.values.tolist() == [0.0, 1.0]
    assert np.allclose(profile.beta_f, -np.log([0.3, 0.7]))
    assert np.allclose(profile.stderr, np.sqrt(np.array([0.3 * 0.7] * 2) / 100) / [0.3, 0.7])
    with pytest.raises(ValueError, match="weights"):
        free_energy_profile(values, np.zeros(99))


def test_chain_profiles_use_the_spread_of_independent_chains():
    target = Ising2D(L=3, M=4, beta=0.4)
    x = target.sample_exact(32 * 500, torch.Generator().manual_seed(6)).double()
    m = x.mean((1, 2)).reshape(32, 500).numpy()    # i.i.d. draws seen as 32 "chains"
    profile = chain_free_energy_profile(m)
    z = z_scores(profile, target.exact_profiles()["m"])
    assert len(z) >= 4 and np.abs(z).max() < 4, z
    pooled = free_energy_profile(m.reshape(-1), np.zeros(m.size))
    assert np.allclose(profile.beta_f, pooled.beta_f)   # equal-length chains: same masses
    with pytest.raises(ValueError, match="chains"):
        chain_free_energy_profile(m[:1])
