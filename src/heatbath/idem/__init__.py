"""iDEM: a diffusion sampler trained from the energy alone (denoising energy matching with a
replay buffer), on the data half's networks, paths and reverse-SDE sampler."""

from heatbath.idem.score import clip_norm, mc_score
from heatbath.idem.train import IDEMLog, IDEMTraining, draw, train_idem

__all__ = ["clip_norm", "mc_score", "IDEMLog", "IDEMTraining", "draw", "train_idem"]
