"""Tests of ``froc preprocess`` as a workflow (froc_cli/workflows/_preprocess.py): the verdict
on the cross-fitted panel estimate, and the whole run end to end on a small frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame

from froc_cli.core import DataSpec, InputError, NumericError, ThreatModel
from froc_cli.methods import EditSettings, PanelEstimate
from froc_cli.workflows import (
    MemberVerdict,
    TrainerFileConfig,
    TrainerFileResult,
    prepare_trainer_file,
)
from froc_cli.workflows._preprocess import _judge, _reason

SPEC = DataSpec(protected="gender", min_group_size=5)
TARGETS = {"bias_score": 0.05, "robustness": 0.6}
N_ROWS = 1000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fast_config(**changes: Any) -> TrainerFileConfig:
    """A tiny surrogate, few epochs, two rounds and two folds: a run takes a few seconds."""
    base: dict[str, Any] = {
        "data": SPEC,
        "edits": EditSettings(
            surrogate="mlp:8", surrogate_epochs=30, warm_epochs=5, augment_rounds=2
        ),
        "target_models": ("lr", "hgb"),
        "folds": 2,
        "transfer_source": "mlp:8",
        "threat": ThreatModel(eps=0.1, pgd_steps=5, attack_space="valid", cat_budget=0),
        "seed": 0,
        "device": "cpu",
    }
    return TrainerFileConfig(**{**base, **changes})


# --- the verdict ------------------------------------------------------------------------------


def _figures(bias: float, robustness: float, *, degenerate: bool = False) -> dict[str, Any]:
    """One fold's figures of a network member; a degenerate one is at the majority floor."""
    return {
        "rows": N_ROWS // 2,
        "accuracy": 0.7 if degenerate else 0.85,
        "majority_floor": 0.7,
        "bias_score": bias,
        "rarer_decision_share": 0.3,
        "robustness_whitebox_valid": robustness,
        "robustness_transfer_valid": 0.0,  # never the figure judged for a network here
        "robustness_whitebox_continuous": 0.0,
    }


def _estimate(**members: list[dict[str, Any]]) -> PanelEstimate:
    return PanelEstimate.from_folds({name.replace("_", ":"): f for name, f in members.items()})


@pytest.mark.parametrize(
    ("bias", "robustness", "degenerate", "met"),
    [
        (0.04, 0.70, False, True),
        (0.05, 0.60, False, True),  # both thresholds are inclusive
        (0.06, 0.70, False, False),
        (0.04, 0.59, False, False),
        (0.04, 0.70, True, False),
        (0.06, 0.59, True, False),
    ],
)
def test_member_met_exactly_when_both_thresholds_hold_and_not_degenerate(
    bias: float, robustness: float, degenerate: bool, met: bool
) -> None:
    config = fast_config(target_models=("mlp:8",))
    # Two folds whose means are the figures under test.
    folds = [
        _figures(bias - 0.01, robustness + 0.02, degenerate=degenerate),
        _figures(bias + 0.01, robustness - 0.02, degenerate=degenerate),
    ]
    (verdict,) = _judge(config, _estimate(mlp_8=folds), TARGETS, N_ROWS)
    assert verdict.model == "mlp:8"
    assert verdict.robustness_key == "robustness_whitebox_valid"
    assert verdict.bias_score == pytest.approx(bias)
    assert verdict.robustness == pytest.approx(robustness)
    assert verdict.degenerate is degenerate
    assert verdict.meets_bias is (bias <= TARGETS["bias_score"] + 1e-9)
    assert verdict.meets_robustness is (robustness >= TARGETS["robustness"] - 1e-9)
    assert verdict.met is met


def test_member_verdict_met_property() -> None:
    base = {"model": "lr", "robustness_key": "k", "bias_score": 0.0, "robustness": 1.0}
    for bias in (True, False):
        for robust in (True, False):
            for degenerate in (True, False):
                verdict = MemberVerdict(
                    **base, degenerate=degenerate, meets_bias=bias, meets_robustness=robust
                )
                assert verdict.met is (bias and robust and not degenerate)


def test_robustness_key_trees_are_judged_on_transfer() -> None:
    whitebox = fast_config(target_models=("mlp:8", "lr", "hgb"), robustness="whitebox")
    assert whitebox.robustness_key("mlp:8") == "robustness_whitebox_valid"
    assert whitebox.robustness_key("lr") == "robustness_whitebox_valid"
    assert whitebox.robustness_key("hgb") == "robustness_transfer_valid"
    transfer = fast_config(robustness="transfer")
    assert transfer.robustness_key("lr") == "robustness_transfer_valid"
    continuous = fast_config(threat=ThreatModel(attack_space="continuous"))
    assert continuous.robustness_key("lr") == "robustness_whitebox_continuous"
    assert continuous.robustness_key("hgb") == "robustness_transfer_continuous"


def test_hgb_is_judged_on_its_transfer_figure_under_whitebox() -> None:
    config = fast_config(target_models=("lr", "hgb"), robustness="whitebox")
    tree = {k: v for k, v in _figures(0.01, 0.0).items() if "whitebox" not in k}
    strong = _estimate(lr=[_figures(0.01, 0.9)], hgb=[{**tree, "robustness_transfer_valid": 0.8}])
    lr, hgb = _judge(config, strong, TARGETS, N_ROWS)
    assert lr.robustness_key == "robustness_whitebox_valid" and lr.robustness == 0.9
    assert hgb.robustness_key == "robustness_transfer_valid" and hgb.robustness == 0.8
    assert lr.met and hgb.met
    weak = _estimate(lr=[_figures(0.01, 0.9)], hgb=[{**tree, "robustness_transfer_valid": 0.4}])
    lr, hgb = _judge(config, weak, TARGETS, N_ROWS)
    assert lr.met and not hgb.met and not hgb.meets_robustness
    reason = _reason((lr, hgb), TARGETS)
    assert reason == "hgb robustness_transfer_valid 0.4000 < 0.6000"


def test_a_missing_robustness_figure_never_meets() -> None:
    config = fast_config(target_models=("lr",), robustness="whitebox")
    figures = {k: v for k, v in _figures(0.01, 0.9).items() if "whitebox" not in k}
    (verdict,) = _judge(config, _estimate(lr=[figures]), TARGETS, N_ROWS)
    assert np.isnan(verdict.robustness) and not verdict.met


def test_reason_names_every_miss() -> None:
    config = fast_config(target_models=("mlp:8", "lr"))
    estimate = _estimate(mlp_8=[_figures(0.2, 0.9, degenerate=True)], lr=[_figures(0.01, 0.9)])
    verdicts = _judge(config, estimate, TARGETS, N_ROWS)
    assert [v.met for v in verdicts] == [False, True]
    assert _reason(verdicts, TARGETS) == (
        "mlp:8 is degenerate (near constant or at the floor); mlp:8 S_B 0.2000 > 0.0500"
    )
    assert _reason(verdicts[1:], TARGETS).startswith("every panel model meets both")


def test_config_rejects_bad_settings() -> None:
    with pytest.raises(InputError, match="--target-models"):
        fast_config(target_models=("lr", "svm"))
    with pytest.raises(InputError, match="--folds 1"):
        fast_config(folds=1)
    with pytest.raises(InputError, match="--robustness"):
        fast_config(robustness="blackbox")


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(600)


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> TrainerFileResult:
    return prepare_trainer_file(frame, fast_config(), source="credit")


def test_trainer_file_end_to_end(frame: pd.DataFrame, result: TrainerFileResult) -> None:
    out = result.output
    assert list(out.columns) == list(frame.columns)
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    assert len(out) == len(frame) + len(result.additions) > len(frame)
    assert result.rows == {
        "input": 600, "used": 600, "dropped": 0, "output": len(out), "features": 9,
    }  # fmt: skip
    flipped = [f.index for f in result.flips]
    assert flipped and len(set(flipped)) == len(flipped)
    head = out.iloc[: len(frame)]
    pd.testing.assert_frame_equal(head.drop(index=flipped), frame.drop(index=flipped))
    assert (head.loc[flipped, "approved"] == 1 - frame.loc[flipped, "approved"]).all()
    sources = [r.source_index for r in result.additions]
    added = out.iloc[len(frame) :].reset_index(drop=True)
    np.testing.assert_array_equal(added["gender"], frame["gender"].to_numpy()[sources])
    np.testing.assert_array_equal(added["approved"], head["approved"].to_numpy()[sources])
    # The verdict: every panel model in order, judged as _judge judges its estimate.
    assert [v.model for v in result.verdicts] == ["lr", "hgb"]
    assert [v.robustness_key for v in result.verdicts] == [
        "robustness_whitebox_valid",
        "robustness_transfer_valid",
    ]
    assert result.verdicts == _judge(fast_config(), result.estimate, result.targets, 600)
    assert result.met == all(v.met for v in result.verdicts)
    assert 0 < result.targets["bias_score"] < 0.05 and 0.6 < result.targets["robustness"] < 1
    if result.met:
        assert result.reason.startswith("every panel model meets both thresholds")
    else:
        for verdict in result.verdicts:
            assert (f"{verdict.model} " in result.reason) is (not verdict.met)
    assert [len(result.estimate.folds[m]) for m in ("lr", "hgb")] == [2, 2]
    report = result.to_dict()
    assert report["met"] is result.met and len(report["verdicts"]) == 2
    assert report["flip_fraction"] == pytest.approx(len(flipped) / 600)


def test_a_strict_target_is_not_met_and_the_reason_says_why(
    frame: pd.DataFrame, result: TrainerFileResult
) -> None:
    """Same edits, judged against delta_R = 1: nothing in the panel is that robust."""
    strict = fast_config(delta_r=1.0)
    verdicts = _judge(strict, result.estimate, {**result.targets, "robustness": 1.0}, 600)
    assert not any(v.met for v in verdicts)
    reason = _reason(verdicts, {**result.targets, "robustness": 1.0})
    assert "lr robustness_whitebox_valid" in reason and "hgb robustness_transfer_valid" in reason


def test_same_seed_writes_the_same_file(frame: pd.DataFrame, result: TrainerFileResult) -> None:
    again = prepare_trainer_file(frame, fast_config(), source="credit")
    assert again.output.to_csv(index=False) == result.output.to_csv(index=False)
    assert again.verdicts == result.verdicts
    assert again.estimate.mean == result.estimate.mean


def test_a_diverging_surrogate_is_one_numeric_error(frame: pd.DataFrame) -> None:
    """A learning rate the numbers cannot hold is bad input (exit 2), named in one line, never
    a traceback or a verdict."""
    edits = EditSettings(
        surrogate="mlp:8", surrogate_epochs=30, warm_epochs=5, augment_rounds=2, lr=1e30
    )
    with pytest.raises(NumericError) as caught:
        prepare_trainer_file(frame, fast_config(edits=edits), source="credit")
    message = str(caught.value)
    assert message.startswith("FRoC-PRE failed on non-finite or overflowing numbers")
    assert "--lr (now 1e+30)" in message and "\n" not in message
    assert caught.value.exit_code == 2
