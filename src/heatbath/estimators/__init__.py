"""Estimators that turn samples into numbers with standard errors (every one an `Estimate`).

Importance sampling: `log_z_importance`, `kish_ess` (a fraction of n), `forward_ess`,
`self_normalized`, `weight_tail_diagnostic`. Free energies: `exp_estimator`, `bar`, `mbar`,
`thermodynamic_integration`. Markov chains: `integrated_time`, `mcmc_ess`,
`chain_mean_estimate`. Two-sample distances: `energy_distance`, `sliced_wasserstein`,
`distance_with_floor`. Particle configurations (N, P, d): `energy_w2`, `distance_w2`,
`equivariant_emd`. Point clouds: `chamfer`, `emd`, `mmd`, `coverage`, `one_nna`, `with_floor`.
Resampling: `bootstrap`.
"""

from heatbath.estimators.autocorr import chain_mean_estimate, integrated_time, mcmc_ess
from heatbath.estimators.bootstrap import bootstrap
from heatbath.estimators.clouds import chamfer, coverage, emd, mmd, one_nna, with_floor
from heatbath.estimators.distances import distance_with_floor, energy_distance, sliced_wasserstein
from heatbath.estimators.free_energy import bar, exp_estimator
from heatbath.estimators.importance import (forward_ess, kish_ess, log_z_importance,
                                            self_normalized)
from heatbath.estimators.integration import thermodynamic_integration
from heatbath.estimators.mbar import MBARResult, mbar
from heatbath.estimators.particles import distance_w2, energy_w2, equivariant_emd
from heatbath.estimators.tail import TailDiagnostic, weight_tail_diagnostic

__all__ = ["chain_mean_estimate", "integrated_time", "mcmc_ess", "bootstrap",
           "distance_with_floor", "energy_distance", "sliced_wasserstein", "bar",
           "exp_estimator", "forward_ess", "kish_ess", "log_z_importance", "self_normalized",
           "thermodynamic_integration", "MBARResult", "mbar", "TailDiagnostic",
           "weight_tail_diagnostic", "chamfer", "coverage", "emd", "mmd", "one_nna",
           "with_floor", "distance_w2", "energy_w2", "equivariant_emd"]
