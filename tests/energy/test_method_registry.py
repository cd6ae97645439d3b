"""The method registry is the one place a --method name is interpreted: the CLI, validation and
`sample` follow it, and every method runs end to end on a small exact target."""

import pytest

from heatbath.cli import main
from heatbath.energy.config import EnergyRunConfig
from heatbath.energy.fit import run_method
from heatbath.energy.methods import METHODS
from heatbath.core.settings import set_value

SMALL = {"method.samples": 64, "method.chains": 8, "method.steps": 20, "method.burn_in": 10,
         "method.temperatures": 4, "method.replicas": 2, "flow.steps": 5, "flow.layers": 2,
         "flow.hidden": 8, "flow.batch_size": 32, "flow.snf_blocks": 2, "cnf.steps": 5,
         "cnf.hidden": 8, "cnf.depth": 1, "cnf.batch_size": 32, "transport.steps": 4,
         "transport.hidden": 8, "transport.depth": 1, "transport.batch_size": 16,
         "transport.updates": 2, "transport.time_steps": 6, "transport.points": 4,
         "autoregressive.steps": 3, "autoregressive.batch_size": 16, "autoregressive.layers": 1,
         "autoregressive.channels": 4, "autoregressive.kernel": 3, "masked.steps": 3,
         "masked.batch_size": 8, "masked.channels": 4, "masked.depth": 1, "idem.steps": 3,
         "idem.hidden": 8, "idem.depth": 1, "idem.batch_size": 8, "idem.mc_samples": 4,
         "idem.generate": 8, "idem.updates": 2, "idem.nfe": 4, "idem.refit_samples": 32}


def small_config(name: str, spec: str) -> EnergyRunConfig:
    config = EnergyRunConfig()
    config.target.spec, config.method.name = spec, name
    for key, value in SMALL.items():
        set_value(config, key, value)
    return config


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if not m.spins_only))
def test_every_method_runs_and_reports_its_weight_kind(name):
    result, problem = run_method(small_config(name, "gaussian:dim=2"))
    assert result.weighted == METHODS[name].weighted
    assert (result.model is not None) == METHODS[name].learned
    assert result.x.shape == (len(result.log_w), 2)


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if not m.continuous_only))
def test_every_spin_capable_method_runs_on_an_ising_lattice(name):
    result, _ = run_method(small_config(name, "ising2d:L=4"))
    assert set(result.x.unique().tolist()) <= {-1.0, 1.0}
    assert result.weighted == METHODS[name].weighted
    assert (result.model is not None) == METHODS[name].learned


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if m.spins_only))
def test_spin_only_methods_refuse_continuous_targets_naming_the_alternatives(name, tmp_path,
                                                                           capsys):
    code = main(["fit", "--target", "gaussian:dim=2", "--method", name, "--out",
                 str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    for other, method in METHODS.items():
        assert (other in err.strip().split("use ")[-1].split(", ")) == (not method.spins_only)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", sorted(n for n, m in METHODS.items() if m.continuous_only))
def test_continuous_only_methods_refuse_spins_naming_the_alternatives(name, tmp_path, capsys):
    code = main(["fit", "--target", "ising2d:L=4", "--method", name, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    for other, method in METHODS.items():
        assert (other in err.split("use ")[-1]) == (not method.continuous_only)
    assert not (tmp_path / "r").exists()


def test_fit_help_names_every_method(capsys):
    main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    listed = out.split("energy method:")[1].split("--")[0].replace(",", " ").split()
    assert set(METHODS) <= set(listed)
