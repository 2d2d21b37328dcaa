"""``froc preprocess``: FRoC-PRE, a training set rewritten for an outside trainer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from froc_cli.core._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK
from froc_cli.core._paths import default_output_path

from ._common import (
    AttackSpaceOpt,
    CatBudget,
    DataPath,
    Device,
    Drop,
    DropNa,
    Eps,
    Fairness,
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
    Restarts,
    RobustMetricOpt,
    Seed,
    Threads,
    check_outputs,
    check_threads,
    data_spec,
    guarded,
    progress_printer,
    stdout_console,
    threat_model,
    warn,
)
from ._precheck import check_csv_columns, check_table_file, check_table_suffix

if TYPE_CHECKING:
    from rich.console import Console

    from froc_cli.reports._manifest import WrittenFiles
    from froc_cli.workflows._preprocess import TrainerFileConfig, TrainerFileResult

__all__ = ["preprocess_command"]

_SPACES = (("valid", "valid records"), ("numeric", "numeric-only"), ("continuous", "continuous"))


def _figure(result: TrainerFileResult, model: str, key: str) -> str:
    from froc_cli.reports._markdown import format_number

    mean = result.estimate.mean[model].get(key)
    if mean is None:
        return "-"
    spread = result.estimate.spread.get(model, {}).get(key)
    if spread is None:
        spread = result.estimate.sd[model].get(key, 0.0)
    return f"{format_number(mean, 3)} ± {format_number(spread, 3)}"


def _print_table(console: Console, result: TrainerFileResult, config: TrainerFileConfig) -> None:
    from rich.table import Table

    from froc_cli.reports._markdown import metric_label

    table = Table(
        title=f"froc preprocess: each model fitted plainly to the output, {config.folds}-fold "
        "cross-fitted (fitted without a fold's rows and their copies, measured on the fold's "
        "original rows); mean ± spread (the sd one fitted model shows: the folds' sd, at "
        "least the sampling error)",
        title_justify="left",
    )
    table.add_column("figure")
    for verdict in result.verdicts:
        table.add_column(verdict.model, justify="right")
    table.add_column("threshold", justify="right")
    rows = [
        ("accuracy", "accuracy", ""),
        ("majority-class floor", "majority_floor", ""),
        (
            metric_label("bias_score", config.data.fairness).replace(" (eq. 7)", ""),
            "bias_score",
            f"<= {config.delta_f:g}",
        ),
    ]
    for kind in ("whitebox", "transfer"):
        for key, name in _SPACES:
            rows.append((f"S_R PGD {kind}, {name}", f"robustness_{kind}_{key}", ""))
    for title, key, threshold in rows:
        cells = [_figure(result, v.model, key) for v in result.verdicts]
        if all(cell == "-" for cell in cells):
            continue
        judged = {v.robustness_key for v in result.verdicts}
        if key in judged:
            threshold = f">= {config.delta_r:g} (judged)"
        table.add_row(title, *cells, threshold)
    table.add_row(
        "meets both",
        *("[green]yes[/]" if v.met else "[red]no[/]" for v in result.verdicts),
        "",
    )
    console.print(table)


def _print_result(
    console: Console, result: TrainerFileResult, config: TrainerFileConfig, files: WrittenFiles
) -> None:
    from froc_cli.reports._markdown import groups_description

    _print_table(console, result, config)
    verdict = "[green]promise met[/]" if result.met else "[red]promise NOT met[/] (exit 1)"
    targets = result.targets
    console.print(
        f"verdict: {verdict}: {result.reason}\n"
        f"judged against S_B <= {targets['bias_score']:.4f} and S_R >= "
        f"{targets['robustness']:.4f} (delta_F {config.delta_f:g} and delta_R "
        f"{config.delta_r:g} tightened by {config.margin:g} standard error)\n"
        f"flipped {len(result.flips)} labels ({result.flip_fraction:.1%} of "
        f"{result.rows['used']} rows), added {len(result.additions)} adversarial rows "
        f"({result.augment_fraction:.1%}); every row of the file was eligible\n"
        + (
            groups_description(result.protected, result.protected_values, False) + "\n"
            if result.judging_extras
            else ""
        )
        + f"threat model: {config.threat.describe()}\n"
        f"seed {config.seed}, device {result.settings['device']}, {config.threads} torch "
        f"thread(s); {', '.join(f'{k} {v}' for k, v in result.settings['versions'].items())}\n"
        f"time: {', '.join(f'{k} {v:.1f}s' for k, v in result.seconds.items())}",
        highlight=False,
    )
    if files.output is not None:
        console.print(f"output written to {files.output}", highlight=False)
    else:
        console.print(
            "output NOT written (pass --allow-partial to write it anyway)", highlight=False
        )
    if files.manifest is not None:
        console.print(f"manifest written to {files.manifest}", highlight=False)


def preprocess_command(
    data: DataPath,
    protected: Protected,
    delta_f: Annotated[float, typer.Option(help="Bias threshold: S_B must be <= this.")] = 0.05,
    delta_r: Annotated[
        float, typer.Option(help="Robustness threshold: S_R must be >= this.")
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
            "panel's cross-fitted figures.",
            show_default=False,
        ),
    ] = None,
    annotate: Annotated[
        bool,
        typer.Option(
            "--annotate",
            metavar="",
            help="Add a froc_origin column (original, flipped, adversarial:<source row>).",
        ),
    ] = False,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            metavar="",
            help="Write the output even when the promise is not met (still exit 1).",
        ),
    ] = False,
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    fairness: Fairness = "parity",
    target_models: Annotated[
        str,
        typer.Option(
            help="The outside trainers judged (comma-separated): mlp:H..., lr (logistic "
            "regression), hgb (scikit-learn HistGradientBoosting, defaults)."
        ),
    ] = "mlp:64,lr,hgb",
    robustness: Annotated[
        str,
        typer.Option(
            help="S_R judged: whitebox (each model's own gradient; trees: transfer) or transfer "
            "(attacks crafted on an independent network)."
        ),
    ] = "whitebox",
    folds: Annotated[int, typer.Option(help="Cross-fitting folds of the estimate.")] = 3,
    flip_scale: Annotated[
        float,
        typer.Option(
            help="Label flips, as a share of the count that equalises the groups' favourable "
            "label rates."
        ),
    ] = 0.93,
    augment_share: Annotated[
        float, typer.Option(help="Share of the rows that get an adversarial copy.")
    ] = 0.4,
    augment_rounds: Annotated[
        int,
        typer.Option(help="Rounds of adversarial copies, each against the retrained surrogate."),
    ] = 8,
    surrogate: Annotated[
        str, typer.Option(help="Network the adversarial copies are crafted against.")
    ] = "mlp:64",
    epochs: Annotated[int, typer.Option(help="Surrogate epochs of the first round.")] = 200,
    warm_epochs: Annotated[int, typer.Option(help="Surrogate epochs of each later round.")] = 60,
    lr: LearningRate = 0.01,
    transfer_source: Annotated[
        str, typer.Option(help="Network the transfer attacks are crafted on.")
    ] = "mlp:64",
    attack_space: AttackSpaceOpt = "valid",
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    cat_budget: CatBudget = 0,
    attack: Annotated[
        str,
        typer.Option(
            "--attack",
            help="Attacks the panel's S_R is measured with, comma-separated: fgsm, pgd, apgd; "
            "a row is robust only if no attack breaks it.",
        ),
    ] = "pgd",
    restarts: Restarts = 1,
    robust_metric: RobustMetricOpt = "accuracy",
    margin: Annotated[
        float,
        typer.Option(help="Judge against the thresholds tightened by this many standard errors."),
    ] = 1.0,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 1,
    json_output: JsonFlag = False,
    quiet: Quiet = False,
) -> None:
    """Rewrite a training set so that models an outside trainer fits on it are fair and robust.

    FRoC-PRE over the whole file: labels flipped by their influence on the bias (eqs. 17-21)
    and valid adversarial copies added (eq. 22), made in rounds against a retrained surrogate.
    The promise is judged as the trainer would see it: every --target-models model, fitted
    plainly to the output, must meet both thresholds in a K-fold cross-fitted estimate (fitted
    without a fold's rows and their copies, measured on the fold's original rows). Exit 1 when
    any does not; the output is then written only with --allow-partial.

    Example: froc preprocess data.csv --protected gender --delta-f 0.05 --delta-r 0.6
    """

    def run() -> int:
        check_threads(threads)
        spec = data_spec(
            protected=protected,
            label=label,
            positive=positive,
            protected_group=protected_group,
            drop=drop,
            immutable=immutable,
            dropna=dropna,
            min_group_size=min_group_size,
            fairness=fairness,
        )
        threat = threat_model(
            eps=eps,
            pgd_steps=pgd_steps,
            attack_target="true",
            attack_space=attack_space,
            cat_budget=cat_budget,
            attacks=attack,
            restarts=restarts,
            robust_metric=robust_metric,
        )
        # Before torch and pandas load: the input errors the engine would find first.
        check_table_file(data)
        check_csv_columns(data, spec)
        target = output if output is not None else default_output_path(data)
        check_table_suffix(target, "--output")
        check_outputs({"DATA": data}, {"--output": target, "--manifest": manifest}, quiet=quiet)
        from froc_cli.core._io import read_csv_text, read_table
        from froc_cli.methods._edit_plan import EditSettings
        from froc_cli.methods._panel import parse_panel
        from froc_cli.metrics._rules import floor_warning
        from froc_cli.reports._manifest import write_preprocess_outputs
        from froc_cli.reports._markdown import too_small_warning
        from froc_cli.workflows._preprocess import TrainerFileConfig, prepare_trainer_file

        config = TrainerFileConfig(
            data=spec,
            delta_f=delta_f,
            delta_r=delta_r,
            threat=threat,
            robustness=robustness,  # type: ignore[arg-type]  # validated in __post_init__
            target_models=parse_panel(target_models),
            folds=folds,
            edits=EditSettings(
                flip_scale=flip_scale,
                augment_share=augment_share,
                augment_rounds=augment_rounds,
                surrogate=surrogate,
                surrogate_epochs=epochs,
                warm_epochs=warm_epochs,
                lr=lr,
            ),
            transfer_source=transfer_source,
            margin=margin,
            seed=seed,
            device=device,
            threads=threads,
        )
        frame = read_table(data)
        progress = progress_printer(quiet or json_output)
        result = prepare_trainer_file(frame, config, source=str(data), progress=progress)
        warn(too_small_warning(result.protected, min_group_size), quiet)
        floors = [
            figures.get("majority_floor", float("nan")) for figures in result.estimate.mean.values()
        ]
        floor_note = floor_warning(
            delta_r, {"majority_floor": max(floors, default=float("nan"))}, threat.robust_metric
        )
        warn(floor_note and f"warning: {floor_note}", quiet)
        as_written = None
        if data.suffix.lower() == ".csv" and target.suffix.lower() == ".csv":
            as_written = (frame, read_csv_text(data))
        files = write_preprocess_outputs(
            result,
            input_path=data,
            output_path=target if (result.met or allow_partial) else None,
            manifest_path=manifest,
            annotate=annotate,
            input_as_written=as_written,
        )
        exit_code = EXIT_OK if result.met else EXIT_CONSTRAINTS_NOT_MET
        if json_output:
            payload = result.to_dict()
            payload["output_file"] = None if files.output is None else str(files.output)
            payload["manifest_file"] = None if files.manifest is None else str(files.manifest)
            if floor_note:
                payload["warnings"] = [floor_note]
            payload["exit_code"] = exit_code
            typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        else:
            _print_result(stdout_console(), result, config, files)
        return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
