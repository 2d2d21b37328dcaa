"""Constrained training (``--search constrained``, the default)."""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from froc_cli.core._config import Objective
from froc_cli.models._nets import TabularNet
from froc_cli.models._training import EpochStats, train_model

from ._config import FrocInConfig
from ._fit import FitContext, record_trial, report_epoch
from ._scoring import ValidationScore, score_validation

__all__ = ["DualAscent"]

# Constrained search: the multipliers never leave [0, cap] (they stay finite even when a target
# cannot be met and its violation never ends).
DUAL_CAP_F = 64.0
DEGENERATE_SHRINK = 0.5
DUAL_CAP_R = 32.0


class DualAscent:
    """Constrained training, the default search: one training run in which lambda_F and
    lambda_R are Lagrange multipliers of the constraints S_B <= target_F and S_R >= target_R
    (the tightened thresholds), moved after every epoch by dual ascent on the violations
    measured on validation (the proxy-Lagrangian of Cotter et al., 2019: the model descends
    the differentiable F and R of eq. 10, the multipliers ascend on the measured, non-
    differentiable S_B and S_R, the latter under the gate's attacks).

    Every epoch's iterate is a trial; the search keeps the best feasible iterate (the most
    accurate non-degenerate one meeting both targets, :func:`choose_trial`) and stops
    ``dual_patience`` epochs after it last improved, or after ``epochs`` epochs. ``start``
    gives the multipliers to begin from (a warm start: the frontier's runs begin where the
    main run ended); by default a free multiplier starts at 0, so the first epoch trains
    plainly and costs no attack.
    """

    def __init__(
        self,
        ctx: FitContext,
        model: TabularNet,
        *,
        start: tuple[float, float] | None = None,
        epochs: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.model = model
        config = ctx.config
        self.epochs = config.train.epochs if epochs is None else epochs
        self.lambda_f = float(config.lambda_f or 0.0)
        self.lambda_r = float(config.lambda_r or 0.0)
        if config.free_f:
            self.lambda_f = 0.0 if start is None else start[0]
        if config.free_r:
            self.lambda_r = 0.0 if start is None else start[1]

    def objective(self) -> Objective:
        """Eq. 10 at the current multipliers."""
        config = self.ctx.config
        return Objective(
            lambda_f=self.lambda_f,
            lambda_r=self.lambda_r,
            attack=config.attack,
            threat=config.threat,
            fairness=config.fairness,
            fairness_surrogate=config.fairness_surrogate,
        )

    def update(self, score: ValidationScore) -> None:
        """One dual-ascent step on the validation violations, kept within [0, cap].

        A degenerate iterate (near constant, or at the majority floor) halves the free
        multipliers instead: it meets S_B and S_R's floor trivially, and more weight on either
        term only holds the model there.
        """
        ctx, config = self.ctx, self.ctx.config
        if score.degenerate:
            self.lambda_f *= DEGENERATE_SHRINK if config.free_f else 1.0
            self.lambda_r *= DEGENERATE_SHRINK if config.free_r else 1.0
            return
        if config.free_f and ctx.target_f is not None:
            step = config.dual_step_f * (score.bias_score - ctx.target_f)
            self.lambda_f = min(DUAL_CAP_F, max(0.0, self.lambda_f + step))
        if config.free_r and ctx.target_r is not None:
            step = config.dual_step_r * (ctx.target_r - score.robustness)
            self.lambda_r = min(DUAL_CAP_R, max(0.0, self.lambda_r + step))

    def run(self) -> None:
        """Train, scoring and moving the multipliers after every epoch; record the iterates."""
        ctx, config = self.ctx, self.ctx.config
        started = time.perf_counter()
        best = {"accuracy": -math.inf, "epoch": 0}
        first = len(ctx.trials)
        average = _WeightAverage(self.model, config, len(ctx.fit))

        def callback(stats: EpochStats, net: nn.Module) -> bool:
            epoch = stats.epoch + 1
            iterate = average.model if average.enabled else net
            score = score_validation(
                iterate, ctx.val, ctx.space, config.threat, self.objective(), seed=config.train.seed
            )
            lambdas = (self.lambda_f, self.lambda_r)
            report_epoch(ctx, 0, lambdas, stats, self.epochs, score)
            trial = record_trial(
                ctx,
                lambdas,
                score,
                copy.deepcopy(iterate.state_dict()),
                warm_start=epoch > 1 or first > 0,
                epochs_run=epoch,
                best_epoch=epoch,
                seconds=time.perf_counter() - started,
            )
            if trial.meets_targets and score.accuracy > best["accuracy"]:
                best.update(accuracy=score.accuracy, epoch=epoch)
            self.update(score)
            return best["epoch"] > 0 and epoch - best["epoch"] >= config.dual_patience

        train_model(
            self.model,
            ctx.fit.x,
            ctx.fit.y,
            ctx.fit.a,
            objective=self.objective,
            config=config.train,
            space=ctx.space,
            epochs=self.epochs,
            callback=callback,
            trace_gradients=config.trace,
            on_step=average.update if average.enabled else None,
        )


class _WeightAverage:
    """An exponential moving average of the weights over about ``dual_average_epochs`` epochs
    of steps: the iterates the search scores and keeps. The raw weights jump with every step
    and the multipliers' moves; their average decides the same way from epoch to epoch (on
    Adult, S_B of consecutive raw iterates swung between 0.001 and 0.066 at nearly the same
    lambdas), so the figures the multipliers ascend on and the best feasible iterate are less
    a matter of luck."""

    def __init__(self, model: nn.Module, config: FrocInConfig, n_rows: int) -> None:
        self.enabled = config.dual_average_epochs > 0
        batch = config.train.batch_size or n_rows
        steps_per_epoch = max(1, math.ceil(n_rows / max(batch, 1)))
        horizon = max(1.0, config.dual_average_epochs * steps_per_epoch)
        self.decay = 1.0 - 1.0 / horizon
        self.model = copy.deepcopy(model)
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s weights."""
        for average, current in zip(self.model.parameters(), model.parameters(), strict=True):
            average.mul_(self.decay).add_(current.detach(), alpha=1.0 - self.decay)
