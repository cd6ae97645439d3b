"""Load an energy run directory: its typed records, its target and its samples.

The one reader behind `estimate`, `sample` and `--versus` on energy runs, so each of them gets
the same one-line errors for a missing or corrupt file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from heatbath.core.errors import UserError
from heatbath.core.records import (EnergyResultRecord, EnergyRunRecord, read_result_record,
                                   read_run_record)

SAMPLE_KEYS = ("x", "log_w", "energy")


def read_energy_record(run_dir: str | Path, purpose: str = "this command") -> EnergyRunRecord:
    record = read_run_record(run_dir)
    if record.kind != "energy":
        raise UserError(f"{run_dir} is a data run; {purpose} needs an energy run")
    return record


def energy_run_target(run_dir: str | Path, record: EnergyRunRecord):
    """The run's target, rebuilt from its spec (a plug-in from the copy kept in the run)."""
    from heatbath.targets.registry import build_target

    target = build_target(record.spec, run_dir=Path(run_dir), plugin=record.plugin)
    if list(record.event_shape) != list(target.event_shape):
        # Particle targets were flat vectors with a full-space "log Z" (which is infinite).
        raise UserError(f"{run_dir} holds {record.spec} configurations of shape "
                        f"{list(record.event_shape)}, but the target's are now "
                        f"{list(target.event_shape)} on {target.space.kind} space; re-run "
                        f"heatbath fit (an older run's log Z is not defined)")
    return target


def read_samples(run_dir: str | Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / "samples.npz"
    if not path.is_file():
        raise UserError(f"{run_dir} has no samples.npz; it is incomplete (re-run heatbath fit)")
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, MemoryError) as exc:
        raise UserError(f"{path} is corrupt: {exc}") from None
    missing = [key for key in SAMPLE_KEYS if key not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; re-run heatbath fit")
    return arrays


def load_energy_run(run_dir: str | Path, purpose: str = "this command"
                    ) -> tuple[EnergyRunRecord, object, dict, EnergyResultRecord]:
    """(run record, target, samples.npz arrays, result record) of an energy run."""
    record = read_energy_record(run_dir, purpose)
    result = read_result_record(run_dir)
    arrays = read_samples(run_dir)
    return record, energy_run_target(run_dir, record), arrays, result
