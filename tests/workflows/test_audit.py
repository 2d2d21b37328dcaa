"""Tests of the audit engine, froc_cli.workflows._audit (the command line is tested in tests/cli).

The trained audit is re-run by hand from its public parts (split_prepared, build_model,
train_model, attack_decisions) and must give exactly the same metrics; its S_B is then
recomputed with fairlearn's demographic_parity_difference (an independent implementation) on
the same decisions. The predictions mode is checked the same way from the column itself.
Gate thresholds are checked at their boundaries; group sizes at minimum and minimum - 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_biased_frame
from fairlearn.metrics import demographic_parity_difference

from froc_cli.attacks import FeatureSpace
from froc_cli.core import (
    DataSpec,
    InputError,
    InsufficientDataError,
    Objective,
    ThreatModel,
    TrainConfig,
)
from froc_cli.data import check_group_sizes, prepare_data, split_prepared
from froc_cli.metrics import attack_decisions, check_gate, evaluate_decisions
from froc_cli.models import build_model, train_model
from froc_cli.workflows import AuditConfig, audit_file, audit_table, audit_train_config
from froc_cli.workflows._audit import AUTO_BATCH_SIZE

SPEC = DataSpec(protected="gender", label="approved", min_group_size=10)
TRAIN = TrainConfig(model="mlp:8", epochs=60, lr=0.05, seed=1, device="cpu")
THREAT = ThreatModel(eps=0.1, pgd_steps=5)


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _frame(n: int = 400, seed: int = 2) -> pd.DataFrame:
    """The planted-bias frame plus ``sector``, a proxy of gender the model can learn from."""
    frame = make_biased_frame(n, seed=seed, gap=0.5)
    rng = np.random.default_rng(seed + 100)
    male = (frame["gender"] == "male").to_numpy()
    agree = rng.random(n) < 0.85
    sector = np.where(agree == male, "tech", "care")
    frame.insert(4, "sector", sector)
    return frame


def _config(**changes: object) -> AuditConfig:
    config = AuditConfig(data=SPEC, train=TRAIN, threat=THREAT)
    return replace(config, **changes)


def _same_metrics(left: dict[str, float], right: dict[str, float]) -> bool:
    return left.keys() == right.keys() and all(
        left[k] == right[k] or (math.isnan(left[k]) and math.isnan(right[k])) for k in left
    )


# --------------------------------------------------------------------------------------------
# the trained audit
# --------------------------------------------------------------------------------------------


def test_trained_audit_equals_the_pipeline_by_hand_and_fairlearn() -> None:
    frame = _frame()
    result = audit_table(frame, _config(), source="frame.csv")

    torch.set_num_threads(1)  # the audit's default
    prepared = prepare_data(frame, SPEC, source="frame.csv")
    split = split_prepared(prepared, test_size=0.3, seed=1, device="cpu", min_group_size=10)
    model = build_model("mlp:8", split.encoder.n_features, seed=1)
    space = FeatureSpace.from_encoder(split.encoder)
    train_model(
        model,
        split.train.x,
        split.train.y,
        split.train.a,
        objective=Objective(),
        config=TRAIN,
        space=space,
    )
    decisions = attack_decisions(
        model, split.test.x, split.test.y, split.test.a_numpy, space, THREAT
    )
    expected = evaluate_decisions(decisions)
    assert _same_metrics(result.metrics, expected.metrics)
    assert result.evaluation.groups == expected.groups

    # S_B against fairlearn, on the clean and the attacked decisions
    for key, pred in (("bias_score", decisions.pred), ("bias_score_pgd", decisions.pred_pgd)):
        reference = demographic_parity_difference(decisions.y, pred, sensitive_features=decisions.a)
        assert result.metrics[key] == pytest.approx(reference, abs=1e-12)
    assert result.metrics["bias_score"] > 0.1  # the planted bias reaches the model via sector

    assert result.mode == "trained" and result.threat == THREAT
    assert result.rows == {"total": 400, "train": 280, "test": 120, "dropped": 0, "features": 11}
    assert (result.label_column, result.positive_value) == ("approved", "1")
    assert result.protected_values == ("female",) and result.protected_group_defaulted
    assert result.settings["seed"] == 1 and result.settings["threads"] == 1
    assert result.settings["train"]["device"] == "cpu"
    assert not result.evaluation.intervals


def test_same_seed_same_audit_other_seed_other_split() -> None:
    frame = _frame()
    first = audit_table(frame, _config(), source="f")
    again = audit_table(frame, _config(), source="f")
    assert _same_metrics(first.metrics, again.metrics)
    assert first.evaluation.groups == again.evaluation.groups
    first_dict, again_dict = first.to_dict(), again.to_dict()
    first_dict.pop("seconds"), again_dict.pop("seconds")
    assert first_dict == again_dict

    other = audit_table(frame, _config(train=replace(TRAIN, seed=2)), source="f")
    assert other.evaluation.groups != first.evaluation.groups
    assert other.settings["seed"] == 2


def test_progress_lines_and_thread_count_are_restored() -> None:
    torch.set_num_threads(2)
    seen: list[tuple[str, int]] = []
    result = audit_table(
        _frame(),
        _config(threads=1),
        source="f",
        progress=lambda line: seen.append((line, torch.get_num_threads())),
    )
    assert torch.get_num_threads() == 2
    assert [threads for _, threads in seen] == [1, 1, 1]
    assert seen[0][0].startswith("f: 400 rows, label 'approved'")
    assert seen[1][0] == "training mlp:8 for 60 epochs on cpu"
    assert seen[2][0] == "attacking the test split (FGSM and PGD-5)"
    assert result.settings["threads"] == 1


def test_thread_count_is_restored_when_the_audit_fails() -> None:
    torch.set_num_threads(2)
    with pytest.raises(InputError, match="'rnn'"):
        audit_table(_frame(), _config(train=replace(TRAIN, model="rnn")), source="f")
    assert torch.get_num_threads() == 2
    strict = replace(SPEC, min_group_size=1000)
    with pytest.raises(InsufficientDataError, match="in the test split"):
        audit_table(_frame(), _config(data=strict), source="f")
    assert torch.get_num_threads() == 2


def test_threads_none_keeps_the_callers_setting() -> None:
    torch.set_num_threads(2)
    frame = _frame()
    frame["pred"] = frame["approved"]
    result = audit_table(frame, _config(threads=None, predictions="pred"), source="f")
    assert result.settings["threads"] == 2 and torch.get_num_threads() == 2


# --------------------------------------------------------------------------------------------
# the predictions audit
# --------------------------------------------------------------------------------------------


def test_predictions_column_of_labels_against_fairlearn() -> None:
    frame = make_biased_frame(300, seed=3)
    rng = np.random.default_rng(0)
    flip = rng.random(300) < 0.2
    frame["pred"] = np.where(flip, 1 - frame["approved"], frame["approved"])
    result = audit_table(frame, _config(predictions="pred"), source="p.csv")
    a = (frame["gender"] == "male").to_numpy(int)  # female is group a=0 (lowest rate)
    pred = frame["pred"].to_numpy()
    reference = demographic_parity_difference(frame["approved"], pred, sensitive_features=a)
    assert result.metrics["bias_score"] == pytest.approx(reference, abs=1e-12)
    assert result.metrics["accuracy"] == pytest.approx(1 - flip.mean())
    assert "robustness_pgd" not in result.metrics and result.threat is None
    assert result.mode == "predictions" and result.model == "predictions column 'pred'"
    assert result.rows == {"total": 300, "audited": 300, "dropped": 0}
    with pytest.raises(InputError, match="--delta-r"):
        check_gate(result.metrics, delta_f=None, delta_r=0.5)


def test_predictions_column_of_probabilities_is_decided_at_one_half() -> None:
    frame = make_biased_frame(200, seed=5)
    rng = np.random.default_rng(1)
    scores = rng.choice([0.0, 0.2, 0.4999, 0.5, 0.8, 1.0], size=200)
    frame["score"] = scores
    result = audit_table(frame, _config(predictions="score"), source="p.csv")
    a = (frame["gender"] == "male").to_numpy(int)
    decided = (scores >= 0.5).astype(int)  # 0.5 itself is favourable: M(x) = 1(M_c >= 0.5)
    reference = demographic_parity_difference(frame["approved"], decided, sensitive_features=a)
    assert result.metrics["bias_score"] == pytest.approx(reference, abs=1e-12)
    assert result.metrics["accuracy"] == pytest.approx(
        (decided == frame["approved"].to_numpy()).mean()
    )
    assert result.evaluation.groups["protected"]["favourable_rate"] == pytest.approx(
        decided[a == 0].mean()
    )


@pytest.mark.parametrize(
    ("values", "stray"),
    [
        (["yes", "no"], "'no'"),
        (["yes", 1], "'yes'"),
        ([-0.1, 0.3], "'-0.1'"),
        ([0.2, 1.5], "'1.5'"),
    ],
)
def test_predictions_column_of_other_values_is_an_input_error(
    values: list[object], stray: str
) -> None:
    frame = make_biased_frame(100, seed=6)
    frame["pred"] = [values[i % 2] for i in range(100)]
    with pytest.raises(InputError) as excinfo:
        audit_table(frame, _config(predictions="pred"), source="p.csv")
    message = str(excinfo.value)
    assert message.startswith("p.csv: predictions column 'pred' has value ")
    assert stray in message and "'approved'" in message


def test_audit_file_reads_and_audits(tmp_path: Path) -> None:
    frame = make_biased_frame(200, seed=7)
    frame["pred"] = frame["approved"]
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    from_file = audit_file(path, _config(predictions="pred"))
    in_memory = audit_table(frame, _config(predictions="pred"), source=str(path))
    assert from_file.source == str(path)
    assert _same_metrics(from_file.metrics, in_memory.metrics)
    assert from_file.metrics["accuracy"] == 1.0


# --------------------------------------------------------------------------------------------
# the gate
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bias", "delta_f", "passed"),
    [
        (0.1, 0.1, True),  # boundary: <= passes
        (np.nextafter(0.1, 1.0), 0.1, False),
        (np.nextafter(0.1, 0.0), 0.1, True),
        (0.0, 0.0, True),
        (1.0, 1.0, True),
        (math.nan, 1.0, False),
    ],
)
def test_gate_bias_threshold(bias: float, delta_f: float, passed: bool) -> None:
    gate = check_gate({"bias_score": bias}, delta_f=delta_f, delta_r=None)
    (check,) = gate.checks
    assert (check.metric, check.comparison, check.threshold) == ("bias_score", "<=", delta_f)
    assert check.passed is passed and gate.passed is passed


@pytest.mark.parametrize(
    ("robustness", "delta_r", "passed"),
    [
        (0.6, 0.6, True),  # boundary: >= passes
        (np.nextafter(0.6, 0.0), 0.6, False),
        (np.nextafter(0.6, 1.0), 0.6, True),
        (0.0, 0.0, True),
        (1.0, 1.0, True),
        (math.nan, 0.0, False),
    ],
)
def test_gate_robustness_threshold(robustness: float, delta_r: float, passed: bool) -> None:
    metrics = {"bias_score": 0.5, "robustness_pgd": robustness}
    gate = check_gate(metrics, delta_f=None, delta_r=delta_r)
    (check,) = gate.checks
    assert (check.metric, check.comparison, check.threshold) == ("robustness_pgd", ">=", delta_r)
    assert check.passed is passed and gate.passed is passed


def test_gate_needs_every_check() -> None:
    metrics = {"bias_score": 0.05, "robustness_pgd": 0.4}
    assert check_gate(metrics, delta_f=0.05, delta_r=0.4).passed
    mixed = check_gate(metrics, delta_f=0.05, delta_r=0.41)
    assert [c.passed for c in mixed.checks] == [True, False] and not mixed.passed
    assert check_gate(metrics, delta_f=None, delta_r=None).passed  # vacuous


# --------------------------------------------------------------------------------------------
# group sizes, configuration, schedule
# --------------------------------------------------------------------------------------------


def test_check_group_sizes_at_the_minimum() -> None:
    frame = make_biased_frame(100, seed=8)
    prepared = prepare_data(frame, SPEC, source="g.csv")
    a = prepared.a
    n_female, n_male = int((a == 0).sum()), int((a == 1).sum())
    assert n_female == int((frame["gender"] == "female").sum())
    smaller = min(n_female, n_male)
    check_group_sizes(prepared, a, smaller, "in the file")  # == minimum passes
    with pytest.raises(InsufficientDataError) as excinfo:
        check_group_sizes(prepared, a, smaller + 1, "in the file")
    assert excinfo.value.exit_code == 3
    which = (
        "protected group gender in {female}"
        if n_female <= n_male
        else "rest of the rows (gender not in {female})"
    )
    assert str(excinfo.value) == (
        f"g.csv: {which} has {smaller} rows in the file, fewer than --min-group-size "
        f"{smaller + 1}; too little data to judge"
    )


@pytest.mark.parametrize("group", [0, 1])
def test_an_empty_group_is_never_enough(group: int) -> None:
    prepared = prepare_data(make_biased_frame(60, seed=9), SPEC, source="g.csv")
    only_other = np.full(10, 1 - group, dtype=np.float32)
    with pytest.raises(InsufficientDataError, match="has 0 rows in the split, fewer than"):
        check_group_sizes(prepared, only_other, 0, "in the split")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"test_size": 0.0}, "--test-size 0.0: expected a fraction in (0, 1)"),
        ({"test_size": 1.0}, "--test-size 1.0: expected a fraction in (0, 1)"),
        ({"threads": 0}, "--threads 0: expected at least 1"),
    ],
)
def test_audit_config_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as excinfo:
        AuditConfig(data=SPEC, **changes)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("n_rows", "epochs", "batch", "expected_epochs"),
    [
        (700_000, 300, AUTO_BATCH_SIZE, 4),  # ceil(300 * 8192 / 700000) = ceil(3.51)
        (100_001, 300, AUTO_BATCH_SIZE, 25),  # ceil(24.58)
        (10_000_000, 300, AUTO_BATCH_SIZE, 1),  # never fewer than one epoch
    ],
)
def test_audit_train_config_switches_to_mini_batches(
    n_rows: int, epochs: int, batch: int, expected_epochs: int
) -> None:
    schedule = audit_train_config(TrainConfig(epochs=epochs), n_rows)
    assert (schedule.batch_size, schedule.epochs) == (batch, expected_epochs)
    assert schedule.lr == TrainConfig().lr and schedule.seed == TrainConfig().seed


def test_audit_train_config_keeps_small_or_explicit_schedules() -> None:
    train = TrainConfig(epochs=300)
    assert audit_train_config(train, 100_000) is train
    explicit = TrainConfig(epochs=300, batch_size=64)
    assert audit_train_config(explicit, 700_000) is explicit


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_audit_on_cuda_agrees_with_cpu() -> None:
    # Float sums differ between devices, so the figures agree closely, not bit for bit.
    frame = _frame()
    on_cpu = audit_table(frame, _config(), source="tiny")
    config = _config()
    on_cuda = audit_table(
        frame, replace(config, train=replace(config.train, device="cuda")), source="tiny"
    )
    assert on_cuda.settings["train"]["device"].startswith("cuda")
    for key in ("accuracy", "bias_score", "robustness_fgsm", "robustness_pgd"):
        assert on_cuda.metrics[key] == pytest.approx(on_cpu.metrics[key], abs=0.05), key
