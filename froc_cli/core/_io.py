"""Reading and writing tables and files: CSV and parquet in, atomic writes out."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.core._errors import InputError

__all__ = [
    "TABLE_SUFFIXES",
    "frame_fingerprint",
    "hash_file",
    "read_table",
    "to_jsonable",
    "to_python",
    "write_bytes_atomic",
    "write_table_atomic",
    "write_text_atomic",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError(f"{path}: unknown table format {suffix!r}; expected .csv or .parquet")


def _check_unique_columns(path: Path, names: list[str]) -> None:
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise InputError(f"{path}: duplicate column name(s) {', '.join(map(repr, duplicated))}")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or parquet file, refusing missing, empty and ambiguous (duplicate-header) ones."""
    path = Path(path)
    kind = _table_format(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        if kind == "csv":
            with path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            # pandas silently renames a repeated header ("a", "a.1"), so check the raw header.
            _check_unique_columns(path, header)
            frame = pd.read_csv(path)
        else:
            import pyarrow.parquet as pq

            _check_unique_columns(path, list(pq.read_schema(path).names))
            frame = pd.read_parquet(path)
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {kind}: {first_line}") from exc
    if frame.shape[1] == 0:
        raise InputError(f"{path}: no columns found")
    if len(frame) == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    return frame


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the target folder, then rename it into place.

    A failed run leaves no half-written file: the temporary file is removed on any error. An
    unwritable target (a folder, no permission, a full disk) is an :class:`InputError` naming it.
    """
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        write(temp_path)
        os.replace(temp_path, path)
    except BaseException as exc:
        temp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        raise


def write_table_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV or parquet (picked by the suffix), atomically."""
    path = Path(path)
    kind = _table_format(path)
    if kind == "csv":
        _write_atomic(path, lambda temp: frame.to_csv(temp, index=False))
    else:
        _write_atomic(path, lambda temp: frame.to_parquet(temp, index=False))
    return path


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a text file (report, manifest, trace) atomically."""
    path = Path(path)
    _write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))
    return path


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write a binary file (model artifact) atomically."""
    path = Path(path)
    _write_atomic(path, lambda temp: temp.write_bytes(data))
    return path


def hash_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def to_jsonable(value: Any) -> Any:
    """A strict-JSON version of ``value``, recursively: dict keys as text, tuples as lists,
    numpy and torch scalars as Python numbers, NaN and infinities as None; any other object
    that JSON cannot hold becomes its text."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def to_python(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; any other value unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and cell values (independent of CSV vs parquet), so
    a saved model can recognise the table it was trained on."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False)
    digest.update(np.ascontiguousarray(hashed.to_numpy(dtype=np.uint64)).tobytes())
    return digest.hexdigest()
