"""Target specs (`NAME:key=value`), the listing, and user plug-in files."""

import json
import math
from pathlib import Path

import pytest
import torch
from scipy import integrate

from heatbath.core.errors import UserError
from heatbath.targets.base import EnergyTarget
from heatbath.targets.registry import TARGETS, build_target, list_targets

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_energy.py"


def test_specs_set_parameters():
    ising = build_target("ising2d:L=6,M=4,beta=0.3,h=0.1")
    assert ising.event_shape == (6, 4) and ising.beta == 0.3 and ising.h == 0.1
    gauss = build_target("gaussian:dim=4,std=2")
    assert gauss.event_shape == (4,)
    assert gauss.exact.log_z == pytest.approx(2 * math.log(2 * math.pi * 4))
    assert build_target("manywell:dim=6").event_shape == (6,)
    assert build_target(" Ising2D:L=3 ").event_shape == (3, 3)
    assert build_target("ising2d:L=4,T=2").beta == 0.5


@pytest.mark.parametrize("spec,message", [
    ("nosuch", "unknown target 'nosuch'; known: gaussian"),
    ("gaussian:sigma=2", "unknown parameter.*sigma.*accepted: dim, mean, std, cov"),
    ("ising2d:beta=0", "beta"), ("ising2d:beta=-0.5", "beta"), ("ising2d:T=0", "T"),
    ("harmonic:T=-1", "T"), ("ising2d:L=1", "L must be >= 2"), ("phi4:L=1", "L must be >= 2"),
    ("ising2d:L=abc", "whole number"), ("manywell:dim=7", "even"), ("gaussian:std=0", "std"),
    ("gaussian:std=-2", "std"), ("dw4:tau=0", "tau"), ("dw4:c=-1", "unbounded"),
    ("phi4:lam=-1", "lam"), ("phi4:lam=0,m2=-1", "m2 > 0"), ("lj13:n=5", "accepted: pairs"), ("lj13:pairs=twice", "once, doubled"),
    ("", "empty target spec"), ("gaussian:dim", "key=value"), ("file.py", "file.py:NAME"),
])
def test_bad_specs_raise_user_error(spec, message):
    with pytest.raises(UserError, match=message):
        build_target(spec)


def test_list_targets_is_complete_and_json_ready():
    listing = list_targets()
    assert [entry["name"] for entry in listing] == list(TARGETS)
    for entry in listing:
        assert {"name", "description", "convention", "params", "exact", "event_shape"} <= set(entry)
        assert entry["convention"] and entry["description"]
    json.dumps(listing)
    by_name = {entry["name"]: entry for entry in listing}
    assert by_name["gmm40"]["exact"]["log_z"] == 0.0
    assert by_name["manywell32"]["exact"]["log_z"] == pytest.approx(164.6956753, abs=1e-6)
    assert by_name["ising2d"]["exact"]["log_z"] == pytest.approx(238.6422566, abs=1e-6)


# ---------------------------------------------------------------- plug-ins


def _write(tmp_path, text, name="energy_file.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_example_plugin_file_works():
    target = build_target(f"{EXAMPLE}:double_well")
    assert target.energy_evals == 0 and target.event_shape == (2,)
    z_a, _ = integrate.quad(lambda a: math.exp(-4 * (a * a - 1) ** 2), -5, 5, points=(-1, 1),
                            epsabs=0, epsrel=1e-13)
    assert target.exact.log_z == pytest.approx(math.log(z_a) + 0.5 * math.log(2 * math.pi),
                                               abs=1e-12)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    energy, force = target.energy_and_force(x)
    assert energy.tolist() == pytest.approx([0.0, 6.0])
    assert torch.allclose(force, torch.tensor([[0.0, 0.0], [0.0, -2.0]], dtype=torch.float64))
    assert target.energy_evals == 2 and target.force_evals == 2
    tilted = build_target(f"{EXAMPLE}:TiltedDoubleWell:barrier=6,tilt=0.5")
    assert tilted.energy(torch.tensor([[1.0, 0.0]])).item() == pytest.approx(-0.5)


def test_function_plugin_with_sampler_and_log_z(tmp_path):
    path = _write(tmp_path, """
import torch
def energy(x):
    return 0.5 * (x ** 2).sum(dim=(1, 2))
energy.event_shape = (2, 3)
energy.log_z = 3 * 1.8378770664093453
def _sample(n, generator):
    return torch.randn(n, 2, 3, generator=generator)
energy.sample = _sample
""")
    target = build_target(f"{path}:energy")
    assert target.event_shape == (2, 3) and target.exact.log_z == pytest.approx(5.513631199)
    samples = target.sample_exact(4, torch.Generator().manual_seed(0))
    assert samples.shape == (4, 2, 3) and target.energy_evals == 0


def test_class_plugins(tmp_path):
    path = _write(tmp_path, """
import torch
from heatbath.targets.base import EnergyTarget, ExactValues

class Quadratic:
    event_shape = (2,)
    def __init__(self, stiffness=1.0):
        self.stiffness = stiffness
        self.log_z = __import__("math").log(2 * __import__("math").pi / stiffness)
    def energy(self, x):
        return 0.5 * self.stiffness * (x ** 2).sum(dim=1)

class Spins:
    event_shape = (3,)
    discrete = True
    def energy(self, x):
        return -(x[:, 0] * x[:, 1])

class Native(EnergyTarget):
    def __init__(self, dim=2):
        super().__init__((dim,), {"dim": dim})
    def _energy(self, x):
        return x.abs().sum(dim=1)
""")
    quad = build_target(f"{path}:Quadratic:stiffness=4")
    assert quad.energy(torch.ones(3, 2)).tolist() == pytest.approx([4.0] * 3)
    assert quad.exact.log_z == pytest.approx(math.log(math.pi / 2))
    assert quad.energy_evals == 3
    assert build_target(f"{path}:Spins").discrete
    native = build_target(f"{path}:Native:dim=5")
    assert isinstance(native, EnergyTarget) and native.event_shape == (5,)
    assert native.energy_evals == 0 and native.name.endswith(":Native")
    with pytest.raises(UserError, match="unknown parameter.*stiff.*accepted: stiffness"):
        build_target(f"{path}:Quadratic:stiff=4")


BAD_PLUGINS = [
    ("def energy(x):\n    return x.sum(1)\n", "no event_shape"),
    ("def energy(x):\n    return x\nenergy.event_shape = (2,)\n", r"shape \(4,\).*got \(4, 2\)"),
    ("import torch\ndef energy(x):\n    return torch.full((x.shape[0],), float('nan'))\n"
     "energy.event_shape = (2,)\n", "non-finite"),
    ("def energy(x):\n    return x[:, 5]\nenergy.event_shape = (2,)\n",
     "energy failed.*IndexError"),
    ("def energy(x):\n    return x.sum(1)\nenergy.event_shape = 'abc'\n", "event_shape must be"),
    ("def energy(x):\n    return x.sum(1)\nenergy.event_shape = (2,)\nenergy.log_z = 'one'\n",
     "log_z must be a finite float"),
    ("import torch\ndef energy(x):\n    return x.sum(1)\nenergy.event_shape = (2,)\n"
     "energy.sample = lambda n, g: torch.zeros(n, 3)\n", "sample.*shape"),
    ("def energy(x)\n    return x\n", "could not import.*SyntaxError"),
    ("import not_a_module_anywhere\n", "could not import.*ModuleNotFoundError"),
    ("raise RuntimeError('boom\\nsecond line')\n", "RuntimeError: boom$"),
    ("energy = 3\n", "it must be a class or a function"),
    ("class energy:\n    event_shape = (2,)\n", "must define a method energy"),
]


@pytest.mark.parametrize("source,message", BAD_PLUGINS)
def test_bad_plugins_raise_user_error(tmp_path, source, message):
    path = _write(tmp_path, source)
    with pytest.raises(UserError, match=message):
        build_target(f"{path}:energy")


def test_plugin_file_and_name_problems(tmp_path):
    with pytest.raises(UserError, match="not found"):
        build_target(f"{tmp_path}/missing.py:energy")
    text_file = tmp_path / "energy.txt"
    text_file.write_text("x")
    with pytest.raises(UserError, match="must be a .py file"):
        build_target(f"{text_file}:energy")
    path = _write(tmp_path, "def first(x):\n    return x.sum(1)\nclass Second:\n    pass\n")
    with pytest.raises(UserError, match="'third' is not defined.*defines: Second, first"):
        build_target(f"{path}:third")
    with pytest.raises(UserError, match="no NAME"):
        build_target(f"{path}:")
    with pytest.raises(UserError, match="takes no parameters"):
        build_target(f"{EXAMPLE}:double_well:barrier=2")


def test_plugin_output_shape_is_checked_on_every_call(tmp_path):
    path = _write(tmp_path, "def energy(x):\n    return x.sum(1)[:4]\nenergy.event_shape = (2,)\n")
    target = build_target(f"{path}:energy")
    with pytest.raises(UserError, match=r"shape \(6,\)"):
        target.energy(torch.zeros(6, 2))
