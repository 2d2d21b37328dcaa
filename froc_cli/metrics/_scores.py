"""Fairness, accuracy and robustness metrics on binary decisions (1 = favourable).

Group convention: ``a == 0`` is the protected group, ``a == 1`` the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from froc_cli.core._fairness import criterion_gap, is_binary_coding

__all__ = [
    "accuracy",
    "balanced_share",
    "bias_score",
    "bootstrap_interval",
    "criterion_score",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "favourable_rate",
    "majority_floor",
    "percentile_interval",
    "robust_summary",
    "robustness_score",
    "share",
    "unbroken_rows",
]


def _rate(values: np.ndarray, w: np.ndarray | None = None) -> float:
    if w is None:
        return float(values.mean()) if values.size else float("nan")
    weight = np.asarray(w, dtype=np.float64)
    total = float(weight.sum())
    if total == 0:
        return float("nan")
    return float((weight * np.asarray(values, dtype=np.float64)).sum() / total)


def _within(w: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if w is None else np.asarray(w)[rows]


def favourable_rate(
    pred: np.ndarray, a: np.ndarray, group: int, w: np.ndarray | None = None
) -> float:
    """P(y_hat = 1 | a = group).

    Every score here takes ``w``, optional: how many rows each entry stands for (a count of
    identical rows, a bootstrap weight); a score of rows with weights is the score of the
    table with each row repeated that many times."""
    rows = np.asarray(a) == group
    return _rate(np.asarray(pred)[rows], _within(w, rows))


def bias_score(pred: np.ndarray, a: np.ndarray, w: np.ndarray | None = None) -> float:
    """S_B (eq. 7): |P(y_hat=1 | a=0) - P(y_hat=1 | a=1)|, the statistical-parity gap."""
    return abs(favourable_rate(pred, a, 0, w) - favourable_rate(pred, a, 1, w))


def criterion_score(
    pred: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str, w: np.ndarray | None = None
) -> float:
    """S_B for a criterion over the judged groups of ``a`` (:mod:`froc_cli.core._fairness`);
    with the binary coding and parity exactly :func:`bias_score` (eq. 7)."""
    a = np.asarray(a)
    if criterion == "parity" and is_binary_coding(a if w is None else a[np.asarray(w) > 0]):
        return bias_score(pred, a, w)
    return criterion_gap(pred, y, a, criterion, w)


def share(flags: np.ndarray, w: np.ndarray | None = None) -> float:
    """Share of true entries (NaN when there are none)."""
    return _rate(np.asarray(flags, dtype=bool), w)


def balanced_share(flags: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean over the classes present in ``y`` of the share of their rows flagged: for
    robustness, a constant model scores 0.5 (one class all right, the other all wrong)."""
    flags, y = np.asarray(flags, dtype=bool), np.asarray(y)
    present = y if w is None else y[np.asarray(w) > 0]
    shares = [_rate(flags[y == c], _within(w, y == c)) for c in (0, 1) if (present == c).any()]
    return float(np.mean(shares)) if shares else float("nan")


def unbroken_rows(attacked: Iterable[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Rows whose decision is right under every attack's decisions in ``attacked``: the rows
    no attack broke (all rows when none ran)."""
    robust = np.ones(len(y), dtype=bool)
    for pred in attacked:
        robust &= np.asarray(pred) == np.asarray(y)
    return robust


def robust_summary(
    robust: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    robust_metric: str,
    w: np.ndarray | None = None,
) -> float:
    """S_R from the rows no attack broke (``robust``): ``accuracy`` (their share, eq. 8),
    ``balanced`` (:func:`balanced_share`) or ``retention`` (their share among the rows
    ``pred`` gets right)."""
    robust = np.asarray(robust, dtype=bool)
    if robust_metric == "balanced":
        return balanced_share(robust, y, w)
    if robust_metric == "retention":
        right = np.asarray(pred) == np.asarray(y)
        return share(robust[right], _within(w, right))
    return share(robust, w)


def accuracy(pred: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Acc (eq. 4): fraction of correct decisions."""
    return _rate(np.asarray(pred) == np.asarray(y), w)


def robustness_score(pred_adv: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """S_R (eq. 8): accuracy on the adversarial examples against the TRUE labels."""
    return accuracy(pred_adv, y, w)


def majority_floor(y: np.ndarray, w: np.ndarray | None = None) -> float:
    """Accuracy of the constant model that always predicts the majority class."""
    share = _rate(np.asarray(y), w) if w is not None else float(np.asarray(y).mean())
    return max(share, 1.0 - share)


def disparate_impact_ratio(pred: np.ndarray, a: np.ndarray, w: np.ndarray | None = None) -> float:
    """P(y_hat=1 | a=0) / P(y_hat=1 | a=1) (the "80% rule" ratio); NaN when undefined."""
    privileged = favourable_rate(pred, a, 1, w)
    return favourable_rate(pred, a, 0, w) / privileged if privileged > 0 else float("nan")


def equal_opportunity_difference(
    pred: np.ndarray, y: np.ndarray, a: np.ndarray, w: np.ndarray | None = None
) -> float:
    """TPR(a=0) - TPR(a=1): signed gap in true-positive rates (negative: protected worse off)."""
    pred, y, a = np.asarray(pred), np.asarray(y), np.asarray(a)
    positives = y == 1
    weight = _within(w, positives)
    return favourable_rate(pred[positives], a[positives], 0, weight) - favourable_rate(
        pred[positives], a[positives], 1, weight
    )


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    seed: int,
    n_resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(row_indices)`` over ``n`` rows, seeded."""
    rng = np.random.default_rng(seed)
    values = np.array(
        [statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=float
    )
    return percentile_interval(values, level)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of a statistic's bootstrap ``values`` (non-finite ones
    left out; NaN when none is finite)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))
