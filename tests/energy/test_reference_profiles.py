"""`estimate RUN --reference REF_RUN`: free-energy profiles beside a reference run's, with
z-scores; same-target check; the report draws the reference band."""

import json
import math

import pytest

from heatbath.energy.reference import compare


def test_compare_aligns_values_and_scores_each_one():
    run = {"values": [-1.0, 0.0, 1.0], "beta_f": [2.0, 1.0, 2.5], "stderr": [0.1, 0.1, 0.2],
           "n": 100}
    ref = {"values": [0.0, 1.0, 2.0], "beta_f": [1.3, 2.5, 4.0], "stderr": [0.4, 0.0, 0.1],
           "n": 50}
    found = compare(run, ref)
    assert found["reference"]["beta_f"] == [None, 1.3, 2.5]
    assert found["reference"]["stderr"] == [None, 0.4, 0.0]
    assert found["reference_z"][0] is None
    assert found["reference_z"][1] == pytest.approx(-0.3 / math.hypot(0.1, 0.4))
    assert found["reference_z"][2] == pytest.approx(0.0)
    assert found["reference_max_abs_z"] == pytest.approx(0.3 / math.hypot(0.1, 0.4))
    assert found["values"] == run["values"] and found["reference"]["n"] == 50


def test_a_weighted_run_against_a_long_chain_run(tmp_path, cli, user_error):
    spec = "ising2d:L=4,beta=0.3"
    fit = ["fit", "--target", spec, "--quiet"]
    assert cli([*fit, "--method", "ais", "--out", tmp_path / "ais",
                "--set", "method.samples=2000", "--set", "method.steps=50"])[0] == 0
    assert cli([*fit, "--method", "mcmc", "--out", tmp_path / "ref", "--set", "method.chains=16",
                "--set", "method.steps=500", "--set", "method.kernel=wolff"])[0] == 0
    code, out, err = cli(["estimate", tmp_path / "ais", "--json", "--reference",
                          tmp_path / "ref"])
    assert code == 0, err
    report = json.loads(out)
    for name in ("m", "energy_per_site"):
        profile = report["free_energy_profiles"][name]
        assert len(profile["reference"]["beta_f"]) == len(profile["values"])
        assert profile["reference_max_abs_z"] < 4.5        # both sample the same law
        assert sum(z is not None for z in profile["reference_z"]) >= 3
    assert "reference" in report["conventions"]
    assert cli(["report", tmp_path / "ais"])[0] == 0
    assert cli([*fit[:2], "ising2d:L=4,beta=0.35", "--quiet", "--method", "mcmc", "--out",
                tmp_path / "other"])[0] == 0
    user_error(["estimate", tmp_path / "ais", "--reference", tmp_path / "other"],
               "not this run's")
