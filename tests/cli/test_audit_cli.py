"""End-to-end tests of ``froc audit`` through the typer app (and once through a real process).

Bad input: one line on stderr naming the file, column or value, exit 2, no traceback. Too little
data: exit 3. The gate: exit 1 / 0. ``--json``: exactly one JSON object on stdout. Same seed,
same data, same device: identical metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_one_line_error, make_biased_frame
from typer.testing import CliRunner, Result

from froc_cli.cli import app

# A logistic model trained long enough to beat the majority floor (20 epochs at lr 0.01 is
# nearly constant: a degenerate model, which no gate passes).
FAST = ["--target-model", "lr", "--epochs", "100", "--lr", "0.05"]
METRICS = {
    "accuracy",
    "majority_floor",
    "bias_score",
    "disparate_impact",
    "equal_opportunity_difference",
    "rows",
    "rarer_decision_share",
    "robustness_fgsm",
    "bias_score_fgsm",
    "robustness_pgd",
    "bias_score_pgd",
    "robustness",
    "robustness_balanced",
    "robustness_retention",
    "bias_score_attacked",
}
FAIRNESS_METRICS = {
    "accuracy",
    "majority_floor",
    "bias_score",
    "disparate_impact",
    "equal_opportunity_difference",
    "rows",
    "rarer_decision_share",
}


def audit(*args: object) -> Result:
    return CliRunner().invoke(app, ["audit", *map(str, args)])


def json_of(result: Result) -> dict[str, Any]:
    payload = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert isinstance(payload, dict)
    return payload


# --------------------------------------------------------------------------------------------
# bad input: exit 2, one line
# --------------------------------------------------------------------------------------------

Case = Callable[[Path], tuple[list[object], list[str]]]


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _frame() -> pd.DataFrame:
    return make_biased_frame(200, seed=0)


def _missing(tmp: Path) -> tuple[list[object], list[str]]:
    return [tmp / "missing.csv", "--protected", "gender"], ["missing.csv", "no such file"]


def _empty(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "empty.csv").write_bytes(b"")
    return [tmp / "empty.csv", "--protected", "gender"], ["empty.csv", "empty"]


def _header_only(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "header.csv").write_text("a,b,c\n", encoding="utf-8")
    return [tmp / "header.csv", "--protected", "b"], ["header.csv", "no data rows"]


def _unknown_protected(tmp: Path) -> tuple[list[object], list[str]]:
    return [_csv(tmp, _frame()), "--protected", "sex"], ["data.csv", "'sex'", "--protected"]


def _unknown_label(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--label", "outcome"], ["data.csv", "'outcome'"]


def _label_one_value(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["approved"] = 1
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["data.csv", "'approved'", "single value '1'"]


def _label_three_values(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return (
        [path, "--protected", "gender", "--label", "education"],
        ["data.csv", "'education'", "'master'", "--positive"],
    )


def _text_label(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["'approved'", "'no', 'yes'", "--positive"]


def _positive_absent(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--positive", "2"], ["--positive '2'", "'approved'"]


def _one_group(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["gender"] = "female"
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["data.csv", "'gender'", "single group 'female'"]


def _nan(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame.loc[[3, 17], "income"] = np.nan
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["data.csv", "'income'", "3, 17", "--dropna"]


def _nan_in_protected(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame.loc[8, "gender"] = None
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["'gender'", "row 8"]


def _numeric_text(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "forty"
    path = _csv(tmp, frame)
    return [path, "--protected", "gender"], ["data.csv", "'forty'", "'age'", "row 5"]


def _duplicate_csv(tmp: Path) -> tuple[list[object], list[str]]:
    path = tmp / "dup.csv"
    text = _frame().to_csv(index=False).replace("region", "age", 1)
    path.write_text(text, encoding="utf-8")
    return [path, "--protected", "gender"], ["dup.csv", "duplicate", "'age'"]


def _duplicate_parquet(tmp: Path) -> tuple[list[object], list[str]]:
    path = tmp / "dup.parquet"
    frame = _frame()
    table = pa.Table.from_arrays(
        [pa.array(frame[c]) for c in frame.columns],
        names=["age", "income", "education", "income", "gender", "approved"],
    )
    pq.write_table(table, path)
    return [path, "--protected", "gender"], ["dup.parquet", "duplicate", "'income'"]


def _group_absent(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return (
        [path, "--protected", "gender", "--protected-group", "nonbinary"],
        ["data.csv", "'nonbinary'", "'gender'"],
    )


def _predictions_unknown(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--predictions", "score"], ["'score'", "--predictions"]


def _predictions_not_labels(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["decision"] = np.where(frame["approved"] == 1, "grant", "deny")
    path = _csv(tmp, frame)
    return (
        [path, "--protected", "gender", "--label", "approved", "--predictions", "decision"],
        ["'decision'", "'deny'", "'approved'"],
    )


def _predictions_is_default_label(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame["decision"] = frame["approved"]
    path = _csv(tmp, frame)
    return (
        [path, "--protected", "gender", "--predictions", "decision"],
        ["'decision'", "--predictions", "--label"],
    )


def _predictions_with_delta_r(tmp: Path) -> tuple[list[object], list[str]]:
    frame = _frame()
    frame.insert(0, "decision", frame["approved"])
    path = _csv(tmp, frame)
    return (
        [path, "--protected", "gender", "--predictions", "decision", "--delta-r", "0.5"],
        ["--delta-r", "--predictions"],
    )


def _report_is_a_directory(tmp: Path) -> tuple[list[object], list[str]]:
    (tmp / "out.md").mkdir()
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--report", tmp / "out.md"], ["out.md", "directory"]


def _bad_model(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--target-model", "rnn"], ["'rnn'"]


def _bad_eps(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--eps", "2"], ["--eps 2"]


def _bad_suffix(tmp: Path) -> tuple[list[object], list[str]]:
    path = tmp / "data.xlsx"
    path.write_bytes(b"PK")
    return [path, "--protected", "gender"], ["data.xlsx", "unknown table format"]


def _zero_threads(tmp: Path) -> tuple[list[object], list[str]]:
    path = _csv(tmp, _frame())
    return [path, "--protected", "gender", "--threads", "0"], ["--threads 0", "at least 1"]


BAD_INPUT: dict[str, Case] = {
    "missing file": _missing,
    "empty file": _empty,
    "header only": _header_only,
    "unknown protected column": _unknown_protected,
    "unknown label column": _unknown_label,
    "label with one value": _label_one_value,
    "label with three values": _label_three_values,
    "text label without --positive": _text_label,
    "--positive absent": _positive_absent,
    "protected with one group": _one_group,
    "NaN in a feature": _nan,
    "NaN in the protected column": _nan_in_protected,
    "text in a numeric column": _numeric_text,
    "duplicate CSV header": _duplicate_csv,
    "duplicate parquet columns": _duplicate_parquet,
    "protected group absent": _group_absent,
    "unknown predictions column": _predictions_unknown,
    "predictions not label values": _predictions_not_labels,
    "predictions column is the default label": _predictions_is_default_label,
    "--delta-r with --predictions": _predictions_with_delta_r,
    "--report is a directory": _report_is_a_directory,
    "unknown model": _bad_model,
    "eps out of range": _bad_eps,
    "unknown suffix": _bad_suffix,
    "--threads 0": _zero_threads,
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    args, needles = BAD_INPUT[case](tmp_path)
    assert_one_line_error(audit(*FAST, *args), 2, *needles)  # the case may override FAST


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    frame = make_biased_frame(100, seed=0)
    frame.loc[4, "income"] = np.nan
    path = _csv(tmp_path, frame)
    done = subprocess.run(
        [sys.executable, "-m", "froc_cli", "audit", str(path), "--protected", "gender"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0] and "'income'" in lines[0] and "row 4" in lines[0]


def test_dropna_opts_in(tmp_path: Path) -> None:
    frame = make_biased_frame(200, seed=0)
    frame.loc[[3, 17], "income"] = np.nan
    frame.insert(0, "decision", frame["approved"])
    path = _csv(tmp_path, frame)
    result = audit(path, "--protected", "gender", "--predictions", "decision", "--dropna", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json_of(result)
    assert payload["rows"] == {"total": 198, "audited": 198, "dropped": 2}


# --------------------------------------------------------------------------------------------
# too little data: exit 3
# --------------------------------------------------------------------------------------------


def test_small_group_in_the_test_split_is_exit_3(sample_csv: Path) -> None:
    result = audit(sample_csv, "--protected", "gender", "--min-group-size", "1000", *FAST)
    assert_one_line_error(result, 3, "synthetic.csv", "gender in {female}", "1000")


def test_small_group_in_a_predictions_file_is_exit_3(tmp_path: Path) -> None:
    frame = make_biased_frame(60, seed=2)
    frame.insert(0, "decision", frame["approved"])
    result = audit(_csv(tmp_path, frame), "--protected", "gender", "--predictions", "decision")
    assert_one_line_error(result, 3, "data.csv", "--min-group-size 30")


# --------------------------------------------------------------------------------------------
# a trained audit: JSON, gate, report, determinism
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def passing_json(sample_csv: Path) -> dict[str, Any]:
    args = ("--protected", "gender", "--json", "--delta-f", "1", "--delta-r", "0", *FAST)
    result = audit(sample_csv, *args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # --json: no progress lines either
    return json_of(result)


def test_json_names_label_and_default_group(passing_json: dict[str, Any]) -> None:
    assert passing_json["mode"] == "trained"
    assert passing_json["label"] == {"column": "approved", "favourable": "1"}
    assert passing_json["protected"] == {
        "column": "gender",
        "group_a0": ["female"],  # the lower favourable (approval) rate
        "group_chosen_by_default": True,
    }
    groups = passing_json["groups"]
    assert groups["protected"]["base_rate"] < groups["unprotected"]["base_rate"]
    assert passing_json["rows"]["total"] == 4000
    assert (passing_json["rows"]["train"], passing_json["rows"]["test"]) == (2800, 1200)
    assert groups["protected"]["rows"] + groups["unprotected"]["rows"] == 1200


def test_json_metrics_and_gate(passing_json: dict[str, Any]) -> None:
    metrics = passing_json["metrics"]
    assert set(metrics) == METRICS
    for name in METRICS - {"equal_opportunity_difference", "disparate_impact", "rows"}:
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["rows"] == passing_json["rows"]["test"] == 1200
    assert metrics["robustness_pgd"] <= metrics["accuracy"]
    assert metrics["robustness_fgsm"] <= metrics["accuracy"]
    # A row is robust only when no attack broke it: the gated figure is below each attack's.
    assert metrics["robustness"] <= min(metrics["robustness_pgd"], metrics["robustness_fgsm"])
    assert passing_json["gate"]["passed"] is True
    checks = {c["metric"]: c for c in passing_json["gate"]["checks"]}
    assert list(checks) == ["bias_score", "robustness", "rarer_decision_share", "accuracy"]
    # The degenerate-model rule: at least 5% of rows get the rarer decision, and accuracy
    # beats the floor by 2 binomial standard errors of the floor over the audited rows.
    floor = metrics["majority_floor"]
    assert checks["rarer_decision_share"]["threshold"] == pytest.approx(0.05)
    assert checks["accuracy"]["threshold"] == pytest.approx(
        floor + 2 * (floor * (1 - floor) / 1200) ** 0.5
    )
    assert passing_json["exit_code"] == 0
    assert passing_json["threat_model"]["eps"] == 0.1
    assert passing_json["settings"]["seed"] == 0


def test_failing_gate_is_exit_1_with_report(
    sample_csv: Path, tmp_path: Path, passing_json: dict[str, Any]
) -> None:
    report = tmp_path / "reports" / "audit.md"
    result = audit(sample_csv, "--protected", "gender", "--delta-f", "0", "--report", report, *FAST)
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.output
    out = result.stdout
    assert "gate FAILED" in out
    assert "label: approved" in out
    assert "gender in {female} (lowest favourable rate, chosen by default)" in out
    assert result.stderr.startswith("froc: ")  # progress on stderr, results on stdout
    text = report.read_text(encoding="utf-8")
    assert text.startswith("## froc audit:")
    assert "**Gate FAILED**" in text
    assert "Label: `approved`" in text
    assert "lowest favourable rate, chosen by default" in text
    # same seed as the JSON run: the same S_B, to the printed digit
    assert f"{passing_json['metrics']['bias_score']:.4f}" in text
    assert [p.name for p in report.parent.iterdir()] == ["audit.md"]


def test_same_seed_same_metrics_other_seed_differs(
    sample_csv: Path, passing_json: dict[str, Any]
) -> None:
    args = ("--protected", "gender", "--json", "--delta-f", "1", "--delta-r", "0", *FAST)
    again = json_of(audit(sample_csv, *args))
    for key in ("metrics", "groups", "rows", "intervals", "gate", "threat_model"):
        assert again[key] == passing_json[key], key
    other = json_of(audit(sample_csv, *args, "--seed", "1"))
    assert other["settings"]["seed"] == 1
    assert other["metrics"] != passing_json["metrics"]


def test_threads_are_reported_and_restored(sample_csv: Path) -> None:
    import torch

    before = torch.get_num_threads()
    payload = json_of(audit(sample_csv, "--protected", "gender", "--json", "--threads", "2", *FAST))
    assert payload["settings"]["threads"] == 2
    assert torch.get_num_threads() == before
    table = audit(sample_csv, "--protected", "gender", "--threads", "2", *FAST)
    assert "seed 0, device cpu, 2 torch thread(s);" in table.stdout


# --------------------------------------------------------------------------------------------
# --predictions: fairness only, every row
# --------------------------------------------------------------------------------------------


@pytest.fixture
def predictions_csv(sample_csv: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = pd.read_csv(sample_csv)
    rng = np.random.default_rng(12345)
    frame["score"] = np.round(rng.random(len(frame)) * (0.6 + 0.4 * (frame["gender"] == "male")), 2)
    frame.loc[0, "score"] = 1.0  # a score of exactly 1 does not make the column labels
    frame["decision"] = (frame["income"] > 60).astype(int)
    frame = frame[[*frame.columns.drop("approved"), "approved"]]  # keep the label last
    return _csv(tmp_path, frame, "predictions.csv"), frame


def _rate_gap(decisions: pd.Series, gender: pd.Series) -> float:
    rates = decisions.groupby(gender).mean()
    return abs(float(rates["female"] - rates["male"]))


def test_predictions_column_of_labels(predictions_csv: tuple[Path, pd.DataFrame]) -> None:
    path, frame = predictions_csv
    result = audit(path, "--protected", "gender", "--predictions", "decision", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json_of(result)
    assert payload["mode"] == "predictions"
    assert payload["threat_model"] is None
    assert payload["rows"] == {"total": 4000, "audited": 4000, "dropped": 0}
    assert set(payload["metrics"]) == FAIRNESS_METRICS
    expected = _rate_gap(frame["decision"], frame["gender"])
    assert payload["metrics"]["bias_score"] == pytest.approx(expected, abs=1e-12)
    accuracy = float((frame["decision"] == frame["approved"]).mean())
    assert payload["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_predictions_column_of_probabilities(predictions_csv: tuple[Path, pd.DataFrame]) -> None:
    path, frame = predictions_csv
    result = audit(path, "--protected", "gender", "--predictions", "score", "--json")
    assert result.exit_code == 0, result.stderr
    expected = _rate_gap((frame["score"] >= 0.5).astype(int), frame["gender"])
    assert json_of(result)["metrics"]["bias_score"] == pytest.approx(expected, abs=1e-12)


def test_predictions_gate_and_named_group(predictions_csv: tuple[Path, pd.DataFrame]) -> None:
    path, _ = predictions_csv
    args = (path, "--protected", "gender", "--predictions", "decision")
    failing = audit(*args, "--protected-group", "male", "--delta-f", "0", "--json")
    assert failing.exit_code == 1
    payload = json_of(failing)
    assert payload["gate"]["passed"] is False and payload["exit_code"] == 1
    assert payload["protected"]["group_a0"] == ["male"]
    assert payload["protected"]["group_chosen_by_default"] is False
    human = audit(*args, "--delta-f", "1")
    assert human.exit_code == 0
    assert "label: approved" in human.stdout
    assert "gate passed" in human.stdout
    assert "none (fairness only)" in human.stdout
