"""The `heatbath` command line: thin — parse, call the library, print.

Every user mistake is a UserError (or a usage error), printed as one line on stderr with exit
code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

try:   # typer ≥ 0.20 ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions

from heatbath.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="heatbath: generative models from data and samplers from energies.")


def _echo(text: str, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(text)


def _build_config(config_file: Optional[Path], data: Optional[str], steps: Optional[int],
                  seed: Optional[int], device: Optional[str], overrides: List[str]):
    from heatbath.config import RunConfig, config_from

    config = config_from(RunConfig, config_file, overrides,
                         {"data.source": data, "train.steps": steps, "train.seed": seed,
                          "train.device": device})
    _check_device(config.train.device)
    return config


def _check_device(device: str) -> None:
    import torch

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown --device '{device}'; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")


def _is_energy_config(config_file: Optional[Path]) -> bool:
    """A config with a [target] or [method] section describes an energy run."""
    if config_file is None:
        return False
    from heatbath.config import read_toml

    return bool({"target", "method"} & set(read_toml(config_file)))


@app.command()
def fit(config_file: Optional[Path] = typer.Argument(None, metavar="[CONFIG.toml]"),
        data: Optional[str] = typer.Option(None, "--data", help=".npz/.npy file or builtin:NAME[:k=v]"),
        target: Optional[str] = typer.Option(None, "--target", help="energy target NAME[:k=v] or file.py:NAME"),
        method: Optional[str] = typer.Option(None, "--method", help="energy method: mcmc, pt, ais, smc, flow, snf"),
        out: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/NAME)"),
        steps: Optional[int] = typer.Option(None, "--steps"),
        seed: Optional[int] = typer.Option(None, "--seed"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in --out"),
        overrides: List[str] = typer.Option([], "--set", help="section.key=value (repeatable)"),
        quiet: bool = typer.Option(False, "--quiet")):
    """Train a model on data (--data) or learn to sample an energy (--target)."""
    if target is not None or method is not None or _is_energy_config(config_file):
        from heatbath.energy_cli import fit_energy_command

        fit_energy_command(config_file, target, method, out, steps, seed, overrides, quiet)
        return
    from heatbath.fit_data import fit_data, resumed_config
    from heatbath.progress import progress_bar

    config = _build_config(config_file, data, steps, seed, device, overrides)
    if resume:
        if out is None:
            raise UserError("--resume needs --out RUN_DIR (the run to continue)")
        from heatbath.runs import read_run_info

        read_run_info(out)
        config = resumed_config(out, config if steps is not None else None)
    elif not config.data.source:
        raise UserError("nothing to fit: pass --data SOURCE (or --target SPEC for an energy)")
    with progress_bar("training", config.train.steps, quiet) as advance:
        run_dir = fit_data(config, out, resume, advance,
                           on_ready=lambda d: _echo(f"run directory: {d}", quiet))
    _echo(f"trained {config.train.steps} steps; report: {run_dir / 'report.html'}", quiet)


@app.command()
def sample(run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
           n: int = typer.Option(1000, "-n", min=1, help="number of samples"),
           sampler: Optional[str] = typer.Option(None, "--sampler"),
           nfe: Optional[int] = typer.Option(None, "--nfe", help="network evaluations per sample"),
           guidance: float = typer.Option(0.0, "--guidance"),
           cond: Optional[str] = typer.Option(None, "--cond", help="labels '3' / '0,1' or rows 'a,b;c,d'"),
           seed: int = typer.Option(0, "--seed"),
           log_q: bool = typer.Option(False, "--log-q", help="also compute log q(x)"),
           out: Optional[Path] = typer.Option(None, "--out", help="FILE.npz"),
           grid: Optional[str] = typer.Option(None, "--grid", help="uniform, karras or logsnr"),
           eta: Optional[float] = typer.Option(None, "--eta"),
           churn: Optional[float] = typer.Option(None, "--churn"),
           clip: Optional[bool] = typer.Option(None, "--clip/--no-clip",
                                               help="clamp denoised estimates to the data range"),
           quiet: bool = typer.Option(False, "--quiet")):
    """Draw samples from a trained run (optionally with per-sample log q)."""
    from heatbath.sample_cli import sample_command

    sample_command(run_dir, n, sampler, nfe, guidance, cond, seed, log_q, out, grid, eta,
                   churn, clip, quiet)


@app.command()
def estimate(run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
             data: Optional[str] = typer.Option(None, "--data", help="evaluate on this data instead"),
             n: Optional[int] = typer.Option(None, "-n", min=1),
             as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
             seed: int = typer.Option(0, "--seed"),
             versus: Optional[Path] = typer.Option(None, "--versus", metavar="OTHER_RUN",
                                                   help="free-energy difference to another energy run (EXP, BAR, MBAR)"),
             observables: List[str] = typer.Option([], "--observable", metavar="FILE.py:NAME",
                                                    help="energy runs: also estimate f(x) (repeatable)"),
             quiet: bool = typer.Option(False, "--quiet")):
    """Estimates with error bars: held-out likelihood and distances, or log Z / ESS / energy."""
    from heatbath.runs import atomic_write_json, read_run_info

    info = read_run_info(run_dir)
    if versus is not None:
        from heatbath.energy.versus import free_energy_difference

        result = free_energy_difference(run_dir, versus, seed)
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
        return
    if info["kind"] == "data":
        if observables:
            raise UserError("--observable applies to energy runs")
        from heatbath.evaluate import estimate_data_run
        from heatbath.model_io import load_run

        result = estimate_data_run(load_run(run_dir), source=data, n=n, seed=seed)
    else:
        from heatbath.energy.estimate import estimate_energy_run

        result = estimate_energy_run(run_dir, n=n, seed=seed, observables=observables)
    atomic_write_json(run_dir / "estimate.json", result)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print_estimates(result)


def _print_estimates(result: dict) -> None:
    for key, value in result.items():
        if isinstance(value, dict) and "value" in value:
            line = f"{key:>20}: {value['value']:.6g} ± {value['stderr']:.2g}"
            if "floor" in value:
                line += f"   (floor {value['floor']['value']:.3g})"
            typer.echo(line)
        elif not isinstance(value, dict):
            typer.echo(f"{key:>20}: {value}")
        else:
            typer.echo(f"{key:>20}: {json.dumps(value)}")


@app.command()
def report(run_dir: Path = typer.Argument(..., metavar="RUN_DIR")):
    """(Re)write report.html of a run."""
    from heatbath.report import write_report
    from heatbath.runs import read_run_info

    read_run_info(run_dir)
    typer.echo(f"report: {write_report(run_dir)}")


@app.command()
def targets(as_json: bool = typer.Option(False, "--json")):
    """List the built-in energy targets with conventions, parameters and exact values."""
    from heatbath.targets.registry import list_targets

    entries = list_targets()
    if as_json:
        typer.echo(json.dumps(entries, default=str))
        return
    for entry in entries:
        typer.echo(f"{entry['name']:<12} {entry.get('description', '')}")
        if entry.get("exact"):
            typer.echo(f"{'':<12} exact: {json.dumps(entry['exact'], default=str)}")


@app.command()
def demo(out: Optional[Path] = typer.Option(None, "--out"),
         quiet: bool = typer.Option(False, "--quiet")):
    """Train on a built-in 2-D data set, sample, evaluate on held-out data, write a report."""
    from heatbath.demo import run_demo

    run_demo(out, quiet)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except click_exceptions.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    # Without standalone mode click returns the exit code of an interrupted command (130 for
    # Ctrl-C) instead of raising it; a command that finished returns None.
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
