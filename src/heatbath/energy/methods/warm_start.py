"""Warm start of the spin models from heatbath's own Markov chains: forward KL, then reverse KL.

Reverse KL from a uniform start is mode-seeking: at low temperature the model can settle on one
of the ordered states before it has seen the other. Maximum likelihood on lattices drawn by
heatbath's own MCMC (the method's spin kernel: heat-bath sweeps, Wolff, ...) minimises the
mass-covering KL(p_β‖q) instead, so the reverse-KL stage starts from a model that already puts
mass everywhere the chains went. The chains need not be converged for the estimates to stay
unbiased: the final weights use the model's exact log q, whatever it was trained on; a poor
warm start only costs ESS.

β-conditioned models learn from chains at method.temperatures values of β spread evenly over
method.beta_range, each lattice labelled with its chain's β. Every sweep is counted as one
energy evaluation per lattice (as everywhere for spins), so method.budget sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.core.errors import TrainingDiverged
from heatbath.core.optim import finite_step
from heatbath.energy.methods.score_training import MAX_GRAD_NORM, MAX_NONFINITE
from heatbath.energy.problem import Problem
from heatbath.mcmc import TemperedDensity


@dataclass(frozen=True)
class WarmStart:
    """What the warm start did: its pool, its sweeps and its loss (nats per site)."""

    lattices: int
    energy_evals: int
    first_nll_per_site: float
    last_nll_per_site: float

    def to_json(self) -> dict:
        return {"lattices": self.lattices, "energy_evals": self.energy_evals,
                "first_nll_per_site": self.first_nll_per_site,
                "last_nll_per_site": self.last_nll_per_site}


def chain_betas(low: float, high: float, points: int) -> torch.Tensor:
    """The β of the warm start's chains: one for a single β, else `points` evenly spaced."""
    if low == high:
        return torch.tensor([low], dtype=torch.float64)
    return torch.linspace(low, high, max(points, 2), dtype=torch.float64)


def mcmc_pool(problem: Problem, betas: torch.Tensor, size: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """About `size` lattices (at least) from method.chains chains per β, each started uniform,
    method.burn_in sweeps discarded, then every sweep kept; with their β labels."""
    m = problem.config.method
    move, energy = problem.spin_move(), problem.family_energy()
    sweeps = math.ceil(size / (len(betas) * m.chains))
    lattices, labels = [], []
    for beta in betas.tolist():
        density = TemperedDensity(energy, beta)
        x = problem.initial(m.chains)
        for sweep in range(m.burn_in + sweeps):
            x = move(density, x, problem.generator)
            if sweep >= m.burn_in:
                lattices.append(x)
                labels.append(torch.full((m.chains,), beta, dtype=torch.float64))
    return torch.cat(lattices), torch.cat(labels)


def warm_start(model, problem: Problem, betas: torch.Tensor, section) -> WarmStart:
    """section.warm_start Adam steps (constant section.lr) of −mean log q over batches of
    section.batch_size lattices drawn with replacement from the MCMC pool."""
    before = problem.energy_evals()
    lattices, labels = mcmc_pool(problem, betas, section.warm_start_samples)
    spent = problem.energy_evals() - before
    sites = math.prod(lattices.shape[1:])
    optimizer = torch.optim.Adam(model.parameters(), lr=section.lr)
    losses, skipped = [], 0
    model.train()
    for _ in range(section.warm_start):
        pick = torch.randint(len(lattices), (section.batch_size,), generator=problem.generator)
        loss = -model.log_prob(lattices[pick], labels[pick]).mean() / sites
        if finite_step(optimizer, list(model.parameters()), loss, MAX_GRAD_NORM):
            losses.append(float(loss.detach()))
        elif (skipped := skipped + 1) > MAX_NONFINITE:
            raise TrainingDiverged(f"warm start: {skipped} steps had a non-finite loss or "
                                   f"gradient; lower {problem.config.method.name}.lr")
    model.eval()
    nan = float("nan")
    return WarmStart(len(lattices), spent, losses[0] if losses else nan,
                     losses[-1] if losses else nan)
