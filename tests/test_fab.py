"""FAB (α = 2 divergence with AIS towards p²/q): the AIS weights estimate the exact normaliser
of p²/q, training covers separated modes, and the CLI runs it."""

import math

import torch

from heatbath.annealing.schedules import linear_betas
from heatbath.cli import main
from heatbath.estimators.importance import log_z_importance
from heatbath.flows import Flow, train_flow
from heatbath.flows.fab import FabAnnealing, fab_batch
from heatbath.mcmc.continuous import HMC, HMCParams
from heatbath.mcmc.moves import MCMCMove
from test_flows import Z_MAX, _check_log_z, four_modes, randomise_heads, tilted_gaussian


def hmc_annealing(steps: int, step_size: float) -> FabAnnealing:
    return FabAnnealing(linear_betas(steps).double(),
                        MCMCMove(HMC, HMCParams(step_size, 3), 1))


def test_ais_weights_estimate_the_normaliser_of_p_squared_over_q():
    target = tilted_gaussian()
    flow = Flow(2, layers=4, hidden=16, scale=2.0).double()
    randomise_heads(flow, seed=1, std=0.3)
    # Exact: log ∫ exp(−2U(x)) / q(x) dx by quadrature on a grid that resolves both.
    axis = torch.linspace(-10.0, 10.0, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        log_integrand = -2.0 * target.energy(grid) - flow.log_prob(grid)
    exact = (torch.logsumexp(log_integrand, 0) + 2 * math.log(axis[1] - axis[0])).item()
    x, log_w = fab_batch(flow, target, 20_000, torch.Generator().manual_seed(0),
                         hmc_annealing(8, 0.3))
    estimate = log_z_importance(log_w.numpy())
    assert x.shape == (20_000, 2) and not x.requires_grad
    assert abs(estimate.z_score(exact)) < Z_MAX, (estimate, exact)


def test_fab_training_covers_separated_modes():
    target = four_modes(a=4.0, std=0.5)
    flow = Flow(2, layers=4, hidden=32, scale=4.0)
    log = train_flow(flow, target, steps=150, batch_size=128, lr=3e-3, objective="fab",
                     annealing=hmc_annealing(4, 0.3), generator=torch.Generator().manual_seed(0),
                     log_every=50)
    assert log.skipped_steps == 0 and all(math.isfinite(e) for e in log.ess)
    samples = _check_log_z(flow, target, 10_000, seed=1, min_ess=0.3)
    weights = torch.softmax(samples.log_w.double(), 0)
    for mean, mass in zip(target.means, target.log_mass.exp() / target.log_mass.exp().sum()):
        near = (samples.x.double() - mean).norm(dim=1) < 2.0
        assert abs(weights[near].sum().item() - mass.item()) < 0.05


def test_fab_from_the_cli_and_refused_for_snf(tmp_path, capsys):
    out = tmp_path / "fab"
    assert main(["fit", "--target", "gaussian", "--method", "flow", "--out", str(out), "--quiet",
                 "--set", "flow.objective=fab", "--set", "flow.steps=5", "--set",
                 "flow.batch_size=16", "--set", "flow.fab_steps=2", "--set",
                 "method.samples=64"]) == 0
    assert (out / "model.safetensors").is_file()
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["fit", "--target", "gaussian", "--method", "snf", "--out", str(bad), "--quiet",
                 "--set", "flow.objective=fab"]) == 2
    assert "needs a tractable log q" in capsys.readouterr().err and not bad.exists()
