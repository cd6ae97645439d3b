"""iDEM's training loop: a diffusion model of exp(−U) learned from the energy alone.

The model is the data half's: a network from `nets` on a variance-exploding `Path`, seen by
samplers as a `Field` predicting the noise (ε = −σ·score), drawn by the data half's
Euler–Maruyama reverse-SDE sampler. Training alternates two things (iDEM's outer and inner
loops, Akhound-Sadegh et al. 2024):

  every `updates` steps  the current model draws `generate` samples into a replay buffer (the
                         buffer starts with draws of the widest noise, σ_max·z);
  each step              buffer points x, noise levels σ(t) with t ~ U(0, 1), x_σ = x + σ·z,
                         and the regression of the network onto the Monte-Carlo score
                         (`score.mc_score`, K evaluations per point): E‖s_θ(x_σ) − Ŝ_K(x_σ)‖²
                         with s_θ = −ε_θ/σ, iDEM's unit weighting over noise levels.

The regression target does not depend on where x came from, so the buffer only decides where
the model is taught; nothing is biased by it. `budget` stops training before a step would take
the evaluations past it. The network ends with its exponential moving average, as the data half
samples from its EMA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.core.errors import TrainingDiverged
from heatbath.core.optim import BudgetCosine, finite_step
from heatbath.generative.field import Field
from heatbath.idem.score import EnergyAndForce, mc_score
from heatbath.nets.ema import EMA
from heatbath.paths.path import PathSample

MAX_GRAD_NORM = 10.0
MAX_NONFINITE = 20


@dataclass(frozen=True)
class IDEMTraining:
    steps: int
    batch_size: int
    mc_samples: int          # K draws per regression target
    lr: float
    max_score_norm: float    # inf: no clipping
    generate: int            # model samples added to the buffer per round
    updates: int             # gradient steps per round
    buffer: int              # buffer capacity (the latest samples)
    nfe: int                 # Euler–Maruyama steps of every draw
    budget: int = 0          # energy evaluations training may spend (0: no limit)


@dataclass
class IDEMLog:
    metrics: list
    gradient_steps: int
    rounds: int
    evals: int
    budget_reached: bool
    skipped_steps: int


def draw(field: Field, n: int, event_shape, nfe: int, seed: int,
         dtype: torch.dtype) -> torch.Tensor:
    """n samples of the model by the data half's reverse-SDE sampler (Euler–Maruyama)."""
    from heatbath.samplers import SamplerSettings, draw_samples

    settings = SamplerSettings(name="euler-maruyama", nfe=nfe)
    with torch.no_grad():
        return draw_samples(field, n, event_shape, settings, seed=seed, dtype=dtype).x


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(2 ** 62, (1,), generator=generator))


def train_idem(field: Field, space, energy_and_force: EnergyAndForce, training: IDEMTraining,
               generator: torch.Generator, log_every: int | None = None) -> IDEMLog:
    """Train `field.net` in place (see the module doc); `space` gives the noise's subspace."""
    net, c = field.net, training
    dtype = next(net.parameters()).dtype
    noise = lambda shape: space.project(torch.randn(shape, generator=generator, dtype=dtype))
    sigma_max = float(field.path.schedule.sigma(torch.zeros((), dtype=torch.float64)))
    buffer = sigma_max * noise((c.generate, *space.event_shape))
    optimizer = torch.optim.Adam(net.parameters(), lr=c.lr)
    schedule = BudgetCosine(optimizer, c.steps, c.budget)
    ema = EMA(net)
    per_step = c.batch_size * c.mc_samples
    affordable = min(c.steps, c.budget // per_step) if c.budget else c.steps
    log_every = log_every or max(1, affordable // 100)   # ~100 points whichever stops it
    metrics, window, evals, skipped, rounds, step = [], [], 0, 0, 0, 0
    budget_reached = False
    net.train()
    for step in range(1, c.steps + 1):
        if c.budget and evals + per_step > c.budget:
            budget_reached, step = True, step - 1
            break
        if step > 1 and (step - 1) % c.updates == 0:
            buffer = _refilled(field, buffer, c, space.event_shape, generator)
            rounds += 1
        loss = _batch_loss(field, buffer, c, energy_and_force, noise, generator)
        evals += per_step
        if finite_step(optimizer, list(net.parameters()), loss, MAX_GRAD_NORM):
            schedule.step(evals)
            ema.update(net)
            window.append(float(loss.detach()))
        else:
            skipped += 1
            if skipped > MAX_NONFINITE:
                raise TrainingDiverged(f"idem training: {skipped} steps had a non-finite loss "
                                       f"or gradient (last at step {step}); lower idem.lr")
        if step % log_every == 0 or step == c.steps:
            metrics.append({"step": step, "idem_loss": sum(window) / len(window)
                            if window else math.nan, "energy_evals": evals})
            window = []
    ema.copy_to(net)
    net.eval()
    return IDEMLog(metrics, step, rounds, evals, budget_reached, skipped)


def _refilled(field: Field, buffer: torch.Tensor, c: IDEMTraining, event_shape,
              generator: torch.Generator) -> torch.Tensor:
    """The buffer with `generate` fresh draws of the current model, the latest `buffer` kept."""
    field.net.eval()
    fresh = draw(field, c.generate, event_shape, c.nfe, _seed(generator), buffer.dtype)
    field.net.train()
    return torch.cat([buffer, fresh])[-c.buffer:]


def _batch_loss(field: Field, buffer: torch.Tensor, c: IDEMTraining,
                energy_and_force: EnergyAndForce, noise, generator) -> torch.Tensor:
    """One step's loss: buffer points noised at σ(t), t ~ U(0, 1), regressed onto their
    Monte-Carlo scores (batch_size · mc_samples evaluations)."""
    x = buffer[torch.randint(len(buffer), (c.batch_size,), generator=generator)]
    t = torch.rand(c.batch_size, generator=generator, dtype=torch.float64)
    sigma = field.path.schedule.sigma(t).to(x.dtype)
    x_t = x + sigma.reshape(-1, *([1] * (x.dim() - 1))) * noise(tuple(x.shape))
    score = mc_score(energy_and_force, x_t, sigma, c.mc_samples, noise, c.max_score_norm)
    return _regression(field.net, field.path, t.to(x.dtype), x_t, score, sigma)


def _regression(net, path, t, x_t, score, sigma) -> torch.Tensor:
    """Mean ‖s_θ − Ŝ‖² per coordinate, through the ε parametrisation: target ε = −σ·Ŝ (x₁ its
    Tweedie denoised point x_σ + σ²·Ŝ, which the ε target does not use), the squared ε error
    divided by σ² — iDEM's unit weighting over noise levels (its DW4 and LJ13 runs). Denoising
    score matching's ‖ε_θ − ε‖² puts the weight where the Monte-Carlo estimate is noisiest, at
    large σ: on DW4 (8000 steps, K = 100) its samples ended at energy W2 3.7 against 1.4."""
    from heatbath.generative.objective import regression_loss

    spread = sigma.reshape(-1, *([1] * (x_t.dim() - 1)))
    eps = -spread * score
    sample = PathSample(t=t, x_t=x_t, x1=x_t - spread * eps, z=eps, velocity=torch.zeros_like(x_t))
    return (regression_loss(net, path, "eps", sample) / sigma ** 2).mean()
