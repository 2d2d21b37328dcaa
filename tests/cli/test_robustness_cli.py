"""``--attack``, ``--restarts``, ``--certify`` and ``--robust-metric`` from the command line.

A row counts as robust only if no attack broke it; the gate reads that figure (summarised as
asked); the certificate never exceeds it; a threshold a constant model meets is warned about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error
from typer.testing import CliRunner, Result

from froc_cli.cli import app

FAST = ["--target-model", "lr", "--epochs", "100", "--lr", "0.05", "--threads", "1"]


def froc(*args: object) -> Result:
    return CliRunner().invoke(app, [*map(str, args)])


def json_of(result: Result) -> dict[str, Any]:
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


@pytest.fixture(scope="module")
def strong(sample_csv: Path) -> Result:
    return froc(
        "audit", sample_csv, "--protected", "gender", "--attack", "fgsm,pgd,apgd",
        "--restarts", "3", "--certify", "--delta-r", "0.5", "--json", *FAST,
    )  # fmt: skip


def test_every_attack_and_the_certificate_are_reported_in_order(strong: Result) -> None:
    payload = json_of(strong)
    m = payload["metrics"]
    each = [m["robustness_fgsm"], m["robustness_pgd"], m["robustness_apgd"]]
    # No attack broke the row: at most each attack's share, at least the proven share.
    assert m["robustness_certified"] <= m["robustness"] <= min(each)
    assert 0.0 <= m["robustness_balanced"] <= 1.0 and 0.0 <= m["robustness_retention"] <= 1.0
    assert m["robustness_retention"] >= m["robustness"]  # among right rows only
    assert payload["threat_model"]["attacks"] == ["fgsm", "pgd", "apgd"]
    assert payload["threat_model"]["restarts"] == 3
    gated = {c["metric"]: c for c in payload["gate"]["checks"]}
    assert gated["robustness"]["value"] == m["robustness"]
    for figures in payload["groups"].values():
        assert figures["certified_accuracy"] <= figures["robust_accuracy"]
        assert figures["robust_accuracy"] <= figures["robust_accuracy_apgd"]


def test_a_threshold_at_the_floor_is_warned_about(strong: Result) -> None:
    payload = json_of(strong)
    floor = payload["metrics"]["majority_floor"]
    assert floor > 0.5  # synthetic: 66% unapproved
    (warning,) = payload["warnings"]
    assert "--delta-r 0.5" in warning and f"{floor:.3f}" in warning
    assert "constant model" in warning
    assert any(
        line.startswith("froc: warning: --delta-r 0.5") for line in strong.stderr.splitlines()
    )


def test_robust_metric_balanced_is_what_the_gate_reads(sample_csv: Path) -> None:
    result = froc(
        "audit", sample_csv, "--protected", "gender", "--robust-metric", "balanced",
        "--delta-r", "0.6", "--json", *FAST,
    )  # fmt: skip
    payload = json_of(result)
    gated = {c["metric"]: c for c in payload["gate"]["checks"]}
    assert gated["robustness_balanced"]["value"] == payload["metrics"]["robustness_balanced"]
    assert "warnings" not in payload  # 0.6 is above a constant model's 0.5
    assert result.exit_code == (0 if gated["robustness_balanced"]["passed"] else 1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--attack", "pgd,cw"], ["--attack pgd,cw", "fgsm, pgd, apgd"]),
        (["--restarts", "0"], ["--restarts 0"]),
        (["--robust-metric", "median"], ["--robust-metric median"]),
        (["--certify", "--predictions", "approved"], ["--certify", "--predictions"]),
    ],
)
def test_bad_robustness_options_are_one_line_exit_2(
    sample_csv: Path, args: list[str], words: list[str]
) -> None:
    result = froc("audit", sample_csv, "--protected", "gender", *args, *FAST)
    assert_one_line_error(result, 2, *words)


def test_train_in_measures_with_attack_and_trains_with_train_attack(sample_csv: Path) -> None:
    result = froc(
        "train-in", sample_csv, "--protected", "gender", "--lambda-f", "0", "--lambda-r", "0.5",
        "--train-attack", "fgsm", "--attack", "pgd,apgd", "--epochs", "5", "--json", *FAST[:2],
        "--threads", "1",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.stderr  # 1: a 5-epoch model may be degenerate
    payload = json_of(result)
    assert payload["attack"] == "fgsm"  # the training objective's
    test = payload["test"]["metrics"]
    assert "robustness_apgd" in test and "robustness_fgsm" not in test
    assert test["robustness"] <= min(test["robustness_pgd"], test["robustness_apgd"])


def test_a_bias_target_the_margin_eats_is_warned_about() -> None:
    from froc_cli.cli.train_in import _unreachable_bias_target

    # Adult race with odds: the two least certain groups' TPR errors take all of delta_F.
    note = _unreachable_bias_target(0.1, 0.0)
    assert note is not None and "--delta-f 0.1" in note and "target of 0.000" in note
    assert "--margin" in note and "--min-group-size" in note
    assert _unreachable_bias_target(0.1, 0.025) is not None  # a quarter or less: warned
    assert _unreachable_bias_target(0.1, 0.06) is None  # the usual tightening: not
    assert _unreachable_bias_target(None, None) is None
