"""FAB (α = 2 divergence with AIS towards p²/q): the AIS weights estimate the exact normaliser
of p²/q, training covers separated modes, and the CLI runs it."""

import math

import torch

from heatbath.annealing.schedules import linear_betas
from heatbath.cli import main
from heatbath.estimators.importance import log_z_importance, self_normalized
from heatbath.flows import Flow, importance_sample, train_flow
from heatbath.flows.fab import FabAnnealing, ReplayBuffer, fab_batch
from heatbath.mcmc.continuous import HMC, HMCParams
from heatbath.mcmc.moves import MCMCMove
from heatbath.testsystems import four_modes, randomise_heads, tilted_gaussian

Z_MAX = 3.0   # |z| bound of every z-score test here (fixed seeds)


def covers_log_z(flow, target, min_ess: float):
    """Importance samples of the trained flow: log Z within Z_MAX standard errors, ESS above."""
    drawn = importance_sample(flow, target, 10_000, torch.Generator().manual_seed(1))
    assert abs(drawn.log_z().z_score(target.exact.log_z)) < Z_MAX, drawn.log_z()
    assert drawn.ess().value > min_ess, drawn.ess()
    return drawn


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
    log = train_flow(flow, target, steps=90, batch_size=128, lr=3e-3, objective="fab",
                     annealing=hmc_annealing(4, 0.3), generator=torch.Generator().manual_seed(0),
                     log_every=50)
    assert log.skipped_steps == 0 and all(math.isfinite(e) for e in log.ess)
    samples = covers_log_z(flow, target, min_ess=0.3)
    # Exact mass within radius r of a mode: its weight × P(‖N(0, σ²I₂)‖ < r) = 1 − exp(−r²/2σ²);
    # the other modes lie ≥ 6 = 12σ from the disc, so they add < exp(−72).
    radius = 2.0
    inside = 1.0 - math.exp(-radius ** 2 / (2 * target.std ** 2))
    for mean, mass in zip(target.means, target.log_mass.exp() / target.log_mass.exp().sum()):
        near = (samples.x.double() - mean).norm(dim=1) < radius
        estimate = self_normalized(near.double(), samples.log_w)
        assert abs(estimate.z_score(mass.item() * inside)) < Z_MAX, (estimate, mass)
        assert Z_MAX * estimate.stderr < 0.05, estimate     # at least as strict as ±0.05


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


def test_replay_buffer_ring_rescoring_and_priorities():
    buffer = ReplayBuffer(5)
    buffer.add(torch.arange(3.0)[:, None], torch.zeros(3), torch.zeros(3))
    buffer.add(torch.arange(3.0, 7.0)[:, None], torch.tensor([0.0, float("nan"), 0.0, 0.0]),
               torch.zeros(4))                      # the NaN row is dropped
    assert buffer.size == 5 and sorted(buffer.x[:, 0].tolist()) == [1.0, 2.0, 3.0, 5.0, 6.0]
    buffer.rescore(torch.tensor([0, 2]), torch.tensor([-1.0, 0.5]))
    assert buffer.log_w[0].item() == 1.0 and buffer.log_w[2].item() == -0.5
    assert buffer.log_q[0].item() == -1.0 and buffer.log_q[2].item() == 0.5
    # Draws are distinct rows with probability ∝ w: P(row 0 first) = e / (e + e^-0.5 + 3).
    generator = torch.Generator().manual_seed(0)
    first = torch.stack([buffer.draw(5, generator)[0] for _ in range(4000)])
    assert all(len(set(buffer.draw(5, generator).tolist())) == 5 for _ in range(10))
    p = math.e / (math.e + math.exp(-0.5) + 3)
    assert abs((first == 0).double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 4000)


def test_fab_with_a_replay_buffer_covers_modes_with_fewer_evaluations():
    target = four_modes(a=4.0, std=0.5)
    flow = Flow(2, layers=4, hidden=32, scale=4.0)
    annealing = FabAnnealing(linear_betas(4).double(), MCMCMove(HMC, HMCParams(0.3, 3), 1),
                             buffer=4096, updates=4)
    log = train_flow(flow, target, steps=180, batch_size=128, lr=3e-3, objective="fab",
                     annealing=annealing, generator=torch.Generator().manual_seed(0),
                     log_every=60)
    unbuffered_evals = 180 * 128 * 4 * 4     # 180 AIS runs of 128 × 4 steps × (1 + 3 leapfrog)
    assert log.skipped_steps == 0 and log.energy_evals < 0.5 * unbuffered_evals
    covers_log_z(flow, target, min_ess=0.3)
