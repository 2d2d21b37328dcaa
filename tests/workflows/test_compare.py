"""Tests of the compare engine (froc_cli/workflows/_compare.py), the sequential baselines and
deployed pipelines it evaluates (froc_cli/methods/_sequential.py, _pipelines.py) and its plot
(froc_cli/reports/_plot.py).

The sequential baselines are checked against their definitions (paper 7.1): RbF trains on the
training rows plus one PGD example per row crafted on the plain target (labelled with the source
row's label, weight lambda), then Reweighing weights P(a)P(y)/P(a,y) of the augmented data or the
Disparate Impact Remover fitted on it; FbR applies the fairness pre-processing, then PGD
adversarial training (Objective(lambda_r=lambda)) warm-started from the fair model. The training
calls are intercepted and compared with the independent implementations in ``_baselines``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core import (
    DataSpec,
    InputError,
    InsufficientDataError,
    Objective,
    ThreatModel,
    TrainConfig,
)
from froc_cli.methods import (
    GroupBlind,
    RepairedPipeline,
    compute_reweighing_weights,
    fit_disparate_impact_repair,
    select_on_validation,
    with_group_column,
)
from froc_cli.metrics import is_degenerate
from froc_cli.models import build_model
from froc_cli.reports import pareto_front, plot_compare, render_compare_markdown
from froc_cli.workflows import (
    METHODS,
    CompareConfig,
    CompareContext,
    CompareResult,
    MethodRow,
    MethodSpec,
    compare_table,
)

SEQUENTIAL = ("plain", "rbf-rw", "rbf-dir", "fbr-rw", "fbr-dir")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    """sample_data/synthetic.csv: a planted gender bias carried by proxies (zip_area...)."""
    return pd.read_csv(Path(__file__).resolve().parents[2] / "sample_data" / "synthetic.csv")


def _config(**changes: Any) -> CompareConfig:
    base = CompareConfig(
        data=DataSpec(protected="gender"),
        delta_f=0.1,
        delta_r=0.5,
        train=TrainConfig(model="mlp:16", epochs=60, device="cpu"),
        lambdas=(0.0, 1.0),
        adv_epochs=20,
        methods=SEQUENTIAL,
        froc_in_budget_s=5.0,
        froc_pre_rounds=2,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def sequential(synthetic: pd.DataFrame) -> CompareResult:
    return compare_table(synthetic, _config(), source="synthetic.csv")


def _grid(result: CompareResult, method: str, setting: str) -> dict[str, float]:
    for point in result.repeats[0].grid:
        if point.method == method and point.setting == setting:
            return point.test
    raise KeyError((method, setting))


def _row(result: CompareResult, method: str) -> Any:
    return next(row for row in result.repeats[0].rows if row.method == method)


# --------------------------------------------------------------------------------------------
# selection on validation


def test_selection_prefers_the_most_accurate_setting_meeting_both() -> None:
    points = [
        {"accuracy": 0.90, "bias_score": 0.20, "robustness_pgd": 0.9},  # unfair
        {"accuracy": 0.80, "bias_score": 0.05, "robustness_pgd": 0.6},  # meets both
        {"accuracy": 0.85, "bias_score": 0.04, "robustness_pgd": 0.7},  # meets both, better
        {"accuracy": 0.95, "bias_score": 0.01, "robustness_pgd": 0.1},  # not robust
    ]
    assert select_on_validation(points, 0.1, 0.5) == 2


def test_selection_without_a_feasible_setting_takes_the_smallest_shortfall() -> None:
    points = [
        {"accuracy": 0.90, "bias_score": 0.30, "robustness_pgd": 0.45},  # 0.2 + 0.05
        {"accuracy": 0.70, "bias_score": 0.12, "robustness_pgd": 0.40},  # 0.02 + 0.10
        {"accuracy": 0.80, "bias_score": 0.15, "robustness_pgd": 0.43},  # 0.05 + 0.07
        {"accuracy": 0.99, "bias_score": math.nan, "robustness_pgd": 0.9},  # undefined: last
    ]
    assert select_on_validation(points, 0.1, 0.5) == 1
    tie = [points[1], {**points[1], "accuracy": 0.75}]
    assert select_on_validation(tie, 0.1, 0.5) == 1
    with pytest.raises(InputError):
        select_on_validation([], 0.1, 0.5)


def test_a_degenerate_setting_never_counts() -> None:
    constant = {"accuracy": 0.66, "majority_floor": 0.66, "bias_score": 0.0, "robustness_pgd": 0.66}
    useful = {"accuracy": 0.80, "majority_floor": 0.66, "bias_score": 0.15, "robustness_pgd": 0.55}
    assert select_on_validation([constant, useful], 0.1, 0.5) == 1
    assert is_degenerate(constant) and not is_degenerate(useful)
    # One row above the floor is no evidence of a classifier: 2 standard errors are needed
    # (0.0268 on 1200 rows at a floor of 0.664), and 2% of the decisions is near constant.
    assert is_degenerate(
        {**useful, "accuracy": 0.664 + 0.02, "majority_floor": 0.664, "rows": 1200}
    )
    assert not is_degenerate(
        {**useful, "accuracy": 0.664 + 0.03, "majority_floor": 0.664, "rows": 1200}
    )
    assert is_degenerate({**useful, "rarer_decision_share": 0.02})
    assert not is_degenerate({"accuracy": 0.5})  # no floor: nothing to judge against
    row = MethodRow(
        method="plain",
        label="plain",
        seed=0,
        status="ok",
        setting="",
        metrics=constant,
        validation={},
        params={},
        seconds=1.0,
        meets_fairness=True,
        meets_robustness=True,
        degenerate=True,
    )
    assert not row.meets_both and replace(row, degenerate=False).meets_both
    assert not replace(row, degenerate=None).meets_both


# --------------------------------------------------------------------------------------------
# deployed pipelines


def _linear(n_features: int, seed: int = 0) -> nn.Module:
    return build_model("lr", n_features, seed=seed)


def test_repaired_pipeline_is_the_repair_then_the_model_with_exact_gradient_signs() -> None:
    rng = np.random.default_rng(0)
    n = 300
    a = (rng.random(n) < 0.5).astype(np.float32)
    x = np.column_stack([rng.beta(2, 5, n) + 0.3 * a, rng.random(n)]).clip(0, 1).astype(np.float32)
    repair = fit_disparate_impact_repair(x, a, columns=[0])
    model = _linear(2)
    pipeline = RepairedPipeline(model, repair)
    x_ext = torch.as_tensor(np.column_stack([x, a]), dtype=torch.float32)
    expected = model(torch.as_tensor(repair.apply(x, a), dtype=torch.float32))
    assert torch.allclose(pipeline(x_ext), expected, atol=1e-6)

    # Gradient signs through the repair match finite differences wherever the repair moves.
    x_ext.requires_grad_(True)
    pipeline(x_ext).sum().backward()
    assert x_ext.grad is not None
    grad = x_ext.grad[:, :2].numpy()
    h = 1e-3
    for j in range(2):
        bumped = x.copy()
        bumped[:, j] += h
        diff = (
            (
                model(torch.as_tensor(repair.apply(bumped, a), dtype=torch.float32))
                - model(torch.as_tensor(repair.apply(x, a), dtype=torch.float32))
            )
            .detach()
            .numpy()
        )
        moving = np.abs(diff) > 1e-7
        assert moving.mean() > 0.8
        assert np.all(np.sign(diff[moving]) == np.sign(grad[moving, j]))


def test_attacks_on_the_extended_input_never_change_the_group() -> None:
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.random((64, 3)), dtype=torch.float32)
    a = torch.as_tensor((rng.random(64) < 0.5).astype(np.float32))
    y = torch.as_tensor((rng.random(64) < 0.5).astype(np.float32))
    model = _linear(3, seed=1)
    space = FeatureSpace.unconstrained(3)
    wide = with_group_column(space)
    threat = ThreatModel(eps=0.1)
    x_ext = torch.cat([x, a[:, None]], dim=1)
    adv_ext = make_attack("pgd", GroupBlind(model), wide, threat)(x_ext, y)
    adv = make_attack("pgd", model, space, threat)(x, y)
    assert torch.equal(adv_ext[:, -1], a)
    assert torch.allclose(adv_ext[:, :-1], adv)


# --------------------------------------------------------------------------------------------
# the sequential baselines against their definitions


class _Spy:
    """Records every call of CompareContext.train (and what it returned)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = CompareContext.train
        spy = self

        def train(self: CompareContext, *args: Any, **kwargs: Any) -> nn.Module:
            model = original(self, *args, **kwargs)
            spy.calls.append({"ctx": self, "args": args, "kwargs": kwargs, "model": model})
            return model

        monkeypatch.setattr(CompareContext, "train", train)


def _run_with_spy(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame, method: str
) -> tuple[_Spy, CompareResult]:
    spy = _Spy()
    spy.install(monkeypatch)
    config = _config(
        methods=(method,),
        lambdas=(0.0, 0.5),
        adv_epochs=3,
        train=TrainConfig(model="mlp:8", epochs=5, device="cpu"),
    )
    result = compare_table(frame.iloc[:1500], config, source="s")
    assert _row(result, method).ok, _row(result, method).reason
    return spy, result


@pytest.mark.parametrize("fairness", ["rw", "dir"])
def test_robustness_before_fairness_follows_its_definition(
    monkeypatch: pytest.MonkeyPatch, synthetic: pd.DataFrame, fairness: str
) -> None:
    spy, _ = _run_with_spy(monkeypatch, synthetic, f"rbf-{fairness}")
    transfer, plain, *grid = spy.calls
    ctx: CompareContext = plain["ctx"]
    fit = ctx.fit
    assert transfer["kwargs"]["seed"] == ctx.seed + 1000  # the independent transfer source
    assert plain["args"][0] is fit.x and plain["kwargs"].get("sample_weight") is None
    # One PGD example per training row, crafted on the plain target, labelled like its source.
    expected_adv = make_attack("pgd", plain["model"], ctx.space, ctx.threat)(fit.x, fit.y)
    x_aug = torch.cat([fit.x, expected_adv])
    y_aug = torch.cat([fit.y, fit.y]).numpy()
    a_aug = torch.cat([fit.a, fit.a]).numpy()
    if fairness == "rw":
        fair_input = x_aug.numpy()
        fair_weights = compute_reweighing_weights(y_aug, a_aug)
    else:
        repair = fit_disparate_impact_repair(
            x_aug.double().numpy(), a_aug, columns=ctx.encoder.numeric_features()
        )
        fair_input = repair.apply(x_aug.double().numpy(), a_aug)
        fair_weights = np.ones(len(y_aug))
    base, augmented = grid  # lambda = 0, then lambda = 0.5 continuing from it
    assert [c["kwargs"].get("objective") for c in grid] == [None, None]  # plain training
    n = len(fit)
    # lambda = 0: the added rows weigh nothing, so the fit uses the training rows alone.
    x, y, a = base["args"]
    np.testing.assert_allclose(x.numpy(), fair_input[:n], atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), y_aug[:n])
    np.testing.assert_array_equal(a.numpy(), a_aug[:n])
    np.testing.assert_allclose(base["kwargs"]["sample_weight"].numpy(), fair_weights[:n], rtol=1e-6)
    assert base["kwargs"].get("model") is None
    x, y, a = augmented["args"]
    np.testing.assert_allclose(x.numpy(), fair_input, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), y_aug)
    np.testing.assert_array_equal(a.numpy(), a_aug)
    row_weight = np.concatenate([np.ones(n), np.full(n, 0.5)])
    np.testing.assert_allclose(
        augmented["kwargs"]["sample_weight"].numpy(), fair_weights * row_weight, rtol=1e-6
    )
    assert augmented["kwargs"]["model"] is base["model"]
    assert augmented["kwargs"]["epochs"] == 3
    assert float((expected_adv - fit.x).abs().max()) <= ctx.threat.eps + 1e-6


@pytest.mark.parametrize("fairness", ["rw", "dir"])
def test_fairness_before_robustness_follows_its_definition(
    monkeypatch: pytest.MonkeyPatch, synthetic: pd.DataFrame, fairness: str
) -> None:
    spy, result = _run_with_spy(monkeypatch, synthetic, f"fbr-{fairness}")
    _transfer, base, adversarial = spy.calls  # lambda=0 reuses the fair model
    ctx: CompareContext = base["ctx"]
    fit = ctx.fit
    x, y, a = base["args"]
    np.testing.assert_array_equal(y.numpy(), fit.y.numpy())
    np.testing.assert_array_equal(a.numpy(), fit.a.numpy())
    if fairness == "rw":
        np.testing.assert_array_equal(x.numpy(), fit.x.numpy())
        weights = compute_reweighing_weights(fit.y.numpy(), fit.a.numpy())
        np.testing.assert_allclose(base["kwargs"]["sample_weight"].numpy(), weights, rtol=1e-6)
    else:
        repair = fit_disparate_impact_repair(
            fit.x.double().numpy(), fit.a.numpy(), columns=ctx.encoder.numeric_features()
        )
        np.testing.assert_allclose(
            x.numpy(), repair.apply(fit.x.double().numpy(), fit.a.numpy()), atol=1e-5
        )
        assert base["kwargs"].get("sample_weight") is None
    assert base["kwargs"].get("objective") is None
    objective: Objective = adversarial["kwargs"]["objective"]
    assert (objective.lambda_r, objective.lambda_f, objective.attack) == (0.5, 0.0, "pgd")
    assert objective.threat == ctx.threat
    assert adversarial["kwargs"]["model"] is base["model"]  # warm start from the fair model
    assert adversarial["kwargs"]["epochs"] == 3
    assert adversarial["args"][0] is x
    chosen = [p for p in result.repeats[0].grid if p.chosen]
    assert len(chosen) == 1 and _row(result, f"fbr-{fairness}").params == chosen[0].params


# --------------------------------------------------------------------------------------------
# the comparison end to end


def test_rows_and_grid_are_complete(sequential: CompareResult) -> None:
    rows = sequential.repeats[0].rows
    assert [row.method for row in rows] == list(SEQUENTIAL)
    assert all(row.ok for row in rows), [row.reason for row in rows]
    for row in rows:
        for key in ("accuracy", "bias_score", "robustness_fgsm", "robustness_pgd"):
            assert 0.0 <= row.metrics[key] <= 1.0
        for key in ("transfer_fgsm", "transfer_pgd"):
            assert 0.0 <= row.metrics[key] <= 1.0
        assert row.metrics["majority_floor"] == pytest.approx(0.664, abs=0.01)
        assert row.meets_fairness == (row.metrics["bias_score"] <= 0.1)
        assert row.meets_robustness == (row.metrics["robustness_pgd"] >= 0.5)
        assert row.seconds > 0
    grid = sequential.repeats[0].grid
    assert len(grid) == 4 * 2
    assert sum(p.chosen for p in grid) == 4
    # The row of a grid method is its chosen grid point.
    for row in rows[1:]:
        chosen = next(p for p in grid if p.method == row.method and p.chosen)
        assert row.metrics == chosen.test
    assert sequential.repeats[0].counts == {
        "fit": 2240,
        "validation": 560,
        "test": 1200,
        "features": 22,
    }


def test_reweighing_lowers_the_bias_of_a_planted_bias_sample(sequential: CompareResult) -> None:
    plain = _row(sequential, "plain").metrics["bias_score"]
    assert plain > 0.15  # the proxies carry the planted gap into a model without gender
    assert _grid(sequential, "fbr-rw", "lambda=0")["bias_score"] < plain - 0.04
    # At lambda = 0 the adversarial rows weigh nothing: RbF-RW is FbR-RW.
    assert _grid(sequential, "rbf-rw", "lambda=0") == _grid(sequential, "fbr-rw", "lambda=0")


def test_adversarial_training_raises_robustness(sequential: CompareResult) -> None:
    plain = _row(sequential, "plain").metrics["robustness_pgd"]
    for method in ("fbr-rw", "fbr-dir"):
        assert _grid(sequential, method, "lambda=1")["robustness_pgd"] > plain + 0.04


def test_same_seed_same_numbers(synthetic: pd.DataFrame, sequential: CompareResult) -> None:
    again = compare_table(synthetic, _config(methods=("plain", "fbr-rw")), source="x")
    for method in ("plain", "fbr-rw"):
        assert _row(again, method).metrics == _row(sequential, method).metrics


def test_a_failing_method_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, synthetic: pd.DataFrame
) -> None:
    def broken(ctx: CompareContext) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setitem(METHODS, "rbf-rw", MethodSpec("rbf-rw", "RbF-RW", "broken", broken))
    result = compare_table(
        synthetic, _config(methods=("plain", "rbf-rw", "fbr-rw"), lambdas=(0.0,)), source="s"
    )
    failed = _row(result, "rbf-rw")
    assert failed.status == "failed" and failed.reason == "RuntimeError: boom second line"
    assert failed.metrics == {} and not failed.meets_both
    assert _row(result, "plain").ok and _row(result, "fbr-rw").ok
    summary = result.summary("rbf-rw")
    assert (summary.runs, summary.failures) == (0, 1)
    assert "RuntimeError: boom second line" in render_compare_markdown(result)
    json.dumps(result.to_dict(), allow_nan=False)


def test_repeats_give_mean_and_sd_over_seeds(synthetic: pd.DataFrame) -> None:
    result = compare_table(
        synthetic, _config(methods=("plain",), repeats=3, delta_f=1.0, delta_r=0.0), source="s"
    )
    assert [r.seed for r in result.repeats] == [0, 1, 2]
    values = [r.rows[0].metrics["accuracy"] for r in result.repeats]
    assert len(set(values)) > 1  # another split and initialisation per seed
    summary = result.summary("plain")
    assert summary.mean["accuracy"] == pytest.approx(np.mean(values))
    assert summary.sd["accuracy"] == pytest.approx(np.std(values, ddof=1))
    assert summary.meets_both == 3 and summary.always_meets_both and result.any_meets_both
    payload = result.to_dict()
    assert payload["methods"][0]["mean"]["accuracy"] == pytest.approx(np.mean(values))
    assert "± " in render_compare_markdown(result)


def test_threads_apply_during_the_run_and_are_restored(synthetic: pd.DataFrame) -> None:
    before = torch.get_num_threads()
    result = compare_table(synthetic, _config(methods=("plain",), threads=2), source="s")
    assert result.settings["threads"] == 2
    assert torch.get_num_threads() == before
    assert "2 torch thread(s)" in render_compare_markdown(result)


def test_progress_is_one_line_per_step_naming_the_seed_and_method(
    synthetic: pd.DataFrame,
) -> None:
    lines: list[str] = []
    train = TrainConfig(model="lr", epochs=5, device="cpu")
    compare_table(
        synthetic.iloc[:1500],
        _config(methods=("plain",), repeats=2, train=train),
        source="s",
        progress=lines.append,
    )
    assert all(isinstance(line, str) for line in lines)
    assert lines[0] == "[1/2] seed 0 (1/2): setup: training the transfer source"
    assert "[1/2] seed 0 (1/2): plain: running" in lines
    assert "[2/2] seed 1 (2/2): plain: running" in lines
    assert lines[-1] == "[2/2] seed 1 (2/2): plain: done"


def test_froc_methods_plug_in(synthetic: pd.DataFrame) -> None:
    config = _config(
        methods=("plain", "froc-in", "froc-pre"),
        train=TrainConfig(model="mlp:8", epochs=20, device="cpu"),
    )
    result = compare_table(synthetic.iloc[:2000], config, source="s")
    for method in ("froc-in", "froc-pre"):
        row = _row(result, method)
        assert row.ok, row.reason
        assert set(row.validation) >= {"accuracy", "bias_score", "robustness_pgd"}
    assert {"lambda_f", "lambda_r", "trials"} <= set(_row(result, "froc-in").params)
    assert _row(result, "froc-pre").params["rounds"] <= 2


def test_massaging_trains_the_plain_target_on_massaged_labels(
    monkeypatch: pytest.MonkeyPatch, synthetic: pd.DataFrame
) -> None:
    import froc_cli.workflows._compare as engine

    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]] = []
    real_train = engine.train_model

    def spy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, **kw: Any) -> Any:
        calls.append((x, y.clone(), a, kw["config"].seed))
        return real_train(net, x, y, a, **kw)

    monkeypatch.setattr(engine, "train_model", spy)
    train = TrainConfig(model="lr", epochs=10, device="cpu")
    config = _config(methods=("massaging", "plain"), train=train)
    assert config.selected_methods == ("plain", "massaging")
    result = compare_table(synthetic.iloc[:1500], config, source="s")
    assert [row.method for row in result.repeats[0].rows] == ["plain", "massaging"]
    row = _row(result, "massaging")
    assert row.ok, row.reason
    assert row.label == "Massaging (Kamiran-Calders)"
    for key in ("accuracy", "bias_score", "robustness_pgd"):
        assert 0.0 <= row.metrics[key] <= 1.0
        assert key in row.validation
    pairs = row.params["pairs"]
    assert pairs > 0 and row.params["flipped"] == 2 * pairs
    # the transfer source, plain, then massaging: same rows and seed as plain, new labels
    (_, _, _, _), (x0, y0, a0, seed0), (x1, y1, a1, seed1) = calls
    assert x1 is x0 and a1 is a0 and seed1 == seed0
    changed = (y1 != y0).numpy()
    group = a0.numpy()
    assert int(changed.sum()) == 2 * pairs
    assert np.all(y1.numpy()[changed & (group == 0)] == 1)
    assert np.all(y1.numpy()[changed & (group == 1)] == 0)
    assert int((changed & (group == 0)).sum()) == pairs
    # both groups' favourable label rates are equal after massaging (up to whole rows)
    n0, n1 = int((group == 0).sum()), int((group == 1).sum())
    gap = row.params["label_rate_a1"] - row.params["label_rate_a0"]
    assert abs(gap) <= 0.5 * (1 / n0 + 1 / n1) + 1e-12
    assert "| Massaging (Kamiran-Calders) |" in render_compare_markdown(result)
    json.dumps(result.to_dict(), allow_nan=False)


def test_sweep_adds_front_points(synthetic: pd.DataFrame) -> None:
    config = _config(
        methods=("plain",),
        sweep=True,
        sweep_lambdas_f=(0.0, 1.0),
        sweep_lambdas_r=(0.0,),
        sweep_deltas_f=(0.1,),
        sweep_deltas_r=(0.3,),
        train=TrainConfig(model="mlp:8", epochs=10, device="cpu"),
    )
    result = compare_table(synthetic.iloc[:2000], config, source="s")
    sweep = [p for p in result.repeats[0].grid if p.kind == "sweep"]
    assert [(p.method, p.setting) for p in sweep] == [
        ("froc-in", "lambda_F=0, lambda_R=0"),
        ("froc-in", "lambda_F=1, lambda_R=0"),
        ("froc-pre", "delta_F=0.1, delta_R=0.3"),
    ], result.repeats[0].notes


def test_bad_configuration_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--delta-f"):
        _config(delta_f=1.5)
    with pytest.raises(InputError, match="--methods 'nope'"):
        _config(methods=("nope",))
    with pytest.raises(InputError, match="--lambdas"):
        _config(lambdas=(-1.0,))
    with pytest.raises(InputError, match="--repeats"):
        _config(repeats=0)
    with pytest.raises(InputError, match="model"):
        _config(train=TrainConfig(model="cnn"))


def test_too_little_data_is_reported(synthetic: pd.DataFrame) -> None:
    # 542 women in the test split, 253 in the validation split.
    for minimum, where in ((600, "in the test split"), (300, "in the validation split")):
        data = DataSpec(protected="gender", min_group_size=minimum)
        with pytest.raises(InsufficientDataError, match=where):
            compare_table(synthetic, _config(data=data, methods=("plain",)), source="s")


def test_report_lists_every_method_and_setting(sequential: CompareResult) -> None:
    text = render_compare_markdown(sequential, plot="c.png")
    for label in ("plain", "RbF-RW", "RbF-DIR", "FbR-RW", "FbR-DIR"):
        assert f"| {label} |" in text
    assert text.count("| grid |") == 8
    assert "![accuracy over the (S_R, S_B) plane](c.png)" in text
    json.dumps(sequential.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------------------------
# the plot


def test_pareto_front_keeps_the_non_dominated_points() -> None:
    points = [(0.2, 0.10), (0.5, 0.05), (0.4, 0.20), (0.9, 0.30), (0.5, 0.05), (math.nan, 0.0)]
    assert pareto_front(points) == [(0.5, 0.05), (0.9, 0.30)]
    assert pareto_front([]) == []


def test_plot_writes_a_png(tmp_path: Path, sequential: CompareResult) -> None:
    out = plot_compare(sequential, tmp_path / "figs" / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["c.png"]  # no temporary left behind
    with pytest.raises(InputError, match=r"expected \.png, \.svg or \.pdf"):
        plot_compare(sequential, tmp_path / "c.gif")


def test_plot_without_matplotlib_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sequential: CompareResult
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InputError, match=r"pip install 'froc\[plot\]'"):
        plot_compare(sequential, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
