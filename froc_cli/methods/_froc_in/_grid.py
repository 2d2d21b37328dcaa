"""The grid search of lambda_F and lambda_R (``--search grid``)."""

from __future__ import annotations

import math
from typing import Literal

from froc_cli.core._distributed import agreed_elapsed
from froc_cli.models._nets import TabularNet

from ._fit import FitContext, Trial, run_fit

__all__ = ["GridSearch"]

LAMBDA_F_CAP = 16.0
LAMBDA_R_CAP = 8.0
START_LAMBDA_F = 0.25
START_LAMBDA_R = 0.1
# A ramp gives up after this many doublings in a row without getting closer to its target.
STALL_STEPS = 3


class GridSearch:
    """The delta-driven lambda search of the module docstring."""

    def __init__(self, ctx: FitContext, model: TabularNet) -> None:
        self.ctx = ctx
        self.model = model
        config = ctx.config
        self.lambda_f = 0.0 if config.free_f else float(config.lambda_f or 0.0)
        self.lambda_r = 0.0 if config.free_r else float(config.lambda_r or 0.0)
        self.unreachable: set[str] = set()

    def out_of_budget(self) -> bool:
        config = self.ctx.config
        return len(self.ctx.trials) >= config.max_trials or (
            config.search_budget_s is not None
            and agreed_elapsed(self.ctx.started) >= config.search_budget_s
        )

    def fit(self, lambda_f: float, lambda_r: float) -> Trial:
        """Warm-started fit from the previous fit's selected model; a setting already fitted
        is not fitted again (its model is taken up instead)."""
        for trial in self.ctx.trials:
            if math.isclose(trial.lambda_f, lambda_f) and math.isclose(trial.lambda_r, lambda_r):
                self.model.load_state_dict(self.ctx.states[trial.index])
                return trial
        return run_fit(
            self.ctx, self.model, lambda_f, lambda_r, self.ctx.config.warm_epochs, warm_start=True
        )

    def meets_f(self, trial: Trial) -> bool:
        return self.ctx.target_f is None or trial.score.bias_score <= self.ctx.target_f

    def meets_r(self, trial: Trial) -> bool:
        return self.ctx.target_r is None or trial.score.robustness >= self.ctx.target_r

    def solve(self, which: Literal["f", "r"], trial: Trial) -> Trial:
        """Raise lambda_<which> geometrically until its target is met, then bisect.

        The ramp gives up at the cap, or when three steps in a row bring the metric no closer to
        its target than the best step so far (a plateau: a larger weight will not help). When
        the target is met only by degenerate models, it is marked unreachable. Either way the
        search goes on from the non-degenerate step that came closest.
        """
        meets = self.meets_f if which == "f" else self.meets_r
        cap = LAMBDA_F_CAP if which == "f" else LAMBDA_R_CAP
        current = self.lambda_f if which == "f" else self.lambda_r
        low = current
        value = max(START_LAMBDA_F if which == "f" else START_LAMBDA_R, current * 2)

        def fit_at(v: float) -> Trial:
            if which == "f":
                return self.fit(v, self.lambda_r)
            return self.fit(self.lambda_f, v)

        def closeness(t: Trial) -> float:
            score = t.score
            return -score.bias_score if which == "f" else score.robustness

        closest = trial  # the non-degenerate fit nearest the target so far
        stalled = 0
        high: Trial | None = None
        while value <= cap and stalled < STALL_STEPS and not self.out_of_budget():
            candidate = fit_at(value)
            if meets(candidate):
                high = candidate
                break
            improved = closeness(candidate) > closeness(closest)
            stalled = 0 if improved else stalled + 1
            if improved and not candidate.score.degenerate:
                closest = candidate
            low, value = value, value * 2
        if high is not None:
            for _ in range(self.ctx.config.bisect_steps):
                high_value = high.lambda_f if which == "f" else high.lambda_r
                if self.out_of_budget() or high_value / max(low, 1e-12) < 1.3:
                    break
                middle = math.sqrt(low * high_value) if low > 0 else high_value / 2
                candidate = fit_at(middle)
                if meets(candidate):
                    high = candidate
                else:
                    low = middle
                    if closeness(candidate) > closeness(closest) and not candidate.score.degenerate:
                        closest = candidate
            if not high.score.degenerate:
                return self._go_on_from(which, high)
        if high is not None:
            # Met only by collapsing the model: more weight on either term will not help.
            self.unreachable.add(which)
        return self._go_on_from(which, closest)

    def _go_on_from(self, which: Literal["f", "r"], trial: Trial) -> Trial:
        """Continue the search from ``trial``: its model and its lambda_<which>."""
        self.model.load_state_dict(self.ctx.states[trial.index])
        if which == "f":
            self.lambda_f = trial.lambda_f
        else:
            self.lambda_r = trial.lambda_r
        return trial

    def run(self) -> None:
        """The start fit, then fairness and robustness in turn (module docstring, step 3)."""
        ctx, config = self.ctx, self.ctx.config
        trial = run_fit(
            ctx, self.model, self.lambda_f, self.lambda_r, config.train.epochs, warm_start=False
        )
        for _ in range(config.rounds):
            if self.out_of_budget() or (self.meets_f(trial) and self.meets_r(trial)):
                break
            if config.free_f and "f" not in self.unreachable and not self.meets_f(trial):
                trial = self.solve("f", trial)
            if (
                config.free_r
                and "r" not in self.unreachable
                and not self.meets_r(trial)
                and not self.out_of_budget()
            ):
                trial = self.solve("r", trial)
            # A target missed with its lambda fixed, or reachable only by a degenerate model:
            # no further move can meet both.
            stuck_f = not self.meets_f(trial) and (not config.free_f or "f" in self.unreachable)
            stuck_r = not self.meets_r(trial) and (not config.free_r or "r" in self.unreachable)
            if stuck_f or stuck_r:
                break
