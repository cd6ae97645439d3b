"""A run made from a plug-in energy is self-contained: it keeps a copy of the file (and its
hash), works from any working directory, and refuses a copy edited afterwards."""

import json
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def in_plugin_dir(tmp_path, monkeypatch):
    """A working directory holding my_energy.py, so the spec is a relative path."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(EXAMPLES / "my_energy.py", work / "my_energy.py")
    monkeypatch.chdir(work)
    return work


def test_a_relative_plugin_run_works_from_elsewhere(in_plugin_dir, tmp_path, monkeypatch, cli,
                                                   tiny):
    run = tmp_path / "run"
    code, _, err = cli(["fit", "--target", "my_energy.py:double_well", "--out", run, *tiny.flow])
    assert code == 0, err
    record = json.loads((run / "run.json").read_text())
    assert record["plugin"]["file"] == "plugin/my_energy.py"
    assert (run / "plugin" / "my_energy.py").read_bytes() == (in_plugin_dir / "my_energy.py").read_bytes()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (in_plugin_dir / "my_energy.py").unlink()          # the original is gone, the copy remains
    assert cli(["estimate", run, "--json"])[0] == 0
    assert cli(["sample", run, "-n", "8", "--out", elsewhere / "s.npz", "--quiet"])[0] == 0
    assert cli(["estimate", run, "--versus", run, "--json"])[0] == 0


def test_an_edited_plugin_copy_is_refused(in_plugin_dir, tmp_path, user_error, cli, tiny):
    run = tmp_path / "run"
    assert cli(["fit", "--target", "my_energy.py:double_well", "--out", run, *tiny.mcmc])[0] == 0
    copy = run / "plugin" / "my_energy.py"
    copy.write_text(copy.read_text() + "\n# edited\n")
    user_error(["estimate", run], "changed after the run was made")
    copy.unlink()
    user_error(["estimate", run], "lost its copy")


def test_a_discrete_plugin_is_refused_in_one_line(tmp_path, monkeypatch, user_error):
    (tmp_path / "spins.py").write_text(
        "import torch\n"
        "def spins(x):\n    return -(x[:, :-1] * x[:, 1:]).sum(1)\n"
        "spins.event_shape = (8,)\nspins.discrete = True\n")
    monkeypatch.chdir(tmp_path)
    for method in ("mcmc", "ais", "smc", "pt", "ti"):
        user_error(["fit", "--target", "spins.py:spins", "--method", method, "--out",
                    tmp_path / method], "discrete", "ising2d")
        assert not (tmp_path / method).exists()


@pytest.mark.parametrize("body,method,fragment", [
    # raises only on batches larger than the probe's
    ("def e(x):\n    if len(x) > 8:\n        raise RuntimeError('boom')\n    return (x ** 2).sum(1)\n",
     "ais", "boom"),
    # fine for the probe, not differentiable: HMC needs forces
    ("import numpy as np\nimport torch\ndef e(x):\n"
     "    return torch.as_tensor(np.sum(x.detach().numpy() ** 2, 1))\n", "mcmc", "differentiable"),
])
def test_a_plugin_failing_after_its_probe_is_one_line(body, method, fragment, tmp_path,
                                                      monkeypatch, user_error):
    (tmp_path / "bad.py").write_text(body + "e.event_shape = (2,)\n")
    monkeypatch.chdir(tmp_path)
    user_error(["fit", "--target", "bad.py:e", "--method", method, "--out", tmp_path / "r",
                "--set", "method.steps=10", "--set", "method.samples=64",
                "--set", "method.step_size=0.1"], "bad.py:e", fragment)
    assert not (tmp_path / "r").exists()


PARTICLE_PLUGIN = '''
import math

def springs(x):                       # (N, 3, 2): three particles on springs to their centroid
    return 0.5 * (x - x.mean(dim=1, keepdim=True)).pow(2).sum(dim=(1, 2))
springs.event_shape = (3, 2)
springs.translation_invariant = True
springs.log_z = 2 * math.log(2 * math.pi)   # (P - 1) d / 2 * ln(2 pi) on the zero-CoM subspace
'''


def test_a_translation_invariant_plugin_gets_log_z_on_the_subspace(tmp_path, cli):
    import math

    (tmp_path / "springs.py").write_text(PARTICLE_PLUGIN)
    run = tmp_path / "run"
    code, _, err = cli(["fit", "--target", f"{tmp_path / 'springs.py'}:springs", "--method",
                        "ais", "--set", "method.steps=40", "--set", "method.samples=400",
                        "--set", "method.base_scale=1.3", "--out", run, "--quiet"])
    assert code == 0, err
    report = json.loads(cli(["estimate", run, "--json"])[1])
    log_z = report["log_z"]
    assert abs(log_z["value"] - 2 * math.log(2 * math.pi)) < 3 * log_z["stderr"]
    assert "zero-centre-of-mass" in report["measure"]


def test_translation_invariance_needs_a_particle_shape(tmp_path, user_error):
    (tmp_path / "bad.py").write_text(PARTICLE_PLUGIN.replace("(3, 2)", "(6,)"))
    user_error(["fit", "--target", f"{tmp_path / 'bad.py'}:springs", "--out", tmp_path / "r"],
               "translation_invariant needs event_shape (P, d)")
