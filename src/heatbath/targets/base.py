"""The contract every energy target follows.

An energy target describes the Boltzmann density p(x) = exp(-U(x)) / Z with U in units of kT
(temperature is folded into U). Energies are batched: (N, *event_shape) -> (N,). Every call is
counted so that estimators can report accuracy per energy evaluation.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

import torch

from heatbath.spaces import FreeSpace


@dataclass(frozen=True)
class ExactValues:
    """Known exact answers for a target (None where unknown)."""

    log_z: float | None = None
    energy_mean: float | None = None       # <U> in kT (total, not per site)
    heat_capacity: float | None = None     # Var(U) (total, in k_B units)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {k: v for k, v in (("log_z", self.log_z), ("energy", self.energy_mean),
                                  ("heat_capacity", self.heat_capacity)) if v is not None}
        out.update(self.extra)
        return out


class EnergyTarget:
    """Base class: subclasses implement `_energy` and set `name`, `event_shape`, `convention`.

    Public `energy` and `force` count evaluations; `energy_evals` counts configurations whose
    energy was computed, `force_evals` configurations whose force (−∇U) was computed.
    """

    name: str = "energy"
    convention: str = ""
    discrete: bool = False   # True for spin systems (x in {-1, +1}); no forces then

    def __init__(self, event_shape: tuple[int, ...], params: dict | None = None) -> None:
        self.event_shape = tuple(event_shape)
        self.params = dict(params or {})
        self.energy_evals = 0
        self.force_evals = 0

    @property
    def dim(self) -> int:
        return math.prod(self.event_shape)

    def _energy(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) in kT for a batch (N, *event_shape) -> (N,)."""
        self.energy_evals += x.shape[0]
        return self._energy(x)

    def energy_and_force(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U(x), −∇U(x)) through autograd; counts one energy and one force evaluation each."""
        if self.discrete:
            raise TypeError(f"{self.name} is a discrete (spin) target: it has no forces")
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            u = self.energy(xg)
            (grad,) = torch.autograd.grad(u.sum(), xg)
        self.force_evals += x.shape[0]
        return u.detach(), -grad

    def log_prob_unnormalized(self, x: torch.Tensor) -> torch.Tensor:
        return -self.energy(x)

    @property
    def exact(self) -> ExactValues:
        return ExactValues()

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """Exact samples where the target can draw them; None otherwise."""
        return None

    @property
    def space(self) -> FreeSpace:
        """Where configurations live, and the measure that densities and log Z refer to.
        Translation-invariant particle energies override it (`spaces.CentredParticles`)."""
        return FreeSpace(self.event_shape)

    # -- optional hooks: override where the target knows better than the defaults -----------
    def base_hint(self) -> tuple[torch.Tensor, float] | None:
        """(centre, scale) of a Gaussian that covers the target, for AIS bases and flow
        standardisation; None: methods use exact samples' spread, else N(0, 1)."""
        return None

    def observables(self, x: torch.Tensor) -> dict:
        """Extra per-sample arrays stored in samples.npz (aldp: φ, ψ); none by default."""
        return {}

    def exact_profiles(self) -> dict | None:
        """Exact free-energy profiles {name: (values, βF)} where the target can enumerate
        them (small spin lattices); None by default."""
        return None

    def reset_counters(self) -> None:
        self.energy_evals = 0
        self.force_evals = 0

    def describe(self) -> dict:
        """Listing entry for `heatbath targets --json`."""
        return {"name": self.name, "event_shape": list(self.event_shape),
                "convention": self.convention, "params": self.params,
                "discrete": self.discrete, "space": self.space.describe(),
                "exact": self.exact.to_json()}
