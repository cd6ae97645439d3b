"""Transport samplers: annealed Langevin dynamics with a learned drift and exact path weights.

The energy half's newest family on the data half's engine: a drift network from `nets` (with
its time embedding), the Euler–Maruyama Gaussian transition of `samplers`, per-sample counter-
based noise, and the annealed path and resampling of `annealing`. `simulate` walks and weighs,
`losses` holds NETS's PINN loss and CMCD's log-variance loss, `train` fits the drift on stored
walks within an evaluation budget.
"""

from heatbath.transport.drift import Drift
from heatbath.transport.losses import log_variance_loss, pinn_loss
from heatbath.transport.path import AnnealedPath, PathPoint
from heatbath.transport.simulate import (Trajectories, Transported, path_log_weights,
                                         transport)
from heatbath.transport.train import OBJECTIVES, TransportTraining, train_transport

__all__ = ["AnnealedPath", "Drift", "OBJECTIVES", "PathPoint", "Trajectories", "Transported",
           "TransportTraining", "log_variance_loss", "path_log_weights", "pinn_loss",
           "train_transport", "transport"]
