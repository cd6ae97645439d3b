"""heatbath: generative modelling and sampling grounded in nonequilibrium thermodynamics.

Two halves share one engine:
  * from data: learn to reverse a noising process (diffusion, flow matching, interpolants, PFGM++);
  * from an energy: learn to sample exp(-U)/Z and return unbiased estimates with error bars.
"""

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate

__all__ = ["UserError", "Estimate"]
__version__ = "0.1.0"
