"""Shared helpers for the benchmark scripts: thread pinning, timing, optional imports, tables.

Every script calls `pin_threads()` before doing any torch work: the benchmark machines are small
and shared, and letting torch spawn one thread per core oversubscribes them (20-100x slowdowns
were seen), which would measure the scheduler rather than the code.
"""

from __future__ import annotations

import datetime
import importlib
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

BENCH_DIR = Path(__file__).resolve().parent
THREADS = 1


def pin_threads(threads: int = THREADS) -> int:
    """One intra-op and one inter-op thread, so timings are stable on a shared machine."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:   # already set (can only be set once per process): keep going
        pass
    return torch.get_num_threads()


def require(module: str, purpose: str, install: str):
    """Import an optional package or exit with a message that says what it is for."""
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"this benchmark needs '{module}' for {purpose}; install it with: {install}")


def median_ms(durations_s: list[float]) -> float:
    return 1e3 * statistics.median(durations_s)


def time_calls(function: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return durations


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; cells are str()-ed, columns padded for the terminal too."""
    cells = [[str(c) for c in row] for row in [headers] + rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def add_ratio_column(rows: list[dict], key: str, name: str) -> None:
    """Append `name`: each row's `key` divided by the best (smallest) one, as '1.0x'."""
    best = max(min(float(r[key]) for r in rows), 1e-300)
    for row in rows:
        row[name] = f"{float(row[key]) / best:.1f}x"


def environment_lines(threads: int) -> list[str]:
    """Provenance of a result table: the command, versions, thread count and date."""
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python"] + sys.argv)
    return [f"- command: `{command}`",
            f"- torch {torch.__version__}, {threads} thread(s) (`torch.set_num_threads({threads})`), "
            f"python {platform.python_version()}, {platform.machine()}",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}"]


def write_report(name: str, title: str, threads: int, sections: list[str]) -> Path:
    """Print the report and write it to benchmarks/<name>.md (the same text)."""
    text = "\n\n".join([f"# {title}", "\n".join(environment_lines(threads))] + sections) + "\n"
    print("\n" + text)
    out = BENCH_DIR / f"{name}.md"
    out.write_text(text)
    print(f"written to {out}")
    return out


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the final table."""
    print(message, file=sys.stderr, flush=True)


def trained_field(config):
    """Train a data-half model in a throw-away run directory and return its EMA field
    (checkpoints off: the benchmarks time and score the model, not the run directory)."""
    import tempfile

    from heatbath.generative.field import make_field
    from heatbath.generative.fit import prepare_job
    from heatbath.generative.train import train

    config.train.checkpoint_every = 10 ** 9
    job, _, _ = prepare_job(config, Path("."))
    with tempfile.TemporaryDirectory() as run_dir:
        job.run_dir = Path(run_dir)
        ema_weights = train(job, resume=False)
    job.net.load_state_dict(ema_weights)
    job.net.eval()
    return make_field(job.net, job.path, config.path.prediction)
