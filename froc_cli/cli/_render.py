"""Rich tables for results."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from froc_cli.metrics._rules import GateResult
from froc_cli.reports._markdown import (
    ATTACK_COLUMNS,
    attack_rows,
    format_number,
    group_cells,
    group_columns,
    groups_description,
    metric_label,
)
from froc_cli.workflows._audit import AuditResult

__all__ = ["print_audit", "print_gate", "print_groups"]


def print_audit(console: Console, result: AuditResult) -> None:
    """Metrics table, per-group table and the settings that produced them."""
    intervals = result.evaluation.intervals
    table = Table(title=f"froc audit: {result.source}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if intervals:
        table.add_column("95% CI", justify="right")
    for key, value in result.metrics.items():
        cells = [metric_label(key, result.fairness), format_number(value)]
        if intervals:
            low, high = intervals.get(key, (math.nan, math.nan))
            cells.append(
                f"[{format_number(low)}, {format_number(high)}]" if key in intervals else ""
            )
        table.add_row(*cells)
    console.print(table)

    if result.attacks:
        attacks = Table(title="attacks (a row is robust when none broke it)", title_justify="left")
        for column in ATTACK_COLUMNS:
            attacks.add_column(column, justify="left" if column == "attack" else "right")
        for row in attack_rows(result.attacks):
            attacks.add_row(*row)
        console.print(attacks)
        for record in result.attacks:
            console.print(f"{record['attack']}: {record['method']}", highlight=False)

    print_groups(console, result.evaluation.groups, result.protected_column,
                 result.protected_values)  # fmt: skip

    settings = result.settings
    versions = ", ".join(f"{k} {v}" for k, v in settings["versions"].items())
    who = groups_description(
        result.protected, result.protected_values, result.protected_group_defaulted
    )
    console.print(
        f"label: [bold]{result.label_column}[/], favourable = {result.positive_value!r}\n"
        f"{who}\n"
        f"model: {result.model}; rows: "
        f"{', '.join(f'{k} {v}' for k, v in result.rows.items())}\n"
        f"threat model: {result.threat.describe() if result.threat else 'none (fairness only)'}\n"
        f"seed {settings['seed']}, device {settings['train']['device']}, "
        f"{settings['threads']} torch thread(s); {versions}\n"
        f"time: {', '.join(f'{k} {v:.1f}s' for k, v in result.seconds.items())}",
        highlight=False,
        markup=True,
    )


def print_groups(
    console: Console,
    groups: dict[str, dict[str, float]],
    column: str,
    values: tuple[str, ...],
    title: str = "per group",
) -> None:
    """The per-group table: a=0 and the rest (binary), or every judged group by name."""
    columns = group_columns(groups)
    table = Table(title=title, title_justify="left")
    table.add_column("group", justify="left")
    for heading, _ in columns:
        table.add_column(heading, justify="right")
    for name, figures in groups.items():
        if name == "protected" and "unprotected" in groups:
            who = f"a=0 {column} in {{{', '.join(values)}}}"
        elif name == "unprotected" and "protected" in groups:
            who = "a=1 rest"
        else:
            who = name
        table.add_row(who, *group_cells(figures, columns))
    console.print(table)


def print_gate(
    console: Console, gate: GateResult, fairness: str = "parity", warning: str | None = None
) -> None:
    """The CI gate's checks and verdict (and the floor warning, when there is one)."""
    if not gate.checks:
        return
    table = Table(title="gate", title_justify="left")
    for column in ("check", "value", "threshold", "result"):
        table.add_column(column)
    for check in gate.checks:
        table.add_row(
            metric_label(check.metric, fairness),
            format_number(check.value),
            f"{check.comparison} {check.threshold:g}",
            "[green]pass[/]" if check.passed else "[red]FAIL[/]",
        )
    console.print(table)
    console.print("[green]gate passed[/]" if gate.passed else "[red]gate FAILED (exit 1)[/]")
    if warning:
        console.print(f"[yellow]warning: {warning}[/]", highlight=False)
