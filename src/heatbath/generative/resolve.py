"""Turn "auto" settings into concrete ones from the data, and build the path and network.

Defaults follow the literature for each path: velocity prediction + uniform t for flow
matching paths; ε prediction for VP diffusion; EDM preconditioning + log-normal noise levels +
Karras grids for σ-parametrised paths (EDM, VE, PFGM++).
"""

from __future__ import annotations

import torch

from heatbath.generative.config import RunConfig
from heatbath.generative.couplings import COUPLINGS
from heatbath.core.checks import choice
from heatbath.core.errors import UserError
from heatbath.core.runs import DTYPES
from heatbath.core.settings import check_all_bounds
from heatbath.generative.objective import TIME_SAMPLINGS
from heatbath.generative.corruptions import MASKS, check_base
from heatbath.nets import CONTEXT_NETS, NETS, build_net, fits, fitting, resolved_net
from heatbath.paths import PATHS, PREDICTIONS, build_path
from heatbath.paths.noise import SpaceGaussianNoise
from heatbath.paths.phase_path import state_shape
from heatbath.samplers import SAMPLERS
from heatbath.samplers.registry import phase_samplers
from heatbath.samplers.grids import GRIDS
from heatbath.samplers.phase_space import PHASE_GRIDS
from heatbath.spaces import CentredParticles


def resolve_config(config: RunConfig, event_shape: tuple[int, ...], kind: str,
                   has_sources: bool = False) -> RunConfig:
    """Fill every "auto" and validate every enumerated choice (in place; returns config).
    `has_sources`: the data pair each target with a source x0 (path.base=paired)."""
    check_all_bounds(config)   # TOML and --set were checked on reading; Python callers here
    p = config.path
    choice(p.name, PATHS, "path.name")
    from heatbath.generative.lattice import resolve_discrete, resolve_path_loss

    if kind == "lattice" or PATHS[p.name].discrete:   # categorical states: their own branch
        return resolve_discrete(config, kind)
    resolve_path_loss(config)   # path.loss names a lattice path's loss: refused here
    path_kind = PATHS[p.name]
    if p.prediction == "auto":
        p.prediction = path_kind.prediction
    choice(p.prediction, PREDICTIONS, "path.prediction")
    if p.time_sampling == "auto":
        p.time_sampling = path_kind.time_sampling
    choice(p.time_sampling, TIME_SAMPLINGS, "path.time_sampling")
    config.model.net = resolved_net(config.model.net, kind)
    choice(config.model.net, NETS, "model.net")
    if not fits(config.model.net, kind):
        raise UserError(f"model.net={config.model.net} does not fit {kind} samples of shape "
                        f"{tuple(event_shape)}; use model.net={' or '.join(fitting(kind))}")
    s = config.sample
    choice(s.sampler, SAMPLERS, "sample.sampler")
    if SAMPLERS[s.sampler].phase_only and path_kind.process is None:
        raise UserError(f"sample.sampler={s.sampler} integrates phase-space paths; use "
                        f"path.name=cld or psld, or another sampler")
    if s.grid == "auto":
        s.grid = PATHS[p.name].grid
    choice(s.grid, GRIDS, "sample.grid")
    choice(config.train.coupling, COUPLINGS, "train.coupling")
    if config.train.coupling == "equivariant_ot" and kind != "particles":
        raise UserError("train.coupling=equivariant_ot aligns particles by permutation and "
                        "rotation; it needs data.kind=particles (use ot for other data)")
    _check_feasible(config, kind)
    if path_kind.process is not None:
        _check_phase_space(config, kind)
    check_base(p.base, event_shape, kind, p.factor, has_sources)
    if p.base != "noise":
        _check_coupled(config)
    choice(config.train.dtype, DTYPES, "train.dtype")
    choice(config.train.lr_schedule, ("constant", "cosine"), "train.lr_schedule")
    return config


def _check_feasible(config: RunConfig, kind: str = "vector") -> None:
    """Refuse up front what would otherwise fail after training has written the run."""
    if kind == "particles" and PATHS[config.path.name].noise != "gaussian":
        raise UserError(f"path.name={config.path.name} has non-Gaussian noise, which has no "
                        f"zero-centre-of-mass form for particles; use a Gaussian path "
                        f"(linear, trig, vp, cosine, ve, edm, interpolant)")
    if config.train.coupling != "independent":
        from heatbath.generative.couplings import ot_permutation

        ot_permutation(torch.zeros(1, 1), torch.zeros(1, 1))   # UserError if POT is missing
    if config.sample.settings().stochastic and PATHS[config.path.name].noise != "gaussian":
        deterministic = ", ".join(name for name, s in SAMPLERS.items()
                                  if not s.stochastic(config.sample.settings(name=name)))
        kind = PATHS[config.path.name]
        raise UserError(f"sample.sampler={config.sample.sampler} injects Gaussian noise and "
                        f"cannot sample path.name={kind.name} ({kind.summary}); "
                        f"use {deterministic}")


def _check_phase_space(config: RunConfig, kind: str) -> None:
    """What a phase-space path (cld, psld) cannot do, refused before anything is written."""
    name = config.path.name
    if kind == "particles":
        raise UserError(f"path.name={name} works on vectors and images; particles need a "
                        f"Gaussian path (linear, vp, edm, ...)")
    wrong = [(key, value, fix) for key, value, fix in (
        ("path.prediction", config.path.prediction, "eps"),
        ("path.time_sampling", config.path.time_sampling, "uniform"),
        ("train.coupling", config.train.coupling, "independent")) if value != fix]
    if wrong:
        key, value, fix = wrong[0]
        raise UserError(f"path.name={name} trains ε by hybrid score matching on a uniform time "
                        f"grid: {key}={value} is not supported; use {key}={fix}")
    if config.sample.grid not in PHASE_GRIDS:
        raise UserError(f"path.name={name} has no scalar noise level for "
                        f"sample.grid={config.sample.grid}; use sample.grid="
                        f"{' or '.join(PHASE_GRIDS)}")
    if config.model.net == "hollow":
        raise UserError(f"path.name={name} mixes x and v in its velocity, so a hollow net's "
                        f"one-pass divergence does not hold; use model.net=mlp")
    if SAMPLERS[config.sample.sampler].phase_step is None:
        raise UserError(f"sample.sampler={config.sample.sampler} needs an ordinary path's "
                        f"denoiser; on path.name={name} use {phase_samplers()}")
    if config.sample.clip:
        raise UserError(f"sample.clip clamps a predicted x̂₁, which path.name={name} does not "
                        f"predict; set sample.clip=false")


def _check_coupled(config: RunConfig) -> None:
    """What a data-dependent base cannot be combined with, refused up front."""
    p = config.path
    if p.base == "inpaint":
        choice(p.mask, MASKS, "path.mask")
    if PATHS[p.name].process is not None or PATHS[p.name].noise != "gaussian":
        raise UserError(f"path.base={p.base} learns a residual on a Gaussian path; use "
                        f"path.name=linear, trig, vp, cosine, ve, edm or interpolant")
    if config.train.coupling != "independent":
        raise UserError(f"path.base={p.base} pairs each point with its own observation; "
                        f"train.coupling={config.train.coupling} would re-pair them: use "
                        f"train.coupling=independent")
    if config.model.net not in CONTEXT_NETS:
        raise UserError(f"path.base={p.base} feeds the observation to the network beside x; "
                        f"use model.net={' or '.join(CONTEXT_NETS)}")
    if config.sample.clip:
        raise UserError(f"path.base={p.base} models x − b(c), not x: sample.clip would clamp "
                        f"the wrong range; set sample.clip=false")


def network_shape(config: RunConfig, event_shape) -> tuple[int, ...]:
    """The network's event shape: the data's, or (x, v) stacked for a phase-space path."""
    if PATHS[config.path.name].process is not None:
        return state_shape(event_shape)
    return tuple(event_shape)


def schedule_params(config: RunConfig) -> dict:
    """The keyword arguments of the path's schedule, or of its phase-space process."""
    p = config.path
    if p.name == "cld":
        return {"mass": p.cld_mass, "gamma": p.phase_gamma, "beta": p.cld_beta}
    if p.name == "psld":
        return {"friction": p.psld_friction, "nu": p.psld_nu, "gamma": p.phase_gamma,
                "beta": p.psld_beta}
    name = PATHS[p.name].schedule
    return {"edm": {"sigma_min": p.sigma_min, "sigma_max": p.sigma_max},
            "ve": {"sigma_min": max(p.sigma_min, 1e-3), "sigma_max": p.sigma_max},
            "vp": {"beta_min": p.beta_min, "beta_max": p.beta_max},
            "interpolant": {"gamma_scale": p.gamma_scale}}.get(name, {})


def make_path(config: RunConfig, sigma_data: float, data_mean: torch.Tensor | None,
              kind: str = "vector", event_shape=None):
    """The run's path; particle data get noise on the zero-CoM subspace and no mean shift (a
    fixed mean configuration would break the model's rotation and permutation symmetry)."""
    p = config.path
    # A coupled run's path carries the residual x − b(c), centred by construction.
    centred = kind == "particles" or p.base != "noise"
    path = build_path(p.name, pfgm_dof=p.pfgm_dof, sigma_data=sigma_data,
                      data_mean=None if centred else data_mean,
                      schedule_params=schedule_params(config))
    if kind == "particles":
        path.noise = SpaceGaussianNoise(CentredParticles(*event_shape))
    return path


def net_options(config: RunConfig, event_shape, cond_kind, num_classes, cond_dim,
                num_states: int | None = None) -> dict:
    """The keyword arguments of build_net, recorded in run.json to rebuild the network: the
    model.* settings the chosen network declares (`nets.NETS[...].options`); a coupled run's
    network also reads the observation (b(c) and the missing map: twice x's channels); a
    lattice network its number of states q."""
    m = config.model
    options = {"kind": m.net, "event_shape": list(event_shape),
               "num_classes": num_classes if cond_kind == "class" else None,
               "cond_dim": cond_dim if cond_kind == "continuous" else None}
    if config.path.base != "noise":
        options["context_channels"] = 2 * int(event_shape[0])
    if num_states is not None:
        options["num_states"] = int(num_states)
    for name in NETS[m.net].options:
        if hasattr(m, name):
            value = getattr(m, name)
            options[name] = list(value) if isinstance(value, list) else value
    return options


def make_net(options: dict, seed: int, dtype: torch.dtype):
    options = dict(options)
    kind, shape = options.pop("kind"), tuple(options.pop("event_shape"))
    if options.get("mults") is not None:
        options["mults"] = tuple(options["mults"])
    return build_net(kind, shape, seed=seed, dtype=dtype, **options)
