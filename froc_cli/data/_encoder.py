"""Tabular encoder: numerics min-max scaled to [0, 1], categoricals one-hot, reversibly.

The encoder keeps, for every original column, its block of encoded features, its bounds, its
value grid (integers stay integers, a price with two decimals keeps two) and its dtype, so that
an encoded row, adversarial or not, decodes back to a record of the original schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.core._errors import InputError
from froc_cli.core._io import to_python

__all__ = [
    "CategoricalColumn",
    "EncoderFit",
    "NumericColumn",
    "TabularEncoder",
    "fit_encoder",
]

_MAX_DECIMALS = 6


@dataclass(frozen=True)
class NumericColumn:
    """A numeric column encoded as one feature ``(x - minimum) / scale``.

    ``grid`` is the spacing of the column's values in original units (1 for integers, 0.01 for
    two decimals), or ``None`` when the values have no short decimal grid.
    """

    name: str
    start: int
    minimum: float
    maximum: float
    dtype: str
    grid: float | None

    @property
    def width(self) -> int:
        """Encoded width: one feature."""
        return 1

    @property
    def scale(self) -> float:
        """Range used for scaling; 1 for a constant column so nothing divides by zero."""
        span = self.maximum - self.minimum
        return span if span > 0 else 1.0


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical column encoded one-hot over the categories seen when fitting."""

    name: str
    start: int
    categories: tuple[Any, ...]
    dtype: str

    @property
    def width(self) -> int:
        """Encoded width: one feature per category."""
        return len(self.categories)


Column = NumericColumn | CategoricalColumn


def _decimal_grid(values: np.ndarray) -> float | None:
    """Smallest decimal grid 10^-k (k <= 6) that every value lies on, else None."""
    finite = values[np.isfinite(values)]
    for decimals in range(_MAX_DECIMALS + 1):
        rounded = np.round(finite, decimals)
        if np.all(np.abs(rounded - finite) <= 1e-9 * np.maximum(1.0, np.abs(finite))):
            return float(10.0**-decimals)
    return None


def _decimal_values(series: pd.Series) -> np.ndarray:
    """The column's numbers as float64. A float32 column's values are taken at the shortest
    decimal that reads back as the same float32 (0.01f is 0.009999999776 as a float64), so its
    decimal grid is found as a float64 column's is, and the grid's values decode back to the
    very float32 numbers of the file."""
    if series.dtype == np.float32:
        return series.to_numpy(dtype=np.float32).astype(str).astype(np.float64)
    return series.to_numpy(dtype=np.float64)


def _category_codes(series: pd.Series, categories: tuple[Any, ...]) -> np.ndarray:
    """Index of each value of ``series`` in ``categories`` (-1 when unseen).

    The dictionary lookup runs once per distinct value (``pd.factorize``), not once per row:
    1,000,000 rows of a text column take ~0.05 s instead of ~2 s. Missing values (which
    factorize would merge: None and NaN) are looked up one by one, as before.
    """
    lookup = {value: i for i, value in enumerate(categories)}
    row_codes, uniques = pd.factorize(series)
    unique_values = pd.Series(uniques).to_numpy(dtype=object)
    table = np.fromiter(
        (lookup.get(to_python(v), -1) for v in unique_values),
        dtype=np.int64,
        count=len(unique_values),
    )
    codes = np.append(table, -1)[row_codes]  # row_codes -1 (missing) -> -1 for now
    missing = np.flatnonzero(row_codes < 0)
    if missing.size:
        values = series.to_numpy(dtype=object)[missing]
        codes[missing] = [lookup.get(to_python(v), -1) for v in values]
    return codes


@dataclass(frozen=True)
class TabularEncoder:
    """Fitted encoder (see :func:`fit_encoder`); immutable and serialisable to JSON."""

    columns: tuple[Column, ...]
    immutable: tuple[str, ...]

    @property
    def n_features(self) -> int:
        """Width of the encoded feature vector."""
        return sum(column.width for column in self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Original column names, in encoded order."""
        return tuple(column.name for column in self.columns)

    def feature_names(self) -> list[str]:
        """One name per encoded feature: ``age`` or ``workclass=Private``."""
        names: list[str] = []
        for column in self.columns:
            if isinstance(column, NumericColumn):
                names.append(column.name)
            else:
                names.extend(f"{column.name}={value}" for value in column.categories)
        return names

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode the encoder's columns of ``frame`` into a float32 matrix.

        Numerics outside the fitted range scale outside [0, 1]; an unseen category encodes as
        an all-zero block.
        """
        missing = [name for name in self.column_names if name not in frame.columns]
        if missing:
            raise InputError(f"missing column(s) {', '.join(map(repr, missing))} for the encoder")
        out = np.zeros((len(frame), self.n_features), dtype=np.float32)
        for column in self.columns:
            series = frame[column.name]
            if isinstance(column, NumericColumn):
                try:
                    numbers = series.to_numpy(dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        f"column {column.name!r}: expected numbers, found {series.dtype} values"
                    ) from exc
                out[:, column.start] = (numbers - column.minimum) / column.scale
            else:
                codes = _category_codes(series, column.categories)
                known = codes >= 0
                out[np.flatnonzero(known), column.start + codes[known]] = 1.0
        return out

    def decode(self, encoded: np.ndarray) -> pd.DataFrame:
        """Decode encoded rows to records: values snapped to each column's grid and bounds,
        categories by the largest entry of their block, dtypes restored."""
        encoded = np.asarray(encoded, dtype=np.float64)
        data: dict[str, Any] = {}
        for column in self.columns:
            if isinstance(column, NumericColumn):
                values = encoded[:, column.start] * column.scale + column.minimum
                if column.grid is not None:
                    steps = np.round((values - column.minimum) / column.grid)
                    values = column.minimum + steps * column.grid
                    decimals = max(0, round(-np.log10(column.grid)))
                    values = np.round(values, decimals)
                values = np.clip(values, column.minimum, column.maximum)
                data[column.name] = pd.Series(values).astype(column.dtype)  # type: ignore[call-overload]
            else:
                block = encoded[:, column.start : column.start + column.width]
                picked = np.asarray(column.categories, dtype=object)[block.argmax(axis=1)]
                data[column.name] = pd.Series(picked).astype(column.dtype)  # type: ignore[call-overload]
        return pd.DataFrame(data)

    def feature_mask(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Boolean mask over encoded features that belong to the given original columns."""
        mask = np.zeros(self.n_features, dtype=bool)
        for column in self.columns:
            if column.name in names:
                mask[column.start : column.start + column.width] = True
        return mask

    def mutable_mask(self) -> np.ndarray:
        """Features an attacker may change: all but the immutable columns'."""
        return ~self.feature_mask(self.immutable)

    def numeric_grid(self) -> np.ndarray:
        """Per encoded feature, the value grid in encoded units (0: continuous or categorical)."""
        grid = np.zeros(self.n_features, dtype=np.float32)
        for column in self.columns:
            if isinstance(column, NumericColumn) and column.grid is not None:
                grid[column.start] = column.grid / column.scale
        return grid

    def numeric_features(self) -> np.ndarray:
        """Boolean mask of the numeric features."""
        mask = np.zeros(self.n_features, dtype=bool)
        for column in self.columns:
            if isinstance(column, NumericColumn):
                mask[column.start] = True
        return mask

    def categorical_blocks(self) -> np.ndarray:
        """Per encoded feature, the index of its categorical block, or -1 for numerics."""
        blocks = np.full(self.n_features, -1, dtype=np.int64)
        block = 0
        for column in self.columns:
            if isinstance(column, CategoricalColumn):
                blocks[column.start : column.start + column.width] = block
                block += 1
        return blocks

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (stored in model files)."""
        return {
            "columns": [{"kind": type(c).__name__, **asdict(c)} for c in self.columns],
            "immutable": list(self.immutable),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularEncoder:
        """Rebuild an encoder from :meth:`to_dict` output, validating its shape."""
        try:
            columns: list[Column] = []
            for entry in data["columns"]:
                fields = {k: v for k, v in entry.items() if k != "kind"}
                if entry["kind"] == "NumericColumn":
                    columns.append(NumericColumn(**fields))
                elif entry["kind"] == "CategoricalColumn":
                    fields["categories"] = tuple(fields["categories"])
                    columns.append(CategoricalColumn(**fields))
                else:
                    raise ValueError(f"unknown column kind {entry['kind']!r}")
            return cls(columns=tuple(columns), immutable=tuple(data["immutable"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid encoder description: {exc}") from exc


def _decimal_places(values: np.ndarray) -> int | None:
    """The fewest decimals k (k <= 6) that every value has, else None: the grid is 10^-k."""
    grid = _decimal_grid(values)
    return None if grid is None else round(-np.log10(grid))


class EncoderFit:
    """The encoder fitted from batches of rows (a streamed pass over a table), merged exactly:
    ranges by min and max, decimal grids by the most decimals any batch needs, category sets
    by union. ``EncoderFit(...).update(frame).finish()`` is :func:`fit_encoder` on ``frame``,
    and updating with a table's batches in turn gives the encoder of the whole table."""

    def __init__(self, columns: tuple[str, ...], immutable: tuple[str, ...] = ()) -> None:
        self.columns = tuple(columns)
        self.immutable = tuple(immutable)
        self._numeric: dict[str, list[Any]] = {}  # name -> [min, max, decimals, dtype, integer]
        self._categories: dict[str, dict[Any, Any]] = {}  # name -> first-seen value: dtype
        self._dtypes: dict[str, Any] = {}

    def update(self, frame: pd.DataFrame) -> EncoderFit:
        """Take in the rows of ``frame`` (every column of the fit, any other ignored)."""
        for name in self.columns:
            series = frame[name]
            numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
                series
            )
            known = self._dtypes.get(name)
            dtype = series.dtype if known is None else _common_dtype(known, series.dtype)
            if known is not None and (name in self._numeric) != numeric:
                raise InputError(
                    f"column {name!r} is {series.dtype} in one batch and {known} in another"
                )
            self._dtypes[name] = dtype
            if numeric:
                self._update_numeric(name, series)
            else:
                seen = self._categories.setdefault(name, {})
                for value in pd.unique(series):
                    seen.setdefault(to_python(value), value)
        return self

    def _update_numeric(self, name: str, series: pd.Series) -> None:
        values = _decimal_values(series)
        integer = pd.api.types.is_integer_dtype(series)
        decimals = 0 if integer else _decimal_places(values)
        if not len(values):
            return
        low, high = float(np.min(values)), float(np.max(values))
        state = self._numeric.get(name)
        if state is None:
            self._numeric[name] = [low, high, decimals, integer]
            return
        state[0], state[1] = min(state[0], low), max(state[1], high)
        state[2] = None if state[2] is None or decimals is None else max(state[2], decimals)
        state[3] = state[3] and integer

    def finish(self) -> TabularEncoder:
        """The fitted encoder."""
        fitted: list[Column] = []
        start = 0
        for name in self.columns:
            dtype = str(self._dtypes[name])
            column: Column
            if name in self._numeric or name not in self._categories:
                low, high, decimals, integer = self._numeric.get(name, [np.nan, np.nan, 0, True])
                grid = 1.0 if integer else None if decimals is None else float(10.0**-decimals)
                column = NumericColumn(
                    name=name, start=start, minimum=low, maximum=high, dtype=dtype, grid=grid
                )
            else:
                seen = self._categories[name]
                ordered = sorted(seen.values(), key=str)
                categories = tuple(to_python(v) for v in ordered)
                column = CategoricalColumn(
                    name=name, start=start, categories=categories, dtype=dtype
                )
            fitted.append(column)
            start += column.width
        return TabularEncoder(columns=tuple(fitted), immutable=self.immutable)


def _common_dtype(first: Any, second: Any) -> Any:
    """The dtype pandas gives two batches' column concatenated (int64 and float64: float64)."""
    if first == second:
        return first
    return pd.concat([pd.Series([], dtype=first), pd.Series([], dtype=second)]).dtype


def fit_encoder(
    frame: pd.DataFrame, columns: tuple[str, ...], immutable: tuple[str, ...] = ()
) -> TabularEncoder:
    """Fit the encoder on ``frame`` (the training split): ranges, grids and category lists.

    Numeric dtypes become :class:`NumericColumn`; text, boolean and categorical dtypes become
    :class:`CategoricalColumn`. (:class:`EncoderFit` fits the same encoder batch by batch.)
    """
    return EncoderFit(columns, immutable).update(frame).finish()
