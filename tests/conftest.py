"""Shared test set-up: small thread count (CI has 2 cores) and a deterministic default dtype."""

import torch

torch.set_num_threads(1)


import pytest  # noqa: E402


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
