"""Seeded train/test (and validation) splits stratified by label and group."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from ._errors import InsufficientDataError

__all__ = ["split_indices"]


def split_indices(
    y: np.ndarray, a: np.ndarray, *, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a seeded split stratified by (label, group).

    Falls back to stratifying by label alone when a (label, group) cell is too small to split.
    """
    positions = np.arange(len(y))
    strata = (np.asarray(y) * 2 + np.asarray(a)).astype(int)
    for stratify in (strata, np.asarray(y).astype(int)):
        try:
            train, test = train_test_split(
                positions, test_size=test_size, random_state=seed, stratify=stratify
            )
        except ValueError:
            continue
        return np.sort(train), np.sort(test)
    raise InsufficientDataError(
        f"cannot split {len(y)} rows {1 - test_size:.0%}/{test_size:.0%} stratified by label: "
        "too few rows of a class"
    )
