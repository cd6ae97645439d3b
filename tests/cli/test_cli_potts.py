"""potts2d from the command line: fit and estimate round trip, and bad specs as one-line errors."""

from __future__ import annotations

import json

import pytest


def test_fit_and_estimate_a_potts_lattice(tmp_path, cli):
    out = tmp_path / "potts"
    code, _, err = cli(["fit", "--target", "potts2d:L=4,q=3,beta=1.0", "--method", "ais",
                        "--out", out, "--set", "method.samples=500", "--steps", "60", "--quiet"])
    assert code == 0, err
    code, text, err = cli(["estimate", out, "--json"])
    assert code == 0, err
    result = json.loads(text)
    for key in ("log_z", "free_energy_per_site", "ess", "energy", "abs_magnetisation"):
        assert set(result[key]) >= {"value", "stderr", "ci95"}, key
    exact = result["exact"]
    assert exact["exact_method"] == "transfer_matrix"
    assert exact["log_z"] == pytest.approx(34.03467344940911, abs=1e-9)
    assert exact["free_energy_per_site"] == pytest.approx(-exact["log_z"] / 16)
    assert "{0, ..., 2}^16" in result["measure"]
    z = (result["log_z"]["value"] - exact["log_z"]) / result["log_z"]["stderr"]
    assert abs(z) < 4, z
    assert 0 < result["abs_magnetisation"]["value"] <= 1


def test_potts_is_listed_with_its_convention(cli):
    code, text, _ = cli(["targets", "--json"])
    entries = {entry["name"]: entry for entry in json.loads(text)}
    assert code == 0 and "delta(s_i, s_j)" in entries["potts2d"]["convention"]
    assert entries["potts2d"]["params"]["q"] == 3


@pytest.mark.parametrize("args,fragments", [
    (["--target", "potts2d:L=4,q=1"], ["q", ">= 2"]),
    (["--target", "potts2d:L=4,q=three"], ["q"]),
    (["--target", "potts2d:L=4,beta=0"], ["beta"]),
    (["--target", "potts2d:L=4,spin=1"], ["spin"]),
    (["--target", "potts2d:L=4,h=0.5", "--set", "method.kernel=wolff"], ["h = 0", "heatbath"]),
])
def test_bad_potts_inputs_are_one_line(tmp_path, user_error, args, fragments):
    user_error(["fit", *args, "--method", "mcmc", "--out", tmp_path / "r"], *fragments)
    assert not (tmp_path / "r").exists()
