"""The ``froc`` command line: the only place that imports typer and rich."""

from __future__ import annotations

import typer

from .audit import audit_command

__all__ = ["app", "main"]

EXIT_CODES_HELP = (
    "Exit codes: 0 success or gate passed; 1 constraints not met (gate failed, infeasible "
    "target); 2 bad input or usage; 3 too little data in a group (never a pass)."
)

app = typer.Typer(
    name="froc",
    help="Fair and robust tabular classifiers: audit, train-in, preprocess, compare.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Fair and robust tabular classifiers (FRoC-IN, FRoC-PRE)."""


app.command("audit", epilog=EXIT_CODES_HELP)(audit_command)


def main() -> None:
    """Console-script entry point."""
    app()
