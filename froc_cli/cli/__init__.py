"""The ``froc`` command line: the only place that imports typer and rich."""

from __future__ import annotations

import typer

from .audit import audit_command
from .compare import compare_command
from .predict import predict_command
from .preprocess import preprocess_command
from .train_in import train_in_command

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
app.command("compare", epilog=EXIT_CODES_HELP)(compare_command)
app.command("train-in", epilog=EXIT_CODES_HELP)(train_in_command)
app.command("predict", epilog=EXIT_CODES_HELP)(predict_command)
app.command("preprocess", epilog=EXIT_CODES_HELP)(preprocess_command)


def main() -> None:
    """Console-script entry point."""
    app()
