"""Learned samplers for energies: normalizing flows and stochastic normalizing flows."""

from __future__ import annotations

from heatbath.energy.problem import Problem
from heatbath.energy.results import EnergyResult


def run_flow(problem: Problem) -> EnergyResult:
    raise NotImplementedError("flow method: pending heatbath.flows")


def run_snf(problem: Problem) -> EnergyResult:
    raise NotImplementedError("snf method: pending heatbath.flows")
