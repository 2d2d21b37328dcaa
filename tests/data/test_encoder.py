"""Tests of froc_cli.data._encoder: a reversible min-max / one-hot encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FrameFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from froc_cli.core import InputError
from froc_cli.data import CategoricalColumn, NumericColumn, TabularEncoder, fit_encoder

FEATURES = ("age", "income", "education", "region")


# --------------------------------------------------------------------------------------------
# round trip (property)
# --------------------------------------------------------------------------------------------


@st.composite
def mixed_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Frames with an int, a float-with-2-decimals and a string column (1 to 25 rows).

    Ranges stay where float32 encoding can resolve one grid step (range / grid < ~1e7).
    """
    n = draw(st.integers(1, 25))
    ints = draw(st.lists(st.integers(-1_000_000, 1_000_000), min_size=n, max_size=n))
    cents = draw(st.lists(st.integers(-1_000_000, 1_000_000), min_size=n, max_size=n))
    words = draw(
        st.lists(
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
            min_size=n,
            max_size=n,
        )
    )
    return pd.DataFrame(
        {
            "count": pd.Series(ints, dtype="int64"),
            "price": pd.Series([c / 100 for c in cents], dtype="float64"),
            "word": pd.Series(words, dtype="str"),
        }
    )


@settings(max_examples=150, deadline=None)
@given(frame=mixed_frames())
def test_decode_encode_round_trip_is_exact(frame: pd.DataFrame) -> None:
    encoder = fit_encoder(frame, tuple(frame.columns))
    encoded = encoder.encode(frame)
    assert encoded.dtype == np.float32
    assert encoded.shape == (len(frame), encoder.n_features)
    assert np.all((encoded >= 0) & (encoded <= 1))
    decoded = encoder.decode(encoded)
    pd.testing.assert_frame_equal(decoded, frame, check_exact=True)
    assert list(decoded.dtypes) == list(frame.dtypes)


@settings(max_examples=50, deadline=None)
@given(frame=mixed_frames())
def test_round_trip_survives_json(frame: pd.DataFrame) -> None:
    encoder = fit_encoder(frame, tuple(frame.columns), immutable=("word",))
    rebuilt = TabularEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert rebuilt == encoder
    pd.testing.assert_frame_equal(rebuilt.decode(encoder.encode(frame)), frame, check_exact=True)


def test_round_trip_of_the_sample_data(sample_csv: object) -> None:
    frame = pd.read_csv(str(sample_csv))
    columns = tuple(frame.columns)
    encoder = fit_encoder(frame, columns)
    pd.testing.assert_frame_equal(encoder.decode(encoder.encode(frame)), frame, check_exact=True)


def test_boolean_and_float_grid_columns() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "whole": [1.0, 3.0, 2.0],  # floats on the integer grid
            "fine": [0.125, 0.5, 0.875],  # three decimals
        }
    )
    encoder = fit_encoder(frame, tuple(frame.columns))
    flag, whole, fine = encoder.columns
    assert isinstance(flag, CategoricalColumn) and flag.categories == (False, True)
    assert isinstance(whole, NumericColumn) and whole.grid == 1.0
    assert isinstance(fine, NumericColumn) and fine.grid == pytest.approx(0.001)
    pd.testing.assert_frame_equal(encoder.decode(encoder.encode(frame)), frame, check_exact=True)


# --------------------------------------------------------------------------------------------
# layout
# --------------------------------------------------------------------------------------------


def test_layout_masks_grid_and_blocks(biased_frame: FrameFactory) -> None:
    frame = biased_frame(120, seed=3)
    encoder = fit_encoder(frame, FEATURES, immutable=("age", "region"))
    assert encoder.feature_names() == [
        "age",
        "income",
        "education=bachelor",
        "education=highschool",
        "education=master",
        "region=east",
        "region=north",
        "region=south",
        "region=west",
    ]
    assert encoder.n_features == 9
    np.testing.assert_array_equal(
        encoder.mutable_mask(), [False, True, True, True, True, False, False, False, False]
    )
    np.testing.assert_array_equal(encoder.numeric_features(), [True, True] + [False] * 7)
    np.testing.assert_array_equal(encoder.categorical_blocks(), [-1, -1, 0, 0, 0, 1, 1, 1, 1])
    age, income = encoder.columns[0], encoder.columns[1]
    assert isinstance(age, NumericColumn) and isinstance(income, NumericColumn)
    grid = encoder.numeric_grid()
    assert grid[0] == pytest.approx(1.0 / (age.maximum - age.minimum))
    assert grid[1] == pytest.approx(0.01 / (income.maximum - income.minimum))
    assert np.all(grid[2:] == 0)
    encoded = encoder.encode(frame)
    # min-max scaling: the minimum maps to 0 and the maximum to 1
    assert encoded[:, 0].min() == 0.0 and encoded[:, 0].max() == 1.0
    # exactly one 1 per one-hot block
    np.testing.assert_array_equal(encoded[:, 2:5].sum(axis=1), 1.0)
    np.testing.assert_array_equal(encoded[:, 5:9].sum(axis=1), 1.0)


def test_constant_numeric_column_encodes_to_zero() -> None:
    frame = pd.DataFrame({"c": [7, 7, 7]})
    encoder = fit_encoder(frame, ("c",))
    np.testing.assert_array_equal(encoder.encode(frame), np.zeros((3, 1), dtype=np.float32))
    pd.testing.assert_frame_equal(encoder.decode(encoder.encode(frame)), frame)


# --------------------------------------------------------------------------------------------
# unseen values
# --------------------------------------------------------------------------------------------


def test_unseen_category_encodes_as_an_empty_block() -> None:
    train = pd.DataFrame({"colour": ["red", "green", "red"]})
    encoder = fit_encoder(train, ("colour",))
    encoded = encoder.encode(pd.DataFrame({"colour": ["blue", "red"]}))
    np.testing.assert_array_equal(encoded, [[0, 0], [0, 1]])
    # decoding an empty block still gives a real category
    assert set(encoder.decode(encoded)["colour"]) <= {"green", "red"}


def test_out_of_range_numerics_scale_beyond_bounds_and_decode_clipped() -> None:
    train = pd.DataFrame({"age": [20, 30, 40], "score": [0.5, 1.0, 1.5]})
    encoder = fit_encoder(train, ("age", "score"))
    test = pd.DataFrame({"age": [10, 60], "score": [2.5, -0.5]})
    encoded = encoder.encode(test)
    np.testing.assert_allclose(encoded, [[-0.5, 2.0], [2.0, -1.0]])
    decoded = encoder.decode(encoded)
    assert decoded["age"].tolist() == [20, 40]
    assert decoded["score"].tolist() == [1.5, 0.5]
    assert decoded["age"].dtype == np.int64


def test_decode_snaps_to_the_grid() -> None:
    train = pd.DataFrame({"age": [20, 30, 40], "price": [1.25, 2.5, 3.75]})
    encoder = fit_encoder(train, ("age", "price"))
    decoded = encoder.decode(np.array([[0.52, 0.3337]]))
    assert decoded["age"].tolist() == [30]  # 20 + 0.52 * 20 = 30.4 -> 30
    assert decoded["price"].tolist() == [2.08]  # 1.25 + 0.3337 * 2.5 = 2.084 -> 2.08


def test_encode_errors() -> None:
    encoder = fit_encoder(pd.DataFrame({"age": [1, 2], "c": ["x", "y"]}), ("age", "c"))
    with pytest.raises(InputError, match="'age'"):
        encoder.encode(pd.DataFrame({"c": ["x"]}))
    with pytest.raises(InputError, match="'age'"):
        encoder.encode(pd.DataFrame({"age": ["old"], "c": ["x"]}))
    with pytest.raises(InputError, match="invalid encoder"):
        TabularEncoder.from_dict({"columns": [{"kind": "Nope"}], "immutable": []})
    with pytest.raises(InputError, match="invalid encoder"):
        TabularEncoder.from_dict({"immutable": []})
