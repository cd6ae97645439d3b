"""Normalizing flows for energy targets: sequences of bijective and stochastic layers.

A flow is a reference p₀ and a sequence of layers x ↦ (x', Δ log w) (`sequential.py`):
bijections (`layers.py`: spline couplings, standardisation; `lattice.py`: checkerboard affine
couplings with periodic convolutions) return log|det J|, stochastic layers (`stochastic.py`:
ULA / MALA steps) their path term ΔS. `Flow` and `LatticeFlow` have bijections only
(`bijective.py`), hence an exact `log_prob`; `SNF` interleaves them with MCMC steps. Every
flow draws through `sample(n, noise, target=None)` and `weighted_sample(n, noise, target)`
(noise: a torch.Generator, or a keyed `PathNoise`), whose weights have E[w] = Z exactly, so
every estimate built on them is unbiased whatever the training reached.

`FLOW_KINDS` names every kind of flow with a builder `build(dim, **options)`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from heatbath.flows.bijective import BijectiveFlow
from heatbath.flows.coupling import Flow
from heatbath.flows.lattice import CheckerboardCoupling, LatticeFlow
from heatbath.flows.layers import CouplingLayer, InStandardUnits, Standardise
from heatbath.flows.noise import PathNoise
from heatbath.flows.sequential import SequentialFlow
from heatbath.flows.snf import SNF
from heatbath.flows.stochastic import LangevinStep, MALAStep
from heatbath.flows.training import OBJECTIVES, FlowTrainingLog, train_flow
from heatbath.flows.weighted import WeightedSamples, importance_sample


@dataclass(frozen=True)
class FlowKind:
    """A kind of flow: its name, `build(dim, **options)` and one line on what it is."""

    name: str
    build: Callable[..., SequentialFlow]
    summary: str


FLOW_KINDS: dict[str, FlowKind] = {k.name: k for k in (
    FlowKind("flow", Flow, "coupling spline flow: bijections only, exact log q"),
    FlowKind("snf-langevin", partial(SNF, kernel="langevin"),
             "stochastic normalizing flow: couplings interleaved with ULA steps"),
    FlowKind("snf-mala", partial(SNF, kernel="mala"),
             "stochastic normalizing flow: couplings interleaved with MALA steps"),
)}

__all__ = ["CouplingLayer", "Standardise", "InStandardUnits", "LangevinStep", "MALAStep",
           "PathNoise", "SequentialFlow", "BijectiveFlow", "Flow", "LatticeFlow",
           "CheckerboardCoupling", "SNF", "FLOW_KINDS", "FlowKind", "OBJECTIVES",
           "FlowTrainingLog", "train_flow", "WeightedSamples", "importance_sample"]
