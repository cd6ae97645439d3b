"""Data-parallel training with torchrun: two CPU processes over gloo, and torchrun's restarts."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

from safetensors.torch import load_file

COMMON = ["--set", "model.hidden=32", "--set", "model.depth=2", "--set", "train.batch_size=32",
          "--set", "train.log_every=5", "--set", "eval.samples=50", "--set", "sample.nfe=4",
          "--quiet"]

# Rank 1 of the first attempt aborts (as a crashing gloo thread would) once the run has a
# checkpoint at step 10 or later; torchrun then stops rank 0 and starts both again.
CRASH_ONCE = '''
import json, os, sys, threading, time
from pathlib import Path
from heatbath.cli import main

def abort_after_step_10(state):
    while True:
        try:
            if json.loads(state.read_text())["step"] >= 10:
                os.abort()
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)

if os.environ["TORCHELASTIC_RESTART_COUNT"] == "0" and os.environ["RANK"] == "1":
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    threading.Thread(target=abort_after_step_10, args=(out / "checkpoint" / "state.json",),
                     daemon=True).start()
sys.exit(main(sys.argv[1:]))
'''


def torchrun(args, tmp_path, logs, *, entry=("-m", "heatbath.cli"), restarts=1):
    """Launch two ranks; each rank's stdout and stderr go to files under `logs`.

    One restart is allowed, as the README advises: gloo on a loaded 2-core machine has aborted
    a rank about once in ten CI runs (SIGABRT, cause not yet captured). A restarted run must
    still end exactly right, and `warn_if_restarted` puts the crashed attempt's logs in the
    test summary so that the cause is seen.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", f"--max-restarts={restarts}", "--log-dir", str(logs),
               "--redirects", "3", *entry] + args
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def failure(done, logs) -> str:
    """What each rank printed, then the launcher: a native abort in one rank shows its cause."""
    parts = [f"{path.relative_to(logs)}:\n{path.read_text()[-1500:]}"
             for path in sorted(Path(logs).rglob("std*.log")) if path.stat().st_size]
    return "\n".join(parts + ["launcher:", done.stderr[-1500:]])


def attempts(logs) -> set[str]:
    return {path.name for path in Path(logs).rglob("attempt_*")}


def warn_if_restarted(done, logs) -> None:
    if attempts(logs) != {"attempt_0"}:
        warnings.warn(f"torchrun restarted the ranks; what they printed:\n{failure(done, logs)}")


def rank_stdout(logs, rank: int) -> str:
    """What `rank` printed in the launch's last attempt."""
    last = max(attempts(logs), key=lambda name: int(name.split("_")[1]))
    return next(Path(logs).rglob(f"{last}/{rank}/stdout.log")).read_text()


def test_two_process_ddp_training_and_resume(tmp_path):
    out, logs = tmp_path / "ddp", tmp_path / "logs"
    loud = [arg for arg in COMMON if arg != "--quiet"]
    done = torchrun(["fit", "--data", "builtin:moons:n=400", "--steps", "10", "--out", str(out),
                     "--set", "train.checkpoint_every=10"] + loud, tmp_path, logs / "fit")
    assert done.returncode == 0, failure(done, logs / "fit")
    warn_if_restarted(done, logs / "fit")
    # A finished worker ends by os._exit (gloo teardown can abort it): its last line still shows.
    assert "trained 10 steps" in rank_stdout(logs / "fit", 0)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["world"] == 2 and state["step"] == 10
    tensors = load_file(out / "checkpoint" / "state.safetensors")
    assert {"rng.0", "rng.1"} <= set(tensors)
    assert not (tensors["rng.0"] == tensors["rng.1"]).all()   # each rank draws its own batches
    resumed = torchrun(["fit", "--resume", "--out", str(out), "--steps", "20", "--quiet"],
                       tmp_path, logs / "resume")
    assert resumed.returncode == 0, failure(resumed, logs / "resume")
    warn_if_restarted(resumed, logs / "resume")
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]
    assert (out / "model.safetensors").is_file()


def test_a_torchrun_restart_continues_its_own_run_exactly(tmp_path):
    """With --max-restarts, a rank that dies mid-run costs only the steps since the last
    checkpoint: the restarted launch resumes its run and ends with the uninterrupted weights."""
    (tmp_path / "crash_once.py").write_text(CRASH_ONCE)
    fit = ["fit", "--data", "builtin:moons:n=400", "--steps", "20",
           "--set", "train.checkpoint_every=5"] + COMMON
    whole, crashed, logs = tmp_path / "whole", tmp_path / "crashed", tmp_path / "logs"
    done = torchrun(fit + ["--out", str(whole)], tmp_path, logs / "whole")
    assert done.returncode == 0, failure(done, logs / "whole")
    warn_if_restarted(done, logs / "whole")
    done = torchrun(fit + ["--out", str(crashed)], tmp_path, logs / "crashed",
                    entry=(str(tmp_path / "crash_once.py"),), restarts=1)
    assert done.returncode == 0, failure(done, logs / "crashed")
    assert attempts(logs / "crashed") == {"attempt_0", "attempt_1"}   # it did crash once
    a, b = load_file(whole / "model.safetensors"), load_file(crashed / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    losses = lambda d: [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert losses(crashed) == losses(whole)
    assert json.loads((crashed / "run.json").read_text())["status"] == "complete"
