"""Resolve the roles of a table's columns (label, protected attribute, features) and validate them.

Every problem is reported as one :class:`InputError` line that names the file, the column and the
offending value, so a data owner can fix the file without reading a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.core._config import DataSpec, FairnessCriterion
from froc_cli.core._errors import InputError

__all__ = [
    "MAX_EXACT_MAGNITUDE",
    "GroupCoding",
    "PreparedData",
    "group_membership",
    "matches_value",
    "number_problem",
    "prepare_data",
    "protected_series",
    "require_columns",
    "resolve_group_coding",
    "value_text",
    "value_texts",
]

# A text column whose values are nearly all numbers is a numeric column with a typo in it,
# not a categorical column: report the stray value instead of one-hot encoding it.
_NUMERIC_TEXT_SHARE = 0.9
_MAX_LISTED = 8
# Past 2^53 float64 no longer holds every integer, and a column's range (max - min) can
# overflow: such numbers cannot be scaled, attacked and written back exactly.
MAX_EXACT_MAGNITUDE = float(2**53)


@dataclass(frozen=True)
class PreparedData:
    """A validated table with its roles resolved.

    ``y`` is 1 for the favourable outcome. ``a`` codes the groups: binary (``group_names`` is
    None), 0 for the protected group and 1 for the rest (the paper's convention); or one code
    per group, ``group_names[code]`` its value (a protected attribute with more than two values
    and no ``--protected-group``, or an intersection). A code of -1 marks a group too small to
    judge (``too_small``: its name and the rows it had where it was judged), left out of every
    fairness figure. ``frame`` keeps the file's row positions as its index.
    """

    source: str
    frame: pd.DataFrame
    label_column: str
    positive_value: str
    y: np.ndarray
    protected_column: str
    protected_values: tuple[str, ...]
    protected_group_defaulted: bool
    a: np.ndarray
    feature_columns: tuple[str, ...]
    immutable_columns: tuple[str, ...]
    dropped_rows: int
    group_names: tuple[str, ...] | None = None
    too_small: tuple[tuple[str, int], ...] = ()
    fairness: FairnessCriterion = "parity"

    @property
    def binary(self) -> bool:
        """True for the paper's two groups (a protected group and the rest)."""
        return self.group_names is None

    @property
    def protected_columns(self) -> tuple[str, ...]:
        """The protected column, or the columns of an intersection."""
        if self.protected_column in self.frame.columns:
            return (self.protected_column,)
        return tuple(part.strip() for part in self.protected_column.split(","))

    @property
    def judging(self) -> dict[str, Any]:
        """How decisions on these rows are judged: ``criterion`` and ``group_names``, the
        keywords of :class:`froc_cli.metrics.Decisions` and ``attack_decisions``."""
        return {"criterion": self.fairness, "group_names": self.group_names}

    def protected_summary(self) -> dict[str, Any]:
        """The ``protected`` block of every JSON report: the column and group a=0 (binary),
        or the groups judged and those too small to judge; the criterion unless it is the
        paper's parity between two groups (whose block is as it always was)."""
        if self.group_names is None:
            summary: dict[str, Any] = {
                "column": self.protected_column,
                "group_a0": list(self.protected_values),
                "group_chosen_by_default": self.protected_group_defaulted,
            }
        else:
            summary = {
                "column": self.protected_column,
                "groups": list(self.judged_group_names()),
                "too_small": dict(self.too_small),
            }
        if self.group_names is not None or self.fairness != "parity":
            summary["fairness"] = self.fairness
        return summary

    def judged_group_names(self) -> tuple[str, ...]:
        """The names of the groups judged (every group but the too-small ones)."""
        if self.group_names is None:
            return ("protected", "unprotected")
        small = {name for name, _ in self.too_small}
        return tuple(name for name in self.group_names if name not in small)

    @property
    def n_rows(self) -> int:
        """Rows after cleaning."""
        return len(self.frame)

    def label_cell_values(self, frame: pd.DataFrame) -> tuple[Any, Any]:
        """The cells written for a favourable and an unfavourable label in ``frame`` (the
        table this was prepared from): each outcome's most common original value, in the
        file's own type (ties: the first seen)."""
        column = frame[self.label_column].iloc[np.asarray(self.frame.index)]
        values: list[Any] = []
        for outcome in (1.0, 0.0):
            counts = column[self.y == outcome].value_counts(sort=False)
            values.append(counts.index[int(np.argmax(counts.to_numpy()))])
        return values[0], values[1]

    def describe_groups(self) -> str:
        """Who is compared, for progress lines: ``protected group sex in {Female}`` (binary),
        or ``every group of race (5 values)``."""
        if self.group_names is not None:
            return f"every group of {self.protected_column} ({len(self.group_names)} values)"
        return f"protected group {self.describe_protected_group()}"

    def describe_protected_group(self) -> str:
        """``sex in {Female}`` style description of group a=0 (binary)."""
        values = ", ".join(self.protected_values)
        return f"{self.protected_column} in {{{values}}}"


def _format_values(values: Sequence[object]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    return shown + (f", ... ({len(values)} values)" if len(values) > _MAX_LISTED else "")


def _format_rows(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_MAX_LISTED])
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > _MAX_LISTED else "")


def value_text(value: object) -> str:
    """Canonical text of a cell value: 1.0 and 1 both read '1', so CLI values match either."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _text_values(series: pd.Series) -> np.ndarray:
    """``series.map(value_text)`` as an object array, computed once per distinct value.

    ``pd.factorize`` finds the distinct values (1,000,000 rows: ~0.05 s instead of ~1.5 s for
    a per-row map). Object columns that are not all text fall back to the per-row map, since
    factorize would merge values whose texts differ (``True`` and ``1``); so do missing values.
    """
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) != "string":
        return series.map(value_text).to_numpy(dtype=object)
    row_codes, uniques = pd.factorize(series)
    unique_texts = pd.Series(uniques).map(value_text).to_numpy(dtype=object)
    texts = np.empty(len(row_codes), dtype=object)
    known = row_codes >= 0
    texts[known] = unique_texts[row_codes[known]]
    missing = np.flatnonzero(~known)
    if missing.size:
        texts[missing] = series.iloc[missing].map(value_text).to_numpy(dtype=object)
    return texts


def value_texts(series: pd.Series) -> list[str]:
    """The distinct values of ``series`` as canonical text ('1' for 1 and 1.0), sorted."""
    return sorted(set(_text_values(series)))


def matches_value(series: pd.Series, value: str) -> np.ndarray:
    """Rows of ``series`` equal to the command-line ``value`` (text, number or boolean)."""
    texts = _text_values(series)
    hit = texts == value
    if pd.api.types.is_bool_dtype(series):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "false", "0"):
            hit = series.to_numpy(dtype=bool) == (lowered in ("true", "1"))
    elif pd.api.types.is_numeric_dtype(series):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            hit = hit | (series.to_numpy(dtype=float) == number)
    return np.asarray(hit, dtype=bool)


def _require_columns(source: str, frame: pd.DataFrame, names: list[str], option: str) -> None:
    require_columns(source, [str(c) for c in frame.columns], names, option)


def require_columns(source: str, columns: list[str], names: list[str], option: str) -> None:
    """Raise the one-line error naming the first of ``names`` missing from ``columns`` (the
    option that named it, and the columns there are)."""
    for name in names:
        if name not in columns:
            raise InputError(
                f"{source}: unknown column {name!r} given to {option}; "
                f"columns are {_format_values(columns)}"
            )


def _check_numeric_text(source: str, frame: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        present = series.dropna()
        if present.empty:
            continue
        # Parse each distinct value once (to_numeric is elementwise): 1,000,000 rows of a text
        # column take ~0.05 s instead of ~1.7 s.
        row_codes, uniques = pd.factorize(present)
        parses = pd.to_numeric(pd.Series(uniques), errors="coerce").notna().to_numpy()
        parsed = parses[row_codes]
        share = float(parsed.mean())
        if _NUMERIC_TEXT_SHARE <= share < 1.0:
            bad = present[~parsed]
            raise InputError(
                f"{source}: non-numeric text {bad.iloc[0]!r} in numeric column {column!r} "
                f"(row {_format_rows(np.asarray(bad.index))}); expected a number"
            )


def number_problem(
    source: str,
    column: str,
    values: np.ndarray,
    rows: np.ndarray,
    exact: np.ndarray | None = None,
    dropna_hint: bool = True,
) -> str | None:
    """The one-line error for a numeric column holding an infinite number or one beyond
    ``MAX_EXACT_MAGNITUDE`` (``rows``: the file's row labels of ``values``); None if clean.
    ``exact``, the column's own integers when it has them, is compared exactly (2^53 + 1
    reads as 2^53 once made a float). ``dropna_hint``: name ``--dropna`` as a way out (it is
    not one where rows cannot be dropped, as in predict)."""
    infinite = np.isinf(values)
    if infinite.any():
        return (
            f"{source}: column {column!r} has {int(infinite.sum())} infinite value(s) at row "
            f"{_format_rows(rows[infinite])}; expected finite numbers (fix them"
            + (" or pass --dropna)" if dropna_hint else ")")
        )
    huge = np.abs(values) > MAX_EXACT_MAGNITUDE
    if exact is not None and np.issubdtype(exact.dtype, np.integer):
        huge |= (exact > 2**53) | (exact < -(2**53))
    elif exact is not None and exact.dtype == object:
        huge |= np.array([isinstance(v, int) and abs(v) > 2**53 for v in exact], dtype=bool)
    if huge.any():
        return (
            f"{source}: column {column!r} has {int(huge.sum())} value(s) beyond +-2^53 "
            f"(e.g. {values[huge][0]:g}) at row {_format_rows(rows[huge])}; froc cannot scale "
            "them exactly: rescale the column or --drop it"
        )
    return None


def _holds_only_numbers(series: pd.Series) -> bool:
    """True when every present cell of an object column is a number: a Python or numpy number,
    or a text that reads as one (pandas leaves integers past 64 bits as either)."""
    present = series.dropna()
    if not len(present):
        return False
    if all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
        for v in present
    ):
        return True
    distinct = pd.Series(pd.unique(present))  # parse each distinct value once
    return bool(pd.to_numeric(distinct, errors="coerce").notna().all())


def _is_integer_text(text: str) -> bool:
    stripped = text.strip()
    return stripped.lstrip("+-").isdigit()


def _check_finite(
    source: str, frame: pd.DataFrame, columns: list[str], dropna: bool, allow_empty: bool = False
) -> pd.DataFrame:
    """Refuse infinite numbers (dropped with ``dropna``, as missing ones are) and magnitudes
    beyond ``MAX_EXACT_MAGNITUDE``: scaled to [0, 1] they would come out NaN or flattened,
    and the model constant."""
    for column in columns:
        series = frame[column]
        textual = series.dtype == object or pd.api.types.is_string_dtype(series)
        if textual and _holds_only_numbers(series):
            # pandas keeps integers past 64 bits as Python ints or text in an object column.
            exact = np.array(
                [int(v) if isinstance(v, str) and _is_integer_text(v) else v for v in series],
                dtype=object,
            )
            problem = number_problem(
                source, column, pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64),
                np.asarray(frame.index), exact=exact,
            )  # fmt: skip
            if problem is not None:
                raise InputError(problem)
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        values = series.to_numpy(dtype=np.float64)
        infinite = np.isinf(values)
        if infinite.any() and dropna:
            frame = frame.loc[~infinite]
            if frame.empty and not allow_empty:
                raise InputError(f"{source}: no rows left after --dropna")
            series, values = frame[column], values[~infinite]
        problem = number_problem(
            source, column, values, np.asarray(frame.index), exact=series.to_numpy()
        )
        if problem is not None:
            raise InputError(problem)
    return frame


def _encode_label(source: str, series: pd.Series, positive: str | None) -> tuple[np.ndarray, str]:
    values = list(pd.unique(series))
    column = series.name
    if len(values) < 2:
        raise InputError(
            f"{source}: label column {column!r} has a single value {value_text(values[0])!r}; "
            "expected two classes"
        )
    if positive is not None:
        hit = matches_value(series, positive)
        if not hit.any():
            raise InputError(
                f"{source}: --positive {positive!r} does not occur in label column {column!r}; "
                f"values are {_format_values(sorted(map(value_text, values)))}"
            )
        return hit.astype(np.float32), positive
    texts = {value_text(v) for v in values}
    if texts <= {"0", "1"} or texts <= {"False", "True"}:
        favourable = "1" if texts <= {"0", "1"} else "True"
        y = matches_value(series, favourable).astype(np.float32)
        return y, favourable
    raise InputError(
        f"{source}: label column {column!r} has values {_format_values(sorted(texts))}; "
        "name the favourable one with --positive VALUE"
    )


def group_membership(series: pd.Series, values: Sequence[str]) -> tuple[np.ndarray, str | None]:
    """Rows of ``series`` equal to any of ``values`` (text, number or boolean, as
    :func:`matches_value`), and the first value that matches no row (None when all do)."""
    in_group = np.zeros(len(series), dtype=bool)
    for value in values:
        hit = matches_value(series, value)
        if not hit.any():
            return in_group, value
        in_group |= hit
    return in_group, None


INTERSECTION_JOIN = " & "


def _protected_series(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """The protected attribute: one column, or the combined values of several
    (``Female & Black``) named by the columns joined with commas."""
    if len(columns) == 1:
        return frame[columns[0]]
    texts = [_text_values(frame[c]) for c in columns]
    combined = [INTERSECTION_JOIN.join(parts) for parts in zip(*texts, strict=True)]
    return pd.Series(combined, index=frame.index, dtype=object, name=",".join(columns))


def _resolve_group(
    source: str, series: pd.Series, y: np.ndarray, requested: tuple[str, ...] | None
) -> tuple[np.ndarray, tuple[str, ...], bool, tuple[str, ...] | None]:
    """Group codes ``a``, the protected values (binary), whether they were chosen by default,
    and the group names (None: binary)."""
    column = series.name
    texts = pd.Series(_text_values(series), index=series.index, dtype=object)
    values = sorted(pd.unique(texts))
    if len(values) < 2:
        raise InputError(
            f"{source}: protected column {column!r} has a single group {values[0]!r}; "
            "expected at least two"
        )
    if requested:
        in_group, absent = group_membership(series, requested)
        if absent is not None:
            raise InputError(
                f"{source}: --protected-group value {absent!r} does not occur in column "
                f"{column!r}; values are {_format_values(values)}"
            )
        if in_group.all():
            raise InputError(
                f"{source}: --protected-group {','.join(requested)} covers every row of "
                f"{column!r}; expected a group and the rest"
            )
        return (~in_group).astype(np.float32), tuple(requested), False, None
    if len(values) > 2:
        codes = pd.Categorical(texts.to_numpy(), categories=values).codes
        return codes.astype(np.float32), (), False, tuple(str(v) for v in values)
    rates = pd.Series(y).groupby(texts.to_numpy()).mean()
    lowest = str(rates.idxmin())
    in_group = (texts == lowest).to_numpy()
    return (~in_group).astype(np.float32), (lowest,), True, None


@dataclass(frozen=True)
class GroupCoding:
    """How a protected attribute's values become group codes, settled before the rows are
    read in batches (every batch of a streamed table is coded alike): ``protected_values``,
    ``defaulted`` and ``group_names`` as :class:`PreparedData`'s."""

    protected_values: tuple[str, ...]
    defaulted: bool
    group_names: tuple[str, ...] | None


def resolve_group_coding(
    source: str,
    values: pd.Series,
    favourable_rates: np.ndarray,
    requested: tuple[str, ...] | None,
) -> GroupCoding:
    """The group coding :func:`prepare_data` would settle on a whole table, from its distinct
    protected ``values`` (one entry each, as read) and each one's favourable rate: the same
    rules (the groups named, else every value when more than two, else the value with the
    lowest favourable rate), the same errors."""
    _, protected_values, defaulted, group_names = _resolve_group(
        source, values, np.asarray(favourable_rates, dtype=np.float64), requested
    )
    return GroupCoding(protected_values, defaulted, group_names)


def protected_series(frame: pd.DataFrame, spec: DataSpec) -> pd.Series:
    """The protected attribute of ``frame`` under ``spec``: one column, or the combined
    values of several (an intersection)."""
    frame.columns = [str(c) for c in frame.columns]
    columns = (spec.protected,) if spec.protected in frame.columns else spec.protected_columns
    _require_columns("table", frame, list(columns), "--protected")
    return _protected_series(frame, columns)


def _coded_groups(series: pd.Series, coding: GroupCoding) -> np.ndarray:
    if coding.group_names is None:
        in_group, _ = group_membership(series, coding.protected_values)
        return (~in_group).astype(np.float32)
    texts = _text_values(series)
    codes = pd.Categorical(texts, categories=list(coding.group_names)).codes
    return codes.astype(np.float32)


def prepare_data(
    frame: pd.DataFrame,
    spec: DataSpec,
    *,
    source: str,
    exclude: tuple[str, ...] = (),
    coding: GroupCoding | None = None,
) -> PreparedData:
    """Validate ``frame`` against ``spec`` and resolve label, group and feature columns.

    ``exclude`` names further columns that are not features (e.g. a predictions column).
    The protected column is never a feature (the paper's disparate-treatment rule).

    ``coding`` prepares one batch of a larger table: the groups are coded as it says (a value
    it does not know is coded -1, not judged) and the favourable label is ``spec.positive``
    (required), with no check that the batch holds both labels or every group.
    """
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    label = spec.label if spec.label is not None else str(frame.columns[-1])
    _require_columns(source, frame, [label], "--label")
    protected_columns = spec.protected_columns
    if spec.protected in frame.columns:  # a column whose own name holds a comma
        protected_columns = (spec.protected,)
    _require_columns(source, frame, list(protected_columns), "--protected")
    _require_columns(source, frame, list(spec.drop), "--drop")
    _require_columns(source, frame, list(spec.immutable), "--immutable")
    _require_columns(source, frame, list(exclude), "--predictions")
    if label in protected_columns:
        raise InputError(f"{source}: column {label!r} cannot be both the label and protected")
    if len(set(protected_columns)) < len(protected_columns):
        raise InputError(f"{source}: --protected {spec.protected} names a column twice")
    roles_checked = [("label", label)] + [("protected", c) for c in protected_columns]
    for role, column in roles_checked:
        if column in spec.drop:
            raise InputError(f"{source}: --drop names the {role} column {column!r}")
        if column in exclude:
            hint = "; name the label with --label" if role == "label" and spec.label is None else ""
            raise InputError(
                f"{source}: column {column!r} cannot be both the {role} and the --predictions "
                f"column{hint}"
            )
    roles = {label, *protected_columns, *spec.drop, *exclude}
    features = [c for c in frame.columns if c not in roles]
    if not features:
        raise InputError(f"{source}: no feature columns left after label, protected and --drop")
    used = [*features, label, *protected_columns, *exclude]

    n_before = len(frame)
    missing = frame[used].isna()
    if missing.to_numpy().any():
        if not spec.dropna:
            column = str(missing.any()[lambda s: s].index[0])
            rows = np.flatnonzero(missing[column].to_numpy())
            raise InputError(
                f"{source}: column {column!r} has {len(rows)} missing value(s) at row "
                f"{_format_rows(np.asarray(frame.index[rows]))}; fix them or pass --dropna"
            )
        frame = frame.loc[~missing.any(axis=1)]
        if frame.empty and coding is None:  # a batch may lose every row; the table may not
            raise InputError(f"{source}: no rows left after --dropna")
    frame = _check_finite(
        source, frame, [*features, label, *exclude], spec.dropna, allow_empty=coding is not None
    )
    _check_numeric_text(source, frame, features)

    if coding is None:
        y, positive = _encode_label(source, frame[label], spec.positive)
        a, group_values, defaulted, group_names = _resolve_group(
            source, _protected_series(frame, protected_columns), y, spec.protected_group
        )
    else:
        if spec.positive is None:
            raise ValueError("prepare_data(coding=...) needs spec.positive")
        positive = spec.positive
        y = matches_value(frame[label], positive).astype(np.float32)
        a = _coded_groups(_protected_series(frame, protected_columns), coding)
        group_values, defaulted = coding.protected_values, coding.defaulted
        group_names = coding.group_names
    immutable = tuple(c for c in spec.immutable if c in features)
    return PreparedData(
        source=source,
        frame=frame,
        label_column=label,
        positive_value=positive,
        y=y,
        protected_column=spec.protected,
        protected_values=group_values,
        protected_group_defaulted=defaulted,
        a=a,
        feature_columns=tuple(features),
        immutable_columns=immutable,
        dropped_rows=n_before - len(frame),
        group_names=group_names,
        fairness=spec.fairness,
    )
