"""Particle energies live on the zero-centre-of-mass subspace: log Z is defined there, every
method returns configurations on it, and the answer no longer moves with the base."""

import json
import math

import pytest
import torch

from heatbath.energy import sample_energy
from heatbath.energy.chart import ChartTarget
from heatbath.targets import build_target

FAST_ANNEAL = {"method.steps": 60, "method.samples": 400, "method.moves_per_step": 2}


def _z_score(estimate, exact: float) -> float:
    return abs(estimate.value - exact) / estimate.stderr


@pytest.mark.parametrize("method, settings", [
    ("ais", FAST_ANNEAL),
    ("smc", {**FAST_ANNEAL, "method.replicas": 8}),
    ("ti", {"method.temperatures": 21, "method.chains": 16, "method.steps": 100,
            "method.burn_in": 50}),
])
def test_harmonic_cluster_log_z_on_the_subspace_matches_the_closed_form(method, settings):
    target = build_target("harmonic_cluster:P=4,d=2,k=0.5")
    exact = 3 * math.log(2 * math.pi / 0.5)       # (P-1) d / 2 * ln(2 pi / k)
    assert target.exact.log_z == pytest.approx(exact)
    run = sample_energy(target, method, settings={**settings, "method.base_scale": 1.5})
    log_z = run.estimates().log_z
    assert _z_score(log_z, exact) < 3, (log_z, exact)
    # On R^8 the integral diverges: nothing near the full-space Gaussian value is reported.
    assert abs(log_z.value - 4 * math.log(2 * math.pi / 0.5)) > 10 * log_z.stderr


def test_every_returned_configuration_is_centred_and_shaped_as_particles():
    run = sample_energy(build_target("dw4"), "mcmc",
                        settings={"method.steps": 30, "method.burn_in": 10, "method.chains": 8})
    assert run.x.shape[1:] == (4, 2)
    assert run.x.mean(dim=1).abs().max() < 1e-12


def test_dw4_log_z_does_not_move_with_the_base_width():
    """The defect: on the full space the AIS 'log Z' was 35.04 +- 0.27 with one base and
    35.89 +- 0.15 with another. On the subspace both bases estimate one number."""
    found = [sample_energy(build_target("dw4"), "ais",
                           settings={"method.steps": 100, "method.samples": 400,
                                     "method.base_scale": scale}).estimates().log_z
             for scale in (1.0, 2.0)]
    gap = abs(found[0].value - found[1].value)
    assert gap < 3 * math.hypot(found[0].stderr, found[1].stderr), found


def test_harmonic_cluster_mcmc_energy_is_exact_within_error():
    target = build_target("harmonic_cluster:P=5,d=3,k=2")
    run = sample_energy(target, "mcmc", settings={"method.steps": 400, "method.burn_in": 100,
                                                  "method.chains": 16})
    energy = run.estimates().energy
    assert _z_score(energy, 6.0) < 3          # <U> = (P-1) d / 2


def test_chart_view_counts_and_maps_forces_onto_the_subspace():
    target = build_target("lj13")
    view = ChartTarget(target)
    z = torch.randn(3, 36, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u, force = view.energy_and_force(z)
    x = view.to_original(z)
    u_full, force_full = target.energy_and_force(x)
    assert torch.allclose(u, u_full) and view.dim == 36
    assert torch.allclose(view.to_original(force), force_full - force_full.mean(1, True))
    assert view.energy_evals == 3 and view.force_evals == 3


def test_lj_conventions_are_named_presets():
    x = torch.randn(2, 13, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    once, doubled = build_target("lj13"), build_target("lj13_doubled")
    restraint = 0.5 * (x - x.mean(1, keepdim=True)).pow(2).sum(dim=(1, 2))
    assert torch.allclose(doubled.energy(x) - restraint, 2 * (once.energy(x) - restraint))
    assert build_target("lj13:pairs=doubled").name == doubled.name == "lj13_doubled"
    assert "pairs counted once" in once.convention and "doubled" in doubled.convention
    assert doubled.exact.extra["pair_energy_global_minimum"] == pytest.approx(2 * -44.326801)


def test_estimate_states_the_measure_of_log_z(cli, tmp_path, tiny):
    out = tmp_path / "dw4"
    assert cli(["fit", "--target", "dw4", "--method", "ais", "--out", out, "--set",
                "method.steps=10", "--set", "method.samples=50", "--quiet"])[0] == 0
    code, stdout, _ = cli(["estimate", out, "--json"])
    report = json.loads(stdout)
    assert code == 0 and "zero-centre-of-mass subspace" in report["measure"]
    assert "measure" in report["conventions"]["log_z"]


def test_a_run_from_before_the_subspace_is_refused_in_one_line(cli, tmp_path, user_error):
    out = tmp_path / "dw4"
    assert cli(["fit", "--target", "dw4", *["--method", "mcmc", "--set", "method.steps=5",
                                           "--set", "method.burn_in=1", "--quiet"],
                "--out", out])[0] == 0
    record = json.loads((out / "run.json").read_text())
    record["event_shape"] = [8]                 # what heatbath 0.1 wrote for dw4
    (out / "run.json").write_text(json.dumps(record))
    user_error(["estimate", out], "re-run heatbath fit", "not defined")


def test_no_chain_stays_stuck_on_the_quartic_walls_of_dw4():
    """Chains started from the base meet forces of hundreds of kT per unit length; at the step
    size tuned for the typical set they rejected every move and stayed (median chain <U> was
    +70 where the target's is -22.5). Burn-in now gives such a chain its own smaller step."""
    run = sample_energy(build_target("dw4"), "mcmc", settings={
        "method.chains": 32, "method.steps": 100, "method.burn_in": 300,
        "method.kernel": "hmc"})
    chain_means = run.result.energy_traces.mean(dim=1)
    assert chain_means.max() < -18, chain_means.sort().values[-5:]
    low, high = run.result.diagnostics["chain_step_size_range"]
    assert 0 < low <= high == pytest.approx(run.result.diagnostics["step_size"])
