"""What every method needs from a target: its tempered family, a base, and MCMC moves.

Continuous targets anneal along log π_β = (1 − β) log p0 + β(−U) from a Gaussian base p0.
Spin lattices anneal in inverse temperature, exp(−β_t H) with β_t from 0 (uniform states,
Z = q^N with q the lattice's `num_states`) to the target's β, using the target's own model
(J, h) and moves (`SpinLattice.update`); one spin sweep of one
configuration is counted as one energy evaluation (it touches every site's local energy once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.annealing import GaussianBase
from heatbath.energy.config import EnergyRunConfig, resolved_kernel
from heatbath.mcmc import (CONTINUOUS_KERNELS, BAOABParams, HMCParams, IsingModel,
                           MALAParams, MCMCMove, RWMParams, SpinMove, TemperedDensity,
                           adapt_step_size)
from heatbath.mcmc.potts import PottsModel
from heatbath.targets.base import EnergyTarget
from heatbath.targets.spin_lattice import SpinLattice



@dataclass
class Problem:
    target: EnergyTarget
    config: EnergyRunConfig
    dtype: torch.dtype
    generator: torch.Generator
    original: EnergyTarget | None = None   # the user's target when `target` is its chart view
    _spin_model: IsingModel | PottsModel | None = None   # one instance: its count adds up
    step_size: float | None = None   # continuous kernels: set once by `prepare_step_size`

    @property
    def user_target(self) -> EnergyTarget:
        """The target as the user gave it (configurations in its own event shape)."""
        return self.target if self.original is None else self.original

    @property
    def discrete(self) -> bool:
        """A spin lattice (the only discrete targets: `validate` refuses other discrete ones)."""
        return isinstance(self.target, SpinLattice)

    @property
    def kernel_name(self) -> str:
        return resolved_kernel(self.config, self.discrete)

    # -- the tempered family ---------------------------------------------------------------
    def spin_model(self) -> IsingModel | PottsModel:
        """H without β; it counts its own evaluations and sweeps (see the module doc)."""
        if self._spin_model is None:
            self._spin_model = self.target.model()
        return self._spin_model

    def family_energy(self):
        """The energy that β multiplies: U for continuous targets, H (no β) for spins."""
        return self.spin_model() if self.discrete else self.target

    def beta_end(self) -> float:
        return float(self.target.beta) if self.discrete else 1.0

    def log_z_start(self) -> float:
        """ln Z at β = 0: num_states^N for a lattice, the normalised base's 0 otherwise."""
        if not self.discrete:
            return 0.0
        return self.target.sites * math.log(self.target.num_states)

    def exact_log_z_at(self, beta: float) -> float | None:
        """ln Z of exp(−β·H) where the target knows it (spin lattices: their exact solutions)."""
        return self.target.exact_log_z_at(beta) if self.discrete else None

    def base(self) -> GaussianBase | None:
        if self.discrete:
            return None
        centre = 0.0
        hint = self.target.base_hint()
        if hint is not None:
            centre = hint[0].to(self.dtype)
        return GaussianBase(self.target.event_shape, scale=self.base_scale(), mean=centre,
                            dtype=self.dtype)

    def base_scale(self) -> float:
        """method.base_scale, else the target's own hint, else the spread of exact samples."""
        if self.config.method.base_scale > 0:
            return self.config.method.base_scale
        hint = self.target.base_hint()
        if hint is not None:
            return float(hint[1])
        probe = self.target.sample_exact(512, torch.Generator().manual_seed(12345))
        if probe is None:
            return 1.0
        # Cover the whole target: its largest per-coordinate spread about the origin.
        return float(probe.to(torch.float64).flatten(1).pow(2).mean(0).sqrt().max())

    def initial(self, n: int) -> torch.Tensor:
        """Exact samples at β = 0 of the family."""
        if self.discrete:
            return self.target.uniform(n, self.generator, self.dtype)
        return self.base().sample(n, self.generator).to(self.dtype)

    # -- moves ---------------------------------------------------------------------------
    def spin_move(self) -> SpinMove:
        sweep = self.target.update(self.kernel_name)   # UserError where it is not exact
        return SpinMove(self.spin_model(), sweep, self.config.method.moves_per_step)

    def continuous_params(self, step_size: float):
        m = self.config.method
        return {"rwm": RWMParams(step_size), "mala": MALAParams(step_size),
                "hmc": HMCParams(step_size, m.n_leapfrog),
                "baoab": BAOABParams(step_size)}[self.kernel_name]

    def tuned_step_size(self) -> float:
        """The configured step size, or one tuned by dual averaging on the target itself."""
        m = self.config.method
        if m.step_size > 0:
            return m.step_size
        kernel = CONTINUOUS_KERNELS[self.kernel_name]
        scale = self.base_scale()
        guess = 0.1 * scale
        if not kernel.adjusted:    # BAOAB has no acceptance to tune on: a conservative dt
            return 0.05 * scale
        density = TemperedDensity(self.target, 1.0)
        state = kernel.init(density, self.initial(min(64, m.chains * 4)), self.generator)
        _, params = adapt_step_size(kernel, density, state, self.generator,
                                    self.continuous_params(guess), max(m.burn_in, 50))
        return float(params.step_size)

    def prepare_step_size(self) -> None:
        if not self.discrete and self.step_size is None:
            self.step_size = self.tuned_step_size()

    def move(self):
        """The transition used by PT, AIS and SMC at every β."""
        if self.discrete:
            return self.spin_move()
        self.prepare_step_size()
        kernel = CONTINUOUS_KERNELS[self.kernel_name]
        return MCMCMove(kernel, self.continuous_params(self.step_size),
                        self.config.method.moves_per_step)

    def energy_evals(self) -> int:
        spins = 0 if self._spin_model is None else self._spin_model.evaluations
        return self.target.energy_evals + spins
