"""``froc train-in``: FRoC-IN training (eq. 10), with given lambdas or searched for thresholds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from froc_cli.core._config import DataSpec
from froc_cli.core._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK, InputError

from ._common import (
    Attacks,
    AttackSpaceOpt,
    AttackTargetOpt,
    CatBudget,
    DataPath,
    DeltaF,
    DeltaR,
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
    TargetModel,
    Threads,
    TrainAttack,
    check_outputs,
    check_threads,
    data_spec,
    guarded,
    process_group,
    progress_printer,
    stdout_console,
    threat_model,
    train_config,
    warn,
)
from ._defaults import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS
from ._precheck import check_csv_columns, check_table_file, check_table_suffix

if TYPE_CHECKING:
    from rich.console import Console

    from froc_cli.methods._froc_in import (
        EpochProgress,
        FitOutcome,
        Frontier,
        Relaxation,
        Trial,
    )
    from froc_cli.workflows._train_in import TrainInResult

__all__ = ["train_in_command"]

# FrocInConfig's message when neither is given (tests/cli/test_fast_cli.py holds them equal).
NO_WEIGHTS_NOR_THRESHOLDS = (
    "give --lambda-f/--lambda-r (weights of eq. 10) or --delta-f/--delta-r "
    "(thresholds to search the weights for)"
)

_VERDICT_TEXT = {
    "met": "[green]thresholds met[/] on validation and on the held-out test split",
    "unconstrained": "[green]trained[/] with the given lambdas (no thresholds to check)",
    "test_failed": "[red]thresholds met on validation but NOT on the held-out test split[/]",
    "infeasible": "[red]INFEASIBLE[/]: no setting met both thresholds on validation; "
    "the closest point found is shown",
    "degenerate": "[red]DEGENERATE[/]: the model's decisions are (almost) all one class or "
    "no better than the majority-class floor",
}

_METRICS = (
    "accuracy",
    "majority_floor",
    "bias_score",
    "robustness_fgsm",
    "robustness_pgd",
    "robustness_apgd",
    "robustness",
    "robustness_balanced",
    "robustness_retention",
    "disparate_impact",
)


@contextmanager
def _live_progress(
    enabled: bool,
) -> Iterator[tuple[Callable[[EpochProgress], None] | None, Callable[[str], None]]]:
    """A rich progress bar on stderr showing the fit, epoch, S_B and S_R as they come, and the
    function that prints stage messages above it (only on a terminal: piped stderr gets the
    one-line stage messages alone)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None, progress_printer(not enabled)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=16),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("{task.fields[scores]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("starting", total=1, scores="")
    scores = {"text": ""}

    def update(p: EpochProgress) -> None:
        if p.bias_score is not None and p.robustness is not None:
            scores["text"] = f"validation S_B {p.bias_score:.3f} S_R {p.robustness:.3f}"
        progress.update(
            task,
            total=p.epochs,
            completed=p.epoch,
            description=f"fit {p.trial + 1} lambda_F={p.lambda_f:.3g} lambda_R={p.lambda_r:.3g}",
            scores=scores["text"],
        )

    def message(text: str) -> None:
        progress.console.print(f"froc: {text}", highlight=False, markup=False)

    with progress:
        yield update, message


def _unreachable_bias_target(delta_f: float | None, target: float | None) -> str | None:
    """A warning when the margin leaves (almost) nothing of delta_F: the search then aims at a
    gap the validation split cannot tell from noise, which only a constant model meets."""
    if delta_f is None or target is None or delta_f <= 0 or target > delta_f / 4:
        return None
    return (
        f"--delta-f {delta_f:g} tightened by the margin leaves an S_B target of {target:.3f} on "
        "validation: the smallest groups' rates are too uncertain there to show a gap below "
        "delta_F (each judged group needs more rows, above all for opportunity and odds); "
        "lower --margin, raise --min-group-size to judge only larger groups, or ask a larger "
        "--delta-f"
    )


def _print_result(console: Console, result: TrainInResult, model_note: str) -> None:
    from rich.table import Table

    from froc_cli.metrics._rules import robustness_key
    from froc_cli.reports._markdown import format_number, groups_description, metric_label

    from ._render import print_groups

    froc = result.config.froc
    prepared = result.prepared
    outcome = result.outcome
    given = "given" if outcome.mode == "given" else "chosen by the search"
    table = Table(title=f"froc train-in: {result.source}", title_justify="left")
    table.add_column("metric")
    table.add_column("threshold", justify="right")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    gated = robustness_key(result.test.metrics, froc.threat.robust_metric)
    thresholds = {"bias_score": froc.delta_f, gated: froc.delta_r}
    for key in _METRICS:
        if key not in result.test.metrics:  # the binary ratio, when every group is judged
            continue
        threshold = thresholds.get(key)
        comparison = "<=" if key == "bias_score" else ">="
        table.add_row(
            metric_label(key, froc.fairness),
            "" if threshold is None else f"{comparison} {threshold:g}",
            format_number(result.validation.metrics.get(key)),
            format_number(result.test.metrics.get(key)),
        )
    console.print(table)
    if not prepared.binary or froc.fairness != "parity":
        print_groups(console, result.test.groups, prepared.protected_column,
                     prepared.protected_values, title="per group (test)")  # fmt: skip
    console.print(
        f"lambda_F = [bold]{outcome.lambda_f:.4g}[/], lambda_R = [bold]{outcome.lambda_r:.4g}[/]"
        f" ({given}); training attack {froc.attack.upper()}",
        highlight=False,
    )
    if outcome.mode == "search":
        _print_search(console, result)
    settings = result.settings
    versions = ", ".join(f"{k} {v}" for k, v in settings["versions"].items())
    console.print(
        f"verdict: {_VERDICT_TEXT[result.verdict]}\n"
        f"label: [bold]{prepared.label_column}[/], favourable = {prepared.positive_value!r}; "
        f"{groups_description(prepared.protected_summary(), prepared.protected_values, False)}\n"
        f"rows: {', '.join(f'{k} {v}' for k, v in result.rows.items())}\n"
        f"threat model: {froc.threat.describe()}\n"
        f"seed {settings['seed']}, device {settings['train']['device']}, "
        f"{settings['train']['threads']} torch thread(s); {versions}\n"
        f"time: {', '.join(f'{k} {v:.1f}s' for k, v in result.seconds.items())}\n"
        f"{model_note}",
        highlight=False,
    )


# The search path shows at most this many rows (a constrained run scores every epoch).
_PATH_ROWS = 16


def _shown_trials(outcome: FitOutcome) -> list[Trial]:
    """The trials the search-path table lists: all of a grid search's fits; of a constrained
    run's epochs, an evenly spaced selection with the first, the chosen and the last."""
    trials = outcome.trials
    if len(trials) <= _PATH_ROWS:
        return list(trials)
    step = math.ceil(len(trials) / (_PATH_ROWS - 2))
    keep = {0, outcome.chosen.index, len(trials) - 1, *range(0, len(trials), step)}
    return [trials[i] for i in sorted(keep)]


def _print_search(console: Console, result: TrainInResult) -> None:
    """The search path, the targets, the smallest relaxation and the frontier."""
    from rich.table import Table

    from froc_cli.reports._markdown import format_number

    froc = result.config.froc
    outcome = result.outcome
    constrained = outcome.search == "constrained"
    shown = _shown_trials(outcome)
    title = "search path (validation)"
    if constrained:
        title = (
            f"constrained search path (validation; lambdas during each epoch; "
            f"{len(shown)} of {len(outcome.trials)} epochs shown)"
        )
    trials = Table(title=title, title_justify="left")
    first = "epoch" if constrained else "fit"
    for column in (first, "lambda_F", "lambda_R", "epochs", "acc", "S_B", "S_R", "meets deltas"):
        if constrained and column == "epochs":
            continue
        trials.add_column(column, justify="right")
    for trial in shown:
        score = trial.score
        flag = "yes" if trial.meets_thresholds else "no"
        if score.near_constant:
            flag = "near constant"
        elif score.below_floor:
            flag = "~ floor"
        marker = " *" if trial.index == outcome.chosen.index else ""
        cells = [
            f"{(trial.epochs_run if constrained else trial.index + 1)}{marker}",
            f"{trial.lambda_f:.4g}",
            f"{trial.lambda_r:.4g}",
            *([] if constrained else [f"{trial.best_epoch}/{trial.epochs_run}"]),
            format_number(score.accuracy),
            format_number(score.bias_score),
            format_number(score.robustness),
            flag,
        ]
        trials.add_row(*cells)
    console.print(trials)
    targets = outcome.targets
    console.print(
        "search targets on validation (thresholds tightened by "
        f"{froc.search_margin:g} standard errors): S_B <= {format_number(targets['bias_score'])}, "
        f"S_R >= {format_number(targets['robustness'])}; * = chosen; never a success: "
        "near constant (rarer decision < 5% of rows) or ~ floor (accuracy within 2 standard "
        "errors of the majority-class floor)",
        highlight=False,
    )
    relaxation = outcome.relaxation
    if relaxation is not None and not outcome.feasible:
        console.print(_relaxation_text(relaxation, froc.delta_f, froc.delta_r), highlight=False)
    if outcome.frontier is not None:
        _print_frontier(console, outcome.frontier)


def _relaxation_text(relaxation: Relaxation, delta_f: float | None, delta_r: float | None) -> str:
    """One line: the smallest relaxations the search's models meet on validation."""
    options = []
    if relaxation.delta_f is not None and delta_f is not None:
        options.append(f"--delta-f {relaxation.delta_f:g} (delta_R kept)")
    if relaxation.delta_r is not None and delta_r is not None:
        options.append(f"--delta-r {relaxation.delta_r:g} (delta_F kept)")
    closest_f, closest_r = relaxation.closest
    both = ", ".join(
        f"--{name} {value:g}"
        for name, value in (("delta-f", closest_f), ("delta-r", closest_r))
        if value is not None
    )
    options.append(f"{both} (the closest point)")
    return "smallest relaxation met on validation: " + "; or ".join(options)


def _print_frontier(console: Console, frontier: Frontier) -> None:
    from rich.table import Table

    from froc_cli.reports._markdown import format_number

    table = Table(
        title=f"frontier (validation; {frontier.epochs} warm-started epochs a point)",
        title_justify="left",
    )
    for column in ("varied", "delta_F", "delta_R", "acc", "S_B", "S_R", "met"):
        table.add_column(column, justify="right")
    for varied, points in (("delta_F", frontier.bias), ("delta_R", frontier.robustness)):
        if len(points) < 2:
            continue
        for point in points:
            table.add_row(
                varied,
                "" if point.delta_f is None else f"{point.delta_f:g}",
                "" if point.delta_r is None else f"{point.delta_r:g}",
                format_number(point.accuracy),
                format_number(point.bias_score),
                format_number(point.robustness),
                "yes" if point.feasible else "no",
            )
    console.print(table)


def train_in_command(
    data: DataPath,
    protected: Protected,
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    fairness: Fairness = "parity",
    fairness_surrogate: Annotated[
        str,
        typer.Option(
            help="F over more than two groups: smoothmax (a soft largest gap) or deviation "
            "(the sum of each group's gap to the overall rate)."
        ),
    ] = "smoothmax",
    lambda_f: Annotated[
        float | None,
        typer.Option(help="Weight of the fairness term F (eq. 13).", show_default=False),
    ] = None,
    lambda_r: Annotated[
        float | None,
        typer.Option(help="Weight of the robustness term R (eq. 15).", show_default=False),
    ] = None,
    delta_f: DeltaF = None,
    delta_r: DeltaR = None,
    train_attack: TrainAttack = "pgd",
    attack: Attacks = "fgsm,pgd",
    restarts: Restarts = 1,
    robust_metric: RobustMetricOpt = "accuracy",
    target_model: TargetModel = "mlp:128",
    epochs: Annotated[
        int,
        typer.Option(
            help="Epochs of a fit from scratch (the constrained search: its one run, at most; "
            "the grid: its first fit, the warm-started ones fewer)."
        ),
    ] = DEFAULT_EPOCHS,
    lr: LearningRate = 0.01,
    batch_size: Annotated[
        int, typer.Option(help="Mini-batch size (0: full batch).")
    ] = DEFAULT_BATCH_SIZE,
    test_size: Annotated[
        float, typer.Option(help="Held-out test fraction (never used to choose).")
    ] = 0.3,
    val_size: Annotated[
        float, typer.Option(help="Validation fraction carved from the training part.")
    ] = 0.2,
    patience: Annotated[
        int, typer.Option(help="Stop a fit after this many scorings without gain (0: off).")
    ] = 4,
    margin: Annotated[
        float | None,
        typer.Option(
            help="Search: tighten the thresholds by this many validation standard errors "
            "(default: 1.5 for the constrained search, 1 for the grid).",
            show_default=False,
        ),
    ] = None,
    search: Annotated[
        str,
        typer.Option(
            help="How the lambdas are found for --delta-f/--delta-r: constrained (one training "
            "run; the lambdas are Lagrange multipliers moved by the validation violations, the "
            "best feasible epoch is kept) or grid (warm-started fits over a lambda grid)."
        ),
    ] = "constrained",
    max_fits: Annotated[
        int, typer.Option(help="Grid search: at most this many fits (keeps results reproducible).")
    ] = 16,
    search_budget: Annotated[
        float | None,
        typer.Option(
            help="Search: start no new fit after this many seconds (results then depend on the "
            "machine's speed).",
            show_default=False,
        ),
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 1,
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    attack_target: AttackTargetOpt = "true",
    attack_space: AttackSpaceOpt = "continuous",
    cat_budget: CatBudget = 1,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the model file (.froc).", show_default=False),
    ] = None,
    allow_infeasible: Annotated[
        bool,
        typer.Option(
            "--allow-infeasible",
            metavar="",
            help="Write the model even when the thresholds are not met (still exit 1).",
        ),
    ] = False,
    trace: Annotated[
        Path | None,
        typer.Option(
            help="Write a per-epoch trace (.csv/.parquet): loss terms, validation S_B and S_R, "
            "angle between the gradients of F and R.",
            show_default=False,
        ),
    ] = None,
    frontier: Annotated[
        Path | None,
        typer.Option(
            help="Also trace the frontier: reachable validation accuracy over a range of "
            "delta_F at the given delta_R and of delta_R at the given delta_F (one short "
            "constrained run each), drawn to this file (.png, .svg or .pdf; the 'plot' extra) "
            "and listed in the report and the JSON.",
            show_default=False,
        ),
    ] = None,
    frontier_epochs: Annotated[
        int, typer.Option(help="--frontier: epochs of each point's run (warm-started).")
    ] = 25,
    json_output: JsonFlag = False,
    quiet: Quiet = False,
) -> None:
    """Train a fair and robust model with FRoC-IN (loss of eq. 10: BCE + lambda_F F + lambda_R R).

    Give the weights (--lambda-f/--lambda-r) or thresholds (--delta-f/--delta-r): froc then
    searches the weights on a validation split carved from the training part (never the test
    split) for the most accurate model meeting both (by default in one constrained run whose
    weights are Lagrange multipliers), and reports the chosen weights with
    validation and held-out test scores. Exit 1 when no setting meets the thresholds (the
    closest point is shown) or the model is degenerate; the model file is then written only
    with --allow-infeasible.

    Example: froc train-in sample_data/synthetic.csv --protected gender --delta-f 0.1 --delta-r 0.5
    """

    def run() -> int:
        check_table_suffix(trace, "--trace")
        if frontier is not None:
            if delta_f is None and delta_r is None:
                raise InputError(
                    f"--frontier {frontier}: needs --delta-f or --delta-r (the thresholds whose "
                    "cost it traces)"
                )
            from froc_cli.reports._plot import check_plot_target

            check_plot_target(frontier, "--frontier")
        check_threads(threads)
        spec: DataSpec = data_spec(
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
            attacks=attack,
            restarts=restarts,
            robust_metric=robust_metric,
        )
        train = train_config(
            model=target_model,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size or None,
            seed=seed,
            device=device,
        )
        if all(value is None for value in (lambda_f, lambda_r, delta_f, delta_r)):
            raise InputError(NO_WEIGHTS_NOR_THRESHOLDS)  # FrocInConfig's first usage error
        # Before torch and pandas load: the input errors the engine would find first.
        check_table_file(data)
        check_csv_columns(data, spec)
        check_outputs(
            {"DATA": data},
            {"--output": output, "--trace": trace, "--frontier": frontier},
            quiet=quiet,
        )
        import pandas as pd

        from froc_cli.core._io import read_table, write_table_atomic
        from froc_cli.methods._froc_in import FrocInConfig
        from froc_cli.metrics._rules import floor_warning
        from froc_cli.reports._markdown import too_small_warning
        from froc_cli.workflows._train_in import (
            TrainInConfig,
            save_train_in_model,
            train_in_table,
        )

        config = TrainInConfig(
            data=spec,
            froc=FrocInConfig(
                lambda_f=lambda_f,
                lambda_r=lambda_r,
                delta_f=delta_f,
                delta_r=delta_r,
                attack=train_attack,  # type: ignore[arg-type]  # validated in __post_init__
                threat=threat,
                train=train,
                val_size=val_size,
                patience=patience,
                margin=margin,
                search_budget_s=search_budget,
                max_trials=max_fits,
                search=search,  # type: ignore[arg-type]  # validated in __post_init__
                frontier=frontier is not None,
                frontier_epochs=frontier_epochs,
                trace=trace is not None,
                fairness_surrogate=fairness_surrogate,  # type: ignore[arg-type]  # validated
            ),
            test_size=test_size,
            threads=threads,
        )
        with process_group(device) as speaking:
            mute = quiet or not speaking
            frame = read_table(data)
            with _live_progress(not (mute or json_output)) as (on_epoch, message):
                result = train_in_table(
                    frame, config, source=str(data), progress=message, on_epoch=on_epoch
                )
            warn(too_small_warning(result.prepared.protected_summary(), min_group_size), mute)
            notes = [
                note
                for note in (
                    floor_warning(delta_r, result.test.metrics, threat.robust_metric),
                    _unreachable_bias_target(delta_f, result.outcome.targets.get("bias_score")),
                )
                if note
            ]
            for note in notes:
                warn(f"warning: {note}", mute)
            exit_code = EXIT_OK if result.passed else EXIT_CONSTRAINTS_NOT_MET
            if not speaking:  # under torchrun only rank 0 writes and prints
                return exit_code
            if trace is not None:
                write_table_atomic(pd.DataFrame(result.outcome.trace), trace)
            if frontier is not None and result.outcome.frontier is not None:
                from froc_cli.reports._frontier_plot import plot_frontier

                plot_frontier(
                    result.outcome.frontier,
                    frontier,
                    delta_f=delta_f,
                    delta_r=delta_r,
                    title=f"froc train-in {data.name}: reachable accuracy (validation), "
                    f"seed {seed}",
                )
            written: Path | None = None
            if output is not None and (result.passed or allow_infeasible):
                written = save_train_in_model(result, output)
            if output is None:
                note = "model not saved (pass -o model.froc to save it)"
            elif written is not None:
                note = f"model written to {written}"
            else:
                note = f"model NOT written to {output} (pass --allow-infeasible to write it anyway)"
            if json_output:
                payload = result.to_dict()
                payload["model_file"] = None if written is None else str(written)
                payload["trace_file"] = None if trace is None else str(trace)
                payload["frontier_file"] = None if frontier is None else str(frontier)
                if notes:
                    payload["warnings"] = notes
                payload["exit_code"] = exit_code
                typer.echo(json.dumps(payload, indent=2, allow_nan=False))
            else:
                _print_result(stdout_console(), result, note)
            return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
