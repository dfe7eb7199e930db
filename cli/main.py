"""Entry point of the ``dhns`` command."""

from __future__ import annotations

import sys

import typer

from dhns_geo.cli import (catalogue_commands, data_commands,  # noqa: F401
                          dhns_commands, feature_commands, predict_commands,
                          train_commands, tune_commands)
from dhns_geo.cli.app import app
from dhns_geo.errors import DHNSError, OptionError


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; user errors end with one line on stderr, no traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="dhns", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except OptionError as exc:
        # Said of the flag, unless the value came from a config file.
        typer.echo(f"dhns: error: {exc if exc.source else exc.as_flag()}",
                   err=True)
        code = 2
    except DHNSError as exc:
        typer.echo(f"dhns: error: {exc}", err=True)
        code = 1
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("dhns: interrupted", err=True)
        code = 130
    except Exception as exc:
        # Usage errors (click's, vendored by recent typer releases) carry a
        # one-line message and an exit code; anything else is a bug.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        typer.echo(f"dhns: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    sys.exit(code if isinstance(code, int) else 0)
