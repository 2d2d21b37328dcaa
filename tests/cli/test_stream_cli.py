"""``froc audit DIR --model m.froc`` and ``froc predict m.froc DIR -o OUT_DIR`` on a dataset
of parquet shards, through the typer app: the figures of the concatenated file, every row
counted, outputs one shard per input shard, bad input as one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_line_error, make_frame
from typer.testing import CliRunner, Result

from froc_cli.cli import app
from froc_cli.core import DataSpec
from froc_cli.data import fit_encoder
from froc_cli.models import build_model, save_model

FEATURES = ("age", "income", "education", "region")


def run(*args: str) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stream")
    encoder = fit_encoder(make_frame(500, seed=21), FEATURES)
    model = save_model(
        root / "m.froc",
        build_model("mlp:8", encoder.n_features, seed=2),
        encoder,
        model_spec="mlp:8",
        data_spec=DataSpec(protected="gender", label="approved"),
        label_column="approved",
        positive_value="1",
        protected_column="gender",
        protected_values=("female",),
        info={},
    )
    frame = make_frame(1300, seed=22)
    folder = root / "shards"
    folder.mkdir()
    for index, start in enumerate((0, 400, 800)):
        part = frame.iloc[start : start + 500 if index == 2 else start + 400]
        part.to_parquet(folder / f"part-{index}.parquet", index=False)
    whole = root / "all.parquet"
    frame.to_parquet(whole, index=False)
    return {"model": model, "shards": folder, "whole": whole, "root": root}


def test_audit_of_a_directory_and_a_glob_gives_the_figures_of_the_file(
    files: dict[str, Path],
) -> None:
    common = ("--model", files["model"], "--json", "--pgd-steps", "3")
    outputs = [
        run("audit", data, *common)
        for data in (files["whole"], files["shards"], str(files["shards"] / "part-*.parquet"))
    ]
    for result in outputs:
        assert result.exit_code == 0, result.stderr
    payloads = [json.loads(result.stdout) for result in outputs]
    whole, streamed, globbed = payloads
    assert streamed["rows"]["audited"] == globbed["rows"]["audited"] == 1300
    for payload in (streamed, globbed):
        assert payload["metrics"].keys() == whole["metrics"].keys()
        for key, value in whole["metrics"].items():
            assert payload["metrics"][key] == pytest.approx(value, abs=1e-12), key
        assert payload["groups"] == whole["groups"]
        assert payload["settings"]["streamed"]["shards"] == 3


def test_predict_over_a_directory_writes_a_folder_of_shards(files: dict[str, Path]) -> None:
    out = files["root"] / "predicted"
    result = run("predict", files["model"], files["shards"], "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 1300 and len(summary["shards"]) == 3
    single = files["root"] / "single.parquet"
    assert run("predict", files["model"], files["whole"], "-o", single).exit_code == 0
    streamed = pd.concat(
        [pd.read_parquet(out / f"part-{i}.parquet") for i in range(3)], ignore_index=True
    )
    pd.testing.assert_frame_equal(streamed, pd.read_parquet(single))
    assert summary["favourable_decisions"] == int(streamed["froc_decision"].sum())


def test_dataset_input_errors_are_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    assert_one_line_error(
        run("predict", files["model"], files["shards"], "-o", files["shards"]),
        2,
        "would overwrite input shard",
    )
    assert_one_line_error(
        run("predict", files["model"], files["shards"], "-o", tmp_path / "out.csv"),
        2,
        "expected a folder",
    )
    assert_one_line_error(
        run("audit", tmp_path / "none-*.parquet", "--model", files["model"]),
        2,
        "no file matches this pattern",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        run("audit", empty, "--protected", "gender"), 2, "directory holds no .parquet shards"
    )
