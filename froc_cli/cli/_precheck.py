"""Input errors the command line finds before it imports pandas or torch.

Each check here answers a question the engine would answer later (after seconds of imports)
with the same one-line message, and only when the engine would have raised that very error
first: where that is not certain (a malformed row, a header pandas would rename) it returns
without a verdict and the engine's own checks run as before. tests/cli/test_fast_cli.py holds
the messages to the engine's.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from froc_cli.core._config import DataSpec
from froc_cli.core._csv import foreign_delimiter_message
from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.core._shards import is_dataset_path, shard_paths

__all__ = [
    "TABLE_SUFFIXES",
    "check_csv_columns",
    "check_model_file",
    "check_table_file",
    "check_table_suffix",
    "safe_model_and_device",
]

# As froc_cli.core._io.TABLE_SUFFIXES (a test checks they agree).
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# As froc_cli.data._dataset._MAX_LISTED: columns named in an unknown-column message.
_MAX_LISTED = 8
# A subset of the model specs froc_cli.models.parse_model_spec accepts.
_PLAIN_MODEL = re.compile(r"lr|mlp:[1-9][0-9]*(?:x[1-9][0-9]*)*")


def check_table_file(path: Path) -> None:
    """The checks :func:`froc_cli.core._io.read_table` starts with, in its order: a known
    suffix, an existing file, not a folder, not empty. A dataset of shards (a directory or a
    glob) is left to the engine's checks (:func:`froc_cli.core._shards.open_dataset`)."""
    if is_dataset_path(path):
        shard_paths(str(path))
        return
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: unknown table format {suffix!r}; expected .csv or .parquet")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")


def check_table_suffix(path: Path | None, option: str) -> None:
    """An output table's name: .csv or .parquet (the suffix picks the format)."""
    if path is not None and path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"{option} {path}: expected a .csv or .parquet file name")


def check_model_file(path: Path) -> None:
    """The checks :func:`froc_cli.models.load_model` starts with: an existing file."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a .froc model file")


def safe_model_and_device(model: str, device: str) -> bool:
    """True when the engine's model-spec and device checks surely pass (no torch needed)."""
    return bool(_PLAIN_MODEL.fullmatch(model.strip().lower())) and device.strip().lower() in (
        "auto",
        "cpu",
    )


def _format_values(values: Sequence[object]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    return shown + (f", ... ({len(values)} values)" if len(values) > _MAX_LISTED else "")


def _unknown_column(header: list[str], spec: DataSpec, exclude: tuple[str, ...]) -> str | None:
    """The first unknown-column message :func:`froc_cli.data.prepare_data` would raise."""
    label = spec.label if spec.label is not None else header[-1]
    checks: tuple[tuple[Sequence[str], str], ...] = (
        ([label], "--label"),
        ([spec.protected] if spec.protected in header else spec.protected_columns, "--protected"),
        (spec.drop, "--drop"),
        (spec.immutable, "--immutable"),
        (exclude, "--predictions"),
    )
    for names, option in checks:
        for name in names:
            if name not in header:
                return f"unknown column {name!r} given to {option}; columns are " + _format_values(
                    header
                )
    return None


def check_csv_columns(path: Path, spec: DataSpec, exclude: tuple[str, ...] = ()) -> None:
    """Raise the engine's unknown-column error from the CSV header alone.

    Only when it is certain pandas reads the file to the same columns and no earlier check
    fails: a UTF-8 file whose header names are unique, non-empty and free of a byte-order
    mark, with at least one data row and no row wider than the header (pandas would then read
    an index column). The rest of the file is read only once a column is known to be missing.
    """
    if path.suffix.lower() != ".csv" or not path.is_file():
        return
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if (
                not header
                or not all(header)
                or header[0].startswith("\ufeff")
                or len(set(header)) != len(header)
            ):
                return
            delimiter_problem = foreign_delimiter_message(path, header)
            if delimiter_problem is not None:
                raise InputError(delimiter_problem)
            message = _unknown_column(header, spec, exclude)
            if message is None:
                return
            width, rows = len(header), 0
            for row in reader:
                if len(row) > width:
                    return
                rows += any(field.strip() for field in row)  # undercounting is safe
    except (OSError, UnicodeDecodeError, csv.Error):
        return
    if rows:
        raise InputError(f"{path}: {message}")
