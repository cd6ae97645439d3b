"""Reading a run directory for the report, and writing the report atomically.

Only run.json is required. Every other file is optional: a missing file is silently skipped
(its section is left out), and a file that exists but cannot be read is skipped with a note
("could not read X: why") that the report shows, because a report that crashes on one bad file
is worse than a report with a hole in it. run.json is read as a typed record
(`heatbath.core.records`), so the sections never meet a run description the package did not
write; the report is written by the helpers of `heatbath.core.runs`.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heatbath.core.errors import UserError
from heatbath.core.records import RUN_JSON, read_run_record

# Plots never need more than this many configurations; reading more would only slow the report.
# 1-D arrays (log weights, energies) are kept whole so that weight summaries match the estimates.
MAX_ROWS = 5000


@dataclass
class RunFiles:
    """Everything the report could read from one run directory (None where absent)."""

    run_dir: Path
    info: dict
    config_text: str | None = None
    metrics: list[dict] | None = None
    samples: dict[str, np.ndarray] | None = None
    heldout: dict[str, np.ndarray] | None = None
    estimate: dict | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, name: str, exc: Exception | str) -> None:
        self.notes.append(f"could not read {name}: {exc}")


def read_run(run_dir: Path) -> RunFiles:
    """Read run.json (required) and whichever optional files are present and readable."""
    run_dir = Path(run_dir)
    files = RunFiles(run_dir, _read_info(run_dir))
    files.config_text = _guarded(files, "config.toml", _read_text)
    files.metrics = _guarded(files, "metrics.jsonl", lambda p: _read_metrics(p, files))
    files.samples = _guarded(files, "samples.npz", _read_npz)
    files.heldout = _guarded(files, "heldout.safetensors", _read_safetensors)
    files.estimate = _guarded(files, "estimate.json", _read_json_object)
    return files


def _read_info(run_dir: Path) -> dict:
    """The typed run record (`core.records`), as the JSON dictionary the sections read; an
    unreadable or corrupt run.json is a one-line UserError."""
    try:
        return read_run_record(run_dir).to_json()
    except OSError as exc:
        raise UserError(f"cannot read {run_dir / RUN_JSON}: {exc.strerror or exc}") from None


def _guarded(files: RunFiles, name: str, reader):
    """reader(path), None if the file is absent, None plus a note if it is unreadable."""
    path = files.run_dir / name
    if not path.is_file():
        return None
    try:
        return reader(path)
    # Any failure of an optional file must not take the report down with it.
    except Exception as exc:  # noqa: BLE001
        files.note(name, exc)
        return None


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _read_json_object(path: Path) -> dict:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _read_metrics(path: Path, files: RunFiles) -> list[dict]:
    """One record per good line; bad lines (e.g. a half-written last line) are noted, not fatal."""
    records, bad = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        files.note("metrics.jsonl", f"skipped unparseable line(s) {shown}")
    return records


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    # allow_pickle=False: a report must never execute code from a data file.
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: _head(data[key]) for key in data.files}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a valid .npz archive ({exc})") from None


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {key: _head(value) for key, value in load_file(str(path)).items()}


def _head(array: np.ndarray) -> np.ndarray:
    return array[:MAX_ROWS] if array.ndim >= 2 else array


def normalised_weights(log_w: np.ndarray | None, n: int) -> np.ndarray | None:
    """exp(log_w) / sum, with non-finite log weights counted as zero weight; None if unusable."""
    if log_w is None:
        return None
    lw = np.asarray(log_w, dtype=float).reshape(-1)
    if lw.size != n or n == 0:   # weights that do not match the samples weight nothing
        return None
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    top = lw.max(initial=-np.inf)
    if not math.isfinite(top):
        return None
    w = np.exp(lw - top)
    return w / w.sum()
