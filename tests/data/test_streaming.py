"""Datasets of parquet shards (froc_cli.core._shards) and the encoder fitted from a streamed
pass (froc_cli.data.EncoderFit).

A directory of shards, a glob over them and one file holding their concatenation are the same
table: same rows in the same order whether read whole or in record batches of any size, and
the encoder fitted batch by batch is the encoder fitted on the whole frame (ranges by min/max,
decimal grids by the most decimals, category sets by union).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_biased_frame

from froc_cli.core import InputError, hash_file, open_dataset, read_table
from froc_cli.core._shards import is_dataset_path
from froc_cli.data import EncoderFit, fit_encoder

FEATURES = ("age", "income", "education", "region", "gender")


def _write_shards(frame: pd.DataFrame, folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for index, size in enumerate(sizes):
        path = folder / f"part-{index:02d}.parquet"
        frame.iloc[start : start + size].to_parquet(path, index=False)
        paths.append(path)
        start += size
    assert start == len(frame)
    return paths


@pytest.fixture
def sharded(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    frame = make_biased_frame(n=1000, seed=4)
    _write_shards(frame, tmp_path / "shards", [300, 1, 450, 249])
    return frame, tmp_path / "shards"


def test_directory_glob_and_file_read_the_same_table(
    sharded: tuple[pd.DataFrame, Path], tmp_path: Path
) -> None:
    frame, folder = sharded
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    pd.testing.assert_frame_equal(read_table(folder), frame)
    pd.testing.assert_frame_equal(read_table(str(folder / "part-*.parquet")), frame)
    pd.testing.assert_frame_equal(read_table(whole), frame)
    assert is_dataset_path(folder) and is_dataset_path(str(folder / "*.parquet"))
    assert not is_dataset_path(whole)


def test_a_dataset_hashes_as_its_shards_in_order(sharded: tuple[pd.DataFrame, Path]) -> None:
    _, folder = sharded
    digest = hash_file(folder)
    assert hash_file(str(folder / "part-*.parquet")) == digest
    assert hash_file(str(folder / "part-00.parquet")) != digest
    frame = make_biased_frame(n=10, seed=9)
    frame.to_parquet(folder / "part-01.parquet", index=False)
    assert hash_file(folder) != digest


@pytest.mark.parametrize("batch_rows", [7, 128, 100_000])
def test_batches_cover_every_row_in_order_within_shards(
    sharded: tuple[pd.DataFrame, Path], batch_rows: int
) -> None:
    frame, folder = sharded
    dataset = open_dataset(folder)
    assert dataset.rows == 1000 and dataset.shard_rows == (300, 1, 450, 249)
    batches = list(dataset.batches(batch_rows=batch_rows))
    assert all(len(b.frame) <= batch_rows for b in batches)
    # A batch's rows: its shard's rows offset..., the dataset's rows start...
    for batch in batches:
        expected = frame.iloc[batch.start : batch.start + len(batch.frame)].reset_index(drop=True)
        pd.testing.assert_frame_equal(batch.frame.reset_index(drop=True), expected)
        assert list(batch.frame.index) == list(range(batch.offset, batch.offset + len(batch.frame)))
    assert [b.start for b in batches] == list(np.cumsum([0] + [len(b.frame) for b in batches])[:-1])
    assert sum(len(b.frame) for b in batches) == 1000


def test_batches_read_only_the_columns_asked(sharded: tuple[pd.DataFrame, Path]) -> None:
    _, folder = sharded
    batch = next(open_dataset(folder).batches(["gender", "approved"], batch_rows=10))
    assert list(batch.frame.columns) == ["gender", "approved"]


def test_encoder_fitted_streamed_equals_encoder_fitted_whole(
    sharded: tuple[pd.DataFrame, Path],
) -> None:
    frame, folder = sharded
    whole = fit_encoder(frame, FEATURES, immutable=("age",))
    for batch_rows in (13, 256, 5000):
        fit = EncoderFit(FEATURES, immutable=("age",))
        for batch in open_dataset(folder).batches(batch_rows=batch_rows):
            fit.update(batch.frame)
        assert fit.finish() == whole


def test_encoder_merge_takes_the_most_decimals_and_the_union_of_categories() -> None:
    frame = pd.DataFrame(
        {
            "price": [1.0, 2.0, 3.5, 2.25, 10.0, 11.0],  # grid 0.25 needs 2 decimals: 0.01
            "small": np.array([0.5, 0.25, 0.125, 1.0, 2.0, 3.0], dtype=np.float32),
            "flag": [True, False, True, True, True, False],
            "colour": ["red", "blue", "red", "green", "blue", "amber"],
            "count": [3, 1, 4, 1, 5, 9],
            "irrational": [np.pi, 1.0, 2.0, 3.0, 4.0, np.e],
        }
    )
    columns = tuple(frame.columns)
    whole = fit_encoder(frame, columns)
    for split in (1, 2, 3, 5):
        fit = EncoderFit(columns)
        fit.update(frame.iloc[:split]).update(frame.iloc[split:])
        assert fit.finish() == whole, split
    numeric = {c.name: c for c in whole.columns}
    assert numeric["price"].grid == pytest.approx(0.01)  # type: ignore[union-attr]
    assert numeric["irrational"].grid is None  # type: ignore[union-attr]
    assert numeric["colour"].categories == ("amber", "blue", "green", "red")  # type: ignore[union-attr]


def test_dataset_errors_name_the_shard(tmp_path: Path) -> None:
    frame = make_biased_frame(n=50, seed=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"holds no \.parquet shards"):
        open_dataset(empty)
    with pytest.raises(InputError, match="no file matches"):
        open_dataset(str(tmp_path / "missing-*.parquet"))
    mixed = tmp_path / "mixed"
    paths = _write_shards(frame, mixed, [20, 30])
    frame.iloc[:5].drop(columns="region").to_parquet(mixed / "part-09.parquet", index=False)
    with pytest.raises(InputError, match=r"part-09\.parquet: columns .* differ"):
        open_dataset(mixed)
    (mixed / "part-09.parquet").unlink()
    retyped = frame.iloc[:5].assign(age=frame["age"].iloc[:5].astype(float))
    retyped.to_parquet(mixed / "part-09.parquet", index=False)
    with pytest.raises(InputError, match=r"part-09\.parquet: column 'age' is double, int64"):
        open_dataset(mixed)
    (mixed / "part-09.parquet").unlink()
    frame.to_csv(mixed / "part-10.csv", index=False)
    with pytest.raises(InputError, match="not a parquet shard"):
        open_dataset(str(mixed / "part-*"))
    paths[1].write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"part-01\.parquet: cannot read as parquet"):
        open_dataset(mixed)
    nothing = tmp_path / "nothing"
    _write_shards(frame.iloc[:0], nothing, [0])
    with pytest.raises(InputError, match="no data rows"):
        open_dataset(nothing)
