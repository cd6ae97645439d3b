"""Shared test set-up: small thread count (CI has 2 cores) and a deterministic default dtype."""

import torch

torch.set_num_threads(1)


import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests never write to the user's cache: heatbath's (the Fréchet feature classifiers)
    goes to one temporary folder per session, shared by every test and subprocess."""
    os.environ["HEATBATH_CACHE"] = str(tmp_path_factory.mktemp("heatbath-cache"))
    yield


@pytest.fixture
def cli(capsys):
    """Run the heatbath CLI in-process: cli(args) -> (exit code, stdout, stderr)."""
    from heatbath.cli import main

    def run(args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def user_error(cli):
    """cli for a command that must fail as promised: exit 2 and one 'error: ' line naming each
    fragment. Returns the line."""
    def run(args, *fragments):
        code, _, err = cli(args)
        assert code == 2, err
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        for fragment in fragments:
            assert fragment in err, err
        return err.strip()
    return run


class Tiny:
    """CLI arguments that make each kind of run take a second or two (tests only check
    behaviour on them, never quality)."""

    data = ["--steps", "3", "--set", "model.hidden=8", "--set", "model.depth=1",
            "--set", "eval.samples=20", "--set", "sample.nfe=2", "--quiet"]
    mcmc = ["--method", "mcmc", "--set", "method.steps=20", "--set", "method.burn_in=10",
            "--set", "method.chains=4", "--quiet"]
    flow = ["--method", "flow", "--steps", "3", "--set", "flow.layers=2", "--set",
            "flow.hidden=8", "--set", "flow.batch_size=16", "--set", "method.samples=32",
            "--quiet"]


@pytest.fixture(scope="session")
def tiny():
    return Tiny


@pytest.fixture(scope="session")
def tiny_data_run(tmp_path_factory):
    """A complete data run on builtin:moons:n=200 (180 training rows). Copy before changing."""
    from heatbath.cli import main

    out = tmp_path_factory.mktemp("shared") / "data"
    assert main(["fit", "--data", "builtin:moons:n=200", "--out", str(out), *Tiny.data]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_energy_run(tmp_path_factory):
    """A complete MCMC run on gaussian:dim=2. Copy before changing."""
    from heatbath.cli import main

    out = tmp_path_factory.mktemp("shared") / "energy"
    assert main(["fit", "--target", "gaussian:dim=2", "--out", str(out), *Tiny.mcmc]) == 0
    return out


@pytest.fixture
def copy_run(tmp_path):
    """copy_run(run) -> a private copy of a run directory to damage or edit."""
    import shutil

    def copy(run):
        target = tmp_path / f"copy-of-{run.name}"
        shutil.copytree(run, target)
        return target
    return copy
