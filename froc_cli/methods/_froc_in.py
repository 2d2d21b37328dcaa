"""FRoC-IN (Section 5): train with the loss of eq. 10, with given lambdas or searched for deltas.

The loss is BCE + lambda_F * F + lambda_R * R (eq. 10), where F is the relaxed statistical-parity
gap |sum_i c_i M_c(x_i)| with the constants c_i of eq. 14 (over each batch; full batch by
default) and R is the BCE on FGSM or PGD examples regenerated from the current parameters at
every step (eq. 15). Training is :func:`froc_cli.models._training.train_model`, the one loop; this
module adds the validation split, checkpoint selection, early stopping and the lambda search.

Lambda search (``delta_f`` / ``delta_r`` given, the matching lambda not given)
----------------------------------------------------------------------------
All choices use a validation split carved from the training part (never the test split).

1. *Targets.* The search aims at ``S_B <= delta_F - m_F`` and ``S_R(PGD) >= delta_R + m_R``
   on validation, where the margins are ``margin`` binomial standard errors of the validation
   estimates (:mod:`froc_cli.metrics` tightened thresholds: S_B's at the groups' label
   rates, S_R's at delta_R), so that a choice made at the edge of a threshold on validation
   still tends to meet it on unseen rows.
2. *Start.* One fit from scratch with the free lambdas at 0 (``epochs`` epochs; a plain fit is
   cheap because no attack runs).
3. *Fairness, then robustness, alternating.* While a target is missed, the lambda of that
   target is raised geometrically (x2 from 0.25 for lambda_F and 0.1 for lambda_R, up to 16 and
   8, giving up after three steps without progress) until the target is met, then bisected
   (geometric mean) between the last missing and the first meeting value, ``bisect_steps``
   times; the other lambda stays fixed meanwhile. Fairness goes first because fits without the
   attack are cheap and adversarial training hardly moves S_B; raising lambda_R can push S_B up
   again, so the two are revisited in turn (at most ``rounds`` rounds) until one setting meets
   both. A target met only by degenerate models (step 5) is unreachable: the search goes on
   from the closest non-degenerate fit, tries the other target there, and stops.
4. *Warm starts and early stopping.* Every fit after the first starts from the previous fit's
   selected model and runs at most ``warm_epochs`` epochs. Every ``eval_every`` epochs the model
   is scored on validation (accuracy, S_B, S_R under PGD, and the loss of eq. 10 at the fit's
   lambdas); the checkpoint with the smallest validation loss is kept, and a fit stops after
   ``patience`` scorings without a smaller one. Thresholds are compared once per fit, on its
   kept checkpoint: S_B swings from checkpoint to checkpoint, and picking the checkpoint that
   happens to meet a threshold on validation would mostly pick noise.
5. *Choice.* Among all fits, the most accurate model meeting both targets (then: both
   thresholds) on validation is returned with its lambdas. A degenerate model never counts as
   meeting anything: one whose rarer decision goes to fewer than 5% of rows, or whose accuracy
   is not above the majority-class floor by 2 binomial standard errors (a constant model has
   S_B = 0 and S_R = the floor, so it would "meet" many thresholds). When no fit meets both
   thresholds, the result is infeasible and carries the closest point (smallest total
   violation, non-degenerate first). The search runs at most ``max_trials`` fits (16), so its
   result depends on the seed and not on how busy the machine is; ``search_budget_s`` can also
   stop it from starting fits after that many seconds, at the price of that dependence.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from froc_cli.attacks import Attack, FeatureSpace, make_attack
from froc_cli.core._config import (
    AttackKind,
    FairnessCriterion,
    FairnessSurrogate,
    Objective,
    ThreatModel,
    TrainConfig,
    check_fairness,
    check_surrogate,
)
from froc_cli.core._device import flushing_denormals
from froc_cli.core._distributed import agreed_elapsed
from froc_cli.core._errors import InputError
from froc_cli.core._fairness import active_pair, gap_standard_error
from froc_cli.data._encoder import TabularEncoder
from froc_cli.data._rows import EncodedRows
from froc_cli.metrics import _scores as m
from froc_cli.metrics._evaluate import attack_in_chunks
from froc_cli.metrics._rules import (
    above_floor,
    near_constant_limit,
    shortfall,
    tightened_bias_threshold,
    tightened_robustness_threshold,
)
from froc_cli.models._nets import TabularNet, build_model
from froc_cli.models._training import EpochStats, fairness_term, predict_logits, train_model

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "EpochProgress",
    "FitOutcome",
    "FrocInConfig",
    "Trial",
    "ValidationScore",
    "fit_froc_in",
    "score_validation",
]

# Mini-batches of 1024: a PGD-10 epoch costs about the same at any batch size (every row is
# attacked once), but 1024-row batches make ~25 optimiser steps an epoch instead of one, and
# FRoC-IN on Adult is about converged after 60-80 such epochs (full batch: still rising at 200).
DEFAULT_EPOCHS = 80
DEFAULT_BATCH_SIZE = 1024
LAMBDA_F_CAP = 16.0
LAMBDA_R_CAP = 8.0
START_LAMBDA_F = 0.25
START_LAMBDA_R = 0.1
# A ramp gives up after this many doublings in a row without getting closer to its target.
STALL_STEPS = 3


@dataclass(frozen=True)
class FrocInConfig:
    """How FRoC-IN trains: lambdas or thresholds, the attack, training and search settings.

    A lambda that is given is used as is; a threshold (``delta_f``: S_B <= delta_f,
    ``delta_r``: S_R(PGD) >= delta_r) whose lambda is not given makes that lambda searched
    (see the module docstring). A term with neither weighs 0.
    """

    lambda_f: float | None = None
    lambda_r: float | None = None
    delta_f: float | None = None
    delta_r: float | None = None
    attack: AttackKind = "pgd"
    threat: ThreatModel = field(default_factory=ThreatModel)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=DEFAULT_EPOCHS, batch_size=DEFAULT_BATCH_SIZE)
    )
    val_size: float = 0.2
    eval_every: int = 5
    patience: int = 4
    warm_epochs: int = 40
    margin: float = 1.0
    bisect_steps: int = 2
    rounds: int = 3
    max_trials: int = 16
    search_budget_s: float | None = None
    trace: bool = False
    fairness: FairnessCriterion = "parity"
    fairness_surrogate: FairnessSurrogate = "smoothmax"

    def __post_init__(self) -> None:
        for name in ("lambda_f", "lambda_r"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"--{name.replace('_', '-')} {value}: expected a number >= 0")
        for name in ("delta_f", "delta_r"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise InputError(f"--{name.replace('_', '-')} {value}: expected a number in [0, 1]")
        if all(
            getattr(self, name) is None for name in ("lambda_f", "lambda_r", "delta_f", "delta_r")
        ):
            raise InputError(
                "give --lambda-f/--lambda-r (weights of eq. 10) or --delta-f/--delta-r "
                "(thresholds to search the weights for)"
            )
        if self.attack not in ("fgsm", "pgd"):
            raise InputError(f"--attack {self.attack}: expected fgsm or pgd")
        if not 0.0 < self.val_size < 1.0:
            raise InputError(f"--val-size {self.val_size}: expected a fraction in (0, 1)")
        if self.eval_every < 1:
            raise InputError(f"--eval-every {self.eval_every}: expected at least 1")
        if self.patience < 0:
            raise InputError(f"--patience {self.patience}: expected 0 (off) or more")
        if self.warm_epochs < 1:
            raise InputError(f"--warm-epochs {self.warm_epochs}: expected at least 1")
        if not self.margin >= 0:  # NaN too
            raise InputError(f"--margin {self.margin}: expected 0 or more standard errors")
        if self.search_budget_s is not None and not self.search_budget_s > 0:
            raise InputError(f"--search-budget {self.search_budget_s}: expected seconds > 0")
        if self.max_trials < 1:
            raise InputError(f"--max-fits {self.max_trials}: expected at least 1")
        check_fairness(self.fairness)
        check_surrogate(self.fairness_surrogate)

    @property
    def free_f(self) -> bool:
        """lambda_F is searched."""
        return self.delta_f is not None and self.delta_f < 1.0 and self.lambda_f is None

    @property
    def free_r(self) -> bool:
        """lambda_R is searched (a delta_R of 0 is no constraint: nothing to search)."""
        return self.delta_r is not None and self.delta_r > 0.0 and self.lambda_r is None

    @property
    def searching(self) -> bool:
        """At least one lambda is searched."""
        return self.free_f or self.free_r

    @property
    def constrained(self) -> bool:
        """At least one threshold is given."""
        return self.delta_f is not None or self.delta_r is not None


@dataclass(frozen=True)
class ValidationScore:
    """A model scored on the validation rows (decisions at logit > 0, PGD of the threat model).

    ``rarer_share`` is the share of rows given the rarer decision; ``objective`` is eq. 10 on
    the validation rows with the lambdas of the fit that produced the model. ``bias_score`` is
    the fit's criterion; the ``*_protected`` and ``*_unprotected`` figures are the two groups
    whose gap it is (binary parity: the protected group and the rest; otherwise the highest
    and the lowest group of the rate that differs most), which give its standard error.
    """

    accuracy: float
    majority_floor: float
    bias_score: float
    robustness_pgd: float
    robustness: float
    rarer_share: float
    bce: float
    fairness: float
    robustness_loss: float
    objective: float
    n_rows: int
    n_protected: int
    n_unprotected: int
    favourable_rate_protected: float
    favourable_rate_unprotected: float

    @property
    def near_constant(self) -> bool:
        """Decisions (almost) all one class: the rarer decision goes to fewer than 5% of rows
        (or half the rarer label's share, when that is smaller)."""
        return self.rarer_share < near_constant_limit(1.0 - self.majority_floor)

    @property
    def below_floor(self) -> bool:
        """Accuracy not clearly above the majority-class floor (see :func:`above_floor`)."""
        return not above_floor(self.accuracy, self.majority_floor, self.n_rows)

    @property
    def degenerate(self) -> bool:
        """Near constant or no better than the majority floor: never a success."""
        return self.near_constant or self.below_floor

    def bias_se(self) -> float:
        """Binomial standard error of S_B."""
        return gap_standard_error(
            self.favourable_rate_protected,
            self.n_protected,
            self.favourable_rate_unprotected,
            self.n_unprotected,
        )

    def robustness_se(self) -> float:
        """Binomial standard error of S_R."""
        r = self.robustness
        return math.sqrt(r * (1 - r) / max(self.n_rows, 1))

    def to_dict(self) -> dict[str, Any]:
        """Metrics and flags as a JSON-friendly dictionary."""
        return {
            **asdict(self),
            "near_constant": self.near_constant,
            "below_floor": self.below_floor,
        }


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
class FitOutcome:
    """The chosen model, its lambdas, the search path and the trace."""

    model: TabularNet
    lambda_f: float
    lambda_r: float
    mode: Literal["given", "search"]
    chosen: Trial
    trials: list[Trial]
    feasible: bool
    targets: dict[str, float | None]
    trace: list[dict[str, float]]
    seconds: float


@dataclass
class _Context:
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


def score_validation(
    model: nn.Module,
    rows: EncodedRows,
    space: FeatureSpace,
    threat: ThreatModel,
    objective: Objective,
    seed: int = 0,
) -> ValidationScore:
    """Score ``model`` on ``rows``: accuracy, S_B, S_R under PGD, S_R as the gate measures it
    (``robustness``: every attack of ``threat``, APGD's restarts drawn from ``seed``, summarised
    by its robust metric) and eq. 10's terms.

    R uses the training attack of ``objective`` (the PGD examples when it is PGD).
    """
    was_training = model.training
    model.eval()
    logits = predict_logits(model, rows.x)
    pgd = make_attack("pgd", model, space, threat)
    x_pgd = attack_in_chunks(pgd, rows.x, rows.y)
    if objective.attack == "pgd":
        x_train_attack = x_pgd
    else:
        x_train_attack = attack_in_chunks(
            make_attack(objective.attack, model, space, objective.threat), rows.x, rows.y
        )
    logits_pgd = predict_logits(model, x_pgd)
    logits_adv = logits_pgd if x_train_attack is x_pgd else predict_logits(model, x_train_attack)
    with torch.no_grad():
        bce = float(F.binary_cross_entropy_with_logits(logits, rows.y))
        fairness = float(
            fairness_term(
                torch.sigmoid(logits),
                rows.y,
                rows.a,
                objective.fairness,
                objective.fairness_surrogate,
            )
        )
        robustness_loss = float(F.binary_cross_entropy_with_logits(logits_adv, rows.y))
    y = rows.y.cpu().numpy().astype(np.int8)
    a = rows.a_numpy.astype(np.int8)
    pred = (logits > 0).cpu().numpy().astype(np.int8)
    pred_pgd = (logits_pgd > 0).cpu().numpy().astype(np.int8)
    # The PGD examples above serve the gate too; the other attacks are crafted here.
    robust = m.unbroken_rows(
        (
            pred_pgd
            if kind == "pgd"
            else _decisions(model, make_attack(kind, model, space, threat, seed=seed), rows)
            for kind in threat.attacks
        ),
        y,
    )
    model.train(was_training)
    positive_share = float(pred.mean()) if len(pred) else 0.0
    bias = m.criterion_score(pred, y, a, objective.fairness)
    pair = active_pair(pred, y, a, objective.fairness)
    return ValidationScore(
        accuracy=m.accuracy(pred, y),
        majority_floor=m.majority_floor(y),
        bias_score=bias,
        robustness_pgd=m.robustness_score(pred_pgd, y),
        robustness=m.robust_summary(robust, y, pred, threat.robust_metric),
        rarer_share=min(positive_share, 1.0 - positive_share),
        bce=bce,
        fairness=fairness,
        robustness_loss=robustness_loss,
        objective=bce + objective.lambda_f * fairness + objective.lambda_r * robustness_loss,
        n_rows=len(y),
        n_protected=pair[1],
        n_unprotected=pair[3],
        favourable_rate_protected=pair[0],
        favourable_rate_unprotected=pair[2],
    )


def _decisions(model: nn.Module, attack: Attack, rows: EncodedRows) -> np.ndarray:
    """The model's decisions on ``attack``'s examples of ``rows``."""
    return (predict_logits(model, attack_in_chunks(attack, rows.x, rows.y)) > 0).cpu().numpy()


def _violation(score: ValidationScore, target_f: float | None, target_r: float | None) -> float:
    """Total amount by which ``score`` misses the targets (0: met); degenerate adds 1."""
    return shortfall(
        score.bias_score, score.robustness, target_f, target_r, degenerate=score.degenerate
    )


def _rank(ctx: _Context, score: ValidationScore) -> tuple[int, float]:
    """Checkpoint order (larger is better): meets the targets > meets the thresholds > misses.

    Among models meeting, the more accurate; among the others, the smaller violation. Without
    thresholds, the smaller validation objective (eq. 10).
    """
    config = ctx.config
    if not config.constrained:
        return 0, -score.objective
    if _violation(score, ctx.target_f, ctx.target_r) == 0.0:
        return 2, score.accuracy
    if _violation(score, config.delta_f, config.delta_r) == 0.0:
        return 1, score.accuracy
    return 0, -_violation(score, config.delta_f, config.delta_r)


def _run_fit(
    ctx: _Context,
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
        if config.trace:
            ctx.trace.append(_trace_row(index, lambda_f, lambda_r, stats, score))
        if ctx.on_epoch is not None:
            ctx.on_epoch(
                EpochProgress(
                    trial=index,
                    lambda_f=lambda_f,
                    lambda_r=lambda_r,
                    epoch=epochs_run,
                    epochs=epochs,
                    accuracy=None if score is None else score.accuracy,
                    bias_score=None if score is None else score.bias_score,
                    robustness=None if score is None else score.robustness,
                )
            )
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
    score = best["score"]
    trial = Trial(
        index=index,
        lambda_f=lambda_f,
        lambda_r=lambda_r,
        warm_start=warm_start,
        epochs_run=epochs_run,
        best_epoch=best["epoch"],
        seconds=time.perf_counter() - started,
        score=score,
        meets_targets=_violation(score, ctx.target_f, ctx.target_r) == 0.0,
        meets_thresholds=_violation(score, config.delta_f, config.delta_r) == 0.0,
        violation=_violation(score, config.delta_f, config.delta_r),
    )
    ctx.trials.append(trial)
    ctx.states.append(best["state"])
    return trial


def _trace_row(
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


class _Search:
    """The delta-driven lambda search of the module docstring."""

    def __init__(self, ctx: _Context, model: TabularNet) -> None:
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
        return _run_fit(
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
        trial = _run_fit(
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


def _choose(ctx: _Context) -> int:
    """Index of the chosen trial: the best rank over all trials (ties: the earlier)."""
    ranks = [_rank(ctx, trial.score) for trial in ctx.trials]
    return max(range(len(ranks)), key=lambda i: (ranks[i], -i))


@flushing_denormals
def fit_froc_in(
    fit: EncodedRows,
    val: EncodedRows,
    encoder: TabularEncoder,
    config: FrocInConfig,
    *,
    device: torch.device,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> FitOutcome:
    """Train a FRoC-IN model on ``fit`` choosing on ``val``: one fit with the given lambdas, or
    the lambda search of the module docstring. Never looks at any test rows."""
    started = time.perf_counter()
    space = FeatureSpace.from_encoder(encoder, device)
    model = build_model(
        config.train.model, encoder.n_features, seed=config.train.seed, device=device
    )
    ctx = _Context(
        config=config,
        fit=fit,
        val=val,
        space=space,
        target_f=None,
        target_r=None,
        on_epoch=on_epoch,
        started=started,
    )
    # The margins are sized from the validation split's group sizes and base rates, before any
    # fit, so every checkpoint is ranked against the same targets.
    if config.delta_f is not None:
        ctx.target_f = tightened_bias_threshold(
            config.delta_f,
            y=val.y_numpy,
            a=val.a_numpy,
            margin=config.margin,
            criterion=config.fairness,
        )
    if config.delta_r is not None:
        ctx.target_r = tightened_robustness_threshold(
            config.delta_r, n_rows=len(val), margin=config.margin
        )
    if config.searching:
        _Search(ctx, model).run()
        index = _choose(ctx)
        mode: Literal["given", "search"] = "search"
    else:
        _run_fit(
            ctx,
            model,
            float(config.lambda_f or 0.0),
            float(config.lambda_r or 0.0),
            config.train.epochs,
            warm_start=False,
        )
        index = 0
        mode = "given"
    chosen = ctx.trials[index]
    model.load_state_dict(ctx.states[index])
    model.eval()
    return FitOutcome(
        model=model,
        lambda_f=chosen.lambda_f,
        lambda_r=chosen.lambda_r,
        mode=mode,
        chosen=chosen,
        trials=list(ctx.trials),
        feasible=chosen.meets_thresholds and not chosen.score.degenerate,
        targets={"bias_score": ctx.target_f, "robustness": ctx.target_r},
        trace=list(ctx.trace),
        seconds=time.perf_counter() - started,
    )
