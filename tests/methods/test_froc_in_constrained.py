"""FRoC-IN's constrained search (the default): dual ascent on the multipliers, the best
feasible iterate, the smallest relaxation and the frontier.

The tiny problem has a known feasible region: y = [x1 > 0.6] exactly, the protected group's x1
is spread over [0, 1] and the others' over [0.3, 1], and x2 reveals the group. The plain rule
x1 > 0.6 is perfect but gives positive rates 0.40 and 0.57 (S_B 0.17); moving the others'
threshold to 0.72 gives both groups 0.40 (S_B 0) at accuracy ~0.91, so S_B <= 0.08 is reachable
above accuracy 0.9.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from froc_cli.core import DataSpec, ThreatModel, TrainConfig
from froc_cli.methods import FrocInConfig, Trial, ValidationScore
from froc_cli.methods._froc_in._dual import DUAL_CAP_F, DUAL_CAP_R
from froc_cli.methods._froc_in._frontier import frontier_thresholds, smallest_relaxation
from froc_cli.workflows import TrainInConfig, TrainInResult, train_in_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = DataSpec(protected="group", protected_group=("p",), label="label", positive="1")
TRAIN = TrainConfig(model="mlp:16", epochs=40, lr=0.05, seed=0, device="cpu", batch_size=256)
FROC = FrocInConfig(
    delta_f=0.08, delta_r=0.6, threat=ThreatModel(eps=0.05, pgd_steps=3), train=TRAIN
)


def _separable(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    x1 = np.where(a == 0, rng.uniform(0.0, 1.0, n), rng.uniform(0.3, 1.0, n))
    x2 = 0.5 * a + rng.uniform(0.0, 0.5, n)
    return pd.DataFrame(
        {
            "x1": x1.round(4),
            "x2": x2.round(4),
            "group": np.where(a == 0, "p", "u"),
            "label": (x1 > 0.6).astype(int),
        }
    )


def _run(froc: FrocInConfig) -> TrainInResult:
    return train_in_table(_separable(), TrainInConfig(data=SPEC, froc=froc), source="separable")


@pytest.fixture(scope="module")
def constrained() -> TrainInResult:
    return _run(FROC)


def test_constrained_search_finds_what_the_grid_with_the_same_budget_misses(
    constrained: TrainInResult,
) -> None:
    """40 epochs each: one constrained run, and the grid's start fit (20) plus two warm fits
    (10 each)."""
    outcome = constrained.outcome
    assert outcome.search == "constrained" and outcome.mode == "search"
    assert len(outcome.trials) <= TRAIN.epochs  # one iterate an epoch, none beyond the budget
    assert outcome.feasible and constrained.verdict == "met"
    assert outcome.chosen.score.accuracy > 0.9
    assert constrained.test.metrics["bias_score"] <= 0.08
    assert constrained.test.metrics["robustness"] >= 0.6

    grid = _run(
        dataclasses.replace(
            FROC,
            search="grid",
            train=dataclasses.replace(TRAIN, epochs=20),
            warm_epochs=10,
            max_trials=3,
            patience=0,
        )
    )
    assert grid.outcome.search == "grid"
    assert sum(t.epochs_run for t in grid.outcome.trials) == TRAIN.epochs
    assert not grid.outcome.feasible and grid.verdict == "infeasible"


def test_the_chosen_iterate_is_the_most_accurate_meeting_the_tightened_targets(
    constrained: TrainInResult,
) -> None:
    outcome = constrained.outcome
    targets = outcome.targets
    assert targets["bias_score"] is not None and targets["robustness"] is not None
    assert targets["bias_score"] < 0.08 and targets["robustness"] > 0.6
    meeting = [
        t
        for t in outcome.trials
        if t.score.bias_score <= targets["bias_score"]
        and t.score.robustness >= targets["robustness"]
        and not t.score.degenerate
    ]
    assert meeting and all(t.meets_targets for t in meeting)
    best = max(meeting, key=lambda t: (t.score.accuracy, -t.index))
    assert outcome.chosen == best
    assert outcome.chosen.score.bias_score <= targets["bias_score"]
    assert outcome.chosen.score.robustness >= targets["robustness"]
    # the model returned is that iterate's: its validation figures are the chosen trial's
    assert constrained.validation.metrics["bias_score"] == pytest.approx(best.score.bias_score)
    assert constrained.validation.metrics["accuracy"] == pytest.approx(best.score.accuracy)


def test_multipliers_follow_the_violations(constrained: TrainInResult) -> None:
    """Dual ascent: each epoch's lambda_F is the previous one plus step x (S_B - target), at
    least 0; lambda_R stays 0 while S_R meets its target (it never binds here)."""
    trials = constrained.outcome.trials
    target_f = constrained.outcome.targets["bias_score"]
    assert target_f is not None
    assert trials[0].lambda_f == 0.0  # the first epoch trains plainly
    for before, after in itertools.pairwise(trials):
        if before.score.degenerate:
            assert after.lambda_f == pytest.approx(before.lambda_f * 0.5)
            continue
        expected = max(
            0.0, before.lambda_f + FROC.dual_step_f * (before.score.bias_score - target_f)
        )
        assert after.lambda_f == pytest.approx(min(DUAL_CAP_F, expected))
    assert all(t.lambda_r == 0.0 for t in trials)
    assert max(t.lambda_f for t in trials) > 0.5  # the fairness constraint did bind


def test_multipliers_stay_finite_when_a_target_is_out_of_reach() -> None:
    """S_R >= 0.99 under eps 0.3 cannot be met: the violation never ends, the multipliers
    stay within their caps, the verdict is infeasible and the closest point is reported."""
    froc = dataclasses.replace(
        FROC,
        delta_r=0.99,
        threat=ThreatModel(eps=0.3, pgd_steps=3),
        train=dataclasses.replace(TRAIN, epochs=25),
        dual_step_r=20.0,
    )
    result = _run(froc)
    outcome = result.outcome
    assert not outcome.feasible and result.verdict in ("infeasible", "degenerate")
    for trial in outcome.trials:
        assert math.isfinite(trial.lambda_f) and 0.0 <= trial.lambda_f <= DUAL_CAP_F
        assert math.isfinite(trial.lambda_r) and 0.0 <= trial.lambda_r <= DUAL_CAP_R
    assert max(t.lambda_r for t in outcome.trials) > 1.0  # it pushed, within bounds
    relaxation = outcome.relaxation
    assert relaxation is not None
    assert relaxation.closest[1] is not None and relaxation.closest[1] < 0.99
    assert result.to_dict()["relaxation"]["closest"]["delta_r"] == relaxation.closest[1]


def test_same_seed_same_constrained_run(constrained: TrainInResult) -> None:
    again = _run(FROC)
    assert [t.lambda_f for t in again.outcome.trials] == [
        t.lambda_f for t in constrained.outcome.trials
    ]
    for p, q in zip(again.model.parameters(), constrained.model.parameters(), strict=True):
        assert torch.equal(p, q)


def _trial(index: int, accuracy: float, bias: float, robustness: float) -> Trial:
    score = ValidationScore(
        accuracy=accuracy,
        majority_floor=0.6,
        bias_score=bias,
        robustness_pgd=robustness,
        robustness=robustness,
        rarer_share=0.4,
        bce=0.5,
        fairness=0.0,
        robustness_loss=0.5,
        objective=0.5,
        n_rows=2000,
        n_protected=1000,
        n_unprotected=1000,
        favourable_rate_protected=0.4,
        favourable_rate_unprotected=0.4,
    )
    violation = max(0.0, bias - 0.05) + max(0.0, 0.8 - robustness)
    return Trial(index, 1.0, 1.0, True, index + 1, index + 1, 0.1, score, False, False, violation)


def test_smallest_relaxation_by_hand() -> None:
    """Thresholds 0.05 / 0.8 tightened by margins 0.01 / 0.02 (targets 0.04 / 0.82)."""
    config = dataclasses.replace(FROC, delta_f=0.05, delta_r=0.8)
    trials = [
        _trial(0, 0.85, 0.060, 0.83),  # meets S_R's target: S_B 0.060 needs delta_F 0.070
        _trial(1, 0.84, 0.045, 0.825),  # meets S_R's target: needs delta_F 0.055 (smallest)
        _trial(2, 0.83, 0.030, 0.790),  # meets S_B's target: gives delta_R 0.770 (largest)
        _trial(3, 0.82, 0.020, 0.700),  # meets S_B's target: gives delta_R 0.680
    ]
    relaxation = smallest_relaxation(trials, config, {"bias_score": 0.04, "robustness": 0.82})
    assert relaxation is not None
    assert relaxation.delta_f == pytest.approx(0.055)
    assert relaxation.delta_r == pytest.approx(0.77)
    # the closest: trial 1 meets both thresholds (not the targets): violation 0
    assert relaxation.closest_trial == 1
    assert relaxation.closest == (pytest.approx(0.055), pytest.approx(0.805))


def test_each_search_has_its_own_default_margin() -> None:
    """The constrained search picks the best of many iterates held at their targets, so it
    aims further inside the thresholds; a margin given is used by either search."""
    assert FrocInConfig(delta_f=0.1).search_margin == 1.5
    assert FrocInConfig(delta_f=0.1, search="grid").search_margin == 1.0
    assert FrocInConfig(delta_f=0.1, search="grid", margin=0.5).search_margin == 0.5
    assert FrocInConfig(delta_f=0.1, margin=0.0).search_margin == 0.0


def test_frontier_thresholds_surround_the_given_ones() -> None:
    deltas_f, deltas_r = frontier_thresholds(dataclasses.replace(FROC, delta_f=0.04, delta_r=0.7))
    assert deltas_f == [0.02, 0.03, 0.06, 0.08, 0.12]
    assert deltas_r == [0.55, 0.6, 0.65, 0.725, 0.75]
    only_f = frontier_thresholds(dataclasses.replace(FROC, delta_r=None))
    assert only_f[1] == [] and len(only_f[0]) == 5


def test_frontier_leaves_the_chosen_model_alone(constrained: TrainInResult) -> None:
    with_frontier = _run(dataclasses.replace(FROC, frontier=True, frontier_epochs=4))
    frontier = with_frontier.outcome.frontier
    assert frontier is not None and frontier.epochs == 4
    for p, q in zip(with_frontier.model.parameters(), constrained.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [p.delta_f for p in frontier.bias] == [0.04, 0.06, 0.08, 0.12, 0.16, 0.24]
    assert [p.delta_r for p in frontier.robustness] == [0.45, 0.5, 0.55, 0.6, 0.625, 0.65]
    own = [p for p in frontier.bias if p.delta_f == 0.08]
    assert len(own) == 1 and own[0].accuracy == constrained.outcome.chosen.score.accuracy
    for point in (*frontier.bias, *frontier.robustness):
        if point.feasible:
            assert point.bias_score <= point.delta_f and point.robustness >= point.delta_r
    # a point is the best iterate of any run meeting its thresholds: a looser threshold never
    # costs accuracy (the given thresholds' point is the chosen model, outside the pooling)
    for points in (frontier.bias, frontier.robustness):
        pooled = [p for p in points if p.feasible and p not in own]
        key = (lambda p: p.delta_f) if points is frontier.bias else (lambda p: -p.delta_r)
        ordered = sorted(pooled, key=key)
        assert all(a.accuracy <= b.accuracy for a, b in itertools.pairwise(ordered))
    payload = with_frontier.to_dict()
    assert len(payload["frontier"]["bias"]) == 6 and payload["frontier"]["split"] == "validation"
