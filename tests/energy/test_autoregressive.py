"""The autoregressive spin sampler: exact normalisation, exact sampling, an unbiased gradient,
unbiased free energies against Kaufman, size transfer, neural MCMC and the CLI."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from heatbath.energy import sample_energy
from heatbath.energy.methods.score_training import loo_surrogate
from heatbath.estimators.autocorr import chain_mean_estimate
from heatbath.mcmc.independence import independence_chains
from heatbath.mcmc.spins import ising_energy
from heatbath.nets.masked_conv import MaskedConvSpins
from heatbath.targets.ising import Ising2D

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


@pytest.fixture(scope="module")
def trained():
    target = Ising2D(L=4, beta=0.3)
    settings = {**SMALL_NET, "autoregressive.steps": 150, "autoregressive.batch_size": 128,
                "autoregressive.lr": 3e-3, "method.samples": 4000}
    return target, sample_energy(target, "autoregressive", settings=settings, seed=1)


def test_short_training_gives_unbiased_free_energy_on_4x4(trained):
    target, run = trained
    found = run.estimates()
    exact_f = -target.exact.log_z / target.sites
    assert abs(found.free_energy_per_site.z_score(exact_f)) < 4, found.free_energy_per_site
    assert found.free_energy_per_site.stderr < 2e-3
    assert found.ess.value > 0.5
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4
    assert found.energy_evals == 150 * 128 + 4000      # training batches + the final draw
    losses = [m["loss"] for m in run.result.metrics]
    assert losses[-1] < losses[0] and losses[-1] >= exact_f - 0.01   # variational bound


def test_the_trained_model_runs_at_another_size_still_normalised(trained):
    _, run = trained
    model = run.model
    assert torch.logsumexp(model.log_prob(all_states(3, 3)), 0).item() == pytest.approx(
        0.0, abs=1e-5)      # float32 network
    spins, log_q = model.sample(32, 12, 10, None, torch.Generator().manual_seed(0))
    assert spins.shape == (32, 12, 10)
    assert torch.allclose(log_q, model.log_prob(spins), atol=1e-3, rtol=0)


def test_beta_conditioned_training_covers_a_range():
    target = Ising2D(L=3, beta=0.4)
    settings = {**SMALL_NET, "autoregressive.steps": 60, "autoregressive.batch_size": 64,
                "method.beta_range": [0.2, 0.6], "method.samples": 3000}
    run = sample_energy(target, "autoregressive", settings=settings, seed=2)
    model, states = run.model, all_states(3, 3)
    for beta in (0.2, 0.6):
        assert torch.logsumexp(model.log_prob(states, beta), 0).item() == pytest.approx(
            0.0, abs=1e-5)
    exact_f = -target.exact.log_z / target.sites
    assert abs(run.estimates().free_energy_per_site.z_score(exact_f)) < 4


def test_same_seed_same_result():
    target = Ising2D(L=3, beta=0.3)
    settings = {**SMALL_NET, "autoregressive.steps": 5, "autoregressive.batch_size": 16,
                "method.samples": 50}
    first, second = (sample_energy(target, "autoregressive", settings=settings, seed=4)
                     for _ in range(2))
    assert torch.equal(first.x, second.x) and torch.equal(first.log_w, second.log_w)


def test_training_stops_at_the_budget():
    target = Ising2D(L=3, beta=0.3)
    settings = {**SMALL_NET, "autoregressive.steps": 100, "autoregressive.batch_size": 16,
                "method.samples": 50, "method.budget": 100}
    run = sample_energy(target, "autoregressive", settings=settings)
    assert run.result.diagnostics["budget_reached"]
    assert run.result.diagnostics["training_energy_evals"] == 96


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


def test_cli_fit_estimate_sample(tmp_path, cli):
    out = tmp_path / "ar"
    code, _, err = cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "autoregressive",
                        "--steps", "20", "--out", out, "--set", "method.samples=500",
                        "--set", "autoregressive.mcmc_steps=100", "--set", "method.chains=4",
                        "--set", "method.burn_in=10", "--quiet", *SMALL_CLI])
    assert code == 0, err
    assert (out / "model.safetensors").is_file()
    code, stdout, _ = cli(["estimate", out, "--json"])
    report = json.loads(stdout)
    for key in ("free_energy_per_site", "log_z", "ess", "energy", "abs_magnetisation"):
        assert set(report[key]) >= {"value", "stderr", "ci95"}, key
    assert report["exact"]["free_energy_per_site"] == pytest.approx(
        -Ising2D(L=4, beta=0.3).exact.log_z / 16)
    assert report["energy_evals"] >= 20 * 256 + 500
    chains = report["neural_mcmc"]
    assert 0 < chains["acceptance"] <= 1 and chains["tau_int"]["abs_magnetisation"] >= 1
    assert chains["proposals"] == 4 * (1 + 10 + 100)
    assert "neural_mcmc" in report["conventions"]
    code, _, err = cli(["sample", out, "-n", "100", "--out", tmp_path / "more.npz"])
    assert code == 0, err
    more = np.load(tmp_path / "more.npz")
    assert more["x"].shape == (100, 4, 4) and np.isfinite(more["log_w"]).all()
    assert np.allclose(more["log_w"], -more["energy"] - more["log_q"])


@pytest.mark.parametrize("args,fragment", [
    (["--target", "gaussian:dim=2"], "spin lattices"),
    (["--target", "ising2d:L=4,beta=0.3,h=0.1", "--set", "autoregressive.z2=true"], "z2"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "method.beta_range=0.4,0.6"], "outside"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "method.beta_range=0.4,0.2"], "LO < HI"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "autoregressive.kernel=4"], "odd"),
])
def test_cli_refusals(args, fragment, tmp_path, user_error):
    user_error(["fit", "--method", "autoregressive", "--out", tmp_path / "r", *args], fragment)
    assert not (tmp_path / "r").exists()


def test_beta_range_is_refused_by_methods_that_do_not_condition_on_it(tmp_path, user_error):
    user_error(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "ais", "--set",
                "method.beta_range=0.2,0.4", "--out", tmp_path / "r"], "autoregressive")
