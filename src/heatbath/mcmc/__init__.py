"""MCMC: continuous kernels, Ising spin moves, and parallel tempering.

Kernels are pure functions over an immutable `ChainState`; they run on any log density
(`TemperedDensity` covers targets and every tempered intermediate), batched over chains.
"""

from heatbath.mcmc.adapt import adapt_step_size
from heatbath.mcmc.continuous import (BAOAB, HMC, MALA, RWM, BAOABParams, ChainState, HMCParams,
                                      Kernel, MALAParams, RWMParams, baoab_step, hmc_step,
                                      init_state, mala_step, run_chain, rwm_step)
from heatbath.mcmc.density import PathPoint, TemperedDensity, as_log_density
from heatbath.mcmc.moves import MCMCMove, Move, SpinMove
from heatbath.mcmc.spins import (IsingModel, heat_bath_sweep, ising_energy, magnetisation,
                                 metropolis_sweep, uniform_spins, wolff_update)
from heatbath.mcmc.tempering import PTResult, parallel_tempering

# `method.kernel` names, the one place they are interpreted: continuous kernels (a `Kernel`
# with init/step) and spin-lattice updates (sweep(spins, beta, J, h, generator) -> spins).
CONTINUOUS_KERNELS = {"rwm": RWM, "mala": MALA, "hmc": HMC, "baoab": BAOAB}
SPIN_UPDATES = {"metropolis": metropolis_sweep, "heatbath": heat_bath_sweep, "wolff": wolff_update}

__all__ = ["CONTINUOUS_KERNELS", "SPIN_UPDATES", "BAOAB", "HMC", "MALA", "RWM", "BAOABParams",
           "ChainState", "HMCParams", "Kernel",
           "MALAParams", "RWMParams", "baoab_step", "hmc_step", "init_state", "mala_step",
           "run_chain", "rwm_step", "adapt_step_size", "PathPoint", "TemperedDensity",
           "as_log_density", "MCMCMove", "Move", "SpinMove", "IsingModel", "heat_bath_sweep",
           "ising_energy", "magnetisation", "metropolis_sweep", "uniform_spins", "wolff_update",
           "PTResult", "parallel_tempering"]
