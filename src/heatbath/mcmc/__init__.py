"""MCMC: continuous kernels, Ising and Potts spin moves, and parallel tempering.

Kernels are pure functions over an immutable `ChainState`; they run on any log density
(`TemperedDensity` covers targets and every tempered intermediate), batched over chains.
"""

from heatbath.mcmc.adapt import adapt_step_size
from heatbath.mcmc.continuous import (BAOAB, HMC, MALA, RWM, BAOABParams, ChainState, HMCParams,
                                      Kernel, MALAParams, RWMParams, baoab_step, hmc_step,
                                      init_state, mala_step, run_chain, rwm_step)
from heatbath.mcmc.density import PathPoint, TemperedDensity, as_log_density
from heatbath.mcmc.moves import MCMCMove, Move, SpinMove
from heatbath.mcmc.potts import PottsModel, potts_energy, potts_updates, uniform_potts
from heatbath.mcmc.spins import (SPIN_UPDATES, IsingModel, heat_bath_sweep, ising_energy,
                                 magnetisation, metropolis_sweep, uniform_spins, wolff_update)
from heatbath.mcmc.tempering import PTResult, parallel_tempering

# `method.kernel` names, the one place they are interpreted: continuous kernels (a `Kernel`
# with init/step) and spin-lattice updates (SPIN_UPDATES, defined with the Ising moves:
# sweep(spins, beta, J, h, generator) -> spins; Potts binds q in `mcmc.potts.potts_updates`).
CONTINUOUS_KERNELS = {"rwm": RWM, "mala": MALA, "hmc": HMC, "baoab": BAOAB}

__all__ = ["CONTINUOUS_KERNELS", "SPIN_UPDATES", "BAOAB", "HMC", "MALA", "RWM", "BAOABParams",
           "ChainState", "HMCParams", "Kernel",
           "MALAParams", "RWMParams", "baoab_step", "hmc_step", "init_state", "mala_step",
           "run_chain", "rwm_step", "adapt_step_size", "PathPoint", "TemperedDensity",
           "as_log_density", "MCMCMove", "Move", "SpinMove", "IsingModel", "heat_bath_sweep",
           "ising_energy", "magnetisation", "metropolis_sweep", "uniform_spins", "wolff_update",
           "PTResult", "parallel_tempering", "PottsModel", "potts_energy", "potts_updates",
           "uniform_potts"]
