"""FRoC-IN: the fairness term, the effect of each lambda, the search and its verdicts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SAMPLE_DATA

from froc_cli.attacks import PGD, FeatureSpace
from froc_cli.core import (
    DataSpec,
    InputError,
    Objective,
    ThreatModel,
    TrainConfig,
    frame_fingerprint,
)
from froc_cli.methods import FrocInConfig, Trial, ValidationScore
from froc_cli.metrics import above_floor
from froc_cli.models import build_model, compute_loss_terms, fairness_gap, train_model
from froc_cli.workflows import TrainInConfig, TrainInResult, train_in_table

SPEC = DataSpec(protected="gender", protected_group=("female",), min_group_size=5)
THREAT = ThreatModel(eps=0.1, pgd_steps=3)
TRAIN = TrainConfig(model="mlp:16", epochs=60, lr=0.05, seed=0, device="cpu")


def _froc(**changes: object) -> FrocInConfig:
    base = FrocInConfig(
        lambda_f=0.0,
        lambda_r=0.0,
        threat=THREAT,
        train=TRAIN,
        eval_every=5,
        patience=0,
        warm_epochs=30,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _run(frame: pd.DataFrame, froc: FrocInConfig) -> TrainInResult:
    return train_in_table(frame, TrainInConfig(data=SPEC, froc=froc), source="planted")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """1,200 rows of sample_data/synthetic.csv: approvals biased against women through proxies
    (zip_area, occupation, hours, income), so a model that never sees gender is biased too."""
    return pd.read_csv(SAMPLE_DATA / "synthetic.csv").head(1200)


# --- F (eqs. 13-14) -------------------------------------------------------------------------


def test_fairness_gap_is_the_gap_of_mean_probabilities() -> None:
    probs = torch.tensor([0.2, 0.4, 0.9, 0.7, 0.5])
    a = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])  # a=0 protected
    # eq. 13 by hand: |mean(0.2, 0.4) - mean(0.9, 0.7, 0.5)| = |0.3 - 0.7|
    assert float(fairness_gap(probs, a)) == pytest.approx(0.4)
    assert float(fairness_gap(probs, a, signed=True)) == pytest.approx(-0.4)
    # eq. 14: c_i = C0 - a_i C0 - a_i C1 with C0 = 1/#(a=0), C1 = 1/#(a=1)
    c0, c1 = 1 / 2, 1 / 3
    c = [c0 - ai * c0 - ai * c1 for ai in a.tolist()]
    assert abs(sum(ci * p for ci, p in zip(c, probs.tolist(), strict=True))) == pytest.approx(0.4)


def test_fairness_gap_equals_the_bias_score_of_hard_decisions() -> None:
    """On 0/1 'probabilities' F is exactly S_B (eq. 7): the relaxation is tight there."""
    rng = np.random.default_rng(0)
    decisions = rng.integers(0, 2, size=50).astype(np.float32)
    groups = rng.integers(0, 2, size=50).astype(np.float32)
    expected = abs(decisions[groups == 0].mean() - decisions[groups == 1].mean())
    got = float(fairness_gap(torch.as_tensor(decisions), torch.as_tensor(groups)))
    assert got == pytest.approx(expected, abs=1e-6)


def test_fairness_gap_is_zero_without_one_group() -> None:
    assert float(fairness_gap(torch.tensor([0.3, 0.8]), torch.tensor([1.0, 1.0]))) == 0.0


def test_loss_terms_follow_eq_10() -> None:
    torch.manual_seed(0)
    x = torch.rand(40, 4)
    y = (torch.rand(40) > 0.5).float()
    a = (torch.rand(40) > 0.4).float()
    model = build_model("mlp:8", 4, seed=0)
    space = FeatureSpace.unconstrained(4)
    objective = Objective(lambda_f=0.7, lambda_r=0.3, threat=THREAT)
    terms = compute_loss_terms(model, x, y, a, objective, space)
    logits = model(x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    x_adv = PGD(model, space, eps=THREAT.eps, steps=THREAT.pgd_steps)(x, y)
    robust = torch.nn.functional.binary_cross_entropy_with_logits(model(x_adv), y)
    gap = fairness_gap(torch.sigmoid(logits), a)
    assert terms.bce.item() == pytest.approx(bce.item())
    assert terms.fairness.item() == pytest.approx(gap.item())
    assert terms.robustness.item() == pytest.approx(robust.item())
    assert terms.total.item() == pytest.approx((bce + 0.7 * gap + 0.3 * robust).item())


# --- training loop extensions ----------------------------------------------------------------


def test_gradient_tracing_does_not_change_training() -> None:
    torch.manual_seed(1)
    x = torch.rand(64, 5)
    y = (torch.rand(64) > 0.5).float()
    a = (torch.rand(64) > 0.5).float()
    space = FeatureSpace.unconstrained(5)
    objective = Objective(lambda_f=1.0, lambda_r=0.5, threat=THREAT)
    config = TrainConfig(model="mlp:8", epochs=5, lr=0.05, seed=0, device="cpu")
    plain, traced = build_model("mlp:8", 5, seed=0), build_model("mlp:8", 5, seed=0)
    train_model(plain, x, y, a, objective=objective, config=config, space=space)
    history = train_model(
        traced, x, y, a, objective=objective, config=config, space=space, trace_gradients=True
    )
    for p, q in zip(plain.parameters(), traced.parameters(), strict=True):
        assert torch.equal(p, q)
    angles = [h.grad_angle for h in history]
    assert all(angle is not None and 0.0 <= angle <= 180.0 for angle in angles)


def test_gradient_angle_is_nan_without_the_robustness_term() -> None:
    x = torch.rand(30, 3)
    y = (torch.rand(30) > 0.5).float()
    a = (torch.rand(30) > 0.5).float()
    history = train_model(
        build_model("lr", 3, seed=0),
        x,
        y,
        a,
        objective=Objective(lambda_f=1.0),
        config=TrainConfig(model="lr", epochs=2, seed=0, device="cpu"),
        space=FeatureSpace.unconstrained(3),
        trace_gradients=True,
    )
    assert history[0].grad_angle is not None and math.isnan(history[0].grad_angle)
    assert history[0].fairness > 0  # F is measured for the trace even at lambda_F = 0 weight


def test_pgd_box_equals_projecting_every_step() -> None:
    """The fixed-box PGD (speed) gives exactly the per-step projection of eq. 2."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(300, 7, generator=generator) * 1.2 - 0.1  # some rows outside [0, 1]
    y = (torch.rand(300, generator=generator) > 0.6).float()
    mutable = torch.ones(7, dtype=torch.bool)
    mutable[2] = False
    space = dataclasses.replace(FeatureSpace.unconstrained(7), mutable=mutable)
    model = build_model("mlp:8", 7, seed=0)
    attack = PGD(model, space, eps=0.1, steps=6)
    reference = x.clone()
    for _ in range(6):
        grad = attack.loss_gradient(reference, y)
        reference = space.project(reference + attack.step_size * grad.sign(), x, 0.1)
    assert torch.equal(attack(x, y), reference)


@pytest.mark.parametrize("spec", ["lr", "mlp:16", "mlp:16x8"])
def test_hand_written_input_gradient_equals_autograd(spec: str) -> None:
    """The attacks' fast path for froc's networks gives autograd's numbers exactly."""
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(257, 9, generator=generator)
    labels = (torch.rand(257, generator=generator) > 0.5).float()
    model = build_model(spec, 9, seed=5)
    x_grad = x.clone().requires_grad_(True)
    loss = -((2.0 * labels - 1.0) * model(x_grad)).sum()
    (expected,) = torch.autograd.grad(loss, x_grad)
    assert torch.equal(model.input_gradient(x, 1.0 - 2.0 * labels), expected)
    attack = PGD(model, FeatureSpace.unconstrained(9), eps=0.1, steps=4)
    assert torch.equal(attack.loss_gradient(x, labels), expected)

    class Wrapped(torch.nn.Module):  # not a TabularNet: the attack falls back to autograd
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(inputs)
            return out

    slow = PGD(Wrapped(), FeatureSpace.unconstrained(9), eps=0.1, steps=4)
    assert torch.equal(slow(x, labels), attack(x, labels))


# --- the effect of each lambda ---------------------------------------------------------------


def test_lambda_f_lowers_the_bias_score(planted: pd.DataFrame) -> None:
    plain = _run(planted, _froc(lambda_f=0.0))
    fair = _run(planted, _froc(lambda_f=3.0))
    assert plain.test.metrics["bias_score"] > 0.2  # the planted gap shows
    assert fair.test.metrics["bias_score"] < plain.test.metrics["bias_score"] - 0.1
    assert fair.validation.metrics["bias_score"] < plain.validation.metrics["bias_score"]


def test_lambda_r_raises_the_robustness_score(planted: pd.DataFrame) -> None:
    plain = _run(planted, _froc(lambda_r=0.0))
    robust = _run(planted, _froc(lambda_r=1.0))
    assert robust.test.metrics["robustness_pgd"] > plain.test.metrics["robustness_pgd"] + 0.1
    assert robust.outcome.lambda_r == 1.0 and robust.outcome.mode == "given"


def test_fgsm_training_attack_also_raises_robustness(planted: pd.DataFrame) -> None:
    plain = _run(planted, _froc(lambda_r=0.0))
    robust = _run(planted, _froc(lambda_r=1.0, attack="fgsm"))
    assert robust.test.metrics["robustness_pgd"] > plain.test.metrics["robustness_pgd"]


# --- splits ----------------------------------------------------------------------------------


def test_validation_is_carved_from_training_and_test_is_untouched(planted: pd.DataFrame) -> None:
    result = _run(planted, _froc(lambda_f=1.0))
    rows = result.rows
    assert rows["fit"] + rows["validation"] + rows["test"] == len(planted)
    assert rows["test"] == round(0.3 * len(planted))
    assert rows["validation"] == pytest.approx(0.2 * (len(planted) - rows["test"]), abs=1)


def test_same_seed_same_model(planted: pd.DataFrame) -> None:
    first = _run(planted, _froc(lambda_f=1.0, lambda_r=0.5))
    second = _run(planted, _froc(lambda_f=1.0, lambda_r=0.5))
    for p, q in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert first.test.metrics == second.test.metrics


# --- the search ------------------------------------------------------------------------------


@pytest.mark.parametrize("search", ["constrained", "grid"])
def test_search_for_fairness_only(planted: pd.DataFrame, search: str) -> None:
    froc = _froc(lambda_f=None, lambda_r=None, delta_f=0.1, margin=0.0, search=search)
    outcome = _run(planted, froc).outcome
    assert outcome.mode == "search" and outcome.search == search and outcome.feasible
    assert outcome.lambda_f > 0 and outcome.lambda_r == 0.0  # no robustness asked, none added
    assert outcome.chosen.score.bias_score <= 0.1 and not outcome.chosen.score.degenerate
    # plain training (lambda_F = 0) missed it
    assert max(t.score.bias_score for t in outcome.trials if t.lambda_f == 0.0) > 0.1
    assert all(t.lambda_r == 0.0 for t in outcome.trials)


@pytest.mark.parametrize("search", ["constrained", "grid"])
def test_search_for_robustness_only(planted: pd.DataFrame, search: str) -> None:
    froc = _froc(lambda_f=None, lambda_r=None, delta_r=0.6, margin=0.0, search=search)
    outcome = _run(planted, froc).outcome
    assert outcome.feasible
    # the constraint bound (the constrained search may then choose any epoch meeting it)
    assert max(t.lambda_r for t in outcome.trials) > 0 and outcome.lambda_f == 0.0
    assert all(t.lambda_f == 0.0 for t in outcome.trials)
    assert outcome.chosen.score.robustness >= 0.6
    plain = [t for t in outcome.trials if t.lambda_r == 0.0 and not t.score.degenerate]
    assert min(t.score.robustness for t in plain) < 0.6  # plain training missed it


def test_search_choice_and_report(planted: pd.DataFrame) -> None:
    """The chosen fit is the most accurate one meeting the targets (then the thresholds), else
    the closest; its lambdas and validation scores are the ones reported."""
    froc = _froc(
        lambda_f=None, lambda_r=None, delta_f=0.1, delta_r=0.6, max_trials=8, search="grid"
    )
    result = _run(planted, froc)
    outcome = result.outcome
    assert outcome.mode == "search" and 1 < len(outcome.trials) <= 8

    def order(trial: Trial) -> tuple[int, float]:
        if trial.meets_targets and not trial.score.degenerate:
            return 2, trial.score.accuracy
        if trial.meets_thresholds and not trial.score.degenerate:
            return 1, trial.score.accuracy
        return 0, -trial.violation

    best = max(outcome.trials, key=lambda t: (order(t), -t.index))
    assert outcome.chosen == best
    assert (outcome.lambda_f, outcome.lambda_r) == (best.lambda_f, best.lambda_r)
    assert outcome.feasible == (best.meets_thresholds and not best.score.degenerate)
    assert result.validation.metrics["bias_score"] == pytest.approx(best.score.bias_score)
    assert result.validation.metrics["robustness_pgd"] == pytest.approx(best.score.robustness_pgd)
    # the search aims inside the thresholds by one validation standard error
    assert outcome.targets["bias_score"] < 0.1 and outcome.targets["robustness"] > 0.6
    payload = result.to_dict()
    assert payload["chosen_trial"] == best.index
    assert len(payload["trials"]) == len(outcome.trials)


@pytest.mark.parametrize("search", ["constrained", "grid"])
def test_search_never_returns_a_constant_model_as_success(
    planted: pd.DataFrame, search: str
) -> None:
    """S_B = 0 exactly and S_R >= the majority floor: only a constant model gets there, and
    a constant model is never a success."""
    froc = _froc(
        lambda_f=None, lambda_r=None, delta_f=0.0, delta_r=0.9, max_trials=5, search=search
    )
    result = _run(planted, froc)
    assert not result.passed
    assert result.verdict in ("infeasible", "degenerate")
    assert not result.outcome.feasible
    payload = result.to_dict()
    assert payload["passed"] is False
    assert payload["trials"]  # the closest point found is reported
    trials = result.outcome.trials
    if any(not t.score.degenerate for t in trials):
        assert not result.outcome.chosen.score.degenerate  # closest: non-degenerate first


def test_fixed_lambda_with_threshold_is_checked_not_searched(planted: pd.DataFrame) -> None:
    froc = _froc(lambda_f=0.0, lambda_r=0.0, delta_f=0.01)
    result = _run(planted, froc)
    assert result.outcome.mode == "given"
    assert result.verdict == "infeasible"  # the plain model keeps the planted gap


def test_degenerate_flags() -> None:
    def score(accuracy: float, floor: float, rarer: float) -> ValidationScore:
        return ValidationScore(
            accuracy=accuracy,
            majority_floor=floor,
            bias_score=0.0,
            robustness_pgd=0.8,
            robustness=0.8,
            rarer_share=rarer,
            bce=0.5,
            fairness=0.0,
            robustness_loss=0.5,
            objective=1.0,
            n_rows=10_000,
            n_protected=4_000,
            n_unprotected=6_000,
            favourable_rate_protected=0.0,
            favourable_rate_unprotected=0.0,
        )

    assert score(0.80, 0.75, 0.01).near_constant
    assert score(0.75, 0.75, 0.20).below_floor
    assert score(0.74, 0.75, 0.20).degenerate
    assert score(0.755, 0.75, 0.20).degenerate  # within 2 standard errors (0.0087) of the floor
    assert not score(0.80, 0.75, 0.20).degenerate


def test_above_floor_uses_two_standard_errors() -> None:
    # COMPAS-like validation split: floor 0.545 on 926 rows -> margin 2 * 0.0164
    assert not above_floor(0.5637, 0.5451, 926)
    assert above_floor(0.60, 0.5451, 926)
    assert above_floor(0.80, 0.75, 6_300) and not above_floor(0.755, 0.75, 6_300)


def test_trace_has_one_row_per_epoch(planted: pd.DataFrame) -> None:
    result = _run(planted, _froc(lambda_f=1.0, lambda_r=0.5, trace=True, train=TRAIN))
    trace = pd.DataFrame(result.outcome.trace)
    assert len(trace) == TRAIN.epochs
    assert trace["epoch"].tolist() == list(range(1, TRAIN.epochs + 1))
    for column in ("loss", "bce", "fairness", "robustness", "grad_angle_deg"):
        assert trace[column].notna().all(), column
    assert trace["val_bias_score"].between(0, 1).all()
    assert trace["val_robustness_pgd"].between(0, 1).all()
    assert trace["grad_angle_deg"].between(0, 180).all()


def test_early_stopping_stops_a_stale_fit(planted: pd.DataFrame) -> None:
    result = _run(
        planted, _froc(lambda_f=1.0, patience=2, train=dataclasses.replace(TRAIN, epochs=400))
    )
    assert result.outcome.chosen.epochs_run < 400
    assert result.outcome.chosen.epochs_run - result.outcome.chosen.best_epoch == 2 * 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lambda_f": None, "lambda_r": None}, "--lambda-f"),
        ({"lambda_f": -1.0}, "--lambda-f -1.0"),
        ({"delta_f": 1.5}, "--delta-f 1.5"),
        ({"attack": "cw"}, "--attack cw"),
        ({"val_size": 0.0}, "--val-size"),
    ],
)
def test_bad_settings_are_input_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _froc(**changes)


def test_fingerprint_ignores_the_index_but_not_values(planted: pd.DataFrame) -> None:
    shifted = planted.set_index(planted.index + 10)
    assert frame_fingerprint(planted) == frame_fingerprint(shifted)
    changed = planted.copy()
    changed.loc[0, "age"] += 1
    assert frame_fingerprint(changed) != frame_fingerprint(planted)
