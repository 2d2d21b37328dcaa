"""FRoC-PRE's edits of a whole table: which labels to flip (eqs. 17-21) and which valid
adversarial rows to add (eq. 22), for a file that an outside trainer fits whole.

Every row is eligible: the plan is made once over all rows, and its promise is measured by
cross-fitting (:mod:`froc_cli.methods._crossfit`), never by rows kept out of the file.

Additions (Algorithm 1, lines 17-22) come first. Valid adversarial copies of
``augment_share`` of the rows, taken from every (group, label) cell in proportion, are crafted
in ``augment_rounds`` rounds: each round continues training one surrogate network on the rows
so far (originals and earlier copies) and crafts PGD copies against it, so later copies target
a model that has already learnt from the earlier ones (static copies crafted against one
network teach a fresh network little). Within a cell, rows are taken in the order of their
accuracy influence I_U (eq. 22, smallest first) on the first round's surrogate. Copies move
numeric columns only: a copy with a switched category (a relationship value that encodes sex,
say) teaches linear models a proxy of the protected group.

Flips (Algorithm 1, lines 10-16) then. A logistic surrogate is fitted to the rows and their
copies (what the trainer fits), and the influence of flipping each label on the soft bias F
(eqs. 13-14) and on the loss is computed in closed form
(:func:`froc_cli.methods.compute_flip_influence`; signs derived from first principles). A
row's copies are flipped with it, so their effects add to the row's before eq. 21 scores it
(Algorithm 1, line 16). Flips are taken in pairs, as in massaging: protected rows with the
unfavourable label are promoted and the others' favourable rows demoted, each side ranked by
its eq. 21 score (the most bias-reducing per unit of lost accuracy first), so the overall
favourable rate of the labels stays as it was. The number of pairs is a share ``flip_scale``
of the count that equalises the two groups' favourable label rates (the classic massaging
count): models fitted to labels with (nearly) equal rates come out (nearly) fair whatever
their family, which is why the plan serves every model of the panel and not one network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core._config import Objective, ThreatModel, TrainConfig, check_learning_rate
from froc_cli.core._errors import InputError
from froc_cli.core._fairness import group_cells
from froc_cli.core._io import to_python
from froc_cli.data._dataset import PreparedData
from froc_cli.data._encoder import TabularEncoder
from froc_cli.methods._influence import (
    compute_augment_influence,
    compute_flip_influence,
    fairness_accuracy_score,
)
from froc_cli.methods._panel import fit_panel_member
from froc_cli.metrics._evaluate import attack_in_chunks
from froc_cli.metrics._rules import parity_flip_quotas
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._training import train_model

__all__ = [
    "AddedRow",
    "EditPlan",
    "EditSettings",
    "FlippedLabel",
    "apply_edits",
    "plan_edits",
    "refit_flips",
]


@dataclass(frozen=True)
class EditSettings:
    """How many edits, and how the adversarial rows are made (see the module docstring)."""

    flip_scale: float = 0.93
    augment_share: float = 0.4
    augment_rounds: int = 8
    surrogate: str = "mlp:64"
    surrogate_epochs: int = 200
    warm_epochs: int = 60
    lr: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_scale <= 2.0:
            raise InputError(f"--flip-scale {self.flip_scale}: expected 0 to 2")
        if not 0.0 <= self.augment_share <= 1.0:
            raise InputError(f"--augment-share {self.augment_share}: expected 0 to 1")
        for option, count in (
            ("--augment-rounds", self.augment_rounds),
            ("--epochs", self.surrogate_epochs),
            ("--warm-epochs", self.warm_epochs),
        ):
            if count < 1:
                raise InputError(f"{option} {count}: expected at least 1")
        check_learning_rate(self.lr)
        parse_model_spec(self.surrogate)


@dataclass(frozen=True)
class EditPlan:
    """The edits of a table, by row position within the encoded rows.

    ``labels`` are every row's labels after the flips; ``flipped`` the flipped rows, best
    first, with their eq. 21 ``flip_score`` and predicted change of F ``flip_delta``;
    ``added_x`` the encoded adversarial rows, each a copy of row ``added_source`` made in
    round ``added_round`` with accuracy influence ``added_influence`` (I_U, eq. 22).
    """

    labels: np.ndarray
    flipped: np.ndarray
    flip_score: np.ndarray
    flip_delta: np.ndarray
    added_x: torch.Tensor
    added_source: np.ndarray
    added_round: np.ndarray
    added_influence: np.ndarray

    def training_rows(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        keep: np.ndarray,
        labels_after_flips: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The edited rows whose source is in the boolean mask ``keep`` (original rows with
        their new labels, then their added copies): what a model fitted without the other
        rows, and without anything derived from them, trains on. ``labels_after_flips``
        replaces the plan's labels (see :func:`refit_flips`)."""
        rows = np.flatnonzero(keep)
        copies = np.flatnonzero(keep[self.added_source])
        chosen = self.labels if labels_after_flips is None else labels_after_flips
        labels = torch.as_tensor(chosen, dtype=torch.float32, device=x.device)
        index = torch.as_tensor(rows, device=x.device)
        copy_index = torch.as_tensor(copies, device=x.device)
        sources = torch.as_tensor(self.added_source[copies], device=x.device)
        return (
            torch.cat([x[index], self.added_x[copy_index]]),
            torch.cat([labels[index], labels[sources]]),
            torch.cat([a[index], a[sources]]),
        )


def _choose_flips(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    copies: tuple[torch.Tensor, np.ndarray],
    quotas: dict[int, tuple[int, int]],
    seed: int,
    criterion: str = "parity",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Algorithm 1, lines 10-16: each group's quota of promotions and demotions
    (:func:`_flip_quotas`), the best by eq. 21 for ``criterion``'s F (binary: the ``pairs``
    best promotions in group 0 and demotions in group 1).

    The logistic surrogate is fitted to the rows *and* their adversarial copies (what the
    trainer fits), and a row's flip carries its copies' flips with it: their predicted
    effects on F and on the loss add (first order) before eq. 21 scores them.
    """
    copy_x, sources = copies
    train_x = torch.cat([x, copy_x])
    train_y = torch.cat([y, y[torch.as_tensor(sources, device=x.device)]])
    surrogate = fit_panel_member("lr", train_x, train_y, seed=seed).network
    assert surrogate is not None
    influence = compute_flip_influence(surrogate, train_x, train_y, x, y, a, criterion=criterion)
    n = len(y)
    delta = _sum_with_copies(influence.delta_fairness.cpu().numpy(), n, sources)
    loss = _sum_with_copies(influence.delta_loss.cpu().numpy(), n, sources)
    score = fairness_accuracy_score(delta, loss, influence.loss_scale)
    labels, groups = y.cpu().numpy(), a.cpu().numpy()
    chosen = []
    for group, (promote, demote) in quotas.items():
        for label, count in ((0.0, promote), (1.0, demote)):
            if count:
                side = np.flatnonzero((groups == group) & (labels == label))
                chosen.append(side[np.argsort(score[side], kind="stable")[:count]])
    flipped = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    flipped = flipped[np.argsort(score[flipped], kind="stable")]
    return flipped, score[flipped], delta[flipped]


def _flip_quotas(y: torch.Tensor, a: torch.Tensor, flip_scale: float) -> dict[int, tuple[int, int]]:
    """Each group's promotions and demotions: ``flip_scale`` times the parity count
    (:func:`froc_cli.metrics.parity_flip_quotas`), rounded."""
    quotas = parity_flip_quotas(y.cpu().numpy(), a.cpu().numpy())
    return {
        g: (round(flip_scale * up), round(flip_scale * down)) for g, (up, down) in quotas.items()
    }


def _sum_with_copies(effects: np.ndarray, n: int, sources: np.ndarray) -> np.ndarray:
    """Per original row: its own effect plus those of its copies (training rows n, n+1, ...
    are copies of ``sources``)."""
    total = effects[:n].copy()
    np.add.at(total, sources, effects[n:])
    return total


def _addition_order(
    influence: np.ndarray, labels: np.ndarray, groups: np.ndarray, share: float
) -> np.ndarray:
    """Rows to copy: ``share`` of every (group, label) cell, smallest I_U first, interleaved
    so that each round's slice keeps the cells' proportions."""
    picks, keys = [], []
    # Binary: groups 0 and 1 (an empty one too); else every code, -1 (too small) included.
    for group in group_cells(groups):
        for label in (0, 1):
            cell = np.flatnonzero((groups == group) & (labels == label))
            take = cell[np.argsort(influence[cell], kind="stable")][: round(share * len(cell))]
            picks.append(take)
            keys.append((np.arange(len(take)) + 0.5) / max(len(take), 1))
    order = np.argsort(np.concatenate(keys), kind="stable")
    return np.concatenate(picks)[order]


def _craft_additions(
    x: torch.Tensor,
    labels: torch.Tensor,
    a: torch.Tensor,
    space: FeatureSpace,
    threat: ThreatModel,
    settings: EditSettings,
    seed: int,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Algorithm 1, lines 17-22, in rounds against one surrogate that keeps training."""
    surrogate = build_model(settings.surrogate, x.shape[1], seed=seed, device=x.device)
    optimizer = torch.optim.Adam(surrogate.parameters(), lr=settings.lr)
    config = TrainConfig(model=settings.surrogate, lr=settings.lr, seed=seed)
    # Numeric moves only (see the module docstring and BENCHMARKS.md).
    attack_threat = replace(threat, attack_space="valid", cat_budget=0)
    train_x, train_y, train_a = x, labels, a
    order = np.zeros(0, dtype=np.int64)
    influence = np.zeros(len(labels))
    added: list[torch.Tensor] = []
    rounds: list[np.ndarray] = []
    for round_index in range(settings.augment_rounds):
        epochs = settings.surrogate_epochs if round_index == 0 else settings.warm_epochs
        train_model(
            surrogate,
            train_x,
            train_y,
            train_a,
            objective=Objective(),
            config=config,
            space=space,
            epochs=epochs,
            optimizer=optimizer,
        )
        if round_index == 0:
            influence = compute_augment_influence(surrogate, x, labels).cpu().numpy()
            order = _addition_order(
                influence, labels.cpu().numpy(), a.cpu().numpy(), settings.augment_share
            )
        per_round = math.ceil(len(order) / settings.augment_rounds)
        rows = order[round_index * per_round : (round_index + 1) * per_round]
        index = torch.as_tensor(rows, device=x.device)
        attack = make_attack("pgd", surrogate, space, attack_threat)
        crafted = attack_in_chunks(attack, x[index], labels[index])
        added.append(crafted)
        rounds.append(np.full(len(rows), round_index + 1, dtype=np.int64))
        train_x = torch.cat([train_x, crafted])
        train_y = torch.cat([train_y, labels[index]])
        train_a = torch.cat([train_a, a[index]])
    sources = order[: sum(len(r) for r in rounds)]
    return torch.cat(added), sources, np.concatenate(rounds), influence[sources]


def plan_edits(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    *,
    space: FeatureSpace,
    threat: ThreatModel,
    settings: EditSettings,
    seed: int,
    criterion: str = "parity",
) -> EditPlan:
    """FRoC-PRE's edits of the rows ``(x, y, a)`` (labels 1 favourable; groups coded as
    :class:`froc_cli.data.PreparedData` codes them), the flips ranked for ``criterion``."""
    # Additions first (crafted against the original labels), then the flips chosen on the
    # rows and copies together: a copy's label follows its source's flip.
    added_x, sources, rounds, influence = _craft_additions(x, y, a, space, threat, settings, seed)
    quotas = _flip_quotas(y, a, settings.flip_scale)
    flipped, score, delta = _choose_flips(x, y, a, (added_x, sources), quotas, seed, criterion)
    labels = y.cpu().numpy().astype(np.int8).copy()
    labels[flipped] = 1 - labels[flipped]
    return EditPlan(
        labels=labels,
        flipped=flipped,
        flip_score=score,
        flip_delta=delta,
        added_x=added_x,
        added_source=sources,
        added_round=rounds,
        added_influence=influence,
    )


def refit_flips(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    plan: EditPlan,
    keep: np.ndarray,
    *,
    flip_scale: float,
    seed: int,
    criterion: str = "parity",
) -> np.ndarray:
    """Every row's label after flips chosen as :func:`plan_edits` chooses them, but from the
    rows in the boolean mask ``keep`` and their copies alone (the count from those rows'
    label rates too); rows outside ``keep`` keep their original labels.

    Cross-fitting uses this so that a fold's rows inform neither the model that measures them
    nor the choice of the flips that model is fitted to: ranked on every row, the flips are
    chosen to lower the bias on the held-out rows as well, and the estimate comes out
    optimistic.
    """
    rows = np.flatnonzero(keep)
    copies = np.flatnonzero(keep[plan.added_source])
    # Position of each kept copy's source among the kept rows.
    position = np.full(len(keep), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    index = torch.as_tensor(rows, device=x.device)
    kept_y, kept_a = y[index], a[index]
    quotas = _flip_quotas(kept_y, kept_a, flip_scale)
    copy_x = plan.added_x[torch.as_tensor(copies, device=x.device)]
    flipped, _, _ = _choose_flips(
        x[index], kept_y, kept_a, (copy_x, position[plan.added_source[copies]]), quotas, seed,
        criterion,
    )  # fmt: skip
    labels = y.cpu().numpy().astype(np.int8).copy()
    labels[rows[flipped]] = 1 - labels[rows[flipped]]
    return labels


@dataclass(frozen=True)
class FlippedLabel:
    """One flipped label: 0-based input row, old and new cell, eq. 21 score, predicted
    change of F."""

    index: int
    old_label: Any
    new_label: Any
    influence: float
    delta_fairness: float


@dataclass(frozen=True)
class AddedRow:
    """One added row: its 0-based output row, source input row, attack, round and I_U."""

    output_row: int
    source_index: int
    attack: str
    eps: float
    round: int
    influence: float


def apply_edits(
    frame: pd.DataFrame,
    prepared: PreparedData,
    encoder: TabularEncoder,
    plan: EditPlan,
    threat: ThreatModel,
) -> tuple[pd.DataFrame, tuple[FlippedLabel, ...], tuple[AddedRow, ...]]:
    """The input table with ``plan``'s flips applied, then its added rows decoded to records
    (feature columns from the attack; label, protected and dropped columns from the source
    row after the flips), in the input's columns and dtypes."""
    names = [str(c) for c in frame.columns]
    label = frame.columns[names.index(prepared.label_column)]
    favourable, unfavourable = prepared.label_cell_values(frame)
    positions = np.asarray(prepared.frame.index)  # encoded row -> input row
    output = frame.copy()
    column = output[label].copy()
    flips = []
    for j, row in enumerate(plan.flipped):
        position = int(positions[row])
        new = favourable if plan.labels[row] == 1 else unfavourable
        flips.append(
            FlippedLabel(
                index=position,
                old_label=to_python(column.iat[position]),
                new_label=to_python(new),
                influence=float(plan.flip_score[j]),
                delta_fairness=float(plan.flip_delta[j]),
            )
        )
        column.iat[position] = new
    output[label] = column
    added = output.iloc[positions[plan.added_source]].copy()
    decoded = encoder.decode(plan.added_x.cpu().numpy())
    for name in encoder.column_names:
        original = frame.columns[names.index(name)]
        added[original] = pd.Series(decoded[name].to_numpy(), index=added.index).astype(
            frame.dtypes[original]
        )
    attack = f"valid-pgd{threat.pgd_steps}-numeric"
    additions = tuple(
        AddedRow(
            output_row=len(frame) + j,
            source_index=int(positions[source]),
            attack=attack,
            eps=threat.eps,
            round=int(plan.added_round[j]),
            influence=float(plan.added_influence[j]),
        )
        for j, source in enumerate(plan.added_source)
    )
    output = pd.concat([output, added], ignore_index=True).astype(frame.dtypes.to_dict())
    return output, tuple(flips), additions
