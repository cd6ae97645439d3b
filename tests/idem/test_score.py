"""iDEM's Monte-Carlo score estimate against the closed-form score of a noised Gaussian, its
norm clip, and the training loop's evaluation accounting."""

import math

import pytest
import torch

from heatbath.generative.field import Field
from heatbath.idem import IDEMTraining, clip_norm, mc_score, train_idem
from heatbath.nets import build_net
from heatbath.paths.noise import SpaceGaussianNoise
from heatbath.paths.path import Path
from heatbath.paths.schedules import VESchedule
from heatbath.spaces import CentredParticles, FreeSpace

F64 = torch.float64


def gaussian_energy(width: float, counter: list | None = None):
    """U = |x|²/(2 width²) and its force; counts the configurations it evaluates."""
    def evaluate(x):
        if counter is not None:
            counter.append(len(x))
        flat = x.flatten(1)
        return 0.5 * flat.pow(2).sum(1) / width ** 2, -x / width ** 2
    return evaluate


@pytest.mark.parametrize("space", [FreeSpace((3,)), CentredParticles(4, 2)])
def test_estimate_converges_to_the_noised_gaussian_score(space):
    """p = N(0, s²) on the space, noised by σ: ∇log p_σ(x) = −x/(s² + σ²). 30 independent
    estimates at K = 4000 give a mean whose z-score against that is < 4 per coordinate (the
    O(1/K) bias of the self-normalised ratio is far below the standard error here)."""
    generator = torch.Generator().manual_seed(0)
    noise = lambda shape: space.project(torch.randn(shape, generator=generator, dtype=F64))
    width = 0.8
    x = noise((5, *space.event_shape)) * 1.5
    sigma = torch.tensor([0.05, 0.3, 1.0, 2.0, 4.0], dtype=F64)
    runs = torch.stack([mc_score(gaussian_energy(width), x, sigma, 4000, noise)
                        for _ in range(30)])
    exact = -x / (width ** 2 + sigma.reshape(-1, *([1] * (x.dim() - 1))) ** 2)
    mean, stderr = runs.mean(0), runs.std(0) / math.sqrt(len(runs))
    z = ((mean - exact) / stderr.clamp_min(1e-12)).abs()
    assert z.max() < 4, z
    if space.reduced:   # the estimate stays on the zero-CoM subspace
        assert runs.reshape(-1, *space.event_shape).mean(dim=1).abs().max() < 1e-12


def test_non_finite_draws_get_no_weight_and_a_row_without_any_gets_zero():
    def energy(x):
        u = torch.where(x[:, 0] > 0, torch.full_like(x[:, 0], math.inf), x[:, 0] * 0)
        return u, torch.ones_like(x)
    noise = lambda shape: torch.randn(shape, generator=torch.Generator().manual_seed(1),
                                      dtype=F64)
    x = torch.tensor([[-100.0, 0.0], [100.0, 0.0]], dtype=F64)
    score = mc_score(energy, x, torch.tensor([1.0, 1.0], dtype=F64), 16, noise)
    assert torch.equal(score[0], torch.ones(2, dtype=F64))   # every draw finite: mean force 1
    assert torch.equal(score[1], torch.zeros(2, dtype=F64))   # no finite draw: no information


def test_clip_shortens_long_rows_only_and_keeps_their_direction():
    v = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=F64)
    clipped = clip_norm(v, 1.0)
    assert torch.allclose(clipped[0], torch.tensor([0.6, 0.8], dtype=F64))
    assert torch.equal(clipped[1], v[1])
    assert torch.equal(clip_norm(v, math.inf), v)


def test_training_spends_batch_times_k_evaluations_per_step_and_stops_at_the_budget():
    space = FreeSpace((2,))
    net = build_net("mlp", (2,), hidden=8, depth=1, seed=0)
    field = Field(net, Path(VESchedule(0.01, 3.0), SpaceGaussianNoise(space)), "eps")
    counted = []
    plan = IDEMTraining(steps=50, batch_size=8, mc_samples=5, lr=1e-3, max_score_norm=20.0,
                        generate=16, updates=3, buffer=40, nfe=4, budget=333)
    log = train_idem(field, space, gaussian_energy(1.0, counted), plan,
                     torch.Generator().manual_seed(0))
    assert log.budget_reached and log.gradient_steps == 333 // 40   # 8 steps of 40
    assert log.evals == sum(counted) == 8 * 40 and all(n == 40 for n in counted)
    assert log.rounds == (log.gradient_steps - 1) // 3   # buffer refills between steps
    # the log follows the budget, not the 50 steps it never reached
    assert log.metrics and log.metrics[-1]["energy_evals"] == log.evals
