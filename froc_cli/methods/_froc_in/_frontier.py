"""What the thresholds cost: the frontier of reachable accuracy, and the smallest relaxation.

Both answer the user whose targets are strict or out of reach, on the validation split (the
figures every choice is made on; the test split is never touched):

- :func:`smallest_relaxation` reads the search's own iterates: the smallest delta_F that one
  of them meets with delta_R kept, the largest delta_R met with delta_F kept, and the
  thresholds the closest iterate meets. "Meets" is the search's sense: the iterate's figures
  within the thresholds tightened by the same margins as the targets.
- :func:`trace_frontier` runs the constrained search again at other thresholds, warm-started
  from the chosen model and the final multipliers, for a few epochs each: delta_F over a range
  at the given delta_R, and delta_R over a range at the given delta_F. Each point is the most
  accurate iterate of any run meeting its tightened thresholds (or its own run's closest,
  marked infeasible), so reachable accuracy never falls as a threshold loosens.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from froc_cli.models._nets import TabularNet

from ._config import FrocInConfig
from ._dual import DualAscent
from ._fit import EpochProgress, FitContext, Trial, choose_trial, validation_targets

__all__ = [
    "FRONTIER_BIAS_FACTORS",
    "FRONTIER_ROBUSTNESS_STEPS",
    "Frontier",
    "FrontierPoint",
    "Relaxation",
    "frontier_thresholds",
    "smallest_relaxation",
    "trace_frontier",
]

# delta_F x these factors, and delta_R + these steps: both sides of the user's thresholds,
# finer near them.
FRONTIER_BIAS_FACTORS = (0.5, 0.75, 1.5, 2.0, 3.0)
FRONTIER_ROBUSTNESS_STEPS = (-0.15, -0.1, -0.05, 0.025, 0.05)


@dataclass(frozen=True)
class Relaxation:
    """The smallest change of the thresholds that an iterate of the search meets on validation.

    ``delta_f``: the smallest delta_F met with delta_R kept (None: no non-degenerate iterate
    meets delta_R); ``delta_r``: the largest delta_R met with delta_F kept (None: none meets
    delta_F); ``closest``: the thresholds the closest iterate (smallest total violation) meets,
    and its index in the search's trials.
    """

    delta_f: float | None
    delta_r: float | None
    closest: tuple[float | None, float | None]
    closest_trial: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return {
            "delta_f": self.delta_f,
            "delta_r": self.delta_r,
            "closest": {"delta_f": self.closest[0], "delta_r": self.closest[1]},
            "closest_trial": self.closest_trial,
        }


def _round_up(value: float) -> float:
    return math.ceil(value * 1000 - 1e-9) / 1000


def _round_down(value: float) -> float:
    return math.floor(value * 1000 + 1e-9) / 1000


def smallest_relaxation(
    trials: Sequence[Trial],
    config: FrocInConfig,
    targets: dict[str, float | None],
) -> Relaxation | None:
    """The relaxation of :class:`Relaxation` from the search's ``trials`` (None when no
    threshold is given or every trial is degenerate). Thresholds are rounded outwards to 0.001
    so the figures shown are met, not just approached."""
    target_f, target_r = targets.get("bias_score"), targets.get("robustness")
    margin_f = None if config.delta_f is None or target_f is None else config.delta_f - target_f
    margin_r = None if config.delta_r is None or target_r is None else target_r - config.delta_r
    usable = [t for t in trials if not t.score.degenerate]
    if not usable or (margin_f is None and margin_r is None):
        return None

    def needed_f(trial: Trial) -> float | None:
        if margin_f is None:
            return None
        return min(1.0, _round_up(trial.score.bias_score + margin_f))

    def needed_r(trial: Trial) -> float | None:
        if margin_r is None:
            return None
        return max(0.0, _round_down(trial.score.robustness - margin_r))

    relaxed_f = [
        f
        for t in usable
        if (target_r is None or t.score.robustness >= target_r) and (f := needed_f(t)) is not None
    ]
    relaxed_r = [
        r
        for t in usable
        if (target_f is None or t.score.bias_score <= target_f) and (r := needed_r(t)) is not None
    ]
    closest = min(usable, key=lambda t: (t.violation, -t.score.accuracy, t.index))
    return Relaxation(
        delta_f=min(relaxed_f) if relaxed_f and config.delta_r is not None else None,
        delta_r=max(relaxed_r) if relaxed_r and config.delta_f is not None else None,
        closest=(needed_f(closest), needed_r(closest)),
        closest_trial=closest.index,
    )


@dataclass(frozen=True)
class FrontierPoint:
    """One constrained run of the frontier: its thresholds and its chosen iterate's validation
    figures (``feasible``: the iterate meets the tightened thresholds and is not degenerate)."""

    delta_f: float | None
    delta_r: float | None
    feasible: bool
    accuracy: float
    bias_score: float
    robustness: float
    majority_floor: float
    lambda_f: float
    lambda_r: float
    epochs: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class Frontier:
    """Reachable validation accuracy as delta_F varies at the given delta_R (``bias``) and as
    delta_R varies at the given delta_F (``robustness``); the given thresholds' own point (the
    main search) is in both."""

    bias: tuple[FrontierPoint, ...]
    robustness: tuple[FrontierPoint, ...]
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return {
            "bias": [p.to_dict() for p in self.bias],
            "robustness": [p.to_dict() for p in self.robustness],
            "epochs_per_point": self.epochs,
            "split": "validation",
        }


def frontier_thresholds(config: FrocInConfig) -> tuple[list[float], list[float]]:
    """The delta_F values (at the given delta_R) and the delta_R values (at the given delta_F)
    the frontier visits besides the given pair, rounded to 0.001, within (0, 1)."""
    deltas_f: list[float] = []
    deltas_r: list[float] = []
    if config.free_f and config.delta_f is not None:
        deltas_f = sorted(
            {
                round(min(0.999, config.delta_f * k), 3)
                for k in FRONTIER_BIAS_FACTORS
                if config.delta_f * k > 0.0
            }
            - {round(config.delta_f, 3)}
        )
    if config.free_r and config.delta_r is not None:
        deltas_r = sorted(
            {
                round(config.delta_r + step, 3)
                for step in FRONTIER_ROBUSTNESS_STEPS
                if 0.0 < config.delta_r + step < 1.0
            }
            - {round(config.delta_r, 3)}
        )
    return deltas_f, deltas_r


def _point(trial: Trial, config: FrocInConfig, feasible: bool, seconds: float) -> FrontierPoint:
    score = trial.score
    return FrontierPoint(
        delta_f=config.delta_f,
        delta_r=config.delta_r,
        feasible=feasible,
        accuracy=score.accuracy,
        bias_score=score.bias_score,
        robustness=score.robustness,
        majority_floor=score.majority_floor,
        lambda_f=trial.lambda_f,
        lambda_r=trial.lambda_r,
        epochs=trial.epochs_run,
        seconds=seconds,
    )


def _chosen_point(ctx: FitContext, seconds: float) -> FrontierPoint:
    """A run's own choice as a frontier point."""
    chosen = ctx.trials[choose_trial(ctx)]
    return _point(
        chosen, ctx.config, chosen.meets_thresholds and not chosen.score.degenerate, seconds
    )


def _pooled_point(pool: Sequence[Trial], ctx: FitContext, seconds: float) -> FrontierPoint:
    """The most accurate iterate of any run meeting ``ctx``'s targets (a model that meets
    stricter thresholds meets these too, so the frontier never falls as a threshold loosens);
    else the run's own closest point, infeasible."""
    meeting = [
        t
        for t in pool
        if not t.score.degenerate
        and (ctx.target_f is None or t.score.bias_score <= ctx.target_f)
        and (ctx.target_r is None or t.score.robustness >= ctx.target_r)
    ]
    if not meeting:
        return _chosen_point(ctx, seconds)
    best = max(meeting, key=lambda t: t.score.accuracy)
    return _point(best, ctx.config, True, seconds)


def trace_frontier(
    main: FitContext,
    model: TabularNet,
    start: tuple[float, float],
    *,
    epochs: int,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> Frontier:
    """The :class:`Frontier` around ``main``'s thresholds: one constrained run of ``epochs``
    epochs per other threshold, each from ``model``'s weights (left untouched) and the
    multipliers ``start``. A point is the most accurate iterate of any of the runs (the main
    one included) meeting its tightened thresholds; the given thresholds' point is the main
    run's choice, the model returned."""
    deltas_f, deltas_r = frontier_thresholds(main.config)
    own = _chosen_point(main, time.perf_counter() - main.started)

    def run(config: FrocInConfig) -> tuple[FitContext, float]:
        started = time.perf_counter()
        target_f, target_r = validation_targets(config, main.val)
        ctx = FitContext(
            config=config,
            fit=main.fit,
            val=main.val,
            space=main.space,
            target_f=target_f,
            target_r=target_r,
            on_epoch=on_epoch,
        )
        # A copy: the caller's model is the chosen one and must stay so.
        DualAscent(ctx, copy.deepcopy(model), start=start, epochs=epochs).run()
        return ctx, time.perf_counter() - started

    bias_runs = [run(replace(main.config, delta_f=d, trace=False)) for d in deltas_f]
    robustness_runs = [run(replace(main.config, delta_r=d, trace=False)) for d in deltas_r]
    pool = [*main.trials, *(t for ctx, _ in (*bias_runs, *robustness_runs) for t in ctx.trials)]
    bias = [_pooled_point(pool, ctx, seconds) for ctx, seconds in bias_runs]
    robustness = [_pooled_point(pool, ctx, seconds) for ctx, seconds in robustness_runs]
    return Frontier(
        bias=tuple(sorted([*bias, own], key=lambda p: p.delta_f or 0.0)),
        robustness=tuple(sorted([*robustness, own], key=lambda p: p.delta_r or 0.0)),
        epochs=epochs,
    )
