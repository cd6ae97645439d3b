"""Progress bars for long work (rich), silenced by --quiet or when stderr is not a terminal."""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progress_bar(description: str, total: int, quiet: bool):
    """Yields a callback `advance_to(done)`; a no-op when quiet."""
    if quiet or not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def counter_bar(description: str, total: int, quiet: bool):
    """Like progress_bar, but the callback receives increments."""
    done = [0]
    with progress_bar(description, total, quiet) as advance_to:
        def advance(k: int) -> None:
            done[0] += k
            advance_to(done[0])
        yield advance
