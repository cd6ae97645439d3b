"""Transport samplers: exact path weights for any drift, the closed-form drift of a Gaussian path,
the losses at their optimum, training, determinism and the evaluation budget."""

import math

import numpy as np
import pytest
import torch

from heatbath.annealing import BETA_SCHEDULES, GaussianBase
from heatbath.annealing.smc import pooled_weights, replica_estimates, replica_resampler
from heatbath.estimators.importance import kish_ess, log_z_importance
from heatbath.nets import build_net
from heatbath.testsystems import GaussianAnnealing, double_well_log_z
from heatbath.transport import (AnnealedPath, Drift, TransportTraining, log_variance_loss,
                                path_log_weights, train_transport, transport)
from heatbath.transport.losses import _pinn_variance, _rademacher, pinn_loss, pinn_terms

F64 = torch.float64
LINEAR, GEOMETRIC = BETA_SCHEDULES["linear"].curve, BETA_SCHEDULES["geometric"].curve
SYSTEM = GaussianAnnealing(dim=2, base_scale=1.0, mean=1.0, scale=0.7)


def gaussian_path(steps: int, system=SYSTEM) -> AnnealedPath:
    return AnnealedPath(system.target(), GaussianBase((system.dim,), system.s0), system.curve,
                        steps)


def random_drift(dim: int, seed: int, scale: float = 1.0) -> Drift:
    """An untrained network whose output is far from zero: a drift that transports badly."""
    net = build_net("mlp", (dim,), hidden=16, depth=1, seed=seed).to(F64)
    with torch.no_grad():
        net.output.weight.mul_(30.0)
        net.output.bias.normal_(generator=torch.Generator().manual_seed(seed))
    return Drift(net, scale)


def log_z_of(walked) -> tuple[float, float]:
    found = log_z_importance(walked.log_w.numpy())
    return found.value, found.stderr


@pytest.mark.parametrize("drift_seed", [None, 1, 2])
def test_path_weights_are_exact_whatever_the_drift(drift_seed):
    path = gaussian_path(16)
    drift = None if drift_seed is None else random_drift(2, drift_seed)
    walked = transport(path, drift, n=4000, step_size=0.02, seed=7)
    value, stderr = log_z_of(walked)
    assert abs(value - SYSTEM.log_z(1.0)) < 3 * stderr


def test_path_weights_are_exact_on_the_double_well():
    from pathlib import Path

    from heatbath.targets.registry import build_target

    spec = str(Path(__file__).resolve().parents[2] / "examples/my_energy.py") + ":double_well"
    target = build_target(spec)
    path = AnnealedPath(target, GaussianBase((2,), 1.5), GEOMETRIC, 32)
    walked = transport(path, random_drift(2, 3), n=4000, step_size=0.01, seed=3)
    value, stderr = log_z_of(walked)
    assert abs(value - double_well_log_z()) < 3 * stderr


def test_resampled_populations_pool_to_the_exact_log_z():
    path = gaussian_path(16)
    replicas = 8
    walked = transport(path, random_drift(2, 4), n=8 * 500, step_size=0.02, seed=2,
                       resampler=replica_resampler(replicas, 0.5),
                       generator=torch.Generator().manual_seed(0))
    assert walked.n_resamples > 0
    log_z, _, replica_log_z = replica_estimates(walked.log_w, walked.banked, replicas)
    assert abs(log_z.z_score(SYSTEM.log_z(1.0))) < 3
    pooled = pooled_weights(walked.log_w, replica_log_z)
    assert math.isclose(float(torch.logsumexp(pooled, 0) - math.log(len(pooled))), log_z.value,
                        abs_tol=1e-12)


def test_the_closed_form_drift_makes_the_weights_constant_as_steps_shrink():
    # With the exact transport drift the continuous-time Jarzynski weight is the same for every
    # walker; the discrete weights' spread shrinks like h^½ (the Itô terms of one step are O(h)
    # with zero mean), while without the drift it stays put.
    steps = [20, 40, 80, 160]
    spread, plain = [], []
    for k in steps:
        path = gaussian_path(k)
        spread.append(float(transport(path, SYSTEM.drift, n=4000, step_size=0.5 / k,
                                      seed=1).log_w.std()))
        plain.append(float(transport(path, None, n=4000, step_size=0.5 / k, seed=1).log_w.std()))
    slope = -np.polyfit(np.log(steps), np.log(spread), 1)[0]
    assert 0.35 < slope < 0.65, spread
    assert spread[-1] < 0.08 and min(plain) > 2.0


def test_stored_walks_reweigh_exactly_as_they_were_weighed():
    path = gaussian_path(12)
    drift = random_drift(2, 5)
    walked = transport(path, drift, n=64, step_size=0.03, seed=4, keep=True)
    again = path_log_weights(path, drift, walked.trajectories, 0.03)
    assert torch.allclose(again, walked.log_w, atol=1e-10, rtol=0)


def test_pinn_residual_vanishes_at_the_exact_drift_and_rate():
    system = GaussianAnnealing(dim=3, base_scale=1.3, mean=0.8, scale=0.6)
    path = gaussian_path(20, system)
    walks = transport(path, system.drift, n=50, step_size=0.02, seed=0, keep=True).trajectories
    loss, rate = pinn_loss(path, system.drift, walks, 8, torch.Generator().manual_seed(0))
    assert float(loss.detach()) < 1e-20
    assert torch.allclose(rate, system.free_energy_rate(path.times), atol=1e-10)
    # The residual itself, ∂_tF + g, at every stored state and grid time:
    x = walks.x.reshape(-1, 3)
    t = path.times[:, None].expand(21, 50).reshape(-1)
    point = path.point_at(x, walks.energy.reshape(-1), walks.grad_energy.reshape(-1, 3))
    residual = system.free_energy_rate(t) + pinn_terms(path, system.drift, x, t, point)
    assert float(residual.detach().abs().max()) < 1e-10
    zero = (lambda y, s: torch.zeros_like(y) * y)
    plain = pinn_loss(path, zero, walks, 8, torch.Generator().manual_seed(0))[0]
    assert float(plain.detach()) > 1.0


def _hutchinson_draws(path, drift, walks, repeats: int):
    """The exact PINN loss and its gradient on fixed states, and `repeats` draws of the
    two-probe Hutchinson loss and gradient on the same states (only the probes change)."""
    x = walks.x[:, :12].reshape(-1, walks.x.shape[-1])
    t = path.times[:, None].expand(-1, 12).reshape(-1)
    point = path.point_at(x, walks.energy[:, :12].reshape(-1),
                          walks.grad_energy[:, :12].reshape(-1, x.shape[-1]))
    params = list(drift.parameters())

    def loss_and_grad(probes):
        g = pinn_terms(path, drift, x, t, point, probes)
        g = g.reshape(-1, 12) if probes is None else g.reshape(probes.shape[0], -1, 12)
        loss = _pinn_variance(g)
        grads = torch.autograd.grad(loss, params)
        return float(loss.detach()), torch.cat([d.reshape(-1) for d in grads])

    exact = loss_and_grad(None)
    generator = torch.Generator().manual_seed(5)
    draws = [loss_and_grad(_rademacher(2, x.shape, x.dtype, generator)) for _ in range(repeats)]
    return exact, draws, (x, t, point)


def test_hutchinson_pinn_loss_and_gradient_are_unbiased():
    # A drift whose Jacobian has large off-diagonal entries, so each probe's estimate of ∇·b is
    # noisy; the two-probe covariance must still average to the exact conditional variance,
    # and its gradient to the exact gradient (z-scores over independent probe draws).
    path = gaussian_path(6)
    drift = random_drift(2, 4, scale=1.0)
    walks = transport(path, drift, n=40, step_size=0.02, seed=1, keep=True).trajectories
    (loss, grad), draws, (x, t, point) = _hutchinson_draws(path, drift, walks, 400)
    losses = torch.tensor([d[0] for d in draws], dtype=F64)
    grads = torch.stack([d[1] for d in draws])
    assert abs(float(losses.mean()) - loss) < 3.5 * float(losses.std()) / 20
    z = (grads.mean(0) - grad) / (grads.std(0) / 20)
    assert float(z.abs().max()) < 4.0     # max of the parameters' |z|: a Bonferroni-style bound
    # The test can fail: one probe's sample variance carries the probes' noise on top.
    single = pinn_terms(path, drift, x, t, point, _rademacher(1, x.shape, x.dtype,
                                                              torch.Generator().manual_seed(0)))
    naive = float(single.detach().reshape(-1, 12).var(dim=1).mean())
    assert naive > loss + 10 * float(losses.std()) / 20


def test_hutchinson_pinn_loss_vanishes_at_the_exact_drift():
    # The plumbing at the optimum (this drift's Jacobian is diagonal, so each probe is exact);
    # unbiasedness where probes are noisy is the test above.
    system = GaussianAnnealing(dim=3, base_scale=1.3, mean=0.8, scale=0.6)
    path = gaussian_path(20, system)
    walks = transport(path, system.drift, n=50, step_size=0.02, seed=0, keep=True).trajectories
    loss, rate = pinn_loss(path, system.drift, walks, 8, torch.Generator().manual_seed(0),
                           divergence="hutchinson")
    assert abs(float(loss.detach())) < 1e-20
    assert torch.allclose(rate, system.free_energy_rate(path.times), atol=1e-10)
    with pytest.raises(ValueError, match="exact, hutchinson"):
        pinn_loss(path, system.drift, walks, 8, torch.Generator(), divergence="trace")


TRAINED = GaussianAnnealing(dim=2, base_scale=2.0, mean=1.5, scale=0.5, curve=GEOMETRIC)


def untrained_drift() -> Drift:
    return Drift(build_net("mlp", (2,), hidden=32, depth=2, seed=0).to(F64), 2.0)


def train(objective: str, drift: Drift, path: AnnealedPath, steps: int) -> None:
    settings = TransportTraining(objective, steps=steps, batch_size=64, updates=4, buffer=256,
                                 points=16, lr=3e-3, explore=0.5)
    train_transport(path, drift, settings, step_size=0.01,
                    generator=torch.Generator().manual_seed(1))


def test_pinn_training_raises_the_ess_from_the_energy_alone():
    path = gaussian_path(32, TRAINED)
    drift = untrained_drift()
    before = kish_ess(transport(path, drift, n=4000, step_size=0.01, seed=9).log_w.numpy())
    train("pinn", drift, path, 200)
    walked = transport(path, drift, n=4000, step_size=0.01, seed=9)
    after = kish_ess(walked.log_w.numpy())
    assert after.value > 0.35 > before.value + 3 * before.stderr, (before, after)
    value, stderr = log_z_of(walked)
    assert abs(value - TRAINED.log_z(1.0)) < 3 * stderr


def test_log_variance_training_lowers_the_loss_on_walks_it_never_saw():
    # Held-out walks of plain annealed Langevin (no drift) as the reference measure: the loss
    # there is the variance of the trained sampler's path weights along them.
    path = gaussian_path(32, TRAINED)
    reference = transport(path, None, n=512, step_size=0.01, seed=77, keep=True).trajectories
    drift = untrained_drift()
    with torch.no_grad():
        before = float(log_variance_loss(path, drift, reference, 0.01))
    train("log_variance", drift, path, 100)
    with torch.no_grad():
        after = float(log_variance_loss(path, drift, reference, 0.01))
    assert after < 0.5 * before, (before, after)


def test_a_walker_does_not_depend_on_the_others_or_on_the_seed_of_another_run():
    path = gaussian_path(8)
    drift = random_drift(2, 6)
    many = transport(path, drift, n=40, step_size=0.03, seed=11)
    few = transport(path, drift, n=5, step_size=0.03, seed=11, ids=torch.arange(10, 15))
    # Equal up to the rounding of the network's batched matrix products.
    assert torch.allclose(many.x[10:15], few.x, rtol=0, atol=1e-12)
    assert torch.allclose(many.log_w[10:15], few.log_w, rtol=0, atol=1e-9)
    other = transport(path, drift, n=40, step_size=0.03, seed=12)
    assert not torch.equal(many.x, other.x)


def test_budget_stops_training_and_every_evaluation_is_counted():
    path = gaussian_path(9)
    target = path.target
    drift = Drift(build_net("mlp", (2,), hidden=8, depth=1, seed=0).to(F64), 1.0)
    settings = TransportTraining("log_variance", steps=100, batch_size=20, updates=5, buffer=100,
                                 points=4, lr=1e-3, budget=1000, explore=0.5)
    target.reset_counters()
    log = train_transport(path, drift, settings, step_size=0.02,
                          generator=torch.Generator().manual_seed(0))
    per_simulation = (20 + 10) * (9 + 1)          # walks (with exploration) × states each
    assert log.budget_reached and log.simulations == 1000 // per_simulation
    assert log.energy_evals == target.energy_evals == target.force_evals
    assert log.energy_evals == log.simulations * per_simulation <= 1000
    assert log.gradient_steps == log.simulations * 5


def test_overflowing_walkers_drop_out_with_zero_weight():
    from heatbath.targets.registry import build_target

    # float32 walkers from a base 3·10⁹ wide: the quartic energy of the widest overflows.
    target = build_target("manywell:dim=2")
    path = AnnealedPath(target, GaussianBase((2,), 3e9, dtype=torch.float32), LINEAR, 4)
    walked = transport(path, None, n=200, step_size=1.0, seed=0, dtype=torch.float32)
    dropped = torch.isneginf(walked.log_w)
    assert 0 < int(dropped.sum()) < 200
    assert torch.isfinite(walked.log_w[~dropped]).all() and torch.isfinite(walked.x).all()
