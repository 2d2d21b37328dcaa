"""Tests of froc_cli.core._io: reading CSV/parquet defensively, writing atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from froc_cli.core import (
    InputError,
    hash_file,
    read_table,
    write_bytes_atomic,
    write_table_atomic,
    write_text_atomic,
)
from froc_cli.core._io import _write_atomic


def _one_line_error(excinfo: pytest.ExceptionInfo[InputError], *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def test_read_csv_round_trips_values_and_dtypes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, 1.25, -2.0], "s": ["a", "b", "c"]})
    path = write_table_atomic(frame, tmp_path / "t.csv")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["n"].dtype.kind == "i"
    assert back["x"].dtype.kind == "f"


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_read_parquet_keeps_dtypes(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame(
        {"n": [1, 2, 3], "x": [0.5, 1.25, -2.0], "s": ["a", "b", "c"], "b": [True, False, True]}
    )
    path = write_table_atomic(frame, tmp_path / f"t{suffix}")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert [str(back[c].dtype)[:3] for c in ("n", "x", "b")] == ["int", "flo", "boo"]


def test_read_sample_csv(sample_csv: Path) -> None:
    frame = read_table(sample_csv)
    assert frame.shape == (4000, 9)
    assert list(frame.columns)[-1] == "approved"


def test_duplicate_csv_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read_table(path)
    _one_line_error(excinfo, str(path), "duplicate", "'a'")


def test_duplicate_quoted_csv_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text('"x y",z,"x y"\n1,2,3\n', encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        read_table(path)
    _one_line_error(excinfo, "'x y'")


def test_duplicate_parquet_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    pq.write_table(table, path)
    with pytest.raises(InputError) as excinfo:
        read_table(path)
    _one_line_error(excinfo, str(path), "duplicate", "'a'")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.csv", b"", "empty"),
        ("header.csv", b"a,b,c\n", "no data rows"),
        ("blank.csv", b"\n\n", "cannot read"),
        ("latin1.csv", "a,b\nZ\xfcrich,1\n".encode("latin-1"), "UTF-8"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "cannot read"),
        ("garbage.parquet", b"not a parquet file", "cannot read as parquet"),
        ("data.tsv", b"a\tb\n1\t2\n", "unknown table format"),
    ],
)
def test_bad_files_are_one_line_input_errors(
    tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as excinfo:
        read_table(path)
    _one_line_error(excinfo, str(path), needle)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as excinfo:
        read_table(tmp_path / "missing.csv")
    _one_line_error(excinfo, "missing.csv", "no such file")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(InputError) as excinfo:
        read_table(folder)
    _one_line_error(excinfo, "folder.csv", "directory")


# --------------------------------------------------------------------------------------------
# atomic writing
# --------------------------------------------------------------------------------------------


def test_atomic_writes_replace_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.md"
    write_text_atomic("first", target)
    write_text_atomic("second", target)
    assert target.read_text(encoding="utf-8") == "second"
    write_bytes_atomic(b"\x00\x01", tmp_path / "model.bin")
    assert (tmp_path / "model.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []
    assert _leftovers(tmp_path / "sub") == []


def test_failed_write_leaves_no_temp_file_and_no_target(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def half_write(temp: Path) -> None:
        temp.write_text("half of it", encoding="utf-8")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _write_atomic(target, half_write)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_table_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    good = pd.DataFrame({"a": [1, 2]})
    write_table_atomic(good, target)
    before = target.read_bytes()
    # A column mixing ints and text cannot be written as parquet: pyarrow raises mid-write.
    bad = pd.DataFrame({"a": pd.Series([1, "text"], dtype=object)})
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error type
        write_table_atomic(bad, target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_writing_onto_a_directory_is_an_input_error(tmp_path: Path) -> None:
    folder = tmp_path / "report.md"
    folder.mkdir()
    with pytest.raises(InputError) as excinfo:
        write_text_atomic("text", folder)
    _one_line_error(excinfo, "report.md", "directory")
    assert _leftovers(tmp_path) == []


def test_writing_below_a_file_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        write_text_atomic("text", blocker / "report.md")
    _one_line_error(excinfo, "report.md", "cannot write")


def test_unknown_output_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown table format"):
        write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_hash_file_is_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert hash_file(path) == hashlib.sha256(data).hexdigest()
