"""Seeded train/test (and validation) splits stratified by label and group, the group-size
check every split must pass, and the split-then-fit-the-encoder recipe that audit and
train-in share."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from froc_cli.core._device import resolve_device
from froc_cli.core._errors import InsufficientDataError
from froc_cli.data._dataset import PreparedData
from froc_cli.data._encoder import TabularEncoder, fit_encoder
from froc_cli.data._rows import EncodedRows, encode_rows

__all__ = [
    "SplitData",
    "carve_validation",
    "check_group_sizes",
    "judge_groups",
    "split_indices",
    "split_prepared",
    "too_small_groups",
]


def split_indices(
    y: np.ndarray, a: np.ndarray, *, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a seeded split stratified by (label, group).

    Falls back to stratifying by label alone when a (label, group) cell is too small to split.
    """
    positions = np.arange(len(y))
    codes = np.asarray(a).astype(int)
    # (label, group) cells; with the binary coding these are y * 2 + a, in the same order.
    strata = np.asarray(y).astype(int) * (int(codes.max(initial=1)) + 2) + codes + 1
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


def judge_groups(
    prepared: PreparedData, positions: np.ndarray | None, minimum: int, where: str
) -> PreparedData:
    """Decide which groups are judged, on the rows at ``positions`` (all when None).

    Binary groups must both have ``minimum`` rows (:func:`check_group_sizes`). When every group
    is judged, a group with fewer rows is too small: its rows are coded -1 (left out of every
    fairness figure, kept for accuracy) and it is listed in ``too_small``; fewer than two
    judged groups raise :class:`InsufficientDataError` naming them.
    """
    a = prepared.a if positions is None else prepared.a[positions]
    codes = np.asarray(a).astype(np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=len(prepared.group_names or (0, 1)))
    small = too_small_groups(prepared, counts, minimum, where)
    if not small:
        return prepared
    codes = prepared.a.copy()
    codes[np.isin(codes, small)] = -1
    return replace(
        prepared,
        a=codes,
        too_small=tuple((prepared.group_names[g], int(counts[g])) for g in small),  # type: ignore[index]
    )


def too_small_groups(
    prepared: PreparedData, counts: np.ndarray, minimum: int, where: str
) -> list[int]:
    """:func:`judge_groups` from the rows per group code (``counts``, judged codes only): the
    codes of the groups too small to judge (never any for binary groups, which must both be
    large enough), raising as :func:`judge_groups` does."""
    if prepared.group_names is None:
        _check_counts(prepared, counts, minimum, where)
        return []
    small = [g for g, n in enumerate(counts) if n < max(minimum, 1)]
    judged = len(prepared.group_names) - len(small)
    if judged < 2:
        smallest = sorted(small, key=lambda g: (counts[g], g))
        listed = ", ".join(f"{prepared.group_names[g]!r} ({counts[g]})" for g in smallest[:8])
        more = f", ... ({len(small)} groups)" if len(small) > 8 else ""
        raise InsufficientDataError(
            f"{prepared.source}: {judged} group(s) of {prepared.protected_column!r} have "
            f"--min-group-size {minimum} rows {where}, fewer than the two a fairness figure "
            f"compares; too little data to judge (too small: {listed}{more}); lower "
            "--min-group-size or compare one group with the rest: --protected-group "
            "VALUE[,VALUE...]"
        )
    return small


def check_group_sizes(prepared: PreparedData, a: np.ndarray, minimum: int, where: str) -> None:
    """Raise :class:`InsufficientDataError` when a group has fewer than ``minimum`` rows (an
    empty group always: with no rows there is nothing to judge, whatever ``minimum`` says).
    When every group is judged, fewer than two groups with ``minimum`` rows raise."""
    codes = np.asarray(a).astype(np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=len(prepared.group_names or (0, 1)))
    _check_counts(prepared, counts, minimum, where)


def _check_counts(prepared: PreparedData, counts: np.ndarray, minimum: int, where: str) -> None:
    if prepared.group_names is not None:
        if int((counts >= max(minimum, 1)).sum()) < 2:
            raise InsufficientDataError(
                f"{prepared.source}: fewer than two groups of {prepared.protected_column!r} "
                f"have {max(minimum, 1)} rows {where}; too little data to judge"
            )
        return
    described_group = prepared.describe_protected_group()
    for group, described in (
        (0, f"protected group {described_group}"),
        (1, f"rest of the rows ({described_group.replace(' in ', ' not in ', 1)})"),
    ):
        count = int(counts[group]) if group < len(counts) else 0
        if count < max(minimum, 1):
            hint = ""
            if group == 0 and prepared.protected_group_defaulted:
                # The default group is the single value with the lowest favourable rate: on a
                # many-valued column that is often a tiny group.
                hint = (
                    f"; the group was chosen by default (the value of {prepared.protected_column!r}"
                    " with the lowest favourable rate): name a larger one with --protected-group "
                    "VALUE[,VALUE...]"
                )
            raise InsufficientDataError(
                f"{prepared.source}: {described} has {count} rows {where}, fewer than "
                f"--min-group-size {minimum}; too little data to judge{hint}"
            )


@dataclass(frozen=True)
class SplitData:
    """A prepared table split into a training and a held-out test part, with the encoder fitted
    on the training part and both parts encoded on ``device``."""

    prepared: PreparedData
    encoder: TabularEncoder
    train: EncodedRows
    test: EncodedRows
    device: torch.device


def split_prepared(
    prepared: PreparedData,
    *,
    test_size: float,
    seed: int,
    device: str,
    min_group_size: int,
) -> SplitData:
    """Split ``prepared`` (seeded, stratified by label and group), check the test split's group
    sizes, fit the encoder on the training part and encode both parts (shared by audit and
    train-in, so both see the same split for the same seed)."""
    resolved = resolve_device(device)
    train_pos, test_pos = split_indices(prepared.y, prepared.a, test_size=test_size, seed=seed)
    prepared = judge_groups(prepared, test_pos, min_group_size, "in the test split")
    encoder = fit_encoder(
        prepared.frame.iloc[train_pos], prepared.feature_columns, prepared.immutable_columns
    )
    return SplitData(
        prepared=prepared,
        encoder=encoder,
        train=encode_rows(prepared, encoder, train_pos, resolved),
        test=encode_rows(prepared, encoder, test_pos, resolved),
        device=resolved,
    )


def carve_validation(
    prepared: PreparedData, positions: np.ndarray, *, val_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training ``positions`` into fit and validation positions (seeded, stratified by
    label and group), checking the validation groups are not empty."""
    inner_fit, inner_val = split_indices(
        prepared.y[positions], prepared.a[positions], test_size=val_size, seed=seed
    )
    fit_pos, val_pos = positions[inner_fit], positions[inner_val]
    check_group_sizes(prepared, prepared.a[val_pos], 1, "in the validation split")
    return fit_pos, val_pos
