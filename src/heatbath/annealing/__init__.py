"""Annealing: AIS and SMC along tempered paths, with β schedules and base distributions."""

from heatbath.annealing.ais import AnnealResult, ais, ais_from_base
from heatbath.annealing.bases import GaussianBase
from heatbath.annealing.schedules import (BETA_SCHEDULES, geometric_betas, linear_betas,
                                          sigmoid_betas)
from heatbath.annealing.smc import smc, systematic_resample
from heatbath.annealing.weights import ess_estimate, kish_ess_count, log_mean_exp, log_z_estimate

__all__ = ["AnnealResult", "ais", "ais_from_base", "GaussianBase", "BETA_SCHEDULES",
           "geometric_betas",
           "linear_betas", "sigmoid_betas", "smc", "systematic_resample", "ess_estimate",
           "kish_ess_count", "log_mean_exp", "log_z_estimate"]
