"""The energy wing: learn or run a sampler for exp(−U)/Z, then estimate with error bars.

config (settings), methods/ (the METHODS registry), problem (what a method needs from a
target), fit / sample / estimate / versus (what the CLI calls), run (reading a run directory),
api (`sample_energy`: the same from Python, on any target object).
"""

from heatbath.energy.api import EnergyRun, sample_energy
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.estimate import EnergyEstimates
from heatbath.energy.methods import METHODS

__all__ = ["EnergyRun", "sample_energy", "EnergyRunConfig", "EnergyEstimates", "METHODS"]
