"""`--method nets` and `--method cmcd` from the CLI and the library: runs, redraws, particles on
their subspace, the evaluation budget, and refusals."""

import json
import math

import numpy as np
import pytest

from heatbath.core.optim import BudgetCosine
from heatbath.core.settings import set_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.targets.registry import build_target

TINY = ["--steps", "6", "--set", "transport.hidden=8", "--set", "transport.depth=1",
        "--set", "transport.batch_size=16", "--set", "transport.updates=3",
        "--set", "transport.time_steps=8", "--set", "method.samples=200", "--quiet"]


def config_for(spec: str, method: str, **settings) -> EnergyRunConfig:
    config = EnergyRunConfig()
    config.target.spec, config.method.name = spec, method
    for key, value in settings.items():
        set_value(config, key.replace("__", "."), value)
    return config


@pytest.mark.parametrize("method", ["nets", "cmcd"])
def test_fit_estimate_and_redraw_from_the_cli(method, cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(["fit", "--target", "gaussian:dim=2,mean=1", "--method", method,
                        "--out", out, *TINY])
    assert code == 0, err
    code, report, _ = cli(["estimate", out, "--json"])
    report = json.loads(report)
    assert {"log_z", "ess", "energy"} <= set(report) and report["energy_evals"] > 0
    draws = []
    for name in ("a.npz", "b.npz"):
        assert cli(["sample", out, "-n", "30", "--seed", "3", "--out", tmp_path / name,
                    "--quiet"])[0] == 0
        draws.append(np.load(tmp_path / name))
    assert np.array_equal(draws[0]["x"], draws[1]["x"])       # same seed, same walkers
    x = draws[0]["x"]
    assert x.shape == (30, 2) and np.isfinite(draws[0]["log_w"]).all()
    np.testing.assert_allclose(draws[0]["energy"], 0.5 * ((x - 1.0) ** 2).sum(1), atol=1e-10)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_particles_walk_on_the_zero_com_subspace_with_the_egnn(divergence):
    # harmonic_cluster: log Z = ((P−1)d/2) ln(2π/k) on the subspace, exactly.
    target = build_target("harmonic_cluster:P=4,d=2,k=2")
    config = config_for("harmonic_cluster:P=4,d=2,k=2", "nets", transport__steps=10,
                        transport__hidden=8, transport__depth=1, transport__batch_size=16,
                        transport__updates=5, transport__time_steps=16, method__samples=3000,
                        transport__divergence=divergence)
    result, problem = run_method(config)
    assert result.diagnostics["net"] == "egnn"
    assert np.allclose(result.x.sum(dim=1).numpy(), 0.0, atol=1e-10)   # CoM stays at 0
    from heatbath.estimators.importance import log_z_importance
    found = log_z_importance(result.log_w.numpy())
    assert abs(found.value - target.exact.log_z) < 3 * found.stderr


@pytest.mark.parametrize("method,settings", [
    ("cmcd", {"transport__batch_size": 16, "transport__time_steps": 9, "transport__steps": 500,
              "transport__updates": 2, "transport__hidden": 8, "transport__depth": 1,
              "transport__step_size": 0.05}),
    ("flow", {"flow__steps": 500, "flow__layers": 2, "flow__hidden": 8, "flow__batch_size": 32}),
])
def test_budget_stops_training_before_it_is_exceeded(method, settings, monkeypatch):
    schedules = []

    class Recorded(BudgetCosine):   # the trainer's own schedule, kept for the check below
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            schedules.append(self)

    trainer = "heatbath.transport.train" if method == "cmcd" else "heatbath.flows.training"
    monkeypatch.setattr(f"{trainer}.BudgetCosine", Recorded)
    config = config_for("gaussian:dim=2", method, method__budget=3000, method__samples=100,
                        **settings)
    result, _ = run_method(config)
    assert result.diagnostics["budget_reached"]
    assert 0 < result.diagnostics["training_energy_evals"] <= 3000
    # The budget, not the 500 steps, set the decay: the last rate is within 3 % of zero.
    (schedule,) = schedules
    assert schedule.taken < 500
    assert schedule.optimizer.param_groups[0]["lr"] < 0.03 * schedule.base[0]
    if method == "cmcd":
        # 16 + 8 exploring walks of 10 states per simulation: 12 simulations fit in 3000.
        assert result.diagnostics["training_energy_evals"] == 12 * 24 * 10
        assert result.diagnostics["energy_evals"] == 12 * 24 * 10 + 100 * 10


@pytest.mark.parametrize("args,fragment", [
    (["--method", "ais", "--set", "method.budget=1000"], "methods with a budget: flow, snf"),
    (["--method", "nets", "--set", "transport.net=unet"], "transport.net=unet does not fit"),
    (["--method", "cmcd", "--set", "transport.dtype=float16"], "transport.dtype"),
    (["--method", "nets", "--set", "transport.batch_size=1"], "transport.batch_size"),
    (["--method", "nets", "--set", "transport.divergence=trace"], "transport.divergence"),
    (["--method", "cmcd", "--set", "transport.divergence=hutchinson"], "takes no divergence"),
])
def test_bad_transport_settings_are_one_line(args, fragment, user_error, tmp_path):
    user_error(["fit", "--target", "gaussian", *args, "--out", tmp_path / "r"], fragment)
    assert not (tmp_path / "r").exists()


def test_a_budget_spent_before_training_is_refused(user_error, tmp_path):
    # The MALA pilot that tunes the Langevin step alone costs more than 10 evaluations.
    user_error(["fit", "--target", "gaussian", "--method", "nets", "--set", "method.budget=10",
                "--out", tmp_path / "r"], "method.budget=10 is spent before training")
