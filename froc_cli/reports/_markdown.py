"""Plain-text renderings of results (markdown reports); the CLI owns terminal rendering."""

from __future__ import annotations

import math
from typing import Any

from froc_cli.core._fairness import describe_fairness
from froc_cli.metrics._rules import GateResult
from froc_cli.workflows._audit import AuditResult

__all__ = [
    "ATTACK_COLUMNS",
    "GROUP_COLUMNS",
    "METRIC_LABELS",
    "attack_rows",
    "format_number",
    "group_cells",
    "group_columns",
    "groups_description",
    "metric_label",
    "render_audit_markdown",
    "too_small_warning",
]

METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy (clean)",
    "majority_floor": "Majority-class floor",
    "bias_score": "S_B bias score (eq. 7)",
    "robustness_fgsm": "S_R robustness, FGSM (eq. 8)",
    "robustness_pgd": "S_R robustness, PGD (eq. 8)",
    "bias_score_fgsm": "S_B under FGSM",
    "bias_score_pgd": "S_B under PGD",
    "disparate_impact": "Disparate-impact ratio (a=0 / a=1)",
    "equal_opportunity_difference": "Equal-opportunity difference (TPR a=0 - a=1)",
    "rows": "Rows audited",
    "rarer_decision_share": "Share of rows given the rarer decision",
    "robustness_apgd": "S_R robustness, APGD (eq. 8)",
    "bias_score_apgd": "S_B under APGD",
    "robustness_transfer": "S_R robustness, transfer attack (eq. 8; black-box)",
    "bias_score_transfer": "S_B under the transfer attack",
    "robustness_query": "S_R robustness, query attack (eq. 8; black-box)",
    "bias_score_query": "S_B under the query attack",
    "robustness": "S_R robustness, every attack (eq. 8; the gated figure)",
    "robustness_balanced": "S_R balanced (class mean; a constant model: 0.5)",
    "robustness_retention": "S_R retention (correct rows kept correct)",
    "bias_score_attacked": "S_B under the strongest attack",
    "robustness_certified": "S_R certified (a proven lower bound)",
    "parity_difference": "Parity difference (largest favourable-rate gap)",
    "opportunity_difference": "Opportunity difference (largest TPR gap)",
    "odds_difference": "Odds difference (largest TPR or FPR gap)",
}
_CRITERION_NAMES = {"opportunity": "equal opportunity", "odds": "equalized odds"}

# Per-group table: (title, figure key); TPR and FPR only where the evaluation has them.
GROUP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rows", "rows"),
    ("base rate", "base_rate"),
    ("favourable rate", "favourable_rate"),
    ("TPR", "true_positive_rate"),
    ("FPR", "false_positive_rate"),
    ("accuracy", "accuracy"),
    ("robust acc. FGSM", "robust_accuracy_fgsm"),
    ("robust acc. PGD", "robust_accuracy_pgd"),
    ("robust acc. APGD", "robust_accuracy_apgd"),
    ("robust acc. transfer", "robust_accuracy_transfer"),
    ("robust acc. query", "robust_accuracy_query"),
    ("robust acc. (all)", "robust_accuracy"),
    ("certified", "certified_accuracy"),
)
# Columns shown even when no group has the figure (n/a): the ones every audit always had.
_ALWAYS = ("rows", "accuracy", "robust_accuracy_fgsm", "robust_accuracy_pgd")


def metric_label(key: str, fairness: str = "parity") -> str:
    """The label of a metric; S_B names its criterion when it is not parity."""
    label = METRIC_LABELS.get(key, key)
    if fairness != "parity" and key.startswith("bias_score"):
        label = label.replace("(eq. 7)", "").rstrip() + f" ({_CRITERION_NAMES[fairness]})"
    return label


def group_columns(groups: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """The per-group table's columns for these groups' figures."""
    present = set().union(*groups.values()) if groups else set()
    always: tuple[str, ...] = _ALWAYS
    if present & {"robust_accuracy_transfer", "robust_accuracy_query"}:
        always = ("rows", "accuracy")  # an ONNX audit: its white-box columns only when run
    return [(title, key) for title, key in GROUP_COLUMNS if key in present or key in always]


def group_cells(figures: dict[str, float], columns: list[tuple[str, str]]) -> list[str]:
    """One group's cells in ``columns`` (rows as a whole number)."""
    return [
        str(int(figures["rows"])) if key == "rows" else format_number(figures.get(key))
        for _, key in columns
    ]


def groups_description(protected: dict[str, Any], values: tuple[str, ...], default: bool) -> str:
    """Who is compared: ``sex in {Female}`` against the rest (binary), or the judged groups of
    a column; the criterion when it is not the paper's parity."""
    if "groups" in protected:
        text = f"groups judged ({len(protected['groups'])} of {protected['column']}): " + ", ".join(
            protected["groups"]
        )
        if protected.get("too_small"):
            text += "; too small to judge: " + ", ".join(
                f"{name} ({rows} rows)" for name, rows in protected["too_small"].items()
            )
    else:
        text = f"protected group a=0: {protected.get('column')} in {{{', '.join(values)}}}" + (
            " (lowest favourable rate, chosen by default)" if default else ""
        )
    if "fairness" in protected:
        text += f"; S_B criterion: {describe_fairness(protected['fairness'])}"
    return text


def too_small_warning(protected: dict[str, Any], minimum: int | None = None) -> str | None:
    """The warning naming the groups too small to judge (None when every group is judged)."""
    small = protected.get("too_small") or {}
    if not small:
        return None
    listed = ", ".join(f"{name!r} ({rows} rows)" for name, rows in small.items())
    fewer = f"fewer than --min-group-size {minimum} rows" if minimum else "too few rows"
    return (
        f"warning: {len(small)} group(s) of {protected.get('column')} have {fewer} and are "
        f"left out of every fairness figure: {listed}"
    )


ATTACK_COLUMNS: tuple[str, ...] = (
    "attack",
    "queries per row (budget)",
    "mean",
    "total",
    "rows broken",
    "success",
    "S_R",
    "seconds",
)


def attack_rows(attacks: tuple[dict[str, Any], ...]) -> list[list[str]]:
    """One row of :data:`ATTACK_COLUMNS` per attack run (ONNX audits)."""
    return [
        [
            str(record["attack"]),
            str(record["queries_per_row_budget"]),
            f"{record['queries_per_row_mean']:.1f}",
            f"{record['queries_total']:,}",
            f"{record['rows_broken']} of {record['rows_attacked']}",
            format_number(record["success_rate"]),
            format_number(record.get("robustness")),
            f"{record['seconds']:.1f}",
        ]
        for record in attacks
    ]


def format_number(value: float | None, digits: int = 4) -> str:
    """Fixed-point text, or 'n/a' for a missing or undefined value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 2:
        return str(int(value))  # a count (rows)
    return f"{value:.{digits}f}"


def render_audit_markdown(
    result: AuditResult, gate: GateResult | None = None, warning: str | None = None
) -> str:
    """A markdown report of an audit (for a PR comment), settings and versions included."""
    lines = [f"## froc audit: `{result.source}`", ""]
    if gate is not None and gate.checks:
        verdict = "PASSED" if gate.passed else "FAILED"
        lines += [
            f"**Gate {verdict}**",
            "",
            "| check | value | threshold | result |",
            "|---|---|---|---|",
        ]
        for check in gate.checks:
            lines.append(
                f"| {metric_label(check.metric, result.fairness)} | "
                f"{format_number(check.value)} | {check.comparison} {check.threshold:g} | "
                f"{'pass' if check.passed else 'FAIL'} |"
            )
        lines.append("")
        if warning:
            lines += [f"**Warning:** {warning}", ""]
    has_ci = bool(result.evaluation.intervals)
    lines += [
        "| metric | value |" + (" 95% CI |" if has_ci else ""),
        "|---|---|" + ("---|" if has_ci else ""),
    ]
    for key, value in result.metrics.items():
        row = f"| {metric_label(key, result.fairness)} | {format_number(value)} |"
        if has_ci:
            low, high = result.evaluation.intervals.get(key, (math.nan, math.nan))
            row += f" [{format_number(low)}, {format_number(high)}] |"
        lines.append(row)
    if result.attacks:
        lines += [
            "",
            "| " + " | ".join(ATTACK_COLUMNS) + " |",
            "|---|" + "---|" * (len(ATTACK_COLUMNS) - 1),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in attack_rows(result.attacks)]
        lines += [""] + [f"- `{r['attack']}`: {r['method']}" for r in result.attacks]
    columns = group_columns(result.evaluation.groups)
    lines += [
        "",
        "| group | " + " | ".join(title for title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, figures in result.evaluation.groups.items():
        lines.append(f"| {name} | " + " | ".join(group_cells(figures, columns)) + " |")
    versions = ", ".join(f"{k} {v}" for k, v in result.settings["versions"].items())
    if "groups" in result.protected or "fairness" in result.protected:
        who = "- " + groups_description(result.protected, result.protected_values, False)
        warning = too_small_warning(result.protected)
        who += f"\n- {warning[0].upper()}{warning[1:]}" if warning else ""
    else:
        who = (
            f"- Protected group (a=0): `{result.protected_column}` in "
            f"{{{', '.join(result.protected_values)}}}"
            + (
                " (lowest favourable rate, chosen by default)"
                if result.protected_group_defaulted
                else ""
            )
        )
    lines += [
        "",
        f"- Label: `{result.label_column}`, favourable value `{result.positive_value}`",
        who,
        f"- Model: {result.model}",
        f"- Rows: {', '.join(f'{k} {v}' for k, v in result.rows.items())}",
        f"- Threat model: {result.threat.describe() if result.threat else 'none (fairness only)'}",
        f"- Seed {result.settings['seed']}; device {result.settings['train']['device']}, "
        f"{result.settings['threads']} torch thread(s); "
        f"{versions}",
        "",
    ]
    return "\n".join(lines)
