"""Datasets of parquet shards: a directory (a pyarrow dataset) or a glob, read whole or
streamed in record batches.

A dataset's rows are its shards' rows in order: shards sorted by path, each shard's rows in
file order. Row ``k`` of the dataset is the same row whether the shards are read from their
directory, matched by a glob, or concatenated into one file, which is what makes a streamed
figure (a sum over rows, a bootstrap weight keyed on the row) independent of how the rows
were stored or batched.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from froc_cli.core._errors import InputError

if TYPE_CHECKING:  # pandas and pyarrow load when rows are read: the CLI's checks need neither
    import pandas as pd

__all__ = [
    "PARQUET_SUFFIXES",
    "STREAM_BATCH_ROWS",
    "Dataset",
    "TableBatch",
    "is_dataset_path",
    "open_dataset",
    "shard_paths",
]

PARQUET_SUFFIXES = (".parquet", ".pq")
# Rows read at a time: a few tens of MB of typical tabular columns, and a multiple of
# froc_cli.metrics.ATTACK_CHUNK (8,192) so attack chunks line up with batches.
STREAM_BATCH_ROWS = 131_072
_GLOB_CHARACTERS = frozenset("*?[")
T = TypeVar("T")


def is_dataset_path(path: str | os.PathLike[str]) -> bool:
    """True for a directory or a glob pattern (``data/part-*.parquet``): a dataset of shards,
    not one file."""
    text = os.fspath(path)
    if Path(text).is_file():
        return False
    return Path(text).is_dir() or any(c in _GLOB_CHARACTERS for c in text)


@dataclass(frozen=True)
class TableBatch:
    """Consecutive rows of a dataset: ``frame`` holds rows ``offset`` ... of ``shard`` (its
    index in the dataset, ``path`` its file), which are rows ``start`` ... of the dataset."""

    shard: int
    path: Path
    offset: int
    start: int
    frame: pd.DataFrame


@dataclass(frozen=True)
class Dataset:
    """Parquet shards read as one table (see the module docstring)."""

    source: str
    shards: tuple[Path, ...]
    columns: tuple[str, ...]
    shard_rows: tuple[int, ...]

    @property
    def rows(self) -> int:
        """Rows of every shard together."""
        return sum(self.shard_rows)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every row at once (the shards concatenated, with a fresh row index)."""
        import pandas as pd
        import pyarrow.parquet as pq

        wanted = None if columns is None else list(columns)
        parts = [
            _read_shard(shard, lambda s: pq.read_table(s, columns=wanted).to_pandas())
            for shard in self.shards
        ]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return frame.reset_index(drop=True)

    def batches(
        self,
        columns: Sequence[str] | None = None,
        batch_rows: int = STREAM_BATCH_ROWS,
        shards: Sequence[int] | None = None,
    ) -> Iterator[TableBatch]:
        """The rows in order, at most ``batch_rows`` at a time (a batch never spans two
        shards); only ``columns`` (default all) are read, of the ``shards`` given (indices;
        default all)."""
        import pandas as pd
        import pyarrow.parquet as pq

        wanted = None if columns is None else list(columns)
        chosen = range(len(self.shards)) if shards is None else shards
        for index in chosen:
            shard = self.shards[index]
            start = sum(self.shard_rows[:index])
            offset = 0
            parquet = _read_shard(shard, pq.ParquetFile)
            record_batches = parquet.iter_batches(batch_size=batch_rows, columns=wanted)
            while True:
                try:
                    record_batch = next(record_batches)
                except StopIteration:
                    break
                except (OSError, ValueError) as exc:
                    raise _shard_error(shard, exc) from exc
                frame = record_batch.to_pandas()
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                yield TableBatch(index, shard, offset, start, frame)
                offset += len(frame)
                start += len(frame)


def _read_shard(path: Path, read: Callable[[Path], T]) -> T:
    """``read(path)``, with pyarrow's errors as one InputError line naming the shard."""
    try:
        return read(path)
    except (OSError, ValueError) as exc:
        raise _shard_error(path, exc) from exc


def _shard_error(path: Path, exc: Exception) -> InputError:
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return InputError(f"{path}: cannot read as parquet: {first_line}")


def shard_paths(path: str) -> list[Path]:
    """The parquet shards of a directory or a glob, sorted by path (standard library only:
    the command line checks them before pandas and pyarrow load)."""
    if Path(path).is_dir():
        found = sorted(
            p
            for p in Path(path).iterdir()
            if p.suffix.lower() in PARQUET_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        if not found:
            raise InputError(f"{path}: directory holds no .parquet shards")
        return found
    matched = sorted(Path(p) for p in glob.glob(path) if Path(p).is_file())
    if not matched:
        raise InputError(f"{path}: no file matches this pattern")
    stray = [p for p in matched if p.suffix.lower() not in PARQUET_SUFFIXES]
    if stray:
        raise InputError(
            f"{path}: matches {stray[0]}, not a parquet shard; a dataset is .parquet shards"
        )
    return matched


def open_dataset(path: str | os.PathLike[str]) -> Dataset:
    """The shards of a directory or a glob, checked: each a readable parquet file with the
    first shard's columns (names, order and types), unique names, and rows in all."""
    import pyarrow.parquet as pq

    source = os.fspath(path)
    shards = shard_paths(source)
    first = _read_shard(shards[0], pq.read_schema)
    names = list(first.names)
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise InputError(
            f"{shards[0]}: duplicate column name(s) {', '.join(map(repr, duplicated))}"
        )
    if not names:
        raise InputError(f"{shards[0]}: no columns found")
    rows = []
    for shard in shards:
        metadata = _read_shard(shard, pq.read_metadata)
        schema = metadata.schema.to_arrow_schema()
        if list(schema.names) != names:
            raise InputError(
                f"{shard}: columns {list(schema.names)[:8]} differ from {shards[0]}'s "
                f"{names[:8]}; every shard of {source} needs the same columns"
            )
        for field in schema:
            expected = first.field(field.name).type
            if field.type != expected:
                raise InputError(
                    f"{shard}: column {field.name!r} is {field.type}, {expected} in "
                    f"{shards[0]}; every shard of {source} needs the same column types"
                )
        rows.append(int(metadata.num_rows))
    if sum(rows) == 0:
        raise InputError(f"{source}: the dataset has columns but no data rows")
    return Dataset(source, tuple(shards), tuple(str(n) for n in names), tuple(rows))
