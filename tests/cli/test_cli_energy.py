"""End-to-end CLI tests of the energy half, and its bad inputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from heatbath.cli import main
from heatbath.testsystems import double_well_log_z, manywell_log_z

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "my_energy.py")


def test_fit_and_estimate_an_ising_lattice(tmp_path, capsys):
    out = tmp_path / "ising"
    assert main(["fit", "--target", "ising2d:L=4,beta=0.4406867935", "--method", "smc",
                 "--out", str(out), "--set", "method.samples=512", "--steps", "50",
                 "--quiet"]) == 0
    for name in ("run.json", "config.toml", "samples.npz", "result.json", "estimate.json",
                 "report.html"):
        assert (out / name).is_file(), name
    capsys.readouterr()
    assert main(["estimate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("log_z", "free_energy_per_site", "ess", "energy"):
        assert set(result[key]) >= {"value", "stderr", "ci95"}
    assert 0 <= result["ess"]["value"] <= 1
    assert result["exact"]["log_z"] == pytest.approx(15.52191546, abs=1e-7)
    # 8 SMC replicas × 64 spin configurations, 50 annealing steps from β = 0; each step costs
    # one energy of the new β (the weight) + moves_per_step = 1 sweep; + the final energies.
    assert result["n"] == 512 and result["energy_evals"] == 512 * (50 * (1 + 1) + 1)
    z = (result["log_z"]["value"] - result["exact"]["log_z"]) / result["log_z"]["stderr"]
    assert abs(z) < 3


def test_plugin_target_with_exact_log_z(tmp_path, capsys):
    out = tmp_path / "plugin"
    assert main(["fit", "--target", f"{EXAMPLE}:double_well", "--method", "ais",
                 "--out", str(out), "--set", "method.samples=1000", "--steps", "100",
                 "--quiet"]) == 0
    result = json.loads((out / "estimate.json").read_text())
    z = (result["log_z"]["value"] - double_well_log_z()) / result["log_z"]["stderr"]
    assert abs(z) < 3


def test_targets_listing(capsys):
    assert main(["targets", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert {"gaussian", "gmm40", "manywell32", "dw4", "lj13", "lj55", "phi4",
            "ising2d"} <= set(entries)
    assert entries["manywell32"]["exact"]["log_z"] == pytest.approx(manywell_log_z(32), abs=1e-9)
    assert entries["gmm40"]["exact"]["log_z"] == 0


BAD_TARGETS = [
    (["--target", "nosuchthing", "--method", "ais"], "nosuchthing"),
    (["--target", "ising2d:L=4,beta=-1", "--method", "ais"], "beta"),
    (["--target", "ising2d:L=4,colour=3", "--method", "ais"], "colour"),
    (["--target", "gaussian", "--method", "magic"], "magic"),
    (["--target", "ising2d:L=4", "--method", "flow"], "continuous"),
    (["--target", "gaussian", "--method", "mcmc", "--set", "method.kernel=wolff"], "wolff"),
    (["--target", "missing_file.py:energy", "--method", "ais"], "missing_file.py"),
]


@pytest.mark.parametrize("args,fragment", BAD_TARGETS)
def test_bad_energy_inputs(tmp_path, capsys, args, fragment):
    code = main(["fit"] + args + ["--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("body,fragment", [
    ("def energy(x):\n    return x.sum(1)\n", "event_shape"),
    ("import torch\ndef energy(x):\n    return torch.full((x.shape[0],), float('nan'))\n"
     "energy.event_shape = (2,)\n", "finite"),
    ("def energy(x):\n    return x.sum()\nenergy.event_shape = (2,)\n", "shape"),
    ("raise RuntimeError('boom')\n", "boom"),
    ("x = 1\n", "energy"),
])
def test_plugins_that_break_the_protocol(tmp_path, capsys, body, fragment):
    plugin = tmp_path / "plug.py"
    plugin.write_text(body)
    code = main(["fit", "--target", f"{plugin}:energy", "--method", "ais",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "r").exists()


def test_free_energy_difference_between_two_runs(tmp_path, capsys):
    runs = []
    for name, std in (("narrow", 1.0), ("wide", 1.5)):
        out = tmp_path / name
        assert main(["fit", "--target", f"gaussian:dim=2,std={std}", "--method", "mcmc",
                     "--out", str(out), "--set", "method.chains=64", "--steps", "400",
                     "--quiet"]) == 0
        runs.append(out)
    capsys.readouterr()
    assert main(["estimate", str(runs[0]), "--versus", str(runs[1]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    exact = result["exact"]["delta_f"]
    assert exact == pytest.approx(-2 * __import__("math").log(1.5))
    for key in ("exp_forward", "exp_reverse", "bar", "mbar"):
        entry = result["delta_f"][key]
        assert abs(entry["value"] - exact) < 4 * entry["stderr"] + 1e-9, (key, entry)
    assert result["delta_f"]["bar"]["value"] == pytest.approx(result["delta_f"]["mbar"]["value"],
                                                              abs=1e-6)


def test_example_configs_run(tmp_path):
    root = Path(__file__).resolve().parents[2] / "examples"
    assert main(["fit", str(root / "ising_ais.toml"), "--out", str(tmp_path / "ising"),
                 "--set", "target.spec=ising2d:L=4", "--set", "method.samples=64",
                 "--steps", "10", "--quiet"]) == 0
    assert main(["fit", str(root / "flow_matching_moons.toml"), "--out", str(tmp_path / "m"),
                 "--steps", "3", "--set", "eval.samples=10", "--set", "train.batch_size=16",
                 "--quiet"]) == 0


def test_sample_more_from_a_trained_flow(tmp_path, capsys):
    import torch

    from heatbath.core.checkpoint import load_model_weights
    from heatbath.energy.config import load_energy_config
    from heatbath.core.runs import DTYPES
    from heatbath.energy.methods.flows import build_model
    from heatbath.targets import build_target

    out = tmp_path / "flow"
    assert main(["fit", "--target", "gaussian:dim=2,mean=1", "--method", "flow", "--steps", "30",
                 "--set", "flow.layers=2", "--set", "flow.hidden=16", "--set", "method.samples=100",
                 "--out", str(out), "--quiet"]) == 0
    assert main(["sample", str(out), "-n", "50", "--seed", "2", "--out", str(tmp_path / "s.npz"),
                 "--quiet"]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["x"].shape == (50, 2) and np.isfinite(data["log_w"]).all()
    # log w = −U − log q, with U the target's energy: check on the stored arrays.
    np.testing.assert_allclose(data["log_w"], -data["energy"] - data["log_q"], atol=1e-8)
    # The target gaussian:dim=2,mean=1 (std 1) has U(x) = ½‖x − (1, 1)‖².
    np.testing.assert_allclose(data["energy"], 0.5 * ((data["x"] - 1.0) ** 2).sum(1),
                               rtol=1e-12, atol=1e-12)
    # log q is the trained flow's density at x: reload the flow as `heatbath sample` does and
    # evaluate log q(x) through the inverse transform.
    config = load_energy_config(out / "config.toml")
    dtype = DTYPES[config.method.dtype]
    flow = build_model(config, build_target(config.target.spec)).to(dtype)
    load_model_weights(flow, out / "model.safetensors")
    flow.eval()
    with torch.no_grad():
        log_q = flow.log_prob(torch.as_tensor(data["x"], dtype=dtype)).numpy()
    np.testing.assert_allclose(data["log_q"], log_q, rtol=0, atol=1e-9)
    mcmc = tmp_path / "mcmc"
    assert main(["fit", "--target", "gaussian", "--method", "mcmc", "--steps", "5",
                 "--out", str(mcmc), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(mcmc), "-n", "5"]) == 2
    err = capsys.readouterr().err
    from heatbath.energy.methods import METHODS
    assert all(name in err.split("only ")[1] for name, m in METHODS.items() if m.learned)


@pytest.mark.parametrize("method", ["ais", "mcmc"])
def test_user_observable_with_error_bar(tmp_path, capsys, method):
    plugin = tmp_path / "obs.py"
    plugin.write_text("def second_moment(x):\n    return (x ** 2).sum(1)\n"
                      "def broken(x):\n    return x\n")
    out = tmp_path / "run"
    assert main(["fit", "--target", "gaussian:dim=2,std=1.5", "--method", method, "--steps", "100",
                 "--set", "method.samples=1000", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["estimate", str(out), "--observable", f"{plugin}:second_moment", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["observables"]["second_moment"]
    assert abs(entry["value"] - 2 * 1.5 ** 2) < 4 * entry["stderr"]     # E‖x‖² = dim·std²
    assert main(["estimate", str(out), "--observable", f"{plugin}:broken"]) == 2
    assert "one number per sample" in capsys.readouterr().err
