"""Fairness criteria over many groups: the one home of what each criterion compares.

Groups are integer codes ``a`` (0, 1, ...); a code of ``NOT_JUDGED`` (-1) marks rows of a group
too small to judge, which count for accuracy but never for a fairness figure. With the binary
coding of the paper (0 = protected, 1 = the rest) parity is eq. 7's S_B.

Each criterion compares one rate between the judged groups, on a subset of the rows:

- ``parity``: the favourable rate P(y_hat = 1 | group), on every row (eq. 7);
- ``opportunity``: the true-positive rate P(y_hat = 1 | y = 1, group);
- ``odds``: the larger of the true-positive-rate gap and the false-positive-rate gap
  P(y_hat = 1 | y = 0, group).

The figure is the largest difference between any two judged groups, as fairlearn's
``demographic_parity_difference``, ``MetricFrame(true_positive_rate).difference()`` and
``equalized_odds_difference`` compute it (tests/core/test_fairness.py checks them to 1e-9).
One case differs on purpose: a judged group with no rows in a criterion's subset (no positives
for the TPR, no negatives for the FPR) has no rate and is left out of that rate's comparison;
fairlearn 0.15 counts its rate as 0 (scikit-learn's 0/0 = 0), which would report a gap as
large as the other groups' highest rate for a group nothing is known about.
"""

from __future__ import annotations

import math

import numpy as np

from froc_cli.core._config import FAIRNESS_CRITERIA, FairnessCriterion, check_fairness

__all__ = [
    "FAIRNESS_CRITERIA",
    "NOT_JUDGED",
    "FairnessCriterion",
    "active_pair",
    "check_fairness",
    "criterion_conditions",
    "criterion_gap",
    "describe_fairness",
    "gap_coefficients",
    "gap_standard_error",
    "group_cells",
    "group_rates",
    "is_binary_coding",
]

NOT_JUDGED = -1

_DESCRIPTIONS = {
    "parity": "statistical parity (largest gap in favourable rate)",
    "opportunity": "equal opportunity (largest gap in true-positive rate)",
    "odds": "equalized odds (largest gap in true- or false-positive rate)",
}


def describe_fairness(criterion: str) -> str:
    """One phrase naming the criterion and what it compares, for reports."""
    return _DESCRIPTIONS[criterion]


def criterion_conditions(criterion: str) -> tuple[tuple[str, int | None], ...]:
    """The rates a criterion compares: (rate name, the label it conditions on, None: none)."""
    if criterion == "parity":
        return (("favourable_rate", None),)
    if criterion == "opportunity":
        return (("true_positive_rate", 1),)
    if criterion == "odds":
        return (("true_positive_rate", 1), ("false_positive_rate", 0))
    raise ValueError(f"unknown fairness criterion {criterion!r}")


def group_rates(
    values: np.ndarray,
    a: np.ndarray,
    rows: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> dict[int, float]:
    """Mean of ``values`` per judged group code (codes >= 0) among ``rows`` (all when None);
    groups without such rows are left out. ``weight``: how many rows each entry stands for
    (a count of identical rows, a bootstrap weight; None: one each)."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.asarray(a).astype(np.int64)
    keep = codes >= 0 if rows is None else (codes >= 0) & np.asarray(rows, dtype=bool)
    codes, values = codes[keep], values[keep]
    if not codes.size:
        return {}
    if weight is None:
        counts = np.bincount(codes)
        sums = np.bincount(codes, weights=values)
    else:
        kept = np.asarray(weight, dtype=np.float64)[keep]
        counts = np.bincount(codes, weights=kept)
        sums = np.bincount(codes, weights=values * kept)
    return {int(g): float(sums[g] / counts[g]) for g in np.flatnonzero(counts)}


def is_binary_coding(a: np.ndarray) -> bool:
    """True for the paper's coding: every code 0 (protected) or 1 (the rest)."""
    return bool(np.isin(np.asarray(a), (0, 1)).all())


def group_cells(a: np.ndarray) -> np.ndarray:
    """The group codes to take cells of (stratifying, quotas): 0 and 1 for the binary coding
    (an empty one too), else every code present, -1 (not judged) included."""
    return np.union1d(a, (0, 1)) if is_binary_coding(a) else np.unique(a)


def _rate_gap(rates: dict[int, float]) -> float:
    return max(rates.values()) - min(rates.values()) if len(rates) >= 2 else float("nan")


def criterion_gap(
    pred: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str, weight: np.ndarray | None = None
) -> float:
    """The criterion's figure: the largest gap between two judged groups' rates (NaN when
    fewer than two groups have a rate); ``weight`` as :func:`group_rates`."""
    pred, y = np.asarray(pred), np.asarray(y)
    gaps = [
        _rate_gap(group_rates(pred, a, None if label is None else y == label, weight))
        for _, label in criterion_conditions(criterion)
    ]
    finite = [g for g in gaps if not np.isnan(g)]
    return max(finite) if finite else float("nan")


def _largest_pair(
    scores: np.ndarray, y: np.ndarray, codes: np.ndarray, criterion: str
) -> tuple[int, int, np.ndarray]:
    """The (highest, lowest) group codes of the rate that differs most between two judged
    groups, and the rows that rate is taken on; (-1, -1, all rows) with fewer than two."""
    best: tuple[float, int, int, np.ndarray] = (-1.0, -1, -1, np.ones(len(codes), dtype=bool))
    for _, label in criterion_conditions(criterion):
        rows = np.ones(len(codes), dtype=bool) if label is None else np.asarray(y == label)
        rates = group_rates(scores, codes, rows)
        if len(rates) < 2:
            continue
        high = max(rates, key=lambda g: rates[g])
        low = min(rates, key=lambda g: rates[g])
        if rates[high] - rates[low] > max(best[0], 0.0):
            best = (rates[high] - rates[low], high, low, rows)
    # All rates equal: no pair is largest, and no first-order change lowers a zero gap.
    return best[1], best[2], best[3]


def active_pair(
    pred: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str
) -> tuple[float, int, float, int]:
    """The rates and row counts of the two groups whose gap is the criterion's figure:
    ``(rate_high, rows_high, rate_low, rows_low)`` (NaN rates and 0 rows when fewer than two
    groups have a rate); for binary parity the protected group's, then the rest's. Their
    binomial errors give the figure's standard error (:func:`gap_standard_error`)."""
    if criterion == "parity" and is_binary_coding(a):
        pred, a = np.asarray(pred), np.asarray(a)
        protected, rest = pred[a == 0], pred[a == 1]
        return (
            float(protected.mean()) if protected.size else float("nan"),
            int(protected.size),
            float(rest.mean()) if rest.size else float("nan"),
            int(rest.size),
        )
    pred, codes = np.asarray(pred, dtype=np.float64), np.asarray(a).astype(np.int64)
    high, low, rows = _largest_pair(pred, np.asarray(y), codes, criterion)
    if high < 0:  # every rate equal (or fewer than two): the first two groups with a rate
        label = criterion_conditions(criterion)[0][1]
        rows = np.ones(len(codes), dtype=bool) if label is None else np.asarray(y) == label
        rated = sorted(group_rates(pred, codes, rows))
        if len(rated) < 2:
            return float("nan"), 0, float("nan"), 0
        high, low = rated[0], rated[1]
    figures: list[float | int] = []
    for code in (high, low):
        within = rows & (codes == code)
        figures += [float(pred[within].mean()), int(within.sum())]
    return float(figures[0]), int(figures[1]), float(figures[2]), int(figures[3])


def gap_standard_error(rate_a: float, rows_a: int, rate_b: float, rows_b: int) -> float:
    """Binomial standard error of the gap between two groups' rates (independent shares)."""
    return math.sqrt(
        rate_a * (1 - rate_a) / max(rows_a, 1) + rate_b * (1 - rate_b) / max(rows_b, 1)
    )


def gap_coefficients(
    scores: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str
) -> np.ndarray:
    """Coefficients ``c`` with ``sum_i c_i scores_i`` = the signed gap of the criterion's
    active pair: the rate (of ``scores``) that differs most between two judged groups,
    highest group first (so the signed gap is >= 0).

    The gap of eq. 14 generalised: where one pair of groups gives the largest gap (almost
    everywhere), the criterion's figure is that pair's difference, so its gradient and
    influence (eqs. 17-21) are that pair's (Danskin). With the binary coding and parity the
    pair is the two groups, ``c_i = +-1/#group``.
    """
    scores, codes = np.asarray(scores, dtype=np.float64), np.asarray(a).astype(np.int64)
    high, low, rows = _largest_pair(scores, np.asarray(y), codes, criterion)
    c = np.zeros(len(codes), dtype=np.float64)
    if high < 0:
        return c
    in_high, in_low = rows & (codes == high), rows & (codes == low)
    c[in_high] = 1.0 / in_high.sum()
    c[in_low] = -1.0 / in_low.sum()
    return c
