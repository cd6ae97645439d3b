"""`heatbath sample RUN --target SPEC --out NEW_RUN`: a β-conditioned autoregressive model drawn
for another β and lattice size into a new energy run whose estimates match Kaufman, and the
one-line refusals of what it cannot do."""

import json

import numpy as np
import pytest

from heatbath.cli import main
from heatbath.targets.ising import Ising2D

# A tiny β-conditioned model on 4×4 over β ∈ [0.2, 0.5] (z2: both magnetised modes, h = 0).
TRAIN = ["fit", "--target", "ising2d:L=4,beta=0.4", "--method", "autoregressive",
         "--steps", "150",
         "--set", "method.beta_range=0.2,0.5", "--set", "autoregressive.z2=true",
         "--set", "autoregressive.layers=2", "--set", "autoregressive.channels=8",
         "--set", "autoregressive.batch_size=128", "--set", "autoregressive.lr=3e-3",
         "--set", "method.samples=200", "--set", "method.seed=1", "--quiet"]
ESTIMATE_KEYS = ("free_energy_per_site", "log_z", "ess", "energy", "abs_magnetisation")


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / "conditioned"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def unconditioned(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / "unconditioned"
    assert main(["fit", "--target", "ising2d:L=4,beta=0.3", "--method", "autoregressive",
                 "--steps", "3", "--set", "autoregressive.layers=1",
                 "--set", "autoregressive.channels=4", "--set", "autoregressive.batch_size=8",
                 "--set", "method.samples=20", "--out", str(out), "--quiet"]) == 0
    return out


def exact_free_energy(L: int, beta: float) -> float:
    return -Ising2D(L=L, beta=beta).exact.log_z / L ** 2


@pytest.mark.parametrize("L,beta", [(6, 0.3), (4, 0.45)])
def test_transfer_to_another_size_and_beta_matches_kaufman(conditioned, tmp_path, cli, L, beta):
    new = tmp_path / "moved"
    code, _, err = cli(["sample", conditioned, "-n", "4000", "--target",
                        f"ising2d:L={L},beta={beta}", "--out", new, "--quiet"])
    assert code == 0, err
    code, stdout, err = cli(["estimate", new, "--json"])
    assert code == 0, err
    report = json.loads(stdout)
    for key in ESTIMATE_KEYS:
        assert set(report[key]) >= {"value", "stderr", "ci95"}, key
    assert report["n"] == report["energy_evals"] == 4000   # the draw's own evaluations
    exact = exact_free_energy(L, beta)
    assert report["exact"]["free_energy_per_site"] == pytest.approx(exact)
    assert report["exact"]["exact_method"] == "kaufman"
    found = report["free_energy_per_site"]
    assert abs(found["value"] - exact) < 4 * found["stderr"], (found, exact)
    # the check has power: the model was asked for this β, not the β the source run reports
    assert abs(found["value"] - exact_free_energy(L, 0.4)) > 4 * found["stderr"]
    assert np.load(new / "samples.npz")["x"].shape == (4000, L, L)
    record = json.loads((new / "run.json").read_text())
    assert record["target"]["spec"] == f"ising2d:L={L},beta={beta}"
    assert record["transferred_from"] == {
        "run": str(conditioned.resolve()), "spec": "ising2d:L=4,beta=0.4", "beta": 0.4,
        "L": 4, "M": 4, "trained_betas": [0.2, 0.5], "seed": 0}


def test_the_new_run_draws_again_from_its_copy_of_the_model(conditioned, tmp_path, cli):
    new = tmp_path / "moved"
    assert cli(["sample", conditioned, "-n", "50", "--target", "ising2d:L=6,beta=0.35",
                "--out", new, "--quiet"])[0] == 0
    code, _, err = cli(["sample", new, "-n", "10", "--out", tmp_path / "again.npz"])
    assert code == 0, err
    again, first = np.load(tmp_path / "again.npz"), np.load(new / "samples.npz")
    assert (new / "model.safetensors").read_bytes() == (
        conditioned / "model.safetensors").read_bytes()
    # same seed, same model, same lattice: the transfer's first draws (batch-size independent)
    assert np.array_equal(again["x"], first["x"][:10])
    assert np.allclose(again["log_w"], first["log_w"][:10])
    # and it transfers on, still within the β range of the original training
    chained = tmp_path / "chained"
    assert cli(["sample", new, "-n", "10", "--target", "ising2d:L=3,M=5,beta=0.25", "--out",
                chained, "--quiet"])[0] == 0
    origin = json.loads((chained / "run.json").read_text())["transferred_from"]
    assert origin["run"] == str(new.resolve()) and origin["trained_betas"] == [0.2, 0.5]


@pytest.mark.parametrize("spec,fragments", [
    ("ising2d:L=6,beta=0.6", ["trained over", "beta_range=0.2,0.5"]),
    ("ising2d:L=4,beta=0.1", ["trained over", "beta_range=0.2,0.5"]),
    ("ising2d:L=6,beta=0.3,J=2", ["J=1", "only beta, L and M"]),
    ("ising2d:L=6,beta=0.3,h=0.1", ["h=0.1", "only beta, L and M"]),
    ("gaussian:dim=2", ["must be ising2d"]),
])
def test_refusals_leave_nothing_behind(conditioned, tmp_path, user_error, spec, fragments):
    user_error(["sample", conditioned, "-n", "10", "--target", spec, "--out",
                tmp_path / "new"], *fragments)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_is_never_overwritten(conditioned, tmp_path, cli, user_error):
    new = tmp_path / "moved"
    assert cli(["sample", conditioned, "-n", "20", "--target", "ising2d:L=6,beta=0.3",
                "--out", new, "--quiet"])[0] == 0
    before = {p.name: p.read_bytes() for p in new.iterdir() if p.is_file()}
    user_error(["sample", conditioned, "-n", "30", "--target", "ising2d:L=8,beta=0.3",
                "--out", new], "already exists")
    assert {p.name: p.read_bytes() for p in new.iterdir() if p.is_file()} == before


def test_a_failed_write_leaves_no_partial_run(conditioned, tmp_path, monkeypatch, user_error):
    import errno

    import heatbath.report

    def disk_full(run_dir):   # the last file of the run, once all the others are written
        assert (run_dir / "samples.npz").is_file()
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(heatbath.report, "write_report", disk_full)
    user_error(["sample", conditioned, "-n", "10", "--target", "ising2d:L=6,beta=0.3",
                "--out", tmp_path / "new"], "No space left")
    assert list(tmp_path.iterdir()) == []


def test_an_unconditioned_model_keeps_its_own_beta(unconditioned, tmp_path, cli, user_error):
    user_error(["sample", unconditioned, "-n", "10", "--target", "ising2d:L=4,beta=0.4",
                "--out", tmp_path / "new"], "beta=0.3 only", "method.beta_range")
    assert not (tmp_path / "new").exists()
    code, _, err = cli(["sample", unconditioned, "-n", "10", "--target",
                        "ising2d:L=5,M=3,beta=0.3", "--out", tmp_path / "bigger", "--quiet"])
    assert code == 0, err
    assert np.load(tmp_path / "bigger" / "samples.npz")["x"].shape == (10, 5, 3)


def test_other_methods_and_misused_options_are_refused(tiny_energy_run, tiny_data_run,
                                                       conditioned, tmp_path, user_error):
    user_error(["sample", tiny_energy_run, "-n", "5", "--target", "gaussian:dim=2", "--out",
                tmp_path / "a"], "keeps no sampler")
    user_error(["sample", tiny_data_run, "-n", "5", "--target", "ising2d:L=4", "--out",
                tmp_path / "b"], "data run")
    user_error(["sample", conditioned, "-n", "5", "--target", "ising2d:L=6,beta=0.3"],
               "--out NEW_RUN")
    user_error(["sample", conditioned, "-n", "5", "--target", "ising2d:L=6,beta=0.3", "--out",
                tmp_path / "c.npz"], "run directory")
    assert list(tmp_path.iterdir()) == []


def test_a_flow_run_is_refused_naming_the_methods_that_transfer(tmp_path, tiny, cli,
                                                                 user_error):
    flow = tmp_path / "flow"
    assert cli(["fit", "--target", "gaussian:dim=2", "--out", flow, *tiny.flow])[0] == 0
    user_error(["sample", flow, "-n", "5", "--target", "gaussian:dim=3", "--out",
                tmp_path / "new"], "tied to its target", "autoregressive")
    assert not (tmp_path / "new").exists()
