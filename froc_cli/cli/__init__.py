"""The ``froc`` command line: the only place that imports typer and rich.

Importing it loads typer and froc_cli's light modules only; each command imports the engine
(torch, pandas, scikit-learn) when it runs, so help, completion and early input errors answer
at once (bench/perf_cli.py measures it, tests/cli/test_fast_cli.py keeps it so)."""

from __future__ import annotations

from typing import Annotated

import typer

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
    "error (a bug in froc: please report it); 130 interrupted."
)

app = typer.Typer(
    name="froc",
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
