"""Tests of FRoC-PRE's edit plan for an outside trainer (froc_cli/methods/_edit_plan.py): the
massaging count, which labels are flipped, the valid adversarial copies, and the table written.

One small seeded plan (400 rows, a tiny surrogate, two rounds) is shared by the module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_frame

from froc_cli.attacks import FeatureSpace
from froc_cli.core import DataSpec, ThreatModel
from froc_cli.data import (
    EncodedRows,
    PreparedData,
    TabularEncoder,
    encode_rows,
    fit_encoder,
    prepare_data,
)
from froc_cli.methods import EditPlan, EditSettings, apply_edits, plan_edits, refit_flips
from froc_cli.metrics import parity_flip_count

SPEC = DataSpec(protected="gender", immutable=("tenure",), min_group_size=5)
THREAT = ThreatModel(eps=0.1, pgd_steps=3, attack_space="valid", cat_budget=0)
SETTINGS = EditSettings(
    flip_scale=0.8, surrogate="mlp:8", surrogate_epochs=30, warm_epochs=5, augment_rounds=2
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def credit_frame() -> pd.DataFrame:
    """make_frame(400) with an immutable integer column ``tenure`` before the label."""
    frame = make_frame(400)
    tenure = np.random.default_rng(9).integers(0, 30, size=len(frame))
    frame.insert(frame.columns.get_loc("approved"), "tenure", tenure)
    return frame


@dataclass(frozen=True)
class Planned:
    frame: pd.DataFrame
    prepared: PreparedData
    encoder: TabularEncoder
    rows: EncodedRows
    space: FeatureSpace
    plan: EditPlan


def _plan(frame: pd.DataFrame, seed: int = 0) -> Planned:
    """Encode ``frame`` as froc preprocess does (workflows/_preprocess.py) and plan its edits."""
    prepared = prepare_data(frame, SPEC, source="credit")
    encoder = fit_encoder(prepared.frame, prepared.feature_columns, prepared.immutable_columns)
    rows = encode_rows(prepared, encoder, np.arange(prepared.n_rows), torch.device("cpu"))
    space = FeatureSpace.from_encoder(encoder)
    plan = plan_edits(
        rows.x, rows.y, rows.a.to(torch.float32), space=space, threat=THREAT,
        settings=SETTINGS, seed=seed,
    )  # fmt: skip
    return Planned(frame, prepared, encoder, rows, space, plan)


@pytest.fixture(scope="module")
def planned() -> Planned:
    return _plan(credit_frame())


# --- parity_flip_count ------------------------------------------------------------------------


def _flip_pairs(y: np.ndarray, a: np.ndarray, pairs: int) -> np.ndarray:
    """Promote the first ``pairs`` (a=0, y=0) rows and demote the first (a=1, y=1) rows."""
    y = y.copy()
    y[np.flatnonzero((a == 0) & (y == 0))[:pairs]] = 1
    y[np.flatnonzero((a == 1) & (y == 1))[:pairs]] = 0
    return y


def _gap(y: np.ndarray, a: np.ndarray) -> float:
    return abs(y[a == 0].mean() - y[a == 1].mean())


def test_parity_flip_count_closed_form_on_a_hand_made_table() -> None:
    # Group 0: 4 rows, 1 favourable; group 1: 6 rows, 5 favourable.
    # (P1 n0 - P0 n1) / n = (5*4 - 1*6) / 10 = 1.4 -> 1 pair.
    y = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    assert parity_flip_count(y, a) == 1
    flipped = _flip_pairs(y, a, 1)
    assert flipped[a == 0].mean() == 0.5 and flipped[a == 1].mean() == pytest.approx(4 / 6)
    assert _gap(flipped, a) <= 1 / 6 + 1e-12
    # Exact halves round up: (1*4 - 0*4) / 8 = 0.5 -> 1; (3*4 - 0*4) / 8 = 1.5 -> 2.
    a8 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert parity_flip_count(np.array([0, 0, 0, 0, 1, 0, 0, 0]), a8) == 1
    assert parity_flip_count(np.array([0, 0, 0, 0, 1, 1, 1, 0]), a8) == 2
    # Already equal rates, or the protected group ahead: nothing to flip.
    assert parity_flip_count(np.array([1, 0, 0, 0, 1, 0, 0, 0]), a8) == 0
    assert parity_flip_count(np.array([1, 1, 1, 0, 0, 0, 0, 0]), a8) == 0
    # Float labels and groups (as the encoded tensors hold them) give the same count.
    assert parity_flip_count(y.astype(np.float32), a.astype(np.float32)) == 1


@pytest.mark.parametrize("seed", range(6))
def test_parity_flip_count_equalises_the_rates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 300))
    a = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(np.int64)
    y = (rng.random(n) < np.where(a == 1, 0.7, 0.3)).astype(np.int64)
    pairs = parity_flip_count(y, a)
    n0, n1 = int((a == 0).sum()), int((a == 1).sum())
    exact = (y[a == 1].sum() * n0 - y[a == 0].sum() * n1) / n
    assert pairs == int(np.floor(exact + 0.5)) and pairs > 0
    flipped = _flip_pairs(y, a, pairs)
    assert flipped.sum() == y.sum()  # pairs keep the overall favourable rate
    gap = _gap(flipped, a)
    assert gap <= 1 / min(n0, n1)
    assert gap <= 0.5 * (1 / n0 + 1 / n1) + 1e-12
    # No other count of pairs does better.
    for other in (pairs - 1, pairs + 1):
        assert gap <= _gap(_flip_pairs(y, a, other), a) + 1e-12


# --- plan_edits: flips ------------------------------------------------------------------------


def test_flips_are_the_scaled_massaging_count_of_promotions_and_demotions(
    planned: Planned,
) -> None:
    plan, rows = planned.plan, planned.rows
    y, a = rows.y_numpy, rows.a_numpy
    pairs = round(SETTINGS.flip_scale * parity_flip_count(y, a))
    assert pairs > 10
    flipped = plan.flipped
    assert len(np.unique(flipped)) == len(flipped) == 2 * pairs
    promoted = flipped[(a[flipped] == 0) & (y[flipped] == 0)]
    demoted = flipped[(a[flipped] == 1) & (y[flipped] == 1)]
    assert len(promoted) == pairs and len(demoted) == pairs
    expected = y.copy()
    expected[promoted], expected[demoted] = 1, 0
    np.testing.assert_array_equal(plan.labels, expected)
    assert plan.labels.sum() == y.sum()
    # Best first by the eq. 21 score, recorded per flip.
    assert len(plan.flip_score) == len(plan.flip_delta) == len(flipped)
    assert np.all(np.diff(plan.flip_score) >= 0)
    # The flipped labels close most of the gap in favourable label rates.
    assert _gap(plan.labels, a) < 0.3 * _gap(y, a)


# --- refit_flips (cross-fitting's flips) ------------------------------------------------------


def test_refit_flips_choose_among_the_kept_rows_by_their_own_count(planned: Planned) -> None:
    plan, rows = planned.plan, planned.rows
    y, a = rows.y_numpy, rows.a_numpy
    keep = np.random.default_rng(3).random(len(y)) < 0.67
    labels = refit_flips(
        rows.x, rows.y, rows.a.to(torch.float32), plan, keep,
        flip_scale=SETTINGS.flip_scale, seed=0,
    )  # fmt: skip
    changed = np.flatnonzero(labels != y)
    assert keep[changed].all()  # a held-out row keeps its label
    pairs = round(SETTINGS.flip_scale * parity_flip_count(y[keep], a[keep]))
    assert len(changed) == 2 * pairs > 0
    promoted = changed[(a[changed] == 0) & (y[changed] == 0)]
    assert len(promoted) == pairs
    # The kept rows' own labels close most of their gap.
    assert _gap(labels[keep], a[keep]) < 0.3 * _gap(y[keep], a[keep])


def test_refit_flips_do_not_read_the_held_out_rows(planned: Planned) -> None:
    """Changing the held-out rows' features and labels changes nothing the kept rows get."""
    plan, rows = planned.plan, planned.rows
    keep = np.random.default_rng(4).random(len(rows.y_numpy)) < 0.67
    held = torch.as_tensor(np.flatnonzero(~keep))
    x, y = rows.x.clone(), rows.y.clone()
    x[held] = torch.rand_like(x[held])
    y[held] = 1 - y[held]
    a = rows.a.to(torch.float32)
    first = refit_flips(rows.x, rows.y, a, plan, keep, flip_scale=0.8, seed=0)
    second = refit_flips(x, y, a, plan, keep, flip_scale=0.8, seed=0)
    np.testing.assert_array_equal(first[keep], second[keep])
    assert (second[~keep] != first[~keep]).all()  # the held-out rows keep their (new) labels


# --- plan_edits: additions --------------------------------------------------------------------


def test_additions_keep_each_group_label_cell_share(planned: Planned) -> None:
    """Copies are drawn from every (group, input label) cell in proportion; a copy then
    carries its source's label after the flips."""
    plan, a, y = planned.plan, planned.rows.a_numpy, planned.rows.y_numpy
    sources = plan.added_source
    assert len(np.unique(sources)) == len(sources)  # one copy per row at most
    assert len(sources) == len(plan.added_x) == len(plan.added_round)
    assert len(plan.added_influence) == len(sources)
    assert len(sources) == round(SETTINGS.augment_share * len(y))
    total = 0
    for group in (0, 1):
        for label in (0, 1):
            cell = (a == group) & (y == label)
            taken = int(cell[sources].sum())
            total += taken
            assert abs(taken - SETTINGS.augment_share * cell.sum()) <= 1, (group, label)
            # The cell's share of the additions is its share of the rows.
            assert abs(taken - len(sources) * cell.mean()) <= 1, (group, label)
            # ... in every round too (each round is an interleaved slice).
            for round_index in (1, 2):
                in_round = sources[plan.added_round == round_index]
                expected = len(in_round) * taken / len(sources)
                assert abs(cell[in_round].sum() - expected) <= 1, (group, label, round_index)
    assert total == len(sources)
    rounds = np.bincount(plan.added_round, minlength=3)
    assert rounds[0] == 0 and abs(int(rounds[1]) - int(rounds[2])) <= 1
    assert np.all(np.diff(plan.added_round) >= 0)
    # The whole edited file (rows and copies, labels after the flips) is far closer to
    # parity than the input.
    file_y = np.concatenate([plan.labels, plan.labels[sources]])
    file_a = np.concatenate([a, a[sources]])
    assert _gap(file_y, file_a) < 0.3 * _gap(y, a)


def test_added_rows_are_valid_numeric_moves_of_their_source(planned: Planned) -> None:
    plan, rows, space = planned.plan, planned.rows, planned.space
    added = plan.added_x
    source = rows.x[torch.as_tensor(plan.added_source)]
    assert added.shape[1] == rows.x.shape[1] and added.dtype == rows.x.dtype
    assert bool(((added >= 0) & (added <= 1)).all())
    numeric = space.numeric
    categorical = space.blocks >= 0
    immutable = ~space.mutable
    # Categorical blocks (cat_budget 0) and immutable columns are the source's exactly.
    assert torch.equal(added[:, categorical], source[:, categorical])
    assert bool(immutable.any()) and torch.equal(added[:, immutable], source[:, immutable])
    # Numeric moves stay within eps and on the encoder's grid (integers stay integers...).
    moved = (added - source)[:, numeric]
    assert float(moved.abs().max()) <= THREAT.eps + 1e-6
    assert int((moved != 0).any(dim=1).sum()) > len(added) // 2  # the attack did move rows
    names = planned.encoder.feature_names()
    grid = planned.encoder.numeric_grid()
    assert torch.equal(space.grid, torch.as_tensor(grid))
    for j in np.flatnonzero(numeric.numpy()):
        assert grid[j] > 0, names[j]
        steps = added[:, j].double().numpy() / grid[j]
        np.testing.assert_allclose(steps, np.round(steps), atol=2e-3, err_msg=names[j])


def test_same_seed_gives_the_same_plan(planned: Planned) -> None:
    again = _plan(credit_frame(), seed=0).plan
    plan = planned.plan
    for name in ("labels", "flipped", "flip_score", "flip_delta", "added_source", "added_round"):
        np.testing.assert_array_equal(getattr(again, name), getattr(plan, name), err_msg=name)
    np.testing.assert_array_equal(again.added_influence, plan.added_influence)
    assert torch.equal(again.added_x, plan.added_x)


# --- EditPlan.training_rows -------------------------------------------------------------------


def test_training_rows_of_a_hand_built_plan() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    a = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    labels = np.array([1, 0, 0, 1, 1, 0], dtype=np.int8)  # after flips
    plan = EditPlan(
        labels=labels,
        flipped=np.array([0, 5]),
        flip_score=np.array([-2.0, -1.0]),
        flip_delta=np.array([-0.1, -0.1]),
        added_x=torch.tensor([[100.0, 101.0], [104.0, 105.0], [110.0, 111.0], [114.0, 115.0]]),
        added_source=np.array([1, 4, 0, 5]),
        added_round=np.array([1, 1, 2, 2]),
        added_influence=np.zeros(4),
    )
    keep = np.array([True, False, True, True, False, True])
    train_x, train_y, train_a = plan.training_rows(x, a, keep)
    expected_x = torch.tensor(
        [[0.0, 1.0], [4.0, 5.0], [6.0, 7.0], [10.0, 11.0], [110.0, 111.0], [114.0, 115.0]]
    )
    assert torch.equal(train_x, expected_x)
    # Originals with their labels after flips; copies labelled and grouped by their source.
    assert torch.equal(train_y, torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0]))
    assert train_y.dtype == torch.float32
    assert torch.equal(train_a, torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0]))
    # Keeping nothing derived from rows 1 and 4: every row kept gives back the whole file.
    everything = plan.training_rows(x, a, np.ones(6, dtype=bool))
    assert torch.equal(everything[0], torch.cat([x, plan.added_x]))
    assert torch.equal(everything[1][6:], torch.tensor([0.0, 1.0, 1.0, 0.0]))


# --- apply_edits ------------------------------------------------------------------------------


def test_apply_edits_writes_the_flips_then_the_added_rows(planned: Planned) -> None:
    frame, plan = planned.frame, planned.plan
    output, flips, additions = apply_edits(frame, planned.prepared, planned.encoder, plan, THREAT)
    assert list(output.columns) == list(frame.columns)
    assert output.dtypes.to_dict() == frame.dtypes.to_dict()
    assert len(output) == len(frame) + len(plan.added_source)
    head = output.iloc[: len(frame)]
    flipped = plan.flipped
    pd.testing.assert_frame_equal(head.drop(index=flipped), frame.drop(index=flipped))
    np.testing.assert_array_equal(
        head["approved"].to_numpy(), plan.labels.astype(frame["approved"].dtype)
    )
    assert [f.index for f in flips] == flipped.tolist()
    for record in flips:
        assert record.old_label == frame.at[record.index, "approved"]
        assert record.new_label == 1 - record.old_label
    # Added rows: features decoded from the attack; label (after flips) and group from the source.
    added = output.iloc[len(frame) :].reset_index(drop=True)
    decoded = planned.encoder.decode(plan.added_x.numpy())
    for column in ("age", "income", "education", "region", "tenure"):
        np.testing.assert_array_equal(added[column].to_numpy(), decoded[column].to_numpy())
    source = frame.iloc[plan.added_source].reset_index(drop=True)
    np.testing.assert_array_equal(added["gender"].to_numpy(), source["gender"].to_numpy())
    np.testing.assert_array_equal(added["tenure"].to_numpy(), source["tenure"].to_numpy())
    np.testing.assert_array_equal(added["approved"].to_numpy(), plan.labels[plan.added_source])
    assert (added["income"] != source["income"]).any()
    assert [r.output_row for r in additions] == list(range(len(frame), len(output)))
    assert [r.source_index for r in additions] == plan.added_source.tolist()
    assert {r.attack for r in additions} == {"valid-pgd3-numeric"}
    assert [r.round for r in additions] == plan.added_round.tolist()


def test_apply_edits_uses_the_files_own_label_values_and_copies_dropped_columns(
    planned: Planned,
) -> None:
    """A text label and a dropped ``id`` column: the features, so the plan, are unchanged."""
    frame = planned.frame.copy()
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    frame.insert(0, "id", [f"c{i:04d}" for i in range(len(frame))])
    spec = DataSpec(protected="gender", positive="yes", drop=("id",), immutable=("tenure",))
    prepared = prepare_data(frame, spec, source="text")
    encoder = fit_encoder(prepared.frame, prepared.feature_columns, prepared.immutable_columns)
    assert encoder == planned.encoder
    plan = planned.plan
    output, flips, _ = apply_edits(frame, prepared, encoder, plan, THREAT)
    assert list(output.columns) == list(frame.columns)
    assert output.dtypes.to_dict() == frame.dtypes.to_dict()
    words = np.where(plan.labels == 1, "yes", "no")
    np.testing.assert_array_equal(output["approved"].iloc[: len(frame)].to_numpy(), words)
    assert {(f.old_label, f.new_label) for f in flips} == {("no", "yes"), ("yes", "no")}
    added = output.iloc[len(frame) :].reset_index(drop=True)
    np.testing.assert_array_equal(added["id"].to_numpy(), frame["id"].to_numpy()[plan.added_source])
    np.testing.assert_array_equal(added["approved"].to_numpy(), words[plan.added_source])
    unchanged = np.setdiff1d(np.arange(len(frame)), plan.flipped)
    pd.testing.assert_frame_equal(output.iloc[unchanged], frame.iloc[unchanged])
