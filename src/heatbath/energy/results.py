"""The result every energy method returns: weighted samples relative to the target."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from heatbath.core.estimate import Estimate


@dataclass
class EnergyResult:
    """Samples x with log weights log w = −U(x) − log q(x) (up to a constant for MCMC: 0).

    log-mean-exp of log_w estimates log Z for importance-sampling methods (flow, snf, ais,
    smc). MCMC-type methods (mcmc, pt, ti) return equal weights and `traces` (chains, steps)
    of the energy for autocorrelation-aware error bars; their log Z, if any, is in `log_z`.
    """

    x: torch.Tensor
    log_w: torch.Tensor
    energy: torch.Tensor
    weighted: bool                          # True: log_w are importance weights
    log_z: Estimate | None = None
    energy_traces: torch.Tensor | None = None   # (chains, steps) of U, MCMC-type methods
    abs_magnetisation_traces: torch.Tensor | None = None   # (chains, steps) of |m|, spins
    diagnostics: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    model: torch.nn.Module | None = None       # flow / SNF / CNF: the trained sampler
    arrays: dict = field(default_factory=dict)  # more per-sample arrays for samples.npz
