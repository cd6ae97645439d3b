"""Configuration of a data run: the typed sections of `heatbath fit --data`.

The CLI builds a `RunConfig` from an optional TOML file plus flags, resolves every "auto" from
the data, and writes the fully resolved result into the run directory. Library objects never see
this module: they take typed constructor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from heatbath.core.settings import fill_config, read_toml


@dataclass
class DataConfig:
    source: str = ""                 # .npz / .npy / builtin:NAME[:k=v,...]
    holdout: float = 0.1             # fraction kept out of training for evaluation
    n: int = 0                       # 0: all rows (toys: their default size)


@dataclass
class ModelConfig:
    net: str = "auto"                # auto | mlp | hollow | unet
    hidden: int = 256                # MLP / hollow trunk width
    depth: int = 4                   # MLP / hollow residual blocks
    features: int = 32               # hollow: per-coordinate context and network width
    base: int = 32                   # U-Net base channels
    mults: list = field(default_factory=lambda: [1, 2])
    attention: bool = False


@dataclass
class PathConfig:
    name: str = "linear"             # linear | trig | vp | cosine | ve | edm | interpolant | pfgm
    prediction: str = "auto"         # auto | eps | x1 | v | velocity | edm
    time_sampling: str = "auto"      # auto | uniform | lognormal
    pfgm_dof: float = 2048.0         # PFGM++ augmentation dimension D
    gamma_scale: float = 1.0         # interpolant latent noise γ(t)² = a·t(1 − t)
    sigma_min: float = 0.002         # edm / ve
    sigma_max: float = 80.0
    beta_min: float = 0.1            # vp
    beta_max: float = 20.0


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    warmup: int = 100                # linear learning-rate warm-up steps
    lr_schedule: str = "constant"    # constant | cosine (decays to 0 at train.steps)
    coupling: str = "independent"    # independent | ot
    cond_drop: float = 0.1           # classifier-free guidance: P(condition dropped)
    checkpoint_every: int = 500
    log_every: int = 50
    dtype: str = "float32"           # float32 | float64
    seed: int = 0
    device: str = "cpu"


@dataclass
class SampleConfig:
    sampler: str = "heun"
    nfe: int = 35
    grid: str = "auto"               # auto | uniform | karras | logsnr
    eta: float = 0.0
    churn: float = 1.0
    guidance: float = 0.0
    clip: bool = False               # clamp the denoised x̂₁ to the training data's range


@dataclass
class EvalConfig:
    samples: int = 2000              # drawn at the end of fit for the report and estimate
    likelihood_max: int = 500        # held-out points scored by estimate (0: all)
    probes: int = 4                  # Hutchinson probes above the exact-trace dimension
    rtol: float = 1e-5               # likelihood ODE (dopri5) tolerances
    atol: float = 1e-5


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    path: PathConfig = field(default_factory=PathConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML config; every key is checked against the sections above."""
    return fill_config(RunConfig(), read_toml(path), str(path))
