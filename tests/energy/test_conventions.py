"""Every number `estimate --json` prints names its unit and definition in `conventions`, and
per-site values are in the unit of their totals."""

import json
import math

import pytest

from heatbath.targets.ising import Ising2D

AIS = ["--method", "ais", "--set", "method.steps=10", "--set", "method.samples=64", "--quiet"]
UNLABELLED = {"conventions", "exact", "exact_method"}


@pytest.mark.parametrize("target,method", [("ising2d:L=4", "ais"), ("ising2d:L=4", "mcmc"),
                                           ("gaussian:dim=2", "ais")])
def test_every_energy_key_has_a_convention(target, method, tmp_path, cli, tiny):
    args = AIS if method == "ais" else tiny.mcmc
    assert cli(["fit", "--target", target, "--out", tmp_path / "r", *args])[0] == 0
    code, out, err = cli(["estimate", tmp_path / "r", "--json"])
    report = json.loads(out)
    keys = (set(report) | set(report.get("exact", {}))) - UNLABELLED
    assert keys and keys <= set(report["conventions"]), keys - set(report["conventions"])


def test_every_data_key_has_a_convention(tmp_path, cli):
    assert cli(["fit", "--data", "builtin:moons:n=200", "--steps", "3", "--out", tmp_path / "d",
                "--set", "model.hidden=8", "--set", "model.depth=1", "--set", "eval.samples=40",
                "--set", "sample.nfe=2", "--quiet"])[0] == 0
    report = json.loads(cli(["estimate", tmp_path / "d", "--json"])[1])
    assert set(report) - {"conventions", "sampler", "dim"} <= set(report["conventions"])


def test_ising_per_site_values_share_the_unit_of_their_totals():
    target = Ising2D(L=6, beta=0.3)
    exact = target.exact
    sites = 36
    assert exact.extra["energy_per_site"] == pytest.approx(exact.energy_mean / sites, rel=1e-12)
    assert exact.extra["heat_capacity_per_site"] == pytest.approx(exact.heat_capacity / sites)
    assert exact.extra["log_z_per_site"] == pytest.approx(exact.log_z / sites)


def test_weighted_ising_runs_report_free_energy_profiles_beside_enumeration(tmp_path, cli):
    args = ["--method", "ais", "--set", "method.steps=50", "--set", "method.samples=2000",
            "--quiet"]
    assert cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--out", tmp_path / "r",
                *args])[0] == 0
    report = json.loads(cli(["estimate", tmp_path / "r", "--json"])[1])
    profiles = report["free_energy_profiles"]
    assert set(profiles) == {"m", "energy_per_site"}
    for profile in profiles.values():
        assert len(profile["values"]) == len(profile["beta_f"]) == len(profile["exact"]) >= 5
        for beta_f, stderr, exact in zip(profile["beta_f"], profile["stderr"],
                                         profile["exact"]):
            if math.exp(-exact) > 0.05:       # well-visited values: within the error bar
                assert abs(beta_f - exact) < 4.5 * stderr
    # Markov chains: P(v) from the chains' fractions of time, error from their spread
    assert cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "mcmc", "--out",
                tmp_path / "chains", "--set", "method.chains=32", "--set", "method.steps=300",
                "--quiet"])[0] == 0
    chains = json.loads(cli(["estimate", tmp_path / "chains", "--json"])[1])
    profile = chains["free_energy_profiles"]["m"]
    for beta_f, stderr, exact in zip(profile["beta_f"], profile["stderr"], profile["exact"]):
        if math.exp(-exact) > 0.05:
            assert abs(beta_f - exact) < 4.5 * stderr
    # one chain has no spread to take an error bar from: no profiles, and no failure
    assert cli(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "mcmc", "--out",
                tmp_path / "one", "--set", "method.chains=1", "--set", "method.steps=50",
                "--quiet"])[0] == 0
    assert "free_energy_profiles" not in json.loads(cli(["estimate", tmp_path / "one",
                                                         "--json"])[1])
    # a lattice too large to enumerate reports the profiles without 'exact'
    assert cli(["fit", "--target", "ising2d:L=6,beta=0.3", "--out", tmp_path / "big",
                *AIS])[0] == 0
    big = json.loads(cli(["estimate", tmp_path / "big", "--json"])[1])
    assert "exact" not in big["free_energy_profiles"]["m"]
