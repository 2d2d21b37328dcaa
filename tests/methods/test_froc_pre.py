"""Tests of FRoC-PRE (froc_cli/_froc_pre.py): the output table, the edits and the rounds.

Tiny seeded frames and small models, on one thread: every test runs in about a second.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_frame

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core import (
    EXIT_INPUT_ERROR,
    DataSpec,
    InputError,
    NumericError,
    Objective,
    ThreatModel,
    TrainConfig,
)
from froc_cli.data import encode_rows, fit_encoder, prepare_data, split_indices
from froc_cli.methods import (
    PreprocessConfig,
    PreprocessResult,
    RoundRecord,
    _froc_pre,
    compute_addition_influence,
    compute_augment_influence,
    compute_flip_influence,
    preprocess_table,
)
from froc_cli.methods._froc_pre import _balanced_additions, _flip_round, _State
from froc_cli.models import build_model, predict_logits, train_model

SPEC = DataSpec(protected="gender", min_group_size=5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


FAST_TRAIN = TrainConfig(model="mlp:16", epochs=60, seed=0, device="cpu")


def fast_config(**changes: Any) -> PreprocessConfig:
    """Small models, few epochs and rounds, weak attacks: a run takes about a second."""
    base = PreprocessConfig(
        data=SPEC,
        delta_f=0.02,
        delta_r=0.9,
        threat=ThreatModel(eps=0.1, pgd_steps=3, attack_space="valid", cat_budget=1),
        train=FAST_TRAIN,
        target_model="mlp:8",
        rounds=4,
        step=0.05,
        max_step_factor=2,
        warm_epochs=5,
        target_epochs=200,
        compare_input=False,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> PreprocessResult:
    return preprocess_table(frame, fast_config(), source="tiny")


def test_output_keeps_the_input_schema_and_row_order(
    frame: pd.DataFrame, result: PreprocessResult
) -> None:
    out = result.output
    assert list(out.columns) == list(frame.columns)
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    assert len(out) == len(frame) + len(result.additions)
    original = out.iloc[: len(frame)].reset_index(drop=True)
    # Every cell but the flipped labels is the input's, in the input's order.
    flipped = [f.index for f in result.flips]
    unchanged = original.drop(index=flipped)
    pd.testing.assert_frame_equal(unchanged, frame.drop(index=flipped))
    assert (original.loc[flipped, "approved"] != frame.loc[flipped, "approved"]).all()


def test_edits_happen_and_are_recorded(frame: pd.DataFrame, result: PreprocessResult) -> None:
    assert result.flips and result.additions
    assert len(result.trajectory) >= 2
    for flip in result.flips:
        assert flip.old_label == frame.at[flip.index, "approved"]
        assert flip.new_label == 1 - flip.old_label
        assert flip.influence < 0 and flip.delta_fairness < 0
        assert 1 <= flip.round < result.chosen_round
    assert len({f.index for f in result.flips}) == len(result.flips)  # never flipped twice
    sources = [added.source_index for added in result.additions]
    assert len(set(sources)) == len(sources)  # one adversarial copy per row at most
    assert all(added.influence >= 0 for added in result.additions)
    assert result.flip_fraction == len(result.flips) / result.rows["editable"]


def test_held_out_and_validation_rows_are_never_edited(
    frame: pd.DataFrame, result: PreprocessResult
) -> None:
    prepared = prepare_data(frame, SPEC, source="tiny")
    rest, test = split_indices(prepared.y, prepared.a, test_size=0.2, seed=0)
    _, val_local = split_indices(prepared.y[rest], prepared.a[rest], test_size=0.2, seed=0)
    untouchable = set(test.tolist()) | set(rest[val_local].tolist())
    touched = {f.index for f in result.flips} | {r.source_index for r in result.additions}
    assert touched and not touched & untouchable
    assert result.rows["test"] == len(test)


def test_added_rows_are_valid_records(frame: pd.DataFrame, result: PreprocessResult) -> None:
    out = result.output
    added = out.iloc[len(frame) :].reset_index(drop=True)
    sources = frame.iloc[[r.source_index for r in result.additions]].reset_index(drop=True)
    for column in ("education", "region"):
        assert set(added[column]) <= set(frame[column])
    for column in ("age", "income"):
        assert added[column].between(frame[column].min(), frame[column].max()).all()
    assert (added["age"] == added["age"].round()).all()
    assert (added["income"] == added["income"].round(2)).all()
    # The protected column is copied, never attacked; the label is the source's after flips.
    assert (added["gender"] == sources["gender"]).all()
    source_labels = out.loc[[r.source_index for r in result.additions], "approved"].to_numpy()
    assert (added["approved"].to_numpy() == source_labels).all()
    # Within eps of the source on every scaled numeric column; at most one category switched.
    for column in ("age", "income"):
        span = frame[column].max() - frame[column].min()
        assert ((added[column] - sources[column]).abs() <= 0.1 * span + 1e-9).all()
    switched = (added["education"] != sources["education"]).astype(int) + (
        added["region"] != sources["region"]
    ).astype(int)
    assert switched.max() <= 1
    assert (added.drop(columns=["approved"]) != sources.drop(columns=["approved"])).any().any()


def test_immutable_columns_are_never_changed(frame: pd.DataFrame) -> None:
    spec = replace(SPEC, immutable=("age", "education"))
    config = fast_config(data=spec, delta_f=1.0, delta_r=0.99, rounds=3)
    result = preprocess_table(frame, config, source="tiny")
    assert result.additions
    added = result.output.iloc[len(frame) :].reset_index(drop=True)
    sources = frame.iloc[[r.source_index for r in result.additions]].reset_index(drop=True)
    for column in ("age", "education", "gender"):
        assert (added[column] == sources[column]).all()


def test_same_seed_same_output(frame: pd.DataFrame, result: PreprocessResult) -> None:
    again = preprocess_table(frame, fast_config(), source="tiny")
    pd.testing.assert_frame_equal(again.output, result.output)
    assert again.flips == result.flips and again.additions == result.additions


def test_label_values_keep_the_files_own_values() -> None:
    frame = make_frame()
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    spec = replace(SPEC, positive="yes")
    result = preprocess_table(frame, fast_config(data=spec), source="tiny")
    assert result.flips
    assert set(result.output["approved"]) == {"yes", "no"}
    assert result.output["approved"].dtype == frame["approved"].dtype
    for flip in result.flips:
        assert {flip.old_label, flip.new_label} == {"yes", "no"}


def test_not_met_returns_the_best_round(result: PreprocessResult) -> None:
    # delta_R 0.9 is out of reach in 4 rounds: not met, and the best round is kept.
    assert not result.met
    assert "best round" in result.reason
    targets = result.validation_targets
    best = min(r.violation(*targets) for r in result.trajectory)
    chosen = next(r for r in result.trajectory if r.round == result.chosen_round)
    assert chosen.violation(*targets) == best
    assert all(a.round < result.chosen_round for a in result.additions)
    assert len(result.output) == result.rows["input"] + len(result.additions)


def test_met_at_once_is_confirmed_by_a_fresh_target(frame: pd.DataFrame) -> None:
    result = preprocess_table(frame, fast_config(delta_f=1.0, delta_r=0.0), source="tiny")
    assert result.met, result.reason
    assert "round 1" in result.reason and "fresh mlp:8" in result.reason
    assert result.chosen_round == 1 and len(result.checks) == 1
    assert len(result.trajectory) == 1 and not result.flips and not result.additions
    pd.testing.assert_frame_equal(result.output, frame)
    assert set(result.target.metrics) >= {
        "accuracy",
        "bias_score",
        "robustness_whitebox_valid",
        "robustness_whitebox_numeric",
        "robustness_whitebox_continuous",
        "robustness_transfer_valid",
        "robustness_transfer_continuous",
    }


def test_a_constant_model_is_never_a_success() -> None:
    # Labels unrelated to the features: the best model is no better than the majority class.
    frame = make_frame(seed=5)
    rng = np.random.default_rng(0)
    frame["approved"] = (rng.random(len(frame)) < 0.2).astype(np.int64)
    result = preprocess_table(frame, fast_config(delta_f=1.0, delta_r=0.0), source="tiny")
    assert not result.met
    assert result.trajectory[0].degenerate


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"delta_f": 1.5}, "--delta-f"),
        ({"robustness": "greybox"}, "--robustness"),
        ({"influence_params": "some"}, "--influence-params"),
        ({"train": replace(FAST_TRAIN, model="tree")}, "tree"),
        ({"step": 2.5}, "--step"),
        ({"max_flip_frac": -0.1}, "--max-flip-frac"),
        ({"test_size": 1.0}, "--test-size"),
        ({"warm_lr": 0.0}, "--warm-lr"),
        ({"addition_rank": "fairness"}, "--addition-rank"),
    ],
)
def test_bad_settings_are_input_errors(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        fast_config(**change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "--epochs 0: expected at least 1"),
        ({"lr": 0.0}, "--lr 0.0: expected a positive finite number"),
        ({"lr": float("nan")}, "--lr nan: expected a positive finite number"),
        ({"batch_size": 0}, "--batch-size 0: expected at least 1"),
    ],
)
def test_bad_surrogate_training_settings_name_the_option(
    change: dict[str, Any], message: str
) -> None:
    # The surrogate's training settings are the shared TrainConfig, which checks them itself.
    with pytest.raises(InputError, match=message):
        fast_config(train=replace(FAST_TRAIN, **change))


def test_settings_nest_the_surrogate_training(result: PreprocessResult) -> None:
    train = result.settings["train"]
    assert train["model"] == "mlp:16" and train["epochs"] == 60 and train["seed"] == 0
    assert train["device"] == "cpu"  # resolved
    assert "surrogate" not in result.settings and "epochs" not in result.settings


def test_an_overflowing_learning_rate_is_refused_and_a_huge_one_is_a_numeric_error(
    frame: pd.DataFrame,
) -> None:
    # Adam cannot take a step float32 cannot hold: such a rate is refused up front...
    with pytest.raises(InputError, match=r"--lr 1e\+39: expected a positive finite number"):
        replace(FAST_TRAIN, lr=1e39)
    # ...and one it can hold but that diverges is one NumericError line naming --lr.
    with pytest.raises(NumericError, match="--lr") as caught:
        preprocess_table(frame, fast_config(train=replace(FAST_TRAIN, lr=1e30)), source="tiny")
    assert caught.value.exit_code == EXIT_INPUT_ERROR
    assert "\n" not in str(caught.value)


def test_a_diverged_surrogate_is_a_numeric_error(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def diverging(model: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(float("nan"))

    monkeypatch.setattr(_froc_pre, "train_model", diverging)
    with pytest.raises(NumericError, match=r"surrogate mlp:16 \(round 1\).*NaN or infinite"):
        preprocess_table(frame, fast_config(), source="tiny")


def test_nan_influence_is_a_numeric_error(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nan_influence(*args: Any, **kwargs: Any) -> None:
        raise ValueError("fairness influence contains NaN or infinite values")

    monkeypatch.setattr(_froc_pre, "compute_flip_influence", nan_influence)
    with pytest.raises(NumericError, match="fairness influence contains NaN"):
        preprocess_table(frame, fast_config(), source="tiny")


def test_flips_lower_the_bias_of_a_retrained_model() -> None:
    """The rows the engine flips (most negative predicted change of F) lower the bias of a
    model retrained from scratch; the paper's literal sign (the other end) raises it."""
    frame = make_frame(seed=11)
    prepared = prepare_data(frame, SPEC, source="tiny")
    edit, val = split_indices(prepared.y, prepared.a, test_size=0.3, seed=0)
    encoder = fit_encoder(prepared.frame.iloc[edit], prepared.feature_columns)
    space = FeatureSpace.from_encoder(encoder)
    val_rows = encode_rows(prepared, encoder, val, torch.device("cpu"))
    y0 = prepared.y[edit].astype(np.float32)
    state = _State(
        x=torch.as_tensor(encoder.encode(prepared.frame.iloc[edit])),
        y0=y0.copy(),
        a=prepared.a[edit].copy(),
    )
    cfg = TrainConfig(model="lr", epochs=400, lr=0.05, seed=0)

    def fit(labels: np.ndarray) -> torch.nn.Module:
        x, y, a = state.training_set(val_rows)
        y = torch.cat([torch.as_tensor(labels), y[len(labels) :]])
        model = build_model("lr", encoder.n_features, seed=0)
        train_model(model, x, y, a, objective=Objective(), config=cfg, space=space)
        return model

    def signed_gap(model: torch.nn.Module) -> float:
        probs = torch.sigmoid(predict_logits(model, val_rows.x))
        return float(probs[val_rows.a_numpy == 0].mean() - probs[val_rows.a_numpy == 1].mean())

    model = fit(y0)
    base = signed_gap(model)
    assert base < -0.1  # the protected group gets lower scores
    x_tr, y_tr, _ = state.training_set(val_rows)
    record = RoundRecord(1, abs(base), 0.0, 0.0, False, 0, 0, 0.0)
    config = fast_config(step=20, max_step_factor=1)
    _flip_round(state, model, x_tr, y_tr, val_rows, record, (0.0, 0.0), 1000, config)
    assert int((state.flip_round > 0).sum()) == 20
    assert signed_gap(fit(state.y)) - base > 0.02  # the negative gap shrinks

    influence = compute_flip_influence(
        model, x_tr, y_tr, val_rows.x, val_rows.y, torch.as_tensor(val_rows.a_numpy)
    )
    literal = np.argsort(-influence.score[: len(y0)].numpy(), kind="stable")[:20]
    y_literal = y0.copy()
    y_literal[literal] = 1 - y_literal[literal]
    assert signed_gap(fit(y_literal)) - base < -0.02  # the paper's printed sign: worse


def test_balanced_additions_rank_by_the_sum_of_both_ranks() -> None:
    accuracy = np.array([0.1, 0.2, 0.3, 0.4, 0.5])  # eq. 22 alone would take rows 0 and 1
    fairness = np.array([0.9, 0.8, -0.5, -0.6, 0.0])  # rows 0 and 1 raise the bias most
    # rank sums: 0: 0+4, 1: 1+3, 2: 2+1, 3: 3+0, 4: 4+2 -> rows 2 and 3 (3 each), then 0 and 1.
    assert _balanced_additions(accuracy, fairness, 2).tolist() == [2, 3]
    # equal rank sums (rows 0, 1: 4 each) are broken by the accuracy rank.
    assert _balanced_additions(accuracy, fairness, 3).tolist() == [0, 2, 3]


def test_balanced_additions_raise_the_bias_of_a_retrained_model_less() -> None:
    """Adding the rows picked by rank sum leaves a model retrained from scratch fairer than
    adding the rows eq. 22 alone picks (same number, same candidates)."""
    frame = make_frame(n=800, seed=11)
    prepared = prepare_data(frame, SPEC, source="tiny")
    train, val = split_indices(prepared.y, prepared.a, test_size=0.3, seed=0)
    encoder = fit_encoder(prepared.frame.iloc[train], prepared.feature_columns)
    space = FeatureSpace.from_encoder(encoder)
    x = torch.as_tensor(encoder.encode(prepared.frame.iloc[train]))
    y = torch.as_tensor(prepared.y[train].astype(np.float32))
    a = torch.as_tensor(prepared.a[train].astype(np.float32))
    val_rows = encode_rows(prepared, encoder, val, torch.device("cpu"))
    cfg = TrainConfig(model="lr", epochs=400, lr=0.05, seed=0)

    def fit(rows: np.ndarray) -> torch.nn.Module:
        index = torch.as_tensor(rows)
        model = build_model("lr", encoder.n_features, seed=0)
        train_model(
            model,
            torch.cat([x, x_adv[index]]),
            torch.cat([y, y[index]]),
            torch.cat([a, a[index]]),
            objective=Objective(),
            config=cfg,
            space=space,
        )
        return model

    def bias(model: torch.nn.Module) -> float:
        probs = torch.sigmoid(predict_logits(model, val_rows.x))
        return float(
            (probs[val_rows.a_numpy == 0].mean() - probs[val_rows.a_numpy == 1].mean()).abs()
        )

    x_adv = x
    model = fit(np.array([], dtype=np.int64))
    # The pool: PGD examples of every training row, labelled with the row's label.
    x_adv = make_attack("pgd", model, space, ThreatModel(eps=0.2, pgd_steps=5))(x, y).detach()
    candidates = np.arange(len(y))
    accuracy = compute_augment_influence(model, x_adv, y).numpy()
    fairness = compute_addition_influence(
        model,
        x,
        y,
        x_adv,
        y,
        val_rows.x,
        torch.as_tensor(val_rows.y_numpy),
        torch.as_tensor(val_rows.a_numpy),
    ).delta_fairness.numpy()
    k = 150
    by_accuracy = candidates[np.argsort(accuracy, kind="stable")[:k]]
    balanced = candidates[_balanced_additions(accuracy, fairness, k)]
    assert set(by_accuracy.tolist()) != set(balanced.tolist())
    base = bias(model)
    assert bias(fit(balanced)) < bias(fit(by_accuracy)) - 0.005
    assert bias(fit(balanced)) <= base + 0.005
