"""Tests of froc_cli.data._splits: seeded train/test splits stratified by label x group."""

from __future__ import annotations

import numpy as np
import pytest

from froc_cli.core import InsufficientDataError
from froc_cli.data import split_indices


def _labels_and_groups(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.4).astype(np.float32)
    y = (rng.random(n) < np.where(a == 0, 0.2, 0.5)).astype(np.float32)
    return y, a


@pytest.mark.parametrize(("n", "test_size", "seed"), [(1000, 0.3, 0), (257, 0.25, 5), (80, 0.5, 9)])
def test_split_partitions_and_stratifies(n: int, test_size: float, seed: int) -> None:
    y, a = _labels_and_groups(n, seed)
    train, test = split_indices(y, a, test_size=test_size, seed=seed)
    # a partition of all positions, each part sorted
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert np.intersect1d(train, test).size == 0
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert abs(len(test) - test_size * n) <= 1
    # every (label, group) cell is split in the same proportion, up to rounding
    for label in (0, 1):
        for group in (0, 1):
            cell = np.flatnonzero((y == label) & (a == group))
            in_test = np.isin(cell, test).sum()
            assert abs(in_test - test_size * len(cell)) <= 1.0, (label, group)


def test_split_is_seeded() -> None:
    y, a = _labels_and_groups(500, 1)
    first = split_indices(y, a, test_size=0.3, seed=42)
    again = split_indices(y, a, test_size=0.3, seed=42)
    other = split_indices(y, a, test_size=0.3, seed=43)
    assert all(np.array_equal(p, q) for p, q in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_split_does_not_touch_global_random_state() -> None:
    y, a = _labels_and_groups(300, 2)
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    split_indices(y, a, test_size=0.3, seed=0)
    assert np.random.random() == expected


def test_falls_back_to_label_strata_when_a_cell_is_tiny() -> None:
    # The cell (y=1, a=0) has one row: it cannot be split, the label strata can.
    y = np.array([1] + [0] * 40 + [1] * 20 + [0] * 19, dtype=np.float32)
    a = np.array([0] * 41 + [1] * 39, dtype=np.float32)
    train, test = split_indices(y, a, test_size=0.25, seed=0)
    assert len(train) + len(test) == len(y)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        assert abs(np.isin(rows, test).sum() - 0.25 * len(rows)) <= 1.0


def test_a_class_too_small_to_split_is_insufficient_data() -> None:
    y = np.array([1] + [0] * 30, dtype=np.float32)
    a = np.array([0, 1] * 15 + [0], dtype=np.float32)
    with pytest.raises(InsufficientDataError, match="31 rows"):
        split_indices(y, a, test_size=0.3, seed=0)
