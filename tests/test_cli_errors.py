"""Bad input: one clear line on stderr, exit code 2, nothing partial, no run lost."""

import numpy as np
import pytest

from heatbath.cli import main


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for fragment in fragments:
        assert fragment in err, err


def test_missing_data_file(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_cli(["fit", "--data", str(tmp_path / "nope.npz"), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "nope.npz")
    assert not out.exists()


@pytest.mark.parametrize("arrays,fragment", [
    ({"y": np.zeros((10, 2))}, "'x'"),
    ({"x": np.full((10, 2), np.nan)}, "NaN"),
    ({"x": np.zeros((0, 2))}, "empty"),
    ({"x": np.zeros(10)}, "reshape"),
])
def test_bad_arrays(tmp_path, capsys, arrays, fragment):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    code, err = run_cli(["fit", "--data", str(path), "--out", str(tmp_path / "run")], capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,fragment", [
    (["--set", "train.stepz=3"], "train.stepz"),
    (["--set", "train.steps=many"], "integer"),
    (["--set", "sample.sampler=magic"], "magic"),
    (["--set", "path.name=nowhere"], "nowhere"),
    (["--set", "nonsense"], "section.key=value"),
])
def test_bad_settings(tmp_path, capsys, args, fragment):
    code, err = run_cli(["fit", "--data", "builtin:moons:n=100", "--out", str(tmp_path / "r")]
                        + args, capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()


def test_unknown_option_is_one_line(capsys):
    code, err = run_cli(["fit", "--frobnicate", "1"], capsys)
    assert_one_line_error(code, err, "--frobnicate")


def test_not_a_run_directory(tmp_path, capsys):
    code, err = run_cli(["sample", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "not a heatbath run directory")
    code, err = run_cli(["estimate", str(tmp_path / "missing")], capsys)
    assert_one_line_error(code, err, "not found")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("err") / "run"
    assert main(["fit", "--data", "builtin:moons:n=200", "--steps", "5", "--out", str(out),
                 "--set", "model.hidden=16", "--set", "model.depth=1",
                 "--set", "eval.samples=20", "--set", "sample.nfe=2", "--quiet"]) == 0
    return out


def test_existing_run_is_never_overwritten(tiny_run, capsys):
    before = (tiny_run / "model.safetensors").read_bytes()
    code, err = run_cli(["fit", "--data", "builtin:moons:n=100", "--out", str(tiny_run)], capsys)
    assert_one_line_error(code, err, "already exists")
    assert (tiny_run / "model.safetensors").read_bytes() == before


def test_unknown_sampler_and_bad_cond(tiny_run, tmp_path, capsys):
    code, err = run_cli(["sample", str(tiny_run), "--sampler", "magic", "--out",
                         str(tmp_path / "s.npz")], capsys)
    assert_one_line_error(code, err, "magic")
    code, err = run_cli(["sample", str(tiny_run), "--cond", "1"], capsys)
    assert_one_line_error(code, err, "without conditions")
    code, err = run_cli(["sample", str(tiny_run), "--out", str(tmp_path / "s.txt")], capsys)
    assert_one_line_error(code, err, ".npz")
    assert not list(tmp_path.iterdir())


def test_corrupt_checkpoint(tiny_run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    code, err = run_cli(["sample", str(broken), "-n", "2"], capsys)
    assert_one_line_error(code, err, "corrupt")
    (broken / "checkpoint" / "state.json").write_text("{broken")
    code, err = run_cli(["fit", "--resume", "--out", str(broken), "--steps", "9"], capsys)
    assert_one_line_error(code, err, "corrupt")


def test_mismatched_checkpoint(tiny_run, tmp_path, capsys):
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    info = json.loads((other / "run.json").read_text())
    info["net"]["hidden"] = 64
    (other / "run.json").write_text(json.dumps(info))
    code, err = run_cli(["sample", str(other), "-n", "2"], capsys)
    assert_one_line_error(code, err, "do not match")


def test_infeasible_combinations_are_refused_before_training(tmp_path, capsys):
    out = tmp_path / "r"
    code, err = run_cli(["fit", "--data", "builtin:moons:n=100", "--out", str(out),
                         "--set", "path.name=pfgm", "--set", "sample.sampler=ddpm"], capsys)
    assert_one_line_error(code, err, "PFGM++")
    assert not out.exists()


def test_diverging_training_is_one_line(tmp_path, capsys):
    code, err = run_cli(["fit", "--data", "builtin:moons:n=100", "--out", str(tmp_path / "r"),
                         "--steps", "30", "--set", "train.lr=1e30", "--set", "train.warmup=1",
                         "--set", "train.grad_clip=1e30", "--quiet"], capsys)
    assert_one_line_error(code, err, "diverged")   # seeded: lr 1e30 overflows deterministically
