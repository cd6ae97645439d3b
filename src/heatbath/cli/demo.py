"""`heatbath demo`: the main job on a built-in default."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from heatbath.cli.app import app


@app.command()
def demo(out: Optional[Path] = typer.Option(None, "--out"),
         quiet: bool = typer.Option(False, "--quiet")):
    """Train on a built-in 2-D data set, sample, evaluate on held-out data, write a report."""
    from heatbath.generative.demo import run_demo

    run_demo(out, quiet)
