"""`path.loss=elbo` end to end: a short fit on lattices of independent sites with known
marginals, whose `estimate --json` bound must lie above the exact floor (the ELBO of the exact
posterior, itself above the entropy), and the one-line refusals of path.loss."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from heatbath.cli import main

MARGINAL = np.array([0.6, 0.3, 0.1])   # every site independently; q = 3
Q = len(MARGINAL)
ENTROPY = float(-(MARGINAL * np.log(MARGINAL)).sum())


def one_site_elbo(x1: int) -> float:
    """ELBO(x₁) of one site under its exact posterior p(x₁ | x_t) ∝ m(x₁)·p_t(x_t | x₁): with
    independent sites the exact posterior factorises and so does the ELBO."""
    def density(u):
        t = 1 - u * u
        likelihood = t * np.eye(Q) + (1 - t) / Q              # [x_t, x₁] = p_t(x_t | x₁)
        posterior = likelihood * MARGINAL
        posterior /= posterior.sum(1, keepdims=True)          # [x_t, y] = p(x₁ = y | x_t)
        total = 0.0
        for a in range(Q):
            term = (1.0 if a == x1 else -math.log(posterior[a, x1])) - posterior[a, a]
            total += likelihood[a, x1] * term
        return 2 * u * total / (u * u)
    return quad(density, 1e-6, 1, epsabs=1e-10, limit=200)[0]


# E over the data of the exact posterior's ELBO per site: no denoiser's expected bound is lower
FLOOR = float(sum(MARGINAL[x] * one_site_elbo(x) for x in range(Q)))

ELBO_RUN = ["--set", "data.kind=lattice", "--set", "path.name=uniform", "--set",
            "path.loss=elbo", "--set", "train.batch_size=128", "--set", "model.features=16",
            "--set", "model.depth=2", "--set", "eval.samples=100", "--quiet"]


def test_the_floor_lies_above_the_entropy():
    assert ENTROPY + 0.01 < FLOOR < math.log(Q) + 0.5, (ENTROPY, FLOOR)


@pytest.fixture(scope="module")
def elbo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uniform-elbo")
    generator = torch.Generator().manual_seed(0)
    x = torch.multinomial(torch.tensor(MARGINAL), 2000 * 9, replacement=True,
                          generator=generator).view(2000, 3, 3)
    np.savez(folder / "sites.npz", x=x.numpy())
    assert main(["fit", "--data", str(folder / "sites.npz"), "--steps", "1000",
                 "--out", str(folder / "run")] + ELBO_RUN) == 0
    return folder / "run"


def test_an_elbo_run_reports_a_bound_above_the_floor(elbo_run, capsys):
    from heatbath.generative.config import load_config

    assert load_config(elbo_run / "config.toml").path.loss == "elbo"
    capsys.readouterr()
    assert main(["estimate", str(elbo_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    bound = report["nll_bound_per_dim"]
    assert report["likelihood"] == "bound" and report["n"] == 200 and "nll_per_dim" not in report
    assert bound["value"] > FLOOR - 4 * bound["stderr"], (bound, FLOOR, ENTROPY)
    assert bound["value"] < FLOOR + 0.35, (bound, FLOOR)   # it learned (untrained: > 2)
    bits = report["bits_bound_per_dim"]["value"]
    assert abs(bits - bound["value"] / math.log(2)) < 1e-12
    assert "bound" in report["conventions"]["nll_bound_per_dim"]
    assert "Euler" in report["conventions"]["likelihood"]
    capsys.readouterr()   # the same draws (fixed seed), and a terminal line
    assert main(["estimate", str(elbo_run)]) == 0
    assert f"nll_bound_per_dim: {bound['value']:.6g}" in capsys.readouterr().out


@pytest.mark.parametrize("settings, words", [
    (["path.name=uniform", "path.loss=kl"], "unknown path.loss 'kl'"),
    (["path.name=masked", "path.loss=cross_entropy"], "use path.loss=elbo"),
    (["path.name=linear", "path.loss=elbo"], "leave path.loss=auto"),
])
def test_path_loss_refusals_are_one_line(settings, words, tmp_path, user_error):
    data = tmp_path / "sites.npz"
    np.savez(data, x=np.random.default_rng(0).integers(0, Q, (40, 3, 3)))
    kind = [] if "path.name=linear" in settings else ["--set", "data.kind=lattice"]
    source = ["builtin:moons:n=50"] if "path.name=linear" in settings else [data]
    args = ["fit", "--data", *source, "--out", tmp_path / "r", "--steps", "2", "--quiet"]
    user_error(args + kind + [a for s in settings for a in ("--set", s)], words)
    assert not (tmp_path / "r").exists()
