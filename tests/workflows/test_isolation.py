"""Isolation: no choice of ``froc train-in``, ``froc compare`` or FRoC-PRE's Algorithm 1
(:func:`froc_cli.methods.preprocess_table`) reads the held-out test split.

Each workflow runs on a tiny seeded frame with a planted bias (``conftest.make_frame``) and
again on copies of it that differ only in the rows of the test split, as the engine's own
:func:`froc_cli.data.split_indices` draws it for the seed and test fraction the workflows use:

* ``labels``: some 30% of the test rows' labels are changed;
* ``labels+features``: the same label changes, and every test row's age and income nudged
  outward, past both ends of the training rows' ranges (so a range fitted on test rows shows).

Every choice must come out identical, bit for bit: train-in's lambda_F/lambda_R, its whole
trial sequence (lambdas, epochs, validation scores) and the chosen model's weights; compare's
pick per method (the chosen grid point of every sequential baseline, FRoC-IN's searched lambdas
and trials, FRoC-PRE's rounds and edits, the massaging flips), the weights of every deployed
and grid model, and every validation figure; Algorithm 1's trajectory, chosen round, flipped
rows and added rows, its surrogate's weights after every round and every fresh target's.
Verdicts judged on the test rows (train-in's ``verdict``, FRoC-PRE's ``met``) are figures, not
choices, and are not compared. The figures measured on the test split must change (in every
compared method too), so each test also proves that the perturbation reached the rows it
evaluates on: a test that could not fail would prove nothing.

Why the labels are changed the way they are
    The split is stratified by (label, group) (``split_indices`` in ``froc_cli/data/_splits.py``):
    the labels decide which rows are test rows. Flipping a test label moves the row to another
    stratum, and the changed stratum sizes draw a different split altogether, as another seed
    would; a change of a group's label rate can also change the default protected group, the
    group of the lowest favourable rate over all rows (``_resolve_group`` in
    ``froc_cli/data/_dataset.py``). That is a dependence of the *split* on the labels, not a
    choice made on test figures, and an arbitrary flip cannot tell the two apart. So the labels
    are only swapped within runs of consecutive same-group rows that all lie in the test split
    (a label-1 and a label-0 row of such a run trade labels): every stratum keeps its size and
    the ranks within it that held test rows still hold test rows, so the engine draws the same
    split, which :func:`_perturbed` checks with ``split_indices`` before any workflow runs.

``froc preprocess`` (``prepare_trainer_file`` in ``froc_cli/workflows/_preprocess.py``) has no
test split: it edits all rows and estimates what outside trainers get by K-fold cross-fitting,
so there are no test rows to perturb; it is left out here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame
from torch import nn

from froc_cli.core import DataSpec, ThreatModel, TrainConfig
from froc_cli.data import carve_validation, prepare_data, split_indices
from froc_cli.methods import FrocInConfig, PreprocessConfig, PreprocessResult, preprocess_table
from froc_cli.methods import _froc_pre as _froc_pre_module
from froc_cli.workflows import (
    METHODS,
    CompareConfig,
    CompareContext,
    CompareResult,
    TrainInConfig,
    TrainInResult,
    compare_table,
    train_in_table,
)

SPEC = DataSpec(protected="gender", min_group_size=5)
SEED = 0
TEST_SIZE = 0.3
VAL_SIZE = 0.2
N_ROWS = 600
LABEL = "approved"
VARIANTS = ("labels", "labels+features")
THREAT = ThreatModel(eps=0.1, pgd_steps=3)
TRAIN = TrainConfig(model="mlp:16", epochs=60, lr=0.02, seed=SEED, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------------
# the perturbation


def _split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The engine's (train, test) row positions of ``frame`` for SEED and TEST_SIZE."""
    prepared = prepare_data(frame, SPEC, source="isolation")
    return split_indices(prepared.y, prepared.a, test_size=TEST_SIZE, seed=SEED)


def _swap_test_labels(frame: pd.DataFrame, test: np.ndarray) -> pd.DataFrame:
    """``frame`` with labels swapped between label-1 and label-0 rows of each run of consecutive
    same-group rows that all lie in the test split (see the module docstring)."""
    in_test = np.zeros(len(frame), dtype=bool)
    in_test[test] = True
    y = frame[LABEL].to_numpy().copy()
    groups = frame["gender"].to_numpy()
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        # Cut the group's rows where a training row interrupts them: runs of test rows.
        for run in np.split(rows, np.flatnonzero(~in_test[rows])):
            run = run[in_test[run]]
            ones, zeros = run[y[run] == 1], run[y[run] == 0]
            k = min(len(ones), len(zeros))
            y[ones[:k]], y[zeros[:k]] = 0, 1
    out = frame.copy()
    out[LABEL] = y
    return out


def _nudge_test_features(frame: pd.DataFrame, test: np.ndarray) -> pd.DataFrame:
    """``frame`` with every test row's age moved by one year and income by 0.5 to 5 (seeded),
    away from the column's median and not clipped: the test rows at the ends of a range then
    leave the training rows' range, so that an encoder or attack space fitted on test rows
    would differ."""
    rng = np.random.default_rng(7)
    steps = {
        "age": np.ones(len(test), dtype=np.int64),
        "income": np.round(rng.uniform(0.5, 5.0, size=len(test)), 2),
    }
    out = frame.copy()
    for column, step in steps.items():
        values = out[column].to_numpy().copy()
        outward = np.where(values[test] >= np.median(values), 1, -1)
        values[test] = np.round(values[test] + outward * step, 2)
        out[column] = values
    return out


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(N_ROWS, seed=3)


@pytest.fixture(scope="module")
def held_out(frame: pd.DataFrame) -> np.ndarray:
    return _split(frame)[1]


def _perturbed(frame: pd.DataFrame, variant: str) -> pd.DataFrame:
    """``frame`` perturbed in its test rows only (``variant``), checked to keep the split."""
    train, test = _split(frame)
    out = _swap_test_labels(frame, test)
    if variant == "labels+features":
        out = _nudge_test_features(out, test)
    changed = np.flatnonzero((out != frame).any(axis=1).to_numpy())
    assert set(changed) <= set(test), "the perturbation touched a training row"
    relabelled = int((out[LABEL] != frame[LABEL]).sum())
    assert relabelled >= 0.15 * len(test), f"only {relabelled} of {len(test)} test labels changed"
    # The engine draws the same split (and validation carve) and resolves the same roles.
    again_train, again_test = _split(out)
    np.testing.assert_array_equal(again_train, train)
    np.testing.assert_array_equal(again_test, test)
    before = prepare_data(frame, SPEC, source="isolation")
    after = prepare_data(out, SPEC, source="isolation")
    assert after.protected_values == before.protected_values
    for fit_val_before, fit_val_after in zip(
        carve_validation(before, train, val_size=VAL_SIZE, seed=SEED),
        carve_validation(after, train, val_size=VAL_SIZE, seed=SEED),
        strict=True,
    ):
        np.testing.assert_array_equal(fit_val_after, fit_val_before)
    return out


T = TypeVar("T")


def _on_every_variant(run: Callable[[pd.DataFrame], T], frame: pd.DataFrame) -> dict[str, T]:
    """``run`` on the table as given ("base") and on each perturbed variant of it."""
    return {"base": run(frame), **{v: run(_perturbed(frame, v)) for v in VARIANTS}}


def test_the_perturbation_changes_only_test_rows_and_keeps_the_split(
    frame: pd.DataFrame, held_out: np.ndarray
) -> None:
    for variant in VARIANTS:
        out = _perturbed(frame, variant)  # asserts what the name says
        features_changed = (out[["age", "income"]] != frame[["age", "income"]]).any(axis=1)
        assert features_changed.any() == (variant == "labels+features")
    # The nudged test rows reach past both ends of the training rows' numeric ranges.
    nudged = _perturbed(frame, "labels+features")
    train = np.setdiff1d(np.arange(len(frame)), held_out)
    for column in ("age", "income"):
        inside, outside = frame[column].iloc[train], nudged[column].iloc[held_out]
        assert outside.min() < inside.min() and outside.max() > inside.max(), column

    # Per group, the test rows keep their label counts (the strata sizes of the split).
    def counts(data: pd.DataFrame) -> dict[Any, int]:
        return data.iloc[held_out].groupby(["gender", LABEL]).size().to_dict()

    assert counts(_perturbed(frame, "labels")) == counts(frame)


# --------------------------------------------------------------------------------------------
# helpers


def _strip(value: Any) -> Any:
    """``value`` without wall-clock entries (keys naming seconds), recursively."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if "seconds" not in str(k)}
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


def _weights(model: nn.Module) -> dict[str, np.ndarray]:
    """A model's parameters and buffers (and a DIR repair's fitted values), as numpy."""
    out = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    repair = getattr(model, "repair", None)
    if repair is not None:
        out["repair.columns"] = np.asarray(repair.columns)
        for i, pair in enumerate(repair.group_sorted_values):
            for g, values in enumerate(pair):
                out[f"repair.{i}.{g}"] = np.asarray(values).copy()
    return out


def _assert_same_weights(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def _differs(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """The keys whose figures differ (NaN equals NaN)."""
    return [k for k in a if not (a[k] == b.get(k) or (a[k] != a[k] and b.get(k) != b.get(k)))]


# --------------------------------------------------------------------------------------------
# train-in: the lambda search


def _train_in(frame: pd.DataFrame) -> TrainInResult:
    froc = FrocInConfig(
        delta_f=0.12,
        delta_r=0.7,
        threat=THREAT,
        train=TRAIN,
        val_size=VAL_SIZE,
        eval_every=5,
        patience=2,
        warm_epochs=20,
        margin=0.0,
        max_trials=8,
    )
    config = TrainInConfig(data=SPEC, froc=froc, test_size=TEST_SIZE)
    return train_in_table(frame, config, source="isolation")


@pytest.fixture(scope="module")
def train_in_runs(frame: pd.DataFrame) -> dict[str, TrainInResult]:
    return _on_every_variant(_train_in, frame)


def _train_in_choices(result: TrainInResult) -> dict[str, Any]:
    """Everything train-in reports but the test figures and the verdict judged on them."""
    out = _strip(result.to_dict())
    for key in ("test", "verdict", "passed", "source"):
        out.pop(key)
    out["gates"].pop("test")
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_in_chooses_nothing_by_the_test_split(
    train_in_runs: dict[str, TrainInResult], variant: str, held_out: np.ndarray
) -> None:
    base, other = train_in_runs["base"], train_in_runs[variant]
    # A real search: several fits at several settings, or there is nothing to choose from.
    trials = base.outcome.trials
    assert base.outcome.mode == "search"
    assert len({(t.lambda_f, t.lambda_r) for t in trials}) >= 3

    assert (other.outcome.lambda_f, other.outcome.lambda_r) == (
        base.outcome.lambda_f,
        base.outcome.lambda_r,
    )
    assert other.outcome.chosen.index == base.outcome.chosen.index
    assert _strip([t.to_dict() for t in other.outcome.trials]) == _strip(
        [t.to_dict() for t in trials]
    )
    _assert_same_weights(_weights(other.model), _weights(base.model))
    assert other.validation.metrics == base.validation.metrics
    assert _train_in_choices(other) == _train_in_choices(base)
    assert other.rows["test"] == len(held_out)

    # ... while the test figures did see the perturbed rows.
    changed = _differs(base.test.metrics, other.test.metrics)
    assert changed, "the test figures did not change: the perturbation missed the test split"


# --------------------------------------------------------------------------------------------
# compare: every method's pick


def _compare_config() -> CompareConfig:
    return CompareConfig(
        data=SPEC,
        delta_f=0.12,
        delta_r=0.7,
        threat=THREAT,
        train=TRAIN,
        test_size=TEST_SIZE,
        val_size=VAL_SIZE,
        lambdas=(0.0, 0.1, 1.0),
        adv_epochs=20,
        # Never the wall clock: FRoC-IN's search stops at its 16 fits, the same on any machine.
        froc_in_budget_s=1e6,
        froc_pre_rounds=4,
        threads=1,
    )


@dataclasses.dataclass
class _CompareRun:
    result: CompareResult
    deployed: dict[str, dict[str, np.ndarray]]
    grid_models: dict[tuple[str, str], dict[str, np.ndarray]]


def _compare(frame: pd.DataFrame) -> _CompareRun:
    """compare_table on ``frame``, keeping the weights of each deployed model and grid model."""
    deployed: dict[str, dict[str, np.ndarray]] = {}
    grid_models: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    grid_point = CompareContext.grid_point

    def spy_grid_point(
        self: CompareContext,
        method: str,
        setting: str,
        params: dict[str, float],
        model: nn.Module,
        kind: str,
    ) -> Any:
        grid_models[method, setting] = _weights(model)
        return grid_point(self, method, setting, params, model, kind)

    def spy(name: str, run: Callable[[CompareContext], Any]) -> Callable[[CompareContext], Any]:
        def wrapped(ctx: CompareContext) -> Any:
            outcome = run(ctx)
            deployed[name] = _weights(outcome.model)
            return outcome

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CompareContext, "grid_point", spy_grid_point)
        for name, spec in list(METHODS.items()):
            patch.setitem(METHODS, name, dataclasses.replace(spec, run=spy(name, spec.run)))
        result = compare_table(frame, _compare_config(), source="isolation")
    return _CompareRun(result=result, deployed=deployed, grid_models=grid_models)


@pytest.fixture(scope="module")
def compare_runs(frame: pd.DataFrame) -> dict[str, _CompareRun]:
    return _on_every_variant(_compare, frame)


def _picks(result: CompareResult) -> dict[str, Any]:
    """Per method: status, chosen setting, parameters and validation figures; per grid point:
    its parameters, validation figures and whether it was chosen; the rows counted."""
    (repeat,) = result.repeats
    return {
        "rows": {
            row.method: _strip(
                {
                    "status": row.status,
                    "reason": row.reason,
                    "setting": row.setting,
                    "params": row.params,
                    "validation": row.validation,
                }
            )
            for row in repeat.rows
        },
        "grid": [
            (p.method, p.kind, p.setting, p.params, p.validation, p.chosen) for p in repeat.grid
        ],
        "counts": repeat.counts,
        "protected": result.protected_values,
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_compare_picks_nothing_by_the_test_split(
    compare_runs: dict[str, _CompareRun], variant: str, held_out: np.ndarray
) -> None:
    base, other = compare_runs["base"], compare_runs[variant]
    (base_repeat,) = base.result.repeats
    (other_repeat,) = other.result.repeats
    assert [row.method for row in base_repeat.rows] == list(METHODS)
    assert all(row.ok for row in base_repeat.rows), [row.reason for row in base_repeat.rows]
    # Each of the four grids chose one of its settings; FRoC-IN searched; FRoC-PRE edited.
    assert len(base_repeat.grid) == 4 * len(_compare_config().lambdas)
    assert sum(p.chosen for p in base_repeat.grid) == 4
    froc_in = next(row for row in base_repeat.rows if row.method == "froc-in")
    assert len(froc_in.params["trials"]) > 1
    froc_pre = next(row for row in base_repeat.rows if row.method == "froc-pre")
    assert froc_pre.params["flipped"] > 0

    assert _picks(other.result) == _picks(base.result)
    assert other_repeat.counts["test"] == len(held_out)
    assert other.deployed.keys() == base.deployed.keys() == set(METHODS)
    for name, weights in base.deployed.items():
        _assert_same_weights(other.deployed[name], weights)
    assert other.grid_models.keys() == base.grid_models.keys()
    for key, weights in base.grid_models.items():
        _assert_same_weights(other.grid_models[key], weights)

    # ... while every method's test figures, and the grids', saw the perturbed rows.
    for base_row, other_row in zip(base_repeat.rows, other_repeat.rows, strict=True):
        assert _differs(base_row.metrics, other_row.metrics), (
            f"{base_row.method}: the test figures did not change"
        )
    assert any(
        _differs(p.test, q.test) for p, q in zip(base_repeat.grid, other_repeat.grid, strict=True)
    )


# --------------------------------------------------------------------------------------------
# FRoC-PRE, Algorithm 1 (preprocess_table, which compare runs)


@dataclasses.dataclass
class _PreRun:
    result: PreprocessResult
    surrogates: list[dict[str, np.ndarray]]
    targets: list[dict[str, np.ndarray]]


def _froc_pre(frame: pd.DataFrame) -> _PreRun:
    """preprocess_table on ``frame``, keeping the weights of the surrogate after each round
    and of every fresh target (confirmation fits and the reported target and twin)."""
    surrogates: list[dict[str, np.ndarray]] = []
    targets: list[dict[str, np.ndarray]] = []
    fit_surrogates = _froc_pre_module._Surrogates.fit
    fit_target = _froc_pre_module._fit_target

    def spy_surrogates(self: Any, data: Any, round_no: int) -> None:
        fit_surrogates(self, data, round_no)
        surrogates.extend(_weights(model) for model in self.models)

    def spy_target(*args: Any, **kwargs: Any) -> nn.Module:
        model = fit_target(*args, **kwargs)
        targets.append(_weights(model))
        return model

    config = PreprocessConfig(
        data=SPEC,
        delta_f=0.02,
        delta_r=0.9,
        threat=ThreatModel(eps=0.1, pgd_steps=3, attack_space="valid", cat_budget=1),
        train=TRAIN,
        target_model="mlp:8",
        rounds=5,
        step=0.05,
        max_step_factor=2,
        warm_epochs=5,
        target_epochs=200,
        test_size=TEST_SIZE,
        val_size=VAL_SIZE,
        compare_input=True,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_froc_pre_module._Surrogates, "fit", spy_surrogates)
        patch.setattr(_froc_pre_module, "_fit_target", spy_target)
        result = preprocess_table(frame, config, source="isolation")
    return _PreRun(result=result, surrogates=surrogates, targets=targets)


@pytest.fixture(scope="module")
def froc_pre_runs(frame: pd.DataFrame) -> dict[str, _PreRun]:
    return _on_every_variant(_froc_pre, frame)


def _edits(result: PreprocessResult) -> dict[str, Any]:
    """Algorithm 1's choices: its rounds, the round chosen, every flip and added row."""
    return _strip(
        {
            "targets": result.validation_targets,
            "trajectory": [dataclasses.asdict(r) for r in result.trajectory],
            "checks": [dataclasses.asdict(r) for r in result.checks],
            "chosen_round": result.chosen_round,
            "flips": [dataclasses.asdict(f) for f in result.flips],
            "additions": [dataclasses.asdict(a) for a in result.additions],
            "rows": result.rows,
            "protected": result.protected_values,
        }
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_froc_pre_edits_nothing_by_the_test_split(
    froc_pre_runs: dict[str, _PreRun],
    variant: str,
    frame: pd.DataFrame,
    held_out: np.ndarray,
) -> None:
    base_run, other_run = froc_pre_runs["base"], froc_pre_runs[variant]
    base, other = base_run.result, other_run.result
    assert len(base.trajectory) > 1 and base.flips and base.additions
    assert _edits(other) == _edits(base)
    assert len(base_run.surrogates) == len(base.trajectory)
    assert len(base_run.targets) >= 2  # the reported target and its transfer twin at least
    for name in ("surrogates", "targets"):
        got, want = getattr(other_run, name), getattr(base_run, name)
        assert len(got) == len(want), name
        for weights_got, weights_want in zip(got, want, strict=True):
            _assert_same_weights(weights_got, weights_want)
    # The output is the same table but in the test rows, which are written as they were given.
    perturbed = _perturbed(frame, variant)
    train = np.setdiff1d(np.arange(len(frame)), held_out)
    pd.testing.assert_frame_equal(other.output.iloc[train], base.output.iloc[train])
    pd.testing.assert_frame_equal(other.output.iloc[len(frame) :], base.output.iloc[len(frame) :])
    pd.testing.assert_frame_equal(other.output.iloc[held_out], perturbed.iloc[held_out])
    # The fresh target (same weights, checked above) and the one trained on the unedited input
    # are measured on the test rows: their figures did see the perturbation.
    assert other.target.rows == base.target.rows
    assert _differs(base.target.metrics, other.target.metrics), "target: no test figure changed"
    assert base.baseline is not None and other.baseline is not None
    assert _differs(base.baseline.metrics, other.baseline.metrics), "input: no figure changed"
