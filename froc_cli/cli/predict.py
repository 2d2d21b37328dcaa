"""``froc predict``: a saved model's favourable-class probability and decision for each row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from froc_cli.core._shards import is_dataset_path

from ._common import (
    DataPath,
    Device,
    JsonFlag,
    Quiet,
    Threads,
    check_outputs,
    check_threads,
    guarded,
    progress_printer,
    split_list,
    stdout_console,
)
from ._precheck import check_model_file

if TYPE_CHECKING:
    from froc_cli.models._artifact import ModelArtifact

__all__ = ["predict_command"]


def _warn_unseen(unseen: dict[str, int], quiet: bool) -> None:
    if unseen and not quiet:
        listed = ", ".join(f"{k} ({v} rows)" for k, v in unseen.items())
        typer.echo(
            f"froc: warning: categories the model never saw (encoded as none of the known "
            f"ones) in {listed}",
            err=True,
        )


def _predict_dataset(
    model_file: Path,
    data: Path,
    output: Path,
    passthrough: tuple[str, ...],
    device: str,
    threads: int,
    json_output: bool,
    quiet: bool,
) -> int:
    """DATA is a dataset of parquet shards: predictions streamed into one output shard per
    input shard in the folder ``output``."""
    check_outputs({"MODEL_FILE": model_file}, {}, quiet=quiet)
    from froc_cli.core._shards import open_dataset
    from froc_cli.models._artifact import load_model
    from froc_cli.workflows._stream import predict_dataset

    artifact: ModelArtifact = load_model(model_file)
    dataset = open_dataset(data)
    prediction = predict_dataset(
        dataset,
        artifact,
        output,
        model_name=str(model_file),
        passthrough=passthrough,
        device=device,
        threads=threads,
        progress=progress_printer(quiet or json_output),
    )
    _report(
        artifact,
        {
            "model_file": str(model_file),
            "source": str(data),
            "output": str(output),
            "shards": [str(path) for path in prediction.outputs],
            "rows": prediction.rows,
            "favourable_decisions": prediction.favourable,
        },
        prediction.unseen,
        f"{len(prediction.outputs)} shard(s) to {output}",
        json_output=json_output,
        quiet=quiet,
    )
    return 0


def _report(
    artifact: ModelArtifact,
    summary: dict[str, Any],
    unseen: dict[str, int],
    written: str,
    *,
    json_output: bool,
    quiet: bool,
) -> None:
    """The JSON summary or the one line of a prediction run (``written``: what was written),
    after the warning about categories the model never saw."""
    from froc_cli.workflows._predict import DECISION_COLUMN, PROBABILITY_COLUMN

    summary = {
        **summary,
        "label": {"column": artifact.label_column, "favourable": artifact.positive_value},
        "columns_added": [PROBABILITY_COLUMN, DECISION_COLUMN],
        "unseen_categories": unseen,
    }
    _warn_unseen(unseen, quiet or json_output)
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    stdout_console().print(
        f"wrote {written}: {summary['rows']} rows, {summary['favourable_decisions']} decided "
        f"{artifact.label_column}={artifact.positive_value!r}; columns {PROBABILITY_COLUMN} "
        f"(probability) and {DECISION_COLUMN} (1 = favourable)",
        highlight=False,
    )


def predict_command(
    model_file: Annotated[
        Path, typer.Argument(help="Model file written by froc train-in -o.", show_default=False)
    ],
    data: DataPath,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Output table (.csv or .parquet); for a dataset of shards, a folder that gets "
            "one .parquet shard per input shard.",
            show_default=False,
        ),
    ],
    drop: Annotated[
        list[str] | None,
        typer.Option(
            help="Other columns to carry through unchanged (identifiers, ...); repeat or "
            "comma-separate."
        ),
    ] = None,
    device: Device = "cpu",
    threads: Threads = 1,
    json_output: JsonFlag = False,
    quiet: Quiet = False,
) -> None:
    """Append the favourable-class probability (froc_proba) and the decision (froc_decision,
    1 = favourable) of a saved model to every row of DATA, in input order.

    DATA must hold every column the model reads; other columns must be the label, the
    protected column, columns dropped at training, or named with --drop (carried through).

    Example: froc predict model.froc sample_data/synthetic.csv -o predictions.csv
    """

    def run() -> int:
        check_threads(threads)
        # Before torch and pandas load: the first error the engine would find.
        check_model_file(model_file)
        if is_dataset_path(data):
            return _predict_dataset(model_file, data, output, split_list(drop), device, threads,
                                    json_output, quiet)  # fmt: skip
        check_outputs({"MODEL_FILE": model_file, "DATA": data}, {"--output": output}, quiet=quiet)
        from froc_cli.core._io import read_table, write_table_atomic
        from froc_cli.models._artifact import load_model
        from froc_cli.workflows._predict import DECISION_COLUMN, predict_table

        artifact = load_model(model_file)
        frame = read_table(data)
        prediction = predict_table(
            frame,
            artifact,
            source=str(data),
            model_name=str(model_file),
            passthrough=split_list(drop),
            device=device,
            threads=threads,
        )
        written = write_table_atomic(prediction.frame, output)
        decisions = prediction.frame[DECISION_COLUMN]
        _report(
            artifact,
            {
                "model_file": str(model_file),
                "source": str(data),
                "output": str(written),
                "rows": len(decisions),
                "favourable_decisions": int(decisions.sum()),
            },
            prediction.unseen,
            str(written),
            json_output=json_output,
            quiet=quiet,
        )
        return 0

    guarded(run)
