"""What results look like on paper: markdown reports, the preprocess manifest and the comparison
plot.
"""

from __future__ import annotations

from froc_cli.reports._compare_markdown import (
    COLUMN_TITLES,
    both_met_text,
    format_mean_sd,
    render_compare_markdown,
)
from froc_cli.reports._manifest import (
    MANIFEST_FORMAT,
    ORIGIN_COLUMN,
    WrittenFiles,
    build_manifest,
    check_output_path,
    default_output_path,
    origin_column,
    write_preprocess_outputs,
)
from froc_cli.reports._markdown import (
    METRIC_LABELS,
    format_number,
    render_audit_markdown,
)
from froc_cli.reports._plot import (
    PLOT_SUFFIXES,
    check_plot_target,
    pareto_front,
    plot_compare,
)

__all__ = [
    "COLUMN_TITLES",
    "MANIFEST_FORMAT",
    "METRIC_LABELS",
    "ORIGIN_COLUMN",
    "PLOT_SUFFIXES",
    "WrittenFiles",
    "both_met_text",
    "build_manifest",
    "check_output_path",
    "check_plot_target",
    "default_output_path",
    "format_mean_sd",
    "format_number",
    "origin_column",
    "pareto_front",
    "plot_compare",
    "render_audit_markdown",
    "render_compare_markdown",
    "write_preprocess_outputs",
]
