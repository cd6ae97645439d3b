"""Data sets for generative modelling: files, 2-D toys and small image sets."""

from heatbath.datasets.dataset import DataSet, split_holdout
from heatbath.datasets.sources import builtin_descriptions, builtin_names, load_source
from heatbath.datasets.toys import toy_log_density

__all__ = ["DataSet", "split_holdout", "load_source", "builtin_names", "builtin_descriptions",
           "toy_log_density"]
