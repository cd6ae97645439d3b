"""The contract of the spin models with an exact log q (every learned spins-only method of the
registry: autoregressive, masked): unbiased free energies against Kaufman after short training,
the variational bound, a model that runs at another size, β conditioning, determinism, the
budget, neural MCMC, the CLI round trip with transfer, and one-line refusals."""

import json

import numpy as np
import pytest
import torch

from heatbath.energy import sample_energy
from heatbath.energy.methods import METHODS
from heatbath.energy.methods.spin_models import BUILDERS
from heatbath.nets.lattice_translations import TranslationMixture
from heatbath.targets.ising import Ising2D

SPIN_MODELS = sorted(name for name, m in METHODS.items() if m.spins_only and m.learned)
SMALL_NET = {"autoregressive": {"layers": 2, "kernel": 5, "channels": 8},
             "masked": {"depth": 2, "channels": 8}}


def settings(name: str, **section) -> dict:
    """A small network of the method plus its section's and method.* settings."""
    out = {f"{name}.{key}": value for key, value in {**SMALL_NET[name], **section}.items()
           if "." not in key}
    out.update({key: value for key, value in section.items() if "." in key})
    return out


def cli_settings(name: str) -> list[str]:
    return [f"--set={key}={value}" for key, value in settings(name).items()]


def all_states(L: int, M: int) -> torch.Tensor:
    codes = torch.arange(2 ** (L * M))[:, None] >> torch.arange(L * M - 1, -1, -1) & 1
    return (2.0 * codes - 1).double().reshape(-1, L, M)


def test_every_spin_model_method_has_a_builder():
    assert SPIN_MODELS == sorted(BUILDERS) == ["autoregressive", "masked"]


@pytest.fixture(scope="module", params=SPIN_MODELS)
def trained(request):
    name, target = request.param, Ising2D(L=4, beta=0.3)
    found = sample_energy(target, name, seed=1, settings=settings(
        name, steps=120, batch_size=64, lr=3e-3, **{"method.samples": 3000}))
    return name, target, found


def test_short_training_gives_unbiased_free_energy_on_4x4(trained):
    _, target, run = trained
    found = run.estimates()
    exact_f = -target.exact.log_z / target.sites
    assert abs(found.free_energy_per_site.z_score(exact_f)) < 4, found.free_energy_per_site
    assert found.free_energy_per_site.stderr < 3e-3
    assert found.ess.value > 0.5
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4
    assert found.energy_evals == 120 * 64 + 3000      # training batches + the final draw
    losses = [m["loss"] for m in run.result.metrics]
    assert losses[-1] < losses[0] and losses[-1] >= exact_f - 0.01   # variational bound


def test_the_trained_model_runs_at_another_size_still_normalised(trained):
    model = trained[2].model
    assert torch.logsumexp(model.log_prob(all_states(3, 3)), 0).item() == pytest.approx(
        0.0, abs=1e-5)      # float32 network
    spins, log_q = model.sample(16, 8, 6, None, torch.Generator().manual_seed(0))
    assert spins.shape == (16, 8, 6)
    assert torch.allclose(log_q, model.log_prob(spins).detach(), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_beta_conditioned_training_covers_a_range(name):
    target = Ising2D(L=3, beta=0.4)
    run = sample_energy(target, name, seed=2, settings=settings(
        name, steps=40, batch_size=32, **{"method.beta_range": [0.2, 0.6],
                                          "method.samples": 2000}))
    for beta in (0.2, 0.6):
        log_q = run.model.log_prob(all_states(3, 3), beta).detach()
        assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-5)
    exact_f = -target.exact.log_z / target.sites
    assert abs(run.estimates().free_energy_per_site.z_score(exact_f)) < 4


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_translation_mixture_trains_unbiased(name):
    target = Ising2D(L=4, beta=0.3)
    run = sample_energy(target, name, seed=3, settings=settings(
        name, steps=40, batch_size=32, translations=2, **{"method.samples": 2000}))
    assert isinstance(run.model, TranslationMixture) and run.model.k == 2
    assert torch.logsumexp(run.model.log_prob(all_states(2, 4)), 0).item() == pytest.approx(
        0.0, abs=1e-5)      # float32 network
    exact_f = -target.exact.log_z / target.sites
    assert abs(run.estimates().free_energy_per_site.z_score(exact_f)) < 4


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_translation_mixture_transfers_only_to_sizes_k_divides(name, tmp_path, cli, user_error):
    out = tmp_path / "run"
    code, _, err = cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", name,
                        "--steps", "3", "--out", out, "--set", "method.samples=50",
                        "--set", f"{name}.translations=2", "--set", f"{name}.batch_size=8",
                        "--quiet", *cli_settings(name)])
    assert code == 0, err
    code, _, err = cli(["sample", out, "-n", "30", "--target", "ising2d:L=6,beta=0.3",
                        "--out", tmp_path / "moved", "--quiet"])
    assert code == 0, err
    assert np.load(tmp_path / "moved" / "samples.npz")["x"].shape == (30, 6, 6)
    user_error(["sample", out, "-n", "30", "--target", "ising2d:L=5,beta=0.3",
                "--out", tmp_path / "odd"], f"{name}.translations=2")
    assert not (tmp_path / "odd").exists()


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_same_seed_same_result(name):
    options = settings(name, steps=3, batch_size=8, **{"method.samples": 30})
    first, second = (sample_energy(Ising2D(L=3, beta=0.3), name, settings=options, seed=4)
                     for _ in range(2))
    assert torch.equal(first.x, second.x) and torch.equal(first.log_w, second.log_w)


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_training_stops_at_the_budget(name):
    options = settings(name, steps=100, batch_size=16, **{"method.samples": 50,
                                                           "method.budget": 100})
    run = sample_energy(Ising2D(L=3, beta=0.3), name, settings=options)
    assert run.result.diagnostics["budget_reached"]
    assert run.result.diagnostics["training_energy_evals"] == 96


@pytest.mark.parametrize("name", SPIN_MODELS)
def test_cli_fit_estimate_sample_and_transfer(name, tmp_path, cli):
    out = tmp_path / name
    code, _, err = cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", name,
                        "--steps", "10", "--out", out, "--set", "method.samples=300",
                        "--set", f"{name}.mcmc_steps=50", "--set", "method.chains=4",
                        "--set", "method.burn_in=5", "--set", f"{name}.batch_size=16",
                        "--quiet", *cli_settings(name)])
    assert code == 0, err
    assert (out / "model.safetensors").is_file()
    report = json.loads(cli(["estimate", out, "--json"])[1])
    for key in ("free_energy_per_site", "log_z", "ess", "energy", "abs_magnetisation"):
        assert set(report[key]) >= {"value", "stderr", "ci95"}, key
    assert report["exact"]["free_energy_per_site"] == pytest.approx(
        -Ising2D(L=4, beta=0.3).exact.log_z / 16)
    assert report["energy_evals"] >= 10 * 16 + 300
    chains = report["neural_mcmc"]
    assert 0 < chains["acceptance"] <= 1 and chains["tau_int"]["abs_magnetisation"] >= 1
    assert chains["proposals"] == 4 * (1 + 5 + 50)
    assert "neural_mcmc" in report["conventions"]
    code, _, err = cli(["sample", out, "-n", "100", "--out", tmp_path / "more.npz"])
    assert code == 0, err
    more = np.load(tmp_path / "more.npz")
    assert more["x"].shape == (100, 4, 4) and np.isfinite(more["log_w"]).all()
    assert np.allclose(more["log_w"], -more["energy"] - more["log_q"])
    moved = tmp_path / "moved"
    code, _, err = cli(["sample", out, "-n", "200", "--target", "ising2d:L=6,beta=0.3",
                        "--out", moved, "--quiet"])
    assert code == 0, err
    report = json.loads(cli(["estimate", moved, "--json"])[1])
    assert report["exact"]["free_energy_per_site"] == pytest.approx(
        -Ising2D(L=6, beta=0.3).exact.log_z / 36)
    assert np.load(moved / "samples.npz")["x"].shape == (200, 6, 6)


REFUSALS = [
    (["--target", "gaussian:dim=2"], "spin lattices"),
    (["--target", "ising2d:L=4,beta=0.3,h=0.1", "--set", "{name}.z2=true"], "{name}.z2"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "method.beta_range=0.4,0.6"], "outside"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "method.beta_range=0.4,0.2"], "LO < HI"),
    (["--target", "ising2d:L=4,beta=0.3", "--set", "{name}.translations=3"],
     "{name}.translations=3"),
]


@pytest.mark.parametrize("name", SPIN_MODELS)
@pytest.mark.parametrize("args,fragment", REFUSALS)
def test_cli_refusals(name, args, fragment, tmp_path, user_error):
    args = [a.format(name=name) for a in args]
    user_error(["fit", "--method", name, "--out", tmp_path / "r", *args],
               fragment.format(name=name))
    assert not (tmp_path / "r").exists()
