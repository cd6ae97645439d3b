"""The sampling methods on the q-state Potts model: every estimate of ln Z and ⟨U⟩ agrees with the
transfer matrix on 4×4 q = 3 (z-scores from each method's own error bar), and the moves that are
not exact on a lattice are refused in one line."""

from __future__ import annotations

import math

import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.energy import sample_energy
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.problem import Problem
from heatbath.targets import build_target

SPEC = "potts2d:L=4,q=3,beta=1.0"

RUNS = {
    "ais": {"method.steps": 100, "method.samples": 1000},
    "smc": {"method.steps": 100, "method.samples": 1000},
    "ti": {"method.temperatures": 9, "method.chains": 16, "method.steps": 200},
    "mcmc": {"method.steps": 400, "method.chains": 32},
    "pt": {"method.steps": 300, "method.chains": 16},
}


@pytest.mark.parametrize("method", list(RUNS))
def test_methods_reproduce_the_exact_answers(method):
    target = build_target(SPEC)
    found = sample_energy(target, method, settings=RUNS[method], seed=3).estimates()
    exact = target.exact
    assert abs(found.energy.z_score(exact.energy_mean)) < 4, found.energy
    if method in ("ais", "smc", "ti"):
        assert abs(found.log_z.z_score(exact.log_z)) < 4, found.log_z
        assert found.free_energy_per_site.value == pytest.approx(-found.log_z.value / 16)


def test_annealing_from_a_warm_start_adds_the_exact_log_z_there():
    target = build_target(SPEC)
    found = sample_energy(target, "ais", settings={"method.steps": 60, "method.samples": 500,
                                                   "method.beta_start": 0.5}, seed=5).estimates()
    assert found.delta_log_z is None
    assert abs(found.log_z.z_score(target.exact.log_z)) < 4, found.log_z


def test_cluster_moves_run_through_the_methods():
    target = build_target(SPEC)
    found = sample_energy(target, "mcmc", settings={**RUNS["mcmc"], "method.kernel": "wolff"},
                          seed=4).estimates()
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4, found.energy
    assert 0 < found.abs_magnetisation.value <= 1


def test_annealing_starts_from_uniform_states_with_log_z_n_ln_q():
    target = build_target(SPEC)
    problem = Problem(target, EnergyRunConfig(), torch.float64, torch.Generator().manual_seed(0))
    assert problem.log_z_start() == pytest.approx(16 * math.log(3))
    start = problem.initial(2000)
    assert set(start.unique().tolist()) == {0.0, 1.0, 2.0}
    assert abs(float((start == 0).double().mean()) - 1 / 3) < 0.01


@pytest.mark.parametrize("spec,fragment", [("potts2d:L=4,q=3,h=0.1", "h = 0"),
                                           ("potts2d:L=4,q=3,J=-1", "J >= 0")])
def test_wolff_is_refused_where_it_is_not_exact(spec, fragment):
    with pytest.raises(UserError, match=fragment) as error:
        sample_energy(build_target(spec), "mcmc", settings={"method.kernel": "wolff"})
    assert "\n" not in str(error.value) and "heatbath" in str(error.value)


def test_the_masked_model_learns_three_states_with_exact_weights(tmp_path, cli, user_error):
    """The data half's masked network as a Potts Boltzmann generator: unbiased βF/N against the
    transfer matrix, symmetrised over relabellings; transfer keeps q; autoregressive refuses."""
    target = build_target("potts2d:L=3,q=3,beta=0.8")
    settings = {"masked.steps": 60, "masked.batch_size": 32, "masked.channels": 8,
                "masked.depth": 2, "masked.lr": 3e-3, "masked.z2": True, "method.samples": 2000}
    run = sample_energy(target, "masked", settings=settings, seed=1)
    found = run.estimates()
    assert set(run.x.unique().tolist()) == {0.0, 1.0, 2.0}
    assert abs(found.free_energy_per_site.z_score(-target.exact.log_z / 9)) < 4
    assert found.ess.value > 0.1    # the uniform law's: 0.0018 (by enumeration)
    out = tmp_path / "potts"
    code, _, err = cli(["fit", "--target", "potts2d:L=3,q=3,beta=0.8", "--method", "masked",
                        "--steps", "2", "--out", out, "--set", "method.samples=50", "--quiet",
                        "--set", "masked.channels=4", "--set", "masked.depth=1"])
    assert code == 0, err
    user_error(["sample", out, "-n", "10", "--target", "potts2d:L=3,q=4,beta=0.8", "--out",
                tmp_path / "q4"], "3 states per site")
    user_error(["fit", "--target", SPEC, "--method", "autoregressive", "--out",
                tmp_path / "ar"], "--method masked")
