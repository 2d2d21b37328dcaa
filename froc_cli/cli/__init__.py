"""The ``froc`` command line: the only place that imports typer and rich.

Importing it loads typer and froc_cli's light modules only; each command imports the engine
(torch, pandas, scikit-learn) when it runs, so help, completion and early input errors answer
at once (bench/perf_cli.py measures it, tests/cli/test_fast_cli.py keeps it so)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer 0.29 and later carry their own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover  # older typer runs on click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from froc_cli.core._errors import EXIT_INTERRUPTED
from froc_cli.core._version import __version__

from .audit import audit_command
from .compare import compare_command
from .predict import predict_command
from .preprocess import preprocess_command
from .train_in import train_in_command

__all__ = ["app", "main"]

EXIT_CODES_HELP = (
    "Exit codes: 0 success or gate passed; 1 constraints not met (gate failed, infeasible "
    "target); 2 bad input or usage; 3 too little data in a group (never a pass); 4 internal "
    "error (a bug in froc: please report it); 130 interrupted; 141 stdout closed by its reader."
)


class _OneLineErrors(TyperGroup):
    """The ``froc`` group: a usage error (an unknown option, a missing argument, a value of the
    wrong type) is one ``froc: error:`` line on stderr with exit 2, like every other input
    error, instead of click's boxed usage message."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "froc"
            message = error.format_message().splitlines()[0] if error.format_message() else ""
            typer.echo(f"froc: error: {message} (see '{where} --help')", err=True)
            code = error.exit_code
        except typer.Abort:
            typer.echo("froc: interrupted", err=True)
            code = EXIT_INTERRUPTED
        except click_exceptions.ClickException as error:
            typer.echo(f"froc: error: {error.format_message()}", err=True)
            code = error.exit_code
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="froc",
    cls=_OneLineErrors,
    help="Fair and robust tabular classifiers: audit, train-in, preprocess, compare.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"froc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the froc version and exit.",
            metavar="",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Fair and robust tabular classifiers (FRoC-IN, FRoC-PRE)."""


app.command("audit", epilog=EXIT_CODES_HELP)(audit_command)
app.command("compare", epilog=EXIT_CODES_HELP)(compare_command)
app.command("train-in", epilog=EXIT_CODES_HELP)(train_in_command)
app.command("predict", epilog=EXIT_CODES_HELP)(predict_command)
app.command("preprocess", epilog=EXIT_CODES_HELP)(preprocess_command)


def main() -> None:
    """Console-script entry point."""
    app()
