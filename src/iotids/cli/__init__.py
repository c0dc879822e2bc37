"""The ``iotids`` command: one Typer app; each verb lives in its own module and calls one library function.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage. Errors of iotids print as one line, no traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from iotids.errors import IotidsError

app = typer.Typer(
    name="iotids",
    help="Intrusion detection for IoT networks on CICIDS2017 flow features.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

#: Modules that add their commands to ``app`` when imported.
COMMAND_MODULES = ("iotids.cli.data", "iotids.cli.flows", "iotids.cli.detect", "iotids.cli.serve",
                   "iotids.cli.export", "iotids.cli.compare", "iotids.cli.train")


def _register() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)


def main() -> None:
    """Entry point of the console script."""
    _register()
    try:
        app(standalone_mode=False)
    except IotidsError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2 if isinstance(exc, ValueError) else 1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
