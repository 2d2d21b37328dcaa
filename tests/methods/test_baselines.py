"""Tests of the RW, massaging and DIR baselines against their published definitions.

Reweighing: Kamiran & Calders (2012), w(a, y) = P(a) P(y) / P(a, y).
Massaging: Kamiran & Calders (2012), the parity count of the highest-ranked unfavourable rows of
the protected group promoted and of the lowest-ranked favourable rows of the other demoted.
Disparate impact remover: Feldman et al. (2015), geometric repair towards the median
distribution of the groups' quantile functions, rank-preserving within each group.
The optional AIF360 cross-checks are skipped unless ``aif360`` and ``BlackBoxAuditing`` are
importable; the suite itself never needs them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from froc_cli.methods import (
    DisparateImpactRepair,
    compute_reweighing_weights,
    fit_disparate_impact_repair,
    massage_labels,
    massaging_scores,
    repair_disparate_impact,
)
from froc_cli.metrics import parity_flip_count, parity_flip_quotas

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _ranks(values: FloatArray) -> FloatArray:
    """Ranks 0..n-1 of distinct values."""
    ranks = np.empty(values.shape[0], dtype=np.float64)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.shape[0])
    return ranks


def _spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman rank correlation of two tie-free samples."""
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def _ks_statistic(u: FloatArray, v: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_t |F_u(t) - F_v(t)|."""
    pooled = np.concatenate([u, v])
    cdf_u = np.searchsorted(np.sort(u), pooled, side="right") / u.shape[0]
    cdf_v = np.searchsorted(np.sort(v), pooled, side="right") / v.shape[0]
    return float(np.max(np.abs(cdf_u - cdf_v)))


def _two_group_data(
    seed: int, n0: int = 400, n1: int = 700
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Two numeric columns with very different group distributions plus a one-hot pair."""
    rng = np.random.default_rng(seed)
    a = rng.permutation(np.r_[np.zeros(n0, dtype=np.int64), np.ones(n1, dtype=np.int64)])
    n = n0 + n1
    num0 = np.where(a == 0, rng.beta(2.0, 5.0, n), rng.beta(5.0, 2.0, n))
    num1 = np.where(a == 0, rng.uniform(0.0, 0.5, n), rng.uniform(0.2, 1.0, n))
    hot = (rng.random(n) < np.where(a == 0, 0.3, 0.7)).astype(np.float64)
    X = np.column_stack([num0, hot, 1.0 - hot, num1])
    return X, a


# --------------------------------------------------------------------------------------------
# Reweighing
# --------------------------------------------------------------------------------------------


def test_reweighing_hand_computed_2x2() -> None:
    # n = 10; group a=0 has 4 rows (1 positive, 3 negative), group a=1 has 6 (4 pos, 2 neg);
    # n_y1 = n_y0 = 5.  w(a, y) = n_a * n_y / (n * n_ay):
    #   w(0,1) = 4*5/(10*1) = 2       w(0,0) = 4*5/(10*3) = 2/3
    #   w(1,1) = 6*5/(10*4) = 0.75    w(1,0) = 6*5/(10*2) = 1.5
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    y = np.array([1, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    w = compute_reweighing_weights(y, a)
    expected = np.array([2.0, 2 / 3, 2 / 3, 2 / 3, 0.75, 0.75, 0.75, 0.75, 1.5, 1.5])
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    assert w.dtype == np.float64
    assert w.sum() == pytest.approx(10.0, abs=1e-12)


def _check_reweighing_definition(y: npt.NDArray[np.int64], a: npt.NDArray[np.int64]) -> None:
    w = compute_reweighing_weights(y, a)
    n = y.shape[0]
    assert w.shape == (n,)
    assert np.all(w > 0)
    total = w.sum()
    assert total == pytest.approx(n, abs=1e-9)
    p_a = {g: w[a == g].sum() / total for g in (0, 1)}
    p_y = {lab: w[y == lab].sum() / total for lab in (0, 1)}
    for g in (0, 1):
        # the weighted marginals are the unweighted ones
        assert p_a[g] == pytest.approx(np.mean(a == g), abs=1e-12)
        assert p_y[g] == pytest.approx(np.mean(y == g), abs=1e-12)
        for lab in (0, 1):
            cell = w[(a == g) & (y == lab)].sum() / total
            assert cell == pytest.approx(p_a[g] * p_y[lab], abs=1e-12)
    # weighted statistical-parity difference of the labels is zero
    rate = [w[(a == g) & (y == 1)].sum() / w[a == g].sum() for g in (0, 1)]
    assert rate[0] - rate[1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reweighing_factorises_joint_distribution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    a = (rng.random(n) < 0.35).astype(np.int64)
    y = (rng.random(n) < np.where(a == 1, 0.6, 0.2)).astype(np.int64)  # strongly dependent
    raw_spd = y[a == 0].mean() - y[a == 1].mean()
    assert abs(raw_spd) > 0.2
    _check_reweighing_definition(y, a)


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(st.integers(min_value=1, max_value=30), min_size=4, max_size=4))
def test_reweighing_property(cells: list[int]) -> None:
    # any counts with the four (a, y) cells non-empty; rows interleaved in a fixed order
    a = np.repeat(np.array([0, 0, 1, 1]), cells)
    y = np.repeat(np.array([0, 1, 0, 1]), cells)
    order = np.random.default_rng(sum(cells)).permutation(a.shape[0])
    _check_reweighing_definition(y[order], a[order])


def test_reweighing_accepts_bool_and_float() -> None:
    a = np.array([0, 0, 1, 1, 1])
    y = np.array([0, 1, 0, 1, 1])
    ref = compute_reweighing_weights(y, a)
    np.testing.assert_array_equal(compute_reweighing_weights(y.astype(bool), a.astype(bool)), ref)
    np.testing.assert_array_equal(compute_reweighing_weights(y.astype(float), list(a)), ref)


@pytest.mark.parametrize(
    ("y", "a", "match"),
    [
        ([0, 1, 1, 0], [0, 0, 0, 1], r"\(a=1, y=1\)"),
        ([1, 1, 1, 1], [0, 1, 0, 1], r"\(a=0, y=0\), \(a=1, y=0\)"),
        ([0, 1, 2, 0], [0, 0, 1, 1], "y must contain only 0 and 1"),
        ([0, 1, 1, 0], [0, 0, 1, 0.5], "a must contain only 0 and 1"),
        ([0, 1, 1, 0], [0, 1, 1], "a has 3 entries"),
        ([], [], "y is empty"),
        ([[0, 1], [1, 0]], [0, 1], "y must be a 1-D"),
        (["0", "1"], [0, 1], "y must be numeric"),
        ([0.0, float("nan")], [0, 1], "y must contain only 0 and 1"),
    ],
)
def test_reweighing_rejects_bad_input(y: list[object], a: list[object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_reweighing_weights(y, a)  # type: ignore[arg-type]


def test_reweighing_matches_aif360() -> None:
    pd = pytest.importorskip("pandas")
    datasets = pytest.importorskip("aif360.datasets")
    preprocessing = pytest.importorskip("aif360.algorithms.preprocessing")
    rng = np.random.default_rng(7)
    n = 500
    a = (rng.random(n) < 0.4).astype(np.int64)
    y = (rng.random(n) < np.where(a == 1, 0.55, 0.25)).astype(np.int64)
    df = pd.DataFrame({"x": rng.random(n), "a": a.astype(float), "y": y.astype(float)})
    ds = datasets.BinaryLabelDataset(df=df, label_names=["y"], protected_attribute_names=["a"])
    rw = preprocessing.Reweighing(unprivileged_groups=[{"a": 0}], privileged_groups=[{"a": 1}])
    theirs = rw.fit_transform(ds).instance_weights
    np.testing.assert_allclose(compute_reweighing_weights(y, a), theirs, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------------------------
# Massaging
# --------------------------------------------------------------------------------------------

# rows:        0    1    2    3    4    5     6    7     8
_M_A = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
_M_Y = np.array([0, 0, 1, 0, 1, 1, 1, 0, 1])
_M_S = np.array([0.9, 0.2, 0.8, 0.5, 0.1, 0.7, 0.95, 0.05, 0.3])


def test_massaging_hand_made_example() -> None:
    # group a=0: 4 rows, 1 favourable; group a=1: 5 rows, 4 favourable; n = 9.
    # parity count = round((P1 n0 - P0 n1) / n) = round((4*4 - 1*5) / 9) = round(1.22) = 1.
    assert parity_flip_count(_M_Y, _M_A) == 1
    # promotable (a=0, y=0): rows 0 (0.9), 1 (0.2), 3 (0.5) -> the highest ranked is row 0;
    # demotable (a=1, y=1): rows 4 (0.1), 5 (0.7), 6 (0.95), 8 (0.3) -> the lowest is row 4.
    labels = massage_labels(_M_S, _M_Y, _M_A)
    expected = _M_Y.copy()
    expected[0], expected[4] = 1, 0
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int64
    # two pairs: then row 3 (0.5) is promoted and row 8 (0.3) demoted as well
    two = massage_labels(_M_S, _M_Y, _M_A, pairs=2)
    expected[3], expected[8] = 1, 0
    np.testing.assert_array_equal(two, expected)
    # zero pairs: nothing changes; the inputs are never modified
    np.testing.assert_array_equal(massage_labels(_M_S, _M_Y, _M_A, pairs=0), _M_Y)
    np.testing.assert_array_equal(_M_Y, [0, 0, 1, 0, 1, 1, 1, 0, 1])


def test_massaging_equalises_the_label_rates_exactly_when_the_count_is_whole() -> None:
    # n0 = n1 = 10, P0 = 2, P1 = 6: (6*10 - 2*10) / 20 = 2 pairs give 4/10 in both groups
    a = np.repeat([0, 1], 10)
    y = np.r_[np.repeat([1, 0], [2, 8]), np.repeat([1, 0], [6, 4])]
    scores = np.linspace(0.0, 1.0, 20)
    labels = massage_labels(scores, y, a)
    assert labels[a == 0].mean() == labels[a == 1].mean() == pytest.approx(0.4)
    # promoted: the two highest-scored negatives of a=0 (rows 8, 9); demoted: the two
    # lowest-scored positives of a=1 (rows 10, 11)
    np.testing.assert_array_equal(np.flatnonzero(labels != y), [8, 9, 10, 11])


def test_massaging_ties_go_to_the_earlier_row() -> None:
    a = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 0, 1, 1, 1])
    labels = massage_labels(np.full(6, 0.5), y, a, pairs=1)
    np.testing.assert_array_equal(labels, [1, 0, 0, 0, 1, 1])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_massaging_only_allowed_rows_change_and_rates_meet(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    a = (rng.random(n) < 0.4).astype(np.int64)
    X = rng.normal(size=(n, 3))
    logit = X @ np.array([1.5, -1.0, 0.5]) + np.where(a == 1, 1.0, -1.0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    scores = massaging_scores(X, y)  # the group is not a feature
    assert scores.shape == (n,)
    assert np.all((scores > 0) & (scores < 1))
    pairs = parity_flip_count(y, a)
    assert pairs > 0
    labels = massage_labels(scores, y, a)
    changed = labels != y
    # exactly `pairs` promotions of (a=0, y=0) rows and `pairs` demotions of (a=1, y=1) rows
    assert int((changed & (a == 0) & (y == 0)).sum()) == pairs
    assert int((changed & (a == 1) & (y == 1)).sum()) == pairs
    assert int(changed.sum()) == 2 * pairs
    assert np.all(labels[changed & (a == 0)] == 1)
    assert np.all(labels[changed & (a == 1)] == 0)
    assert labels.sum() == y.sum()  # the overall favourable rate is kept
    # the promoted rows rank above every unpromoted candidate, the demoted below every kept one
    cand0, cand1 = (a == 0) & (y == 0), (a == 1) & (y == 1)
    assert scores[changed & cand0].min() >= scores[cand0 & ~changed].max()
    assert scores[changed & cand1].max() <= scores[cand1 & ~changed].min()
    # label rates equal up to rounding the pair count to whole rows
    n0, n1 = int((a == 0).sum()), int((a == 1).sum())
    gap_before = y[a == 1].mean() - y[a == 0].mean()
    gap_after = labels[a == 1].mean() - labels[a == 0].mean()
    assert gap_before > 0.2
    assert abs(gap_after) <= 0.5 * (1 / n0 + 1 / n1) + 1e-12


def test_massaging_does_nothing_when_the_protected_group_is_ahead() -> None:
    a = np.array([0, 0, 1, 1])
    y = np.array([1, 1, 0, 1])
    np.testing.assert_array_equal(massage_labels([0.1, 0.2, 0.3, 0.4], y, a), y)


def test_massaging_scores_rank_by_the_features() -> None:
    x = np.linspace(-2.0, 2.0, 40)[:, None]
    y = (x[:, 0] + np.r_[np.zeros(39), -5.0] > 0).astype(np.int64)  # one outlier: not separable
    scores = massaging_scores(x, y)
    assert np.all(np.diff(scores) > 0)  # monotone in the only feature
    with pytest.raises(ValueError, match="both labels"):
        massaging_scores(x, np.zeros(40))
    with pytest.raises(ValueError, match="X must be a 2-D"):
        massaging_scores(x[:, 0], y)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pairs": 4}, "4 pairs asked for"),
        ({"pairs": -1}, "pairs must be a whole number"),
        ({"pairs": 1.0}, "pairs must be a whole number"),
        ({"pairs": True}, "pairs must be a whole number"),
        ({"scores": _M_S[:-1]}, "scores must be a 1-D array of 9"),
        ({"scores": np.r_[_M_S[:-1], np.nan]}, "scores must be finite"),
        ({"scores": np.array(["x"] * 9)}, "scores must be real numbers"),
        ({"y": np.r_[_M_Y[:-1], 2]}, "y must contain only 0 and 1"),
        ({"a": _M_A[:-1]}, "a has 8 entries"),
    ],
)
def test_massaging_rejects_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"scores": _M_S, "y": _M_Y, "a": _M_A, **kwargs}
    with pytest.raises(ValueError, match=match):
        massage_labels(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Disparate impact remover: hand-computed examples
# --------------------------------------------------------------------------------------------


def test_dir_hand_computed_equal_groups() -> None:
    # group 0: 0.1 < 0.2 < 0.6, group 1: 0.3 < 0.5 < 0.9 (rows shuffled).  With equal sizes the
    # k-th smallest of each group sits at the same quantile (k + 0.5) / 3, and the median of
    # two numbers is their midpoint: ranks 0, 1, 2 -> 0.2, 0.35, 0.75 in BOTH groups.
    x = np.array([0.5, 0.6, 0.1, 0.9, 0.3, 0.2])
    a = np.array([1, 0, 0, 1, 1, 0])
    X = np.column_stack([x, 1.0 - x])
    full = repair_disparate_impact(X, a, columns=[0])
    np.testing.assert_allclose(full[:, 0], [0.35, 0.75, 0.2, 0.75, 0.2, 0.35], atol=1e-15)
    np.testing.assert_array_equal(full[:, 1], X[:, 1])
    half = repair_disparate_impact(X, a, repair_level=0.5, columns=[0])
    # midpoints of x and its full repair
    np.testing.assert_allclose(half[:, 0], [0.425, 0.675, 0.15, 0.825, 0.25, 0.275], atol=1e-15)


def test_dir_hand_computed_ties_and_unequal_sizes() -> None:
    # group 0 = [0.2, 0.2, 0.8]  (n=3, plotting positions 1/6, 1/2, 5/6)
    # group 1 = [0.0, 0.4, 0.6, 1.0]  (n=4, positions 1/8, 3/8, 5/8, 7/8)
    # Tied 0.2's share the mid-rank u = 1/3; Q0(1/3) = 0.2, Q1(1/3) = 0.4 * (5/6) = 1/3,
    #   repaired = (0.2 + 1/3) / 2 = 4/15.
    # 0.8: u = 5/6; Q0 = 0.8, Q1 = 0.6 + 0.4 * (5/6) = 14/15 -> (0.8 + 14/15) / 2 = 13/15.
    # 0.0: u = 1/8; Q1 = 0.0, Q0 clamps to 0.2 -> 0.1.
    # 0.4: u = 3/8; Q1 = 0.4, Q0 = 0.2 (flat between the tied 0.2's) -> 0.3.
    # 0.6: u = 5/8; Q1 = 0.6, Q0 = 0.2 + 0.6 * (3/8) = 0.425 -> 0.5125.
    # 1.0: u = 7/8; Q1 = 1.0, Q0 clamps to 0.8 -> 0.9.
    X = np.array([[0.2], [0.2], [0.8], [0.0], [0.4], [0.6], [1.0]])
    a = np.array([0, 0, 0, 1, 1, 1, 1])
    out = repair_disparate_impact(X, a, columns=[0])[:, 0]
    np.testing.assert_allclose(
        out, [4 / 15, 4 / 15, 13 / 15, 0.1, 0.3, 0.5125, 0.9], rtol=0, atol=1e-14
    )


# --------------------------------------------------------------------------------------------
# Disparate impact remover: published properties on random data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_dir_full_repair_equalises_group_distributions(seed: int) -> None:
    X, a = _two_group_data(seed)
    out = repair_disparate_impact(X, a, repair_level=1.0, columns=[0, 3])
    levels = np.linspace(0.0, 1.0, 11)
    for j in (0, 3):
        before = _ks_statistic(X[a == 0, j], X[a == 1, j])
        after = _ks_statistic(out[a == 0, j], out[a == 1, j])
        assert before > 0.4
        assert after < 0.01
        q0 = np.quantile(out[a == 0, j], levels)
        q1 = np.quantile(out[a == 1, j], levels)
        np.testing.assert_allclose(q0, q1, atol=0.01)
        for g in (0, 1):
            # rank order within a group is preserved exactly (continuous data: no ties)
            assert _spearman(X[a == g, j], out[a == g, j]) == pytest.approx(1.0, abs=1e-12)
            order = np.argsort(X[a == g, j])
            assert np.all(np.diff(out[a == g, j][order]) > 0)


def test_dir_repair_level_zero_half_and_unselected_columns() -> None:
    X, a = _two_group_data(3, n0=150, n1=90)
    X_before = X.copy()
    np.testing.assert_array_equal(repair_disparate_impact(X, a, repair_level=0.0), X)
    full = repair_disparate_impact(X, a, repair_level=1.0, columns=[0, 3])
    half = repair_disparate_impact(X, a, repair_level=0.5, columns=[0, 3])
    np.testing.assert_allclose(half, 0.5 * (X + full), rtol=0, atol=1e-12)
    quarter = repair_disparate_impact(X, a, repair_level=0.25, columns=[0, 3])
    np.testing.assert_allclose(quarter, 0.75 * X + 0.25 * full, rtol=0, atol=1e-12)
    for cols in ([3], np.array([False, False, False, True]), [-1]):
        only3 = repair_disparate_impact(X, a, columns=cols)
        np.testing.assert_array_equal(only3[:, :3], X[:, :3])
        np.testing.assert_array_equal(only3[:, 3], full[:, 3])
    assert not np.array_equal(full[:, 0], X[:, 0])
    np.testing.assert_array_equal(X, X_before)  # input untouched


def test_dir_default_columns_skip_one_hot() -> None:
    X, a = _two_group_data(4, n0=120, n1=80)
    repair = fit_disparate_impact_repair(X, a)
    assert repair.columns == (0, 3)  # the one-hot pair (columns 1, 2) is left alone
    out = repair.apply(X, a)
    np.testing.assert_array_equal(out[:, 1:3], X[:, 1:3])
    np.testing.assert_array_equal(out, repair_disparate_impact(X, a, columns=[0, 3]))
    assert fit_disparate_impact_repair(X, a, columns=[]).apply(X, a).tolist() == X.tolist()


def test_dir_fit_then_apply_to_new_rows() -> None:
    X, a = _two_group_data(5, n0=200, n1=300)
    repair = fit_disparate_impact_repair(X, a, repair_level=1.0, columns=[0, 3])
    train_out = repair.apply(X, a)
    np.testing.assert_array_equal(train_out, repair_disparate_impact(X, a, columns=[0, 3]))
    # repairing rows one at a time gives the batch result: no dependence on the batch
    for i in (0, 17, 123, 499):
        row = repair.apply(X[i : i + 1], a[i : i + 1])
        np.testing.assert_allclose(row[0], train_out[i], rtol=0, atol=1e-15)
    # new rows: a batch with only one group, and values outside the training range
    rng = np.random.default_rng(6)
    new = rng.uniform(-0.5, 1.5, size=(50, 4))
    new_a = np.ones(50, dtype=np.int64)
    out = repair.apply(new, new_a)
    lo = min(X[:, 0].min(), X[:, 3].min())
    hi = max(X[:, 0].max(), X[:, 3].max())
    assert np.all((out[:, [0, 3]] >= lo) & (out[:, [0, 3]] <= hi))  # clamped to training range
    np.testing.assert_array_equal(out[:, 1:3], new[:, 1:3])
    order = np.argsort(new[:, 0])
    assert np.all(np.diff(out[order, 0]) >= 0)  # monotone within the group


def test_dir_repair_object_is_frozen_and_read_only() -> None:
    X, a = _two_group_data(8, n0=20, n1=30)
    repair = fit_disparate_impact_repair(X, a, columns=[0])
    assert isinstance(repair, DisparateImpactRepair)
    assert repair.n_features == 4
    g0, g1 = repair.group_sorted_values[0]
    np.testing.assert_array_equal(g0, np.sort(X[a == 0, 0]))
    np.testing.assert_array_equal(g1, np.sort(X[a == 1, 0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        repair.repair_level = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        g0[0] = 99.0
    # a different level on the same fit
    half = dataclasses.replace(repair, repair_level=0.5)
    np.testing.assert_allclose(half.apply(X, a), 0.5 * (X + repair.apply(X, a)), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="repair_level"):
        dataclasses.replace(repair, repair_level=2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repair_level": 1.5}, r"repair_level must be in \[0, 1\]"),
        ({"repair_level": -0.1}, r"repair_level must be in \[0, 1\]"),
        ({"repair_level": float("nan")}, r"repair_level must be in \[0, 1\]"),
        ({"repair_level": True}, "repair_level must be a number"),
        ({"columns": [4]}, "columns index 4 is out of range"),
        ({"columns": [0, -4]}, "same column more than once"),
        ({"columns": [0.0]}, "boolean mask or integer indices"),
        ({"columns": [True, False]}, "mask has 2 entries"),
        ({"columns": [[0]]}, "1-D mask or index list"),
    ],
)
def test_dir_rejects_bad_parameters(kwargs: dict[str, object], match: str) -> None:
    X, a = _two_group_data(9, n0=10, n1=10)
    with pytest.raises(ValueError, match=match):
        fit_disparate_impact_repair(X, a, **kwargs)  # type: ignore[arg-type]


def test_dir_rejects_bad_data() -> None:
    X, a = _two_group_data(10, n0=10, n1=10)
    with pytest.raises(ValueError, match="group a=1 has no rows"):
        fit_disparate_impact_repair(X, np.zeros(20))
    # Codes 0 and 2 are two groups (a judged group 1 absent from the fit rows passes unchanged).
    assert fit_disparate_impact_repair(X, np.where(a == 1, 2, 0)).group_codes == (0, 2)
    with pytest.raises(ValueError, match="a has 19 entries"):
        fit_disparate_impact_repair(X, a[:-1])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite value nan at row 3, column 2"):
        fit_disparate_impact_repair(bad, a)
    with pytest.raises(ValueError, match="2-D array"):
        fit_disparate_impact_repair(X[:, 0], a)
    with pytest.raises(ValueError, match="X has no rows"):
        fit_disparate_impact_repair(np.empty((0, 4)), np.empty(0))
    with pytest.raises(ValueError, match="real numbers"):
        fit_disparate_impact_repair(X.astype(str), a)
    repair = fit_disparate_impact_repair(X, a)
    with pytest.raises(ValueError, match="X has 3 columns but the repair was fitted on 4"):
        repair.apply(X[:, :3], a)
    with pytest.raises(ValueError, match="a has 5 entries"):
        repair.apply(X, a[:5])


# --------------------------------------------------------------------------------------------
# Disparate impact remover: property test
# --------------------------------------------------------------------------------------------

_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)
_grid = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])  # forces ties


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n=st.integers(min_value=2, max_value=40),
    d=st.integers(min_value=1, max_value=3),
    level=_unit,
)
def test_dir_property_outputs_within_column_range(
    data: st.DataObject, n: int, d: int, level: float
) -> None:
    values = st.one_of(_unit, _grid)
    X = data.draw(hnp.arrays(np.float64, (n, d), elements=values))
    a = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    a[0], a[1] = 0, 1  # both groups present
    out = repair_disparate_impact(X, a, repair_level=level, columns=list(range(d)))
    assert out.shape == X.shape
    assert np.all(np.isfinite(out))
    assert np.all(out >= X.min(axis=0)) and np.all(out <= X.max(axis=0))
    for g in (0, 1):
        for j in range(d):
            col, rep = X[a == g, j], out[a == g, j]
            order = np.argsort(col, kind="stable")
            assert np.all(np.diff(rep[order]) >= -1e-12)  # rank order kept within the group
            for v in np.unique(col):
                assert np.ptp(rep[col == v]) == 0.0  # tied inputs stay tied


# --------------------------------------------------------------------------------------------
# Optional cross-check against AIF360 / BlackBoxAuditing
# --------------------------------------------------------------------------------------------


def test_dir_against_aif360() -> None:
    """AIF360 agrees up to its documented median convention.

    With equal group sizes and distinct values, BlackBoxAuditing maps the k-th smallest value
    of each group to the *lower* median of the two k-th order statistics (their minimum), we to
    the ordinary median (their midpoint); both preserve within-group ranks and both leave a
    0/1 column in which both groups have both values unchanged.
    """
    pd = pytest.importorskip("pandas")
    pytest.importorskip("BlackBoxAuditing")
    datasets = pytest.importorskip("aif360.datasets")
    preprocessing = pytest.importorskip("aif360.algorithms.preprocessing")
    rng = np.random.default_rng(11)
    n_per = 100
    a = rng.permutation(np.repeat([0, 1], n_per))
    x = np.where(a == 0, rng.beta(2.0, 5.0, 2 * n_per), rng.beta(5.0, 2.0, 2 * n_per))
    hot = (rng.random(2 * n_per) < np.where(a == 0, 0.3, 0.7)).astype(np.float64)
    df = pd.DataFrame({"x": x, "hot": hot, "a": a.astype(float), "y": (x > 0.5).astype(float)})
    ds = datasets.BinaryLabelDataset(df=df, label_names=["y"], protected_attribute_names=["a"])
    dir_ = preprocessing.DisparateImpactRemover(repair_level=1.0, sensitive_attribute="a")
    theirs = dir_.fit_transform(ds).features
    names = ds.feature_names
    their_x = theirs[:, names.index("x")]
    np.testing.assert_array_equal(theirs[:, names.index("hot")], hot)

    ours = repair_disparate_impact(np.column_stack([x, hot]), a)
    np.testing.assert_array_equal(ours[:, 1], hot)  # default: one-hot left alone
    s0, s1 = np.sort(x[a == 0]), np.sort(x[a == 1])
    for g in (0, 1):
        rank = _ranks(x[a == g]).astype(np.int64)
        np.testing.assert_allclose(their_x[a == g], np.minimum(s0, s1)[rank], atol=1e-12)
        np.testing.assert_allclose(ours[a == g, 0], 0.5 * (s0 + s1)[rank], atol=1e-12)
        assert _spearman(their_x[a == g], ours[a == g, 0]) == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Many groups: codes 0..K-1, -1 for rows of a group too small to judge
# --------------------------------------------------------------------------------------------


def _many_group_data(
    seed: int, sizes: tuple[int, ...] = (300, 200, 250, 150), not_judged: int = 40
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Features (two numeric columns shifted per group plus a one-hot pair), labels whose rate
    differs by group, and codes 0..K-1 with ``not_judged`` rows coded -1, shuffled."""
    rng = np.random.default_rng(seed)
    a = rng.permutation(
        np.r_[np.repeat(np.arange(len(sizes)), sizes), np.full(not_judged, -1)].astype(np.int64)
    )
    n = a.shape[0]
    shift = (a + 1).astype(np.float64)  # -1 rows: shift 0
    num0 = rng.beta(1.0 + shift, 6.0 - shift)
    num1 = rng.uniform(0.0, 1.0, n) * (0.3 + 0.15 * shift)
    hot = (rng.random(n) < 0.2 + 0.1 * shift).astype(np.float64)
    X = np.column_stack([num0, hot, 1.0 - hot, num1])
    rate = np.array([0.15, 0.35, 0.55, 0.75, 0.5])[a]  # code -1 -> rate 0.5
    y = (rng.random(n) < rate).astype(np.int64)
    return X, y, a


def test_reweighing_three_groups_hand_computed() -> None:
    # group 0: 2 positive, 6 negative; group 1: 5 and 5; group 2: 1 and 1. n = 20, n_y1 = 8,
    # n_y0 = 12.  w(g, y) = n_g * n_y / (n * n_gy):
    #   w(0,1) = 8*8/(20*2) = 1.6    w(0,0) = 8*12/(20*6) = 0.8
    #   w(1,1) = 10*8/(20*5) = 0.8   w(1,0) = 10*12/(20*5) = 1.2
    #   w(2,1) = 2*8/(20*1) = 0.8    w(2,0) = 2*12/(20*1) = 1.2
    # weighted favourable rate: 3.2/8 = 4/10 = 0.8/2 = 0.4 = 8/20 in every group.
    a = np.repeat([0, 0, 1, 1, 2, 2], [2, 6, 5, 5, 1, 1])
    y = np.repeat([1, 0, 1, 0, 1, 0], [2, 6, 5, 5, 1, 1])
    w = compute_reweighing_weights(y, a.astype(np.float32))
    expected = np.repeat([1.6, 0.8, 0.8, 1.2, 0.8, 1.2], [2, 6, 5, 5, 1, 1])
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    assert w.sum() == pytest.approx(20.0, abs=1e-12)
    for g in (0, 1, 2):
        assert w[(a == g) & (y == 1)].sum() / w[a == g].sum() == pytest.approx(0.4, abs=1e-15)


@pytest.mark.parametrize(("seed", "sizes"), [(0, (300, 200, 250)), (1, (300, 200, 250, 150))])
def test_reweighing_many_groups_equalises_every_group(seed: int, sizes: tuple[int, ...]) -> None:
    _, y, a = _many_group_data(seed, sizes)
    w = compute_reweighing_weights(y, a)
    n = y.shape[0]
    assert w.sum() == pytest.approx(n, abs=1e-9)
    codes = [-1, *range(len(sizes))]
    assert sorted(np.unique(a)) == codes
    for g in codes:  # closed form, cell by cell; -1 is one more group
        n_g = int((a == g).sum())
        for lab in (0, 1):
            cell = (a == g) & (y == lab)
            n_y = int((y == lab).sum())
            expected = n_g * n_y / (n * int(cell.sum()))
            np.testing.assert_allclose(w[cell], expected, rtol=1e-15, atol=0)
    overall = y.mean()
    raw = [y[a == g].mean() for g in codes]
    assert max(raw) - min(raw) > 0.4
    for g in codes:  # weighted label rate: the overall rate in every group, -1 included
        assert w[(a == g) & (y == 1)].sum() / w[a == g].sum() == pytest.approx(overall, abs=1e-12)
    # -1 is just one more cell: recoding it as group K changes nothing
    recoded = np.where(a == -1, len(sizes), a)
    np.testing.assert_array_equal(compute_reweighing_weights(y, recoded), w)
    # float32 codes (froc's storage) give the same weights
    np.testing.assert_array_equal(compute_reweighing_weights(y, a.astype(np.float32)), w)


@pytest.mark.parametrize(
    ("y", "a", "match"),
    [
        ([0, 1, 0, 1, 0], [0, 0, 1, 1, 2], r"no rows in \(a=2, y=1\):"),
        ([0, 1, 0, 1, 1], [0, 0, 1, 1, -1], r"no rows in \(a=-1, y=0\):"),
        ([0, 1, 0, 1], [0, 0, 1, -2], r"group codes >= -1 \(-1: .*\), found -2"),
        ([0, 1, 0, 1], [0, 0, 2, 2.5], r"found 2\.5"),
        ([0, 1, 0, 1], [0, 0, 2, float("nan")], "found nan"),
        ([0, 1], ["0", "1"], "a must be numeric group codes"),
    ],
)
def test_reweighing_many_groups_rejects(y: list[object], a: list[object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_reweighing_weights(y, a)  # type: ignore[arg-type]


def test_massaging_quotas_hand_made_example() -> None:
    # rows:           0    1    2    3    4    5    6    7    8    9
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1])
    y = np.array([0, 0, 1, 1, 1, 0, 1, 1, 0, 0])
    s = np.array([0.4, 0.6, 0.1, 0.3, 0.2, 0.5, 0.9, 0.9, 0.0, 1.0])
    # group 0: promote its highest-scored y=0 row (row 1, 0.6); group 1: demote its lowest
    # scored y=1 row (row 4, 0.2); group 2: demote one of the tied y=1 rows 6 and 7 -> the
    # earlier (row 6); group -1 is not judged and row 9 never flips.
    out = massage_labels(s, y, a, quotas={0: (1, 0), 1: (0, 1), 2: (0, 1)})
    np.testing.assert_array_equal(out, [0, 1, 1, 1, 0, 0, 0, 1, 0, 0])
    # both directions in one group; groups not listed are left alone
    out = massage_labels(s, y, a, quotas={0: (2, 1)})
    np.testing.assert_array_equal(out, [1, 1, 0, 1, 1, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(massage_labels(s, y, a, quotas={}), y)


@pytest.mark.parametrize(("seed", "sizes"), [(0, (300, 200, 250)), (1, (300, 200, 250, 150))])
def test_massaging_many_groups_meets_the_overall_rate(seed: int, sizes: tuple[int, ...]) -> None:
    X, y, a = _many_group_data(seed, sizes)
    scores = massaging_scores(X, y)
    quotas = parity_flip_quotas(y, a)
    assert sorted(quotas) == list(range(len(sizes)))
    labels = massage_labels(scores, y, a)  # default: the parity quotas
    np.testing.assert_array_equal(labels, massage_labels(scores, y, a, quotas=quotas))
    np.testing.assert_array_equal(
        labels, massage_labels(scores, y, a.astype(np.float32), quotas=quotas)
    )
    judged = a >= 0
    overall = y[judged].mean()
    changed = labels != y
    np.testing.assert_array_equal(labels[~judged], y[~judged])  # -1 rows never flip
    gaps_before = [abs(y[a == g].mean() - overall) for g in quotas]
    assert max(gaps_before) > 0.15
    for g, (promotions, demotions) in quotas.items():
        rows = a == g
        n_g = int(rows.sum())
        # within one row (in fact half a row: the quota is n_g |r - r_g| rounded) of the rate
        # of all judged rows before massaging
        assert abs(labels[rows].sum() - n_g * overall) <= 0.5 + 1e-9
        assert abs(labels[rows].mean() - overall) <= 1.0 / n_g
        promoted, demoted = changed & rows & (y == 0), changed & rows & (y == 1)
        assert int(promoted.sum()) == promotions and int(demoted.sum()) == demotions
        assert promotions == 0 or demotions == 0
        cand0, cand1 = rows & (y == 0), rows & (y == 1)
        if promotions:  # the promoted rows rank above every unpromoted candidate
            assert scores[promoted].min() >= scores[cand0 & ~changed].max()
        if demotions:  # the demoted below every kept one
            assert scores[demoted].max() <= scores[cand1 & ~changed].min()


def test_massaging_binary_quotas_match_pairs() -> None:
    pairs = parity_flip_count(_M_Y, _M_A)
    assert parity_flip_quotas(_M_Y, _M_A) == {0: (pairs, 0), 1: (0, pairs)}
    expected = massage_labels(_M_S, _M_Y, _M_A)
    np.testing.assert_array_equal(
        massage_labels(_M_S, _M_Y, _M_A, quotas=parity_flip_quotas(_M_Y, _M_A)), expected
    )
    two = massage_labels(_M_S, _M_Y, _M_A.astype(np.float32), quotas={0: (2, 0), 1: (0, 2)})
    np.testing.assert_array_equal(two, massage_labels(_M_S, _M_Y, _M_A, pairs=2))
    np.testing.assert_array_equal(two, [1, 0, 1, 1, 0, 1, 1, 0, 0])
    rng = np.random.default_rng(12)
    for _ in range(20):
        a = (rng.random(200) < 0.4).astype(np.int64)
        y = (rng.random(200) < np.where(a == 1, 0.7, 0.3)).astype(np.int64)
        s = np.round(rng.random(200), 1)  # many ties
        np.testing.assert_array_equal(
            massage_labels(s, y, a, quotas=parity_flip_quotas(y, a)), massage_labels(s, y, a)
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quotas": {2: (0, 3)}}, "3 demotions asked for in group a=2, but it has only 2"),
        ({"quotas": {0: (3, 0)}}, "3 promotions asked for in group a=0, but it has only 2"),
        ({"quotas": {5: (1, 0)}}, "1 promotions asked for in group a=5, but it has only 0"),
        ({"quotas": {-1: (1, 0)}}, "rows coded -1 never flip"),
        ({"quotas": {True: (1, 0)}}, "quotas keys must be group codes"),
        ({"quotas": {0: (-1, 0)}}, r"quotas\[0\] promotions must be a whole number >= 0"),
        ({"quotas": {0: (1.0, 0)}}, r"quotas\[0\] promotions must be a whole number"),
        ({"quotas": {0: (1,)}}, r"quotas\[0\] must be a pair"),
        ({"quotas": [(1, 0)]}, "quotas must map group codes"),
        ({"pairs": 1}, "pairs applies to binary groups"),
        ({"pairs": 1, "quotas": {0: (1, 0)}}, "not both"),
        ({"a": [0, 0, 0, 1, 1, 1, 2, 2, -3]}, "found -3"),
    ],
)
def test_massaging_many_groups_rejects(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "scores": np.linspace(0.1, 0.9, 9),
        "y": np.array([0, 0, 1, 1, 1, 0, 1, 1, 0]),
        "a": np.array([0, 0, 0, 1, 1, 1, 2, 2, -1]),
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        massage_labels(**args)  # type: ignore[arg-type]


def test_dir_three_groups_hand_computed() -> None:
    # equal group sizes: the k-th smallest of every group sits at the quantile (k + 0.5) / 3 of
    # its group, so the full repair maps rank k to the median of the three k-th values:
    #   group 0 = [0.1, 0.2, 0.3], group 1 = [0.4, 0.5, 0.9], group 2 = [0.0, 0.6, 0.7]
    #   rank 0 -> median(0.1, 0.4, 0.0) = 0.1, rank 1 -> median(0.2, 0.5, 0.6) = 0.5,
    #   rank 2 -> median(0.3, 0.9, 0.7) = 0.7; the two -1 rows keep their values.
    x = np.array([0.3, 0.5, 0.95, 0.6, 0.1, 0.9, 0.0, 0.2, 0.4, 0.7, 0.05])
    a = np.array([0, 1, -1, 2, 0, 1, 2, 0, 1, 2, -1])
    repair = fit_disparate_impact_repair(x[:, None], a.astype(np.float32), columns=[0])
    assert repair.group_codes == (0, 1, 2)
    assert [v.tolist() for v in repair.group_sorted_values[0]] == [
        [0.1, 0.2, 0.3],
        [0.4, 0.5, 0.9],
        [0.0, 0.6, 0.7],
    ]
    out = repair.apply(x[:, None], a)[:, 0]
    np.testing.assert_allclose(
        out, [0.7, 0.5, 0.95, 0.5, 0.1, 0.7, 0.1, 0.5, 0.1, 0.7, 0.05], rtol=0, atol=1e-15
    )
    half = repair_disparate_impact(x[:, None], a, repair_level=0.5, columns=[0])[:, 0]
    np.testing.assert_allclose(half, 0.5 * (x + out), rtol=0, atol=1e-15)


def test_dir_many_groups_equalises_quantiles_and_leaves_not_judged_rows() -> None:
    X, _, a = _many_group_data(2, sizes=(400, 300, 500), not_judged=60)
    repair = fit_disparate_impact_repair(X, a)
    assert repair.columns == (0, 3)  # one-hot pair left alone
    assert repair.group_codes == (0, 1, 2)
    assert all(len(per_group) == 3 for per_group in repair.group_sorted_values)
    out = repair.apply(X, a)
    np.testing.assert_array_equal(out, repair_disparate_impact(X, a))
    not_judged = a == -1
    np.testing.assert_array_equal(out[not_judged], X[not_judged])  # -1 rows unchanged
    np.testing.assert_array_equal(out[:, 1:3], X[:, 1:3])
    levels = np.linspace(0.0, 1.0, 11)
    for j in (0, 3):
        before = max(_ks_statistic(X[a == g, j], X[a == h, j]) for g, h in ((0, 1), (0, 2), (1, 2)))
        after = max(
            _ks_statistic(out[a == g, j], out[a == h, j]) for g, h in ((0, 1), (0, 2), (1, 2))
        )
        assert before > 0.2
        assert after < 0.01
        q = [np.quantile(out[a == g, j], levels) for g in (0, 1, 2)]
        np.testing.assert_allclose(q[0], q[1], atol=0.01)
        np.testing.assert_allclose(q[0], q[2], atol=0.01)
        for g in (0, 1, 2):  # rank order within every group kept exactly
            order = np.argsort(X[a == g, j])
            assert np.all(np.diff(out[a == g, j][order]) > 0)
    # level 0: the identity, every row
    np.testing.assert_array_equal(repair_disparate_impact(X, a, repair_level=0.0), X)
    quarter = dataclasses.replace(repair, repair_level=0.25).apply(X, a)
    np.testing.assert_allclose(quarter, 0.75 * X + 0.25 * out, rtol=0, atol=1e-12)
    # later rows: -1 and a code unseen at fit pass through, float32 codes work, and a row
    # repairs the same alone as in its batch
    rng = np.random.default_rng(3)
    new = rng.uniform(0.0, 1.0, size=(30, 4))
    new_a = np.tile(np.array([0, 1, 2, -1, 3], dtype=np.float32), 6)
    new_out = repair.apply(new, new_a)
    unseen = (new_a == -1) | (new_a == 3)
    np.testing.assert_array_equal(new_out[unseen], new[unseen])
    assert not np.array_equal(new_out[~unseen][:, [0, 3]], new[~unseen][:, [0, 3]])
    for i in range(5):
        np.testing.assert_array_equal(repair.apply(new[i : i + 1], new_a[i : i + 1])[0], new_out[i])


def test_dir_binary_with_not_judged_rows() -> None:
    X, a = _two_group_data(13, n0=120, n1=80)
    codes = a.copy()
    codes[::10] = -1
    judged = codes >= 0
    repair = fit_disparate_impact_repair(X, codes)
    assert repair.group_codes == (0, 1)  # the binary structure, as before
    assert all(len(pair) == 2 for pair in repair.group_sorted_values)
    out = repair.apply(X, codes)
    # the -1 rows are left out of the fit and out of the repair
    np.testing.assert_array_equal(out[judged], repair_disparate_impact(X[judged], codes[judged]))
    np.testing.assert_array_equal(out[~judged], X[~judged])


def test_dir_many_groups_rejects() -> None:
    X, _, a = _many_group_data(4, sizes=(20, 20, 20, 20), not_judged=5)
    with pytest.raises(ValueError, match="group a=1 has no rows: the repair needs at least two"):
        fit_disparate_impact_repair(X, np.where(a > 0, -1, a))
    # A judged group absent from the fit rows is skipped: its rows pass unchanged later.
    skipped = fit_disparate_impact_repair(X, np.where(a == 2, -1, a))
    assert skipped.group_codes == (0, 1, 3)
    assert np.array_equal(skipped.apply(X[a == 2], a[a == 2]), X[a == 2])
    with pytest.raises(ValueError, match="found -2"):
        fit_disparate_impact_repair(X, np.where(a == -1, -2, a))
    with pytest.raises(ValueError, match=r"found 0\.5"):
        fit_disparate_impact_repair(X, np.where(a == 3, 0.5, a))
    repair = fit_disparate_impact_repair(X, a)
    assert repair.group_codes == (0, 1, 2, 3)
    with pytest.raises(ValueError, match=r"found 1\.5"):
        repair.apply(X, np.where(a == 3, 1.5, a))
    with pytest.raises(ValueError, match="expected sorted values for groups 0, 1, 2 and 3"):
        dataclasses.replace(
            repair, group_sorted_values=tuple(v[:2] for v in repair.group_sorted_values)
        )
    with pytest.raises(ValueError, match="at least two distinct codes"):
        dataclasses.replace(repair, group_codes=(0, 0, 1, 2))
    with pytest.raises(ValueError, match="group_codes must be whole numbers"):
        dataclasses.replace(repair, group_codes=(0, 1, 2, True))
