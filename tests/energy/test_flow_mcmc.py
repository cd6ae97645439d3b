"""Flow-based MCMC for lattice fields: the lattice flow under `--method flow`, independence
Metropolis–Hastings with it, and the CLI.

On the free field (φ⁴ with λ = 0) the Fourier layer alone can be the exact map x = C^{1/2} z,
so log w = ln Z for every draw (an exact test of log q); a perturbed version proposes for
independence Metropolis–Hastings chains whose moments match the exact ones (z < 4 with the
τ_int-corrected standard error) where the proposals alone are far off. The CLI fits φ⁴ with the
lattice flow by default, reports both chain blocks and refuses bad input in one line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from heatbath.energy.methods.neural_mcmc import chain_observables, independence_block
from heatbath.estimators.autocorr import integrated_time
from heatbath.flows import LatticeFlow, importance_sample
from heatbath.mcmc.independence import independence_chains
from heatbath.targets.lattice import Phi4, free_field_eigenvalues, free_field_log_z
from heatbath.testsystems import randomise_heads

F64 = torch.float64
L, M2 = 4, 1.0
N = L * L
EXACT = {"energy": N / 2, "m_squared": N / (2 * M2)}   # ⟨U⟩ = N/2, ⟨M²⟩ = N/(2m²)
TINY = ["--method", "flow", "--steps", "5", "--set", "flow.layers=2", "--set", "flow.channels=4",
        "--set", "flow.batch_size=16", "--set", "method.samples=200", "--quiet"]


def free_field_flow(noise: float = 0.0, seed: int = 0) -> LatticeFlow:
    """Two couplings (the identity while their heads are zero), then the Fourier layer at
    a_k = −½ ln 2λ_k: x = C^{1/2} z, C = (2A)⁻¹ the free field's covariance. `noise` perturbs
    the couplings' heads and the spectrum."""
    flow = LatticeFlow((L, L), layers=2, channels=4, spectral=True).double()
    generator = torch.Generator().manual_seed(seed)
    exact = -0.5 * torch.log(2 * free_field_eigenvalues(L, M2))
    with torch.no_grad():
        flow.spectral.log_scale.copy_(exact + noise * torch.randn(L, L, generator=generator,
                                                                   dtype=F64))
    if noise:
        randomise_heads(flow, seed=seed + 1, std=noise)
    return flow


def z_score(trace: np.ndarray, exact: float) -> float:
    """(mean − exact) / SE with SE² = Var·τ_int / n over (chains, steps) traces."""
    stderr = np.sqrt(trace.var() * integrated_time(trace) / trace.size)
    return float((trace.mean() - exact) / stderr)


def test_the_exact_free_field_map_has_constant_weights_equal_to_ln_z():
    target = Phi4(L=L, m2=M2, lam=0.0)
    drawn = importance_sample(free_field_flow(), target, 500, torch.Generator().manual_seed(0))
    assert torch.allclose(drawn.log_w, torch.full_like(drawn.log_w, free_field_log_z(L, M2)),
                          atol=1e-10)


def test_independence_chains_with_a_flow_proposal_leave_the_free_field_invariant():
    target = Phi4(L=L, m2=M2, lam=0.0)
    flow, generator = free_field_flow(noise=0.1), torch.Generator().manual_seed(2)
    chains, burn_in, steps = 32, 50, 600
    per_chain = 1 + burn_in + steps
    drawn = importance_sample(flow, target, chains * per_chain, generator)
    m_squared = drawn.x.flatten(1).sum(1).pow(2)
    replay = torch.Generator().set_state(generator.get_state())
    block = independence_block(drawn.x, drawn.log_w, drawn.energy, chains, burn_in,
                               {"m_squared": lambda x: x.flatten(1).sum(1).pow(2),
                                **chain_observables(target)}, generator)
    index, _ = independence_chains(drawn.log_w.reshape(chains, per_chain), replay)
    assert 0.2 < block["acceptance"] < 0.9 and block["steps"] == steps
    for name, values in (("energy", drawn.energy), ("m_squared", m_squared)):
        trace = values.reshape(chains, per_chain).gather(1, index)[:, 1 + burn_in:].numpy()
        assert block[name]["value"] == pytest.approx(trace.mean(), rel=1e-12)
        assert block["ess"][name] == pytest.approx(trace.size / block["tau_int"][name])
        assert abs(z_score(trace, EXACT[name])) < 4, (name, trace.mean(), EXACT[name])
        proposals = values.numpy()   # the flow alone is far off: the chains' test corrects it
        off = abs(proposals.mean() - EXACT[name]) / (proposals.std() / np.sqrt(len(proposals)))
        assert off > 5, (name, off)
    assert block["abs_total_magnetisation"]["value"] > 0


def test_cli_fit_estimate_sample_on_phi4(tmp_path, cli):
    out = tmp_path / "phi4"
    code, _, err = cli(["fit", "--target", "phi4:L=4,m2=-4,lam=8", "--out", out, *TINY,
                        "--set", "flow.mcmc_steps=30", "--set", "flow.latent_hmc_steps=10",
                        "--set", "method.chains=4", "--set", "method.burn_in=5",
                        "--set", "method.n_leapfrog=3"])
    assert code == 0, err
    weights = load_file(out / "model.safetensors")
    assert weights["couplings.0.net.0.weight"].shape == (4, 1, 3, 3)   # auto: the conv flow
    report = json.loads(cli(["estimate", out, "--json"])[1])
    for key in ("log_z", "free_energy_per_site", "ess", "energy"):
        assert set(report[key]) >= {"value", "stderr", "ci95"}, key
    chains, latent = report["neural_mcmc"], report["latent_hmc"]
    assert chains["proposals"] == chains["energy_evals"] == 4 * (1 + 5 + 30)
    assert latent["energy_evals"] == latent["force_evals"] == 4 * (1 + 3 * (5 + 10))
    for block in (chains, latent):
        assert 0 <= block["acceptance"] <= 1
        assert block["tau_int"]["abs_total_magnetisation"] >= 1
        assert set(block["abs_total_magnetisation"]) >= {"value", "stderr"}
    assert report["energy_evals"] >= 5 * 16 + 200 + chains["energy_evals"] + latent["energy_evals"]
    assert {"neural_mcmc", "latent_hmc"} <= set(report["conventions"])
    code, _, err = cli(["sample", out, "-n", "50", "--out", tmp_path / "more.npz"])
    assert code == 0, err
    more = np.load(tmp_path / "more.npz")
    assert more["x"].shape == (50, 4, 4)
    assert np.allclose(more["log_w"], -more["energy"] - more["log_q"])


@pytest.mark.parametrize("args,fragment", [
    (["--target", "gaussian:dim=4", "--set", "flow.net=conv"], "LxM lattice"),
    (["--target", "phi4:L=5", "--set", "flow.net=conv"], "even lattice sides"),
    (["--target", "phi4:L=4", "--set", "flow.net=conv", "--set", "flow.kernel=4"], "odd"),
    (["--target", "phi4:L=4", "--set", "flow.net=cnn"], "flow.net"),
    (["--target", "phi4:L=4", "--set", "method.chains=1", "--set", "flow.mcmc_steps=10"],
     "method.chains >= 2"),
    (["--target", "phi4:L=4", "--set", "flow.coupling=additive"], "flow.coupling"),
    (["--target", "phi4:L=4", "--set", "flow.bins=1"], "flow.bins >= 2"),
    (["--target", "gaussian:dim=4", "--set", "flow.coupling=affine"], "flow.net=conv"),
])
def test_cli_refusals(args, fragment, tmp_path, user_error):
    user_error(["fit", *TINY, "--out", tmp_path / "r", *args], fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("method,key,fragment", [
    ("snf", "flow.net=conv", "--method flow"),
    ("snf", "flow.latent_hmc_steps=10", "--method flow"),
    ("ais", "flow.mcmc_steps=10", "--method flow"),
])
def test_chains_and_the_lattice_flow_need_the_flow_method(method, key, fragment, tmp_path,
                                                         user_error):
    user_error(["fit", "--target", "phi4:L=4", "--method", method, "--set", key, "--quiet",
                "--out", tmp_path / "r"], fragment)
