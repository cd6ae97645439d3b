"""Restarts by torchrun (`--max-restarts N`): a restarted launch continues its own run.

When a worker dies, torchrun stops every worker of the group and starts them again with the same
command line and `TORCHELASTIC_RESTART_COUNT` one higher. The restarted `fit --out RUN` would then
find RUN already there and refuse it. So the run directory records which launch created it
(`TORCHELASTIC_RUN_ID`, the same for every attempt of one torchrun invocation), and a restarted
attempt that finds its own launch's directory resumes it from the last checkpoint. A directory
from any other launch, or one the user made, is never resumed this way: it is refused as before.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from heatbath.core.runs import atomic_write_json

LAUNCH_JSON = "launch.json"


def launch_id() -> str | None:
    """The torchrun launch this process belongs to; None outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or None


def restart_count() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def mark_launch(run_dir: Path) -> None:
    """Record the launch that created `run_dir` (nothing to record outside torchrun)."""
    run_id = launch_id()
    if run_id is not None:
        atomic_write_json(Path(run_dir) / LAUNCH_JSON, {"torchelastic_run_id": run_id})


def restarted_into(out: Path) -> bool:
    """True when this process is a torchrun restart and `out` was created by the same launch."""
    run_id = launch_id()
    if restart_count() == 0 or run_id is None:
        return False
    try:
        recorded = json.loads((Path(out) / LAUNCH_JSON).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("torchelastic_run_id") == run_id


def is_multi_process_worker() -> bool:
    """True in a torchrun worker of a group of more than one process."""
    return launch_id() is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1


def end_worker_process(code: int = 0) -> None:
    """End a finished multi-process worker at once, skipping interpreter teardown.

    Gloo's C++ threads can still be alive while Python tears the process down; a joinable
    std::thread destroyed then calls std::terminate ("terminate called without an active
    exception"), and the worker dies by SIGABRT after its run finished correctly (seen in CI).
    Every file is already closed and the group left, so only the streams need flushing.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
