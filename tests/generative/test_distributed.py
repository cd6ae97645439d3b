"""Data-parallel training with torchrun: two CPU processes over gloo."""

import json
import os
import subprocess
import sys

from safetensors.torch import load_file


def torchrun(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "heatbath.cli"] + args
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def test_two_process_ddp_training_and_resume(tmp_path):
    out = tmp_path / "ddp"
    common = ["--set", "model.hidden=32", "--set", "model.depth=2", "--set", "train.batch_size=32",
              "--set", "train.log_every=5", "--set", "train.checkpoint_every=10",
              "--set", "eval.samples=50", "--set", "sample.nfe=4", "--quiet"]
    done = torchrun(["fit", "--data", "builtin:moons:n=400", "--steps", "10", "--out", str(out)]
                    + common, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["world"] == 2 and state["step"] == 10
    tensors = load_file(out / "checkpoint" / "state.safetensors")
    assert {"rng.0", "rng.1"} <= set(tensors)
    assert not (tensors["rng.0"] == tensors["rng.1"]).all()   # each rank draws its own batches
    resumed = torchrun(["fit", "--resume", "--out", str(out), "--steps", "20", "--quiet"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]
    assert (out / "model.safetensors").is_file()
