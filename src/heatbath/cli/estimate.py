"""`heatbath estimate`: estimates with error bars for a data run or an energy run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from heatbath.cli.app import app, check_device, refuse_gpu_for_energy
from heatbath.core.errors import UserError


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
             reference: Optional[Path] = typer.Option(
                 None, "--reference", metavar="REF_RUN",
                 help="spin-lattice energy runs: free-energy profiles beside those of another "
                      "run of the same target (e.g. a long MCMC run)"),
             device: str = typer.Option("cpu", "--device", help="cpu or cuda (data runs)"),
             quiet: bool = typer.Option(False, "--quiet", help="write estimate.json only")):
    """Estimates with error bars: held-out likelihood and distances, or log Z / ESS / energy."""
    from heatbath.core.records import read_run_record
    from heatbath.core.runs import atomic_write_json

    check_device(device)
    info = read_run_record(run_dir)
    if info.kind == "energy":
        refuse_gpu_for_energy(device)
        if data is not None:
            raise UserError("--data applies to data runs; an energy run is scored against its "
                            "target (drop --data)")
    if versus is not None:
        from heatbath.energy.versus import free_energy_difference

        result = free_energy_difference(run_dir, versus, seed=seed)
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
        return
    if info.kind == "data":
        if observables or reference is not None:
            raise UserError(f"--{'observable' if observables else 'reference'} applies to "
                            f"energy runs")
        from heatbath.generative.estimate import estimate_data_run
        from heatbath.generative.run import load_run

        result = estimate_data_run(load_run(run_dir, device), source=data, n=n, seed=seed)
    else:
        from heatbath.energy.estimate import estimate_energy_run

        result = estimate_energy_run(run_dir, n=n, seed=seed, observables=observables,
                                     reference=reference)
    atomic_write_json(run_dir / "estimate.json", result)
    if quiet:
        return
    if as_json:
        typer.echo(json.dumps(result))
    else:
        print_estimates(result)


def print_estimates(result: dict) -> None:
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
