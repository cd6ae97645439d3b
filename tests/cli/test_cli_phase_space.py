"""Phase-space paths (cld, psld) from the command line: fit, sample, estimate, report, and the
refusals of what they cannot do (one line, exit code 2, nothing written)."""

import json

import numpy as np
import pytest

from heatbath.cli import main
from heatbath.samplers import SAMPLERS

TINY = ["--set", "model.hidden=32", "--set", "model.depth=2", "--set", "train.batch_size=64",
        "--set", "eval.samples=100", "--set", "eval.likelihood_max=40",
        "--set", "sample.sampler=conjugate", "--set", "sample.nfe=6", "--quiet"]


@pytest.fixture(scope="module", params=["cld", "psld"])
def phase_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("phase") / request.param
    assert main(["fit", "--data", "builtin:moons:n=400", "--steps", "40", "--out", str(out),
                 "--set", f"path.name={request.param}"] + TINY) == 0
    return out


def test_fit_records_the_process_and_a_stacked_network(phase_run):
    info = json.loads((phase_run / "run.json").read_text())
    assert info["net"]["event_shape"] == [4]          # (x, v) of 2-D data
    assert (phase_run / "report.html").is_file() and (phase_run / "samples.npz").is_file()
    assert np.load(phase_run / "samples.npz")["x"].shape[1:] == (2,)


@pytest.mark.parametrize("sampler", sorted(n for n, s in SAMPLERS.items() if s.phase_step))
def test_phase_samplers_run_and_are_per_sample_deterministic(phase_run, tmp_path, sampler):
    big, small, even = tmp_path / "big.npz", tmp_path / "small.npz", tmp_path / "even.npz"
    for out, n, grid in ((big, 12, []), (small, 5, []), (even, 5, ["--grid", "uniform"])):
        assert main(["sample", str(phase_run), "-n", str(n), "--sampler", sampler, "--nfe", "8",
                     "--seed", "4", "--out", str(out), "--quiet"] + grid) == 0
    x_big, x_small = np.load(big)["x"], np.load(small)["x"]
    assert x_big.shape == (12, 2) and np.isfinite(x_big).all()
    tolerance = 5e-3 if sampler == "dopri5" else 1e-6   # dopri5: steps shared by a batch
    np.testing.assert_allclose(x_big[:5], x_small, atol=tolerance)
    if sampler != "dopri5":   # --grid reaches the phase sampler (adaptive: only its ends)
        assert not np.allclose(np.load(even)["x"], x_small, atol=1e-3)


def test_estimate_reports_the_likelihood_bound(phase_run, capsys):
    capsys.readouterr()
    assert main(["estimate", str(phase_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["likelihood"] == "bound" and "bound" in report["conventions"]["likelihood"]
    assert np.isfinite(report["nll_per_dim"]["value"]) and report["nfe"] == 6


@pytest.mark.parametrize("args,fragment", [
    (["--log-q"], "marginal over v"), (["--clip"], "--clip"),
    (["--sampler", "ddim"], "splitting"), (["--grid", "karras"], "use quadratic or uniform"),
    (["--grid", "even"], "not 'even'")])
def test_sample_refusals_are_one_line(phase_run, tmp_path, capsys, args, fragment):
    out = tmp_path / "x.npz"
    capsys.readouterr()
    code = main(["sample", str(phase_run), "-n", "4", "--out", str(out), "--quiet"] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not out.exists()


@pytest.mark.parametrize("settings,fragment", [
    (["path.prediction=velocity"], "path.prediction"),
    (["train.coupling=ot"], "train.coupling"),
    (["sample.sampler=dpm++2m"], "splitting"),
    (["sample.grid=karras"], "sample.grid"),
    (["model.net=hollow"], "hollow"),
    (["path.psld_nu=0.01"], "psld_friction")])
def test_fit_refusals_come_before_anything_is_written(tmp_path, capsys, settings, fragment):
    out = tmp_path / "r"
    name = "psld" if "psld" in settings[0] else "cld"
    args = ["fit", "--data", "builtin:moons:n=100", "--out", str(out), "--quiet",
            "--set", f"path.name={name}"]
    for setting in settings:
        args += ["--set", setting]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not out.exists()


@pytest.mark.parametrize("sampler", sorted(n for n, s in SAMPLERS.items() if s.phase_only))
def test_phase_only_samplers_on_an_ordinary_path_are_refused(tmp_path, capsys, sampler):
    code = main(["fit", "--data", "builtin:moons:n=100", "--out", str(tmp_path / "r"), "--quiet",
                 "--set", f"sample.sampler={sampler}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "phase-space" in err, err


def test_churn_reaches_the_exponential_sde(phase_run, tmp_path):
    """--churn 0 turns the exponential SDE into its deterministic probability-flow integrator."""
    draws = {}
    for name, churn in (("ode", "0"), ("sde", "1"), ("strong", "2")):
        out = tmp_path / f"{name}.npz"
        assert main(["sample", str(phase_run), "-n", "6", "--sampler", "exponential-sde",
                     "--churn", churn, "--nfe", "8", "--seed", "4", "--out", str(out),
                     "--quiet"]) == 0
        draws[name] = np.load(out)["x"]
    assert np.isfinite(np.concatenate(list(draws.values()))).all()
    assert not np.allclose(draws["ode"], draws["sde"], atol=1e-3)
    assert not np.allclose(draws["sde"], draws["strong"], atol=1e-3)
