"""The markdown report of ``froc compare``: one table of every method's mean ± sd over the
repeats, whether each met both thresholds, and the grid each method searched."""

from __future__ import annotations

from froc_cli.reports._markdown import format_number, groups_description
from froc_cli.workflows._compare import METHODS, TABLE_METRICS, CompareResult, MethodSummary

__all__ = ["COLUMN_TITLES", "both_met_text", "format_mean_sd", "render_compare_markdown"]


COLUMN_TITLES: dict[str, str] = {
    "accuracy": "accuracy",
    "bias_score": "S_B",
    "robustness_fgsm": "S_R FGSM",
    "robustness_pgd": "S_R PGD",
    "transfer_fgsm": "S_R FGSM transfer",
    "transfer_pgd": "S_R PGD transfer",
    "robustness_balanced": "S_R balanced (FGSM+PGD)",
    "robustness_retention": "S_R retention (FGSM+PGD)",
    "majority_floor": "majority floor",
}


def format_mean_sd(summary: MethodSummary, key: str, digits: int = 3) -> str:
    """``0.812`` or ``0.812 ± 0.004`` (with repeats)."""
    value = summary.mean.get(key)
    if value is None:
        return "n/a"
    text = format_number(value, digits)
    if summary.runs > 1 and text != "n/a":
        text += f" ± {format_number(summary.sd.get(key), digits)}"
    return text


def both_met_text(summary: MethodSummary) -> str:
    """``yes`` / ``no`` (one seed) or ``k/n`` seeds."""
    if summary.runs == 0:
        return "failed"
    if summary.runs == 1 and summary.failures == 0:
        text = "yes" if summary.meets_both else "no"
    else:
        text = f"{summary.meets_both}/{summary.runs + summary.failures}"
    if summary.degenerate:
        count = "" if summary.runs == 1 else f"{summary.degenerate} "
        text += f" ({count}degenerate)"
    return text


def render_compare_markdown(result: CompareResult, *, plot: str | None = None) -> str:
    """A markdown report: the table, every grid point, settings and the command."""
    cfg = result.config
    lines = [f"## froc compare: `{result.source}`", ""]
    if result.command:
        lines += ["Command:", "", "```sh", result.command, "```", ""]
    who = (
        groups_description(result.protected_block(), result.protected_values, False)
        if "groups" in result.protected or "fairness" in result.protected
        else f"Protected group a=0: `{result.protected_column}` in "
        f"{{{', '.join(result.protected_values)}}}"
    )
    lines += [
        f"{who}; label `{result.label_column}`, favourable "
        f"`{result.positive_value}`. Constraints: S_B <= {cfg.delta_f:g} (delta_F) and "
        f"S_R(PGD, white-box) >= {cfg.delta_r:g} (delta_R), on the test split. "
        f"Seeds {', '.join(map(str, cfg.seeds))}"
        + (" (mean ± sd)" if cfg.repeats > 1 else "")
        + ".",
        "",
        "| method | setting | "
        + " | ".join(COLUMN_TITLES[k] for k in TABLE_METRICS)
        + " | both met | wall (s) | CPU (s) |",
        "|---|---|" + "---|" * len(TABLE_METRICS) + "---|---|---|",
    ]
    for summary in result.summaries:
        settings = "; ".join(dict.fromkeys(summary.settings)) or "-"
        if summary.runs == 0:
            reason = "; ".join(dict.fromkeys(summary.reasons))
            lines.append(
                f"| {summary.label} | failed: {reason} | "
                + " | ".join("n/a" for _ in TABLE_METRICS)
                + f" | failed | {summary.seconds:.1f} | {summary.cpu_seconds:.1f} |"
            )
            continue
        cells = [format_mean_sd(summary, k) for k in TABLE_METRICS]
        lines.append(
            f"| {summary.label} | {settings} | "
            + " | ".join(cells)
            + f" | {both_met_text(summary)} | {summary.seconds:.1f} | {summary.cpu_seconds:.1f} |"
        )
    failures = [
        (row.label, row.seed, row.reason) for r in result.repeats for row in r.rows if not row.ok
    ]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {label} (seed {seed}): {reason}" for label, seed, reason in failures]
    if plot:
        lines += ["", f"![accuracy over the (S_R, S_B) plane]({plot})"]
    grid = [p for r in result.repeats for p in r.grid]
    if grid:
        lines += [
            "",
            "### Every setting tried (test figures; chosen on validation)",
            "",
            "| method | seed | kind | setting | val. acc. | val. S_B | val. S_R PGD | accuracy | "
            "S_B | S_R FGSM | S_R PGD | S_R PGD transfer | chosen |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in grid:
            v, t = p.validation, p.test
            lines.append(
                f"| {METHODS[p.method].label if p.method in METHODS else p.method} | {p.seed} | "
                f"{p.kind} | {p.setting} | {format_number(v.get('accuracy'), 3)} | "
                f"{format_number(v.get('bias_score'), 3)} | "
                f"{format_number(v.get('robustness_pgd'), 3)} | "
                f"{format_number(t.get('accuracy'), 3)} | {format_number(t.get('bias_score'), 3)}"
                f" | {format_number(t.get('robustness_fgsm'), 3)} | "
                f"{format_number(t.get('robustness_pgd'), 3)} | "
                f"{format_number(t.get('transfer_pgd'), 3)} | {'yes' if p.chosen else ''} |"
            )
    notes = [f"seed {r.seed}: {n}" for r in result.repeats for n in r.notes]
    counts = result.repeats[0].counts if result.repeats else {}
    versions = ", ".join(f"{k} {v}" for k, v in result.settings["versions"].items())
    train = result.settings["train"]
    lines += [
        "",
        "### Settings",
        "",
        f"- Threat model: {cfg.threat.describe()}; transfer attacks crafted on "
        f"{result.settings['transfer_source']}",
        f"- Target: {train['model']}, {train['epochs']} epochs, Adam lr {train['lr']:g}, "
        f"batch {train['batch_size'] or 'full'}; device {train['device']}, "
        f"{result.settings['threads']} torch thread(s)",
        f"- Rows (first seed): {', '.join(f'{k} {v}' for k, v in counts.items())}",
        f"- Sequential lambda grid: {', '.join(f'{v:g}' for v in cfg.lambdas)}; "
        f"lambda > 0 continues the lambda = 0 fit for {cfg.adv_epochs} epochs; DIR repair level "
        f"{cfg.repair_level:g}",
        f"- Selection: {result.settings['selection']}",
        f"- Versions: {versions}",
        f"- Wall time: {result.seconds:.1f} s; CPU time of the process (all threads): "
        f"{result.cpu_seconds:.1f} s",
    ]
    lines += [f"- Note: {n}" for n in notes]
    lines.append("")
    return "\n".join(lines)
