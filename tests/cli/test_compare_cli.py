"""End-to-end tests of ``froc compare`` through the typer app.

Bad input: one line on stderr naming the file, column or value, exit 2, nothing on stdout.
Too little data: exit 3. Exit 0 when some method meets both constraints on every seed, 1 when
none does. ``--json``: exactly one JSON object on stdout. ``--report`` and ``--plot`` files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error, make_biased_frame
from typer.testing import CliRunner, Result

from froc_cli.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "synthetic.csv"
FAST = ["--target-model", "mlp:16", "--epochs", "60", "--adv-epochs", "3", "--lambdas", "0,1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def compare(*args: object) -> Result:
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["compare", "--help"])
    assert result.exit_code == 0
    assert "Example: froc compare" in result.stdout
    assert "--delta-f" in result.stdout and "--plot" in result.stdout


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--delta-f", "1.5"], ["--delta-f 1.5", "[0, 1]"]),
        (["--lambdas", "0,x"], ["--lambdas", "'x' is not a number"]),
        (["--methods", "plain,nope"], ["--methods 'nope'", "unknown method"]),
        (["--methods", ","], ["--methods"]),
        (["--repeats", "0"], ["--repeats 0"]),
        (["--plot", "out.gif"], ["out.gif", ".png"]),
        (["--target-model", "cnn"], ["'cnn'"]),
        (["--protected", "sex"], ["synthetic.csv", "'sex'", "--protected"]),
        (["--label", "outcome"], ["'outcome'", "--label"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra: list[str], needles: list[str]) -> None:
    args: list[object] = [SAMPLE, "--protected", "gender", "--delta-f", "0.1", "--delta-r", "0.5"]
    assert_one_line_error(compare(*args, *extra, "--quiet"), 2, *needles)


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = compare(tmp_path / "nope.csv", "--protected", "g", "--delta-f", "0.1", "--delta-r", 0)
    assert_one_line_error(result, 2, "nope.csv", "no such file")


def test_too_little_data_is_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    make_biased_frame(120, seed=0).to_csv(path, index=False)
    result = compare(path, "--protected", "gender", "--delta-f", "0.1", "--delta-r", "0.5")
    assert_one_line_error(result, 3, "small.csv", "too little data")


def _json(result: Result) -> dict[str, Any]:
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def test_json_rows_and_exit_0_when_a_method_meets_both(tmp_path: Path) -> None:
    result = compare(
        SAMPLE,
        "--protected",
        "gender",
        "--delta-f",
        "1",
        "--delta-r",
        "0",
        "--methods",
        "plain,fbr-rw",
        *FAST,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    payload = _json(result)
    assert payload["exit_code"] == 0 and payload["any_method_meets_both"] is True
    assert [m["method"] for m in payload["methods"]] == ["plain", "fbr-rw"]
    row = payload["repeats"][0]["rows"][0]
    assert set(row["metrics"]) >= {
        "accuracy",
        "bias_score",
        "robustness_fgsm",
        "robustness_pgd",
        "transfer_fgsm",
        "transfer_pgd",
        "majority_floor",
    }
    assert row["meets_both"] is True
    assert len(payload["repeats"][0]["grid"]) == 2  # fbr-rw at lambda 0 and 1
    assert "[1/2] seed 0 (1/1): setup" in result.stderr  # progress names seed and method
    assert "[2/2] seed 0 (1/1): fbr-rw" in result.stderr


def test_table_report_plot_and_exit_1_when_no_method_meets_both(tmp_path: Path) -> None:
    report, plot = tmp_path / "out" / "c.md", tmp_path / "out" / "c.png"
    result = compare(
        SAMPLE,
        "--protected",
        "gender",
        "--delta-f",
        "0",
        "--delta-r",
        "1",
        "--methods",
        "plain,rbf-dir",
        *FAST,
        "--report",
        report,
        "--plot",
        plot,
        "--quiet",
    )
    assert result.exit_code == 1, result.stderr
    assert result.stderr == ""
    assert "froc compare:" in result.stdout and "RbF-DIR" in result.stdout
    assert "no method meets both constraints (exit 1)" in result.stdout
    text = report.read_text(encoding="utf-8")
    assert "| RbF-DIR |" in text and "![accuracy over the (S_R, S_B) plane](c.png)" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_a_failing_method_keeps_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from froc_cli.workflows._compare import METHODS, MethodSpec

    def broken(ctx: object) -> Any:
        raise ValueError("cannot run here")

    monkeypatch.setitem(METHODS, "froc-pre", MethodSpec("froc-pre", "FRoC-PRE", "x", broken))
    result = compare(
        SAMPLE,
        "--protected",
        "gender",
        "--delta-f",
        "1",
        "--delta-r",
        "0",
        "--methods",
        "plain,froc-pre",
        *FAST,
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    assert "FRoC-PRE failed (seed 0): ValueError: cannot run here" in result.stdout
