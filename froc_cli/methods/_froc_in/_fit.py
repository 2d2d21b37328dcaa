"""One FRoC-IN fit with validation scoring and checkpoint selection, and the search's record."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import Objective
from froc_cli.data._rows import EncodedRows
from froc_cli.metrics._rules import (
    shortfall,
    tightened_bias_threshold,
    tightened_robustness_threshold,
)
from froc_cli.models._nets import TabularNet
from froc_cli.models._training import EpochStats, train_model

from ._config import FrocInConfig
from ._scoring import ValidationScore, score_validation

__all__ = [
    "EpochProgress",
    "FitContext",
    "Trial",
    "choose_trial",
    "rank_score",
    "record_trial",
    "report_epoch",
    "run_fit",
    "trace_row",
    "validation_targets",
    "violation",
]


@dataclass(frozen=True)
class Trial:
    """One fit of the search: its lambdas, where it started, and its selected checkpoint."""

    index: int
    lambda_f: float
    lambda_r: float
    warm_start: bool
    epochs_run: int
    best_epoch: int
    seconds: float
    score: ValidationScore
    meets_targets: bool
    meets_thresholds: bool
    violation: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        out = asdict(self)
        out["score"] = self.score.to_dict()
        return out


@dataclass(frozen=True)
class EpochProgress:
    """What a live progress display shows after each epoch."""

    trial: int
    lambda_f: float
    lambda_r: float
    epoch: int
    epochs: int
    accuracy: float | None
    bias_score: float | None
    robustness: float | None


@dataclass
class FitContext:
    """Everything a fit needs besides the model and the lambdas."""

    config: FrocInConfig
    fit: EncodedRows
    val: EncodedRows
    space: FeatureSpace
    target_f: float | None
    target_r: float | None
    on_epoch: Callable[[EpochProgress], None] | None
    trials: list[Trial] = field(default_factory=list)
    states: list[dict[str, torch.Tensor]] = field(default_factory=list)
    trace: list[dict[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


def validation_targets(config: FrocInConfig, val: EncodedRows) -> tuple[float | None, float | None]:
    """The search's targets: delta_F and delta_R tightened by ``config.search_margin``
    standard errors of the figures on ``val`` (sized from its group sizes and base rates,
    before any fit, so every iterate is ranked against the same targets)."""
    target_f = (
        None
        if config.delta_f is None
        else tightened_bias_threshold(
            config.delta_f,
            y=val.y_numpy,
            a=val.a_numpy,
            margin=config.search_margin,
            criterion=config.fairness,
        )
    )
    target_r = (
        None
        if config.delta_r is None
        else tightened_robustness_threshold(
            config.delta_r, n_rows=len(val), margin=config.search_margin
        )
    )
    return target_f, target_r


def violation(score: ValidationScore, target_f: float | None, target_r: float | None) -> float:
    """Total amount by which ``score`` misses the targets (0: met); degenerate adds 1."""
    return shortfall(
        score.bias_score, score.robustness, target_f, target_r, degenerate=score.degenerate
    )


def rank_score(ctx: FitContext, score: ValidationScore) -> tuple[int, float]:
    """Checkpoint order (larger is better): meets the targets > meets the thresholds > misses.

    Among models meeting, the more accurate; among the others, the smaller violation. Without
    thresholds, the smaller validation objective (eq. 10).
    """
    config = ctx.config
    if not config.constrained:
        return 0, -score.objective
    if violation(score, ctx.target_f, ctx.target_r) == 0.0:
        return 2, score.accuracy
    if violation(score, config.delta_f, config.delta_r) == 0.0:
        return 1, score.accuracy
    return 0, -violation(score, config.delta_f, config.delta_r)


def run_fit(
    ctx: FitContext,
    model: TabularNet,
    lambda_f: float,
    lambda_r: float,
    epochs: int,
    warm_start: bool,
) -> Trial:
    """Train ``model`` in place at (lambda_F, lambda_R) for up to ``epochs`` epochs with
    validation scoring, early stopping and best-checkpoint selection; record the trial."""
    config = ctx.config
    index = len(ctx.trials)
    objective = Objective(
        lambda_f=lambda_f,
        lambda_r=lambda_r,
        attack=config.attack,
        threat=config.threat,
        fairness=config.fairness,
        fairness_surrogate=config.fairness_surrogate,
    )
    started = time.perf_counter()
    best: dict[str, Any] = {}
    stale = 0
    epochs_run = 0

    def callback(stats: EpochStats, net: nn.Module) -> bool:
        nonlocal stale, epochs_run
        epochs_run = stats.epoch + 1
        due = epochs_run % config.eval_every == 0 or epochs_run == epochs
        score = (
            score_validation(
                net, ctx.val, ctx.space, config.threat, objective, seed=config.train.seed
            )
            if due or config.trace
            else None
        )
        report_epoch(ctx, index, (lambda_f, lambda_r), stats, epochs, score)
        if not due or score is None:
            return False
        # Within a fit the checkpoint is the one with the smallest validation objective (eq. 10
        # at this fit's lambdas): smooth and little affected by the noise of S_B and S_R, so the
        # thresholds are compared once per fit, not once per checkpoint (fewer chances to pick
        # a lucky checkpoint on validation).
        if not best or score.objective < best["score"].objective:
            best.update(score=score, epoch=epochs_run, state=copy.deepcopy(net.state_dict()))
            stale = 0
        else:
            stale += 1
        return bool(config.patience and stale >= config.patience)

    train_model(
        model,
        ctx.fit.x,
        ctx.fit.y,
        ctx.fit.a,
        objective=objective,
        config=config.train,
        space=ctx.space,
        epochs=epochs,
        callback=callback,
        trace_gradients=config.trace,
    )
    model.load_state_dict(best["state"])
    model.eval()
    return record_trial(
        ctx,
        (lambda_f, lambda_r),
        best["score"],
        best["state"],
        warm_start=warm_start,
        epochs_run=epochs_run,
        best_epoch=best["epoch"],
        seconds=time.perf_counter() - started,
    )


def record_trial(
    ctx: FitContext,
    lambdas: tuple[float, float],
    score: ValidationScore,
    state: dict[str, torch.Tensor],
    *,
    warm_start: bool,
    epochs_run: int,
    best_epoch: int,
    seconds: float,
) -> Trial:
    """Append a trial (flagged against ``ctx``'s targets and thresholds) and its model state."""
    config = ctx.config
    trial = Trial(
        index=len(ctx.trials),
        lambda_f=lambdas[0],
        lambda_r=lambdas[1],
        warm_start=warm_start,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        seconds=seconds,
        score=score,
        meets_targets=violation(score, ctx.target_f, ctx.target_r) == 0.0,
        meets_thresholds=violation(score, config.delta_f, config.delta_r) == 0.0,
        violation=violation(score, config.delta_f, config.delta_r),
    )
    ctx.trials.append(trial)
    ctx.states.append(state)
    return trial


def report_epoch(
    ctx: FitContext,
    trial: int,
    lambdas: tuple[float, float],
    stats: EpochStats,
    epochs: int,
    score: ValidationScore | None,
) -> None:
    """One epoch's trace row (when tracing) and live progress (when someone listens)."""
    if ctx.config.trace:
        ctx.trace.append(trace_row(trial, lambdas[0], lambdas[1], stats, score))
    if ctx.on_epoch is not None:
        ctx.on_epoch(
            EpochProgress(
                trial=trial,
                lambda_f=lambdas[0],
                lambda_r=lambdas[1],
                epoch=stats.epoch + 1,
                epochs=epochs,
                accuracy=None if score is None else score.accuracy,
                bias_score=None if score is None else score.bias_score,
                robustness=None if score is None else score.robustness,
            )
        )


def trace_row(
    trial: int,
    lambda_f: float,
    lambda_r: float,
    stats: EpochStats,
    score: ValidationScore | None,
) -> dict[str, float]:
    nan = math.nan
    return {
        "trial": trial,
        "lambda_f": lambda_f,
        "lambda_r": lambda_r,
        "epoch": stats.epoch + 1,
        "loss": stats.loss,
        "bce": stats.bce,
        "fairness": stats.fairness,
        "robustness": stats.robustness,
        "grad_angle_deg": nan if stats.grad_angle is None else stats.grad_angle,
        "val_accuracy": nan if score is None else score.accuracy,
        "val_bias_score": nan if score is None else score.bias_score,
        "val_robustness_pgd": nan if score is None else score.robustness_pgd,
        "val_robustness": nan if score is None else score.robustness,
    }


def choose_trial(ctx: FitContext) -> int:
    """Index of the chosen trial: the best rank over all trials (ties: the earlier)."""
    ranks = [rank_score(ctx, trial.score) for trial in ctx.trials]
    return max(range(len(ranks)), key=lambda i: (ranks[i], -i))
