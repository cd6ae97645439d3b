"""`Estimate`: every stochastic number heatbath reports carries its standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate with its standard error and a 95 % confidence interval.

    `ci95` defaults to the normal interval value ± 1.96·stderr; estimators with a better interval
    (bootstrap percentiles, an interval clipped to [0, 1]) pass their own.
    """

    value: float
    stderr: float
    n: int
    ci95: tuple[float, float] | None = None
    energy_evals: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ci95 is None:
            half = 1.959963984540054 * self.stderr
            object.__setattr__(self, "ci95", (self.value - half, self.value + half))

    def z_score(self, truth: float) -> float:
        """(value − truth)/stderr; how many standard errors the estimate is off."""
        if self.stderr == 0:
            return 0.0 if self.value == truth else math.inf
        return (self.value - truth) / self.stderr

    def to_json(self) -> dict:
        """The JSON form used by `heatbath estimate --json`: {"value", "stderr", "ci95"}."""
        out = {"value": float(self.value), "stderr": float(self.stderr),
               "ci95": [float(self.ci95[0]), float(self.ci95[1])]}
        out.update({k: v for k, v in self.extra.items()})
        return out


def mean_estimate(samples, energy_evals: int | None = None) -> Estimate:
    """Sample mean of i.i.d. values with its standard error (ddof=1)."""
    import numpy as np

    values = np.asarray(samples, dtype=np.float64).ravel()
    n = values.size
    stderr = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return Estimate(float(values.mean()), stderr, n, energy_evals=energy_evals)
