"""The path registry: every `path.name` is interpreted here and nowhere else.

A `PathKind` names its schedule and noise, and the defaults the literature pairs with it: the
network's prediction target, how training draws t, and the sampler grid. `build_path` and the
data wing's config resolution both read these records.
"""

from __future__ import annotations

from dataclasses import dataclass

from heatbath.paths.phase_space import PROCESSES, SAMPLING_GRID
from heatbath.paths.schedules import SCHEDULES


@dataclass(frozen=True)
class PathKind:
    name: str
    schedule: str | None          # key of paths.schedules.SCHEDULES (None: a phase process)
    noise: str                    # "gaussian" | "pfgm" (Student-t radial noise of PFGM++)
    prediction: str               # default network output
    time_sampling: str            # default training-time density: "uniform" | "lognormal"
    grid: str                     # default sampler grid
    summary: str
    process: str | None = None    # key of paths.phase_space.PROCESSES: state (x, v)
    discrete: bool = False        # categorical states (paths.masked, paths.uniform): `noise` is
                                  # the corruption (absorbing | uniform), no schedule

    @property
    def sigma_parametrised(self) -> bool:
        """EDM-style paths, trained on log-normal noise levels with EDM preconditioning."""
        return self.time_sampling == "lognormal"


PATHS: dict[str, PathKind] = {p.name: p for p in (
    PathKind("linear", "linear", "gaussian", "velocity", "uniform", "uniform",
             "conditional OT / rectified flow, x_t = t·x₁ + (1 − t)·z"),
    PathKind("trig", "trig", "gaussian", "velocity", "uniform", "uniform",
             "x_t = sin(πt/2)·x₁ + cos(πt/2)·z"),
    PathKind("vp", "vp", "gaussian", "eps", "uniform", "uniform", "DDPM's linear β"),
    PathKind("cosine", "cosine", "gaussian", "eps", "uniform", "uniform",
             "improved-DDPM cosine ᾱ"),
    PathKind("ve", "ve", "gaussian", "edm", "lognormal", "karras", "variance exploding"),
    PathKind("edm", "edm", "gaussian", "edm", "lognormal", "karras",
             "EDM σ(t), preconditioned denoiser"),
    PathKind("interpolant", "interpolant", "gaussian", "velocity", "uniform", "uniform",
             "stochastic interpolant, γ(t)² = a·t(1 − t)"),
    PathKind("pfgm", "edm", "pfgm", "edm", "lognormal", "karras",
             "PFGM++: EDM σ with Student-t noise of D = path.pfgm_dof extra dimensions"),
    PathKind("cld", None, "gaussian", "eps", "uniform", SAMPLING_GRID,
             "critically-damped Langevin in phase space (x, v), hybrid score matching",
             process="cld"),
    PathKind("psld", None, "gaussian", "eps", "uniform", SAMPLING_GRID,
             "phase-space Langevin: noise in x and v (Pandey & Mandt 2023)", process="psld"),
    PathKind("masked", None, "absorbing", "logits", "uniform", "uniform",
             "absorbing-state masked diffusion / any-order autoregression on categorical "
             "lattices (data.kind=lattice)", discrete=True),
    PathKind("uniform", None, "uniform", "logits", "uniform", "uniform",
             "discrete flow matching, uniform-source mixture path κ(t) = t, CTMC sampler, on "
             "categorical lattices (data.kind=lattice)", discrete=True),
)}

assert all(kind.discrete or (kind.schedule in SCHEDULES) != (kind.process in PROCESSES)
           for kind in PATHS.values())
