"""Tests of froc_cli.workflows._stream: a saved model audited and applied over a dataset of
parquet shards, streamed.

The streamed audit must give the figures of the in-memory audit of the concatenated table
(:func:`audit_saved_model`, itself checked against the pipeline run by hand in
test_predict.py): every metric and group figure equal, whatever the shards and the batch
size; its Poisson bootstrap intervals depend on the rows' positions only (a directory, a glob
and one file give the same intervals, any batch size too) and agree with the in-memory
bootstrap to its own noise. Predictions are written one shard per input shard, equal to
``predict_table`` on each shard, and all or nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame

from froc_cli.core import DataSpec, InputError, ThreatModel, open_dataset
from froc_cli.data import fit_encoder
from froc_cli.models import ModelArtifact, build_model
from froc_cli.workflows import (
    AuditConfig,
    audit_saved_dataset,
    audit_saved_model,
    predict_dataset,
    predict_table,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEATURES = ("age", "income", "education")
THREAT = ThreatModel(eps=0.1, pgd_steps=3)


def _artifact(protected: str = "gender", values: tuple[str, ...] = ("female",)) -> ModelArtifact:
    # Fitted on another table than the one audited (no fingerprint, no training rows).
    encoder = fit_encoder(make_frame(400, seed=11), FEATURES)
    return ModelArtifact(
        model=build_model("mlp:8", encoder.n_features, seed=3),
        encoder=encoder,
        model_spec="mlp:8",
        data_spec=DataSpec(protected=protected, label="approved", min_group_size=5),
        label_column="approved",
        positive_value="1",
        protected_column=protected,
        protected_values=values,
        info={},
    )


def _shards(frame: pd.DataFrame, folder: Path, sizes: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for index, size in enumerate(sizes):
        frame.iloc[start : start + size].to_parquet(folder / f"part-{index}.parquet", index=False)
        start += size
    return folder


def _config(protected: str, group: tuple[str, ...] | None, **changes: object) -> AuditConfig:
    spec = DataSpec(protected=protected, protected_group=group, label="approved", min_group_size=5)
    return replace(AuditConfig(data=spec, threat=THREAT), **changes)  # type: ignore[arg-type]


def _same(left: dict[str, float], right: dict[str, float]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key] == pytest.approx(right[key], abs=1e-12, nan_ok=True), key


@pytest.fixture
def table(tmp_path: Path) -> tuple[pd.DataFrame, Path, Path]:
    frame = make_frame(1500, seed=5)
    whole = tmp_path / "whole" / "all.parquet"
    whole.parent.mkdir()
    frame.to_parquet(whole, index=False)
    return frame, _shards(frame, tmp_path / "shards", [500, 1, 700, 299]), whole


def test_streamed_audit_equals_the_in_memory_audit_of_the_concatenated_table(
    table: tuple[pd.DataFrame, Path, Path],
) -> None:
    frame, folder, whole = table
    artifact, config = _artifact(), _config("gender", ("female",), ci=True, n_resamples=200)
    memory = audit_saved_model(frame, artifact, config, source="all", model_name="m")
    results = [
        audit_saved_dataset(open_dataset(path), artifact, config, model_name="m", batch_rows=rows)
        for path, rows in (
            (folder, 256),
            (str(folder / "part-*.parquet"), 10_000),
            (str(whole.parent / "*.parquet"), 333),
        )
    ]
    for result in results:
        _same(result.metrics, memory.metrics)
        assert result.evaluation.groups == memory.evaluation.groups
        assert result.rows["audited"] == 1500 and result.protected == memory.protected
        # Poisson bootstrap keyed on row positions: the same intervals however stored/batched.
        assert result.evaluation.intervals == results[0].evaluation.intervals
    for name, (low, high) in results[0].evaluation.intervals.items():
        mem_low, mem_high = memory.evaluation.intervals[name]
        assert low <= results[0].metrics[name] <= high, name
        # Two bootstraps of the same statistic: ends within a third of the interval's width.
        width = max(mem_high - mem_low, 1e-9)
        assert abs(low - mem_low) <= width / 3 + 0.01 and abs(high - mem_high) <= width / 3 + 0.01


def test_streamed_audit_of_many_groups_leaves_out_the_too_small_ones(tmp_path: Path) -> None:
    frame = make_frame(1200, seed=6)
    frame.loc[[3, 700, 1100], "region"] = "island"  # 3 rows, in three shards
    folder = _shards(frame, tmp_path / "shards", [400, 400, 400])
    artifact = _artifact("region", ())
    config = _config("region", None, threat=replace(THREAT, attacks=("fgsm",)))
    memory = audit_saved_model(frame, artifact, config, source="all", model_name="m")
    streamed = audit_saved_dataset(open_dataset(folder), artifact, config, model_name="m")
    assert streamed.too_small == memory.too_small == {"island": 3}
    assert streamed.protected == memory.protected
    _same(streamed.metrics, memory.metrics)
    assert streamed.evaluation.groups == memory.evaluation.groups


def test_default_group_is_settled_on_the_whole_dataset(tmp_path: Path) -> None:
    frame = make_frame(900, seed=8)
    # The first shard alone would pick the other group (all its females approved).
    frame = pd.concat(
        [frame.assign(approved=np.where(frame["gender"] == "female", 1, 0)).iloc[:60], frame]
    ).reset_index(drop=True)
    folder = _shards(frame, tmp_path / "shards", [60, 900])
    artifact = _artifact("gender", ())
    config = _config("gender", None)
    memory = audit_saved_model(frame, artifact, config, source="all", model_name="m")
    streamed = audit_saved_dataset(open_dataset(folder), artifact, config, model_name="m")
    assert streamed.protected_values == memory.protected_values == ("female",)
    assert streamed.protected_group_defaulted
    _same(streamed.metrics, memory.metrics)


def test_streamed_audit_drops_rows_and_names_the_shard_and_row(tmp_path: Path) -> None:
    frame = make_frame(600, seed=9).astype({"income": float})
    frame.loc[[10, 450], "income"] = np.nan
    folder = _shards(frame, tmp_path / "shards", [300, 300])
    artifact = _artifact()
    with pytest.raises(InputError, match=r"part-0\.parquet: column 'income' has 1 missing .* 10"):
        audit_saved_dataset(
            open_dataset(folder), artifact, _config("gender", ("female",)), model_name="m"
        )
    config = _config("gender", ("female",), data=replace(_config("g", None).data, dropna=True))
    config = replace(config, data=replace(config.data, protected="gender"))
    memory = audit_saved_model(frame, artifact, config, source="all", model_name="m")
    streamed = audit_saved_dataset(open_dataset(folder), artifact, config, model_name="m")
    assert streamed.rows["dropped"] == 2 and streamed.rows["audited"] == 598
    _same(streamed.metrics, memory.metrics)


def test_predict_dataset_writes_one_shard_per_input_shard(
    table: tuple[pd.DataFrame, Path, Path], tmp_path: Path
) -> None:
    frame, folder, _ = table
    artifact = _artifact()
    out = tmp_path / "out"
    written = predict_dataset(
        open_dataset(folder), artifact, out, batch_rows=128, passthrough=("region",)
    )
    assert [p.name for p in written.outputs] == [f"part-{i}.parquet" for i in range(4)]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written.outputs]
    got = pd.concat([pd.read_parquet(p) for p in written.outputs], ignore_index=True)
    expected = predict_table(frame, artifact, source="all", passthrough=("region",)).frame
    pd.testing.assert_frame_equal(got, expected)
    assert written.rows == 1500 and written.favourable == int(expected["froc_decision"].sum())


def test_predict_dataset_is_all_or_nothing(tmp_path: Path) -> None:
    frame = make_frame(300, seed=2).astype({"income": str})  # numbers as text: parsed
    frame.loc[250, "income"] = "lots"  # in the last shard
    folder = _shards(frame, tmp_path / "shards", [100, 100, 100])
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"part-2\.parquet: non-numeric value 'lots'.*row 50"):
        predict_dataset(open_dataset(folder), _artifact(), out, passthrough=("region",))
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(InputError, match="would overwrite input shard"):
        predict_dataset(open_dataset(folder), _artifact(), folder)
    with pytest.raises(InputError, match="expected a folder"):
        predict_dataset(open_dataset(folder), _artifact(), tmp_path / "x.parquet")


def test_streamed_audit_needs_both_labels(tmp_path: Path) -> None:
    frame = make_frame(200, seed=1).assign(approved=0)
    folder = _shards(frame, tmp_path / "shards", [100, 100])
    with pytest.raises(InputError, match="never holds the model's favourable value '1'"):
        audit_saved_dataset(
            open_dataset(folder), _artifact(), _config("gender", ("female",)), model_name="m"
        )


def test_streamed_audit_names_a_missing_label_or_protected_column(tmp_path: Path) -> None:
    frame = make_frame(200, seed=1)
    folder = _shards(frame.drop(columns="approved"), tmp_path / "nolabel", [200])
    with pytest.raises(InputError, match="unknown column 'approved' given to --label"):
        audit_saved_dataset(
            open_dataset(folder), _artifact(), _config("gender", ("female",)), model_name="m"
        )
    folder = _shards(frame.drop(columns="gender"), tmp_path / "nogroup", [200])
    with pytest.raises(InputError, match="unknown column 'gender' given to --protected"):
        audit_saved_dataset(
            open_dataset(folder), _artifact(), _config("gender", ("female",)), model_name="m"
        )
