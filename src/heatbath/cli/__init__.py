"""The `heatbath` command line: thin — parse, call the library, print.

One module per subcommand registers on the shared typer app. Every user mistake is a UserError
(or a usage error), printed as one line on stderr with exit code 2. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from typing import List, Optional

import typer

try:   # typer ≥ 0.20 ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions

# Importing a subcommand's module registers it; this order is the order of `heatbath --help`.
from heatbath.cli import fit, sample, estimate, report, targets, demo  # noqa: F401,I001
from heatbath.cli.app import app
from heatbath.core.errors import UserError


def _is_environment_error(exc: OSError) -> bool:
    """Failures of the user's file system (full, read-only, not permitted), not bugs."""
    import errno

    return isinstance(exc, (PermissionError, NotADirectoryError, IsADirectoryError,
                            FileExistsError)) or exc.errno in (errno.ENOSPC, errno.EROFS,
                                                               errno.EDQUOT, errno.EFBIG)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except click_exceptions.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except OSError as exc:
        if not _is_environment_error(exc):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where} (choose another --out, or free space "
                   f"or permissions there)", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    # Without standalone mode click returns the exit code of an interrupted command (130 for
    # Ctrl-C) instead of raising it; a command that finished returns None.
    return code if isinstance(code, int) else 0
