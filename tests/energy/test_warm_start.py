"""The spin models' warm start: maximum likelihood on heatbath's own MCMC lattices before
reverse KL — the chains' sweeps are counted, the fitted model is far better than the uniform
start at low temperature, and the weights stay exact (unbiased βF/N against Kaufman)."""

import pytest
import torch

from heatbath.energy import sample_energy
from heatbath.energy.methods.warm_start import chain_betas
from heatbath.targets.ising import Ising2D

SMALL_AR = {"autoregressive.layers": 2, "autoregressive.kernel": 5,
            "autoregressive.channels": 8, "autoregressive.steps": 2,
            "autoregressive.batch_size": 64, "autoregressive.lr": 3e-3,
            "method.samples": 3000, "method.chains": 16, "method.burn_in": 20}
WARM = {"autoregressive.warm_start": 200, "autoregressive.warm_start_samples": 2048}


def test_chain_betas():
    assert chain_betas(0.4, 0.4, 8).tolist() == [0.4]
    assert chain_betas(0.2, 0.6, 5).tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])


@pytest.fixture(scope="module")
def cold_and_warm():
    target = Ising2D(L=4, beta=0.6)      # ordered: the uniform start is far from p
    return target, [sample_energy(target, "autoregressive", settings={**SMALL_AR, **extra},
                                  seed=3) for extra in ({}, WARM)]


def test_warm_start_counts_its_sweeps_and_lifts_the_ess(cold_and_warm):
    target, (cold, warm) = cold_and_warm
    report = warm.result.diagnostics["warm_start"]
    sweeps = 20 + 2048 // 16                 # burn-in + kept sweeps of each of the 16 chains
    assert report["lattices"] == 16 * (2048 // 16)
    assert report["energy_evals"] == 16 * sweeps
    assert report["last_nll_per_site"] < report["first_nll_per_site"]
    assert warm.estimates().energy_evals == cold.estimates().energy_evals + 16 * sweeps
    assert cold.estimates().ess.value < 0.1 < 0.3 < warm.estimates().ess.value


def test_warm_started_weights_stay_exact(cold_and_warm):
    target, (_, warm) = cold_and_warm
    found = warm.estimates()
    exact_f = -target.exact.log_z / target.sites
    assert abs(found.free_energy_per_site.z_score(exact_f)) < 4, found.free_energy_per_site
    assert abs(found.energy.z_score(target.exact.energy_mean)) < 4


def test_beta_conditioned_masked_model_warm_starts_over_its_range():
    target = Ising2D(L=3, beta=0.5)
    settings = {"masked.channels": 8, "masked.depth": 1, "masked.steps": 2,
                "masked.batch_size": 32, "masked.warm_start": 60,
                "masked.warm_start_samples": 512, "method.beta_range": [0.3, 0.7],
                "method.temperatures": 4, "method.chains": 8, "method.burn_in": 10,
                "method.samples": 2000, "masked.lr": 3e-3}
    run = sample_energy(target, "masked", settings=settings, seed=1)
    report = run.result.diagnostics["warm_start"]
    assert report["energy_evals"] == 4 * 8 * (10 + 512 // (4 * 8))
    assert report["last_nll_per_site"] < report["first_nll_per_site"]
    exact_f = -target.exact.log_z / target.sites
    assert abs(run.estimates().free_energy_per_site.z_score(exact_f)) < 4
