"""Plain-text renderings of results (markdown reports); the CLI owns terminal rendering."""

from __future__ import annotations

import math

from froc_cli.metrics._rules import GateResult
from froc_cli.workflows._audit import AuditResult

__all__ = ["METRIC_LABELS", "format_number", "render_audit_markdown"]

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
}


def format_number(value: float | None, digits: int = 4) -> str:
    """Fixed-point text, or 'n/a' for a missing or undefined value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 2:
        return str(int(value))  # a count (rows)
    return f"{value:.{digits}f}"


def render_audit_markdown(result: AuditResult, gate: GateResult | None = None) -> str:
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
                f"| {METRIC_LABELS.get(check.metric, check.metric)} | "
                f"{format_number(check.value)} | {check.comparison} {check.threshold:g} | "
                f"{'pass' if check.passed else 'FAIL'} |"
            )
        lines.append("")
    has_ci = bool(result.evaluation.intervals)
    lines += [
        "| metric | value |" + (" 95% CI |" if has_ci else ""),
        "|---|---|" + ("---|" if has_ci else ""),
    ]
    for key, value in result.metrics.items():
        row = f"| {METRIC_LABELS.get(key, key)} | {format_number(value)} |"
        if has_ci:
            low, high = result.evaluation.intervals.get(key, (math.nan, math.nan))
            row += f" [{format_number(low)}, {format_number(high)}] |"
        lines.append(row)
    lines += [
        "",
        "| group | rows | base rate | favourable rate | accuracy | robust acc. FGSM |"
        " robust acc. PGD |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in result.evaluation.groups.items():
        lines.append(
            f"| {name} | {int(figures['rows'])} | {format_number(figures['base_rate'])} | "
            f"{format_number(figures['favourable_rate'])} | {format_number(figures['accuracy'])}"
            f" | {format_number(figures.get('robust_accuracy_fgsm'))} | "
            f"{format_number(figures.get('robust_accuracy_pgd'))} |"
        )
    versions = ", ".join(f"{k} {v}" for k, v in result.settings["versions"].items())
    lines += [
        "",
        f"- Label: `{result.label_column}`, favourable value `{result.positive_value}`",
        f"- Protected group (a=0): `{result.protected_column}` in "
        f"{{{', '.join(result.protected_values)}}}"
        + (
            " (lowest favourable rate, chosen by default)"
            if result.protected_group_defaulted
            else ""
        ),
        f"- Model: {result.model}",
        f"- Rows: {', '.join(f'{k} {v}' for k, v in result.rows.items())}",
        f"- Threat model: {result.threat.describe() if result.threat else 'none (fairness only)'}",
        f"- Seed {result.settings['seed']}; device {result.settings['train']['device']}, "
        f"{result.settings['threads']} torch thread(s); "
        f"{versions}",
        "",
    ]
    return "\n".join(lines)
