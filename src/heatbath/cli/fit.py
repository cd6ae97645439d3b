"""`heatbath fit`: a generative model from data (--data) or a sampler for an energy (--target)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from heatbath.cli.app import app, check_device, echo, refuse_gpu_for_energy
from heatbath.core.errors import UserError
from heatbath.energy.methods import METHODS

# Read from the registry, so a new method shows up in --help by itself.
METHOD_HELP = "energy method: " + ", ".join(METHODS)

@app.command()
def fit(config_file: Optional[Path] = typer.Argument(None, metavar="[CONFIG.toml]"),
        data: Optional[str] = typer.Option(None, "--data", help=".npz/.npy file or builtin:NAME[:k=v]"),
        target: Optional[str] = typer.Option(None, "--target", help="energy target NAME[:k=v] or file.py:NAME"),
        method: Optional[str] = typer.Option(None, "--method", help=METHOD_HELP),
        out: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/NAME)"),
        steps: Optional[int] = typer.Option(None, "--steps"),
        seed: Optional[int] = typer.Option(None, "--seed"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in --out"),
        overrides: List[str] = typer.Option([], "--set", help="section.key=value (repeatable)"),
        quiet: bool = typer.Option(False, "--quiet")):
    """Train a model on data (--data) or learn to sample an energy (--target)."""
    if out is not None and str(out) in ("", "."):
        raise UserError("--out needs the name of a new run directory (got an empty path or '.')")
    if target is not None or method is not None or _is_energy_config(config_file):
        if data is not None:
            raise UserError("--data and --target describe different runs (samples or an "
                            "energy); give one of them")
        refuse_gpu_for_energy(device)
        if resume:
            raise UserError("--resume continues data runs; an energy run is written in one go "
                            "(run fit again with a new --out)")
        fit_energy_command(config_file=config_file, target=target, method=method, out=out,
                           steps=steps, seed=seed, overrides=overrides, quiet=quiet)
        return
    fit_data_command(config_file=config_file, data=data, out=out, steps=steps, seed=seed,
                     device=device, resume=resume, overrides=overrides, quiet=quiet)


def _is_energy_config(config_file: Optional[Path]) -> bool:
    """A config with a [target] or [method] section describes an energy run."""
    if config_file is None:
        return False
    from heatbath.core.settings import read_toml

    return bool({"target", "method"} & set(read_toml(config_file)))


def build_data_config(*, config_file, data, steps, seed, device, overrides):
    from heatbath.core.settings import config_from
    from heatbath.generative.config import RunConfig

    config = config_from(RunConfig, config_file, overrides,
                         {"data.source": data, "train.steps": steps, "train.seed": seed,
                          "train.device": device})
    check_device(config.train.device)
    return config


def fit_data_command(*, config_file, data, out, steps, seed, device, resume, overrides,
                     quiet) -> None:
    from heatbath.core.progress import progress_bar
    from heatbath.generative.elastic import (end_worker_process, is_multi_process_worker,
                                             restart_count, restarted_into)
    from heatbath.generative.fit import fit_data, resumed_config

    config = build_data_config(config_file=config_file, data=data, steps=steps, seed=seed,
                               device=device, overrides=overrides)
    if not resume and out is not None and restarted_into(out):
        echo(f"torchrun restart {restart_count()}: continuing {out} from its last checkpoint", quiet)
        resume = True
    if resume:
        if out is None:
            raise UserError("--resume needs --out RUN_DIR (the run to continue)")
        from heatbath.core.records import read_run_record

        read_run_record(out)
        config = resumed_config(out, config if steps is not None else None)
    elif not config.data.source:
        raise UserError("nothing to fit: pass --data SOURCE (or --target SPEC for an energy)")
    with progress_bar("training", config.train.steps, quiet) as advance:
        run_dir = fit_data(config, out, resume=resume, progress=advance,
                           on_ready=lambda d: echo(f"run directory: {d}", quiet))
    echo(f"trained {config.train.steps} steps; report: {run_dir / 'report.html'}", quiet)
    if is_multi_process_worker():
        end_worker_process()


def build_energy_config(*, config_file, target, method, steps, seed, overrides):
    from heatbath.core.settings import config_from, set_value
    from heatbath.energy.config import EnergyRunConfig

    config = config_from(EnergyRunConfig, config_file, overrides,
                         {"target.spec": target, "method.name": method, "method.seed": seed})
    if steps is not None:   # --steps means training steps for learned samplers
        from heatbath.energy.methods import method_named

        set_value(config, method_named(config.method.name).steps_key, steps)
    if not config.target.spec:
        raise UserError("no target given: pass --target NAME[:k=v] (see 'heatbath targets') "
                        "or --target path/to/file.py:NAME")
    return config


def fit_energy_command(*, config_file, target, method, out, steps, seed, overrides,
                       quiet) -> None:
    from heatbath.energy.fit import fit_energy

    config = build_energy_config(config_file=config_file, target=target, method=method,
                                 steps=steps, seed=seed, overrides=overrides)
    run_dir = fit_energy(config, out)
    echo(f"run directory: {run_dir}", quiet)
    echo(f"report: {run_dir / 'report.html'}", quiet)
