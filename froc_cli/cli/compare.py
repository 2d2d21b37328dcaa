"""``froc compare``: every method side by side, the sequential baselines, the trade-off plot."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from froc_cli.core._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK, InputError

from ._common import (
    AttackSpaceOpt,
    AttackTargetOpt,
    BatchSize,
    CatBudget,
    DataPath,
    Device,
    Drop,
    DropNa,
    Epochs,
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
    ReportPath,
    Seed,
    TargetModel,
    Threads,
    check_outputs,
    check_threads,
    data_spec,
    guarded,
    process_group,
    progress_printer,
    split_list,
    stdout_console,
    threat_model,
    train_config,
    warn,
)
from ._defaults import DEFAULT_LAMBDAS, METHOD_NAMES
from ._precheck import check_csv_columns, check_table_file

if TYPE_CHECKING:
    from rich.console import Console

    from froc_cli.workflows._compare import CompareResult

__all__ = ["compare_command", "parse_numbers"]

_DEFAULT_LAMBDAS_TEXT = ",".join(f"{value:g}" for value in DEFAULT_LAMBDAS)


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    """``"0,0.01, 0.5"`` -> (0.0, 0.01, 0.5); a bad entry is an InputError naming the option."""
    values: list[float] = []
    for part in split_list(text):
        try:
            values.append(float(part))
        except ValueError:
            raise InputError(f"{option} {text!r}: {part!r} is not a number") from None
    if not values:
        raise InputError(f"{option} {text!r}: expected comma-separated numbers")
    return tuple(values)


def _command_line() -> str | None:
    """The command as typed (for the report), when run as ``froc`` or ``python -m froc_cli``."""
    program = Path(sys.argv[0]).name
    if program == "froc":
        return shlex.join(["froc", *sys.argv[1:]])
    if program == "__main__.py":
        return shlex.join(["python", "-m", "froc_cli", *sys.argv[1:]])
    return None


_SHORT_TITLES: dict[str, str] = {
    "accuracy": "acc.",
    "bias_score": "S_B",
    "robustness_fgsm": "S_R FGSM",
    "robustness_pgd": "S_R PGD",
    "transfer_fgsm": "FGSM transf.",
    "transfer_pgd": "PGD transf.",
    "robustness_balanced": "bal.",
    "robustness_retention": "retain",
    "majority_floor": "floor",
}


def _print_table(console: Console, result: CompareResult) -> None:
    from rich.table import Table

    from froc_cli.reports._compare_markdown import COLUMN_TITLES, both_met_text, format_mean_sd
    from froc_cli.workflows._compare import TABLE_METRICS

    cfg = result.config
    seeds = ", ".join(map(str, cfg.seeds))
    table = Table(
        title=f"froc compare: {result.source} (seed{'s' if cfg.repeats > 1 else ''} {seeds}"
        + (", mean ± sd" if cfg.repeats > 1 else "")
        + ")",
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for key in TABLE_METRICS:
        table.add_column(_SHORT_TITLES.get(key, COLUMN_TITLES[key]), justify="right")
    table.add_column("both met", justify="center", no_wrap=True)
    table.add_column("time (s)", justify="right")
    settings: list[str] = []
    for summary in result.summaries:
        if summary.runs == 0:
            table.add_row(
                summary.label,
                *["n/a"] * len(TABLE_METRICS),
                "[red]failed[/]",
                f"{summary.seconds:.1f}",
            )
            continue
        cells = [format_mean_sd(summary, key) for key in TABLE_METRICS]
        bias_ok = summary.mean.get("bias_score", float("nan")) <= cfg.delta_f
        robust_ok = summary.mean.get("robustness_pgd", float("nan")) >= cfg.delta_r
        at_bias, at_robust = (
            TABLE_METRICS.index("bias_score"),
            TABLE_METRICS.index("robustness_pgd"),
        )
        cells[at_bias] = f"[{'green' if bias_ok else 'red'}]{cells[at_bias]}[/]"
        cells[at_robust] = f"[{'green' if robust_ok else 'red'}]{cells[at_robust]}[/]"
        colour = "green" if summary.always_meets_both else "red"
        table.add_row(
            summary.label,
            *cells,
            f"[{colour}]{both_met_text(summary)}[/]",
            f"{summary.seconds:.1f}",
        )
        settings.append(f"  {summary.label}: {'; '.join(dict.fromkeys(summary.settings))}")
    console.print(table)
    if settings:
        console.print("settings reported:\n" + "\n".join(settings), highlight=False)
    for repeat in result.repeats:
        for row in repeat.rows:
            if row.reason:
                console.print(
                    f"[red]{row.label} failed (seed {row.seed}):[/] {row.reason}", highlight=False
                )
        for note in repeat.notes:
            console.print(f"note (seed {repeat.seed}): {note}", highlight=False)
    counts = result.repeats[0].counts
    from froc_cli.reports._markdown import groups_description

    if "groups" in result.protected or "fairness" in result.protected:
        console.print(
            groups_description(result.protected_block(), result.protected_values, False),
            highlight=False,
        )
    console.print(
        f"constraints: S_B <= {cfg.delta_f:g} and S_R(PGD, white-box) >= {cfg.delta_r:g} on the "
        f"test split; settings chosen on the validation split\n"
        f"threat model: {cfg.threat.describe()}\n"
        f"rows: {', '.join(f'{k} {v}' for k, v in counts.items())}; "
        f"target {cfg.train.model}, {cfg.train.epochs} epochs; "
        f"seed{'s' if cfg.repeats > 1 else ''} {', '.join(map(str, cfg.seeds))}, "
        f"{result.settings['threads']} torch thread(s); "
        f"total {result.seconds:.1f}s",
        highlight=False,
    )
    verdict = (
        "[green]at least one method meets both constraints[/]"
        if result.any_meets_both
        else "[red]no method meets both constraints (exit 1)[/]"
    )
    console.print(verdict)


def compare_command(
    data: DataPath,
    protected: Protected,
    delta_f: Annotated[
        float, typer.Option(help="Bias threshold: S_B must be <= this.", show_default=False)
    ],
    delta_r: Annotated[
        float,
        typer.Option(help="Robustness threshold: S_R(PGD) must be >= this.", show_default=False),
    ],
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    fairness: Fairness = "parity",
    methods: Annotated[
        str | None,
        typer.Option(
            help=f"Methods to run, comma-separated (default: all): {', '.join(METHOD_NAMES)}.",
            show_default=False,
        ),
    ] = None,
    lambdas: Annotated[
        str, typer.Option(help="Sequential methods' adversarial weight grid (paper 7.2).")
    ] = _DEFAULT_LAMBDAS_TEXT,
    adv_epochs: Annotated[
        int,
        typer.Option(
            help="Sequential methods: epochs each lambda > 0 continues from the lambda = 0 "
            "fit (FbR: PGD adversarial training; RbF: the PGD-augmented data)."
        ),
    ] = 50,
    froc_in_budget: Annotated[
        float, typer.Option(help="FRoC-IN: seconds its lambda search may start fits for.")
    ] = 120.0,
    froc_pre_rounds: Annotated[
        int, typer.Option(help="FRoC-PRE: most rounds of Algorithm 1.")
    ] = 150,
    repeats: Annotated[
        int, typer.Option(help="Seeds (seed, seed+1, ...): mean and sd over them.")
    ] = 1,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            metavar="",
            help="Also run FRoC-IN over a lambda grid and FRoC-PRE over a delta grid and "
            "draw their fronts (slow).",
        ),
    ] = False,
    sweep_lambda_f: Annotated[str, typer.Option(help="--sweep: lambda_F values.")] = "0,0.5,1,2",
    sweep_lambda_r: Annotated[str, typer.Option(help="--sweep: lambda_R values.")] = "0,0.1,0.3,1",
    sweep_delta_f: Annotated[str, typer.Option(help="--sweep: delta_F values.")] = "0.02,0.05,0.1",
    sweep_delta_r: Annotated[str, typer.Option(help="--sweep: delta_R values.")] = "0.3,0.5,0.7",
    target_model: TargetModel = "mlp:128",
    epochs: Epochs = 300,
    lr: LearningRate = 0.01,
    batch_size: BatchSize = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction the table is on.")] = 0.3,
    val_size: Annotated[
        float, typer.Option(help="Fraction of the training part kept to choose settings.")
    ] = 0.2,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 1,
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    attack_target: AttackTargetOpt = "true",
    attack_space: AttackSpaceOpt = "continuous",
    cat_budget: CatBudget = 1,
    json_output: JsonFlag = False,
    report: ReportPath = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Also draw accuracy over the (S_R, S_B) plane with the (delta_F, delta_R) "
            "box (.png, .svg or .pdf; needs matplotlib: the 'plot' extra).",
            show_default=False,
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Compare every method side by side on one seeded split (paper Section 7).

    Methods: plain target; the sequential baselines (paper 7.1-7.2) rbf-rw, rbf-dir (PGD
    augmentation, then Reweighing / Disparate Impact Remover) and fbr-rw, fbr-dir (the fairness
    pre-processing, then PGD adversarial training), each over the lambda grid; massaging
    (Kamiran-Calders relabelling to equal group label rates, then the plain target); FRoC-IN at
    the lambdas its search chooses; FRoC-PRE with a fresh target trained on its output.

    One row per method: accuracy, S_B, S_R under FGSM and PGD (white-box and transfer),
    majority floor, whether S_B <= delta_F and S_R(PGD) >= delta_R both hold on the test
    split, wall time. Settings are chosen on a validation split; every setting tried is in
    --json and --report. A failing method is reported in its row with the reason.

    Exit 0 when some method meets both constraints on every seed, 1 when none does.

    Example: froc compare sample_data/synthetic.csv --protected gender --delta-f 0.1 --delta-r 0.5

    Example: froc compare data.csv --protected sex --delta-f 0.05 --delta-r 0.6 --plot out.png
    """

    def run() -> int:
        if plot is not None:
            from froc_cli.reports._plot import check_plot_target

            check_plot_target(plot)
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
            attack_target=attack_target,
            attack_space=attack_space,
            cat_budget=cat_budget,
        )
        train = train_config(
            model=target_model,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            device=device,
        )
        # Before torch and pandas load: the input errors the engine would find first.
        check_threads(threads)
        check_table_file(data)
        check_csv_columns(data, spec)
        check_outputs({"DATA": data}, {"--report": report, "--plot": plot}, quiet=quiet)
        from froc_cli.core._io import write_text_atomic
        from froc_cli.metrics._rules import floor_warning
        from froc_cli.reports._compare_markdown import render_compare_markdown
        from froc_cli.reports._markdown import too_small_warning
        from froc_cli.reports._plot import plot_compare
        from froc_cli.workflows._compare import CompareConfig, compare_file

        config = CompareConfig(
            data=spec,
            delta_f=delta_f,
            delta_r=delta_r,
            threat=threat,
            train=train,
            test_size=test_size,
            val_size=val_size,
            repeats=repeats,
            lambdas=parse_numbers(lambdas, "--lambdas"),
            adv_epochs=adv_epochs,
            froc_in_budget_s=froc_in_budget,
            froc_pre_rounds=froc_pre_rounds,
            threads=threads,
            methods=split_list(methods) if methods is not None else (),
            sweep=sweep,
            sweep_lambdas_f=parse_numbers(sweep_lambda_f, "--sweep-lambda-f"),
            sweep_lambdas_r=parse_numbers(sweep_lambda_r, "--sweep-lambda-r"),
            sweep_deltas_f=parse_numbers(sweep_delta_f, "--sweep-delta-f"),
            sweep_deltas_r=parse_numbers(sweep_delta_r, "--sweep-delta-r"),
        )
        if methods is not None and not config.methods:
            raise InputError(f"--methods {methods!r}: expected some of {', '.join(METHOD_NAMES)}")
        with process_group(device) as speaking:
            mute = quiet or not speaking
            progress = progress_printer(mute)  # one line per step on stderr
            result = compare_file(data, config, progress=progress, command=_command_line())
            small = result.too_small()
            if small:
                warn(
                    too_small_warning(
                        {"column": result.protected_column, "too_small": small}, min_group_size
                    ),
                    mute,
                )
            floors = [s.mean.get("majority_floor", float("nan")) for s in result.summaries]
            floor_note = floor_warning(
                delta_r, {"majority_floor": max(floors, default=float("nan"))}
            )
            warn(floor_note and f"warning: {floor_note}", mute)
            exit_code = EXIT_OK if result.any_meets_both else EXIT_CONSTRAINTS_NOT_MET
            if not speaking:  # under torchrun only rank 0 writes and prints
                return exit_code
            if plot is not None:
                plot_compare(result, plot)
            if report is not None:
                plot_link = None
                if plot is not None:
                    try:
                        plot_link = str(plot.resolve().relative_to(report.resolve().parent))
                    except ValueError:
                        plot_link = str(plot.resolve())
                write_text_atomic(render_compare_markdown(result, plot=plot_link), report)
            if json_output:
                payload = result.to_dict()
                if floor_note:
                    payload["warnings"] = [floor_note]
                payload["exit_code"] = exit_code
                typer.echo(json.dumps(payload, indent=2, allow_nan=False))
            else:
                _print_table(stdout_console(), result)
            return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
