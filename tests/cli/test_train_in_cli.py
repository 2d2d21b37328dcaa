"""End-to-end: ``froc train-in``, ``froc predict`` and ``froc audit --model`` through the app.

Exit codes: 0 success; 1 thresholds not met (infeasible, failed on test, degenerate);
2 bad input or a bad model file (one line on stderr); 3 too little data.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import assert_one_line_error
from typer.testing import CliRunner, Result

from froc_cli.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "synthetic.csv"
FAST = ["--target-model", "mlp:16", "--epochs", "20", "--pgd-steps", "3", "--batch-size", "256"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def froc(*args: object) -> Result:
    return CliRunner().invoke(app, [*map(str, args)])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train_in")


@pytest.fixture(scope="module")
def data_csv(workdir: Path) -> Path:
    path = workdir / "data.csv"
    pd.read_csv(SAMPLE).head(900).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(workdir: Path, data_csv: Path) -> tuple[Path, dict[str, Any]]:
    model = workdir / "model.froc"
    result = froc(
        "train-in", data_csv, "--protected", "gender", "--lambda-f", "1", "--lambda-r", "0.5",
        *FAST, "-o", model, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    return model, json.loads(result.stdout)


def test_help_has_examples() -> None:
    for command in ("train-in", "predict"):
        result = froc(command, "--help")
        assert result.exit_code == 0
        assert f"Example: froc {command}" in result.stdout


def test_train_in_json_and_model_file(trained: tuple[Path, dict[str, Any]]) -> None:
    model, payload = trained
    assert model.is_file()
    assert payload["model_file"] == str(model)
    assert payload["verdict"] == "unconstrained" and payload["exit_code"] == 0
    assert payload["lambda_f"] == 1.0 and payload["lambda_r"] == 0.5
    assert payload["mode"] == "given"
    assert payload["label"] == {"column": "approved", "favourable": "1"}
    assert payload["protected"]["group_a0"] == ["female"]
    for part in ("validation", "test"):
        metrics = payload[part]["metrics"]
        for key in (
            "accuracy",
            "majority_floor",
            "bias_score",
            "robustness_fgsm",
            "robustness_pgd",
        ):
            assert 0.0 <= metrics[key] <= 1.0, (part, key)
    rows = payload["rows"]
    assert rows["fit"] + rows["validation"] + rows["test"] == 900
    assert payload["settings"]["versions"]["froc"]


def test_train_in_table_output(data_csv: Path, workdir: Path) -> None:
    result = froc(
        "train-in", data_csv, "--protected", "gender", "--lambda-f", "1", *FAST,
        "--trace", workdir / "trace.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    for needle in ("froc train-in", "S_B bias score", "validation", "test", "lambda_F = 1"):
        assert needle in result.stdout, needle
    assert "model not saved" in result.stdout
    trace = pd.read_csv(workdir / "trace.csv")
    assert len(trace) == 20
    for column in ("loss", "bce", "fairness", "robustness", "grad_angle_deg", "val_bias_score"):
        assert column in trace.columns
    assert trace["val_robustness_pgd"].between(0, 1).all()


def test_predict_appends_columns_in_input_order(
    trained: tuple[Path, dict[str, Any]], data_csv: Path, workdir: Path
) -> None:
    model, _ = trained
    shuffled = pd.read_csv(data_csv).sample(frac=1.0, random_state=1)
    source = workdir / "shuffled.csv"
    shuffled.to_csv(source, index=False)
    for name in ("preds.csv", "preds.parquet"):
        out = workdir / name
        result = froc("predict", model, source, "-o", out)
        assert result.exit_code == 0, result.stderr
        got = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
        original = pd.read_csv(source)
        assert list(got.columns) == [*original.columns, "froc_proba", "froc_decision"]
        pd.testing.assert_frame_equal(got[original.columns], original)
        assert got["froc_proba"].between(0, 1).all()
        assert (got["froc_decision"] == (got["froc_proba"] > 0.5).astype(int)).all()
    # rows of the shuffled file get the same probabilities as in the original order
    direct = workdir / "direct.csv"
    assert froc("predict", model, data_csv, "-o", direct).exit_code == 0
    by_row = pd.read_csv(direct)["froc_proba"].to_numpy()
    got = pd.read_csv(workdir / "preds.csv")["froc_proba"].to_numpy()
    assert got == pytest.approx(by_row[shuffled.index], rel=1e-6)


def test_predict_column_errors(
    trained: tuple[Path, dict[str, Any]], data_csv: Path, workdir: Path
) -> None:
    model, _ = trained
    frame = pd.read_csv(data_csv)
    extra = workdir / "extra.csv"
    frame.assign(customer_id=range(len(frame))).to_csv(extra, index=False)
    assert_one_line_error(
        froc("predict", model, extra, "-o", workdir / "x.csv"), 2, "'customer_id'", "--drop"
    )
    result = froc("predict", model, extra, "-o", workdir / "x.csv", "--drop", "customer_id")
    assert result.exit_code == 0, result.stderr
    assert "customer_id" in pd.read_csv(workdir / "x.csv").columns
    lacking = workdir / "lacking.csv"
    frame.drop(columns=["income"]).to_csv(lacking, index=False)
    assert_one_line_error(froc("predict", model, lacking, "-o", workdir / "y.csv"), 2, "'income'")
    assert not (workdir / "y.csv").exists()
    assert_one_line_error(froc("predict", model, data_csv, "-o", data_csv), 2, "never overwrites")


def test_bad_model_files_exit_2(data_csv: Path, workdir: Path, trained: tuple[Path, Any]) -> None:
    model, _ = trained
    evil = workdir / "evil.froc"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert_one_line_error(froc("predict", evil, data_csv, "-o", workdir / "p.csv"), 2, "pickle")
    tampered = workdir / "tampered.froc"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0x01
    tampered.write_bytes(bytes(data))
    assert_one_line_error(froc("audit", data_csv, "--model", tampered), 2, "checksum")
    truncated = workdir / "truncated.froc"
    truncated.write_bytes(model.read_bytes()[:100])
    assert_one_line_error(froc("predict", truncated, data_csv, "-o", workdir / "p.csv"), 2)


def test_audit_saved_model_uses_the_held_out_split(
    trained: tuple[Path, dict[str, Any]], data_csv: Path, workdir: Path
) -> None:
    model, payload = trained
    # the audit's threat model is its own options: the same PGD as in training here
    result = froc("audit", data_csv, "--model", model, "--pgd-steps", "3", "--json")
    assert result.exit_code == 0, result.stderr
    audit = json.loads(result.stdout)
    assert audit["mode"] == "model"
    assert audit["rows"]["audited"] == payload["rows"]["test"]
    # the same rows, model and threat model: the same scores as train-in reported on test
    for key in ("accuracy", "bias_score", "robustness_fgsm", "robustness_pgd"):
        assert audit["metrics"][key] == pytest.approx(payload["test"]["metrics"][key]), key
    # another table: every row is audited
    other = workdir / "other.csv"
    pd.read_csv(SAMPLE).iloc[2000:2600].to_csv(other, index=False)
    result = froc("audit", other, "--model", model, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"]["audited"] == 600


def test_audit_saved_model_gate(trained: tuple[Path, dict[str, Any]], data_csv: Path) -> None:
    model, payload = trained
    bias = payload["test"]["metrics"]["bias_score"]
    passing = froc("audit", data_csv, "--model", model, "--delta-f", min(1.0, bias + 0.01))
    assert passing.exit_code == 0, passing.stderr
    assert "gate passed" in passing.stdout
    failing = froc("audit", data_csv, "--model", model, "--delta-r", 1.0)
    assert failing.exit_code == 1
    assert "FAIL" in failing.stdout
    assert_one_line_error(
        froc("audit", data_csv, "--model", model, "--label", "age"), 2, "predicts 'approved'"
    )
    assert_one_line_error(
        froc("audit", data_csv, "--model", model, "--predictions", "age"), 2, "--predictions"
    )


def test_infeasible_exits_1_and_writes_no_model_by_default(data_csv: Path, workdir: Path) -> None:
    out = workdir / "infeasible.froc"
    args = [
        "train-in", data_csv, "--protected", "gender", "--delta-f", "0", "--delta-r", "0.99",
        *FAST, "--max-fits", "4", "-o", out,
    ]  # fmt: skip
    result = froc(*args, "--json")
    assert result.exit_code == 1, result.stderr
    payload = json.loads(result.stdout)
    assert payload["verdict"] in ("infeasible", "degenerate")
    assert payload["model_file"] is None and not out.exists()
    assert payload["trials"]  # the closest point is reported
    allowed = froc(*args, "--allow-infeasible", "--quiet")
    assert allowed.exit_code == 1
    assert out.is_file()
    assert "INFEASIBLE" in allowed.stdout or "DEGENERATE" in allowed.stdout
    if payload["verdict"] == "infeasible":
        # the smallest relaxation the search's models meet, in the report and the JSON
        assert "smallest relaxation met on validation" in " ".join(allowed.stdout.split())
        closest = payload["relaxation"]["closest"]
        assert closest["delta_r"] is not None and closest["delta_r"] < 0.99


def test_search_reports_the_chosen_lambdas(data_csv: Path) -> None:
    result = froc(
        "train-in", data_csv, "--protected", "gender", "--delta-f", "0.15", "--delta-r", "0.3",
        *FAST, "--json",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.stderr
    payload = json.loads(result.stdout)
    assert payload["mode"] == "search"
    chosen = payload["trials"][payload["chosen_trial"]]
    assert (chosen["lambda_f"], chosen["lambda_r"]) == (payload["lambda_f"], payload["lambda_r"])
    assert payload["validation_targets"]["bias_score"] <= 0.15


def test_search_kinds_and_the_frontier(data_csv: Path, workdir: Path) -> None:
    """--search picks the search (constrained by default); --frontier draws the reachable
    accuracy around the thresholds and lists it in the JSON."""
    args = ["train-in", data_csv, "--protected", "gender", "--delta-f", "0.15", "--delta-r", "0.3"]
    grid = froc(*args, *FAST, "--search", "grid", "--max-fits", "3", "--json")
    assert grid.exit_code in (0, 1), grid.stderr
    grid_payload = json.loads(grid.stdout)
    assert grid_payload["search"] == "grid" and len(grid_payload["trials"]) <= 3
    plot = workdir / "frontier.png"
    result = froc(*args, *FAST, "--frontier", plot, "--frontier-epochs", "2", "--json")
    assert result.exit_code in (0, 1), result.stderr
    payload = json.loads(result.stdout)
    assert payload["search"] == "constrained" and payload["settings"]["search"]["search"] == (
        "constrained"
    )
    assert payload["frontier_file"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frontier = payload["frontier"]
    assert [p["delta_f"] for p in frontier["bias"]] == [0.075, 0.112, 0.15, 0.225, 0.3, 0.45]
    assert {p["delta_r"] for p in frontier["bias"]} == {0.3}
    assert [p["delta_r"] for p in frontier["robustness"]] == [0.15, 0.2, 0.25, 0.3, 0.325, 0.35]
    assert frontier["epochs_per_point"] == 2


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--protected", "gender", "--lambda-f", "1", "--frontier", "f.png"], ["--frontier"]),
        (["--protected", "gender", "--delta-f", "0.1", "--frontier", "f.txt"], ["f.txt", ".png"]),
        (["--protected", "gender", "--delta-f", "0.1", "--search", "random"], ["--search random"]),
        (["--protected", "gender"], ["--lambda-f", "--delta-f"]),
        (["--protected", "nope", "--lambda-f", "1"], ["'nope'", "--protected"]),
        (["--protected", "gender", "--lambda-f", "-1"], ["--lambda-f -1"]),
        (["--protected", "gender", "--delta-r", "2"], ["--delta-r 2"]),
        (["--protected", "gender", "--lambda-f", "1", "--attack", "cw"], ["--attack cw"]),
        (["--protected", "gender", "--lambda-f", "1", "--trace", "t.txt"], ["--trace", ".csv"]),
        (["--protected", "gender", "--lambda-f", "1", "-o", "."], ["--output", "directory"]),
        (["--protected", "gender", "--lambda-f", "1", "--threads", "0"], ["--threads 0"]),
    ],
)
def test_bad_input_exits_2(data_csv: Path, args: list[str], needles: list[str]) -> None:
    assert_one_line_error(froc("train-in", data_csv, *args, *FAST), 2, *needles)


def test_too_little_data_exits_3(workdir: Path) -> None:
    small = workdir / "small.csv"
    frame = pd.read_csv(SAMPLE).head(400)
    frame = pd.concat([frame[frame.gender == "male"], frame[frame.gender == "female"].head(12)])
    frame.to_csv(small, index=False)
    result = froc("train-in", small, "--protected", "gender", "--lambda-f", "1", *FAST)
    assert result.exit_code == 3, result.stderr
