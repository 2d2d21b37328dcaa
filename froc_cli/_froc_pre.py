"""FRoC-PRE (paper Section 6, Algorithm 1): rewrite a training set so that a model an outside
party trains on it, with plain BCE, comes out fair (S_B <= delta_F) and robust (S_R >= delta_R).

Splits and what the output holds
--------------------------------
froc holds out a seeded test split (``test_size``, stratified by label x group) that is never
used for any choice: it only measures the fresh target at the end. From the remaining rows it
carves a validation split (``val_size``) on which the stopping rule measures the surrogate's
S_B and S_R. The rest is the *editable* part: only its rows are flipped and only its rows
are sources of adversarial rows, and the surrogate trains on it (edited) plus the rows added.

The output holds every input row in the input's order (label flips applied to editable rows;
validation and test rows, and rows ``--dropna`` skipped, unmodified), followed by the added
adversarial rows, with the input's columns, names, order and dtypes. The fresh target that
the report describes is trained, with plain BCE, on the output minus the test rows: exactly
what the outside trainer gets except the rows kept back to measure it, so the unmodified
validation rows dilute the edits in the report as they will for the trainer. (The test rows
dilute them a little more for the trainer; a smaller ``test_size`` dilutes less.)

Algorithm 1, with the fixes the issue asks for
----------------------------------------------
Each round trains the surrogate (warm start from the previous round, ``warm_epochs``
full-batch epochs; the first round trains ``epochs`` from scratch), measures S_B and S_R on
the validation split and stops once both hold (and the surrogate is not constant). Otherwise

* if S_B > delta_F, it flips the labels of the rows whose flip the influence function
  predicts lowers the soft bias F most (``FlipInfluence.score`` most negative, signs derived
  from first principles in ``_influence``, not eqs. 18-19 as printed), never a row already
  flipped; a row's adversarial copy is flipped with it and its predicted effect is counted
  with the row's (first-order effects add);
* if S_R < delta_R, it crafts valid adversarial rows (``ValidRecordAttack``: numeric moves
  within eps and the column's range on its grid, up to ``cat_budget`` real category
  switches, immutable and protected columns unchanged) from editable rows that have none yet,
  labelled with the source row's label after this round's flips, and adds those of smallest
  accuracy influence I_U (eq. 22).

Step size: ``step`` rows (l) per round, made larger when far from the target. The flip count
is the number of best-scoring rows whose summed predicted change of F closes half of the
remaining gap (at least l, at most ``max_step_factor`` * l). The augmentation count is
l times the relative robustness gap scaled by ``max_step_factor`` (at least l).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import _metrics as m
from ._audit import check_group_sizes
from ._config import DataSpec, Objective, ThreatModel, TrainConfig
from ._dataset import PreparedData, prepare_data
from ._device import resolve_device
from ._encoder import TabularEncoder, fit_encoder
from ._errors import InputError
from ._influence import compute_augment_influence, compute_flip_influence
from ._models import build_model, parse_model_spec
from ._split import split_indices
from ._training import predict_logits, train_model
from ._version import environment_versions
from .attacks import FeatureSpace, ValidRecordAttack, make_attack

__all__ = [
    "AdditionRecord",
    "FlipRecord",
    "PreprocessConfig",
    "PreprocessResult",
    "RobustnessKind",
    "RoundRecord",
    "TargetReport",
    "preprocess_table",
]

RobustnessKind = Literal["whitebox", "transfer"]
ProgressCallback = Callable[[str], None]

_ATTACK_CHUNK = 16_384


def _silent(_: str) -> None:
    return None


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of one FRoC-PRE run (see the module docstring).

    ``step`` is l: a fraction of the editable rows when below 1, else a row count.
    ``threat`` is the attack S_R is checked against on validation (its ``attack_space``; the
    rows written are always valid records made with its eps, PGD steps and ``cat_budget``).
    """

    data: DataSpec
    delta_f: float = 0.05
    delta_r: float = 0.6
    threat: ThreatModel = field(default_factory=lambda: ThreatModel(attack_space="valid"))
    robustness: RobustnessKind = "whitebox"
    surrogate: str = "mlp:128"
    target_model: str = "mlp:64"
    rounds: int = 300
    step: float = 0.003
    max_step_factor: int = 10
    max_flip_frac: float = 0.2
    max_augment_frac: float = 1.0
    influence_params: Literal["last", "all"] = "last"
    epochs: int = 200
    warm_epochs: int = 20
    target_epochs: int = 300
    lr: float = 0.01
    test_size: float = 0.2
    val_size: float = 0.2
    seed: int = 0
    device: str = "auto"
    compare_input: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.delta_f <= 1.0:
            raise InputError(f"--delta-f {self.delta_f}: expected a number in [0, 1]")
        if not 0.0 <= self.delta_r <= 1.0:
            raise InputError(f"--delta-r {self.delta_r}: expected a number in [0, 1]")
        if self.robustness not in ("whitebox", "transfer"):
            raise InputError(f"--robustness {self.robustness}: expected whitebox or transfer")
        if self.influence_params not in ("last", "all"):
            raise InputError(f"--influence-params {self.influence_params}: expected last or all")
        parse_model_spec(self.surrogate)
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
            ("--epochs", self.epochs),
            ("--warm-epochs", self.warm_epochs),
            ("--target-epochs", self.target_epochs),
        ):
            if count < 1:
                raise InputError(f"{name} {count}: expected at least 1")
        if self.lr <= 0:
            raise InputError(f"--lr {self.lr}: expected a positive number")


@dataclass(frozen=True)
class RoundRecord:
    """The surrogate's validation figures at the start of one round (the paper's Fig. 7)."""

    round: int
    bias_score: float
    robustness: float
    accuracy: float
    constant: bool
    flipped: int
    added: int
    seconds: float

    def violation(self, delta_f: float, delta_r: float) -> float:
        """How far from both constraints: sum of the shortfalls (0 when both hold)."""
        if self.constant:
            return math.inf
        return max(0.0, self.bias_score - delta_f) + max(0.0, delta_r - self.robustness)


@dataclass(frozen=True)
class FlipRecord:
    """One flipped label: input row position, old and new value, influence, round."""

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

    ``metrics``: accuracy, majority_floor, bias_score and robustness_{whitebox,transfer}_
    {continuous,valid,numeric}; transfer attacks are crafted on an independently initialised
    model of the same architecture trained on the same rows.
    """

    model: str
    trained_on: str
    rows: int
    metrics: dict[str, float]
    constant: bool


@dataclass(frozen=True)
class PreprocessResult:
    """What a FRoC-PRE run did and measured; ``output`` is the table to write."""

    source: str
    output: pd.DataFrame
    met: bool
    reason: str
    chosen_round: int
    trajectory: tuple[RoundRecord, ...]
    flips: tuple[FlipRecord, ...]
    additions: tuple[AdditionRecord, ...]
    target: TargetReport
    baseline: TargetReport | None
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
        """JSON-serialisable summary (no per-row records; see the manifest for those)."""
        return _clean(
            {
                "source": self.source,
                "met": self.met,
                "reason": self.reason,
                "chosen_round": self.chosen_round,
                "rounds_run": len(self.trajectory),
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
                "trajectory": [asdict(r) for r in self.trajectory],
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )


def _clean(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively (for strict JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# the working state of the rounds


@dataclass
class _State:
    """Editable rows' current labels, flips and added rows (encoded), with their rounds."""

    x: torch.Tensor
    y0: np.ndarray
    a: np.ndarray
    y: np.ndarray = field(init=False)
    flip_round: np.ndarray = field(init=False)
    flip_score: np.ndarray = field(init=False)
    flip_delta: np.ndarray = field(init=False)
    copy_of: np.ndarray = field(init=False)
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
        self.copy_of = np.full(n, -1, dtype=np.int64)  # index among added rows, -1: none

    @property
    def n_flipped(self) -> int:
        return int((self.flip_round > 0).sum())

    @property
    def n_added(self) -> int:
        return int(sum(len(s) for s in self.adv_src))

    def sources(self) -> np.ndarray:
        return np.concatenate(self.adv_src) if self.adv_src else np.zeros(0, dtype=np.int64)

    def training_set(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Editable rows (current labels) followed by the added rows (their sources' labels)."""
        src = self.sources()
        x = torch.cat([self.x, *self.adv_x]) if self.adv_x else self.x
        y = np.concatenate([self.y, self.y[src]])
        a = np.concatenate([self.a, self.a[src]])
        device = self.x.device
        return x, torch.as_tensor(y, device=device), torch.as_tensor(a, device=device)


# --------------------------------------------------------------------------------------------
# measuring


def _decisions(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return (predict_logits(model, x) > 0).cpu().numpy().astype(np.int8)


def _adversarial(
    source: nn.Module, x: torch.Tensor, y: torch.Tensor, space: FeatureSpace, threat: ThreatModel
) -> torch.Tensor:
    """PGD examples of (x, y) crafted on ``source`` in ``threat``'s space, in chunks."""
    attack = make_attack("pgd", source, space, threat)
    source.eval()
    parts = [
        attack(x[i : i + _ATTACK_CHUNK], y[i : i + _ATTACK_CHUNK])
        for i in range(0, x.shape[0], _ATTACK_CHUNK)
    ]
    return torch.cat(parts)


def _is_constant(pred: np.ndarray) -> bool:
    return bool(pred.min() == pred.max())


def _threats(threat: ThreatModel) -> dict[str, ThreatModel]:
    spaces = {
        "continuous": replace(threat, attack_space="continuous"),
        "valid": replace(threat, attack_space="valid"),
    }
    if threat.cat_budget > 0:
        spaces["numeric"] = replace(threat, attack_space="valid", cat_budget=0)
    return spaces


def _measure_target(
    model: nn.Module,
    twin: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    a: np.ndarray,
    space: FeatureSpace,
    threat: ThreatModel,
) -> tuple[dict[str, float], bool]:
    y_np = y.cpu().numpy().astype(np.int8)
    pred = _decisions(model, x)
    metrics = {
        "accuracy": m.accuracy(pred, y_np),
        "majority_floor": m.majority_floor(y_np),
        "bias_score": m.bias_score(pred, a),
    }
    for kind, source in (("whitebox", model), ("transfer", twin)):
        for name, variant in _threats(threat).items():
            x_adv = _adversarial(source, x, y, space, variant)
            metrics[f"robustness_{kind}_{name}"] = m.robustness_score(
                _decisions(model, x_adv), y_np
            )
    return metrics, _is_constant(pred)


# --------------------------------------------------------------------------------------------
# the algorithm


def _step_rows(config: PreprocessConfig, n_editable: int) -> int:
    if config.step < 1:
        return max(1, round(config.step * n_editable))
    return int(config.step)


def _flip_count(
    order: np.ndarray, delta: np.ndarray, gap_soft: float, s_b: float, config: PreprocessConfig
) -> int:
    """Rows to flip this round: enough best rows to close half the remaining soft gap."""
    base = _step_rows(config, len(delta))
    most = base * config.max_step_factor
    target = 0.5 * gap_soft * max(0.0, s_b - config.delta_f) / max(s_b, 1e-12)
    gains = np.cumsum(-delta[order[:most]])
    needed = int(np.searchsorted(gains, target)) + 1
    return int(min(len(order), max(base, min(most, needed))))


def _augment_count(s_r: float, config: PreprocessConfig, n_editable: int) -> int:
    base = _step_rows(config, n_editable)
    shortfall = max(0.0, config.delta_r - s_r) / max(config.delta_r, 1e-12)
    return max(base, round(base * config.max_step_factor * shortfall))


def preprocess_table(
    frame: pd.DataFrame,
    config: PreprocessConfig,
    *,
    source: str,
    progress: ProgressCallback = _silent,
) -> PreprocessResult:
    """Run FRoC-PRE on ``frame`` (see the module docstring); never writes anything."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    prepared = prepare_data(frame, config.data, source=source)
    device = resolve_device(config.device)
    rest, test_pos = split_indices(
        prepared.y, prepared.a, test_size=config.test_size, seed=config.seed
    )
    fit_rel, val_rel = split_indices(
        prepared.y[rest], prepared.a[rest], test_size=config.val_size, seed=config.seed + 1
    )
    edit_pos, val_pos = rest[fit_rel], rest[val_rel]
    minimum = config.data.min_group_size
    check_group_sizes(prepared, prepared.a[test_pos], minimum, "in the test split")
    check_group_sizes(prepared, prepared.a[val_pos], minimum, "in the validation split")
    encoder = fit_encoder(
        prepared.frame.iloc[edit_pos], prepared.feature_columns, prepared.immutable_columns
    )
    space = FeatureSpace.from_encoder(encoder, device)
    x_edit = torch.as_tensor(encoder.encode(prepared.frame.iloc[edit_pos]), device=device)
    x_val = torch.as_tensor(encoder.encode(prepared.frame.iloc[val_pos]), device=device)
    y_val = torch.as_tensor(prepared.y[val_pos], device=device)
    a_val_np = prepared.a[val_pos].astype(np.int8)
    y_val_np = prepared.y[val_pos].astype(np.int8)
    a_val = torch.as_tensor(prepared.a[val_pos], device=device)
    state = _State(x=x_edit, y0=prepared.y[edit_pos].copy(), a=prepared.a[edit_pos].copy())
    n_edit = len(edit_pos)
    max_flips = math.floor(config.max_flip_frac * n_edit)
    max_adds = math.floor(config.max_augment_frac * n_edit)
    seconds["prepare"] = time.perf_counter() - started

    train_cfg = TrainConfig(model=config.surrogate, lr=config.lr, seed=config.seed, epochs=1)
    surrogate = build_model(config.surrogate, encoder.n_features, seed=config.seed, device=device)
    twin = (
        build_model(config.surrogate, encoder.n_features, seed=config.seed + 1, device=device)
        if config.robustness == "transfer"
        else None
    )
    check_threat = config.threat
    row_attack_threat = replace(config.threat, attack_space="valid")
    rng = np.random.default_rng(config.seed)
    trajectory: list[RoundRecord] = []
    stop_reason = f"budget of {config.rounds} rounds spent"
    progress(
        f"{n_edit} editable rows, {len(val_pos)} validation, {len(test_pos)} held out; "
        f"surrogate {config.surrogate} on {device}"
    )
    mark = time.perf_counter()
    for round_no in range(1, config.rounds + 1):
        round_start = time.perf_counter()
        x_tr, y_tr, a_tr = state.training_set()
        epochs = config.epochs if round_no == 1 else config.warm_epochs
        for model in (surrogate, twin):
            if model is not None:
                train_model(
                    model,
                    x_tr,
                    y_tr,
                    a_tr,
                    objective=Objective(),
                    config=train_cfg,
                    space=space,
                    epochs=epochs,
                )
        pred = _decisions(surrogate, x_val)
        s_b = m.bias_score(pred, a_val_np)
        attacker = surrogate if twin is None else twin
        x_adv_val = _adversarial(attacker, x_val, y_val, space, check_threat)
        s_r = m.robustness_score(_decisions(surrogate, x_adv_val), y_val_np)
        accuracy = m.accuracy(pred, y_val_np)
        constant = _is_constant(pred)
        record = RoundRecord(
            round=round_no,
            bias_score=s_b,
            robustness=s_r,
            accuracy=accuracy,
            constant=constant,
            flipped=state.n_flipped,
            added=state.n_added,
            seconds=0.0,
        )
        need_f = s_b > config.delta_f
        need_r = s_r < config.delta_r
        if not (need_f or need_r) and not constant:
            trajectory.append(record)
            stop_reason = f"both constraints met on validation at round {round_no}"
            break
        can_flip = need_f and state.n_flipped < max_flips
        can_add = need_r and state.n_added < max_adds
        if not (can_flip or can_add):
            trajectory.append(record)
            stop_reason = (
                f"limits reached at round {round_no} (--max-flip-frac {config.max_flip_frac}, "
                f"--max-augment-frac {config.max_augment_frac})"
                if not constant
                else f"the surrogate became constant at round {round_no}"
            )
            break
        if can_flip:
            _flip_round(
                state, surrogate, x_tr, y_tr, x_val, y_val, a_val, s_b, max_flips, round_no, config
            )
        if can_add:
            _augment_round(
                state,
                surrogate,
                encoder,
                space,
                row_attack_threat,
                s_r,
                max_adds,
                round_no,
                rng,
                config,
            )
        trajectory.append(replace(record, seconds=time.perf_counter() - round_start))
        progress(
            f"round {round_no}: S_B {s_b:.4f} S_R {s_r:.4f} acc {accuracy:.4f}; "
            f"flipped {state.n_flipped}, added {state.n_added}"
        )
    seconds["rounds"] = time.perf_counter() - mark

    met_rounds = [r for r in trajectory if r.violation(config.delta_f, config.delta_r) == 0.0]
    if met_rounds:
        chosen = met_rounds[0]
    else:
        chosen = min(trajectory, key=lambda r: r.violation(config.delta_f, config.delta_r))
    state_round = chosen.round  # edits made in rounds < chosen.round are kept

    mark = time.perf_counter()
    output, flips, additions, keep_added = _build_output(
        frame, prepared, encoder, state, edit_pos, state_round, config
    )
    seconds["output"] = time.perf_counter() - mark

    mark = time.perf_counter()
    progress(f"training a fresh {config.target_model} on the output (plain BCE)")
    x_test = torch.as_tensor(encoder.encode(prepared.frame.iloc[test_pos]), device=device)
    y_test = torch.as_tensor(prepared.y[test_pos], device=device)
    a_test = prepared.a[test_pos].astype(np.int8)
    y_edit_final = np.where(
        (state.flip_round > 0) & (state.flip_round < state_round), 1 - state.y0, state.y0
    ).astype(np.float32)
    src = state.sources()[keep_added]
    x_added = (
        torch.cat(state.adv_x)[torch.as_tensor(keep_added, device=device)]
        if len(src)
        else x_edit[:0]
    )
    x_out = torch.cat([x_edit, x_val, x_added])
    y_out = np.concatenate([y_edit_final, prepared.y[val_pos], y_edit_final[src]])
    a_out = np.concatenate([state.a, prepared.a[val_pos], state.a[src]])
    target = _train_and_measure(
        config,
        encoder,
        space,
        x_out,
        y_out,
        a_out,
        x_test,
        y_test,
        a_test,
        "output minus the held-out rows",
        device,
    )
    baseline = None
    if config.compare_input:
        progress(f"training a fresh {config.target_model} on the input, for comparison")
        x_in = torch.cat([x_edit, x_val])
        y_in = np.concatenate([state.y0, prepared.y[val_pos]])
        a_in = np.concatenate([state.a, prepared.a[val_pos]])
        baseline = _train_and_measure(
            config,
            encoder,
            space,
            x_in,
            y_in,
            a_in,
            x_test,
            y_test,
            a_test,
            "input minus the held-out rows",
            device,
        )
    seconds["target"] = time.perf_counter() - mark

    met = bool(met_rounds) and not target.constant
    if met_rounds and target.constant:
        reason = (
            f"{stop_reason}, but the fresh {config.target_model} trained on the output is "
            "constant: not a success"
        )
    elif met:
        reason = stop_reason
    else:
        reason = (
            f"not met: {stop_reason}; best round {chosen.round} "
            f"(S_B {chosen.bias_score:.4f}, S_R {chosen.robustness:.4f})"
        )
    seconds["total"] = time.perf_counter() - started
    return PreprocessResult(
        source=source,
        output=output,
        met=met,
        reason=reason,
        chosen_round=chosen.round,
        trajectory=tuple(trajectory),
        flips=flips,
        additions=additions,
        target=target,
        baseline=baseline,
        label_column=prepared.label_column,
        positive_value=prepared.positive_value,
        protected_column=prepared.protected_column,
        protected_values=prepared.protected_values,
        rows={
            "input": len(frame),
            "used": prepared.n_rows,
            "editable": n_edit,
            "validation": len(val_pos),
            "test": len(test_pos),
            "output": len(output),
            "features": encoder.n_features,
        },
        settings=_settings(config, str(device)),
        seconds=seconds,
    )


def _settings(config: PreprocessConfig, device: str) -> dict[str, Any]:
    settings = asdict(config)
    settings["device"] = device
    settings["threat"]["pgd_step_size"] = config.threat.pgd_step_size
    settings["versions"] = environment_versions()
    return settings


def _train_and_measure(
    config: PreprocessConfig,
    encoder: TabularEncoder,
    space: FeatureSpace,
    x: torch.Tensor,
    y: np.ndarray,
    a: np.ndarray,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    a_test: np.ndarray,
    trained_on: str,
    device: torch.device,
) -> TargetReport:
    """A fresh target (and its transfer twin, seed + 1) trained plainly, measured on test."""
    cfg = TrainConfig(model=config.target_model, lr=config.lr, seed=config.seed, epochs=1)
    models = []
    for seed in (config.seed, config.seed + 1):
        model = build_model(config.target_model, encoder.n_features, seed=seed, device=device)
        train_model(
            model,
            x,
            torch.as_tensor(y, device=device),
            torch.as_tensor(a, device=device),
            objective=Objective(),
            config=replace(cfg, seed=seed),
            space=space,
            epochs=config.target_epochs,
        )
        models.append(model)
    metrics, constant = _measure_target(
        models[0], models[1], x_test, y_test, a_test, space, config.threat
    )
    return TargetReport(
        model=config.target_model,
        trained_on=trained_on,
        rows=int(x.shape[0]),
        metrics=metrics,
        constant=constant,
    )


def _flip_round(
    state: _State,
    surrogate: nn.Module,
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    a_val: torch.Tensor,
    s_b: float,
    max_flips: int,
    round_no: int,
    config: PreprocessConfig,
) -> None:
    influence = compute_flip_influence(
        surrogate, x_tr, y_tr, x_val, y_val, a_val, params=config.influence_params
    )
    n = len(state.y)
    delta_f = influence.delta_fairness[:n].cpu().numpy().copy()
    delta_l = influence.delta_loss[:n].cpu().numpy().copy()
    src = state.sources()
    if len(src):
        # A row's adversarial copy is flipped with it: first-order effects add.
        np.add.at(delta_f, src, influence.delta_fairness[n:].cpu().numpy())
        np.add.at(delta_l, src, influence.delta_loss[n:].cpu().numpy())
    scale = influence.loss_scale
    score = delta_f * np.exp(-np.abs(delta_l) / scale) if scale > 0 else delta_f
    score = np.where(state.flip_round > 0, np.inf, score)
    order = np.argsort(score, kind="stable")
    order = order[score[order] < 0]
    if len(order) == 0:
        return
    k = _flip_count(order, delta_f, influence.fairness, s_b, config)
    k = min(k, max_flips - state.n_flipped)
    rows = order[:k]
    state.y[rows] = 1.0 - state.y[rows]
    state.flip_round[rows] = round_no
    state.flip_score[rows] = score[rows]
    state.flip_delta[rows] = delta_f[rows]


def _augment_round(
    state: _State,
    surrogate: nn.Module,
    encoder: TabularEncoder,
    space: FeatureSpace,
    threat: ThreatModel,
    s_r: float,
    max_adds: int,
    round_no: int,
    rng: np.random.Generator,
    config: PreprocessConfig,
) -> None:
    free = np.flatnonzero(state.copy_of < 0)
    if len(free) == 0:
        return
    k = min(_augment_count(s_r, config, len(state.y)), max_adds - state.n_added, len(free))
    pool_size = min(len(free), max(4 * k, 4096))
    pool = np.sort(rng.choice(free, size=pool_size, replace=False))
    device = state.x.device
    pool_t = torch.as_tensor(pool, device=device)
    x_pool = state.x[pool_t]
    y_pool = torch.as_tensor(state.y[pool], device=device)
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
    x_adv = torch.cat(
        [
            attack(x_pool[i : i + _ATTACK_CHUNK], y_pool[i : i + _ATTACK_CHUNK])
            for i in range(0, pool_size, _ATTACK_CHUNK)
        ]
    )
    # What is written is the decoded record; train on exactly that (no fractional artefacts).
    x_adv = torch.as_tensor(encoder.encode(encoder.decode(x_adv.cpu().numpy())), device=device)
    influence = (
        compute_augment_influence(surrogate, x_adv, y_pool, params=config.influence_params)
        .cpu()
        .numpy()
    )
    picked = np.argsort(influence, kind="stable")[:k]
    picked = np.sort(picked)
    start = state.n_added
    state.adv_x.append(x_adv[torch.as_tensor(picked, device=device)])
    state.adv_src.append(pool[picked])
    state.adv_round.append(np.full(len(picked), round_no, dtype=np.int64))
    state.adv_iu.append(influence[picked])
    state.copy_of[pool[picked]] = np.arange(start, start + len(picked))


# --------------------------------------------------------------------------------------------
# the output table


def _label_values(frame: pd.DataFrame, prepared: PreparedData) -> tuple[Any, Any]:
    """The cell values written for a favourable and an unfavourable label: the most common
    original value of each outcome (the file's own values and type)."""
    column = frame[prepared.label_column].loc[prepared.frame.index]
    values: list[Any] = []
    for outcome in (1.0, 0.0):
        counts = column[prepared.y == outcome].value_counts(sort=False)
        values.append(counts.index[int(np.argmax(counts.to_numpy()))])
    return values[0], values[1]


def _build_output(
    frame: pd.DataFrame,
    prepared: PreparedData,
    encoder: TabularEncoder,
    state: _State,
    edit_pos: np.ndarray,
    state_round: int,
    config: PreprocessConfig,
) -> tuple[pd.DataFrame, tuple[FlipRecord, ...], tuple[AdditionRecord, ...], np.ndarray]:
    """The input with the flips of rounds < ``state_round`` applied, then the added rows."""
    label = frame.columns[list(map(str, frame.columns)).index(prepared.label_column)]
    favourable, unfavourable = _label_values(frame, prepared)
    file_rows = np.asarray(prepared.frame.index)[edit_pos]  # input row positions
    kept = (state.flip_round > 0) & (state.flip_round < state_round)
    flipped = np.flatnonzero(kept)
    flipped = flipped[np.lexsort((flipped, state.flip_round[flipped]))]
    output = frame.copy()
    label_at = output.columns.get_loc(label)
    flips: list[FlipRecord] = []
    for row in flipped:
        position = int(file_rows[row])
        old = output.iat[position, label_at]
        new = unfavourable if state.y0[row] == 1.0 else favourable
        flips.append(
            FlipRecord(
                index=position,
                old_label=_python(old),
                new_label=_python(new),
                influence=float(state.flip_score[row]),
                delta_fairness=float(state.flip_delta[row]),
                round=int(state.flip_round[row]),
            )
        )
    if len(flipped):
        flip_positions = file_rows[flipped]
        new_values = [unfavourable if state.y0[row] == 1.0 else favourable for row in flipped]
        column = output[label].copy()
        column.iloc[flip_positions] = pd.Series(new_values, dtype=column.dtype).to_numpy()
        output[label] = column

    rounds = np.concatenate(state.adv_round) if state.adv_round else np.zeros(0, np.int64)
    keep_added = np.flatnonzero(rounds < state_round)
    additions: list[AdditionRecord] = []
    if len(keep_added):
        src = state.sources()[keep_added]
        iu = np.concatenate(state.adv_iu)[keep_added]
        x_added = torch.cat(state.adv_x)[torch.as_tensor(keep_added)].cpu().numpy()
        decoded = encoder.decode(x_added)
        added = output.iloc[file_rows[src]].copy()  # labels after flips, other columns copied
        for name in encoder.column_names:
            column = next(c for c in frame.columns if str(c) == name)
            added[column] = pd.Series(decoded[name].to_numpy(), index=added.index).astype(
                frame.dtypes[column]
            )
        output = pd.concat([output, added], ignore_index=True)
        attack_name = f"valid-pgd{config.threat.pgd_steps}-cat{config.threat.cat_budget}"
        for j, source_row in enumerate(src):
            additions.append(
                AdditionRecord(
                    source_index=int(file_rows[source_row]),
                    attack=attack_name,
                    eps=config.threat.eps,
                    influence=float(iu[j]),
                    round=int(rounds[keep_added[j]]),
                )
            )
    output = output.astype(frame.dtypes.to_dict())
    return output, tuple(flips), tuple(additions), keep_added


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
