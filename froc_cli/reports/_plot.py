"""The trade-off picture of ``froc compare --plot`` (the paper's Figs. 3, 5 and 8).

Accuracy (colour) over the (S_R, S_B) plane, with the (delta_F, delta_R) box where both
constraints hold: S_R(PGD, white-box) >= delta_R on the x axis, S_B <= delta_F on the y axis.
Each method's reported setting is a large marker; the settings the sequential methods searched
are small markers joined in lambda order (the paper's Fig. 2 path); with ``--sweep`` the FRoC-IN
and FRoC-PRE settings are small markers and their Pareto front (highest S_R for the lowest
S_B) is a step line. A degenerate setting (near constant, or not clearly above the
majority-class floor: a constant model is fair and often "robust" for free) is crossed out and
never on a front.

matplotlib is optional (the ``plot`` extra) and imported only inside :func:`plot_compare`;
only its object-oriented API is used, so no global pyplot state is touched.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from froc_cli.core._errors import InputError
from froc_cli.core._io import write_bytes_atomic
from froc_cli.metrics._rules import is_degenerate
from froc_cli.workflows._compare import METHODS, CompareResult, GridPoint, MethodSummary

__all__ = ["PLOT_SUFFIXES", "check_plot_target", "pareto_front", "plot_compare"]

PLOT_SUFFIXES = (".png", ".svg", ".pdf")

_MARKERS: dict[str, str] = {
    "plain": "o",
    "rbf-rw": "^",
    "rbf-dir": "v",
    "fbr-rw": "<",
    "fbr-dir": ">",
    "massaging": "D",
    "froc-in": "*",
    "froc-pre": "P",
}
_LINE_COLOURS: dict[str, str] = {
    "plain": "#444444",
    "rbf-rw": "#1f77b4",
    "rbf-dir": "#17becf",
    "fbr-rw": "#ff7f0e",
    "fbr-dir": "#d62728",
    "massaging": "#8c564b",
    "froc-in": "#2ca02c",
    "froc-pre": "#9467bd",
}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (S_R, S_B) points no other point beats on both (higher S_R and lower S_B).

    Returned sorted by S_R; non-finite points are ignored; duplicates kept once.
    """
    finite = sorted(
        {(r, b) for r, b in points if math.isfinite(r) and math.isfinite(b)},
        key=lambda p: (-p[0], p[1]),
    )
    front: list[tuple[float, float]] = []
    best_bias = math.inf
    for robustness, bias in finite:
        if bias < best_bias:
            front.append((robustness, bias))
            best_bias = bias
    return sorted(front)


def _mean_grid(points: Sequence[GridPoint]) -> list[dict[str, Any]]:
    """Grid points averaged over seeds, per (method, kind, setting), in first-seen order."""
    groups: dict[tuple[str, str, str], list[GridPoint]] = defaultdict(list)
    for point in points:
        groups[(point.method, point.kind, point.setting)].append(point)
    out = []
    for (method, kind, setting), members in groups.items():
        mean = {
            key: float(np.mean([p.test.get(key, math.nan) for p in members]))
            for key in (
                "accuracy",
                "bias_score",
                "robustness_pgd",
                "majority_floor",
                "rarer_decision_share",
                "rows",
            )
        }
        out.append({"method": method, "kind": kind, "setting": setting, **mean})
    return out


def check_plot_target(path: str | Path, option: str = "--plot") -> None:
    """Fail early (before a long run) on a bad plot file name or missing matplotlib; errors
    name ``option``, the command's option for the file."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(
            f"{path}: unknown plot format {path.suffix.lower()!r}; expected .png, .svg or .pdf"
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"{path}: {option} needs matplotlib; install it with: pip install 'froc[plot]'"
        ) from exc


def _degenerate(point: dict[str, Any]) -> bool:
    """Degenerate (near constant or not above the majority floor): never on a front."""
    return is_degenerate({k: v for k, v in point.items() if isinstance(v, float)})


def plot_compare(result: CompareResult, path: str | Path, *, title: str | None = None) -> Path:
    """Draw the trade-off picture of ``result`` to ``path`` (.png, .svg or .pdf), atomically."""
    path = Path(path)
    fmt = path.suffix.lower()
    check_plot_target(path)
    try:
        from matplotlib import colormaps
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise InputError(
            f"{path}: --plot needs matplotlib; install it with: pip install 'froc[plot]'"
        ) from exc

    cfg = result.config
    grid = _mean_grid([p for r in result.repeats for p in r.grid])
    chosen = [s for s in result.summaries if s.runs > 0]
    accuracies = [g["accuracy"] for g in grid] + [s.mean["accuracy"] for s in chosen]
    finite_acc = [a for a in accuracies if math.isfinite(a)] or [0.0, 1.0]
    norm = Normalize(vmin=min(finite_acc), vmax=max(max(finite_acc), min(finite_acc) + 1e-6))
    cmap = colormaps["viridis"]

    fig = Figure(figsize=(8.5, 6.0), dpi=150, layout="constrained")
    ax = fig.add_subplot()
    biases = [g["bias_score"] for g in grid] + [s.mean["bias_score"] for s in chosen]
    top = max([b for b in biases if math.isfinite(b)] + [cfg.delta_f]) * 1.15 + 0.01
    _draw_box(ax, cfg.delta_f, cfg.delta_r)
    _draw_grid(ax, grid, cmap, norm)
    _draw_chosen(ax, chosen, cmap, norm)
    mappable = fig.colorbar(
        _scalar_mappable(cmap, norm), ax=ax, label="accuracy (test, clean)", shrink=0.9
    )
    mappable.ax.tick_params(labelsize=8)
    _draw_legend(ax, cfg.selected_methods)
    _label_axes(ax, result, top, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt.lstrip("."))
    return write_bytes_atomic(buffer.getvalue(), path)


def _draw_box(ax: Any, delta_f: float, delta_r: float) -> None:
    """The (delta_F, delta_R) box where both constraints hold, and its caption."""
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (delta_r, 0.0),
            1.02 - delta_r,
            delta_f,
            facecolor="#2ca02c",
            alpha=0.12,
            edgecolor="#2ca02c",
            linestyle="--",
            linewidth=1.2,
            zorder=0,
        )
    )
    ax.text(
        delta_r + 0.01,
        0.0,
        f"both met: S_B <= {delta_f:g}, S_R >= {delta_r:g}",
        fontsize=7,
        color="#1a6e1a",
        va="bottom",
    )


def _draw_grid(ax: Any, grid: list[dict[str, Any]], cmap: Any, norm: Any) -> None:
    """Every setting tried, per (method, kind): grid paths annotated with their lambda, sweep
    points with their Pareto front; degenerate settings crossed out."""
    by_method: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for g in grid:
        by_method[(g["method"], g["kind"])].append(g)
    for (method, kind), members in by_method.items():
        xs = [g["robustness_pgd"] for g in members]
        ys = [g["bias_score"] for g in members]
        colour = _LINE_COLOURS.get(method, "#888888")
        if kind == "grid":
            _draw_grid_path(ax, members, xs, ys, colour)
        else:
            _draw_front(ax, members, xs, ys, colour)
        ax.scatter(
            xs,
            ys,
            c=[g["accuracy"] for g in members],
            cmap=cmap,
            norm=norm,
            marker=_MARKERS.get(method, "o"),
            s=28,
            edgecolors=colour,
            linewidths=0.6,
            alpha=0.85,
            zorder=2,
        )
        floor = [(x, y) for g, x, y in zip(members, xs, ys, strict=True) if _degenerate(g)]
        if floor:
            fx_floor = [x for x, _ in floor]
            fy_floor = [y for _, y in floor]
            ax.scatter(fx_floor, fy_floor, marker="x", s=40, c="#d62728", zorder=3)


def _draw_grid_path(
    ax: Any, members: list[dict[str, Any]], xs: list[float], ys: list[float], colour: str
) -> None:
    """A searched grid joined in lambda order, each point labelled with its setting."""
    ax.plot(xs, ys, color=colour, linewidth=0.8, alpha=0.6, zorder=1)
    for g, x, y in zip(members, xs, ys, strict=True):
        if math.isfinite(x) and math.isfinite(y):
            text = g["setting"].replace("lambda=", "λ=")
            ax.annotate(
                text,
                (x, y),
                textcoords="offset points",
                xytext=(3, -7),
                fontsize=5,
                color=colour,
            )


def _draw_front(
    ax: Any, members: list[dict[str, Any]], xs: list[float], ys: list[float], colour: str
) -> None:
    """The Pareto front of the non-degenerate sweep points, as a step line."""
    useful = [(x, y) for g, x, y in zip(members, xs, ys, strict=True) if not _degenerate(g)]
    front = pareto_front(useful)
    if front:
        fx, fy = zip(*front, strict=True)
        ax.step(fx, fy, where="pre", color=colour, linewidth=1.4, alpha=0.9, zorder=1)


def _draw_chosen(ax: Any, chosen: list[MethodSummary], cmap: Any, norm: Any) -> None:
    """Each method's reported setting: a large marker with its label and accuracy."""
    for summary in chosen:
        x, y = summary.mean["robustness_pgd"], summary.mean["bias_score"]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        ax.scatter(
            [x],
            [y],
            c=[summary.mean["accuracy"]],
            cmap=cmap,
            norm=norm,
            marker=_MARKERS.get(summary.method, "o"),
            s=170,
            edgecolors="black",
            linewidths=1.0,
            zorder=3,
        )
        if _degenerate(summary.mean):
            ax.scatter([x], [y], marker="x", s=90, c="#d62728", zorder=4)
        ax.annotate(
            f"{summary.label} ({summary.mean['accuracy']:.3f})",
            (x, y),
            textcoords="offset points",
            xytext=(7, 5),
            fontsize=7,
            zorder=4,
        )


def _draw_legend(ax: Any, methods: Sequence[str]) -> None:
    """One marker per method, and the degenerate cross."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            marker=_MARKERS.get(name, "o"),
            linestyle="",
            markerfacecolor="white",
            markeredgecolor=_LINE_COLOURS.get(name, "#888888"),
            markersize=8,
            label=METHODS[name].label if name in METHODS else name,
        )
        for name in methods
    ]
    handles.append(
        Line2D(
            [],
            [],
            marker="x",
            linestyle="",
            color="#d62728",
            markersize=6,
            label="degenerate (near constant or ~ majority floor)",
        )
    )
    ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.85)


def _label_axes(ax: Any, result: CompareResult, top: float, title: str | None) -> None:
    """Limits, axis labels, the title (data, group, seeds, threat model) and the grid lines."""
    cfg = result.config
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(0.0, top)
    ax.set_xlabel("S_R: robustness, PGD white-box (higher is better)")
    ax.set_ylabel("S_B: bias score (lower is better)")
    seeds = f"{cfg.repeats} seeds, mean" if cfg.repeats > 1 else f"seed {cfg.seeds[0]}"
    ax.set_title(
        (
            title
            or f"{Path(result.source).name}: {result.protected_column} "
            f"(a=0: {', '.join(result.protected_values)}); {seeds}"
        )
        + f"\n{cfg.threat.describe()}",
        fontsize=9,
    )
    ax.grid(True, linewidth=0.3, alpha=0.5)


def _scalar_mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array([])
    return mappable
