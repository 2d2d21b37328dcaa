"""Shared pieces of the command line: options, error mapping, consoles, progress.

Light on purpose: typer, the standard library and ``froc_cli.core``'s dependency-free modules
only. torch, pandas, numpy and scikit-learn are imported by a command when it runs, so the
help, shell completion and the input errors found before any work answer at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from froc_cli.core._config import DataSpec, ThreatModel, TrainConfig
from froc_cli.core._errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    FrocError,
    InputError,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "AttackSpaceOpt",
    "AttackTargetOpt",
    "Attacks",
    "BatchSize",
    "CatBudget",
    "DataPath",
    "DeltaF",
    "DeltaR",
    "Device",
    "Drop",
    "DropNa",
    "Epochs",
    "Eps",
    "Immutable",
    "JsonFlag",
    "Label",
    "LearningRate",
    "MinGroupSize",
    "PgdSteps",
    "Positive",
    "Protected",
    "ProtectedGroup",
    "Quiet",
    "ReportPath",
    "Restarts",
    "RobustMetricOpt",
    "Seed",
    "TargetModel",
    "Threads",
    "TrainAttack",
    "check_outputs",
    "check_threads",
    "data_spec",
    "guarded",
    "process_group",
    "progress_printer",
    "split_list",
    "stdout_console",
    "threat_model",
    "train_config",
]

T = TypeVar("T")

DataPath = Annotated[
    Path,
    typer.Argument(
        help="Input table: a .csv or .parquet file, or a dataset of parquet shards (a "
        "directory, or a quoted glob such as 'data/part-*.parquet').",
        show_default=False,
    ),
]
Label = Annotated[
    str | None, typer.Option(help="Label column (default: the last column).", show_default=False)
]
Positive = Annotated[
    str | None,
    typer.Option(help="Favourable label value (inferred only for 0/1 or False/True labels)."),
]
Protected = Annotated[
    str,
    typer.Option(
        help="Protected attribute column, or several comma-separated (sex,race: their combined "
        "values are the groups).",
        show_default=False,
    ),
]
ProtectedGroup = Annotated[
    str | None,
    typer.Option(
        help="Value(s) forming the protected group a=0 against the rest, comma-separated "
        "(default: every group is judged; with two values, a=0 is the one with the lower "
        "favourable rate)."
    ),
]
Fairness = Annotated[
    str,
    typer.Option(
        help="Criterion S_B measures: parity (favourable rate, eq. 7), opportunity (true-"
        "positive rate) or odds (true- and false-positive rates); the largest gap between "
        "two judged groups."
    ),
]
Drop = Annotated[
    list[str] | None,
    typer.Option(help="Columns to ignore (identifiers, label leaks); repeat or comma-separate."),
]
Immutable = Annotated[
    list[str] | None,
    typer.Option(help="Columns attacks never change; repeat or comma-separate."),
]
# metavar="": a flag takes no value, and typer would otherwise show "<bool>" beside it.
DropNa = Annotated[
    bool, typer.Option("--dropna", help="Drop rows with missing values.", metavar="")
]
MinGroupSize = Annotated[
    int,
    typer.Option(
        help="Fewest rows a group needs to be judged: smaller groups are left out with a "
        "warning (a binary group that small, or fewer than two judged groups: exit 3)."
    ),
]
TargetModel = Annotated[str, typer.Option(help="Model: lr, mlp:H or mlp:HxH...")]
Epochs = Annotated[int, typer.Option(help="Training epochs.")]
LearningRate = Annotated[float, typer.Option("--lr", help="Adam learning rate.")]
BatchSize = Annotated[
    int | None, typer.Option(help="Mini-batch size (default: full batch).", show_default=False)
]
Seed = Annotated[int, typer.Option(help="Seed for the split, initialisation and shuffling.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Eps = Annotated[float, typer.Option(help="L-inf attack budget on [0,1]-scaled features.")]
PgdSteps = Annotated[int, typer.Option(help="PGD iterations (step eps/4).")]
AttackTargetOpt = Annotated[
    str,
    typer.Option(
        "--attack-target",
        help="true: attack the true labels (standard); predicted: the model's own predictions "
        "(the paper's code; pushes misclassified rows towards their true labels).",
    ),
]
AttackSpaceOpt = Annotated[
    str,
    typer.Option(
        "--attack-space",
        help="continuous: encoded space (the paper's); valid: real records only.",
    ),
]
CatBudget = Annotated[
    int, typer.Option(help="valid space: categorical columns an attacker may switch.")
]
TrainAttack = Annotated[
    str, typer.Option(help="Attack the training objective's R term uses: fgsm or pgd.")
]
Attacks = Annotated[
    str,
    typer.Option(
        "--attack",
        help="Attacks S_R is measured with, comma-separated: fgsm, pgd, apgd (Auto-PGD); a "
        "row is robust only if no attack breaks it.",
    ),
]
Restarts = Annotated[
    int, typer.Option(help="APGD: random starts inside the eps-ball (1: from the row itself).")
]
RobustMetricOpt = Annotated[
    str,
    typer.Option(
        "--robust-metric",
        help="What --delta-r gates: accuracy (eq. 8), balanced (mean over the two classes of "
        "the share robustly correct; a constant model scores 0.5) or retention (share of "
        "correct rows that stay correct).",
    ),
]
DeltaF = Annotated[
    float | None, typer.Option(help="Bias threshold: S_B must be <= this.", show_default=False)
]
DeltaR = Annotated[
    float | None,
    typer.Option(help="Robustness threshold: S_R(PGD) must be >= this.", show_default=False),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON object on stdout and nothing else there.", metavar=""
    ),
]
ReportPath = Annotated[
    Path | None, typer.Option(help="Also write a markdown report to this file.", show_default=False)
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.", metavar="")]
Threads = Annotated[
    int,
    typer.Option(
        help="CPU threads for torch. 1 (default) gives the same result for a seed on any machine "
        "(the thread count changes float summation order) and is the fastest for these small "
        "networks on a busy machine; raise it on an idle many-core one.",
    ),
]


@contextmanager
def process_group(device: str) -> Iterator[bool]:
    """Run the block in the process group torchrun describes (nothing changes outside
    torchrun); yields whether this process writes files and prints results (rank 0 only)."""
    from froc_cli.core._distributed import distributed_session, is_writer

    with distributed_session(device):
        yield is_writer()


def check_threads(threads: int) -> None:
    """Refuse a ``--threads`` below 1 (the message the engine's configs give), without torch.

    Every command calls it at the same point: after its own usage checks, before any input
    file is read."""
    if threads < 1:
        raise InputError(f"--threads {threads}: expected at least 1")


def check_outputs(
    inputs: dict[str, Path | None], outputs: dict[str, Path | None], *, quiet: bool
) -> None:
    """:func:`froc_cli.core._paths.check_output_paths`, before any work; say on stderr which
    existing files the run will replace (unless ``quiet``)."""
    from froc_cli.core._paths import check_output_paths

    for option, path in check_output_paths(inputs, outputs):
        if not quiet:
            typer.echo(f"froc: {option} {path} exists; it will be replaced", err=True)


def split_list(values: list[str] | str | None) -> tuple[str, ...]:
    """``--drop a --drop b,c`` -> ('a', 'b', 'c')."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else values
    return tuple(part.strip() for item in items for part in item.split(",") if part.strip())


def data_spec(
    *,
    protected: str,
    label: str | None,
    positive: str | None,
    protected_group: str | None,
    drop: list[str] | None,
    immutable: list[str] | None,
    dropna: bool,
    min_group_size: int,
    fairness: str = "parity",
) -> DataSpec:
    """The DataSpec of the shared data options."""
    return DataSpec(
        protected=protected,
        label=label,
        positive=positive,
        protected_group=split_list(protected_group) or None,
        drop=split_list(drop),
        immutable=split_list(immutable),
        dropna=dropna,
        min_group_size=min_group_size,
        fairness=fairness,  # type: ignore[arg-type]  # validated in __post_init__
    )


def threat_model(
    *,
    eps: float,
    pgd_steps: int,
    attack_target: str,
    attack_space: str,
    cat_budget: int,
    attacks: str = "fgsm,pgd",
    restarts: int = 1,
    robust_metric: str = "accuracy",
) -> ThreatModel:
    """The ThreatModel of the shared attack options."""
    return ThreatModel(
        eps=eps,
        pgd_steps=pgd_steps,
        attack_target=attack_target,  # type: ignore[arg-type]  # validated in __post_init__
        attack_space=attack_space,  # type: ignore[arg-type]
        cat_budget=cat_budget,
        attacks=tuple(split_list(attacks)),  # type: ignore[arg-type]
        restarts=restarts,
        robust_metric=robust_metric,  # type: ignore[arg-type]
    )


def train_config(
    *, model: str, epochs: int, lr: float, batch_size: int | None, seed: int, device: str
) -> TrainConfig:
    """The TrainConfig of the shared training options."""
    return TrainConfig(
        model=model, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device
    )


def stdout_console() -> Console:
    """Console for results; wide enough that tables do not wrap when piped."""
    from rich.console import Console

    class _ResultsConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 ("constraints not met"); let guarded() give the pipe's code.
            self.quiet = True
            raise BrokenPipeError

    return _ResultsConsole(width=None if sys.stdout.isatty() else 120, soft_wrap=False)


def _one_line(text: str) -> str:
    """``text`` on one line, whatever the file's names hold (a column name may contain a
    newline): line breaks are written as ``\\n`` and ``\\r``."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """A progress callback that writes one line per stage to stderr."""

    def report(message: str) -> None:
        if not quiet:
            typer.echo("froc: " + _one_line(message), err=True)

    return report


def warn(message: str | None, quiet: bool) -> None:
    """One ``froc: warning: ...`` line on stderr (also with --json, whose stdout stays one
    JSON object); nothing with --quiet or no message."""
    if message and not quiet:
        typer.echo("froc: " + _one_line(message), err=True)


def _save_traceback() -> str:
    """Write the current exception's traceback to a file in the temp folder; its path."""
    import tempfile
    import traceback

    from froc_cli.core._version import __version__

    handle, name = tempfile.mkstemp(prefix="froc-internal-error-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(f"froc {__version__}, python {sys.version.split()[0]}\n")
        out.write(f"command: {' '.join(sys.argv)}\n\n")
        out.write(traceback.format_exc())
    return name


def guarded(action: Callable[[], T]) -> T:
    """Run ``action``; map a froc error to one line on stderr and its documented exit code.

    Anything else is a bug in froc: one line saying so and where its traceback went, exit
    ``EXIT_INTERNAL_ERROR`` (never 1, which means "constraints not met"). Ctrl-C exits 130.
    """
    try:
        return action()
    except FrocError as error:
        typer.echo("froc: error: " + _one_line(str(error)), err=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("froc: interrupted; no output was left half-written", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # The reader of stdout went away (``froc audit --json | head -1``): not a verdict and not
        # a bug. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # the last line of defence: report, never crash
        try:
            where = f"please report it with the traceback saved in {_save_traceback()}"
        except OSError:
            where = "please report it (the traceback could not be saved)"
        kind = type(error).__name__
        typer.echo(
            f"froc: internal error ({kind}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"this is a bug in froc, {where}",
            err=True,
        )
        raise typer.Exit(EXIT_INTERNAL_ERROR) from None
