"""Paths from noise (t = 0) to data (t = 1) and the conversions between parametrisations."""

from heatbath.paths.noise import GaussianNoise, StudentTNoise
from heatbath.paths.path import PREDICTIONS, Coefficients, Path, PathSample, build_path
from heatbath.paths.registry import PATHS, PathKind
from heatbath.paths.schedules import SCHEDULES, Schedule

__all__ = ["GaussianNoise", "StudentTNoise", "PREDICTIONS", "Coefficients", "Path", "PathSample",
           "build_path", "PATHS", "PathKind", "SCHEDULES", "Schedule"]
