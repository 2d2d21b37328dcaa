"""Tests of evaluate_decisions over many groups, cross-checked against fairlearn to 1e-9: the
chosen criterion (``bias_score``, clean and attacked), every criterion's ``*_difference``, and
the per-group figures (favourable rate, TPR, FPR, accuracy) against ``MetricFrame.by_group``.

Rows coded -1 (a group too small to judge: its name stays in ``group_names``, its rows do not
carry its code) count for accuracy but for no fairness figure and no group. The paper's binary
parity keeps the keys it always had (no TPR/FPR, no ``*_difference``).
"""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from froc_cli.metrics import Decisions, evaluate_decisions

TOL = 1e-9
CRITERIA = ("parity", "opportunity", "odds")
NAMES = ("north", "south", "east", "west", "tiny")  # "tiny": too small, its rows coded -1
SIZES = (60, 170, 35, 110)
TINY_ROWS = 9


def fairlearn_gap(criterion: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> float:
    if criterion == "parity":
        return float(demographic_parity_difference(y, pred, sensitive_features=groups))
    if criterion == "opportunity":
        frame = MetricFrame(
            metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=groups
        )
        return float(frame.difference(method="between_groups"))
    return float(equalized_odds_difference(y, pred, sensitive_features=groups))


def flip(pred: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(pred.size) < share, 1 - pred, pred).astype(np.int8)


def decisions(criterion: str, seed: int = 0) -> Decisions:
    """Four judged groups of uneven sizes with a planted bias (base rates and decisions lean
    towards later groups), plus ``TINY_ROWS`` rows coded -1; attacked decisions flip some."""
    rng = np.random.default_rng(seed)
    a = np.concatenate([np.repeat(np.arange(len(SIZES)), SIZES), np.full(TINY_ROWS, -1)])
    a = rng.permutation(a).astype(np.int8)
    lean = 0.1 * np.maximum(a, 0) - 0.15
    y = (rng.random(a.size) < 0.45 + lean).astype(np.int8)
    pred = (rng.random(a.size) < np.where(y == 1, 0.7, 0.2) + lean * (1 + (a == 2))).astype(np.int8)
    for g in range(len(SIZES)):
        assert set(y[a == g]) == {0, 1}, "every judged group needs both labels"
    return Decisions(
        y=y,
        a=a,
        pred=pred,
        pred_fgsm=flip(pred, 0.1, rng),
        pred_pgd=flip(pred, 0.25, rng),
        criterion=criterion,
        group_names=NAMES,
    )


def judged_names(d: Decisions) -> tuple[np.ndarray, np.ndarray]:
    """The judged rows and their group names (what fairlearn is given)."""
    judged = d.a >= 0
    assert d.group_names is not None
    return judged, np.asarray(d.group_names)[d.a[judged]]


@pytest.mark.parametrize("criterion", CRITERIA)
def test_bias_scores_match_fairlearn(criterion: str) -> None:
    d = decisions(criterion)
    metrics = evaluate_decisions(d).metrics
    judged, names = judged_names(d)
    y = d.y[judged]
    expected = {c: fairlearn_gap(c, y, d.pred[judged], names) for c in CRITERIA}
    assert metrics["bias_score"] == pytest.approx(expected[criterion], abs=TOL)
    for c in CRITERIA:
        assert metrics[f"{c}_difference"] == pytest.approx(expected[c], abs=TOL)
    assert d.pred_pgd is not None and d.pred_fgsm is not None
    for kind, pred_adv in (("pgd", d.pred_pgd), ("fgsm", d.pred_fgsm)):
        attacked = fairlearn_gap(criterion, y, pred_adv[judged], names)
        assert metrics[f"bias_score_{kind}"] == pytest.approx(attacked, abs=TOL)
    # The planted bias is seen, and the criteria differ on it.
    assert metrics["parity_difference"] > 0.2
    assert metrics["odds_difference"] >= metrics["opportunity_difference"]
    # Accuracy and robustness count every row, the unjudged ones too.
    assert metrics["accuracy"] == pytest.approx(accuracy_score(d.y, d.pred), abs=TOL)
    assert metrics["robustness_pgd"] == pytest.approx(accuracy_score(d.y, d.pred_pgd), abs=TOL)
    assert metrics["rows"] == float(sum(SIZES) + TINY_ROWS)
    # Binary-only figures are not reported over many groups.
    assert "disparate_impact" not in metrics
    assert "equal_opportunity_difference" not in metrics


@pytest.mark.parametrize("criterion", CRITERIA)
def test_group_figures_match_fairlearn_by_group(criterion: str) -> None:
    d = decisions(criterion, seed=1)
    groups = evaluate_decisions(d).groups
    judged, names = judged_names(d)
    assert set(groups) == set(NAMES[: len(SIZES)])  # no "tiny", nothing for -1
    y = d.y[judged]
    frame = MetricFrame(
        metrics={
            "favourable_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y,
        y_pred=d.pred[judged],
        sensitive_features=names,
    ).by_group
    assert d.pred_pgd is not None
    robust = MetricFrame(
        metrics=accuracy_score, y_true=y, y_pred=d.pred_pgd[judged], sensitive_features=names
    ).by_group
    for name, size in zip(NAMES, SIZES, strict=False):
        figures = groups[name]
        assert figures["rows"] == float(size)
        assert figures["base_rate"] == pytest.approx(y[names == name].mean(), abs=TOL)
        for key in ("favourable_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
            assert figures[key] == pytest.approx(frame.loc[name, key], abs=TOL), (name, key)
        assert figures["robust_accuracy_pgd"] == pytest.approx(robust[name], abs=TOL)
        assert "robust_accuracy_fgsm" in figures
    # The groups' rows are the judged rows: the -1 rows are in none.
    assert sum(g["rows"] for g in groups.values()) == float(judged.sum())


def test_unjudged_rows_change_no_fairness_figure() -> None:
    d = decisions("odds", seed=2)
    unjudged = d.a < 0
    assert unjudged.sum() == TINY_ROWS
    # Flip every decision of the unjudged rows: fairness figures and groups stay.
    changed = Decisions(
        y=d.y,
        a=d.a,
        pred=np.where(unjudged, 1 - d.pred, d.pred).astype(np.int8),
        pred_fgsm=d.pred_fgsm,
        pred_pgd=d.pred_pgd,
        criterion=d.criterion,
        group_names=d.group_names,
    )
    before, after = evaluate_decisions(d), evaluate_decisions(changed)
    for key in ("bias_score", "parity_difference", "opportunity_difference", "odds_difference"):
        assert after.metrics[key] == before.metrics[key]
    assert after.groups == before.groups
    assert after.metrics["accuracy"] != before.metrics["accuracy"]


BINARY_KEYS = {
    "accuracy",
    "majority_floor",
    "bias_score",
    "disparate_impact",
    "equal_opportunity_difference",
    "rows",
    "rarer_decision_share",
}


def binary_decisions(attacked: bool) -> Decisions:
    rng = np.random.default_rng(3)
    n = 240
    a = (rng.random(n) < 0.6).astype(np.int8)
    y = (rng.random(n) < 0.35 + 0.2 * a).astype(np.int8)
    pred = (rng.random(n) < np.where(y == 1, 0.7, 0.2) + 0.1 * a).astype(np.int8)
    return Decisions(
        y=y,
        a=a,
        pred=pred,
        pred_fgsm=flip(pred, 0.1, rng) if attacked else None,
        pred_pgd=flip(pred, 0.2, rng) if attacked else None,
    )


@pytest.mark.parametrize("attacked", [False, True])
def test_binary_parity_keeps_its_keys(attacked: bool) -> None:
    d = binary_decisions(attacked)
    assert not d.extended
    ev = evaluate_decisions(d)
    attack_keys = {"robustness_fgsm", "robustness_pgd", "bias_score_fgsm", "bias_score_pgd"}
    # The strongest attack's figures (issue "Robustness numbers you can trust").
    attack_keys |= {
        "robustness",
        "robustness_balanced",
        "robustness_retention",
        "bias_score_attacked",
    }
    assert set(ev.metrics) == BINARY_KEYS | (attack_keys if attacked else set())
    assert set(ev.groups) == {"protected", "unprotected"}
    group_keys = {"rows", "base_rate", "favourable_rate", "accuracy"}
    if attacked:
        group_keys |= {"robust_accuracy_fgsm", "robust_accuracy_pgd", "robust_accuracy"}
    for figures in ev.groups.values():
        assert set(figures) == group_keys
    # The values: parity and per-group figures as fairlearn has them (0 protected, 1 the rest).
    expected = fairlearn_gap("parity", d.y, d.pred, d.a)
    assert ev.metrics["bias_score"] == pytest.approx(expected, abs=TOL)
    by_group = MetricFrame(
        metrics={"favourable_rate": selection_rate, "accuracy": accuracy_score},
        y_true=d.y,
        y_pred=d.pred,
        sensitive_features=d.a,
    ).by_group
    for code, name in enumerate(("protected", "unprotected")):
        figures = ev.groups[name]
        assert figures["rows"] == float((d.a == code).sum())
        assert figures["favourable_rate"] == pytest.approx(
            by_group.loc[code, "favourable_rate"], abs=TOL
        )
        assert figures["accuracy"] == pytest.approx(by_group.loc[code, "accuracy"], abs=TOL)
    if attacked:
        assert d.pred_pgd is not None
        attacked_gap = fairlearn_gap("parity", d.y, d.pred_pgd, d.a)
        assert ev.metrics["bias_score_pgd"] == pytest.approx(attacked_gap, abs=TOL)


@pytest.mark.parametrize("criterion", ["opportunity", "odds"])
def test_binary_other_criterion_is_extended(criterion: str) -> None:
    base = binary_decisions(attacked=True)
    d = Decisions(
        y=base.y,
        a=base.a,
        pred=base.pred,
        pred_fgsm=base.pred_fgsm,
        pred_pgd=base.pred_pgd,
        criterion=criterion,
    )
    assert d.extended
    ev = evaluate_decisions(d)
    assert ev.metrics["bias_score"] == pytest.approx(
        fairlearn_gap(criterion, d.y, d.pred, d.a), abs=TOL
    )
    for c in CRITERIA:
        assert ev.metrics[f"{c}_difference"] == pytest.approx(
            fairlearn_gap(c, d.y, d.pred, d.a), abs=TOL
        )
    assert {"disparate_impact", "equal_opportunity_difference"} <= set(ev.metrics)
    # Binary equal opportunity is the TPR gap (signed in froc's binary score, absolute here).
    assert abs(ev.metrics["equal_opportunity_difference"]) == pytest.approx(
        ev.metrics["opportunity_difference"], abs=TOL
    )
    assert set(ev.groups) == {"protected", "unprotected"}
    for figures in ev.groups.values():
        assert {"true_positive_rate", "false_positive_rate"} <= set(figures)
