"""Rich tables for results."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from froc_cli.metrics._rules import GateResult
from froc_cli.reports._markdown import METRIC_LABELS, format_number
from froc_cli.workflows._audit import AuditResult

__all__ = ["print_audit", "print_gate"]


def print_audit(console: Console, result: AuditResult) -> None:
    """Metrics table, per-group table and the settings that produced them."""
    intervals = result.evaluation.intervals
    table = Table(title=f"froc audit: {result.source}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if intervals:
        table.add_column("95% CI", justify="right")
    for key, value in result.metrics.items():
        cells = [METRIC_LABELS.get(key, key), format_number(value)]
        if intervals:
            low, high = intervals.get(key, (math.nan, math.nan))
            cells.append(
                f"[{format_number(low)}, {format_number(high)}]" if key in intervals else ""
            )
        table.add_row(*cells)
    console.print(table)

    groups = Table(title="per group", title_justify="left")
    for column in (
        "group",
        "rows",
        "base rate",
        "favourable rate",
        "accuracy",
        "robust acc. FGSM",
        "robust acc. PGD",
    ):
        groups.add_column(column, justify="left" if column == "group" else "right")
    for name, figures in result.evaluation.groups.items():
        values = ", ".join(result.protected_values)
        who = (
            f"a=0 {result.protected_column} in {{{values}}}" if name == "protected" else "a=1 rest"
        )
        groups.add_row(
            who,
            str(int(figures["rows"])),
            format_number(figures["base_rate"]),
            format_number(figures["favourable_rate"]),
            format_number(figures["accuracy"]),
            format_number(figures.get("robust_accuracy_fgsm")),
            format_number(figures.get("robust_accuracy_pgd")),
        )
    console.print(groups)

    settings = result.settings
    versions = ", ".join(f"{k} {v}" for k, v in settings["versions"].items())
    default_note = (
        " (lowest favourable rate, chosen by default)" if result.protected_group_defaulted else ""
    )
    console.print(
        f"label: [bold]{result.label_column}[/], favourable = {result.positive_value!r}\n"
        f"protected group a=0: {result.protected_column} in "
        f"{{{', '.join(result.protected_values)}}}{default_note}\n"
        f"model: {result.model}; rows: "
        f"{', '.join(f'{k} {v}' for k, v in result.rows.items())}\n"
        f"threat model: {result.threat.describe() if result.threat else 'none (fairness only)'}\n"
        f"seed {settings['seed']}, device {settings['train']['device']}, "
        f"{settings['threads']} torch thread(s); {versions}\n"
        f"time: {', '.join(f'{k} {v:.1f}s' for k, v in result.seconds.items())}",
        highlight=False,
        markup=True,
    )


def print_gate(console: Console, gate: GateResult) -> None:
    """The CI gate's checks and verdict."""
    if not gate.checks:
        return
    table = Table(title="gate", title_justify="left")
    for column in ("check", "value", "threshold", "result"):
        table.add_column(column)
    for check in gate.checks:
        table.add_row(
            METRIC_LABELS.get(check.metric, check.metric),
            format_number(check.value),
            f"{check.comparison} {check.threshold:g}",
            "[green]pass[/]" if check.passed else "[red]FAIL[/]",
        )
    console.print(table)
    console.print("[green]gate passed[/]" if gate.passed else "[red]gate FAILED (exit 1)[/]")
