"""Tests of froc_cli.core._fairness: the fairness criteria over many groups, cross-checked
against fairlearn (an independent implementation) to 1e-9.

- ``parity`` is ``fairlearn.metrics.demographic_parity_difference``;
- ``opportunity`` is ``MetricFrame(metrics=true_positive_rate).difference()`` (between groups);
- ``odds`` is ``equalized_odds_difference`` (``agg="worst_case"``, the default).

Groups are integer codes 0..K-1 (-1: too small to judge, left out). For intersections fairlearn
gets the sensitive features as a DataFrame and froc the codes of the combined values.

Where the two differ by convention: a group with no rows in a criterion's subset (no positives
for the true-positive rate, no negatives for the false-positive rate) has no rate in froc
(``group_rates`` leaves it out, so the gap is taken over the other groups), whereas fairlearn
0.15 gives it a rate of 0 (sklearn's ``confusion_matrix(normalize="true")`` turns the 0/0 into
0), so its figure may be larger. The cross-checks therefore give every group both labels, and
that case is checked against a hand computation and against fairlearn on the groups that have a
rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from froc_cli.core._fairness import (
    FAIRNESS_CRITERIA,
    NOT_JUDGED,
    criterion_gap,
    gap_coefficients,
    group_rates,
)
from froc_cli.metrics import bias_score, favourable_rate

TOL = 1e-9
CRITERIA = ("parity", "opportunity", "odds")


def fairlearn_gap(criterion: str, y: np.ndarray, pred: np.ndarray, features: object) -> float:
    """fairlearn's figure for ``criterion`` (``features``: an array or a DataFrame)."""
    if criterion == "parity":
        return float(demographic_parity_difference(y, pred, sensitive_features=features))
    if criterion == "opportunity":
        frame = MetricFrame(
            metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=features
        )
        return float(frame.difference(method="between_groups"))
    if criterion == "odds":
        return float(equalized_odds_difference(y, pred, sensitive_features=features))
    raise AssertionError(criterion)


def planted(
    sizes: list[int], *, seed: int, bias: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (y, pred, a) for groups of ``sizes`` rows (codes 0..K-1, rows shuffled).

    Group g's base rate and its decisions both lean by ``bias * g / (K - 1)``: the last group is
    favoured most, so the gaps are large and differ between criteria. Every group has both
    labels (asserted), so every group has every rate.
    """
    rng = np.random.default_rng(seed)
    k = len(sizes)
    a = rng.permutation(np.repeat(np.arange(k), sizes))
    lean = bias * a / (k - 1) - bias / 2
    y = (rng.random(a.size) < 0.45 + lean).astype(np.int64)
    p_favourable = np.where(y == 1, 0.7, 0.25) + lean * (1 + 0.5 * (a % 2))
    pred = (rng.random(a.size) < np.clip(p_favourable, 0.02, 0.98)).astype(np.int64)
    for g in range(k):
        assert set(y[a == g]) == {0, 1}, f"seed {seed}: group {g} lacks a label"
    return y, pred, a


def test_the_three_criteria_are_froc_s() -> None:
    assert set(FAIRNESS_CRITERIA) == set(CRITERIA)


# Even, uneven and very uneven sizes; 2, 4 and 10 groups.
GROUP_SIZES = {
    "2-even": [200, 200],
    "2-uneven": [40, 460],
    "4-uneven": [25, 300, 80, 140],
    "10-uneven": [30, 45, 60, 25, 200, 90, 35, 120, 50, 300],
}


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("sizes", list(GROUP_SIZES.values()), ids=list(GROUP_SIZES))
@pytest.mark.parametrize("seed", [0, 1])
def test_criterion_gap_matches_fairlearn(criterion: str, sizes: list[int], seed: int) -> None:
    y, pred, a = planted(sizes, seed=seed)
    ours = criterion_gap(pred, y, a, criterion)
    assert ours == pytest.approx(fairlearn_gap(criterion, y, pred, a), abs=TOL)
    assert 0.0 <= ours <= 1.0


def test_planted_bias_is_seen_and_criteria_differ() -> None:
    y, pred, a = planted(GROUP_SIZES["4-uneven"], seed=0, bias=0.4)
    gaps = {c: criterion_gap(pred, y, a, c) for c in CRITERIA}
    assert gaps["parity"] > 0.3
    # odds is the larger of the TPR gap (opportunity) and the FPR gap.
    assert gaps["odds"] >= gaps["opportunity"]
    assert len({round(g, 12) for g in gaps.values()}) >= 2
    # No bias planted: every gap is smaller than with the planted one.
    y0, pred0, a0 = planted(GROUP_SIZES["4-uneven"], seed=0, bias=0.0)
    for c in CRITERIA:
        assert criterion_gap(pred0, y0, a0, c) < gaps[c]


def intersection(n: int, seed: int, *, drop: tuple[str, str] | None = None) -> tuple:
    """Seeded (y, pred, features DataFrame, froc codes) with sex x race groups (uneven),
    a planted bias by both, and optionally one combination ``drop`` absent."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.35, 0.65])
    race = rng.choice(["x", "y", "z"], size=n, p=[0.6, 0.3, 0.1])
    if drop is not None:
        keep = ~((sex == drop[0]) & (race == drop[1]))
        sex, race = sex[keep], race[keep]
    lean = 0.15 * (sex == "M") - 0.1 * (race == "z") + 0.05 * (race == "y")
    y = (rng.random(sex.size) < 0.4 + lean).astype(np.int64)
    pred = (rng.random(sex.size) < np.where(y == 1, 0.65, 0.2) + lean).astype(np.int64)
    features = pd.DataFrame({"sex": sex, "race": race})
    codes = features.groupby(["sex", "race"]).ngroup().to_numpy()
    for g in np.unique(codes):
        assert set(y[codes == g]) == {0, 1}
    return y, pred, features, codes


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("seed", [0, 1])
def test_intersection_matches_fairlearn(criterion: str, seed: int) -> None:
    y, pred, features, codes = intersection(900, seed)
    assert len(np.unique(codes)) == 6
    ours = criterion_gap(pred, y, codes, criterion)
    assert ours == pytest.approx(fairlearn_gap(criterion, y, pred, features), abs=TOL)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_intersection_with_an_absent_combination_matches_fairlearn(criterion: str) -> None:
    # fairlearn lists the absent (F, z) cell as NaN and skips it; froc never has its code.
    y, pred, features, codes = intersection(900, 4, drop=("F", "z"))
    assert len(np.unique(codes)) == 5
    # Codes from factorizing the (sex, race) tuples name the same groups as ngroup().
    tuples, _ = pd.factorize(pd.Series(list(zip(features["sex"], features["race"], strict=True))))
    for criterion_codes in (codes, tuples):
        ours = criterion_gap(pred, y, criterion_codes, criterion)
        assert ours == pytest.approx(fairlearn_gap(criterion, y, pred, features), abs=TOL)


def with_unjudged(
    y: np.ndarray, pred: np.ndarray, a: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, pred, a) with ``n`` extra rows coded -1 (all favoured, all positive: they would
    change every figure if they counted), shuffled in."""
    rng = np.random.default_rng(seed)
    y2 = np.concatenate([y, np.ones(n, dtype=y.dtype)])
    pred2 = np.concatenate([pred, np.ones(n, dtype=pred.dtype)])
    a2 = np.concatenate([a, np.full(n, NOT_JUDGED, dtype=a.dtype)])
    order = rng.permutation(y2.size)
    return y2[order], pred2[order], a2[order]


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("sizes", [GROUP_SIZES["2-uneven"], GROUP_SIZES["10-uneven"]])
def test_unjudged_rows_are_ignored(criterion: str, sizes: list[int]) -> None:
    y, pred, a = planted(sizes, seed=5)
    y2, pred2, a2 = with_unjudged(y, pred, a, 70, seed=6)
    judged = a2 >= 0
    ours = criterion_gap(pred2, y2, a2, criterion)
    expected = fairlearn_gap(criterion, y2[judged], pred2[judged], a2[judged])
    assert ours == pytest.approx(expected, abs=TOL)
    assert ours == criterion_gap(pred, y, a, criterion)
    # Whatever the unjudged rows hold, the figure stays.
    flipped = np.where(judged, pred2, 1 - pred2)
    assert criterion_gap(flipped, y2, a2, criterion) == ours
    # fairlearn, given -1 as one more group, would see a different figure (parity: 1 vs ~0.x).
    if criterion == "parity":
        assert fairlearn_gap(criterion, y2, pred2, a2) > ours + 0.1


def test_group_rates_leave_out_unjudged_and_empty_groups() -> None:
    pred = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    a = np.array([0, 0, 0, 2, 2, -1, -1, 3])
    assert group_rates(pred, a) == {0: 2 / 3, 2: 0.5, 3: 1.0}
    # Among positives: group 3 has none, so it has no true-positive rate.
    assert group_rates(pred, a, y == 1) == {0: 0.5, 2: 1.0}
    assert group_rates(pred, a, y == 0) == {0: 1.0, 2: 0.0, 3: 1.0}
    assert group_rates(pred, np.full(8, -1)) == {}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("protected_share", [0.5, 0.1])
def test_binary_parity_is_the_papers_bias_score_exactly(seed: int, protected_share: float) -> None:
    rng = np.random.default_rng(seed)
    n = 333
    a = (rng.random(n) >= protected_share).astype(np.int8)
    y = (rng.random(n) < 0.5).astype(np.int8)
    pred = (rng.random(n) < 0.3 + 0.3 * a).astype(np.int8)
    by_hand = abs(pred[a == 0].mean() - pred[a == 1].mean())
    gap = criterion_gap(pred, y, a, "parity")
    assert gap == by_hand
    assert gap == abs(favourable_rate(pred, a, 0) - favourable_rate(pred, a, 1))
    assert gap == bias_score(pred, a)
    assert gap == pytest.approx(fairlearn_gap("parity", y, pred, a), abs=TOL)


def test_group_without_positives_is_skipped_by_hand() -> None:
    """Group 1 has no positives, so no true-positive rate: the opportunity gap is taken over
    groups 0 and 2 only, and the odds gap is the larger of that and the FPR gap over all three.

    group 0: y 1 1 0 0, pred 1 0 1 0 -> favourable 2/4, TPR 1/2, FPR 1/2
    group 1: y 0 0 0,   pred 0 1 1   -> favourable 2/3, TPR none, FPR 2/3
    group 2: y 1 1 1 0, pred 1 1 1 0 -> favourable 3/4, TPR 1, FPR 0
    """
    y = np.array([1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0])
    pred = np.array([1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0])
    a = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    assert group_rates(pred, a, y == 1) == {0: 0.5, 2: 1.0}
    assert criterion_gap(pred, y, a, "parity") == pytest.approx(3 / 4 - 2 / 4, abs=TOL)
    assert criterion_gap(pred, y, a, "opportunity") == pytest.approx(1.0 - 0.5, abs=TOL)
    assert criterion_gap(pred, y, a, "odds") == pytest.approx(max(0.5, 2 / 3 - 0), abs=TOL)
    # fairlearn agrees on the groups that have a true-positive rate (it would count group 1's
    # TPR as 0 and report 1.0 on all rows).
    has_positives = a != 1
    on_them = fairlearn_gap("opportunity", y[has_positives], pred[has_positives], a[has_positives])
    assert criterion_gap(pred, y, a, "opportunity") == pytest.approx(on_them, abs=TOL)
    # Parity has no subset to miss: fairlearn agrees on every row.
    assert criterion_gap(pred, y, a, "parity") == pytest.approx(
        fairlearn_gap("parity", y, pred, a), abs=TOL
    )


def test_fewer_than_two_groups_with_a_rate() -> None:
    # Only group 0 has positives: no opportunity gap (NaN); odds falls back to the FPR gap.
    y = np.array([1, 0, 0, 0, 0])
    pred = np.array([1, 1, 0, 1, 1])
    a = np.array([0, 0, 1, 1, 1])
    assert math.isnan(criterion_gap(pred, y, a, "opportunity"))
    assert criterion_gap(pred, y, a, "odds") == pytest.approx(1.0 - 2 / 3, abs=TOL)
    # A single judged group: nothing to compare.
    for criterion in CRITERIA:
        assert math.isnan(criterion_gap(pred, y, np.array([0, 0, 0, -1, -1]), criterion))
        assert not gap_coefficients(pred, y, np.array([0, 0, 0, -1, -1]), criterion).any()


def check_coefficients(scores: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str) -> None:
    c = gap_coefficients(scores, y, a, criterion)
    assert c.shape == scores.shape
    assert float(c @ scores) == pytest.approx(criterion_gap(scores, y, a, criterion), abs=1e-12)
    assert c.sum() == pytest.approx(0.0, abs=1e-12)
    assert not c[a < 0].any()
    # The active pair: one group at +1/#rows, one at -1/#rows, within one label subset.
    active = c != 0
    pair = np.unique(a[active])
    assert pair.size == 2
    labels = np.unique(y[active])
    if criterion == "parity":
        within = a >= 0
    else:
        assert labels.size == 1
        if criterion == "opportunity":
            assert labels[0] == 1
        within = (a >= 0) & (y == labels[0])
    for g in pair:
        rows = within & (a == g)
        assert np.all(active[rows])
        assert np.array_equal(np.abs(c[rows]), np.full(rows.sum(), 1.0 / rows.sum()))
        assert len(set(np.sign(c[rows]))) == 1
    assert c[active & (c > 0)].sum() == pytest.approx(1.0)
    assert c[active & (c < 0)].sum() == pytest.approx(-1.0)


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("sizes", [GROUP_SIZES["2-uneven"], GROUP_SIZES["10-uneven"]])
@pytest.mark.parametrize("kind", ["scores", "decisions"])
def test_gap_coefficients_give_the_gap(criterion: str, sizes: list[int], kind: str) -> None:
    y, pred, a = planted(sizes, seed=7)
    y, pred, a = with_unjudged(y, pred, a, 20, seed=8)
    rng = np.random.default_rng(9)
    scores = (
        np.clip(0.5 * pred + 0.5 * rng.random(pred.size), 0.0, 1.0)
        if kind == "scores"
        else pred.astype(np.float64)
    )
    check_coefficients(scores, y, a, criterion)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_gap_coefficients_when_every_rate_is_equal(criterion: str) -> None:
    # Both groups: favourable rate 1/2, TPR 1, FPR 0; every gap is 0, so no pair is the
    # largest and no first-order change lowers it: c is 0 (this once picked one group as both).
    scores = np.array([1.0, 0.0, 1.0, 0.0])
    y = np.array([1, 0, 1, 0])
    a = np.array([0, 0, 1, 1])
    assert criterion_gap(scores, y, a, criterion) == 0.0
    c = gap_coefficients(scores, y, a, criterion)
    assert float(c @ scores) == 0.0
    assert c.sum() == 0.0
    assert not c.any()


def test_gap_coefficients_binary_parity_are_plus_minus_one_over_group_size() -> None:
    rng = np.random.default_rng(11)
    a = (rng.random(90) < 0.3).astype(np.int64)
    y = (rng.random(90) < 0.5).astype(np.int64)
    scores = rng.random(90) * (1 - 0.4 * a)  # group 0 scores higher on average
    c = gap_coefficients(scores, y, a, "parity")
    n0, n1 = int((a == 0).sum()), int((a == 1).sum())
    assert np.array_equal(c, np.where(a == 0, 1.0 / n0, -1.0 / n1))
    assert float(c @ scores) == pytest.approx(bias_score(scores, a), abs=1e-12)


# Property tests: random small tables; every group drawn gets one positive and one negative row
# (so each has every rate, as fairlearn's convention needs), plus some rows coded -1.


@st.composite
def tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 5))
    bit = st.integers(0, 1)
    rows: list[tuple[int, int, int]] = []
    for g in range(k):
        rows += [(g, 1, draw(bit)), (g, 0, draw(bit))]
        rows += [(g, yy, pp) for yy, pp in draw(st.lists(st.tuples(bit, bit), max_size=12))]
    rows += [(-1, yy, pp) for yy, pp in draw(st.lists(st.tuples(bit, bit), max_size=5))]
    order = draw(st.permutations(range(len(rows))))
    table = np.array([rows[i] for i in order], dtype=np.int64)
    return table[:, 1], table[:, 2], table[:, 0]


@settings(max_examples=50, deadline=None)
@given(tables(), st.sampled_from(CRITERIA))
def test_property_gap_in_unit_interval_and_matches_fairlearn(
    table: tuple[np.ndarray, np.ndarray, np.ndarray], criterion: str
) -> None:
    y, pred, a = table
    judged = a >= 0
    ours = criterion_gap(pred, y, a, criterion)
    assert 0.0 <= ours <= 1.0
    expected = fairlearn_gap(criterion, y[judged], pred[judged], a[judged])
    assert ours == pytest.approx(expected, abs=TOL)
    if ours > 0:  # a zero gap: see test_gap_coefficients_when_every_rate_is_equal
        check_coefficients(pred.astype(np.float64), y, a, criterion)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), st.integers(0, 1), st.integers(0, 1)), max_size=30))
def test_property_any_table_gives_a_gap_in_unit_interval_or_nan(
    rows: list[tuple[int, int, int]],
) -> None:
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    a, y, pred = table[:, 0], table[:, 1], table[:, 2]
    for criterion in CRITERIA:
        gap = criterion_gap(pred, y, a, criterion)
        subsets = [None] if criterion == "parity" else [y == 1]
        if criterion == "odds":
            subsets.append(y == 0)
        with_rates = [len(group_rates(pred, a, rows)) for rows in subsets]
        if max(with_rates) < 2:
            assert math.isnan(gap)
        else:
            assert 0.0 <= gap <= 1.0
