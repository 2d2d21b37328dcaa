"""The picture of ``froc train-in --frontier``: what each threshold costs in accuracy.

Two panels on the validation split: reachable accuracy as delta_F varies at the given delta_R
(left) and as delta_R varies at the given delta_F (right). A feasible point (its run met both
tightened thresholds) is filled, an infeasible one (the closest iterate of its run) hollow;
the given thresholds are a dashed vertical line, the majority-class floor (what a constant
model scores, robust for free) a dotted horizontal one.

matplotlib is optional (the ``plot`` extra) and imported only inside :func:`plot_frontier`;
only its object-oriented API is used, so no global pyplot state is touched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from froc_cli.core._io import write_bytes_atomic
from froc_cli.methods._froc_in import Frontier, FrontierPoint

from ._plot import check_plot_target

__all__ = ["plot_frontier"]


def plot_frontier(
    frontier: Frontier,
    path: str | Path,
    *,
    delta_f: float | None,
    delta_r: float | None,
    title: str,
) -> Path:
    """Draw ``frontier`` to ``path`` (.png, .svg or .pdf), atomically."""
    path = Path(path)
    check_plot_target(path, "--frontier")
    from matplotlib.figure import Figure

    panels = [
        (frontier.bias, "delta_F", delta_f, f"delta_R = {delta_r:g}" if delta_r else ""),
        (frontier.robustness, "delta_R", delta_r, f"delta_F = {delta_f:g}" if delta_f else ""),
    ]
    panels = [p for p in panels if len(p[0]) > 1]
    fig = Figure(figsize=(4.2 * max(len(panels), 1), 3.8), dpi=150, layout="constrained")
    axes = [fig.add_subplot(1, max(len(panels), 1), i + 1) for i in range(max(len(panels), 1))]
    for ax, (points, name, given, held) in zip(axes, panels, strict=False):
        _draw_panel(ax, points, name, given, held)
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lower().lstrip("."))
    return write_bytes_atomic(buffer.getvalue(), path)


def _draw_panel(
    ax: Any, points: Sequence[FrontierPoint], name: str, given: float | None, held: str
) -> None:
    """One panel: accuracy against the varied threshold."""
    key = "delta_f" if name == "delta_F" else "delta_r"
    xs = [float(getattr(p, key)) for p in points]
    ys = [p.accuracy for p in points]
    ax.plot(xs, ys, color="#2ca02c", linewidth=1.0, zorder=1)
    for x, y, point in zip(xs, ys, points, strict=True):
        ax.scatter(
            [x],
            [y],
            s=36,
            zorder=2,
            color="#2ca02c" if point.feasible else "white",
            edgecolors="#2ca02c" if point.feasible else "#d62728",
        )
    if given is not None:
        ax.axvline(given, color="#444444", linestyle="--", linewidth=0.9)
    floor = points[0].majority_floor if points else None
    if floor is not None:
        ax.axhline(floor, color="#888888", linestyle=":", linewidth=0.9)
        ax.text(xs[0], floor, " majority floor", fontsize=7, va="bottom", color="#666666")
    ax.set_xlabel(f"{name} ({held})" if held else name, fontsize=8)
    ax.set_ylabel("accuracy (validation)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_title("filled: met; hollow: closest point (infeasible)", fontsize=7)
