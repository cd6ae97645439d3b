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
    (["--set", "model.hidden=-3"], "hidden"),
    (["--set", "model.net=hollow", "--set", "model.features=0"], "features"),
    (["--set", "path.name=ve", "--set", "path.sigma_max=-1"], "sigma_max"),
    (["--set", "path.name=vp", "--set", "path.beta_max=-2"], "beta_max"),
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
    code, err = run_cli(["sample", str(tiny_run), "-n", "-1", "--cond", "1"], capsys)
    assert_one_line_error(code, err, "-n")
    assert not list(tmp_path.iterdir())


def test_bad_unet_settings_on_images(tmp_path, capsys):
    # Refused where the setting is read (declared bounds), naming the setting.
    for setting in ("model.base=0", "model.mults=[a]", "model.mults=[]"):
        code, err = run_cli(["fit", "--data", "builtin:digits:n=100", "--set", setting,
                             "--out", str(tmp_path / "r")], capsys)
        assert_one_line_error(code, err, setting.split("=")[0])
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("method,setting,fragment", [
    ("snf", "flow.snf_blocks=0", "flow.snf_blocks"),
    ("ais", "method.steps=1", "method.steps"),
    ("pt", "method.temperatures=1", "method.temperatures"),
    ("ti", "method.chains=1", "method.chains"),
    ("mcmc", "method.step_size=nan", "method.step_size"),
])
def test_bad_energy_method_sizes(tmp_path, capsys, method, setting, fragment):
    code, err = run_cli(["fit", "--target", "gaussian", "--method", method, "--set", setting,
                         "--out", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()


def test_interrupted_command_returns_its_exit_code(monkeypatch, capsys):
    import typer

    import heatbath.cli as cli

    def interrupted(**_):
        raise typer.Abort()

    monkeypatch.setattr(cli, "app", interrupted)
    assert cli.main(["demo"]) == 130
    monkeypatch.setattr(cli, "app", lambda **_: 130)   # click's return for a Ctrl-C'd command
    assert cli.main(["demo"]) == 130


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
