"""The energy half from Python: a target object in, weighted samples and typed estimates out.

    from heatbath.energy import sample_energy
    from heatbath.targets import build_target
    run = sample_energy(build_target("gmm40"), "ais", settings={"method.steps": 200})
    run.estimates().log_z            # Estimate(value, stderr, ci95, n, ...)

`target` is any `heatbath.targets.EnergyTarget` (a built-in, or your own subclass); `settings`
takes the same `section.key` names as `heatbath fit --set` and is checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.core.estimate import Estimate
from heatbath.core.settings import set_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import EnergyEstimates, estimate_energy
from heatbath.energy.results import EnergyResult


@dataclass
class EnergyRun:
    """One method's output on one target: samples relative to exp(−U), with their weights."""

    target: object
    config: EnergyRunConfig
    result: EnergyResult

    @property
    def x(self) -> torch.Tensor:
        return self.result.x

    @property
    def log_w(self) -> torch.Tensor:
        """log w = −U(x) − log q(x) for weighted methods; zeros (equal weights) for chains."""
        return self.result.log_w

    @property
    def energy(self) -> torch.Tensor:
        return self.result.energy

    @property
    def weighted(self) -> bool:
        return self.result.weighted

    @property
    def model(self):
        """The trained flow / SNF (learned methods), else None."""
        return self.result.model

    def estimates(self, n: int | None = None, seed: int = 0) -> EnergyEstimates:
        """log Z (where defined), ESS, ⟨U⟩, … with standard errors, as `estimate` reports."""
        from heatbath.energy.fit import result_record, sample_arrays

        return estimate_energy(self.target, self.x, self.log_w, self.energy,
                               sample_arrays(self.result), result_record(self.result), n, seed)

    def observable(self, function, name: str = "f", seed: int = 0) -> Estimate:
        """E_p[f(x)] for f: (N, *event_shape) -> (N,), with its error bar."""
        from heatbath.energy.fit import sample_arrays
        from heatbath.energy.observables import observable_estimate

        return observable_estimate(name, function, sample_arrays(self.result), self.weighted,
                                   seed)


def sample_energy(target, method: str = "ais", *, settings: dict | None = None,
                  seed: int = 0) -> EnergyRun:
    """Run `method` (see `heatbath.energy.methods.METHODS`) on `target`."""
    from heatbath.energy.fit import run_method

    config = EnergyRunConfig()
    # The target object itself is used; the spec only names it in the config (nothing is
    # rebuilt from it, unlike a run directory's).
    config.target.spec = getattr(target, "name", "python")
    set_value(config, "method.name", method)
    set_value(config, "method.seed", seed)
    for key, value in (settings or {}).items():
        set_value(config, key, value)
    result, _ = run_method(config, target)
    return EnergyRun(target, config, result)
