"""``froc compare``: every method side by side on one seeded split (paper Section 7).

Methods are small functions registered in :data:`METHODS`; each returns the deployed model (and,
for the grid methods, the grid it searched). The engine evaluates every method on the same
held-out test rows with the same attacks and records one :class:`MethodRow` per method and seed;
a method that raises is reported in its row with the reason and the others still run.

The deployed model
    Every method is evaluated as a *deployed pipeline* that takes the encoded record with the
    row's group appended as one extra, immutable column: ``x_ext = [x, a]`` (see
    :mod:`froc_cli.methods._pipelines`). Attackers perturb ``x`` (within the threat model's
    eps-ball, the group never changes); the pipeline may use ``a``.

Sequential baselines (paper 7.1-7.2), each over the lambda grid {0, 0.01, 0.05, 0.1, 0.5, 1}
    ``rbf-rw`` / ``rbf-dir`` (robustness before fairness) and ``fbr-rw`` / ``fbr-dir`` (fairness
    before robustness) are defined and trained in :mod:`froc_cli.methods._sequential`; this
    module evaluates every grid point and reports the setting chosen on the VALIDATION split
    (:func:`froc_cli.methods.select_on_validation`): the most accurate setting meeting both
    constraints there, else the one closest to meeting them (sum of the two shortfalls), ties
    to accuracy. Every grid point's test figures are kept (JSON, report, plot).

Massaging (Kamiran and Calders, 2012), one setting
    ``massaging`` relabels the fit rows (:func:`froc_cli.methods.massage_labels`: a logistic
    ranker on the features, the parity count of promotions in the protected group and demotions
    in the other) and trains the plain target, same architecture, epochs and seed, on them.

Attacks
    White-box FGSM and PGD are crafted on each deployed pipeline itself. Through the DIR repair
    the gradient is passed straight through: the repair is non-decreasing in every feature, so
    the sign of the gradient (all FGSM and PGD use) is exact wherever the repair moves at all.
    Transfer attacks are crafted once per seed on an independently trained plain model (same
    architecture and rows, another initialisation and shuffling seed) and fed to every pipeline.
    The robustness constraint is judged on white-box PGD: S_R(PGD) >= delta_R; the fairness
    constraint on clean decisions: S_B <= delta_F.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core._config import (
    AttackKind,
    DataSpec,
    Objective,
    ThreatModel,
    TrainConfig,
    check_fraction,
)
from froc_cli.core._device import resolve_device, torch_threads
from froc_cli.core._errors import InputError
from froc_cli.core._io import read_table, to_jsonable
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import PreparedData, prepare_data
from froc_cli.data._encoder import TabularEncoder, fit_encoder
from froc_cli.data._rows import EncodedRows, encode_rows
from froc_cli.data._splits import check_group_sizes, judge_groups, split_indices
from froc_cli.methods._baselines import massage_labels, massaging_scores
from froc_cli.methods._froc_in import (
    EpochProgress,
    FitOutcome,
    FrocInConfig,
    fit_froc_in,
)
from froc_cli.methods._froc_pre import PreprocessConfig, PreprocessResult, preprocess_table
from froc_cli.methods._pipelines import GroupBlind, extended_input, with_group_column
from froc_cli.methods._sequential import (
    Fairness,
    GridFit,
    SequentialConfig,
    fairness_before_robustness,
    robustness_before_fairness,
    select_on_validation,
    validation_shortfall,
)
from froc_cli.metrics._evaluate import attack_decisions, attack_in_chunks, evaluate_decisions
from froc_cli.metrics._rules import is_degenerate, parity_flip_count, parity_flip_quotas
from froc_cli.metrics._scores import robustness_score
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._training import predict_logits, train_model

__all__ = [
    "DEFAULT_LAMBDAS",
    "METHODS",
    "METHOD_NAMES",
    "TABLE_METRICS",
    "CompareConfig",
    "CompareContext",
    "CompareResult",
    "GridPoint",
    "MethodOutcome",
    "MethodRow",
    "MethodSpec",
    "MethodSummary",
    "RepeatResult",
    "compare_file",
    "compare_table",
    "is_degenerate",
]

DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0)
TABLE_METRICS: tuple[str, ...] = (
    "accuracy",
    "bias_score",
    "robustness_fgsm",
    "robustness_pgd",
    "transfer_fgsm",
    "transfer_pgd",
    "robustness_balanced",
    "robustness_retention",
    "majority_floor",
)
_TRANSFER_SEED_OFFSET = 1000


# --------------------------------------------------------------------------------------------
# Configuration, progress and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how.

    ``test_size`` of the rows are held out for the table; ``val_size`` of the remaining
    training part is held out again for choosing settings (the lambda grids, FRoC-IN's search);
    every method trains on the rest. Seeds are ``train.seed + r`` for repeat ``r``.
    ``threads``: torch CPU threads while the comparison runs (restored afterwards; ``None``
    keeps the caller's setting). 1, as for audit and train-in, gives the same models for a seed
    on any machine and is the fastest on a busy one.
    """

    data: DataSpec
    delta_f: float
    delta_r: float
    threat: ThreatModel = field(default_factory=ThreatModel)
    train: TrainConfig = field(default_factory=TrainConfig)
    test_size: float = 0.3
    val_size: float = 0.2
    repeats: int = 1
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    adv_epochs: int = 50
    repair_level: float = 1.0
    froc_in_budget_s: float = 120.0
    froc_pre_rounds: int = 150
    threads: int | None = 1
    methods: tuple[str, ...] = ()
    sweep: bool = False
    sweep_lambdas_f: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    sweep_lambdas_r: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    sweep_deltas_f: tuple[float, ...] = (0.02, 0.05, 0.1)
    sweep_deltas_r: tuple[float, ...] = (0.3, 0.5, 0.7)

    def __post_init__(self) -> None:
        check_fraction(self.delta_f, "--delta-f")
        check_fraction(self.delta_r, "--delta-r")
        if not 0.0 < self.test_size < 1.0:
            raise InputError(f"--test-size {self.test_size}: expected a fraction in (0, 1)")
        if not 0.0 < self.val_size < 1.0:
            raise InputError(f"--val-size {self.val_size}: expected a fraction in (0, 1)")
        if self.repeats < 1:
            raise InputError(f"--repeats {self.repeats}: expected at least 1")
        if self.adv_epochs < 1:
            raise InputError(f"--adv-epochs {self.adv_epochs}: expected at least 1")
        if not self.froc_in_budget_s > 0:
            raise InputError(f"--froc-in-budget {self.froc_in_budget_s}: expected seconds > 0")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected at least 1")
        if self.froc_pre_rounds < 1:
            raise InputError(f"--froc-pre-rounds {self.froc_pre_rounds}: expected at least 1")
        if not 0.0 <= self.repair_level <= 1.0:
            raise InputError(f"repair level {self.repair_level}: expected a number in [0, 1]")
        for name, grid in (
            ("--lambdas", self.lambdas),
            ("sweep lambda_F grid", self.sweep_lambdas_f),
            ("sweep lambda_R grid", self.sweep_lambdas_r),
            ("sweep delta_F grid", self.sweep_deltas_f),
            ("sweep delta_R grid", self.sweep_deltas_r),
        ):
            if not grid:
                raise InputError(f"{name}: expected at least one value")
            bad = [v for v in grid if not (math.isfinite(v) and v >= 0)]
            if bad:
                raise InputError(f"{name}: {bad[0]} is not a non-negative number")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise InputError(
                f"--methods {unknown[0]!r}: unknown method; expected some of "
                f"{', '.join(METHOD_NAMES)}"
            )
        parse_model_spec(self.train.model)

    @property
    def selected_methods(self) -> tuple[str, ...]:
        """The methods to run, in table order (all of them by default)."""
        if not self.methods:
            return METHOD_NAMES
        return tuple(m for m in METHOD_NAMES if m in self.methods)

    @property
    def seeds(self) -> tuple[int, ...]:
        """One seed per repeat."""
        return tuple(self.train.seed + r for r in range(self.repeats))


@dataclass(frozen=True)
class GridPoint:
    """One setting a method tried: its parameters, validation and test figures.

    ``kind`` is ``grid`` (searched to choose the method's row) or ``sweep`` (``--sweep``).
    """

    method: str
    seed: int
    kind: str
    setting: str
    params: dict[str, float]
    validation: dict[str, float]
    test: dict[str, float]
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class MethodRow:
    """One method on one seed: test figures, constraints, wall time, or why it failed."""

    method: str
    label: str
    seed: int
    status: str
    setting: str
    metrics: dict[str, float]
    validation: dict[str, float]
    params: dict[str, Any]
    seconds: float
    meets_fairness: bool | None
    meets_robustness: bool | None
    reason: str | None = None
    cpu_seconds: float = math.nan
    degenerate: bool | None = None

    @property
    def ok(self) -> bool:
        """True when the method ran."""
        return self.status == "ok"

    @property
    def meets_both(self) -> bool:
        """S_B <= delta_F and S_R(PGD) >= delta_R on the test split, by a model that is not
        degenerate (see :func:`is_degenerate`: a constant model is fair, and often "robust",
        for free)."""
        return bool(self.meets_fairness and self.meets_robustness and self.degenerate is False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "meets_both": self.meets_both if self.ok else None}


@dataclass(frozen=True)
class RepeatResult:
    """Every method on one seeded split."""

    seed: int
    rows: tuple[MethodRow, ...]
    grid: tuple[GridPoint, ...]
    counts: dict[str, int]
    seconds: dict[str, float]
    notes: tuple[str, ...] = ()
    too_small: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class MethodSummary:
    """A method over the repeats: mean and standard deviation of each figure."""

    method: str
    label: str
    runs: int
    failures: int
    reasons: tuple[str, ...]
    settings: tuple[str, ...]
    mean: dict[str, float]
    sd: dict[str, float]
    meets_both: int
    seconds: float
    cpu_seconds: float = math.nan
    degenerate: int = 0

    @property
    def always_meets_both(self) -> bool:
        """Both constraints met on the test split of every seed, with no failed run."""
        return self.runs > 0 and self.failures == 0 and self.meets_both == self.runs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "always_meets_both": self.always_meets_both}


@dataclass(frozen=True)
class CompareResult:
    """A comparison: per-seed rows, per-method summaries and the settings behind them."""

    source: str
    config: CompareConfig
    label_column: str
    positive_value: str
    protected_column: str
    protected_values: tuple[str, ...]
    repeats: tuple[RepeatResult, ...]
    summaries: tuple[MethodSummary, ...]
    settings: dict[str, Any]
    seconds: float
    command: str | None = None
    cpu_seconds: float = math.nan
    protected: dict[str, Any] = field(default_factory=dict)

    @property
    def fairness(self) -> str:
        """The criterion S_B measures."""
        return str(self.protected.get("fairness", "parity"))

    def too_small(self) -> dict[str, int]:
        """Groups too small to judge on some seed's test split (name: fewest rows it had)."""
        small: dict[str, int] = {}
        for repeat in self.repeats:
            for name, rows in repeat.too_small:
                small[name] = min(rows, small.get(name, rows))
        return small

    def protected_block(self) -> dict[str, Any]:
        """The JSON ``protected`` block: column and group a=0 (binary), or the groups judged on
        every seed and those too small on some (each seed's are in its notes); the criterion
        unless it is the paper's parity between two groups."""
        if "groups" not in self.protected:
            return {
                "column": self.protected_column,
                "group_a0": list(self.protected_values),
                **({"fairness": self.fairness} if "fairness" in self.protected else {}),
            }
        small = self.too_small()
        return {
            "column": self.protected_column,
            "groups": [g for g in self.protected["groups"] if g not in small],
            "too_small": small,
            "fairness": self.fairness,
        }

    @property
    def any_meets_both(self) -> bool:
        """True when some method met both constraints on every seed (exit code 0)."""
        return any(s.always_meets_both for s in self.summaries)

    def summary(self, method: str) -> MethodSummary:
        """The summary of ``method``."""
        for entry in self.summaries:
            if entry.method == method:
                return entry
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (NaN becomes None)."""
        return to_jsonable(
            {
                "source": self.source,
                "command": self.command,
                "label": {"column": self.label_column, "favourable": self.positive_value},
                "protected": self.protected_block(),
                "constraints": {
                    "delta_f": self.config.delta_f,
                    "delta_r": self.config.delta_r,
                    "fairness": "S_B <= delta_F on the test split (clean decisions)",
                    "robustness": "S_R(PGD, white-box) >= delta_R on the test split",
                },
                "threat_model": {
                    **asdict(self.config.threat),
                    "pgd_step_size": self.config.threat.pgd_step_size,
                    "description": self.config.threat.describe(),
                },
                "methods": [s.to_dict() for s in self.summaries],
                "repeats": [
                    {
                        "seed": r.seed,
                        "rows": [row.to_dict() for row in r.rows],
                        "grid": [p.to_dict() for p in r.grid],
                        "counts": r.counts,
                        "seconds": r.seconds,
                        "notes": list(r.notes),
                    }
                    for r in self.repeats
                ],
                "any_method_meets_both": self.any_meets_both,
                "settings": self.settings,
                "seconds": self.seconds,
                "cpu_seconds": self.cpu_seconds,
            }
        )


# --------------------------------------------------------------------------------------------
# The per-seed context every method works in
# --------------------------------------------------------------------------------------------


@dataclass
class MethodOutcome:
    """What a method function returns: its deployed model and, for grids, what it tried."""

    model: nn.Module
    setting: str
    params: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    grid: list[GridPoint] = field(default_factory=list)
    test: dict[str, float] | None = None  # set when already measured (a chosen grid point)


class CompareContext:
    """One seed's split, encoder, attacks and shared models; methods read what they need."""

    def __init__(
        self,
        *,
        config: CompareConfig,
        frame: pd.DataFrame,
        source: str,
        prepared: PreparedData,
        encoder: TabularEncoder,
        device: torch.device,
        seed: int,
        positions: tuple[np.ndarray, np.ndarray, np.ndarray],
        notify: ProgressCallback,
    ) -> None:
        self.config = config
        self.frame = frame
        self.source = source
        self.prepared = prepared
        self.encoder = encoder
        self.device = device
        self.seed = seed
        self.threat = config.threat
        self.train_config = replace(config.train, seed=seed)
        self.space = FeatureSpace.from_encoder(encoder, device)
        self.space_ext = with_group_column(self.space)
        fit_pos, val_pos, test_pos = positions
        self.train_positions = np.sort(np.concatenate([fit_pos, val_pos]))
        self.test_positions = test_pos
        self.fit = encode_rows(prepared, encoder, fit_pos, device)
        self.val = encode_rows(prepared, encoder, val_pos, device)
        self.test = encode_rows(prepared, encoder, test_pos, device)
        self.notify = notify
        self.transfer: dict[str, torch.Tensor] = {}
        self._plain: nn.Module | None = None

    # ---- models ---------------------------------------------------------------------------

    def new_model(self, seed: int | None = None) -> nn.Module:
        """A freshly initialised target of the configured architecture."""
        return build_model(
            self.train_config.model,
            self.encoder.n_features,
            seed=self.seed if seed is None else seed,
            device=self.device,
        )

    def train(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        a: torch.Tensor,
        *,
        objective: Objective | None = None,
        sample_weight: torch.Tensor | None = None,
        model: nn.Module | None = None,
        epochs: int | None = None,
        seed: int | None = None,
    ) -> nn.Module:
        """Train (a copy of ``model``, or a fresh model) with THE training loop."""
        net = copy.deepcopy(model) if model is not None else self.new_model(seed)
        config = self.train_config if seed is None else replace(self.train_config, seed=seed)
        train_model(
            net,
            x,
            y,
            a,
            objective=objective if objective is not None else Objective(),
            config=config,
            space=self.space,
            sample_weight=sample_weight,
            epochs=epochs,
        )
        return net

    def plain_model(self) -> nn.Module:
        """The plainly trained target (trained once per seed, shared by methods)."""
        if self._plain is None:
            self._plain = self.train(self.fit.x, self.fit.y, self.fit.a)
        return self._plain

    # ---- attacks and evaluation -----------------------------------------------------------

    def craft(
        self,
        model: nn.Module,
        kind: AttackKind,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        extended: bool,
    ) -> torch.Tensor:
        """Adversarial examples of ``x`` against ``model`` (the threat model's ``kind``)."""
        space = self.space_ext if extended else self.space
        attack = make_attack(kind, model, space, self.threat)
        model.eval()
        return attack_in_chunks(attack, x, y)

    def prepare_transfer(self) -> None:
        """Craft the transfer attacks on an independently trained plain model."""
        source = self.train(
            self.fit.x, self.fit.y, self.fit.a, seed=self.seed + _TRANSFER_SEED_OFFSET
        )
        blind = GroupBlind(source)
        kinds: tuple[AttackKind, ...] = ("fgsm", "pgd")
        for kind in kinds:
            self.transfer[kind] = self.craft(
                blind, kind, extended_input(self.test), self.test.y, extended=True
            )

    def evaluate(self, model: nn.Module, rows: EncodedRows, *, transfer: bool) -> dict[str, float]:
        """Clean, white-box FGSM/PGD (and transfer) figures of a deployed pipeline on ``rows``."""
        decisions = attack_decisions(
            model,
            extended_input(rows),
            rows.y,
            rows.a_numpy,
            self.space_ext,
            self.threat,
            **self.prepared.judging,
        )
        metrics = dict(evaluate_decisions(decisions).metrics)
        share = float(decisions.pred.mean()) if len(decisions.pred) else math.nan
        metrics["rarer_decision_share"] = min(share, 1.0 - share)
        metrics["rows"] = float(len(decisions.pred))
        y = rows.y_numpy
        for kind in ("fgsm", "pgd"):
            name = f"transfer_{kind}"
            if transfer and kind in self.transfer:
                pred = (predict_logits(model, self.transfer[kind]) > 0).cpu().numpy()
                metrics[name] = robustness_score(pred.astype(np.int8), y)
            elif transfer:
                metrics[name] = math.nan
        return metrics

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation figures used to choose settings."""
        full = self.evaluate(model, self.val, transfer=False)
        keep = (
            "accuracy",
            "majority_floor",
            "bias_score",
            "robustness_fgsm",
            "robustness_pgd",
            "rarer_decision_share",
            "rows",
        )
        return {k: full[k] for k in keep}

    def grid_point(
        self, method: str, setting: str, params: dict[str, float], model: nn.Module, kind: str
    ) -> tuple[GridPoint, nn.Module]:
        """Validate and test one setting of a method."""
        point = GridPoint(
            method=method,
            seed=self.seed,
            kind=kind,
            setting=setting,
            params=params,
            validation=self.validate(model),
            test=self.evaluate(model, self.test, transfer=True),
        )
        return point, model


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


MethodFunction = Callable[[CompareContext], MethodOutcome]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its table label, a one-line description and its function."""

    name: str
    label: str
    description: str
    run: MethodFunction


def _run_plain(ctx: CompareContext) -> MethodOutcome:
    model = GroupBlind(ctx.plain_model())
    return MethodOutcome(model=model, setting="plain BCE", validation=ctx.validate(model))


def _choose(ctx: CompareContext, points: list[tuple[GridPoint, nn.Module]]) -> MethodOutcome:
    index = select_on_validation(
        [p.validation for p, _ in points], ctx.config.delta_f, ctx.config.delta_r
    )
    grid = [replace(p, chosen=i == index) for i, (p, _) in enumerate(points)]
    chosen, model = points[index]
    feasible = validation_shortfall(chosen.validation, ctx.config.delta_f, ctx.config.delta_r) == 0
    how = "best val. accuracy meeting both" if feasible else "closest to the box on val."
    return MethodOutcome(
        model=model,
        setting=f"{chosen.setting} ({how})",
        params=dict(chosen.params),
        validation=dict(chosen.validation),
        grid=grid,
        test=dict(chosen.test),
    )


def _sequential_config(ctx: CompareContext, fairness: Fairness) -> SequentialConfig:
    cfg = ctx.config
    return SequentialConfig(
        fairness=fairness,
        lambdas=cfg.lambdas,
        adv_epochs=cfg.adv_epochs,
        threat=ctx.threat,
        numeric_columns=ctx.encoder.numeric_features(),
        repair_level=cfg.repair_level,
    )


def _evaluate_grid(ctx: CompareContext, name: str, fits: Iterator[GridFit]) -> MethodOutcome:
    """Validate and test each grid point as it is trained, then choose on validation."""
    points = [ctx.grid_point(name, f.setting, f.params, f.model, "grid") for f in fits]
    return _choose(ctx, points)


def _run_rbf(ctx: CompareContext, name: str, fairness: Fairness) -> MethodOutcome:
    fits = robustness_before_fairness(
        ctx.fit,
        ctx.plain_model(),
        ctx.train,
        _sequential_config(ctx, fairness),
        space=ctx.space,
        progress=ctx.notify,
    )
    return _evaluate_grid(ctx, name, fits)


def _run_fbr(ctx: CompareContext, name: str, fairness: Fairness) -> MethodOutcome:
    fits = fairness_before_robustness(
        ctx.fit, ctx.train, _sequential_config(ctx, fairness), progress=ctx.notify
    )
    return _evaluate_grid(ctx, name, fits)


def _run_rbf_rw(ctx: CompareContext) -> MethodOutcome:
    return _run_rbf(ctx, "rbf-rw", "rw")


def _run_rbf_dir(ctx: CompareContext) -> MethodOutcome:
    return _run_rbf(ctx, "rbf-dir", "dir")


def _run_fbr_rw(ctx: CompareContext) -> MethodOutcome:
    return _run_fbr(ctx, "fbr-rw", "rw")


def _run_fbr_dir(ctx: CompareContext) -> MethodOutcome:
    return _run_fbr(ctx, "fbr-dir", "dir")


def _run_massaging(ctx: CompareContext) -> MethodOutcome:
    """Kamiran-Calders massaging of the fit rows' labels, then plain BCE on the new labels."""
    y = ctx.fit.y_numpy
    a = ctx.fit.a_numpy
    scores = massaging_scores(ctx.fit.x.cpu().numpy(), y, threads=torch.get_num_threads())
    if not ctx.prepared.binary:
        return _massage_groups(ctx, scores, y, a)
    pairs = parity_flip_count(y, a)
    labels = massage_labels(scores, y, a, pairs)
    ctx.notify(f"massaging: {pairs} promotions in group a=0, {pairs} demotions in group a=1")
    y_new = torch.as_tensor(labels, dtype=ctx.fit.y.dtype, device=ctx.fit.y.device)
    model = GroupBlind(ctx.train(ctx.fit.x, y_new, ctx.fit.a))
    n = len(y)
    rates = [float(labels[a == g].mean()) if (a == g).any() else math.nan for g in (0, 1)]
    return MethodOutcome(
        model=model,
        setting=f"{pairs} pairs flipped (parity count, {2 * pairs / max(n, 1):.1%} of fit rows)",
        params={
            "pairs": pairs,
            "flipped": 2 * pairs,
            "flip_fraction": 2 * pairs / max(n, 1),
            "ranker": "logistic regression on the features (group excluded)",
            "label_rate_a0": rates[0],
            "label_rate_a1": rates[1],
        },
        validation=ctx.validate(model),
    )


def _massage_groups(
    ctx: CompareContext, scores: np.ndarray, y: np.ndarray, a: np.ndarray
) -> MethodOutcome:
    """Massaging over many groups: each judged group's labels moved to the overall rate
    (:func:`froc_cli.metrics.parity_flip_quotas`), ranked as for two groups."""
    quotas = parity_flip_quotas(y, a)
    labels = massage_labels(scores, y, a, quotas=quotas)
    flipped = int(sum(up + down for up, down in quotas.values()))
    ctx.notify(f"massaging: {flipped} labels flipped across {len(quotas)} groups")
    y_new = torch.as_tensor(labels, dtype=ctx.fit.y.dtype, device=ctx.fit.y.device)
    model = GroupBlind(ctx.train(ctx.fit.x, y_new, ctx.fit.a))
    n = len(y)
    names = ctx.prepared.group_names or ()
    return MethodOutcome(
        model=model,
        setting=f"{flipped} labels flipped (parity quotas, {flipped / max(n, 1):.1%} of fit rows)",
        params={
            "flipped": flipped,
            "flip_fraction": flipped / max(n, 1),
            "ranker": "logistic regression on the features (group excluded)",
            **{
                f"label_rate_{names[g]}": float(labels[a == g].mean())
                for g in quotas
                if (a == g).any()
            },
        },
        validation=ctx.validate(model),
    )


def _froc_in_config(
    ctx: CompareContext, delta_f: float, delta_r: float, lambdas: tuple[float, float] | None
) -> FrocInConfig:
    cfg = ctx.config
    return FrocInConfig(
        lambda_f=None if lambdas is None else lambdas[0],
        lambda_r=None if lambdas is None else lambdas[1],
        delta_f=delta_f,
        delta_r=delta_r,
        attack="pgd",
        threat=ctx.threat,
        train=ctx.train_config,
        val_size=cfg.val_size,
        search_budget_s=cfg.froc_in_budget_s,
        fairness=ctx.prepared.fairness,
    )


def _fit_froc_in(ctx: CompareContext, config: FrocInConfig) -> tuple[nn.Module, FitOutcome]:
    started: set[int] = set()

    def on_epoch(p: EpochProgress) -> None:
        # One line per trial, not per epoch: progress lines go to a log, not a live display.
        if p.trial not in started:
            started.add(p.trial)
            ctx.notify(
                f"trial {p.trial + 1}: lambda_F={p.lambda_f:g} lambda_R={p.lambda_r:g}, "
                f"{p.epochs} epochs at most"
            )

    outcome = fit_froc_in(
        ctx.fit, ctx.val, ctx.encoder, config, device=ctx.device, on_epoch=on_epoch
    )
    return GroupBlind(outcome.model), outcome


def _froc_in_validation(outcome: FitOutcome) -> dict[str, float]:
    score = outcome.chosen.score
    return {
        "accuracy": score.accuracy,
        "majority_floor": score.majority_floor,
        "rarer_decision_share": score.rarer_share,
        "rows": float(score.n_rows),
        "bias_score": score.bias_score,
        "robustness_pgd": score.robustness_pgd,
    }


def _run_froc_in(ctx: CompareContext) -> MethodOutcome:
    config = _froc_in_config(ctx, ctx.config.delta_f, ctx.config.delta_r, None)
    model, outcome = _fit_froc_in(ctx, config)
    trials = [
        {
            "lambda_f": t.lambda_f,
            "lambda_r": t.lambda_r,
            "val_accuracy": t.score.accuracy,
            "val_bias_score": t.score.bias_score,
            "val_robustness_pgd": t.score.robustness_pgd,
            "seconds": t.seconds,
        }
        for t in outcome.trials
    ]
    found = "met on val." if outcome.feasible else "not met on val.: closest"
    return MethodOutcome(
        model=model,
        setting=(
            f"lambda_F={outcome.lambda_f:.3g}, lambda_R={outcome.lambda_r:.3g} "
            f"(searched, {len(outcome.trials)} fits, {found})"
        ),
        params={
            "lambda_f": outcome.lambda_f,
            "lambda_r": outcome.lambda_r,
            "feasible_on_validation": outcome.feasible,
            "trials": trials,
        },
        validation=_froc_in_validation(outcome),
    )


def _pinned_spec(ctx: CompareContext) -> DataSpec:
    """The data roles with the label value and protected group fixed as resolved on the input
    (a default group could change once labels are flipped)."""
    prepared = ctx.prepared
    return replace(
        ctx.config.data,
        label=prepared.label_column,
        positive=prepared.positive_value,
        protected_group=prepared.protected_values,
    )


def _froc_pre(
    ctx: CompareContext, delta_f: float, delta_r: float
) -> tuple[nn.Module, PreprocessResult]:
    """FRoC-PRE on the input, then a fresh target (the compared architecture, plain BCE) trained
    on its output minus this seed's test rows, as an outside trainer would."""
    cfg, train = ctx.config, ctx.train_config
    pre_config = PreprocessConfig(
        data=_pinned_spec(ctx),
        delta_f=delta_f,
        delta_r=delta_r,
        threat=ctx.threat,
        # The surrogate: the compared architecture, epochs and lr, full batch, no weight decay.
        train=TrainConfig(
            model=train.model,
            epochs=train.epochs,
            lr=train.lr,
            seed=ctx.seed,
            device=str(ctx.device),
        ),
        target_model=train.model,
        rounds=cfg.froc_pre_rounds,
        target_epochs=train.epochs,
        test_size=cfg.test_size,
        val_size=cfg.val_size,
        compare_input=False,
    )
    result = preprocess_table(ctx.frame, pre_config, source=ctx.source, progress=ctx.notify)
    # FRoC-PRE holds out the same test split (same function, rows, fraction and seed); check
    # that none of this seed's test rows was edited or used as an adversarial source.
    test_files = set(np.asarray(ctx.prepared.frame.index)[ctx.test_positions].tolist())
    touched = {f.index for f in result.flips} | {r.source_index for r in result.additions}
    if touched & test_files:
        raise InputError(
            f"FRoC-PRE edited {len(touched & test_files)} row(s) of the compare test split; "
            "its held-out split differs from compare's"
        )
    n_input = len(ctx.frame)
    train_files = np.asarray(ctx.prepared.frame.index)[ctx.train_positions]
    rows = pd.concat(
        [result.output.iloc[train_files], result.output.iloc[n_input:]], ignore_index=True
    )
    output = prepare_data(rows, _pinned_spec(ctx), source=f"{ctx.source} (FRoC-PRE output)")
    x = torch.as_tensor(ctx.encoder.encode(output.frame), device=ctx.device)
    y = torch.as_tensor(output.y, device=ctx.device)
    a = torch.as_tensor(output.a, device=ctx.device)
    ctx.notify(f"training a fresh {train.model} on the FRoC-PRE output ({len(rows)} rows)")
    return GroupBlind(ctx.train(x, y, a)), result


def _froc_pre_validation(result: PreprocessResult) -> dict[str, float]:
    chosen = next(r for r in result.trajectory if r.round == result.chosen_round)
    return {
        "accuracy": chosen.accuracy,
        "bias_score": chosen.bias_score,
        "robustness_pgd": chosen.robustness,
    }


def _run_froc_pre(ctx: CompareContext) -> MethodOutcome:
    delta_f, delta_r = ctx.config.delta_f, ctx.config.delta_r
    model, result = _froc_pre(ctx, delta_f, delta_r)
    met = "met on its val." if result.met else "not met on its val."
    return MethodOutcome(
        model=model,
        setting=(
            f"delta_F={delta_f:g}, delta_R={delta_r:g}: {len(result.trajectory)} rounds, "
            f"{result.flip_fraction:.1%} flipped, {result.augment_fraction:.1%} added ({met})"
        ),
        params={
            "delta_f": delta_f,
            "delta_r": delta_r,
            "met_on_validation": result.met,
            "reason": result.reason,
            "rounds": len(result.trajectory),
            "chosen_round": result.chosen_round,
            "flipped": len(result.flips),
            "added": len(result.additions),
            "flip_fraction": result.flip_fraction,
            "augment_fraction": result.augment_fraction,
            "surrogate_seconds": result.seconds.get("rounds", math.nan),
        },
        validation=_froc_pre_validation(result),
    )


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("plain", "plain", "plain BCE training", _run_plain),
        MethodSpec(
            "rbf-rw",
            "RbF-RW",
            "robustness before fairness: PGD-augmented data, then Reweighing",
            _run_rbf_rw,
        ),
        MethodSpec(
            "rbf-dir",
            "RbF-DIR",
            "robustness before fairness: PGD-augmented data, then Disparate Impact Remover",
            _run_rbf_dir,
        ),
        MethodSpec(
            "fbr-rw",
            "FbR-RW",
            "fairness before robustness: Reweighing, then PGD adversarial training",
            _run_fbr_rw,
        ),
        MethodSpec(
            "fbr-dir",
            "FbR-DIR",
            "fairness before robustness: Disparate Impact Remover, then PGD adversarial training",
            _run_fbr_dir,
        ),
        MethodSpec(
            "massaging",
            "Massaging (Kamiran-Calders)",
            "pre-processing: labels massaged to equal group rates (logistic ranker), then plain "
            "BCE",
            _run_massaging,
        ),
        MethodSpec(
            "froc-in",
            "FRoC-IN",
            "in-processing: BCE + lambda_F F + lambda_R R, lambdas searched on validation",
            _run_froc_in,
        ),
        MethodSpec(
            "froc-pre",
            "FRoC-PRE",
            "pre-processing (Algorithm 1), then a fresh target trained on its output",
            _run_froc_pre,
        ),
    )
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check(value: float, threshold: float, below: bool) -> bool:
    if not math.isfinite(value):
        return False
    return value <= threshold if below else value >= threshold


def _run_method(ctx: CompareContext, spec: MethodSpec) -> tuple[MethodRow, list[GridPoint]]:
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        outcome = spec.run(ctx)
        metrics = (
            outcome.test
            if outcome.test is not None
            else ctx.evaluate(outcome.model, ctx.test, transfer=True)
        )
    except Exception as error:  # one failing method must not stop the others
        row = MethodRow(
            method=spec.name,
            label=spec.label,
            seed=ctx.seed,
            status="failed",
            setting="",
            metrics={},
            validation={},
            params={},
            seconds=time.perf_counter() - started,
            meets_fairness=None,
            meets_robustness=None,
            reason=_one_line(error),
            cpu_seconds=time.process_time() - cpu_started,
        )
        return row, []
    row = MethodRow(
        method=spec.name,
        label=spec.label,
        seed=ctx.seed,
        status="ok",
        setting=outcome.setting,
        metrics=metrics,
        validation=outcome.validation,
        params=outcome.params,
        seconds=time.perf_counter() - started,
        meets_fairness=_check(metrics["bias_score"], ctx.config.delta_f, below=True),
        meets_robustness=_check(metrics["robustness_pgd"], ctx.config.delta_r, below=False),
        cpu_seconds=time.process_time() - cpu_started,
        degenerate=is_degenerate(metrics),
    )
    return row, outcome.grid


@dataclass
class _Cursor:
    """Where a comparison is; gives each progress detail its line (step, seed, method)."""

    progress: ProgressCallback
    steps: int
    repeats: int
    step: int = 0
    repeat: int = 0
    seed: int = 0
    method: str = "setup"

    def notify(self, detail: str) -> None:
        """One progress line: ``[step/steps] seed S (repeat/repeats): method: detail``."""
        self.progress(
            f"[{min(self.step + 1, self.steps)}/{self.steps}] seed {self.seed} "
            f"({self.repeat + 1}/{self.repeats}): {self.method}: {detail}"
        )


def _split_three(
    prepared: PreparedData, config: CompareConfig, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train_pos, test_pos = split_indices(
        prepared.y, prepared.a, test_size=config.test_size, seed=seed
    )
    fit_local, val_local = split_indices(
        prepared.y[train_pos], prepared.a[train_pos], test_size=config.val_size, seed=seed
    )
    return train_pos[fit_local], train_pos[val_local], test_pos


def _seed_context(
    frame: pd.DataFrame,
    source: str,
    prepared: PreparedData,
    config: CompareConfig,
    device: torch.device,
    cursor: _Cursor,
) -> CompareContext:
    """The seed's split (checked for group sizes), encoder and context."""
    fit_pos, val_pos, test_pos = _split_three(prepared, config, cursor.seed)
    minimum = config.data.min_group_size
    prepared = judge_groups(prepared, test_pos, minimum, "in the test split")
    # Many groups are judged on the test split; validation needs two of them (as train-in's).
    check_group_sizes(
        prepared, prepared.a[val_pos], minimum if prepared.binary else 1, "in the validation split"
    )
    # Fitted on the training part (fit + validation), as audit and train-in do.
    encoder = fit_encoder(
        prepared.frame.iloc[np.sort(np.concatenate([fit_pos, val_pos]))],
        prepared.feature_columns,
        prepared.immutable_columns,
    )
    return CompareContext(
        config=config,
        frame=frame,
        source=source,
        prepared=prepared,
        encoder=encoder,
        device=device,
        seed=cursor.seed,
        positions=(fit_pos, val_pos, test_pos),
        notify=cursor.notify,
    )


def _run_repeat(
    frame: pd.DataFrame,
    source: str,
    prepared: PreparedData,
    config: CompareConfig,
    device: torch.device,
    cursor: _Cursor,
) -> RepeatResult:
    started = time.perf_counter()
    cursor.method = "setup"
    ctx = _seed_context(frame, source, prepared, config, device, cursor)
    cpu_started = time.process_time()
    seconds: dict[str, float] = {"prepare": time.perf_counter() - started}
    notes: list[str] = []
    if ctx.prepared.too_small:
        notes.append(
            "groups too small to judge on this seed's test split (fewer than --min-group-size "
            f"{config.data.min_group_size} rows), left out of every fairness figure: "
            + ", ".join(f"{name} ({rows} rows)" for name, rows in ctx.prepared.too_small)
        )
    cursor.notify("training the transfer source")
    mark = time.perf_counter()
    try:
        ctx.prepare_transfer()
    except Exception as error:
        notes.append(f"transfer attacks unavailable: {_one_line(error)}")
    seconds["transfer_source"] = time.perf_counter() - mark
    rows: list[MethodRow] = []
    grid: list[GridPoint] = []
    for name in config.selected_methods:
        cursor.method = name
        cursor.notify("running")
        row, points = _run_method(ctx, METHODS[name])
        rows.append(row)
        grid.extend(points)
        cursor.step += 1
    if config.sweep:
        cursor.method = "sweep"
        cursor.notify("sweeping FRoC-IN lambdas and FRoC-PRE deltas")
        mark = time.perf_counter()
        points, sweep_notes = _run_sweep(ctx)
        grid.extend(points)
        notes.extend(sweep_notes)
        seconds["sweep"] = time.perf_counter() - mark
        cursor.step += 1
    cursor.notify("done")
    seconds["total"] = time.perf_counter() - started
    seconds["cpu_total"] = time.process_time() - cpu_started
    counts = {
        "fit": len(ctx.fit),
        "validation": len(ctx.val),
        "test": len(ctx.test),
        "features": ctx.encoder.n_features,
    }
    return RepeatResult(
        seed=ctx.seed,
        rows=tuple(rows),
        grid=tuple(grid),
        counts=counts,
        seconds=seconds,
        notes=tuple(notes),
        too_small=ctx.prepared.too_small,
    )


def _run_sweep(ctx: CompareContext) -> tuple[list[GridPoint], list[str]]:
    """FRoC-IN over the lambda grid and FRoC-PRE over the delta grid (``--sweep``)."""
    cfg = ctx.config
    points: list[GridPoint] = []
    notes: list[str] = []
    for lambda_f in cfg.sweep_lambdas_f:
        for lambda_r in cfg.sweep_lambdas_r:
            setting = f"lambda_F={lambda_f:g}, lambda_R={lambda_r:g}"
            ctx.notify(f"FRoC-IN {setting}")
            try:
                config = _froc_in_config(ctx, cfg.delta_f, cfg.delta_r, (lambda_f, lambda_r))
                model, _ = _fit_froc_in(ctx, config)
                point, _ = ctx.grid_point(
                    "froc-in", setting, {"lambda_f": lambda_f, "lambda_r": lambda_r}, model, "sweep"
                )
                points.append(point)
            except Exception as error:  # one failing setting must not stop the sweep
                notes.append(f"sweep FRoC-IN {setting} failed: {_one_line(error)}")
    for delta_f in cfg.sweep_deltas_f:
        for delta_r in cfg.sweep_deltas_r:
            setting = f"delta_F={delta_f:g}, delta_R={delta_r:g}"
            ctx.notify(f"FRoC-PRE {setting}")
            try:
                model, _ = _froc_pre(ctx, delta_f, delta_r)
                point, _ = ctx.grid_point(
                    "froc-pre", setting, {"delta_f": delta_f, "delta_r": delta_r}, model, "sweep"
                )
                points.append(point)
            except Exception as error:
                notes.append(f"sweep FRoC-PRE {setting} failed: {_one_line(error)}")
    return points, notes


def _summarise(config: CompareConfig, repeats: Sequence[RepeatResult]) -> list[MethodSummary]:
    summaries: list[MethodSummary] = []
    for name in config.selected_methods:
        rows = [row for r in repeats for row in r.rows if row.method == name]
        ok = [row for row in rows if row.ok]
        mean: dict[str, float] = {}
        sd: dict[str, float] = {}
        keys = sorted({k for row in ok for k in row.metrics})
        for key in keys:
            values = np.array([row.metrics.get(key, math.nan) for row in ok], dtype=float)
            mean[key] = float(values.mean())
            sd[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summaries.append(
            MethodSummary(
                method=name,
                label=METHODS[name].label,
                runs=len(ok),
                failures=len(rows) - len(ok),
                reasons=tuple(row.reason or "" for row in rows if not row.ok),
                settings=tuple(row.setting for row in ok),
                mean=mean,
                sd=sd,
                meets_both=sum(row.meets_both for row in ok),
                seconds=float(np.mean([row.seconds for row in rows])) if rows else math.nan,
                cpu_seconds=float(np.mean([row.cpu_seconds for row in rows])) if rows else math.nan,
                degenerate=sum(bool(row.degenerate) for row in ok),
            )
        )
    return summaries


def compare_table(
    frame: pd.DataFrame,
    config: CompareConfig,
    *,
    source: str,
    progress: ProgressCallback = silent,
    command: str | None = None,
) -> CompareResult:
    """Run every selected method on ``config.repeats`` seeded splits of ``frame``."""
    with torch_threads(config.threads):
        return _compare_table(frame, config, source=source, progress=progress, command=command)


def _compare_table(
    frame: pd.DataFrame,
    config: CompareConfig,
    *,
    source: str,
    progress: ProgressCallback,
    command: str | None,
) -> CompareResult:
    started, cpu_started = time.perf_counter(), time.process_time()
    frame = frame.reset_index(drop=True)  # row labels = row positions, as read_table gives
    prepared = prepare_data(frame, config.data, source=source)
    device = resolve_device(config.train.device)
    units = len(config.selected_methods) + (1 if config.sweep else 0)
    cursor = _Cursor(progress=progress, steps=units * config.repeats, repeats=config.repeats)
    repeats: list[RepeatResult] = []
    for r, seed in enumerate(config.seeds):
        cursor.step, cursor.repeat, cursor.seed = r * units, r, seed
        repeats.append(_run_repeat(frame, source, prepared, config, device, cursor))
    settings = {
        "seeds": list(config.seeds),
        "test_size": config.test_size,
        "val_size": config.val_size,
        "train": {**asdict(config.train), "device": str(device)},
        "lambdas": list(config.lambdas),
        "adv_epochs": config.adv_epochs,
        "dir_repair_level": config.repair_level,
        "methods": {name: METHODS[name].description for name in config.selected_methods},
        "selection": "per grid method: best validation accuracy meeting both constraints, "
        "else the smallest validation shortfall",
        "transfer_source": f"plain {config.train.model}, seed + {_TRANSFER_SEED_OFFSET}",
        "sweep": config.sweep,
        "threads": torch.get_num_threads(),
        "versions": environment_versions(),
    }
    return CompareResult(
        source=source,
        config=config,
        label_column=prepared.label_column,
        positive_value=prepared.positive_value,
        protected_column=prepared.protected_column,
        protected_values=prepared.protected_values,
        protected=prepared.protected_summary(),
        repeats=tuple(repeats),
        summaries=tuple(_summarise(config, repeats)),
        settings=settings,
        seconds=time.perf_counter() - started,
        command=command,
        cpu_seconds=time.process_time() - cpu_started,
    )


def compare_file(
    path: str | Path,
    config: CompareConfig,
    *,
    progress: ProgressCallback = silent,
    command: str | None = None,
) -> CompareResult:
    """Read ``path`` (CSV or parquet) and compare (see :func:`compare_table`)."""
    frame = read_table(path)
    return compare_table(frame, config, source=str(path), progress=progress, command=command)
