"""The shared rules of judgement: when a model is degenerate, how far figures fall short of
the thresholds, how thresholds are tightened for a finite validation split, and the gate.

Every method and workflow judges with these, so audit, train-in, preprocess and compare can
never disagree about what "met" or "degenerate" means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from froc_cli.core._errors import InputError
from froc_cli.core._fairness import criterion_conditions, is_binary_coding
from froc_cli.metrics._scores import accuracy, majority_floor

__all__ = [
    "FLOOR_Z",
    "NEAR_CONSTANT_SHARE",
    "ROBUSTNESS_KEYS",
    "GateCheck",
    "GateResult",
    "above_floor",
    "check_gate",
    "degenerate_checks",
    "floor_warning",
    "is_degenerate",
    "is_degenerate_decisions",
    "is_near_constant",
    "near_constant_limit",
    "parity_flip_count",
    "parity_flip_quotas",
    "robustness_key",
    "shortfall",
    "tightened_bias_threshold",
    "tightened_robustness_threshold",
]

# A model whose rarer decision goes to fewer than this share of rows (or half the rarer
# label's share, when smaller) is treated as constant: it is fair and often "robust" for free.
NEAR_CONSTANT_SHARE = 0.05
# A model must beat the majority-class floor by this many binomial standard errors.
FLOOR_Z = 2.0


def above_floor(accuracy: float, floor: float, n_rows: int) -> bool:
    """True when ``accuracy`` beats the majority-class ``floor`` by ``FLOOR_Z`` binomial
    standard errors of the floor over ``n_rows`` rows."""
    margin = FLOOR_Z * math.sqrt(floor * (1.0 - floor) / max(n_rows, 1))
    return accuracy >= floor + margin


def near_constant_limit(minority_share: float) -> float:
    """The rarer-decision share below which decisions count as constant, for labels whose
    rarer class has share ``minority_share``."""
    return min(NEAR_CONSTANT_SHARE, minority_share / 2)


def is_near_constant(decisions: np.ndarray, labels: np.ndarray) -> bool:
    """True when the rarer decision goes to fewer rows than :func:`near_constant_limit`."""
    share = float(np.mean(decisions)) if len(decisions) else 0.0
    minority = float(np.mean(labels)) if len(labels) else 0.5
    return min(share, 1.0 - share) < near_constant_limit(min(minority, 1.0 - minority))


def is_degenerate_decisions(decisions: np.ndarray, labels: np.ndarray) -> bool:
    """Near constant, or accuracy not clearly above the majority floor: never a success."""
    return is_near_constant(decisions, labels) or not above_floor(
        accuracy(decisions, labels), majority_floor(labels), len(labels)
    )


def is_degenerate(metrics: Mapping[str, float]) -> bool:
    """:func:`is_degenerate_decisions` judged from reported figures.

    Needs ``accuracy`` and ``majority_floor`` (False without a floor); uses
    ``rarer_decision_share`` and ``rows`` when present.
    """
    acc, floor = metrics.get("accuracy", math.nan), metrics.get("majority_floor", math.nan)
    if not math.isfinite(floor):
        return False
    if not math.isfinite(acc):
        return True
    share = metrics.get("rarer_decision_share", math.nan)
    if math.isfinite(share) and share < near_constant_limit(1.0 - floor):
        return True
    rows = metrics.get("rows", math.nan)
    if math.isfinite(rows) and rows > 0:
        return not above_floor(acc, floor, int(rows))
    return acc <= floor


def shortfall(
    bias_score: float,
    robustness: float,
    delta_f: float | None,
    delta_r: float | None,
    *,
    degenerate: bool = False,
) -> float:
    """How far figures miss S_B <= ``delta_f`` and S_R >= ``delta_r``: the sum of both gaps
    (0 when both hold), plus 1 for a degenerate model. A threshold of None is not checked; a
    NaN figure under a checked threshold is an infinite shortfall."""
    total = 0.0
    for value, gap in (
        (bias_score, None if delta_f is None else bias_score - delta_f),
        (robustness, None if delta_r is None else delta_r - robustness),
    ):
        if gap is None:
            continue
        if not math.isfinite(value):
            return math.inf
        total += max(0.0, gap)
    return total + (1.0 if degenerate else 0.0)


def tightened_bias_threshold(
    delta_f: float, *, y: np.ndarray, a: np.ndarray, margin: float, criterion: str = "parity"
) -> float:
    """delta_F lowered by ``margin`` binomial standard errors of S_B measured on rows with
    labels ``y`` and groups ``a`` (0 protected, 1 the rest), each group's taken at its label
    rate, so a model chosen on these rows meets delta_F on new rows with about the
    confidence ``margin`` asks for.

    With many groups or another criterion, the error is that of the least certain gap: the
    two groups with the fewest rows of the criterion's rate (TPR: positives; FPR: negatives),
    each at its label rate (parity) or at 1/2 (TPR, FPR: the worst case, as no model's rates
    are known yet)."""
    y, a = np.asarray(y), np.asarray(a)
    if criterion != "parity" or not is_binary_coding(a):
        return max(0.0, delta_f - margin * math.sqrt(_largest_gap_variance(y, a, criterion)))
    variance = 0.0
    for group in (0, 1):
        members = y[a == group]
        rate = float(members.mean()) if len(members) else 0.5
        variance += rate * (1 - rate) / max(len(members), 1)
    return max(0.0, delta_f - margin * math.sqrt(variance))


def _largest_gap_variance(y: np.ndarray, a: np.ndarray, criterion: str) -> float:
    """Sum of the two largest per-group variances of the criterion's rate (see
    :func:`tightened_bias_threshold`), the largest over the rates it compares."""
    largest = 0.0
    for _, label in criterion_conditions(criterion):
        rows = (a >= 0) if label is None else (a >= 0) & (y == label)
        variances = []
        for group in np.unique(a[rows]):
            members = y[rows & (a == group)]
            rate = float(members.mean()) if label is None else 0.5
            variances.append(rate * (1 - rate) / max(len(members), 1))
        largest = max(largest, sum(sorted(variances)[-2:]))
    return largest


def tightened_robustness_threshold(delta_r: float, *, n_rows: int, margin: float) -> float:
    """delta_R raised by ``margin`` binomial standard errors of S_R over ``n_rows`` rows, taken
    at delta_R itself (the variance of a model exactly at the threshold)."""
    return min(1.0, delta_r + margin * math.sqrt(delta_r * (1 - delta_r) / max(n_rows, 1)))


@dataclass(frozen=True)
class GateCheck:
    """One gate condition: ``value <= threshold`` (bias) or ``>= threshold`` (robustness)."""

    metric: str
    value: float
    threshold: float
    comparison: str
    passed: bool


@dataclass(frozen=True)
class GateResult:
    """The CI verdict: passed when every requested check holds."""

    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        """True when every check holds (and vacuously when none were requested)."""
        return all(check.passed for check in self.checks)


def degenerate_checks(metrics: Mapping[str, float]) -> tuple[GateCheck, ...]:
    """The degenerate-model rule as gate checks: the rarer decision goes to at least
    :func:`near_constant_limit` of the rows, and accuracy beats the majority floor by
    ``FLOOR_Z`` standard errors (over ``metrics["rows"]`` rows). Empty when ``metrics`` has
    no accuracy and floor to judge."""
    if "accuracy" not in metrics or "majority_floor" not in metrics:
        return ()
    acc, floor = float(metrics["accuracy"]), float(metrics["majority_floor"])
    rows = int(metrics.get("rows", 0) or 0)
    checks = []
    share = metrics.get("rarer_decision_share")
    if share is not None:
        limit = near_constant_limit(1.0 - floor) if math.isfinite(floor) else math.nan
        checks.append(GateCheck("rarer_decision_share", share, limit, ">=", bool(share >= limit)))
    needed = floor + FLOOR_Z * math.sqrt(max(floor * (1.0 - floor), 0.0) / max(rows, 1))
    checks.append(GateCheck("accuracy", acc, needed, ">=", bool(acc >= needed)))
    return tuple(checks)


ROBUSTNESS_KEYS = {
    "accuracy": "robustness",
    "balanced": "robustness_balanced",
    "retention": "robustness_retention",
}
# What a constant model scores on each summary of S_R (accuracy: the majority share).
_CONSTANT_SCORES = {"balanced": 0.5, "retention": 1.0}


def robustness_key(metrics: Mapping[str, float], robust_metric: str = "accuracy") -> str:
    """The metric ``--delta-r`` gates: the robust-metric summary over every attack run
    (``robustness``, ``robustness_balanced``, ``robustness_retention``), or ``robustness_pgd``
    for figures measured with PGD alone."""
    key = ROBUSTNESS_KEYS[robust_metric]
    return key if key in metrics or "robustness_pgd" not in metrics else "robustness_pgd"


def floor_warning(
    delta_r: float | None, metrics: Mapping[str, float], robust_metric: str = "accuracy"
) -> str | None:
    """A warning when ``delta_r`` is at or below what a constant model scores (it cannot be
    attacked): the majority-class floor for accuracy, 0.5 for balanced; retention is 1 for a
    constant model, so it always warns that the degenerate-model checks carry the gate."""
    if delta_r is None or delta_r <= 0:  # 0 asks for no robustness at all
        return None
    if robust_metric == "retention":
        return (
            "--robust-metric retention: a constant model keeps every row it gets right "
            "(retention 1), so only the degenerate-model checks rule it out"
        )
    floor = (
        metrics.get("majority_floor", math.nan)
        if robust_metric == "accuracy"
        else _CONSTANT_SCORES[robust_metric]
    )
    if not math.isfinite(floor) or delta_r > floor:
        return None
    what = "the majority-class floor" if robust_metric == "accuracy" else "a constant model's"
    return (
        f"--delta-r {delta_r:g} is at or below {what} {floor:.3f} ({robust_metric}): a constant "
        "model meets this threshold without being robust; gate above it"
        + (" or use --robust-metric balanced (floor 0.5)" if robust_metric == "accuracy" else "")
    )


def check_gate(
    metrics: Mapping[str, float],
    *,
    delta_f: float | None,
    delta_r: float | None,
    robust_metric: str = "accuracy",
) -> GateResult:
    """Gate: S_B <= delta_F and S_R >= delta_R (S_R over every attack run, summarised by
    ``robust_metric``: :func:`robustness_key`), by a model that is not degenerate
    (:func:`degenerate_checks`, added whenever a threshold is asked for: a constant model is
    fair and often "robust" for free). A NaN metric never passes."""
    checks: list[GateCheck] = []
    if delta_f is not None:
        value = metrics["bias_score"]
        checks.append(GateCheck("bias_score", value, delta_f, "<=", bool(value <= delta_f)))
    if delta_r is not None:
        key = robustness_key(metrics, robust_metric)
        if key not in metrics:
            raise InputError(
                "--delta-r needs a model to attack; --predictions audits fairness only"
            )
        value = metrics[key]
        checks.append(GateCheck(key, value, delta_r, ">=", bool(value >= delta_r)))
    if checks:
        checks.extend(degenerate_checks(metrics))
    return GateResult(tuple(checks))


def parity_flip_count(y: np.ndarray, a: np.ndarray) -> int:
    """Pairs of flips (one promotion in group 0, one demotion in group 1) that make both
    groups' favourable label rates equal: ``(P1 n0 - P0 n1) / n`` (Kamiran and Calders)."""
    y, a = np.asarray(y), np.asarray(a)
    n0, n1 = int((a == 0).sum()), int((a == 1).sum())
    p0, p1 = float(y[a == 0].sum()), float(y[a == 1].sum())
    return max(0, math.floor((p1 * n0 - p0 * n1) / max(n0 + n1, 1) + 0.5))


def parity_flip_quotas(y: np.ndarray, a: np.ndarray) -> dict[int, tuple[int, int]]:
    """Per judged group code: (promotions, demotions) of labels that bring its favourable
    label rate to the rate of all judged rows, ``n_g |r - r_g|`` rounded (Kamiran and Calders'
    massaging count for many groups). Binary groups: :func:`parity_flip_count` pairs, the
    promotions in group 0 and the demotions in group 1."""
    y, a = np.asarray(y), np.asarray(a)
    if is_binary_coding(a):
        pairs = parity_flip_count(y, a)
        return {0: (pairs, 0), 1: (0, pairs)}
    judged = a >= 0
    overall = float(y[judged].mean()) if judged.any() else 0.0
    quotas = {}
    for group in np.unique(a[judged]):
        members = y[a == group]
        shift = len(members) * (overall - float(members.mean()))
        count = max(0, math.floor(abs(shift) + 0.5))
        quotas[int(group)] = (count, 0) if shift > 0 else (0, count)
    return quotas
