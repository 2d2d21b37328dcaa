"""Tests of froc_cli.metrics._scores and the evaluation/gate built on them.

Closed-form tiny examples with literal numbers, and cross-checks against fairlearn (an
independent implementation): S_B vs demographic_parity_difference, the disparate-impact ratio vs
demographic_parity_ratio (same convention when the protected group has the lower rate), and the
equal-opportunity difference vs fairlearn's per-group true_positive_rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    true_positive_rate,
)

from froc_cli.core import InputError
from froc_cli.metrics import Decisions, check_gate, evaluate_decisions
from froc_cli.metrics import _scores as m

# Eight rows: a=0 are rows 0-3 (protected), a=1 rows 4-7.
Y = np.array([1, 0, 1, 0, 1, 1, 0, 1])
A = np.array([0, 0, 0, 0, 1, 1, 1, 1])
PRED = np.array([1, 0, 0, 0, 1, 1, 1, 0])


# --------------------------------------------------------------------------------------------
# closed form
# --------------------------------------------------------------------------------------------


def test_closed_form_tiny_example() -> None:
    # favourable rates: a=0 -> 1/4, a=1 -> 3/4
    assert m.favourable_rate(PRED, A, 0) == 0.25
    assert m.favourable_rate(PRED, A, 1) == 0.75
    assert m.bias_score(PRED, A) == 0.5
    assert m.disparate_impact_ratio(PRED, A) == pytest.approx(1 / 3)
    # correct: rows 0,1,3,4,5 -> 5/8
    assert m.accuracy(PRED, Y) == 0.625
    assert m.robustness_score(PRED, Y) == 0.625
    # TPR a=0: positives rows 0,2 -> predicted 1,0 -> 1/2; a=1: rows 4,5,7 -> 1,1,0 -> 2/3
    assert m.equal_opportunity_difference(PRED, Y, A) == pytest.approx(0.5 - 2 / 3)
    # 5 of 8 labels are 1
    assert m.majority_floor(Y) == 0.625
    assert m.majority_floor(np.array([0, 0, 0, 1])) == 0.75


def test_bias_score_is_symmetric_and_zero_for_equal_rates() -> None:
    assert m.bias_score(PRED, 1 - A) == m.bias_score(PRED, A)
    assert m.bias_score(np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])) == 0.0
    assert m.bias_score(np.ones(6), np.array([0, 1, 0, 1, 0, 1])) == 0.0


def test_undefined_values_are_nan() -> None:
    # no unprotected favourable decisions: the ratio is undefined
    assert math.isnan(m.disparate_impact_ratio(np.array([1, 0, 0, 0]), np.array([0, 0, 1, 1])))
    # an empty group has no rate
    assert math.isnan(m.favourable_rate(np.array([1, 0]), np.array([1, 1]), 0))
    assert math.isnan(m.bias_score(np.array([1, 0]), np.array([1, 1])))
    # no positives in a group: TPR undefined
    assert math.isnan(
        m.equal_opportunity_difference(np.array([1, 1]), np.array([0, 1]), np.array([0, 1]))
    )


def test_robustness_uses_true_labels() -> None:
    y = np.array([1, 1, 0, 0])
    assert m.robustness_score(np.array([1, 0, 0, 1]), y) == 0.5
    assert m.robustness_score(y, y) == 1.0


# --------------------------------------------------------------------------------------------
# fairlearn cross-checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_against_fairlearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    a = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
    a[:2] = [0, 1]
    y = (rng.random(n) < 0.5).astype(int)
    y[:4] = [1, 1, 0, 0]
    pred = (rng.random(n) < np.where(a == 1, 0.6, rng.uniform(0.1, 0.6))).astype(int)

    assert m.bias_score(pred, a) == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=a), abs=1e-12
    )

    rate0, rate1 = m.favourable_rate(pred, a, 0), m.favourable_rate(pred, a, 1)
    ratio = demographic_parity_ratio(y, pred, sensitive_features=a)
    if rate0 <= rate1:  # fairlearn's min/max equals froc's a=0 / a=1 in this case
        assert m.disparate_impact_ratio(pred, a) == pytest.approx(ratio, abs=1e-12)
    else:
        assert 1.0 / m.disparate_impact_ratio(pred, a) == pytest.approx(ratio, abs=1e-12)

    tpr = MetricFrame(
        metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=a
    ).by_group
    assert m.equal_opportunity_difference(pred, y, a) == pytest.approx(
        float(tpr[0] - tpr[1]), abs=1e-12
    )


# --------------------------------------------------------------------------------------------
# bootstrap and evaluation
# --------------------------------------------------------------------------------------------


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    values = np.random.default_rng(3).random(300)

    def mean_of(rows: np.ndarray) -> float:
        return float(values[rows].mean())

    first = m.bootstrap_interval(mean_of, len(values), seed=7, n_resamples=300)
    again = m.bootstrap_interval(mean_of, len(values), seed=7, n_resamples=300)
    other = m.bootstrap_interval(mean_of, len(values), seed=8, n_resamples=300)
    assert first == again
    assert first != other
    low, high = first
    assert low < values.mean() < high
    # standard error of a mean of U(0,1) with n=300 is ~0.0167: the 95% width is ~0.065
    assert 0.04 < high - low < 0.09


def test_bootstrap_interval_of_an_undefined_statistic_is_nan() -> None:
    low, high = m.bootstrap_interval(lambda rows: float("nan"), 10, seed=0, n_resamples=20)
    assert math.isnan(low) and math.isnan(high)


def test_evaluate_decisions_metrics_and_groups() -> None:
    d = Decisions(
        y=Y.astype(np.int8),
        a=A.astype(np.int8),
        pred=PRED.astype(np.int8),
        pred_fgsm=np.array([0, 0, 0, 0, 1, 1, 1, 0], dtype=np.int8),
        pred_pgd=np.array([0, 0, 0, 1, 0, 1, 1, 0], dtype=np.int8),
    )
    ev = evaluate_decisions(d)
    assert ev.metrics == pytest.approx(
        {
            "accuracy": 0.625,
            "majority_floor": 0.625,
            "bias_score": 0.5,
            "disparate_impact": 1 / 3,
            "equal_opportunity_difference": 0.5 - 2 / 3,
            "robustness_fgsm": 4 / 8,  # rows 1,3,4,5 correct
            "bias_score_fgsm": 0.75,
            "robustness_pgd": 2 / 8,  # rows 1,5 correct
            "bias_score_pgd": 0.25,
            # no attack broke rows 1 and 5; balanced (1/5 + 1/3) / 2; retention: 2 of the 5
            # correct rows; the strongest attack's decisions are PGD's here
            "robustness": 2 / 8,
            "robustness_balanced": (1 / 5 + 1 / 3) / 2,
            "robustness_retention": 2 / 5,
            "bias_score_attacked": 0.25,
            "rows": 8,
            "rarer_decision_share": 4 / 8,
        }
    )
    assert ev.groups["protected"] == pytest.approx(
        {
            "rows": 4,
            "base_rate": 0.5,
            "favourable_rate": 0.25,
            "accuracy": 0.75,
            "robust_accuracy_fgsm": 0.5,
            "robust_accuracy_pgd": 0.25,
            "robust_accuracy": 0.25,
        }
    )
    assert ev.groups["unprotected"]["base_rate"] == 0.75
    assert ev.intervals == {}


def test_evaluate_decisions_without_attacks_and_with_intervals() -> None:
    rng = np.random.default_rng(0)
    n = 200
    d = Decisions(
        y=(rng.random(n) < 0.5).astype(np.int8),
        a=(rng.random(n) < 0.5).astype(np.int8),
        pred=(rng.random(n) < 0.5).astype(np.int8),
    )
    ev = evaluate_decisions(d, ci=True, seed=1, n_resamples=200)
    assert set(ev.metrics) == {
        "accuracy",
        "majority_floor",
        "bias_score",
        "disparate_impact",
        "equal_opportunity_difference",
        "rows",
        "rarer_decision_share",
    }
    # Counts and the degenerate rule's share carry no interval.
    assert set(ev.intervals) == set(ev.metrics) - {"majority_floor", "rows", "rarer_decision_share"}
    for name, (low, high) in ev.intervals.items():
        assert low <= ev.metrics[name] <= high, name
    assert evaluate_decisions(d, ci=True, seed=1, n_resamples=200).intervals == ev.intervals


# --------------------------------------------------------------------------------------------
# the CI gate
# --------------------------------------------------------------------------------------------


def test_gate_thresholds() -> None:
    metrics = {"bias_score": 0.1, "robustness_pgd": 0.6}
    assert check_gate(metrics, delta_f=0.1, delta_r=0.6).passed
    assert not check_gate(metrics, delta_f=0.09, delta_r=None).passed
    assert not check_gate(metrics, delta_f=None, delta_r=0.61).passed
    vacuous = check_gate(metrics, delta_f=None, delta_r=None)
    assert vacuous.passed and vacuous.checks == ()
    checks = check_gate(metrics, delta_f=0.2, delta_r=0.7).checks
    assert [(c.metric, c.comparison, c.passed) for c in checks] == [
        ("bias_score", "<=", True),
        ("robustness_pgd", ">=", False),
    ]


def test_gate_never_passes_on_nan() -> None:
    nan = {"bias_score": float("nan"), "robustness_pgd": float("nan")}
    assert not check_gate(nan, delta_f=1.0, delta_r=None).passed
    assert not check_gate(nan, delta_f=None, delta_r=0.0).passed


def test_gate_delta_r_needs_robustness() -> None:
    with pytest.raises(InputError, match="--delta-r"):
        check_gate({"bias_score": 0.0}, delta_f=None, delta_r=0.5)
