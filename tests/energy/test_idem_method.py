"""`--method idem`: iDEM trained from the energy alone, weighted by the exact density of a CNF
refit to its samples — unbiased log Z on vectors and on the particles' subspace, the CLI,
redraws, the budget and refusals."""

import json

import numpy as np
import pytest

from heatbath.core.settings import set_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.estimators.importance import kish_ess, log_z_importance
from heatbath.targets.registry import build_target

SMALL = {"idem.steps": 600, "idem.batch_size": 64, "idem.mc_samples": 32, "idem.hidden": 16,
         "idem.depth": 2, "idem.generate": 128, "idem.updates": 25, "idem.nfe": 20,
         "idem.refit_samples": 1500, "cnf.steps": 200, "cnf.hidden": 16, "cnf.depth": 2,
         "cnf.rtol": 1e-4, "cnf.atol": 1e-4, "method.samples": 1500}
TINY = ["--steps", "4", "--set", "idem.hidden=8", "--set", "idem.depth=1", "--set",
        "idem.batch_size=8", "--set", "idem.mc_samples=4", "--set", "idem.generate=16",
        "--set", "idem.updates=2", "--set", "idem.nfe=4", "--set", "idem.refit_samples=64",
        "--set", "cnf.steps=5", "--set", "cnf.hidden=8", "--set", "cnf.depth=1", "--set",
        "cnf.rtol=1e-3", "--set", "cnf.atol=1e-3", "--set", "method.samples=32", "--quiet"]


def config_for(spec: str, **settings) -> EnergyRunConfig:
    config = EnergyRunConfig()
    config.target.spec, config.method.name = spec, "idem"
    for key, value in {**SMALL, **settings}.items():
        set_value(config, key, value)
    return config


@pytest.mark.parametrize("spec, sigma_max, min_ess", [
    ("gaussian:dim=2,mean=1", 4.0, 0.1),
    ("manywell32:dim=2", 3.0, 0.02),   # one double well: the two wells' masses are the hard part
    ("harmonic_cluster:P=4,d=2,k=2", 2.0, 0.1)])
def test_refit_weights_give_the_exact_log_z(spec, sigma_max, min_ess):
    # log Z: closed form (Gaussian), quadrature (double well), closed form on the zero-CoM
    # subspace (harmonic_cluster, where the score net and the refit flow are EGNNs and every
    # sample keeps its centre of mass at 0)
    result, problem = run_method(config_for(spec, **{"idem.sigma_max": sigma_max}))
    found = log_z_importance(result.log_w.numpy())
    exact = build_target(spec).exact.log_z
    assert abs(found.value - exact) < 3 * found.stderr, (found, exact)
    # a usable proposal too (small nets, 600 steps); the z-score above is the real test
    assert kish_ess(result.log_w.numpy()).value > min_ess
    assert "CNF refit" in result.diagnostics["log_w"]
    if spec.startswith("harmonic"):
        assert result.diagnostics["net"] == result.diagnostics["refit_net"] == "egnn"
        assert np.abs(result.x.sum(dim=1).numpy()).max() < 1e-6


def test_budget_caps_the_monte_carlo_score_evaluations():
    per_step = 64 * 32
    result, problem = run_method(config_for("gaussian:dim=2", **{"method.budget": 10 * per_step
                                                                 + 5}))
    d = result.diagnostics
    assert d["budget_reached"] and d["gradient_steps"] == 10
    assert d["training_energy_evals"] == 10 * per_step


def test_fit_estimate_and_redraw_from_the_cli(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(["fit", "--target", "dw4", "--method", "idem", "--out", out, *TINY])
    assert code == 0, err
    code, report, _ = cli(["estimate", out, "--json"])
    report = json.loads(report)
    assert {"log_z", "ess", "energy"} <= set(report) and report["energy_evals"] > 0
    assert "zero-centre-of-mass" in report["measure"]
    assert "CNF refit" in report["weights"] and "weights" in report["conventions"]
    draws = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for name in draws:
        assert cli(["sample", out, "-n", "12", "--seed", "3", "--out", name, "--quiet"])[0] == 0
    first, second = (np.load(name) for name in draws)
    assert np.array_equal(first["x"], second["x"]) and first["x"].shape == (12, 4, 2)
    assert np.isfinite(first["log_q"]).all()


def test_noise_levels_in_the_wrong_order_are_one_line_and_no_folder(cli, tmp_path):
    code, _, err = cli(["fit", "--target", "dw4", "--method", "idem", "--out", tmp_path / "r",
                        "--set", "idem.sigma_min=5", "--set", "idem.sigma_max=3"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "idem.sigma_min" in err
    assert not (tmp_path / "r").exists()


def test_a_budget_below_one_step_is_one_line_and_no_folder(cli, tmp_path):
    code, _, err = cli(["fit", "--target", "dw4", "--method", "idem", "--out", tmp_path / "r",
                        "--set", "method.budget=1000"])   # one step: 128 x 100 evaluations
    assert code == 2 and len(err.strip().splitlines()) == 1 and "12800" in err
    assert not (tmp_path / "r").exists()
