"""Particle data in the data half: (N, P, d) arrays with data.kind=particles are centred, learned
by an EGNN on the zero-CoM subspace, and their likelihood is a density on that subspace."""

import json
import math

import numpy as np
import pytest
import torch

from heatbath.spaces import CentredParticles

P, D = 4, 2


@pytest.fixture(scope="module")
def particle_file(tmp_path_factory):
    """Standard Gaussian configurations on the zero-CoM subspace, shifted by random offsets
    (which loading must remove)."""
    space = CentredParticles(P, D)
    x = space.randn(600, torch.Generator().manual_seed(0), torch.float64)
    offsets = torch.randn(600, 1, D, generator=torch.Generator().manual_seed(1)) * 5
    path = tmp_path_factory.mktemp("particles") / "cluster.npz"
    np.savez(path, x=(x + offsets).numpy().astype(np.float32))
    return path


@pytest.fixture(scope="module")
def particle_run(particle_file, tmp_path_factory):
    from heatbath.cli import main

    out = tmp_path_factory.mktemp("runs") / "particles"
    args = ["fit", "--data", particle_file, "--set", "data.kind=particles", "--steps", "30",
            "--set", "model.hidden=16", "--set", "model.depth=2", "--set", "eval.samples=50",
            "--set", "sample.nfe=4", "--out", out, "--quiet"]
    assert main([str(a) for a in args]) == 0
    return out


def test_particle_runs_use_the_equivariant_net_and_centred_samples(particle_run, cli, tmp_path):
    page = (particle_run / "report.html").read_text()
    assert "pair distances of samples and held-out data" in page and "could not plot" not in page
    record = json.loads((particle_run / "run.json").read_text())
    assert record["net"]["kind"] == "egnn" and record["data"]["kind"] == "particles"
    code, _, err = cli(["sample", particle_run, "-n", "20", "--out", tmp_path / "s.npz",
                        "--quiet"])
    assert code == 0, err
    with np.load(tmp_path / "s.npz") as drawn:
        assert drawn["x"].shape == (20, P, D)
        assert np.abs(drawn["x"].mean(axis=1)).max() < 1e-5


def test_likelihood_is_a_density_on_the_subspace(particle_run, cli):
    """The data are N(0, I) on the 6-dim subspace: NLL/dim = ½ ln(2πe) = 1.419. A prior
    normalised on R^8 would be off by ln(2π)/6 = 0.31 per dimension."""
    code, stdout, _ = cli(["estimate", particle_run, "--json"])
    report = json.loads(stdout)
    nll = report["nll_per_dim"]
    exact = 0.5 * math.log(2 * math.pi * math.e)
    assert code == 0 and abs(nll["value"] - exact) < 0.1, nll
    assert "(P-1)*d" in report["conventions"]["nll_per_dim"]


def test_an_unsaid_particle_shape_is_refused_naming_the_kind(particle_file, user_error, tmp_path):
    user_error(["fit", "--data", particle_file, "--out", tmp_path / "r", "--quiet"],
               "data.kind=particles")
    user_error(["fit", "--data", particle_file, "--set", "data.kind=particles", "--set",
                "path.name=pfgm", "--out", tmp_path / "r", "--quiet"], "zero-centre-of-mass")
    # A flattening MLP is not translation invariant: its flow would leave the subspace.
    user_error(["fit", "--data", particle_file, "--set", "data.kind=particles", "--set",
                "model.net=mlp", "--out", tmp_path / "r", "--quiet"], "model.net=egnn")
    assert not (tmp_path / "r").exists()
