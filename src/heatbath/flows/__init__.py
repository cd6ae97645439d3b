"""Normalizing flows for energy targets: coupling spline flows and stochastic normalizing flows.

Flows are distributions (`sample`, `log_prob`, `sample_and_log_prob`, all driven by an explicit
`torch.Generator`); both kinds also draw importance-weighted samples through
`weighted_sample(n, generator, target)` / `sample_with_log_weights`, whose weights have
E[w] = Z exactly, so every estimate built on them is unbiased whatever the training reached.
"""

from heatbath.flows.coupling import CouplingLayer, Flow, Standardise
from heatbath.flows.snf import SNF
from heatbath.flows.training import OBJECTIVES, FlowTrainingLog, train_flow
from heatbath.flows.weighted import WeightedSamples, importance_sample

__all__ = ["CouplingLayer", "Flow", "Standardise", "SNF", "OBJECTIVES", "FlowTrainingLog",
           "train_flow", "WeightedSamples", "importance_sample"]
