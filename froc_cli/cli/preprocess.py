"""``froc preprocess``: FRoC-PRE, a training set rewritten for an outside trainer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from froc_cli.core._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK
from froc_cli.core._io import read_table
from froc_cli.methods._froc_pre import (
    PreprocessConfig,
    PreprocessResult,
    TargetReport,
    preprocess_table,
)
from froc_cli.reports._manifest import (
    WrittenFiles,
    check_output_path,
    default_output_path,
    write_preprocess_outputs,
)
from froc_cli.reports._markdown import format_number

from ._common import (
    CatBudget,
    DataPath,
    Device,
    Drop,
    DropNa,
    Eps,
    Immutable,
    JsonFlag,
    Label,
    LearningRate,
    MinGroupSize,
    PgdSteps,
    Positive,
    Protected,
    ProtectedGroup,
    Quiet,
    Seed,
    Threads,
    data_spec,
    guarded,
    progress_printer,
    set_threads,
    stdout_console,
    threat_model,
)

__all__ = ["preprocess_command"]

_SPACES = (
    ("valid", "valid records"),
    ("numeric", "numeric-only"),
    ("continuous", "continuous"),
)


def _target_rows(report: TargetReport) -> list[tuple[str, str, str]]:
    rows = []
    for key, name in _SPACES:
        white = report.metrics.get(f"robustness_whitebox_{key}")
        if white is None:
            continue
        rows.append(
            (
                name,
                format_number(white),
                format_number(report.metrics.get(f"robustness_transfer_{key}")),
            )
        )
    return rows


def _print_result(
    console: Console, result: PreprocessResult, config: PreprocessConfig, files: WrittenFiles
) -> None:
    reports = [("output", result.target)]
    if result.baseline is not None:
        reports.append(("input", result.baseline))
    table = Table(
        title=f"froc preprocess: fresh {result.target.model} trained with plain BCE, "
        "measured on the held-out split",
        title_justify="left",
    )
    table.add_column("figure")
    for name, _ in reports:
        table.add_column(f"trained on the {name}", justify="right")
    table.add_column("threshold", justify="right")
    table.add_row("accuracy", *(format_number(r.metrics["accuracy"]) for _, r in reports), "")
    table.add_row(
        "majority-class floor",
        *(format_number(r.metrics["majority_floor"]) for _, r in reports),
        "",
    )
    table.add_row(
        "S_B bias score",
        *(format_number(r.metrics["bias_score"]) for _, r in reports),
        f"<= {config.delta_f:g}",
    )
    for kind in ("whitebox", "transfer"):
        for key, name in _SPACES:
            metric = f"robustness_{kind}_{key}"
            if metric not in result.target.metrics:
                continue
            checked = kind == config.robustness and key == config.threat.attack_space
            table.add_row(
                f"S_R PGD {kind}, {name}",
                *(format_number(r.metrics.get(metric)) for _, r in reports),
                f">= {config.delta_r:g}" if checked else "",
            )
    console.print(table)

    chosen = next(r for r in result.trajectory if r.round == result.chosen_round)
    verdict = (
        "[green]constraints met[/] on validation"
        if result.met
        else "[red]constraints NOT met[/] (exit 1)"
    )
    editable = result.rows["editable"]
    console.print(
        f"verdict: {verdict}: {result.reason}\n"
        f"surrogate {config.surrogate} at round {result.chosen_round} (validation): "
        f"S_B {format_number(chosen.bias_score)}, S_R {format_number(chosen.robustness)} "
        f"({config.robustness}, {config.threat.attack_space}), "
        f"accuracy {format_number(chosen.accuracy)}\n"
        f"flipped {len(result.flips)} labels ({result.flip_fraction:.1%} of {editable} "
        f"editable rows), added {len(result.additions)} adversarial rows "
        f"({result.augment_fraction:.1%}); {len(result.trajectory)} rounds run\n"
        f"rows: {', '.join(f'{k} {v}' for k, v in result.rows.items())}\n"
        f"threat model: {config.threat.describe()}\n"
        f"seed {config.seed}, device {result.settings['device']}, "
        f"{result.settings['threads']} torch thread(s); "
        f"{', '.join(f'{k} {v}' for k, v in result.settings['versions'].items())}\n"
        f"time: {', '.join(f'{k} {v:.1f}s' for k, v in result.seconds.items())}",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if files.output is not None:
        console.print(f"output written to {files.output}", highlight=False)
    else:
        console.print(
            "output NOT written (pass --allow-partial to write the best round anyway)",
            highlight=False,
        )
    if files.manifest is not None:
        console.print(f"manifest written to {files.manifest}", highlight=False)


def preprocess_command(
    data: DataPath,
    protected: Protected,
    delta_f: Annotated[float, typer.Option(help="Bias threshold: S_B must be <= this.")] = 0.05,
    delta_r: Annotated[
        float, typer.Option(help="Robustness threshold: S_R (PGD) must be >= this.")
    ] = 0.6,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Output table (.csv or .parquet; the suffix picks the format). Default: "
            "<input stem>.froc.<input suffix> beside the input.",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Write a JSON manifest: hashes, settings, every flip and added row, the "
            "per-round S_B/S_R trajectory.",
            show_default=False,
        ),
    ] = None,
    annotate: Annotated[
        bool,
        typer.Option(
            "--annotate",
            help="Add a froc_origin column (original, flipped, adversarial:<source row>).",
        ),
    ] = False,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Write the best round's output even when the constraints are not met "
            "(still exit 1).",
        ),
    ] = False,
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    surrogate: Annotated[
        str, typer.Option(help="Surrogate model whose influence picks the edits: lr or mlp:H...")
    ] = "mlp:128",
    target_model: Annotated[
        str,
        typer.Option(help="Fresh target trained on the output for the report (lr or mlp:H...)."),
    ] = "mlp:64",
    rounds: Annotated[int, typer.Option(help="Round budget L of Algorithm 1.")] = 300,
    step: Annotated[
        float,
        typer.Option(
            help="Rows l edited per round: a fraction of the editable rows (< 1) or a count; "
            "up to 15x more while far from the thresholds."
        ),
    ] = 0.003,
    max_flip_frac: Annotated[
        float, typer.Option(help="Most labels flipped, as a fraction of the editable rows.")
    ] = 0.2,
    max_augment_frac: Annotated[
        float, typer.Option(help="Most adversarial rows added, as a fraction of the editable rows.")
    ] = 1.0,
    influence_params: Annotated[
        str,
        typer.Option(
            help="Influence over the surrogate's last layer (last, fast, closed form) or all "
            "its parameters (all, conjugate gradient)."
        ),
    ] = "last",
    addition_rank: Annotated[
        str,
        typer.Option(
            help="Rank the adversarial rows to add by accuracy influence alone (accuracy, the "
            "paper's eq. 22) or also by their predicted effect on the bias (balanced: fewer "
            "labels flipped, more rounds)."
        ),
    ] = "accuracy",
    robustness: Annotated[
        str,
        typer.Option(
            help="S_R checked on validation under white-box attacks (whitebox) or attacks "
            "crafted on an independently trained twin (transfer)."
        ),
    ] = "whitebox",
    attack_space: Annotated[
        str,
        typer.Option(
            "--attack-space",
            help="Attack space S_R is checked in: valid (real records, as the rows written) or "
            "continuous.",
        ),
    ] = "valid",
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    cat_budget: CatBudget = 1,
    epochs: Annotated[int, typer.Option(help="Surrogate epochs of the first round.")] = 200,
    warm_epochs: Annotated[
        int, typer.Option(help="Surrogate epochs of each later round (warm start).")
    ] = 5,
    warm_lr: Annotated[
        float, typer.Option(help="Adam learning rate of the warm-start rounds.")
    ] = 0.004,
    target_epochs: Annotated[int, typer.Option(help="Epochs of the fresh target.")] = 300,
    lr: LearningRate = 0.01,
    test_size: Annotated[
        float, typer.Option(help="Held-out fraction: never edited nor used to choose.")
    ] = 0.2,
    val_size: Annotated[
        float, typer.Option(help="Validation fraction (stopping rule), carved from the rest.")
    ] = 0.2,
    compare_input: Annotated[
        bool,
        typer.Option(
            "--compare-input/--no-compare-input",
            help="Also train the target (and its twin) on the unedited input, for comparison.",
        ),
    ] = False,
    margin: Annotated[
        float,
        typer.Option(
            help="Stop on validation only past the thresholds by this many standard errors."
        ),
    ] = 1.0,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 1,
    json_output: JsonFlag = False,
    quiet: Quiet = False,
) -> None:
    """Rewrite a training set so that a model trained on it is fair and robust (FRoC-PRE).

    Algorithm 1: each round warm-trains a surrogate, measures S_B and S_R on a validation
    split and stops once both thresholds hold (S_B confirmed on a fresh --target-model fit);
    otherwise it flips the labels the influence function picks and adds valid adversarial
    rows (real records). That fresh target, trained plainly on the output, is measured on a
    held-out split that is never edited.
    The output keeps the input's columns and dtypes: every input row in order (flips
    applied), then the added rows. Exit 1 when the thresholds are not met within the
    budget; the output is then written only with --allow-partial.

    Example: froc preprocess data.csv --protected gender --delta-f 0.05 --delta-r 0.6
    """

    def run() -> int:
        target = output if output is not None else default_output_path(data)
        set_threads(threads)
        config = PreprocessConfig(
            data=data_spec(
                protected=protected,
                label=label,
                positive=positive,
                protected_group=protected_group,
                drop=drop,
                immutable=immutable,
                dropna=dropna,
                min_group_size=min_group_size,
            ),
            delta_f=delta_f,
            delta_r=delta_r,
            threat=threat_model(
                eps=eps,
                pgd_steps=pgd_steps,
                attack_target="true",
                attack_space=attack_space,
                cat_budget=cat_budget,
            ),
            robustness=robustness,  # type: ignore[arg-type]  # validated in __post_init__
            surrogate=surrogate,
            target_model=target_model,
            rounds=rounds,
            step=step,
            max_flip_frac=max_flip_frac,
            max_augment_frac=max_augment_frac,
            influence_params=influence_params,  # type: ignore[arg-type]
            addition_rank=addition_rank,  # type: ignore[arg-type]
            margin=margin,
            epochs=epochs,
            warm_epochs=warm_epochs,
            warm_lr=warm_lr,
            target_epochs=target_epochs,
            lr=lr,
            test_size=test_size,
            val_size=val_size,
            seed=seed,
            device=device,
            compare_input=compare_input,
        )
        check_output_path(data, target, manifest)
        frame = read_table(data)
        progress = progress_printer(quiet or json_output)
        result = preprocess_table(frame, config, source=str(data), progress=progress)
        files = write_preprocess_outputs(
            result,
            input_path=data,
            output_path=target if (result.met or allow_partial) else None,
            manifest_path=manifest,
            annotate=annotate,
        )
        exit_code = EXIT_OK if result.met else EXIT_CONSTRAINTS_NOT_MET
        if json_output:
            payload = result.to_dict()
            payload["output_file"] = None if files.output is None else str(files.output)
            payload["manifest_file"] = None if files.manifest is None else str(files.manifest)
            payload["exit_code"] = exit_code
            typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        else:
            _print_result(stdout_console(), result, config, files)
        return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
