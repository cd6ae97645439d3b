"""Rebuild a trained model from its run directory, as a Field samplers and estimators can use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from heatbath.core.checkpoint import load_model_weights
from heatbath.generative.config import RunConfig, load_config
from heatbath.core.errors import UserError
from heatbath.generative.corruptions import make_corruption
from heatbath.generative.field import CoupledField, Field, make_field
from heatbath.samplers.likelihood import LogLikelihood, log_likelihood
from heatbath.generative.resolve import make_net, make_path
from heatbath.core.records import DataRunRecord, read_run_record
from heatbath.core.runs import DTYPES, load_tensors



@dataclass
class LoadedRun:
    run_dir: Path
    info: DataRunRecord
    config: RunConfig
    net: torch.nn.Module
    path: object
    device: str = "cpu"              # where the network runs; samples come back on the CPU

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.info.event_shape)

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.config.train.dtype]

    @property
    def is_discrete(self) -> bool:
        """A categorical lattice model (path.name=masked | uniform): `generative.lattice` serves it."""
        return getattr(self.path, "discrete", False)

    @property
    def corruption(self):
        """The data-dependent coupling's corruption (None: the base is pure noise)."""
        mean = torch.tensor(self.info.data.mean, dtype=self.dtype).reshape(self.event_shape)
        return run_corruption(self.config, mean)

    @property
    def context_range(self) -> tuple[float, float]:
        """The training data's range, which the network's view of an observation is scaled by."""
        data = self.info.data
        if data.min is None or data.max is None:
            raise UserError(f"{self.run_dir / 'run.json'} has no data range; re-run heatbath fit")
        return float(min(data.min)), float(max(data.max))

    def coupled_field(self, observation, cond: torch.Tensor | None = None,
                      guidance: float = 0.0) -> CoupledField:
        """The field of the residual x − b(c) for a batch of observations (coupled runs)."""
        observation = observation.to(self.device)
        cond = None if cond is None else cond.to(self.device)
        return CoupledField(self.net, self.path, self.config.path.prediction, observation,
                            observation.context(*self.context_range), cond, guidance)

    def field(self, cond: torch.Tensor | None = None, guidance: float = 0.0,
              clip: bool = False) -> Field:
        if self.config.path.base != "noise":
            raise UserError(f"this model restores observations (path.base="
                            f"{self.config.path.base}): pass them with --from FILE")
        cond = None if cond is None else cond.to(self.device)
        bounds = None if not clip else tuple(b.to(self.device) for b in self.clip_bounds())
        return make_field(self.net, self.path, self.config.path.prediction, cond, guidance,
                          bounds)

    def clip_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training data's per-element range, widened by 5 % of its width on each side."""
        data = self.info.data
        if data.min is None or data.max is None:
            raise UserError("this run predates sample.clip (no data range in run.json)")
        low = torch.tensor(data.min, dtype=self.dtype).reshape(self.event_shape)
        high = torch.tensor(data.max, dtype=self.dtype).reshape(self.event_shape)
        margin = 0.05 * (high - low)
        return low - margin, high + margin

    def log_likelihood(self, x: torch.Tensor, *, cond: torch.Tensor | None = None,
                       guidance: float = 0.0, seed: int = 0, batch_size: int = 250,
                       observation=None) -> LogLikelihood:
        """log q(x) under this model's probability-flow ODE, in batches; row i keeps its
        Hutchinson probes (keyed by i) whatever the batching. Settings from [eval]. A coupled
        run scores log q(x | c) of each row's `observation`: the residual's density on the
        unknown subspace."""
        values, errors, nfe, method = [], [], 0, "exact"
        for start in range(0, len(x), batch_size):
            stop = min(len(x), start + batch_size)
            rows = None if cond is None else cond[start:stop]
            points = x[start:stop].to(self.device)
            if observation is None:
                field = self.field(rows, guidance)
            else:
                part = observation.rows(slice(start, stop)).to(self.device)
                field = self.coupled_field(part, rows, guidance)
                points = part.project(points - part.base)
            found = log_likelihood(field, points, probes=self.config.eval.probes,
                                   seed=seed, ids=torch.arange(start, stop),
                                   rtol=self.config.eval.rtol, atol=self.config.eval.atol)
            values.append(found.log_q.cpu())
            errors.append(found.stderr.cpu())
            nfe, method = max(nfe, found.nfe), found.method
        return LogLikelihood(torch.cat(values), torch.cat(errors), nfe, method)

    def heldout(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        path = self.run_dir / "heldout.safetensors"
        tensors = load_tensors(path, "held-out data")
        x = tensors.get("x")
        if x is None or x.ndim < 2 or tuple(x.shape[1:]) != self.event_shape:
            got = "no 'x'" if x is None else f"x of shape {tuple(x.shape)}"
            raise UserError(f"{path} is corrupt: it holds {got}, the model's samples have shape "
                            f"(N, {', '.join(map(str, self.event_shape))}); re-run heatbath fit")
        c = tensors.get("c")
        if c is not None and len(c) != len(x):
            raise UserError(f"{path} is corrupt: {len(c)} conditions for {len(x)} samples")
        return x.to(self.dtype), c

    def heldout_sources(self) -> torch.Tensor | None:
        """The paired sources x0 of the held-out targets (path.base=paired), else None."""
        x0 = load_tensors(self.run_dir / "heldout.safetensors", "held-out data").get("x0")
        return None if x0 is None else x0.to(self.dtype)


def run_corruption(config: RunConfig, mean: torch.Tensor):
    """The corruption of the run's path.base (None for pure noise); in-painting fills its
    holes with the training data's mean."""
    p = config.path
    return make_corruption(p.base, p.mask, p.factor, mean)


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """A data run with its EMA weights loaded onto `device`; UserError for anything missing or
    mismatched."""
    run_dir = Path(run_dir)
    info = read_run_record(run_dir)
    if info.kind != "data":
        raise UserError(f"{run_dir} is an energy run; this command needs a data run")
    if not (run_dir / "model.safetensors").is_file():
        raise UserError(f"{run_dir} has no trained model yet (model.safetensors missing); "
                        f"finish it with 'heatbath fit --resume --out {run_dir}'")
    config = load_config(run_dir / "config.toml")
    _check_config_matches(run_dir, config, info)
    dtype = DTYPES[config.train.dtype]
    try:
        mean = torch.tensor(info.data.mean, dtype=dtype).reshape(info.event_shape)
        net = make_net(info.net, seed=0, dtype=dtype)
        path = make_path(config, info.data.sigma_data, mean, info.data.kind, info.event_shape)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{run_dir / 'run.json'} is inconsistent: {exc}") from None
    load_model_weights(net, run_dir / "model.safetensors")
    net.eval()
    return LoadedRun(run_dir, info, config, net.to(device), path, device)


def _describe(path: tuple[str, str, str]) -> str:
    name, prediction, base = path
    return f"{name}/{prediction}" + ("" if base == "noise" else f" with base {base}")


def _check_config_matches(run_dir: Path, config: RunConfig, info: DataRunRecord) -> None:
    """config.toml may be edited by hand; the path the weights were trained on may not."""
    trained = (info.path["name"], info.path["prediction"], info.path.get("base", "noise"))
    configured = (config.path.name, config.path.prediction, config.path.base)
    if configured != trained:
        raise UserError(f"{run_dir / 'config.toml'} says path {_describe(configured)}, but the "
                        f"weights were trained on {_describe(trained)}; restore [path] in "
                        f"config.toml")
    if config.train.dtype not in DTYPES:
        raise UserError(f"{run_dir / 'config.toml'}: unknown train.dtype '{config.train.dtype}'")
