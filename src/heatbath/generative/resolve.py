"""Turn "auto" settings into concrete ones from the data, and build the path and network.

Defaults follow the literature for each path: velocity prediction + uniform t for flow
matching paths; ε prediction for VP diffusion; EDM preconditioning + log-normal noise levels +
Karras grids for σ-parametrised paths (EDM, VE, PFGM++).
"""

from __future__ import annotations

import torch

from heatbath.generative.config import RunConfig
from heatbath.core.errors import UserError
from heatbath.generative.objective import TIME_SAMPLINGS
from heatbath.nets import build_net
from heatbath.paths import PREDICTIONS, SCHEDULES, build_path
from heatbath.samplers import SAMPLERS
from heatbath.samplers.grids import GRIDS, default_grid

PATH_NAMES = tuple(SCHEDULES) + ("pfgm",)
SIGMA_PATHS = ("edm", "ve", "pfgm")
DEFAULT_PREDICTION = {"linear": "velocity", "trig": "velocity", "interpolant": "velocity",
                      "vp": "eps", "cosine": "eps", "edm": "edm", "ve": "edm", "pfgm": "edm"}


def _check_choice(value: str, choices, key: str) -> None:
    if value not in choices:
        raise UserError(f"unknown {key} '{value}'; choose one of {', '.join(choices)}")


def resolve_config(config: RunConfig, event_shape: tuple[int, ...], kind: str) -> RunConfig:
    """Fill every "auto" and validate every enumerated choice (in place; returns config)."""
    p = config.path
    _check_choice(p.name, PATH_NAMES, "path.name")
    if p.prediction == "auto":
        p.prediction = DEFAULT_PREDICTION[p.name]
    _check_choice(p.prediction, PREDICTIONS, "path.prediction")
    if p.time_sampling == "auto":
        p.time_sampling = "lognormal" if p.name in SIGMA_PATHS else "uniform"
    _check_choice(p.time_sampling, TIME_SAMPLINGS, "path.time_sampling")
    if config.model.net == "auto":
        config.model.net = "unet" if kind == "image" else "mlp"
    _check_choice(config.model.net, ("mlp", "hollow", "unet"), "model.net")
    if config.model.net == "unet" and kind != "image":
        raise UserError(f"model.net=unet takes images (C, H, W), these samples have shape "
                        f"{tuple(event_shape)}; use model.net=mlp or hollow")  # vector nets flatten images
    s = config.sample
    _check_choice(s.sampler, SAMPLERS, "sample.sampler")
    if s.grid == "auto":
        s.grid = default_grid("edm" if p.name == "pfgm" else p.name)
    _check_choice(s.grid, GRIDS, "sample.grid")
    _check_choice(config.train.coupling, ("independent", "ot"), "train.coupling")
    _check_feasible(config)
    _check_choice(config.train.dtype, ("float32", "float64"), "train.dtype")
    _check_choice(config.train.lr_schedule, ("constant", "cosine"), "train.lr_schedule")
    _check_positive(config)
    return config


def _check_feasible(config: RunConfig) -> None:
    """Refuse up front what would otherwise fail after training has written the run."""
    if config.train.coupling == "ot":
        from heatbath.generative.couplings import ot_permutation

        ot_permutation(torch.zeros(1, 1), torch.zeros(1, 1))   # UserError if POT is missing
    stochastic = config.sample.sampler in ("ddpm", "euler-maruyama") or (
        config.sample.sampler == "ddim" and config.sample.eta > 0)
    if stochastic and config.path.name == "pfgm":
        raise UserError(f"sample.sampler={config.sample.sampler} injects Gaussian noise and "
                        f"cannot sample a PFGM++ path; use heun, euler, dpm++2m or dopri5")


def _check_positive(config: RunConfig) -> None:
    t = config.train
    for key, value in (("train.steps", t.steps), ("train.batch_size", t.batch_size),
                       ("train.lr", t.lr), ("train.checkpoint_every", t.checkpoint_every),
                       ("train.log_every", t.log_every), ("sample.nfe", config.sample.nfe),
                       ("path.pfgm_dof", config.path.pfgm_dof)):
        if not value > 0:
            raise UserError(f"{key} must be positive, got {value}")
    if not 0.0 < config.data.holdout < 1.0:
        raise UserError(f"data.holdout must be in (0, 1), got {config.data.holdout}")
    if not 0.0 <= t.cond_drop < 1.0:
        raise UserError(f"train.cond_drop must be in [0, 1), got {t.cond_drop}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise UserError(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")


def schedule_params(config: RunConfig) -> dict:
    p = config.path
    name = "edm" if p.name == "pfgm" else p.name
    return {"edm": {"sigma_min": p.sigma_min, "sigma_max": p.sigma_max},
            "ve": {"sigma_min": max(p.sigma_min, 1e-3), "sigma_max": p.sigma_max},
            "vp": {"beta_min": p.beta_min, "beta_max": p.beta_max},
            "interpolant": {"gamma_scale": p.gamma_scale}}.get(name, {})


def make_path(config: RunConfig, sigma_data: float, data_mean: torch.Tensor | None):
    p = config.path
    return build_path(p.name, noise="pfgm" if p.name == "pfgm" else "gaussian",
                      pfgm_dof=p.pfgm_dof, sigma_data=sigma_data, data_mean=data_mean,
                      schedule_params=schedule_params(config))


def net_options(config: RunConfig, event_shape, cond_kind, num_classes, cond_dim) -> dict:
    """The keyword arguments of build_net, recorded in run.json to rebuild the network."""
    m = config.model
    options = {"kind": m.net, "event_shape": list(event_shape),
               "num_classes": num_classes if cond_kind == "class" else None,
               "cond_dim": cond_dim if cond_kind == "continuous" else None}
    if m.net == "mlp":
        options.update(hidden=m.hidden, depth=m.depth)
    elif m.net == "hollow":
        options.update(hidden=m.hidden, depth=m.depth, features=m.features)
    else:
        options.update(base=m.base, mults=list(m.mults), attention=m.attention)
    return options


def make_net(options: dict, seed: int, dtype: torch.dtype):
    options = dict(options)
    kind, shape = options.pop("kind"), tuple(options.pop("event_shape"))
    if options.get("mults") is not None:
        options["mults"] = tuple(options["mults"])
    return build_net(kind, shape, seed=seed, dtype=dtype, **options)
