"""report.html: one self-contained page summarising a run directory.

`write_report(run_dir)` reads run.json (required) and whatever optional files are present
(config.toml, metrics.jsonl, samples.npz, heldout.safetensors, estimate.json), and writes
report.html with PNG plots embedded as base64 data URIs and inline CSS: no JavaScript, no
network, one file to mail around. Missing files drop their sections; unreadable ones are
noted in the report. The file is replaced atomically, so a reader never sees half a report.
"""

from __future__ import annotations

from pathlib import Path

from heatbath.core.errors import UserError
from heatbath.report.html import page
from heatbath.report.io import read_run
from heatbath.report.sections import all_sections
from heatbath.core.runs import atomic_write_text

REPORT_NAME = "report.html"

__all__ = ["write_report", "REPORT_NAME"]


def write_report(run_dir) -> Path:
    """Write RUN_DIR/report.html and return its path.

    UserError if run.json is missing or bad, or if report.html cannot be written (read-only
    directory, a directory in its place, a full disk, ...).
    """
    files = read_run(Path(run_dir))
    title = f"heatbath report: {files.info.get('name') or Path(run_dir).name}"
    path = Path(run_dir) / REPORT_NAME
    text = page(title, all_sections(files))
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
