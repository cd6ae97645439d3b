"""`heatbath report`: (re)write report.html of a run."""

from __future__ import annotations

from pathlib import Path

import typer

from heatbath.cli.app import app


@app.command()
def report(run_dir: Path = typer.Argument(..., metavar="RUN_DIR")):
    """(Re)write report.html of a run."""
    from heatbath.report import write_report

    typer.echo(f"report: {write_report(run_dir)}")
