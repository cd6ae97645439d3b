"""Every energy method against exact answers: log Z and ⟨U⟩ within 3–4 standard errors."""

import pytest

from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import estimate_energy_result
from heatbath.energy.fit import sample_arrays, result_record, run_method
from heatbath.estimators.importance import self_normalized
from heatbath.testsystems import double_well_log_z

GAUSSIAN = "gaussian:dim=3,mean=1,std=2"
ISING = "ising2d:L=4,beta=0.4406867935"


def estimate(spec: str, method: str, seed: int = 0, **method_settings) -> tuple[dict, object]:
    config = EnergyRunConfig()
    config.target.spec, config.method.name, config.method.seed = spec, method, seed
    for key, value in method_settings.items():
        setattr(config.method, key, value)
    result, problem = run_method(config)
    report = estimate_energy_result(problem.target, result.x, result.log_w, result.energy,
                                    sample_arrays(result), result_record(result), None)
    return report, problem.target


def z_score(entry: dict, truth: float) -> float:
    return (entry["value"] - truth) / entry["stderr"]


LOG_Z_CASES = [
    (GAUSSIAN, "ais", dict(samples=1000, steps=100)),
    (GAUSSIAN, "smc", dict(samples=1024, steps=100)),
    (GAUSSIAN, "ti", dict(chains=32, steps=200, burn_in=50, temperatures=21)),
    (ISING, "ais", dict(samples=1000, steps=100)),
    (ISING, "smc", dict(samples=1024, steps=100)),
    (ISING, "ti", dict(chains=32, steps=200, burn_in=50, temperatures=21)),
]


@pytest.mark.parametrize("spec,method,settings", LOG_Z_CASES,
                         ids=[f"{s.split(':')[0]}-{m}" for s, m, _ in LOG_Z_CASES])
def test_log_z_within_three_standard_errors(spec, method, settings):
    report, target = estimate(spec, method, **settings)
    assert report["log_z"]["stderr"] < 0.1
    assert abs(z_score(report["log_z"], target.exact.log_z)) < 3
    if target.discrete:
        exact_f = -target.exact.log_z / target.dim
        assert report["exact"]["free_energy_per_site"] == pytest.approx(exact_f)
        assert abs(z_score(report["free_energy_per_site"], exact_f)) < 3


def expected_energy_evals(spec: str, method: str, settings: dict) -> int:
    """Energy evaluations the settings cost (one configuration = one evaluation).

    Spins (see heatbath.energy.problem): one sweep of one configuration counts as one; PT
    evaluates every replica's energy at the start (as for continuous targets) and again after
    each sweep for the swap test. Continuous (HMC
    default n_leapfrog = 5, MALA 1 gradient per step): the step size is first tuned by
    max(burn_in, 50) steps of min(64, 4·chains) chains, and every chain start evaluates its
    starting point once. Every method ends by evaluating the energies of the samples it returns.
    """
    chains, steps, burn_in = settings["chains"], settings.get("steps"), settings["burn_in"]
    if spec == ISING:
        sweeps = 1                                                  # moves_per_step
        if method == "mcmc":
            return chains * (burn_in + steps) * sweeps + chains * steps
        if method == "pt":
            rows = settings["temperatures"] * chains
            return rows * (1 + (burn_in + steps) * (sweeps + 1)) + chains * steps
    per_step = {"mala": 1, "hmc": 5}[settings.get("kernel", "hmc")]
    tune_chains = min(64, 4 * chains)
    tuning = tune_chains * (1 + max(burn_in, 50) * per_step)
    if method == "mcmc":             # burn-in and the kept steps each (re)start the chains
        return tuning + chains * (2 + (burn_in + steps) * per_step) + chains * steps
    if method == "pt":               # one start for all rungs, then each round: move + energy
        rows = settings["temperatures"] * chains
        return tuning + rows * (1 + (burn_in + steps) * (per_step + 1)) + chains * steps
    raise AssertionError(f"no count for {spec} {method}")


ENERGY_CASES = [
    (GAUSSIAN, "mcmc", dict(kernel="mala", chains=64, steps=300, burn_in=100)),
    (GAUSSIAN, "mcmc", dict(kernel="hmc", chains=64, steps=200, burn_in=100)),
    (GAUSSIAN, "pt", dict(chains=32, steps=200, burn_in=50, temperatures=4)),
    (ISING, "mcmc", dict(kernel="heatbath", chains=64, steps=300, burn_in=100)),
    (ISING, "mcmc", dict(kernel="wolff", chains=64, steps=300, burn_in=100)),
    (ISING, "mcmc", dict(kernel="metropolis", chains=64, steps=300, burn_in=100)),
    (ISING, "pt", dict(chains=32, steps=200, burn_in=50, temperatures=4)),
    (ISING, "ais", dict(samples=2000, steps=100)),
]


@pytest.mark.parametrize("spec,method,settings", ENERGY_CASES,
                         ids=[f"{s.split(':')[0]}-{m}-{c.get('kernel', '')}"
                              for s, m, c in ENERGY_CASES])
def test_mean_energy_within_four_standard_errors(spec, method, settings):
    report, target = estimate(spec, method, **settings)
    assert abs(z_score(report["energy"], target.exact.energy_mean)) < 4
    assert 0 < report["ess"]["value"] <= 1
    if method == "ais":
        # 2000 annealed spin configurations, 100 steps from β = 0, each step one energy at the
        # new β (the weight) + 1 sweep; + the final energies.
        expected = settings["samples"] * (settings["steps"] * (1 + 1) + 1)
    else:
        expected = expected_energy_evals(spec, method, settings)
    assert report["energy_evals"] == expected


def test_same_seed_same_result():
    a, _ = estimate(ISING, "smc", seed=4, samples=256, steps=20)
    b, _ = estimate(ISING, "smc", seed=4, samples=256, steps=20)
    c, _ = estimate(ISING, "smc", seed=5, samples=256, steps=20)
    assert a["log_z"] == b["log_z"] and a["log_z"] != c["log_z"]


@pytest.mark.parametrize("method", ["flow", "snf"])
def test_learned_samplers_give_unbiased_log_z(method):
    config = EnergyRunConfig()
    config.target.spec, config.method.name = "gaussian:dim=2,mean=1,std=1.5", method
    config.flow.steps, config.flow.layers, config.flow.hidden = 200, 4, 32
    config.method.samples = 2000
    zs = []
    for seed in range(3):
        config.method.seed = seed
        result, problem = run_method(config)
        report = estimate_energy_result(problem.target, result.x, result.log_w, result.energy,
                                        sample_arrays(result), result_record(result), None)
        zs.append(z_score(report["log_z"], problem.target.exact.log_z))
        assert report["ess"]["value"] > 0.8
    # Three independent estimates: their mean z-score has standard deviation 1/√3.
    assert abs(sum(zs) / 3) < 3 / 3 ** 0.5


@pytest.mark.parametrize("method", ["ais", "smc"])
def test_annealing_from_another_temperature(method):
    # Spins: start from chains at half the target β; ln Z there is known exactly (Kaufman).
    report, target = estimate(ISING, method, samples=1024, steps=60, beta_start=0.5,
                              burn_in=200)
    assert abs(z_score(report["log_z"], target.exact.log_z)) < 3
    # Continuous: exp(−βU) of a Gaussian has ln Z(1) − ln Z(β₀) = (d/2)·ln β₀.
    report, _ = estimate(GAUSSIAN, method, samples=1024, steps=60, beta_start=0.5,
                         burn_in=200)
    assert "log_z" not in report and report["delta_log_z"]["from_beta"] == 0.5
    exact_delta = 1.5 * __import__("math").log(0.5)
    assert abs(z_score(report["delta_log_z"], exact_delta)) < 3


def test_flow_trained_on_smc_particles_from_the_energy_alone():
    config = EnergyRunConfig()
    config.target.spec, config.method.name = "examples/my_energy.py:double_well", "flow"
    config.flow.objective, config.flow.training_samples = "forward_kl", "smc"
    config.flow.steps, config.flow.layers, config.flow.hidden = 200, 4, 32
    config.method.samples, config.method.steps = 1000, 50
    from pathlib import Path
    config.target.spec = str(Path(__file__).resolve().parents[2] / config.target.spec)
    result, problem = run_method(config)
    report = estimate_energy_result(problem.target, result.x, result.log_w, result.energy,
                                    sample_arrays(result), result_record(result), None)
    assert abs(z_score(report["log_z"], double_well_log_z())) < 3
    # Both wells are populated with the right weights: U is even in x₀, so P(x₀ > 0) = 1/2.
    right = self_normalized((result.x[:, 0] > 0).double(), result.log_w)
    assert abs(right.z_score(0.5)) < 3.0, right   # fixed seed: |z| < 3


def test_forward_kl_without_exact_samples_suggests_smc():
    from heatbath.core.errors import UserError

    config = EnergyRunConfig()
    config.target.spec, config.method.name = "dw4", "flow"
    config.flow.objective, config.flow.steps = "forward_kl", 5
    with pytest.raises(UserError, match="training_samples=smc"):
        run_method(config)
