"""Behaviour pinned before the package was layered (issue "One house with floors").

The sha256 of a seeded ``froc preprocess`` output on ``sample_data/synthetic.csv`` and the audit
JSON metrics on both bundled samples were recorded on the code before the move into
sub-packages; moving code must not change a byte or a figure.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from froc_cli.cli import app

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"

PREPROCESS_ARGS = [
    "--protected", "gender", "--delta-f", "0.05", "--delta-r", "0.6",
    "--surrogate", "mlp:16", "--target-model", "mlp:8", "--epochs", "60",
    "--warm-epochs", "5", "--target-epochs", "200", "--rounds", "4", "--step", "0.05",
    "--pgd-steps", "3", "--no-compare-input", "--allow-partial", "--seed", "0",
    "--threads", "1",
]  # fmt: skip
PREPROCESS_SHA256 = "d093ee0b34ab08491372ae7a8e78dccd58d840039b8dcf3755d57a8e09a503e9"

AUDIT_CASES = {
    "synthetic": (
        ["synthetic.csv", "--protected", "gender"],
        {
            "accuracy": 0.7883333333333333,
            "majority_floor": 0.6641666666666667,
            "bias_score": 0.22221381299561876,
            "disparate_impact": 0.40166198713884615,
            "equal_opportunity_difference": -0.23292660717537794,
            "robustness_fgsm": 0.2125,
            "bias_score_fgsm": 0.04936216016212991,
            "robustness_pgd": 0.19916666666666666,
            "bias_score_pgd": 0.06377557456040772,
        },
    ),
    "adult_sample": (
        ["adult_sample.csv", "--label", "income", "--positive", ">50K", "--protected", "sex",
         "--protected-group", "Female"],
        {
            "accuracy": 0.8193333333333334,
            "majority_floor": 0.7653333333333333,
            "bias_score": 0.12921802384320064,
            "disparate_impact": 0.4737491770901909,
            "equal_opportunity_difference": 0.06127946127946127,
            "robustness_fgsm": 0.04933333333333333,
            "bias_score_fgsm": 0.1603152151949888,
            "robustness_pgd": 0.03866666666666667,
            "bias_score_pgd": 0.15962820771873099,
        },
    ),
}  # fmt: skip


def test_seeded_preprocess_output_keeps_its_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        app, ["preprocess", str(SAMPLES / "synthetic.csv"), "-o", str(out), *PREPROCESS_ARGS]
    )
    assert result.exit_code in (0, 1), result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == PREPROCESS_SHA256


@pytest.mark.parametrize("case", sorted(AUDIT_CASES))
def test_audit_metrics_keep_their_values(case: str) -> None:
    args, expected = AUDIT_CASES[case]
    result = CliRunner().invoke(
        app,
        ["audit", str(SAMPLES / args[0]), *args[1:], "--json", "--quiet", "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"] == expected
