"""Configuration of a data run: the typed sections of `heatbath fit --data`.

The CLI builds a `RunConfig` from an optional TOML file plus flags, resolves every "auto" from
the data, and writes the fully resolved result into the run directory. Library objects never see
this module: they take typed constructor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the samplers import torch; configs stay light
    from heatbath.samplers import SamplerSettings

from heatbath.core.settings import (AT_LEAST_1, FRACTION_OPEN, NON_NEGATIVE, POSITIVE, Bounds,
                                    fill_config, read_toml, setting)


@dataclass
class DataConfig:
    # .npz / .npy / builtin:NAME[:k=v,...]
    source: str = ""
    # fraction kept out of training for evaluation
    holdout: float = setting(0.1, FRACTION_OPEN)
    # auto | vector | image | particles | lattice: how a file's arrays are read (particles:
    # (N, P, d), centre of mass removed; the model lives on the zero-CoM subspace; lattice:
    # integer states (N, L, M), q = max + 1, needs path.name=masked | uniform)
    kind: str = "auto"
    # 0: all rows (toys: their default size)
    n: int = setting(0, NON_NEGATIVE)


@dataclass
class ModelConfig:
    # auto | mlp | hollow | unet | egnn | periodic (lattices)
    net: str = "auto"
    # MLP / hollow trunk width
    hidden: int = setting(256, AT_LEAST_1)
    # MLP / hollow residual blocks
    depth: int = setting(4, AT_LEAST_1)
    # hollow: per-coordinate context and network width; periodic: conv channels
    features: int = setting(32, AT_LEAST_1)
    # mlp: octaves of sin/cos features of x (0: none), at frequencies π·2^k / fourier_scale
    fourier: int = setting(0, NON_NEGATIVE)
    fourier_scale: float = setting(1.0, POSITIVE)
    # U-Net base channels
    base: int = setting(32, AT_LEAST_1)
    mults: list = setting([1, 2], AT_LEAST_1)
    attention: bool = False


@dataclass
class PathConfig:
    # linear | trig | vp | cosine | ve | edm | interpolant | pfgm | cld | psld | masked |
    # uniform (masked, uniform: categorical lattices, data.kind=lattice)
    name: str = "linear"
    # auto | eps | x1 | v | velocity | edm
    prediction: str = "auto"
    # auto | uniform | lognormal
    time_sampling: str = "auto"
    # lattice paths' training loss: auto | cross_entropy | elbo (auto: cross_entropy for
    # uniform, elbo for masked, whose only loss it is; continuous paths: auto only)
    loss: str = "auto"
    # PFGM++ augmentation dimension D
    pfgm_dof: float = setting(2048.0, POSITIVE)
    # interpolant latent noise γ(t)² = a·t(1 − t)
    gamma_scale: float = setting(1.0, POSITIVE)
    # edm / ve
    sigma_min: float = setting(0.002, POSITIVE)
    sigma_max: float = setting(80.0, POSITIVE)
    # vp
    beta_min: float = setting(0.1, NON_NEGATIVE)
    beta_max: float = setting(20.0, POSITIVE)
    # cld: mass M (friction Γ = 2√M, critical damping) and constant β
    cld_mass: float = setting(0.25, POSITIVE)
    cld_beta: float = setting(4.0, POSITIVE)
    # psld: friction Γ (noise in x), ν (noise in v), constant β; 1/M = (Γ − ν)²/4
    psld_friction: float = setting(0.01, NON_NEGATIVE)
    psld_nu: float = setting(4.01, POSITIVE)
    psld_beta: float = setting(8.0, POSITIVE)
    # cld / psld: v₀ ~ N(0, γM) at the data end
    phase_gamma: float = setting(0.04, POSITIVE)
    # noise | inpaint | superres | paired: the base x₀ = b(c) + z of a data-dependent
    # coupling (generative.corruptions); the model learns x − b(c) conditioned on c
    base: str = "noise"
    # inpaint: center | half | random (holes)
    mask: str = "center"
    # superres: side of the averaged blocks
    factor: int = setting(4, AT_LEAST_1)


@dataclass
class TrainConfig:
    steps: int = setting(2000, AT_LEAST_1)
    batch_size: int = setting(256, AT_LEAST_1)
    lr: float = setting(2e-3, POSITIVE)
    weight_decay: float = setting(0.0, NON_NEGATIVE)
    grad_clip: float = setting(1.0, POSITIVE)
    ema_decay: float = setting(0.999, Bounds(0, 1, high_open=True))
    # linear learning-rate warm-up steps
    warmup: int = setting(100, NON_NEGATIVE)
    # constant | cosine (decays to 0 at train.steps)
    lr_schedule: str = "constant"
    # independent | ot | equivariant_ot (particles: OT after Hungarian + Kabsch alignment)
    coupling: str = "independent"
    # classifier-free guidance: P(condition dropped)
    cond_drop: float = setting(0.1, Bounds(0, 1, high_open=True))
    checkpoint_every: int = setting(500, AT_LEAST_1)
    log_every: int = setting(50, AT_LEAST_1)
    # float32 | float64
    dtype: str = "float32"
    seed: int = 0
    device: str = "cpu"


@dataclass
class SampleConfig:
    sampler: str = "heun"
    nfe: int = setting(35, AT_LEAST_1)
    # auto | uniform | karras | logsnr
    grid: str = "auto"
    eta: float = setting(0.0, Bounds(0, 1))
    churn: float = setting(1.0, Bounds(0, high_open=True))
    # λ of the conjugate sampler (λ-DDIM); 0 is DDIM
    conjugate_lambda: float = 0.0
    # default --guidance of `heatbath sample` (needs --cond)
    guidance: float = 0.0
    # clamp the denoised x̂₁ to the training data's range
    clip: bool = False
    # path.name=masked: the order lattice sites are revealed in, by sample and estimate alike
    # (one model, one exact log q): raster | sublattice (many sites per step, exact) | random
    # (one permutation, drawn from order_seed, for every lattice); paths.masked.order_steps
    order: str = "raster"
    order_seed: int = setting(0, NON_NEGATIVE)
    # dopri5 tolerances
    rtol: float = setting(1e-5, POSITIVE)
    atol: float = setting(1e-5, POSITIVE)

    def settings(self, **changes) -> "SamplerSettings":
        """The SamplerSettings these options describe; `changes` (not None) override them."""
        from heatbath.samplers import SamplerSettings

        values = {"name": self.sampler, "nfe": self.nfe, "grid": self.grid, "eta": self.eta,
                  "churn": self.churn, "conjugate_lambda": self.conjugate_lambda,
                  "rtol": self.rtol, "atol": self.atol}
        values.update({k: v for k, v in changes.items() if v is not None})
        return SamplerSettings(**values)


@dataclass
class EvalConfig:
    # drawn at the end of fit for the report and estimate
    samples: int = setting(2000, AT_LEAST_1)
    # held-out points scored by estimate (0: all)
    likelihood_max: int = setting(500, NON_NEGATIVE)
    # Hutchinson probes above the exact-trace dimension
    probes: int = setting(4, AT_LEAST_1)
    # likelihood ODE (dopri5) tolerances
    rtol: float = setting(1e-5, POSITIVE)
    atol: float = setting(1e-5, POSITIVE)


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
