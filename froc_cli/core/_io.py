"""Reading and writing tables and files: CSV and parquet in, atomic writes out."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import signal
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.core._csv import foreign_delimiter_message
from froc_cli.core._errors import InputError

__all__ = [
    "TABLE_SUFFIXES",
    "StagedFile",
    "commit_files",
    "frame_fingerprint",
    "hash_file",
    "pack_row_hashes",
    "read_csv_text",
    "read_table",
    "render_like_file",
    "row_hashes",
    "stage_file",
    "table_writer",
    "to_jsonable",
    "to_python",
    "unpack_row_hashes",
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
    """Read a CSV or parquet file, refusing missing, empty and ambiguous (duplicate-header) ones;
    or every row of a dataset of parquet shards (a directory or a glob, see
    :mod:`froc_cli.core._shards`) as one table."""
    from froc_cli.core._shards import is_dataset_path, open_dataset

    if is_dataset_path(path):
        return open_dataset(path).read()
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
            frame = _keep_codes_as_text(path, pd.read_csv(path))
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
    if kind == "csv":
        problem = foreign_delimiter_message(path, [str(c) for c in frame.columns])
        if problem is not None:
            raise InputError(problem)
    if len(frame) == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    return frame


# A number written with a leading zero ("00123", "-007") is a code, not a quantity: pandas
# would read it as 123 and write it back without its zeros.
_LEADING_ZERO = r"^\s*[+-]?0[0-9]"


def read_csv_text(path: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    """The cells of a CSV file exactly as written (text; an empty cell is ``""``), for the
    ``columns`` given (default all)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, usecols=columns)


def _keep_codes_as_text(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns holding a value with a leading zero are read again as text (codes)."""
    numeric = [
        str(name)
        for name in frame.columns
        if pd.api.types.is_numeric_dtype(frame[name])
        and not pd.api.types.is_bool_dtype(frame[name])
    ]
    if not numeric:
        return frame
    text = read_csv_text(path, numeric)
    for name in numeric:
        cells = text[name]
        if cells.str.contains(_LEADING_ZERO, regex=True).any():
            frame[name] = cells.where(cells != "", None).astype(object)
    return frame


def render_like_file(
    output: pd.DataFrame, frame: pd.DataFrame, text: pd.DataFrame, sources: np.ndarray
) -> pd.DataFrame:
    """``output`` as the text a CSV file holds, keeping the input's own text wherever a value
    is unchanged: output row ``r`` came from input row ``sources[r]`` (``frame`` typed,
    ``text`` as written). A changed cell takes the text the file uses for that value elsewhere
    in the column (a flipped label), else the number formatted with the column's usual count
    of decimals (an attacked value)."""
    rendered = {}
    for name in output.columns:
        raw = text[name].to_numpy(dtype=object)
        typed_in = frame[name].to_numpy(dtype=object)[sources]
        typed_out = output[name].to_numpy(dtype=object)
        cells = raw[sources].copy()
        same = pd.isna(pd.Series(typed_in)).to_numpy() & pd.isna(pd.Series(typed_out)).to_numpy()
        same |= np.asarray(typed_in == typed_out, dtype=bool)
        changed = np.flatnonzero(~same)
        if changed.size:
            spelled = _spellings(frame[name], raw)
            decimals = _usual_decimals(raw)
            for row in changed:
                value = typed_out[row]
                cells[row] = spelled.get(to_python(value), _format_number(value, decimals))
        rendered[name] = cells
    return pd.DataFrame(rendered, columns=output.columns)


def _spellings(column: pd.Series, raw: np.ndarray) -> dict[Any, str]:
    """Each typed value of a column -> the text of its first occurrence in the file."""
    spelled: dict[Any, str] = {}
    for value, cell in zip(column.to_numpy(dtype=object), raw, strict=True):
        key = to_python(value)
        try:
            spelled.setdefault(key, cell)
        except TypeError:  # an unhashable cell: no spelling to reuse
            continue
    return spelled


def _usual_decimals(raw: np.ndarray) -> int:
    """The most common count of digits after the decimal point among a column's cells."""
    counts = Counter(len(cell.split(".")[1]) if "." in cell else 0 for cell in raw if cell)
    return counts.most_common(1)[0][0] if counts else 0


def _format_number(value: Any, decimals: int) -> str:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return "" if value is None else str(value)
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if decimals and abs(round(number, decimals) - number) <= 1e-9 * max(1.0, abs(number)):
        return f"{number:.{decimals}f}"
    return repr(number)


def _current_umask() -> int:
    """The process umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _plain_write_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would leave: an existing file keeps its own, a new
    one gets 0o666 less the umask (a temporary file starts at 0o600, unreadable to others)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_current_umask()


@dataclass(frozen=True)
class StagedFile:
    """A file written in full to ``temp`` (beside ``path``), not yet renamed into place."""

    path: Path
    temp: Path

    def discard(self) -> None:
        """Remove the temporary file (a run that fails leaves nothing behind)."""
        self.temp.unlink(missing_ok=True)


def stage_file(path: str | os.PathLike[str], write: Callable[[Path], object]) -> StagedFile:
    """Write through a temporary file in the target folder, with the mode a plain write
    would give; :func:`commit_files` renames it into place.

    On any error the temporary file is removed. An unwritable target (a folder, no permission,
    a full disk) is an :class:`InputError` naming it.
    """
    path = Path(path)
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
    staged = StagedFile(path, Path(temp_name))
    try:
        write(staged.temp)
        os.chmod(staged.temp, _plain_write_mode(path))
    except BaseException as exc:
        staged.discard()
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        raise
    return staged


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then deliver it: the renames of files
    that belong together (an output and its manifest) all happen, or none."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def commit_files(staged: list[StagedFile]) -> None:
    """Rename staged files into place together (an interrupt waits until all are renamed);
    on failure, the temporary files not yet renamed are removed."""
    done = 0
    try:
        with _interrupts_deferred():
            for item in staged:
                os.replace(item.temp, item.path)
                done += 1
    except OSError as exc:
        raise InputError(f"{staged[done].path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for item in staged[done:]:
            item.discard()


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write one file atomically: :func:`stage_file`, then :func:`commit_files`."""
    commit_files([stage_file(path, write)])


def table_writer(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Callable[[Path], object]:
    """What writes ``frame`` as CSV or parquet, picked by the suffix of ``path``."""
    if _table_format(Path(path)) == "csv":
        return lambda temp: frame.to_csv(temp, index=False)
    return lambda temp: frame.to_parquet(temp, index=False)


def write_table_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV or parquet (picked by the suffix), atomically."""
    path = Path(path)
    _write_atomic(path, table_writer(frame, path))
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
    """SHA-256 of a file's bytes, as hex; of a dataset of shards (a directory or a glob), of
    each shard's name and bytes in turn, in the dataset's order."""
    from froc_cli.core._shards import is_dataset_path, shard_paths

    digest = hashlib.sha256()
    files = shard_paths(os.fspath(path)) if is_dataset_path(path) else [Path(path)]
    for file in files:
        if len(files) > 1 or file != Path(path):
            digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
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


# A model file keeps the hashes of at most this many of its training rows (a seeded sample
# beyond): enough to see that an audited table overlaps them, small in the file (8 bytes each;
# 64 bits, so that chance matches stay below one in 10^9 per row).
MAX_STORED_ROW_HASHES = 50_000


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's values in ``columns`` (as text, so a CSV and a parquet copy
    of a table agree up to their dtypes)."""
    if len(frame) == 0:
        return np.zeros(0, dtype=np.uint64)
    texts = frame[columns].astype(str)
    return pd.util.hash_pandas_object(texts, index=False).to_numpy(dtype=np.uint64)


def pack_row_hashes(hashes: np.ndarray, seed: int) -> dict[str, Any]:
    """Row hashes for a model file: a seeded sample of at most ``MAX_STORED_ROW_HASHES``,
    base64 text, with the count they were drawn from."""
    import base64

    kept = hashes
    if len(hashes) > MAX_STORED_ROW_HASHES:
        rng = np.random.default_rng(seed)
        kept = hashes[rng.choice(len(hashes), MAX_STORED_ROW_HASHES, replace=False)]
    data = np.sort(kept).astype("<u8").tobytes()
    return {
        "rows": len(hashes),
        "stored": len(kept),
        "hashes": base64.b64encode(data).decode(),
    }


def unpack_row_hashes(packed: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The stored hashes (sorted) and the row count they were sampled from."""
    import base64

    data = base64.b64decode(str(packed.get("hashes", "")))
    return np.frombuffer(data, dtype="<u8").astype(np.uint64), int(packed.get("rows", 0))


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and cell values (independent of CSV vs parquet), so
    a saved model can recognise the table it was trained on."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False)
    digest.update(np.ascontiguousarray(hashed.to_numpy(dtype=np.uint64)).tobytes())
    return digest.hexdigest()
