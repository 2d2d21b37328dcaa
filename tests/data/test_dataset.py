"""Tests of froc_cli.data._dataset: column roles, label/group encoding and input validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FrameFactory

from froc_cli.core import DataSpec, InputError, InsufficientDataError
from froc_cli.data import check_group_sizes, matches_value, prepare_data, value_texts

SOURCE = "data.csv"


def _error(
    frame: pd.DataFrame, spec: DataSpec, *needles: str, exclude: tuple[str, ...] = ()
) -> str:
    with pytest.raises(InputError) as excinfo:
        prepare_data(frame, spec, source=SOURCE, exclude=exclude)
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}: ")
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# --------------------------------------------------------------------------------------------
# roles
# --------------------------------------------------------------------------------------------


def test_defaults_label_last_and_lowest_rate_group(biased_frame: FrameFactory) -> None:
    frame = biased_frame(300, seed=1)
    prepared = prepare_data(frame, DataSpec(protected="gender"), source=SOURCE)
    assert prepared.label_column == "approved"
    assert prepared.positive_value == "1"
    np.testing.assert_array_equal(prepared.y, frame["approved"].to_numpy(dtype=np.float32))
    assert prepared.y.dtype == np.float32 and prepared.a.dtype == np.float32
    # the planted bias makes women the lower-rate group: a=0
    rates = frame.groupby("gender")["approved"].mean()
    assert rates["female"] < rates["male"]
    assert prepared.protected_values == ("female",)
    assert prepared.protected_group_defaulted
    np.testing.assert_array_equal(prepared.a, (frame["gender"] != "female").to_numpy(np.float32))
    assert prepared.describe_protected_group() == "gender in {female}"
    # the protected column is never a feature, nor the label
    assert prepared.feature_columns == ("age", "income", "education", "region")
    assert prepared.n_rows == 300 and prepared.dropped_rows == 0
    assert list(prepared.frame.index) == list(range(300))


def test_named_group_several_values_and_immutables(biased_frame: FrameFactory) -> None:
    frame = biased_frame(200, seed=2)
    spec = DataSpec(
        protected="region",
        protected_group=("north", "east"),
        drop=("income",),
        immutable=("age", "gender"),
    )
    prepared = prepare_data(frame, spec, source=SOURCE)
    assert prepared.protected_values == ("north", "east")
    assert not prepared.protected_group_defaulted
    expected = (~frame["region"].isin(["north", "east"])).to_numpy(np.float32)
    np.testing.assert_array_equal(prepared.a, expected)
    assert prepared.feature_columns == ("age", "education", "gender")
    assert prepared.immutable_columns == ("age", "gender")


def test_text_label_with_positive(biased_frame: FrameFactory) -> None:
    frame = biased_frame(100, seed=3)
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    prepared = prepare_data(frame, DataSpec(protected="gender", positive="yes"), source=SOURCE)
    assert prepared.positive_value == "yes"
    np.testing.assert_array_equal(prepared.y, (frame["approved"] == "yes").to_numpy(np.float32))


def test_multiclass_label_with_positive_is_one_vs_rest(biased_frame: FrameFactory) -> None:
    frame = biased_frame(100, seed=4)
    prepared = prepare_data(
        frame, DataSpec(protected="gender", label="education", positive="master"), source=SOURCE
    )
    assert prepared.label_column == "education"
    assert "approved" in prepared.feature_columns
    np.testing.assert_array_equal(prepared.y, (frame["education"] == "master").to_numpy(np.float32))


def test_boolean_and_float_labels_are_inferred() -> None:
    frame = pd.DataFrame(
        {"x": range(6), "g": list("ababab"), "y": [True, False, True, True, False, False]}
    )
    prepared = prepare_data(frame, DataSpec(protected="g"), source=SOURCE)
    assert prepared.positive_value == "True"
    np.testing.assert_array_equal(prepared.y, [1, 0, 1, 1, 0, 0])
    frame["y"] = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    prepared = prepare_data(frame, DataSpec(protected="g"), source=SOURCE)
    assert prepared.positive_value == "1"
    np.testing.assert_array_equal(prepared.y, [1, 0, 1, 1, 0, 0])


def test_numeric_protected_column_and_matching() -> None:
    frame = pd.DataFrame({"x": range(8), "sex": [0, 1] * 4, "y": [1, 1, 0, 1, 0, 1, 1, 0]})
    prepared = prepare_data(frame, DataSpec(protected="sex", protected_group=("0",)), source=SOURCE)
    np.testing.assert_array_equal(prepared.a, [0, 1] * 4)


def test_matches_value_and_value_texts() -> None:
    floats = pd.Series([1.0, 0.0, 2.5])
    np.testing.assert_array_equal(matches_value(floats, "1"), [True, False, False])
    np.testing.assert_array_equal(matches_value(floats, "2.5"), [False, False, True])
    bools = pd.Series([True, False])
    np.testing.assert_array_equal(matches_value(bools, "true"), [True, False])
    np.testing.assert_array_equal(matches_value(bools, "0"), [False, True])
    texts = pd.Series(["a", "b", "a"])
    np.testing.assert_array_equal(matches_value(texts, "a"), [True, False, True])
    assert value_texts(pd.Series([1.0, 0.0, 1.0])) == ["0", "1"]
    assert value_texts(pd.Series(["b", "a"])) == ["a", "b"]


# --------------------------------------------------------------------------------------------
# missing values and numeric text
# --------------------------------------------------------------------------------------------


def test_missing_values_name_column_and_rows(biased_frame: FrameFactory) -> None:
    frame = biased_frame(50, seed=5)
    frame.loc[[3, 17], "income"] = np.nan
    message = _error(frame, DataSpec(protected="gender"), "'income'", "3, 17", "--dropna")
    assert "2 missing" in message


def test_missing_values_in_a_dropped_column_are_ignored(biased_frame: FrameFactory) -> None:
    frame = biased_frame(50, seed=5)
    frame.loc[[3, 17], "income"] = np.nan
    prepared = prepare_data(frame, DataSpec(protected="gender", drop=("income",)), source=SOURCE)
    assert prepared.n_rows == 50


def test_dropna_keeps_file_row_positions(biased_frame: FrameFactory) -> None:
    frame = biased_frame(50, seed=5)
    frame.loc[[3, 17], "income"] = np.nan
    frame.loc[20, "gender"] = None
    prepared = prepare_data(frame, DataSpec(protected="gender", dropna=True), source=SOURCE)
    assert prepared.dropped_rows == 3
    assert prepared.n_rows == 47
    assert {3, 17, 20}.isdisjoint(prepared.frame.index)
    assert len(prepared.y) == len(prepared.a) == 47


def test_missing_label_or_protected_value_is_reported(biased_frame: FrameFactory) -> None:
    frame = biased_frame(30, seed=6)
    frame["gender"] = frame["gender"].astype(object)
    frame.loc[4, "gender"] = None
    _error(frame, DataSpec(protected="gender"), "'gender'", "row 4")


def test_non_numeric_text_in_a_numeric_column(biased_frame: FrameFactory) -> None:
    frame = biased_frame(40, seed=7)
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "forty"
    _error(frame, DataSpec(protected="gender"), "'forty'", "'age'", "row 5")


def test_mostly_text_column_is_categorical(biased_frame: FrameFactory) -> None:
    frame = biased_frame(40, seed=7)
    frame["code"] = ["A1", "B2", "7", "C3"] * 10  # 25% numbers: a code, not a number
    prepared = prepare_data(frame, DataSpec(protected="gender", label="approved"), source=SOURCE)
    assert "code" in prepared.feature_columns


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unknown_columns(biased_frame: FrameFactory) -> None:
    frame = biased_frame(20)
    _error(frame, DataSpec(protected="sex"), "'sex'", "--protected", "'gender'")
    _error(frame, DataSpec(protected="gender", label="outcome"), "'outcome'", "--label")
    _error(frame, DataSpec(protected="gender", drop=("zip",)), "'zip'", "--drop")
    _error(frame, DataSpec(protected="gender", immutable=("zip",)), "'zip'", "--immutable")
    _error(frame, DataSpec(protected="gender"), "'pred'", "--predictions", exclude=("pred",))


def test_label_with_one_value(biased_frame: FrameFactory) -> None:
    frame = biased_frame(20)
    frame["approved"] = 1
    message = _error(frame, DataSpec(protected="gender"), "'approved'", "single value '1'")
    assert "np." not in message


def test_label_with_more_than_two_values_needs_positive(biased_frame: FrameFactory) -> None:
    frame = biased_frame(40)
    _error(
        frame,
        DataSpec(protected="gender", label="education"),
        "'education'",
        "'bachelor', 'highschool', 'master'",
        "--positive",
    )
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    _error(frame, DataSpec(protected="gender"), "'approved'", "'no', 'yes'", "--positive")


def test_positive_value_that_does_not_occur(biased_frame: FrameFactory) -> None:
    _error(
        biased_frame(20),
        DataSpec(protected="gender", positive="approved"),
        "--positive 'approved'",
        "'0', '1'",
    )


def test_protected_with_one_group(biased_frame: FrameFactory) -> None:
    frame = biased_frame(20)
    frame["gender"] = "female"
    _error(frame, DataSpec(protected="gender"), "'gender'", "single group 'female'")


def test_protected_group_value_that_does_not_occur(biased_frame: FrameFactory) -> None:
    frame = biased_frame(20)
    _error(
        frame,
        DataSpec(protected="gender", protected_group=("nonbinary",)),
        "'nonbinary'",
        "'gender'",
        "'female', 'male'",
    )
    _error(
        frame,
        DataSpec(protected="gender", protected_group=("female", "male")),
        "covers every row",
    )


def test_conflicting_roles(biased_frame: FrameFactory) -> None:
    frame = biased_frame(20)
    _error(frame, DataSpec(protected="gender", label="gender"), "'gender'", "both")
    _error(frame, DataSpec(protected="gender", drop=("gender",)), "protected column 'gender'")
    _error(frame, DataSpec(protected="gender", drop=("approved",)), "label column 'approved'")
    frame["pred"] = frame["approved"]
    # the default label (last column) is the predictions column: say so, not "bad label"
    _error(
        frame, DataSpec(protected="gender"), "'pred'", "--predictions", "--label", exclude=("pred",)
    )
    _error(
        frame.drop(columns=["age", "income", "education", "region"]),
        DataSpec(protected="gender", label="approved", drop=("pred",)),
        "no feature columns",
    )


def test_group_sizes(biased_frame: FrameFactory) -> None:
    prepared = prepare_data(biased_frame(100, seed=8), DataSpec(protected="gender"), source=SOURCE)
    n_protected = int((prepared.a == 0).sum())
    n_rest = int((prepared.a == 1).sum())
    check_group_sizes(prepared, prepared.a, min(n_protected, n_rest), "in the file")
    few_protected = np.array([0] * 5 + [1] * 10, dtype=np.float32)
    with pytest.raises(InsufficientDataError) as excinfo:
        check_group_sizes(prepared, few_protected, 6, "in the test split")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "protected group gender in {female} has 5 rows in the test split" in message
    assert "--min-group-size 6" in message
    with pytest.raises(InsufficientDataError) as excinfo:
        check_group_sizes(prepared, 1 - few_protected, 6, "in the test split")
    assert "(gender not in {female}) has 5 rows" in str(excinfo.value)
    # an empty group is never enough, even with --min-group-size 0
    with pytest.raises(InsufficientDataError, match="0 rows"):
        check_group_sizes(prepared, np.ones(10, dtype=np.float32), 0, "in the test split")


@pytest.mark.parametrize(
    ("cells", "dtype"),
    [
        ([2**53 + 1, 3, 5, 7] * 5, "int64"),  # exact: 2^53 + 1 reads as 2^53 once a float
        ([2**64, 3, 5, 7] * 5, object),  # Python ints past 64 bits
        (["9223372036854775813", "-3", "5", "7"] * 5, "str"),  # text pandas could not hold
        ([1e308, 3.5, 5.0, 7.0] * 5, "float64"),
    ],
)
def test_numbers_past_2_to_53_are_refused_however_they_were_read(
    biased_frame: FrameFactory, cells: list[object], dtype: object
) -> None:
    frame = biased_frame(20)
    frame.insert(0, "amount", pd.Series(cells, dtype=dtype))
    with pytest.raises(InputError, match=r"column 'amount' has 5 value\(s\) beyond \+-2\^53"):
        prepare_data(frame, DataSpec(protected="gender"), source="t.csv")
    # 2^53 itself, and zero-padded codes kept as text, are fine.
    frame["amount"] = pd.Series([2**53, 3, 5, 7] * 5, dtype="int64")
    assert "amount" in prepare_data(frame, DataSpec(protected="gender"), source="t").feature_columns
