"""Tests of froc_cli.workflows._predict beyond the save/load round trip of tests/test_artifact.py:
``predict_table``'s columns and errors, ``unseen_categories``, ``default_audit_spec`` and
``audit_saved_model`` (checked against the encode-and-attack pipeline run by hand).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_biased_frame

from froc_cli.attacks import FeatureSpace
from froc_cli.core import (
    DataSpec,
    InputError,
    InsufficientDataError,
    ThreatModel,
    TrainConfig,
    frame_fingerprint,
)
from froc_cli.data import fit_encoder, split_indices
from froc_cli.metrics import attack_decisions, evaluate_decisions
from froc_cli.models import ModelArtifact, build_model
from froc_cli.workflows import (
    DECISION_COLUMN,
    PROBABILITY_COLUMN,
    AuditConfig,
    audit_saved_model,
    default_audit_spec,
    predict_table,
    unseen_categories,
)

FEATURES = ("age", "income", "education", "region")
SPEC = DataSpec(protected="gender", label="approved", immutable=("age",), min_group_size=5)
THREAT = ThreatModel(eps=0.1, pgd_steps=4)


def _artifact(frame: pd.DataFrame, **info: object) -> ModelArtifact:
    encoder = fit_encoder(frame, FEATURES, immutable=("age",))
    return ModelArtifact(
        model=build_model("mlp:8", encoder.n_features, seed=7),
        encoder=encoder,
        model_spec="mlp:8",
        data_spec=SPEC,
        label_column="approved",
        positive_value="1",
        protected_column="gender",
        protected_values=("female",),
        info=dict(info),
    )


def _expected_proba(artifact: ModelArtifact, features: pd.DataFrame) -> np.ndarray:
    x = torch.as_tensor(artifact.encoder.encode(features))
    with torch.no_grad():
        return torch.sigmoid(artifact.model(x)).numpy().astype(np.float64)


def _same_metrics(left: dict[str, float], right: dict[str, float]) -> bool:
    return left.keys() == right.keys() and all(
        left[k] == right[k] or (math.isnan(left[k]) and math.isnan(right[k])) for k in left
    )


# --------------------------------------------------------------------------------------------
# predict_table
# --------------------------------------------------------------------------------------------


def test_predict_table_appends_probability_and_decision() -> None:
    frame = make_biased_frame(80, seed=1)
    artifact = _artifact(frame)
    features = frame[list(FEATURES)]
    got = predict_table(features, artifact, source="in.csv")  # label and protected optional
    proba = _expected_proba(artifact, features)
    assert list(got.frame.columns) == [*FEATURES, PROBABILITY_COLUMN, DECISION_COLUMN]
    assert np.array_equal(got.frame[PROBABILITY_COLUMN].to_numpy(), proba)
    assert np.array_equal(got.frame[DECISION_COLUMN].to_numpy(), (proba > 0.5).astype(np.int64))
    assert got.frame[DECISION_COLUMN].dtype == np.int64 and got.unseen == {}
    assert list(features.columns) == list(FEATURES)  # the input is not modified
    pd.testing.assert_frame_equal(got.frame[list(FEATURES)], features)


def test_predict_table_keeps_row_order_and_carries_other_columns() -> None:
    frame = make_biased_frame(60, seed=2)
    artifact = _artifact(frame)
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled["note"] = [f"n{i}" for i in range(60)]
    got = predict_table(shuffled, artifact, source="in.csv", passthrough=("note",))
    assert got.frame.index.equals(shuffled.index)
    assert got.frame["note"].tolist() == shuffled["note"].tolist()
    assert got.frame["approved"].tolist() == shuffled["approved"].tolist()
    expected = _expected_proba(artifact, shuffled[list(FEATURES)])
    assert np.array_equal(got.frame[PROBABILITY_COLUMN].to_numpy(), expected)


def test_numbers_written_as_text_predict_like_numbers() -> None:
    frame = make_biased_frame(40, seed=3)
    artifact = _artifact(frame)
    as_text = frame.astype({"age": str, "income": str})
    numeric = predict_table(frame, artifact, source="a.csv").frame[PROBABILITY_COLUMN]
    texted = predict_table(as_text, artifact, source="b.csv").frame[PROBABILITY_COLUMN]
    assert np.array_equal(numeric.to_numpy(), texted.to_numpy())


def test_unseen_categories_are_counted_and_encode_as_no_category() -> None:
    frame = make_biased_frame(50, seed=4)
    artifact = _artifact(frame)
    other = frame.copy()
    other.loc[[0, 1, 2], "region"] = "mars"
    other.loc[[3], "education"] = "phd"
    other.loc[[4], "region"] = "venus"
    assert unseen_categories(other, artifact.encoder) == {"education": 1, "region": 4}
    assert unseen_categories(frame, artifact.encoder) == {}
    got = predict_table(other, artifact, source="o.csv")
    assert got.unseen == {"education": 1, "region": 4}
    encoded = artifact.encoder.encode(other)
    region = next(c for c in artifact.encoder.columns if c.name == "region")
    assert not encoded[[0, 1, 2, 4], region.start : region.start + region.width].any()
    assert np.array_equal(
        got.frame[PROBABILITY_COLUMN].to_numpy(), _expected_proba(artifact, other)
    )


@pytest.mark.parametrize(
    ("edit", "passthrough", "expected"),
    [
        (
            lambda f: f.drop(columns=["income", "region"]),
            (),
            "in.csv: lacks column(s) 'income', 'region' that model m.froc reads",
        ),
        (
            lambda f: f.assign(extra=1),
            (),
            "in.csv: column(s) 'extra' unknown to model m.froc (trained on 'age', 'income', "
            "'education', 'region'); pass --drop extra to carry such columns through unchanged",
        ),
        (
            lambda f: f.assign(**{PROBABILITY_COLUMN: 0.5}),
            (PROBABILITY_COLUMN,),
            "in.csv: already has a column 'froc_proba'; rename it before predicting",
        ),
        (
            lambda f: f.assign(age=f["age"].where(f.index != 5)),
            (),
            "in.csv: column 'age' has 1 missing value(s) at row 5; the model needs a value",
        ),
        (
            lambda f: f.astype({"income": object}).assign(
                income=lambda g: g["income"].where(g.index != 7, "n/a")
            ),
            (),
            "in.csv: non-numeric value 'n/a' in numeric column 'income' (row 7); expected a number",
        ),
    ],
    ids=["lacking", "unknown", "output-exists", "missing", "non-numeric"],
)
def test_predict_table_errors(edit: object, passthrough: tuple[str, ...], expected: str) -> None:
    frame = make_biased_frame(30, seed=5)
    artifact = _artifact(frame)
    bad = edit(frame)  # type: ignore[operator]
    with pytest.raises(InputError) as excinfo:
        predict_table(bad, artifact, source="in.csv", model_name="m.froc", passthrough=passthrough)
    message = str(excinfo.value)
    assert message.startswith(expected), message


def test_dropped_training_columns_are_accepted() -> None:
    frame = make_biased_frame(30, seed=6)
    artifact = _artifact(frame)
    artifact.data_spec = replace(SPEC, drop=("id",))
    got = predict_table(frame.assign(id=range(30)), artifact, source="in.csv")
    assert got.frame["id"].tolist() == list(range(30))


# --------------------------------------------------------------------------------------------
# default_audit_spec
# --------------------------------------------------------------------------------------------


def test_default_audit_spec_replaces_only_given_fields() -> None:
    artifact = _artifact(make_biased_frame(20, seed=0))
    assert default_audit_spec(artifact) == SPEC
    assert default_audit_spec(artifact, protected=None, dropna=None) == SPEC
    changed = default_audit_spec(artifact, protected_group=("male",), min_group_size=50)
    assert changed == replace(SPEC, protected_group=("male",), min_group_size=50)
    assert default_audit_spec(artifact, dropna=False).dropna is False  # False is a value


# --------------------------------------------------------------------------------------------
# audit_saved_model
# --------------------------------------------------------------------------------------------


def _config(**data: object) -> AuditConfig:
    return AuditConfig(
        data=replace(SPEC, **data),  # type: ignore[arg-type]
        threat=THREAT,
        train=TrainConfig(device="cpu", seed=3),
    )


def test_audit_of_another_table_covers_every_row_and_equals_the_pipeline() -> None:
    artifact = _artifact(make_biased_frame(120, seed=10))
    other = make_biased_frame(150, seed=11)
    other["note"] = "x"  # columns the model does not read are ignored
    lines: list[str] = []
    result = audit_saved_model(
        other, artifact, _config(), source="other.csv", model_name="m.froc", progress=lines.append
    )
    a = (other["gender"] == "male").to_numpy(np.float32)
    x = torch.as_tensor(artifact.encoder.encode(other))
    y = torch.as_tensor(other["approved"].to_numpy(np.float32))
    space = FeatureSpace.from_encoder(artifact.encoder)
    expected = evaluate_decisions(attack_decisions(artifact.model, x, y, a, space, THREAT))
    assert _same_metrics(result.metrics, expected.metrics)
    assert result.mode == "model" and result.threat == THREAT
    assert result.rows == {"total": 150, "audited": 150, "dropped": 0, "features": 9}
    assert result.settings["scope"] == "every row"
    assert lines == [
        "other.csv: auditing model m.froc on every row (150 rows), protected group "
        "gender in {female}"
    ]
    assert result.model.startswith("saved model m.froc: mlp:8 (lambda_F=0, lambda_R=0)")


def test_audit_of_the_training_table_covers_its_test_split() -> None:
    frame = make_biased_frame(200, seed=12)
    split = {"fingerprint": frame_fingerprint(frame), "test_size": 0.3, "seed": 4}
    artifact = _artifact(frame, split=split)
    result = audit_saved_model(frame, artifact, _config(), source="t.csv", model_name="m")
    y = frame["approved"].to_numpy(np.float32)
    a = (frame["gender"] == "male").to_numpy(np.float32)
    _, test = split_indices(y, a, test_size=0.3, seed=4)
    rows = frame.iloc[test]
    expected = evaluate_decisions(
        attack_decisions(
            artifact.model,
            torch.as_tensor(artifact.encoder.encode(rows)),
            torch.as_tensor(y[test]),
            a[test],
            FeatureSpace.from_encoder(artifact.encoder),
            THREAT,
        )
    )
    assert result.rows["audited"] == len(test) == 60
    assert _same_metrics(result.metrics, expected.metrics)
    assert result.settings["scope"].startswith("its held-out test split")
    # one changed cell: another table, every row
    changed = frame.copy()
    changed.loc[0, "income"] += 1.0
    again = audit_saved_model(changed, artifact, _config(), source="t.csv", model_name="m")
    assert again.rows["audited"] == 200


def test_audit_immutables_come_from_the_audit_spec() -> None:
    """--immutable at audit time freezes those columns for the attacker (age by default)."""
    frame = make_biased_frame(100, seed=13)
    artifact = _artifact(frame)
    frozen = audit_saved_model(
        frame, artifact, _config(immutable=FEATURES), source="f", model_name="m"
    )
    assert frozen.metrics["robustness_pgd"] == frozen.metrics["accuracy"]  # nothing can move
    assert frozen.metrics["bias_score_pgd"] == frozen.metrics["bias_score"]


@pytest.mark.parametrize(
    ("data", "frame_edit", "expected"),
    [
        ({"label": "income"}, None, "--label 'income': model m predicts 'approved'"),
        ({"positive": "0"}, None, "--positive '0': model m predicts approved='1'"),
        ({"immutable": ("gender",)}, None, "--immutable 'gender': not columns model m reads"),
        ({}, ["region"], "f.csv: lacks column(s) 'region' that model m reads"),
    ],
)
def test_audit_saved_model_input_errors(
    data: dict[str, object], frame_edit: list[str] | None, expected: str
) -> None:
    frame = make_biased_frame(60, seed=14)
    artifact = _artifact(frame)
    if frame_edit:
        frame = frame.drop(columns=frame_edit)
    with pytest.raises(InputError) as excinfo:
        audit_saved_model(frame, artifact, _config(**data), source="f.csv", model_name="m")
    assert str(excinfo.value) == expected


def test_audit_saved_model_small_group_is_insufficient_data() -> None:
    frame = make_biased_frame(60, seed=15)
    with pytest.raises(InsufficientDataError, match="in the audited rows"):
        audit_saved_model(
            frame, _artifact(frame), _config(min_group_size=1000), source="f", model_name="m"
        )
