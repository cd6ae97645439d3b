"""Run directories: the unit a user keeps.

A data run directory holds
  config.toml              the fully resolved configuration
  run.json                 what is needed to rebuild the model (a typed record, see records)
  model.safetensors        EMA weights (the model to sample from)
  checkpoint/state.safetensors + checkpoint/state.json
                           raw weights, optimiser moments, RNG state, step: exact resume
  heldout.safetensors      the held-out evaluation data (x, optional c)
  metrics.jsonl            one JSON line per logged step
  samples.npz              samples drawn at the end of fit
  estimate.json            the last `heatbath estimate` result
  report.html              the report
Every file is written atomically (temporary file + rename), so an interrupted write never
leaves a half-written file behind, and no checkpoint is pickled.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from heatbath.core.errors import UserError

DTYPES = {"float32": torch.float32, "float64": torch.float64}   # the dtype names configs use


def check_out_dir(out: Path, hint: str = "") -> None:
    """Refuse to write a new run into a non-empty path: an existing run is never overwritten."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; choose another --out{hint}")


@contextmanager
def staged_directory(out: Path):
    """Yield a hidden sibling of `out` to write a new run into, then rename it into place, so a
    failure half-way (a full disk, an interrupt) leaves no partial run behind."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        yield stage
        if out.is_dir():
            out.rmdir()           # check_out_dir allowed only an empty directory here
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


STALE_TMP_SECONDS = 300   # an atomic write in progress is never this old


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete `.NAME.*.tmp` files a killed writer left behind in a run directory."""
    now = time.time()
    for folder in (Path(run_dir), Path(run_dir) / "checkpoint"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink()
            except OSError:
                pass   # another process removed or replaced it first


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """safetensors file -> dict, or a UserError naming the corrupt/missing file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} is missing: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{what} is corrupt ({path}): {exc}") from None


def append_metrics(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """On resume, drop metric lines logged after the checkpoint we restart from."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """runs/NAME, or runs/NAME-2, -3, ... so an existing run is never overwritten."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-") or "run"
    candidate = root / safe
    k = 2
    while candidate.exists():
        candidate = root / f"{safe}-{k}"
        k += 1
    return candidate
