"""A torchrun restart resumes only the run its own launch created (one process, no group)."""

import json

from heatbath.cli import main
from heatbath.generative.elastic import LAUNCH_JSON, is_multi_process_worker, restarted_into

TINY = ["--set", "model.hidden=16", "--set", "model.depth=2", "--set", "train.batch_size=32",
        "--set", "eval.samples=20", "--set", "train.log_every=5",
        "--set", "train.checkpoint_every=5", "--set", "sample.nfe=3", "--quiet"]


def launch(monkeypatch, run_id, restart):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", run_id)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", str(restart))


def snapshot(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file()}


def test_restarted_into_needs_a_restart_of_the_launch_that_wrote_the_run(tmp_path, monkeypatch):
    (tmp_path / LAUNCH_JSON).write_text(json.dumps({"torchelastic_run_id": "a"}))
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert not restarted_into(tmp_path)                 # not under torchrun
    launch(monkeypatch, "a", 0)
    assert not restarted_into(tmp_path)                 # the first attempt never resumes
    launch(monkeypatch, "b", 1)
    assert not restarted_into(tmp_path)                 # another launch's run
    assert not restarted_into(tmp_path / "missing")     # no run there
    launch(monkeypatch, "a", 2)
    assert restarted_into(tmp_path)
    (tmp_path / LAUNCH_JSON).write_text("not json")
    assert not restarted_into(tmp_path)


def test_a_restart_continues_its_own_run_and_refuses_any_other(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    fit = ["fit", "--data", "builtin:moons:n=300", "--out", str(out)] + TINY
    launch(monkeypatch, "first", 0)
    assert main(fit + ["--steps", "10"]) == 0
    assert json.loads((out / LAUNCH_JSON).read_text()) == {"torchelastic_run_id": "first"}
    before = snapshot(out)

    launch(monkeypatch, "second", 1)     # a restart of a different launch: the run is not its own
    capsys.readouterr()
    assert main(fit + ["--steps", "20"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert snapshot(out) == before

    launch(monkeypatch, "first", 1)      # a restart of the launch that made it: continue
    assert main(fit[:-1] + ["--steps", "20"]) == 0
    assert "torchrun restart 1: continuing" in capsys.readouterr().out
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_a_user_directory_is_never_taken_for_a_restart(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    launch(monkeypatch, "any", 1)
    assert main(["fit", "--data", "builtin:moons:n=300", "--out", str(out), "--steps", "5"]
                + TINY) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_only_a_worker_of_a_multi_process_launch_ends_itself(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not is_multi_process_worker()   # WORLD_SIZE alone is not torchrun
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "launch-a")
    assert is_multi_process_worker()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not is_multi_process_worker()   # a one-process torchrun returns normally
