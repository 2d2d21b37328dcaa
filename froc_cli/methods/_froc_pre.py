"""FRoC-PRE (paper Section 6, Algorithm 1): rewrite a training set so that a model an outside
party trains on it with plain BCE comes out fair (S_B <= delta_F) and robust (S_R >= delta_R).

Splits, and what the output holds
---------------------------------
froc holds out a seeded test split (``test_size``, stratified by label x group) that is never
used for any choice: it only measures the fresh target at the end. From the other rows it
carves a validation split (``val_size``, seeded, stratified) on which the stopping rule
measures. The remaining *editable* rows are the only ones whose labels may be flipped and
the only sources of adversarial rows.

The output holds every input row in the input's order (flips applied to editable rows;
validation rows, test rows and rows ``--dropna`` skipped are unmodified), then the added
adversarial rows, with the input's columns, names, order and dtypes.

An outside trainer fits the whole output, unmodified rows included, and unmodified rows
dilute the edits (a fresh target trained with the validation rows is less fair than one
trained without them; see BENCHMARKS.md). So the surrogate trains on what the trainer gets
minus the test rows (edited rows, validation rows as they are, added rows), and so does the
fresh target the report describes. Validation rows are never edited nor adversarial sources,
so S_R on them is not measured on rows whose adversarial copies were trained on. The test rows
still dilute the edits for the trainer (unmeasurable without a further held-out split): a
smaller ``test_size`` dilutes less.

Algorithm 1, with the fixes the issue asks for
----------------------------------------------
Each round trains the surrogate (``train``, a :class:`TrainConfig`: architecture, epochs, lr,
batch size, seed, device): round 1 from scratch (``train.epochs`` Adam epochs at ``train.lr``,
full batch unless ``train.batch_size`` is set), later rounds a warm start of ``warm_epochs``
epochs at ``warm_lr`` that continues the same Adam (a fresh Adam per round made S_B and S_R
alternate between rounds; see BENCHMARKS.md). It measures S_B and S_R on the validation rows,
against the thresholds tightened by ``margin`` binomial standard errors. Otherwise, in this
order:

* if S_B is too high, it flips the labels of the editable rows whose flip the influence
  function predicts lowers the soft bias F most (``FlipInfluence``: signs derived from first
  principles and checked against retraining in ``_influence``, not eqs. 18-19 as printed,
  which pick the rows that raise the bias), never a row already flipped. A row's adversarial
  copy is flipped with it, and its predicted effect is counted with the row's (first-order
  effects add; eq. 21's score, ``fairness_accuracy_score``, is recomputed from the sums);
* if S_R is too low, it crafts valid adversarial rows (``ValidRecordAttack``: numeric moves
  within eps and the column's training range on its grid, integers kept, up to
  ``cat_budget`` real category switches, immutable columns unchanged; the protected column
  is never a feature) from editable rows without one yet, labelled with the source row's
  label after this round's flips, and adds those of smallest accuracy influence I_U (eq. 22),
  decoded to records: the surrogate trains on exactly what is written. A round's candidates
  are a seeded random pool of twice as many free rows as it adds (the paper ranks all of
  them; larger pools reached a lower S_R after adding more rows, since eq. 22 favours rows
  the surrogate already gets right: see BENCHMARKS.md). With ``addition_rank="balanced"``
  the pool is ranked by the sum of each row's rank by I_U and by its first-order effect on F
  (``compute_addition_influence``), since the rows eq. 22 picks bring part of the bias back
  and cost extra flips.

Stopping. When the surrogate meets both targets, a fresh ``target_model`` is fitted to the
round's data (what the outside trainer gets, minus the test rows) and must meet the S_B
target on validation too, and not be degenerate (near constant, or no better than the
majority class). Influence-picked flips suit the surrogate they were computed on: a fresh fit
is usually less fair than the surrogate on validation (see BENCHMARKS.md). A failed
confirmation lowers the surrogate's S_B target by the measured gap. The fresh fit's S_R is
reported, not gated: static augmentation's white-box robustness varies widely from one fresh
fit to the next, even for fits of nearly the same data (see BENCHMARKS.md). That confirmed fit
is the target the report measures on the test rows.

Step: ``step`` rows (l) per round, more while far from the targets. Flips: the number of
best-scoring rows whose summed predicted change of F closes a quarter of the remaining gap,
between l and ``max_step_factor`` l. Additions: half the remaining S_R gap over the recent gain
per added row (a least-squares slope over four rounds), between l and ``max_step_factor`` l.

When the budget or the edit limits run out first, the best round (smallest total shortfall
from the targets, non-degenerate first) is the one whose data is returned, a fresh target is
fitted to it for the report, and ``met`` is False.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from froc_cli.attacks import FeatureSpace, ValidRecordAttack
from froc_cli.core._config import DataSpec, Objective, ThreatModel, TrainConfig
from froc_cli.core._device import numeric_failures, resolve_device
from froc_cli.core._errors import InputError, NumericError
from froc_cli.core._io import to_jsonable, to_python
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import PreparedData, prepare_data
from froc_cli.data._encoder import TabularEncoder, fit_encoder
from froc_cli.data._rows import EncodedRows, encode_rows
from froc_cli.data._splits import carve_validation, check_group_sizes, judge_groups, split_indices
from froc_cli.methods._influence import (
    compute_addition_influence,
    compute_augment_influence,
    compute_flip_influence,
    fairness_accuracy_score,
)
from froc_cli.metrics import _scores as m
from froc_cli.metrics._evaluate import attack_in_chunks, pgd_examples, threat_variants
from froc_cli.metrics._rules import (
    is_degenerate_decisions,
    shortfall,
    tightened_bias_threshold,
    tightened_robustness_threshold,
)
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._training import predict_logits, train_model

__all__ = [
    "AdditionRank",
    "AdditionRecord",
    "FlipRecord",
    "PreprocessConfig",
    "PreprocessResult",
    "RobustnessKind",
    "RoundRecord",
    "TargetReport",
    "measure_target",
    "preprocess_table",
]

RobustnessKind = Literal["whitebox", "transfer"]
AdditionRank = Literal["accuracy", "balanced"]

# Candidate adversarial rows crafted per round: POOL_FACTOR times the rows to add, at least
# MIN_POOL (or every free row when fewer).
_POOL_FACTOR = 2
_MIN_POOL = 0
# Share of the remaining gap one round aims to close: flips (first-order prediction of F),
# additions (recent S_R gain per added row, a slope over _SLOPE_ROUNDS rounds).
_FLIP_GAP_SHARE = 0.25
_AUGMENT_GAP_SHARE = 0.5
_SLOPE_ROUNDS = 4


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of one FRoC-PRE run (see the module docstring).

    ``step`` is l: a fraction of the editable rows when below 1, else a row count.
    ``threat`` is the attack S_R is checked against on validation (its ``attack_space``); the
    rows written are always valid records made with its eps, PGD steps and ``cat_budget``.
    ``robustness`` picks white-box attacks on the surrogate or transfer attacks crafted on an
    independently initialised twin trained on the same rows.

    ``train`` is how the surrogate M_S trains (the shared :class:`TrainConfig`): ``model`` its
    architecture, ``epochs`` and ``lr`` round 1's from-scratch fit, ``batch_size`` (None: full
    batch) and ``weight_decay`` its Adam; ``seed`` also seeds the test and validation splits
    and the candidate pools, and ``device`` is where everything runs. ``warm_lr`` (None:
    ``train.lr``) is the learning rate of the warm-start rounds. The fresh ``target_model``
    trains full batch with plain Adam at ``train.lr`` for ``target_epochs``, as an outside
    trainer would. ``addition_rank`` picks the adversarial rows to add: ``"accuracy"`` by the
    smallest accuracy influence I_U alone (eq. 22, the paper), ``"balanced"`` by the sum of
    their ranks by I_U and by their predicted effect on the bias F, so that fewer flips are
    needed to undo the bias the additions bring (fewer flips in more rounds; see
    BENCHMARKS.md).
    """

    data: DataSpec
    delta_f: float = 0.05
    delta_r: float = 0.6
    threat: ThreatModel = field(default_factory=lambda: ThreatModel(attack_space="valid"))
    robustness: RobustnessKind = "whitebox"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(model="mlp:128", epochs=200))
    target_model: str = "mlp:64"
    rounds: int = 300
    step: float = 0.003
    max_step_factor: int = 15
    max_flip_frac: float = 0.2
    max_augment_frac: float = 1.0
    influence_params: Literal["last", "all"] = "last"
    addition_rank: AdditionRank = "accuracy"
    margin: float = 1.0
    warm_epochs: int = 5
    warm_lr: float | None = 0.004
    target_epochs: int = 300
    test_size: float = 0.2
    val_size: float = 0.2
    compare_input: bool = False

    def __post_init__(self) -> None:
        for name, value in (("--delta-f", self.delta_f), ("--delta-r", self.delta_r)):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} {value}: expected a number in [0, 1]")
        if self.robustness not in ("whitebox", "transfer"):
            raise InputError(f"--robustness {self.robustness}: expected whitebox or transfer")
        if self.addition_rank not in ("accuracy", "balanced"):
            raise InputError(f"--addition-rank {self.addition_rank}: expected accuracy or balanced")
        if self.influence_params not in ("last", "all"):
            raise InputError(f"--influence-params {self.influence_params}: expected last or all")
        # train's epochs, lr and batch size are checked by TrainConfig itself; its model spec
        # needs the models layer, so it is parsed here.
        parse_model_spec(self.train.model)
        parse_model_spec(self.target_model)
        if self.rounds < 1:
            raise InputError(f"--rounds {self.rounds}: expected at least 1")
        if not (self.step > 0 and (self.step < 1 or float(self.step).is_integer())):
            raise InputError(f"--step {self.step}: expected a fraction in (0, 1) or a row count")
        if self.max_step_factor < 1:
            raise InputError(f"max_step_factor {self.max_step_factor}: expected at least 1")
        for name, value in (
            ("--max-flip-frac", self.max_flip_frac),
            ("--max-augment-frac", self.max_augment_frac),
        ):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} {value}: expected a fraction in [0, 1]")
        for name, value in (("--test-size", self.test_size), ("--val-size", self.val_size)):
            if not 0.0 < value < 1.0:
                raise InputError(f"{name} {value}: expected a fraction in (0, 1)")
        for name, count in (
            ("--warm-epochs", self.warm_epochs),
            ("--target-epochs", self.target_epochs),
        ):
            if count < 1:
                raise InputError(f"{name} {count}: expected at least 1")
        if self.warm_lr is not None and not self.warm_lr > 0:
            raise InputError(f"--warm-lr {self.warm_lr}: expected a positive number")
        if not self.margin >= 0:
            raise InputError(f"--margin {self.margin}: expected 0 or more")


@dataclass(frozen=True)
class RoundRecord:
    """The surrogate's validation figures at the start of one round (the paper's Fig. 7),
    the edits made before it, and the round's seconds."""

    round: int
    bias_score: float
    robustness: float
    accuracy: float
    degenerate: bool
    flipped: int
    added: int
    seconds: float

    def violation(self, bias_target: float, robustness_target: float) -> float:
        """Total shortfall from both targets (0 when both hold); degenerate adds 1."""
        return shortfall(
            self.bias_score,
            self.robustness,
            bias_target,
            robustness_target,
            degenerate=self.degenerate,
        )


@dataclass(frozen=True)
class FlipRecord:
    """One flipped label: input row position, old and new cell value, its eq. 21 score
    (I_FU, negative = predicted to lower the bias), its predicted change of F, its round."""

    index: int
    old_label: Any
    new_label: Any
    influence: float
    delta_fairness: float
    round: int


@dataclass(frozen=True)
class AdditionRecord:
    """One added adversarial row: its source's input row position, attack, eps, I_U, round."""

    source_index: int
    attack: str
    eps: float
    influence: float
    round: int


@dataclass(frozen=True)
class TargetReport:
    """A fresh target trained with plain BCE, measured on the held-out split.

    ``metrics``: accuracy, majority_floor, bias_score and
    robustness_{whitebox,transfer}_{valid,numeric,continuous} (PGD; ``numeric`` = valid
    records with no category switch, present when ``cat_budget`` > 0); transfer attacks are
    crafted on an independently initialised model of the same architecture trained on the
    same rows.
    """

    model: str
    trained_on: str
    rows: int
    metrics: dict[str, float]
    degenerate: bool


@dataclass(frozen=True)
class PreprocessResult:
    """What a FRoC-PRE run did and measured; ``output`` is the table to write.

    ``validation_targets``: the (S_B, S_R) the stopping rule used, i.e. the thresholds
    tightened by ``margin`` standard errors on the validation rows.
    """

    source: str
    output: pd.DataFrame
    met: bool
    reason: str
    chosen_round: int
    validation_targets: tuple[float, float]
    trajectory: tuple[RoundRecord, ...]
    checks: tuple[RoundRecord, ...]
    flips: tuple[FlipRecord, ...]
    additions: tuple[AdditionRecord, ...]
    target: TargetReport
    baseline: TargetReport | None
    notes: tuple[str, ...]
    label_column: str
    positive_value: str
    protected_column: str
    protected_values: tuple[str, ...]
    rows: dict[str, int]
    settings: dict[str, Any]
    seconds: dict[str, float]

    @property
    def flip_fraction(self) -> float:
        """Flipped labels as a fraction of the editable rows."""
        return len(self.flips) / max(1, self.rows["editable"])

    @property
    def augment_fraction(self) -> float:
        """Added rows as a fraction of the editable rows."""
        return len(self.additions) / max(1, self.rows["editable"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (per-row records are in the manifest)."""
        return to_jsonable(
            {
                "source": self.source,
                "met": self.met,
                "reason": self.reason,
                "chosen_round": self.chosen_round,
                "rounds_run": len(self.trajectory),
                "validation_targets": {
                    "bias_score": self.validation_targets[0],
                    "robustness": self.validation_targets[1],
                },
                "flipped": len(self.flips),
                "added": len(self.additions),
                "flip_fraction": self.flip_fraction,
                "augment_fraction": self.augment_fraction,
                "label": {"column": self.label_column, "favourable": self.positive_value},
                "protected": {
                    "column": self.protected_column,
                    "group_a0": list(self.protected_values),
                },
                "rows": self.rows,
                "target": asdict(self.target),
                "baseline": None if self.baseline is None else asdict(self.baseline),
                "notes": list(self.notes),
                "trajectory": [asdict(r) for r in self.trajectory],
                "checks": [asdict(r) for r in self.checks],
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )


# --------------------------------------------------------------------------------------------
# rows and the working state of the rounds


@dataclass
class _State:
    """Editable rows' current labels and flips, and the added rows (encoded), with rounds."""

    x: torch.Tensor
    y0: np.ndarray
    a: np.ndarray
    y: np.ndarray = field(init=False)
    flip_round: np.ndarray = field(init=False)
    flip_score: np.ndarray = field(init=False)
    flip_delta: np.ndarray = field(init=False)
    has_copy: np.ndarray = field(init=False)
    adv_x: list[torch.Tensor] = field(default_factory=list)
    adv_src: list[np.ndarray] = field(default_factory=list)
    adv_round: list[np.ndarray] = field(default_factory=list)
    adv_iu: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.y0)
        self.y = self.y0.copy()
        self.flip_round = np.zeros(n, dtype=np.int64)  # 0: never flipped
        self.flip_score = np.zeros(n)
        self.flip_delta = np.zeros(n)
        self.has_copy = np.zeros(n, dtype=bool)

    @property
    def n_flipped(self) -> int:
        return int((self.flip_round > 0).sum())

    @property
    def n_added(self) -> int:
        return int(sum(len(s) for s in self.adv_src))

    def sources(self) -> np.ndarray:
        """Editable-row index of each added row's source, in order of addition."""
        return np.concatenate(self.adv_src) if self.adv_src else np.zeros(0, dtype=np.int64)

    def added_rounds(self) -> np.ndarray:
        return np.concatenate(self.adv_round) if self.adv_round else np.zeros(0, dtype=np.int64)

    def added_x(self) -> torch.Tensor:
        return torch.cat(self.adv_x) if self.adv_x else self.x[:0]

    def training_set(self, val: EncodedRows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Editable rows (current labels), validation rows (as they are), added rows (their
        sources' current labels): what the outside trainer gets, minus the test rows."""
        src = self.sources()
        device = self.x.device
        x = torch.cat([self.x, val.x, self.added_x()])
        y = np.concatenate([self.y, val.y_numpy, self.y[src]]).astype(np.float32)
        a = np.concatenate([self.a, val.a_numpy, self.a[src]]).astype(np.float32)
        return x, torch.as_tensor(y, device=device), torch.as_tensor(a, device=device)


# --------------------------------------------------------------------------------------------
# measuring


def _decisions(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return (predict_logits(model, x) > 0).cpu().numpy().astype(np.int8)


def _require_finite_model(model: nn.Module, what: str, config: PreprocessConfig) -> None:
    """Raise :class:`NumericError` when training left ``model`` with NaN or infinite weights
    (a NaN or infinite loss on the way): every figure measured on it would be meaningless."""
    if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        return
    raise NumericError(
        f"{what} has NaN or infinite weights after training (its loss diverged at --lr "
        f"{config.train.lr:g}, --warm-lr {config.warm_lr or config.train.lr:g}): try a smaller "
        "--lr or --warm-lr, or check the numeric columns for huge values"
    )


def _fit_target(
    config: PreprocessConfig,
    n_features: int,
    space: FeatureSpace,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    seed: int,
) -> nn.Module:
    """A fresh ``target_model`` trained with plain BCE (full batch, ``target_epochs``)."""
    model = build_model(config.target_model, n_features, seed=seed, device=data[0].device)
    train_model(
        model,
        *data,
        objective=Objective(),
        config=TrainConfig(model=config.target_model, lr=config.train.lr, seed=seed),
        space=space,
        epochs=config.target_epochs,
    )
    _require_finite_model(model, f"a fresh {config.target_model}", config)
    return model


def measure_target(
    config: PreprocessConfig,
    space: FeatureSpace,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    test: EncodedRows,
    trained_on: str,
    models: Sequence[nn.Module] = (),
) -> TargetReport:
    """A fresh ``config.target_model`` trained with plain BCE on ``data`` (features, labels,
    groups) and measured on the held-out ``test`` rows: accuracy, majority floor, S_B, and
    white-box and transfer S_R in every attack space of ``config.threat``.

    The target is ``models[0]`` (seed ``config.train.seed``) and transfer attacks are crafted on its
    twin ``models[1]`` (seed + 1); those missing are trained here. ``trained_on`` says in
    words what ``data`` is, for the report.
    """
    n_features = int(data[0].shape[1])
    fitted = list(models)
    while len(fitted) < 2:
        fitted.append(_fit_target(config, n_features, space, data, config.train.seed + len(fitted)))
    target, twin = fitted[:2]
    pred = _decisions(target, test.x)
    metrics = {
        "accuracy": m.accuracy(pred, test.y_numpy),
        "majority_floor": m.majority_floor(test.y_numpy),
        "bias_score": m.criterion_score(pred, test.y_numpy, test.a_numpy, config.data.fairness),
    }
    for kind, source in (("whitebox", target), ("transfer", twin)):
        for name, variant in threat_variants(config.threat).items():
            x_adv = pgd_examples(source, test.x, test.y, space, variant)
            metrics[f"robustness_{kind}_{name}"] = m.robustness_score(
                _decisions(target, x_adv), test.y_numpy
            )
    return TargetReport(
        model=config.target_model,
        trained_on=trained_on,
        rows=int(data[0].shape[0]),
        metrics=metrics,
        degenerate=is_degenerate_decisions(pred, test.y_numpy),
    )


def _validation_score(
    surrogate: nn.Module,
    attacker: nn.Module,
    val: EncodedRows,
    space: FeatureSpace,
    threat: ThreatModel,
    round_no: int,
    state: _State,
    criterion: str = "parity",
) -> RoundRecord:
    """Algorithm 1, line 6: S_B (eq. 7) and S_R (eq. 8, PGD crafted on ``attacker``) of
    ``surrogate`` on the validation rows, with its accuracy and the edits so far."""
    pred = _decisions(surrogate, val.x)
    x_adv = pgd_examples(attacker, val.x, val.y, space, threat)
    return RoundRecord(
        round=round_no,
        bias_score=m.criterion_score(pred, val.y_numpy, val.a_numpy, criterion),
        robustness=m.robustness_score(_decisions(surrogate, x_adv), val.y_numpy),
        accuracy=m.accuracy(pred, val.y_numpy),
        degenerate=is_degenerate_decisions(pred, val.y_numpy),
        flipped=state.n_flipped,
        added=state.n_added,
        seconds=0.0,
    )


# --------------------------------------------------------------------------------------------
# Algorithm 1, step by step (docs/paper-map.md maps every line to its function)


@dataclass(frozen=True)
class _Run:
    """The working context of one run, fixed before the first round: the settings, the input
    and its prepared roles, the encoder and attack space, the editable, validation and test
    rows encoded on the device, the edit limits and the tightened validation targets."""

    config: PreprocessConfig
    frame: pd.DataFrame
    prepared: PreparedData
    encoder: TabularEncoder
    space: FeatureSpace
    device: torch.device
    edit: EncodedRows
    val: EncodedRows
    test: EncodedRows
    max_flips: int
    max_adds: int
    targets: tuple[float, float]


def _prepare_run(frame: pd.DataFrame, config: PreprocessConfig, source: str) -> _Run:
    """Algorithm 1's input (A, X, Y): the editable rows, once the seeded test and validation
    splits are held out (see "Splits" in the module docstring); the encoder is fitted on the
    editable rows. The |F| < m and |R| < n bounds of lines 10 and 17 become the edit limits
    ``max_flip_frac`` and ``max_augment_frac``, and delta_F, delta_R the thresholds tightened
    by ``margin`` standard errors on the validation rows."""
    prepared = prepare_data(frame, config.data, source=source)
    device = resolve_device(config.train.device)
    seed = config.train.seed
    rest, test_pos = split_indices(prepared.y, prepared.a, test_size=config.test_size, seed=seed)
    edit_pos, val_pos = carve_validation(prepared, rest, val_size=config.val_size, seed=seed)
    minimum = config.data.min_group_size
    prepared = judge_groups(prepared, test_pos, minimum, "in the test split")
    check_group_sizes(prepared, prepared.a[val_pos], minimum, "in the validation split")
    encoder = fit_encoder(
        prepared.frame.iloc[edit_pos], prepared.feature_columns, prepared.immutable_columns
    )
    val = encode_rows(prepared, encoder, val_pos, device)
    n_edit = len(edit_pos)
    return _Run(
        config=config,
        frame=frame,
        prepared=prepared,
        encoder=encoder,
        space=FeatureSpace.from_encoder(encoder, device),
        device=device,
        edit=encode_rows(prepared, encoder, edit_pos, device),
        val=val,
        test=encode_rows(prepared, encoder, test_pos, device),
        max_flips=math.floor(config.max_flip_frac * n_edit),
        max_adds=math.floor(config.max_augment_frac * n_edit),
        targets=(
            tightened_bias_threshold(
                config.delta_f,
                y=val.y_numpy,
                a=val.a_numpy,
                margin=config.margin,
                criterion=config.data.fairness,
            ),
            tightened_robustness_threshold(
                config.delta_r, n_rows=len(val.y_numpy), margin=config.margin
            ),
        ),
    )


def _initial_state(run: _Run) -> _State:
    """Algorithm 1, lines 1-3: (A^(0), X^(0), Y^(0)) = (A, X, Y), no flipped labels (F = {}),
    no adversarial rows (R = {})."""
    positions = run.edit.positions
    return _State(
        x=run.edit.x, y0=run.prepared.y[positions].copy(), a=run.prepared.a[positions].copy()
    )


def _opening_line(run: _Run) -> str:
    config, targets = run.config, run.targets
    return (
        f"{len(run.edit)} editable rows, {len(run.val)} validation, {len(run.test)} held out; "
        f"surrogate {config.train.model} on {run.device}; stop at validation S_B <= "
        f"{targets[0]:.4f} and S_R >= {targets[1]:.4f} (thresholds tightened by "
        f"{config.margin:g} standard error), S_B confirmed on a fresh {config.target_model}"
    )


class _Surrogates:
    """The surrogate M_S (and, for transfer robustness, its twin: seed + 1) with one Adam
    optimiser each, kept across the rounds."""

    def __init__(self, run: _Run) -> None:
        train = run.config.train
        seeds = (
            (train.seed, train.seed + 1) if run.config.robustness == "transfer" else (train.seed,)
        )
        self.run = run
        self.models = [
            build_model(train.model, run.encoder.n_features, seed=seed, device=run.device)
            for seed in seeds
        ]
        self.optimizers = [
            torch.optim.Adam(m.parameters(), lr=train.lr, weight_decay=train.weight_decay)
            for m in self.models
        ]

    def fit(self, data: tuple[torch.Tensor, ...], round_no: int) -> None:
        """Algorithm 1, line 5: train M_S^(i) on round i's data. Round 1 trains from scratch
        (``train.epochs`` at ``train.lr``); later rounds warm-start for ``warm_epochs`` at
        ``warm_lr``, continuing the same Adam (its moments kept: no restart jolt)."""
        config = self.run.config
        train = config.train
        warm_round = round_no - 1
        for model, optimizer in zip(self.models, self.optimizers, strict=True):
            for group in optimizer.param_groups:
                group["lr"] = (config.warm_lr or train.lr) if warm_round else train.lr
            train_model(
                model,
                *data,
                objective=Objective(),
                config=replace(train, seed=train.seed + warm_round),
                space=self.run.space,
                epochs=config.warm_epochs if warm_round else train.epochs,
                optimizer=optimizer,
            )
            _require_finite_model(model, f"the surrogate {train.model} (round {round_no})", config)


@dataclass
class _Rounds:
    """What the rounds measured and decided: the surrogate's trajectory, the fresh-target
    checks, the confirmed fresh target and twin, why the rounds stopped, and ``offset``: how
    much lower the warm surrogate's S_B was than a fresh fit's of the same data at the failed
    confirmations (the surrogate's S_B target absorbs it)."""

    stop_reason: str
    trajectory: list[RoundRecord] = field(default_factory=list)
    checks: list[RoundRecord] = field(default_factory=list)
    confirmed: list[nn.Module] = field(default_factory=list)
    offset: float = 0.0

    def warm_targets(self, targets: tuple[float, float]) -> tuple[float, float]:
        """The surrogate's (S_B, S_R) targets: S_B lowered by the measured offset."""
        return (targets[0] - self.offset, targets[1])


def _run_rounds(run: _Run, state: _State, progress: ProgressCallback) -> _Rounds:
    """Algorithm 1, lines 4-23: for i = 1 to L (``rounds``), train the surrogate (line 5),
    measure it (line 6), stop when both targets hold and a fresh target confirms S_B (lines
    7-8), else flip (lines 10-16) and add (lines 17-23); ``state`` holds the edits."""
    config = run.config
    rounds = _Rounds(stop_reason=f"budget of {config.rounds} rounds spent")
    rng = np.random.default_rng(config.train.seed)
    surrogates = _Surrogates(run)
    for round_no in range(1, config.rounds + 1):
        round_start = time.perf_counter()
        data = state.training_set(run.val)
        surrogates.fit(data, round_no)
        surrogate = surrogates.models[0]
        record = _validation_score(
            surrogate, surrogates.models[-1], run.val, run.space, config.threat, round_no, state,
            config.data.fairness,
        )  # fmt: skip
        stop = _stop_if_met(run, state, rounds, data, record, progress)
        if stop is None:
            stop = _edit_round(run, state, surrogate, data, record, rounds, rng)
        rounds.trajectory.append(replace(record, seconds=time.perf_counter() - round_start))
        if stop is not None:
            rounds.stop_reason = stop
            break
        progress(
            f"round {round_no}: S_B {record.bias_score:.4f} S_R {record.robustness:.4f} "
            f"acc {record.accuracy:.4f}; flipped {state.n_flipped}, added {state.n_added} "
            f"({time.perf_counter() - round_start:.2f}s)"
        )
    return rounds


def _stop_if_met(
    run: _Run,
    state: _State,
    rounds: _Rounds,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    record: RoundRecord,
    progress: ProgressCallback,
) -> str | None:
    """Algorithm 1, lines 7-8 (break when S_R >= delta_R and S_B <= delta_F), confirmed: when
    the surrogate meets both targets, a fresh ``target_model`` fitted to the round's data must
    meet the S_B target on validation too and not be degenerate (see "Stopping" in the module
    docstring). Returns why the rounds stop, or None to go on (after a failed confirmation,
    with ``rounds.offset`` raised by the measured gap)."""
    config = run.config
    if record.violation(*rounds.warm_targets(run.targets)) != 0.0:
        return None
    n_features, round_no = run.encoder.n_features, record.round
    fresh = [_fit_target(config, n_features, run.space, data, config.train.seed)]
    if config.robustness == "transfer":
        fresh.append(_fit_target(config, n_features, run.space, data, config.train.seed + 1))
    check = _validation_score(
        fresh[0], fresh[-1], run.val, run.space, config.threat, round_no, state,
        config.data.fairness,
    )  # fmt: skip
    rounds.checks.append(check)
    progress(
        f"round {round_no}: surrogate S_B {record.bias_score:.4f} S_R "
        f"{record.robustness:.4f}; fresh {config.target_model}: S_B "
        f"{check.bias_score:.4f} S_R {check.robustness:.4f}"
        + (" (degenerate)" if check.degenerate else "")
    )
    if check.bias_score <= run.targets[0] and not check.degenerate:
        rounds.confirmed = fresh
        return (
            f"both constraints met on validation at round {round_no} by the surrogate "
            f"and by a fresh {config.target_model}"
        )
    if check.degenerate:
        return f"a fresh {config.target_model} is degenerate at round {round_no}"
    rounds.offset = max(rounds.offset, check.bias_score - record.bias_score)
    return None


def _edit_round(
    run: _Run,
    state: _State,
    surrogate: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    record: RoundRecord,
    rounds: _Rounds,
    rng: np.random.Generator,
) -> str | None:
    """Algorithm 1, lines 9-23: (A^(i), X^(i), Y^(i)) starts as the previous round's data
    (line 9); if S_B is too high and flips are left, flip labels (lines 10-16,
    :func:`_flip_round`); if S_R is too low and additions are left, add adversarial rows
    (lines 17-23, :func:`_augment_round`). Returns why the rounds stop when neither edit is
    possible, else None."""
    config = run.config
    warm_targets = rounds.warm_targets(run.targets)
    can_flip = record.bias_score > warm_targets[0] and state.n_flipped < run.max_flips
    can_add = record.robustness < warm_targets[1] and state.n_added < run.max_adds
    if not (can_flip or can_add):
        if record.degenerate:
            return f"the surrogate is degenerate at round {record.round}"
        return (
            f"edit limits reached at round {record.round} (--max-flip-frac "
            f"{config.max_flip_frac:g}, --max-augment-frac {config.max_augment_frac:g})"
        )
    x_tr, y_tr, _ = data
    if can_flip:
        _flip_round(
            state, surrogate, x_tr, y_tr, run.val, record, warm_targets, run.max_flips, config
        )
    if can_add:
        history = [*rounds.trajectory, record]
        _augment_round(
            state,
            surrogate,
            x_tr,
            y_tr,
            run.val,
            run.encoder,
            run.space,
            history,
            warm_targets,
            run.max_adds,
            rng,
            config,
        )
    return None


def _choose_round(rounds: _Rounds, targets: tuple[float, float]) -> RoundRecord:
    """Algorithm 1, line 24 (return the last round's data), when the targets were met and
    confirmed. Otherwise the round whose data came closest: the smallest total shortfall of
    the surrogate's figures from the targets (calibrated by the last measured offset),
    non-degenerate first."""
    if rounds.confirmed:
        return rounds.trajectory[-1]
    return min(rounds.trajectory, key=lambda r: r.violation(targets[0] - rounds.offset, targets[1]))


def _kept_edits(state: _State, chosen: RoundRecord) -> tuple[np.ndarray, np.ndarray]:
    """The chosen round's data: the flips (a mask over the editable rows) and the added rows
    (their positions in order of addition) made before it."""
    keep_flips = (state.flip_round > 0) & (state.flip_round < chosen.round)
    keep_added = np.flatnonzero(state.added_rounds() < chosen.round)
    return keep_flips, keep_added


def _output_training_set(
    run: _Run, state: _State, keep_flips: np.ndarray, keep_added: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the outside trainer gets from the output, minus the held-out rows: editable rows
    with the kept flips, validation rows as they are, the kept added rows."""
    device = run.device
    y_final = np.where(keep_flips, 1.0 - state.y0, state.y0).astype(np.float32)
    src = state.sources()[keep_added]
    x_added = state.added_x()[torch.as_tensor(keep_added, device=device, dtype=torch.long)]
    y = np.concatenate([y_final, run.val.y_numpy, y_final[src]]).astype(np.float32)
    a = np.concatenate([state.a, run.val.a_numpy, state.a[src]]).astype(np.float32)
    return (
        torch.cat([run.edit.x, run.val.x, x_added]),
        torch.as_tensor(y, device=device),
        torch.as_tensor(a, device=device),
    )


def _measure_targets(
    run: _Run,
    state: _State,
    keep: tuple[np.ndarray, np.ndarray],
    confirmed: list[nn.Module],
    progress: ProgressCallback,
) -> tuple[TargetReport, TargetReport | None]:
    """Not in Algorithm 1 (which trusts the surrogate): a fresh ``target_model`` trained with
    plain BCE on the output minus the held-out rows (the confirmed fit when there is one),
    measured on the held-out rows; with ``compare_input`` also one trained on the input."""
    config = run.config
    progress(
        f"measuring a fresh {config.target_model} (plain BCE on the output) on the held-out rows"
    )
    final = _output_training_set(run, state, *keep)
    target = measure_target(
        config, run.space, final, run.test, "the output minus the held-out rows", confirmed
    )
    if not config.compare_input:
        return target, None
    progress(f"training a fresh {config.target_model} on the input, for comparison")
    unedited = (
        torch.cat([run.edit.x, run.val.x]),
        torch.as_tensor(
            np.concatenate([state.y0, run.val.y_numpy]).astype(np.float32), device=run.device
        ),
        torch.as_tensor(
            np.concatenate([state.a, run.val.a_numpy]).astype(np.float32), device=run.device
        ),
    )
    baseline = measure_target(
        config, run.space, unedited, run.test, "the input minus the held-out rows"
    )
    return target, baseline


def _verdict(
    config: PreprocessConfig, rounds: _Rounds, chosen: RoundRecord, target: TargetReport
) -> tuple[bool, str]:
    """Whether the run succeeded, and why: the rounds stopped on a confirmed round and the
    fresh target is not degenerate on the held-out rows."""
    stop_reason = rounds.stop_reason
    met = bool(rounds.confirmed) and not target.degenerate
    if rounds.confirmed and target.degenerate:
        return False, (
            f"{stop_reason}, but the fresh {config.target_model} is degenerate on the held-out "
            "rows (near constant or no better than the majority class): not a success"
        )
    if met:
        return True, stop_reason
    return False, (
        f"not met: {stop_reason}; best round {chosen.round} (surrogate validation S_B "
        f"{chosen.bias_score:.4f}, S_R {chosen.robustness:.4f})"
    )


def _numeric_failures(config: PreprocessConfig) -> AbstractContextManager[None]:
    return numeric_failures(
        "FRoC-PRE",
        f"try a smaller --lr (now {config.train.lr:g}) or --warm-lr, or check the numeric "
        "columns for huge values",
    )


def preprocess_table(
    frame: pd.DataFrame,
    config: PreprocessConfig,
    *,
    source: str,
    progress: ProgressCallback = silent,
) -> PreprocessResult:
    """Run FRoC-PRE (Algorithm 1, see the module docstring) on ``frame``; never writes anything.

    Raises :class:`InputError` or :class:`InsufficientDataError` for the input, and
    :class:`NumericError` when the computation fails on NaN or infinite numbers.
    """
    started = time.perf_counter()
    run = _prepare_run(frame, config, source)
    state = _initial_state(run)
    seconds = {"prepare": time.perf_counter() - started}
    progress(_opening_line(run))
    with _numeric_failures(config):
        mark = time.perf_counter()
        rounds = _run_rounds(run, state, progress)
        seconds["rounds"] = time.perf_counter() - mark
        chosen = _choose_round(rounds, run.targets)
        keep = _kept_edits(state, chosen)
        mark = time.perf_counter()
        output, flips, additions = _build_output(run, state, *keep)
        seconds["output"] = time.perf_counter() - mark
        mark = time.perf_counter()
        target, baseline = _measure_targets(run, state, keep, rounds.confirmed, progress)
        seconds["target"] = time.perf_counter() - mark
    met, reason = _verdict(config, rounds, chosen, target)
    seconds["total"] = time.perf_counter() - started
    prepared = run.prepared
    return PreprocessResult(
        source=source,
        output=output,
        met=met,
        reason=reason,
        chosen_round=chosen.round,
        validation_targets=run.targets,
        trajectory=tuple(rounds.trajectory),
        checks=tuple(rounds.checks),
        flips=flips,
        additions=additions,
        target=target,
        baseline=baseline,
        notes=_target_notes(config, target),
        label_column=prepared.label_column,
        positive_value=prepared.positive_value,
        protected_column=prepared.protected_column,
        protected_values=prepared.protected_values,
        rows={
            "input": len(frame),
            "used": prepared.n_rows,
            "editable": len(run.edit),
            "validation": len(run.val),
            "test": len(run.test),
            "output": len(output),
            "features": run.encoder.n_features,
        },
        settings=_settings(config, str(run.device)),
        seconds=seconds,
    )


def _target_notes(config: PreprocessConfig, target: TargetReport) -> tuple[str, ...]:
    """Where the fresh target misses a threshold on the held-out rows (the stopping rule only
    sees validation rows, and gates S_R on the surrogate)."""
    notes = []
    bias = target.metrics["bias_score"]
    if bias > config.delta_f:
        notes.append(
            f"the fresh {target.model}'s S_B on the held-out rows is {bias:.4f} > delta_F "
            f"{config.delta_f:g}"
        )
    key = f"robustness_{config.robustness}_{config.threat.attack_space}"
    robust = target.metrics[key]
    if robust < config.delta_r:
        notes.append(
            f"the fresh {target.model}'s S_R ({config.robustness}, "
            f"{config.threat.attack_space}) on the held-out rows is {robust:.4f} < delta_R "
            f"{config.delta_r:g}: added rows are static augmentation, not adversarial training, "
            "and do not make every model trained on them robust"
        )
    return tuple(notes)


def _settings(config: PreprocessConfig, device: str) -> dict[str, Any]:
    settings = asdict(config)
    settings["data"] = config.data.to_dict()
    settings["train"]["device"] = device
    settings["threads"] = torch.get_num_threads()
    settings["threat"]["pgd_step_size"] = config.threat.pgd_step_size
    settings["versions"] = environment_versions()
    return settings


def _flip_round(
    state: _State,
    surrogate: nn.Module,
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    val: EncodedRows,
    record: RoundRecord,
    targets: tuple[float, float],
    max_flips: int,
    config: PreprocessConfig,
) -> None:
    """Algorithm 1, lines 10-16: score every editable row not flipped yet (Z_F, line 10) by
    eq. 21 (lines 11-12, with a row's adversarial copy flipped with it: line 16), pick those
    of the most negative scores (lines 13-14, predicted to lower F the most; the count closes
    a share of the gap to the S_B target, see "Step" in the module docstring), record them in
    F (line 15) and flip them (line 16)."""
    influence = compute_flip_influence(
        surrogate,
        x_tr,
        y_tr,
        val.x,
        val.y,
        torch.as_tensor(val.a_numpy, device=val.x.device),
        params=config.influence_params,
        criterion=config.data.fairness,
    )
    n = len(state.y)
    n_first_added = n + len(val.y_numpy)  # training rows: editable, validation, added
    delta_f = influence.delta_fairness[:n].cpu().numpy().copy()
    delta_l = influence.delta_loss[:n].cpu().numpy().copy()
    src = state.sources()
    if len(src):
        # A row's adversarial copy is flipped with it: first-order effects add.
        np.add.at(delta_f, src, influence.delta_fairness[n_first_added:].cpu().numpy())
        np.add.at(delta_l, src, influence.delta_loss[n_first_added:].cpu().numpy())
    score = fairness_accuracy_score(delta_f, delta_l, influence.loss_scale)
    score = np.where(state.flip_round > 0, np.inf, score)
    order = np.argsort(score, kind="stable")
    order = order[score[order] < 0]
    if len(order) == 0:
        return
    # Close a share of the gap between the soft bias F and its share of the target at a time.
    base = _step_rows(config, n)
    most = base * config.max_step_factor
    excess = max(0.0, record.bias_score - targets[0]) / max(record.bias_score, 1e-12)
    gains = np.cumsum(-delta_f[order[:most]])
    needed = int(np.searchsorted(gains, _FLIP_GAP_SHARE * influence.fairness * excess)) + 1
    k = min(len(order), max(base, min(most, needed)), max_flips - state.n_flipped)
    rows = order[:k]
    state.y[rows] = 1.0 - state.y[rows]
    state.flip_round[rows] = record.round
    state.flip_score[rows] = score[rows]
    state.flip_delta[rows] = delta_f[rows]


def _step_rows(config: PreprocessConfig, n_editable: int) -> int:
    """l, the rows one round edits at least: ``step`` of the editable rows, or a count."""
    if config.step < 1:
        return max(1, round(config.step * n_editable))
    return int(config.step)


def _augment_count(
    history: list[RoundRecord], target: float, config: PreprocessConfig, n_editable: int
) -> int:
    """Rows to add this round: half the remaining S_R gap over the recent gain per added row
    (a least-squares slope over the last rounds), within [l, max_step_factor * l]; before
    there is a positive slope, l * max_step_factor * the relative shortfall."""
    base = _step_rows(config, n_editable)
    most = base * config.max_step_factor
    record = history[-1]
    gap = max(0.0, target - record.robustness)
    recent = history[-_SLOPE_ROUNDS:]
    added = np.array([r.added for r in recent], dtype=float)
    if len(recent) >= 3 and np.ptp(added) > 0:
        slope = float(np.polyfit(added, [r.robustness for r in recent], 1)[0])
        if slope > 0:
            return int(min(most, max(base, math.ceil(_AUGMENT_GAP_SHARE * gap / slope))))
    return int(min(most, max(base, round(most * gap / max(target, 1e-12)))))


def _balanced_additions(
    accuracy_influence: np.ndarray, delta_fairness: np.ndarray, k: int
) -> np.ndarray:
    """Positions of the ``k`` candidates to add, ascending: the smallest sum of their ranks by
    accuracy influence I_U (eq. 22) and by predicted change of the bias F (first order, as
    the flips); ties by I_U."""
    rank_u = np.argsort(np.argsort(accuracy_influence, kind="stable"), kind="stable")
    rank_f = np.argsort(np.argsort(delta_fairness, kind="stable"), kind="stable")
    order = np.lexsort((rank_u, rank_u + rank_f))
    return np.sort(order[:k])


def _augment_round(
    state: _State,
    surrogate: nn.Module,
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    val: EncodedRows,
    encoder: TabularEncoder,
    space: FeatureSpace,
    history: list[RoundRecord],
    targets: tuple[float, float],
    max_adds: int,
    rng: np.random.Generator,
    config: PreprocessConfig,
) -> None:
    """Algorithm 1, lines 17-23: craft valid adversarial rows (Adv, line 18) from a seeded
    pool of editable rows without one yet (j not in R), score them by eq. 22 (lines 19-20),
    pick those of the smallest I_U (line 21; or by rank sum with ``addition_rank="balanced"``),
    record their sources in R (line 22) and add them, labelled as their sources are now
    (line 23). The count is :func:`_augment_count`."""
    free = np.flatnonzero(~state.has_copy)
    if len(free) == 0:
        return
    k = min(_augment_count(history, targets[1], config, len(state.y)), max_adds - state.n_added)
    k = min(k, len(free))
    pool = np.sort(
        rng.choice(free, size=min(len(free), max(_POOL_FACTOR * k, _MIN_POOL)), replace=False)
    )
    device = state.x.device
    x_pool = state.x[torch.as_tensor(pool, device=device)]
    y_pool = torch.as_tensor(state.y[pool], device=device)
    threat = config.threat
    attack = ValidRecordAttack(
        surrogate,
        space,
        eps=threat.eps,
        steps=threat.pgd_steps,
        step_size=threat.pgd_step_size,
        cat_budget=threat.cat_budget,
        target="true",
    )
    surrogate.eval()
    x_adv = attack_in_chunks(attack, x_pool, y_pool)
    influence = (
        compute_augment_influence(surrogate, x_adv, y_pool, params=config.influence_params)
        .cpu()
        .numpy()
    )
    if config.addition_rank == "accuracy":
        picked = np.sort(np.argsort(influence, kind="stable")[:k])
    else:
        picked = _balanced_additions(
            influence,
            compute_addition_influence(
                surrogate,
                x_tr,
                y_tr,
                x_adv,
                y_pool,
                val.x,
                val.y,
                torch.as_tensor(val.a_numpy, device=device),
                params=config.influence_params,
                criterion=config.data.fairness,
            )
            .delta_fairness.cpu()
            .numpy(),
            k,
        )
    # What is written is the decoded record: train on exactly that, so the surrogate sees
    # what the outside trainer will (no fractional one-hot or off-grid artefacts).
    decoded = encoder.decode(x_adv[torch.as_tensor(picked, device=device)].cpu().numpy())
    state.adv_x.append(torch.as_tensor(encoder.encode(decoded), device=device))
    state.adv_src.append(pool[picked])
    state.adv_round.append(np.full(len(picked), history[-1].round, dtype=np.int64))
    state.adv_iu.append(influence[picked])
    state.has_copy[pool[picked]] = True


# --------------------------------------------------------------------------------------------
# the output table


def _build_output(
    run: _Run, state: _State, keep_flips: np.ndarray, keep_added: np.ndarray
) -> tuple[pd.DataFrame, tuple[FlipRecord, ...], tuple[AdditionRecord, ...]]:
    """Algorithm 1's output (A', X', Y'), line 24, as a table: the input with the kept flips
    applied, then the kept added rows, with the input's columns and dtypes."""
    frame, prepared, encoder, config = run.frame, run.prepared, run.encoder, run.config
    edit_pos = run.edit.positions
    names = [str(c) for c in frame.columns]
    label = frame.columns[names.index(prepared.label_column)]
    favourable, unfavourable = prepared.label_cell_values(frame)
    file_rows = np.asarray(prepared.frame.index)[edit_pos]  # editable row -> input position
    flipped = np.flatnonzero(keep_flips)
    flipped = flipped[np.lexsort((flipped, state.flip_round[flipped]))]  # by round, then row
    output = frame.copy()
    column = output[label].copy()
    flips: list[FlipRecord] = []
    for row in flipped:
        position = int(file_rows[row])
        new = unfavourable if state.y0[row] == 1.0 else favourable
        flips.append(
            FlipRecord(
                index=position,
                old_label=to_python(column.iat[position]),
                new_label=to_python(new),
                influence=float(state.flip_score[row]),
                delta_fairness=float(state.flip_delta[row]),
                round=int(state.flip_round[row]),
            )
        )
        column.iat[position] = new
    output[label] = column

    additions: list[AdditionRecord] = []
    if len(keep_added):
        src = state.sources()[keep_added]
        iu = np.concatenate(state.adv_iu)[keep_added]
        rounds = state.added_rounds()[keep_added]
        decoded = encoder.decode(state.added_x()[torch.as_tensor(keep_added)].cpu().numpy())
        # Copy the source rows (labels after flips, protected and dropped columns as they
        # are), then overwrite the feature columns with the decoded adversarial values.
        added = output.iloc[file_rows[src]].copy()
        for name in encoder.column_names:
            original = frame.columns[names.index(name)]
            added[original] = pd.Series(decoded[name].to_numpy(), index=added.index).astype(
                frame.dtypes[original]
            )
        output = pd.concat([output, added], ignore_index=True)
        attack = f"valid-pgd{config.threat.pgd_steps}-cat{config.threat.cat_budget}"
        additions = [
            AdditionRecord(
                source_index=int(file_rows[source]),
                attack=attack,
                eps=config.threat.eps,
                influence=float(iu[j]),
                round=int(rounds[j]),
            )
            for j, source in enumerate(src)
        ]
    output = output.astype(frame.dtypes.to_dict())
    return output, tuple(flips), tuple(additions)
