"""`--method masked`: the data half's masked lattice network and sampler as a spin Boltzmann
generator — exact normalisation for two and three states, exact sampling, a checkpointed
gradient equal to the plain one, unbiased free energies against Kaufman, β conditioning, size
transfer and the CLI."""

import itertools
import json

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from heatbath.energy import sample_energy
from heatbath.nets.masked_spins import MaskedLatticeSpins
from heatbath.paths.masked import MaskedPath, sublattice_steps
from heatbath.targets.ising import Ising2D

SMALL_NET = {"masked.channels": 8, "masked.depth": 2}
SMALL_CLI = [f"--set={key}={value}" for key, value in SMALL_NET.items()]
ISING, POTTS3 = (-1.0, 1.0), (0.0, 1.0, 2.0)


def all_states(values, L: int, M: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(values, repeat=L * M)),
                        dtype=torch.float64).reshape(-1, L, M)


def random_model(values, seed: int = 1, scale: float = 0.5, depth: int = 2,
                 **options) -> MaskedLatticeSpins:
    """An untrained model with every weight perturbed (the initial one is the uniform law)."""
    generator = torch.Generator().manual_seed(seed)
    model = MaskedLatticeSpins(torch.tensor(values), channels=8, depth=depth,
                               generator=generator, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


CASES = [(ISING, 3, 3, {}), (ISING, 3, 3, {"conditioned": True, "symmetric": True}),
         (POTTS3, 2, 3, {"symmetric": True}), (POTTS3, 3, 2, {"conditioned": True})]


@pytest.mark.parametrize("values,L,M,options", CASES)
def test_q_sums_to_one_over_every_state(values, L, M, options):
    model, states = random_model(values, **options), all_states(values, L, M)
    betas = (0.2, 0.7) if options.get("conditioned") else (None,)
    laws = [model.log_prob(states, beta).detach() for beta in betas]
    for log_q in laws:
        assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-10)
    if len(laws) == 2:      # the conditioning is used
        assert not torch.allclose(*laws)
    if options.get("symmetric"):   # relabelling every site leaves q_sym unchanged
        shifted = model.values[(torch.searchsorted(model.values, states) + 1) % len(values)]
        assert torch.allclose(model.log_prob(shifted, betas[0]).detach(), laws[0], atol=1e-12)


@pytest.mark.parametrize("values,L,M,options", CASES[1:3])
def test_sampled_log_q_is_the_scored_one_and_draws_do_not_depend_on_n(values, L, M, options):
    model = random_model(values, **options)
    beta = 0.4 if options.get("conditioned") else None
    spins, log_q = model.sample(40, L, M, beta, torch.Generator().manual_seed(2))
    assert torch.allclose(log_q, model.log_prob(spins, beta).detach(), atol=1e-12, rtol=0)
    fewer, _ = model.sample(7, L, M, beta, torch.Generator().manual_seed(2))
    assert torch.equal(fewer, spins[:7])


def one_per_step(steps):
    return [site.reshape(1) for chunk in steps for site in chunk]


@pytest.mark.parametrize("values", [ISING, POTTS3])
def test_sublattice_steps_are_the_one_site_per_step_model_in_that_order(values):
    """Revealing a sublattice at once = revealing its sites one after the other, because they
    lie beyond the net's reach (depth 1: reach 2; a 6×6 lattice is cut at spacing 3)."""
    model = random_model(values, depth=1)
    steps = model.steps(6, 6)
    assert len(steps) == 9 and all(len(chunk) == 4 for chunk in steps)
    spins, log_q = model.sample(20, 6, 6, None, torch.Generator().manual_seed(6))
    states = torch.searchsorted(model.values, spins)
    sequential = MaskedPath.ordered_log_prob(model.net, states, one_per_step(steps)).detach()
    assert torch.allclose(log_q, sequential, atol=1e-12, rtol=0)
    # the same grouping one step narrower than the reach is not exact
    close = sublattice_steps((6, 6), 1)          # spacing 2: neighbours within reach
    grouped = MaskedPath.ordered_log_prob(model.net, states, close).detach()
    ungrouped = MaskedPath.ordered_log_prob(model.net, states, one_per_step(close)).detach()
    assert (grouped - ungrouped).abs().max() > 1e-3


def test_sampled_frequencies_match_q_on_a_2x2_potts_lattice():
    model, states = random_model(POTTS3, scale=0.12), all_states(POTTS3, 2, 2)
    probability = model.log_prob(states).detach().exp()
    n = 20000
    assert n * probability.min() > 5 and probability.max() > 3 * probability.min()
    spins, _ = model.sample(n, 2, 2, None, torch.Generator().manual_seed(5))
    index = (torch.searchsorted(model.values, spins).flatten(1)
             * torch.tensor([27, 9, 3, 1])).sum(1)
    counts = torch.bincount(index, minlength=81).double()
    assert chisquare(counts.numpy(), (n * probability).numpy()).pvalue > 1e-3


def test_the_checkpointed_gradient_is_the_plain_one():
    """Recomputing each pass in the backward must see that pass's mask, not the last one."""
    model = random_model(ISING, conditioned=True)
    spins, _ = model.sample(6, 3, 3, 0.5, torch.Generator().manual_seed(3))
    states = torch.searchsorted(model.values, spins)
    weights = torch.linspace(-1, 1, 6, dtype=torch.float64)
    (weights * model.log_prob(spins, 0.5)).sum().backward()
    checkpointed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    net = lambda x, m: model.net(x, m, torch.full((6,), 0.5))   # noqa: E731
    flat = torch.arange(9)
    plain = sum(MaskedPath.site_log_probs(net, states, (flat >= i).expand(6, 9).reshape(6, 3, 3))
                .flatten(1)[:, i] for i in range(9))
    (weights * plain).sum().backward()
    for a, p in zip(checkpointed, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-12)
    assert max(float(a.abs().max()) for a in checkpointed) > 1e-3


@pytest.fixture(scope="module")
def trained():
    target = Ising2D(L=4, beta=0.3)
    settings = {**SMALL_NET, "masked.steps": 120, "masked.batch_size": 64, "masked.lr": 3e-3,
                "method.samples": 3000}
    return target, sample_energy(target, "masked", settings=settings, seed=1)


def test_short_training_gives_unbiased_free_energy_on_4x4(trained):
    target, run = trained
    found = run.estimates()
    exact_f = -target.exact.log_z / target.sites
    assert abs(found.free_energy_per_site.z_score(exact_f)) < 4, found.free_energy_per_site
    assert found.ess.value > 0.5
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4
    assert found.energy_evals == 120 * 64 + 3000      # training batches + the final draw
    losses = [m["loss"] for m in run.result.metrics]
    assert losses[-1] < losses[0] and losses[-1] >= exact_f - 0.01   # variational bound


def test_the_trained_model_runs_at_another_size_still_normalised(trained):
    model = trained[1].model
    assert torch.logsumexp(model.log_prob(all_states(ISING, 3, 3)), 0).item() == pytest.approx(
        0.0, abs=1e-5)      # float32 network
    spins, log_q = model.sample(8, 6, 5, None, torch.Generator().manual_seed(0))
    assert spins.shape == (8, 6, 5)
    assert torch.allclose(log_q, model.log_prob(spins).detach(), atol=1e-3, rtol=0)


def test_beta_conditioned_training_covers_a_range():
    target = Ising2D(L=3, beta=0.4)
    settings = {**SMALL_NET, "masked.steps": 40, "masked.batch_size": 32,
                "method.beta_range": [0.2, 0.6], "method.samples": 2000}
    run = sample_energy(target, "masked", settings=settings, seed=2)
    for beta in (0.2, 0.6):
        log_q = run.model.log_prob(all_states(ISING, 3, 3), beta).detach()
        assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-5)
    exact_f = -target.exact.log_z / target.sites
    assert abs(run.estimates().free_energy_per_site.z_score(exact_f)) < 4


def test_same_seed_same_result():
    target = Ising2D(L=3, beta=0.3)
    settings = {**SMALL_NET, "masked.steps": 3, "masked.batch_size": 8, "method.samples": 30}
    first, second = (sample_energy(target, "masked", settings=settings, seed=4)
                     for _ in range(2))
    assert torch.equal(first.x, second.x) and torch.equal(first.log_w, second.log_w)


def test_cli_fit_estimate_and_transfer(tmp_path, cli):
    out = tmp_path / "masked"
    code, _, err = cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "masked",
                        "--steps", "10", "--out", out, "--set", "method.samples=300",
                        "--set", "masked.mcmc_steps=50", "--set", "method.chains=4",
                        "--set", "method.burn_in=5", "--set", "masked.batch_size=16",
                        "--quiet", *SMALL_CLI])
    assert code == 0, err
    code, stdout, _ = cli(["estimate", out, "--json"])
    report = json.loads(stdout)
    for key in ("free_energy_per_site", "log_z", "ess", "energy", "abs_magnetisation"):
        assert set(report[key]) >= {"value", "stderr", "ci95"}, key
    assert report["energy_evals"] >= 10 * 16 + 300
    assert report["neural_mcmc"]["proposals"] == 4 * (1 + 5 + 50)
    moved = tmp_path / "moved"
    code, _, err = cli(["sample", out, "-n", "200", "--target", "ising2d:L=6,beta=0.3",
                        "--out", moved, "--quiet"])
    assert code == 0, err
    report = json.loads(cli(["estimate", moved, "--json"])[1])
    exact_f = -Ising2D(L=6, beta=0.3).exact.log_z / 36
    assert report["exact"]["free_energy_per_site"] == pytest.approx(exact_f)
    drawn = np.load(moved / "samples.npz")
    assert drawn["x"].shape == (200, 6, 6)


@pytest.mark.parametrize("args,fragment", [
    (["--target", "gaussian:dim=2"], "spin lattices"),
    (["--target", "ising2d:L=4,beta=0.3,h=0.1", "--set", "masked.z2=true"], "masked.z2"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "method.beta_range=0.4,0.6"], "outside"),
])
def test_cli_refusals(args, fragment, tmp_path, user_error):
    user_error(["fit", "--method", "masked", "--out", tmp_path / "r", *args], fragment)
    assert not (tmp_path / "r").exists()
