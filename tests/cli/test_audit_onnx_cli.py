"""``froc audit DATA --model MODEL.onnx``: the gate, the report and JSON for models from other
stacks, and one-line errors (exit 2) for bad models and mismatched tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, make_frame
from onnx_models import sklearn_onnx
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression
from typer.testing import CliRunner

from froc_cli.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--epochs", "30", "--queries", "40", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx_cli")
    frame = make_frame(400, seed=8)
    table = folder / "table.csv"
    frame.to_csv(table, index=False)
    _, data, _ = sklearn_onnx(frame, LogisticRegression(max_iter=500))
    model = folder / "pipeline.onnx"
    model.write_bytes(data)
    numbers = frame[["age", "income"]].astype(np.float32)
    regressor = LinearRegression().fit(numbers, frame["approved"])
    regression = folder / "regressor.onnx"
    regression.write_bytes(to_onnx(regressor, numbers.to_numpy()[:1]).SerializeToString())
    corrupt = folder / "corrupt.onnx"
    corrupt.write_bytes(data[: len(data) // 3])
    lacking = folder / "lacking.csv"
    frame.drop(columns=["region"]).to_csv(lacking, index=False)
    return {
        "table": table, "model": model, "regressor": regression, "corrupt": corrupt,
        "lacking": lacking,
    }  # fmt: skip


def _run(*args: str | Path) -> object:
    return CliRunner().invoke(app, ["audit", *map(str, args)])


def test_gate_json_and_report(files: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "audit.md"
    result = _run(
        files["table"], "--protected", "gender", "--model", files["model"], "--json",
        "--delta-f", "0.5", "--delta-r", "0.1", "--report", report, *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    payload = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert payload["mode"] == "onnx" and payload["exit_code"] == 0
    assert payload["rows"]["audited"] == 400
    assert [a["attack"] for a in payload["attacks"]] == ["transfer", "query"]
    assert payload["attacks"][1]["queries_per_row_budget"] == 40
    assert payload["threat_model"]["attack_space"] == "valid"
    assert payload["metrics"]["robustness"] <= payload["metrics"]["robustness_query"]
    assert payload["gate"]["passed"] is True
    text = report.read_text()
    assert "| attack | queries per row (budget) |" in text and "| query | 40 |" in text
    assert "S_R robustness, query attack" in text and "Majority-class floor" in text


def test_a_failed_gate_exits_1(files: dict[str, Path]) -> None:
    result = _run(
        files["table"], "--protected", "gender", "--model", files["model"], "--delta-r", "0.99",
        *FAST,
    )  # fmt: skip
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "gate FAILED" in result.stdout  # type: ignore[attr-defined]
    assert "query" in result.stdout  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("model", "table", "extra", "needles"),
    [
        ("corrupt", "table", (), ("corrupt.onnx", "not an ONNX model")),
        ("regressor", "table", ("--features", "age,income"), ("a regressor, not a classifier",)),
        ("model", "lacking", (), ("lacking.csv", "no column for input(s) 'region'", "its inputs")),
        ("model", "table", ("--attack-space", "continuous"), ("valid space",)),
        ("model", "table", ("--threshold", "1.5"), ("--threshold 1.5",)),
        ("model", "table", ("--queries", "-1"), ("--queries -1",)),
        ("model", "table", ("--features", "age"), ("--features", "not one 2-D float input")),
        ("model", "table", ("--certify",), ("--certify",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], model: str, table: str, extra: tuple[str, ...],
    needles: tuple[str, ...],
) -> None:  # fmt: skip
    result = _run(files[table], "--protected", "gender", "--model", files[model], *FAST, *extra)
    assert_one_line_error(result, 2, *needles)  # type: ignore[arg-type]


def test_onnx_options_need_an_onnx_model(files: dict[str, Path]) -> None:
    result = _run(files["table"], "--protected", "gender", "--queries", "10")
    assert_one_line_error(result, 2, "--queries applies to an ONNX model")  # type: ignore[arg-type]
    missing = _run(files["table"], "--model", files["model"])
    assert_one_line_error(missing, 2, "--protected")  # type: ignore[arg-type]


def test_same_seed_same_figures(files: dict[str, Path]) -> None:
    args = (files["table"], "--protected", "gender", "--model", files["model"], "--json", *FAST)
    runs = [json.loads(_run(*args).stdout)["metrics"] for _ in range(2)]  # type: ignore[attr-defined]
    assert runs[0] == runs[1]


def test_text_columns_read_as_strings_from_parquet(files: dict[str, Path], tmp_path: Path) -> None:
    parquet = tmp_path / "table.parquet"
    pd.read_csv(files["table"]).to_parquet(parquet)
    result = _run(parquet, "--protected", "gender", "--model", files["model"], "--json", *FAST)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
