"""The autoregressive spin sampler: exact normalisation, exact sampling, an unbiased gradient and
independence chains (training, transfer and the CLI: test_spin_models, for both spin models)."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from heatbath.energy.methods.score_training import loo_surrogate
from heatbath.estimators.autocorr import chain_mean_estimate
from heatbath.mcmc.independence import independence_chains
from heatbath.mcmc.spins import ising_energy
from heatbath.nets.masked_conv import MaskedConvSpins

SMALL_NET = {"autoregressive.layers": 2, "autoregressive.kernel": 5,
             "autoregressive.channels": 8}
SMALL_CLI = [f"--set={key}={value}" for key, value in SMALL_NET.items()]


def all_states(L: int, M: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=L * M))).reshape(-1, L, M)


def random_model(seed: int, scale: float = 0.5, **options) -> MaskedConvSpins:
    """An untrained model with every weight perturbed (the initial one is the uniform law)."""
    generator = torch.Generator().manual_seed(seed)
    model = MaskedConvSpins(generator=generator, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


@pytest.mark.parametrize("options", [{}, {"conditioned": True}, {"z2": True},
                                     {"layers": 1, "kernel": 3, "conditioned": True,
                                      "z2": True}])
def test_q_sums_to_one_over_every_state_of_a_3x3_lattice(options):
    model = random_model(1, **options)
    states = all_states(3, 3)
    for beta in (0.2, 0.7):
        log_q = model.log_prob(states, beta)
        assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-10)
    # the conditioning is used: the two β give different laws
    if options.get("conditioned"):
        assert not torch.allclose(model.log_prob(states, 0.2), model.log_prob(states, 0.7))


def test_a_mask_that_lets_a_site_see_itself_is_not_normalised():
    """The check above can fail: type B in the first layer (a site sees its own spin)."""
    model = random_model(1)
    model.first.mask[0, model.half, model.half] = 1.0
    assert abs(torch.logsumexp(model.log_prob(all_states(3, 3)), 0).item()) > 1e-3


@pytest.mark.parametrize("options", [{}, {"z2": True}, {"conditioned": True}])
def test_incremental_sampling_returns_the_full_pass_log_q(options):
    model = random_model(2, **options)
    for L, M in ((2, 2), (5, 7), (9, 4)):
        spins, log_q = model.sample(64, L, M, 0.4, torch.Generator().manual_seed(0))
        assert set(spins.unique().tolist()) <= {-1.0, 1.0}
        assert torch.allclose(log_q, model.log_prob(spins, 0.4), atol=1e-9, rtol=0)


@pytest.mark.parametrize("options", [{}, {"z2": True}])
def test_draws_do_not_depend_on_the_batch_size(options):
    model = random_model(3, **options)
    few, _ = model.sample(5, 4, 4, None, torch.Generator().manual_seed(7))
    many, _ = model.sample(50, 4, 4, None, torch.Generator().manual_seed(7))
    assert torch.equal(few, many[:5])


@pytest.mark.parametrize("options", [{}, {"z2": True}])
def test_sampled_frequencies_match_q_on_a_2x2_lattice(options):
    model = random_model(4, scale=0.3, layers=2, kernel=3, **options)
    states = all_states(2, 2)
    n = 20000
    spins, _ = model.sample(n, 2, 2, None, torch.Generator().manual_seed(11))
    codes = ((spins.reshape(n, 4) > 0).long() * (2 ** torch.arange(3, -1, -1))).sum(1)
    counts = torch.bincount(codes, minlength=16).numpy()
    expected = n * model.log_prob(states).exp().detach().numpy()   # states in the same order
    assert expected.min() > 20 and expected.max() < 0.5 * n       # a law worth testing
    assert chisquare(counts, expected).pvalue > 1e-3
    z = (counts - expected) / np.sqrt(expected)
    assert np.abs(z).max() < 4.5


def exact_kl_gradient(model, beta: float, states: torch.Tensor) -> torch.Tensor:
    """∇ Σ_s q(s)(log q(s) + βH(s)) by enumeration."""
    model.zero_grad()
    log_q = model.log_prob(states)
    (log_q.exp() * (log_q + beta * ising_energy(states))).sum().backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()]).clone()


def score_of_every_state(model, states: torch.Tensor) -> torch.Tensor:
    """∇ log q(s) of every state (S, parameters)."""
    rows = []
    for state in states:
        model.zero_grad()
        model.log_prob(state[None]).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    return torch.stack(rows)


def estimated_gradients(model, beta: float, batch: int, repeats: int, surrogate):
    """`repeats` independent batch estimates (repeats, parameters): the surrogate's gradient
    with respect to each sample's log q, times that sample's ∇ log q (the chain rule, spelled
    out so every batch costs no backward pass)."""
    states = all_states(2, 3)
    scores = score_of_every_state(model, states)
    spins, _ = model.sample(batch * repeats, 2, 3, None, torch.Generator().manual_seed(5))
    index = (((spins.reshape(-1, 6) > 0).long() * 2 ** torch.arange(5, -1, -1)).sum(1))
    with torch.no_grad():
        log_q = model.log_prob(spins)
    f = (log_q + beta * ising_energy(spins)).reshape(repeats, batch)
    weights = torch.func.vmap(torch.func.grad(surrogate))(log_q.reshape(repeats, batch), f)
    return torch.einsum("kb,kbp->kp", weights, scores[index].reshape(repeats, batch, -1))


def batch_mean_surrogate(log_q, f):
    """VAN's baseline, the batch mean including the sample itself: biased by (1 − 1/B)."""
    f = f.detach()
    return ((f - f.mean()) * log_q).mean()


def test_leave_one_out_gradient_is_the_exact_reverse_kl_gradient_in_expectation():
    model = random_model(6, layers=1, kernel=3, channels=4)
    beta, batch, repeats = 0.6, 2, 20000
    exact = exact_kl_gradient(model, beta, all_states(2, 3))
    norm2 = float(exact @ exact)
    assert norm2 > 1e-2

    def ratio(surrogate):
        """Projection of the estimates on the exact gradient, in its units (1: unbiased)."""
        estimates = estimated_gradients(model, beta, batch, repeats, surrogate)
        projected = (estimates @ exact / norm2).numpy()
        return projected.mean(), projected.std(ddof=1) / math.sqrt(repeats), estimates

    value, stderr, estimates = ratio(loo_surrogate)
    assert stderr < 0.05 and abs(value - 1) < 4 * stderr, (value, stderr)
    z = (estimates.mean(0) - exact) / (estimates.std(0) / math.sqrt(repeats))
    assert z[torch.isfinite(z)].abs().max() < 5
    # the check has the power to see a biased estimator: the batch mean halves it at B = 2
    biased, biased_stderr, _ = ratio(batch_mean_surrogate)
    assert abs(biased - 1) > 4 * biased_stderr


def test_independence_chains_sample_the_target_from_any_proposal():
    """Uniform proposals on a 2×2 Ising lattice: the chains' ⟨H⟩ is the enumerated one."""
    states, beta = all_states(2, 2), 0.5
    energy = ising_energy(states)
    exact = float((torch.softmax(-beta * energy, 0) * energy).sum())
    generator = torch.Generator().manual_seed(3)
    chains, steps = 16, 2000
    pick = torch.randint(16, (chains, steps), generator=generator)
    log_w = -beta * energy[pick] + 4 * math.log(2)      # q uniform: log q = −4 ln 2
    index, accepted = independence_chains(log_w, generator)
    assert 0.2 < accepted[:, 1:].double().mean() < 0.95
    visited = energy[pick.gather(1, index)][:, 100:].numpy()
    found = chain_mean_estimate(visited)
    assert abs(found.z_score(exact)) < 4, (found, exact)
    assert abs(float(energy.mean()) - exact) > 10 * found.stderr   # proposals alone are off


def test_an_even_kernel_is_refused(tmp_path, user_error):
    user_error(["fit", "--method", "autoregressive", "--target", "ising2d:L=4,beta=0.3",
                "--set", "autoregressive.kernel=4", "--out", tmp_path / "r"], "odd")
    assert not (tmp_path / "r").exists()


def test_beta_range_is_refused_by_methods_that_do_not_condition_on_it(tmp_path, user_error):
    user_error(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "ais", "--set",
                "method.beta_range=0.2,0.4", "--out", tmp_path / "r"], "autoregressive")
