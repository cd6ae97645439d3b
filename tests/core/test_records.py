"""Typed run records: the writer's output reads back, old layouts load, bad files are refused in
one line, and an interrupted run leaves nothing half-written."""

import errno
import json
import os
import time

import pytest

from heatbath.core.errors import UserError
from heatbath.core.records import (RECORD_VERSION, DataRunRecord, EnergyResultRecord,
                                   EnergyRunRecord, read_result_record, read_run_record)



@pytest.fixture
def energy_run(tiny_energy_run):
    return tiny_energy_run


@pytest.fixture
def data_run(tiny_data_run):
    return tiny_data_run


def test_records_round_trip_through_their_json(energy_run, data_run):
    data = read_run_record(data_run)
    assert isinstance(data, DataRunRecord) and data.record_version == RECORD_VERSION
    assert data.status == "complete" and data.event_shape == [2] and data.data.n_train == 180
    assert DataRunRecord.from_json(data.to_json(), "x") == data
    energy = read_run_record(energy_run)
    assert isinstance(energy, EnergyRunRecord) and energy.spec == "gaussian:dim=2"
    assert EnergyRunRecord.from_json(energy.to_json(), "x") == energy
    result = read_result_record(energy_run)
    assert isinstance(result, EnergyResultRecord) and result.weighted is False


@pytest.mark.parametrize("which", ["data", "energy"])
def test_a_run_written_before_records_still_loads(which, energy_run, data_run, copy_run, cli):
    """heatbath 0.1 wrote the same keys without record_version."""
    old = copy_run(data_run if which == "data" else energy_run)
    raw = json.loads((old / "run.json").read_text())
    del raw["record_version"]
    (old / "run.json").write_text(json.dumps(raw))
    assert read_run_record(old).record_version == 0
    code, out, err = cli(["estimate", old, "--json", "-n", "20"])
    assert code == 0, err


@pytest.mark.parametrize("edit,fragment", [
    (lambda raw: raw.pop("target"), "lacks 'target'"),
    (lambda raw: raw.update(event_shape="2"), "event_shape"),
    (lambda raw: raw.update(record_version=RECORD_VERSION + 1), "newer heatbath"),
    (lambda raw: raw["target"].pop("spec"), "spec"),
    (lambda raw: raw.update(step=True), "'step' has the wrong type"),
])
def test_a_corrupt_run_json_is_one_line(edit, fragment, energy_run, copy_run, user_error):
    broken = copy_run(energy_run)
    raw = json.loads((broken / "run.json").read_text())
    edit(raw)
    (broken / "run.json").write_text(json.dumps(raw))
    user_error(["estimate", broken], fragment)
    with pytest.raises(UserError):
        read_run_record(broken)


def test_stale_temporaries_are_removed_by_the_next_command(energy_run, copy_run, cli):
    run = copy_run(energy_run)
    stale, fresh = run / ".samples.npz.abc.tmp", run / ".estimate.json.def.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert cli(["estimate", run, "--json"])[0] == 0
    assert not stale.exists() and fresh.exists()   # a write in progress is left alone


def test_a_full_disk_during_an_energy_fit_leaves_nothing(monkeypatch, tmp_path, user_error, tiny):
    import heatbath.energy.fit as energy_fit

    def full_disk(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(energy_fit, "atomic_save_npz", full_disk)
    out = tmp_path / "run"
    user_error(["fit", "--target", "gaussian:dim=2", "--out", out, *tiny.mcmc], "No space left")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make_bad", ["under_a_file", "read_only"])
def test_an_unwritable_out_is_one_line(make_bad, tmp_path, user_error, tiny):
    if make_bad == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only directory")
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "run"
    user_error(["fit", "--target", "gaussian:dim=2", "--out", out, *tiny.mcmc])
    user_error(["fit", "--data", "builtin:moons:n=100", "--out", out, *tiny.data])


def test_sample_out_on_an_existing_directory_is_one_line(data_run, tmp_path, user_error):
    (tmp_path / "d.npz").mkdir()
    user_error(["sample", data_run, "-n", "2", "--out", tmp_path / "d.npz"], "d.npz")


def test_a_fit_killed_before_its_first_checkpoint_starts_over(data_run, copy_run, cli):
    import shutil

    run = copy_run(data_run)
    shutil.rmtree(run / "checkpoint")
    (run / "model.safetensors").unlink()
    code, _, err = cli(["fit", "--resume", "--out", run, "--quiet"])
    assert code == 0, err
    assert read_run_record(run).status == "complete"
    assert (run / "checkpoint" / "state.json").is_file()
