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
    import torch

    from heatbath.generative.demo import run_demo

    # One thread: the demo's 128-wide matrices gain under 10 % from a second thread, while a
    # second core busy with anything else makes two-thread kernels stall (the likelihood
    # evaluation ran 5x slower so). The budget is 3 minutes on 2 cores, shared or not.
    torch.set_num_threads(1)
    run_demo(out, quiet)
