"""``froc preprocess`` as a workflow: the file a data owner hands to an outside trainer.

1. Prepare every row of the table (no row is kept out of the file: the trainer fits it all).
2. Plan the edits over all rows (:func:`froc_cli.methods.plan_edits`: flips by eqs. 17-21,
   valid adversarial copies by eq. 22, regenerated in rounds).
3. Estimate what outside trainers get by K-fold cross-fitting
   (:func:`froc_cli.methods.crossfit_panel`): each model of the panel (``target_models``) is
   fitted plainly without a fold's rows and their copies and measured on the fold's original
   rows.
4. Judge: the promise holds only when *every* panel model meets S_B <= delta_F and
   S_R >= delta_R in the cross-fitted estimate, against thresholds tightened by ``margin``
   standard errors, and none is degenerate. The robustness judged is the one the user picked:
   white-box (the model's own gradient; trees have none, so transfer for them) or transfer.
5. Write the input's rows with the flips, then the added rows, in the input's schema.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import DataSpec, ThreatModel, check_fraction, check_seed
from froc_cli.core._device import (
    flushing_denormals,
    numeric_failures,
    resolve_device,
    torch_threads,
)
from froc_cli.core._errors import InputError
from froc_cli.core._io import to_jsonable
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import prepare_data
from froc_cli.data._encoder import fit_encoder
from froc_cli.data._rows import encode_rows
from froc_cli.data._splits import judge_groups
from froc_cli.methods._crossfit import PanelEstimate, crossfit_panel
from froc_cli.methods._edit_plan import (
    AddedRow,
    EditSettings,
    FlippedLabel,
    apply_edits,
    plan_edits,
)
from froc_cli.methods._panel import DEFAULT_PANEL, parse_panel
from froc_cli.metrics._rules import (
    is_degenerate,
    tightened_bias_threshold,
    tightened_robustness_threshold,
)
from froc_cli.models._nets import parse_model_spec

__all__ = [
    "MemberVerdict",
    "TrainerFileConfig",
    "TrainerFileResult",
    "prepare_trainer_file",
]

RobustnessKind = Literal["whitebox", "transfer"]


@dataclass(frozen=True)
class TrainerFileConfig:
    """Settings of ``froc preprocess`` (see the module docstring).

    The default threat model moves numeric columns only (``cat_budget=0``): copies of a
    static file do not defend a model against category switches (see BENCHMARKS.md), and a
    user who needs that promise sets ``cat_budget`` and gets an honest verdict.
    """

    data: DataSpec
    delta_f: float = 0.05
    delta_r: float = 0.6
    threat: ThreatModel = field(
        default_factory=lambda: ThreatModel(attack_space="valid", cat_budget=0, attacks=("pgd",))
    )
    robustness: RobustnessKind = "whitebox"
    target_models: tuple[str, ...] = DEFAULT_PANEL
    folds: int = 3
    edits: EditSettings = field(default_factory=EditSettings)
    transfer_source: str = "mlp:64"
    margin: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        check_fraction(self.delta_f, "--delta-f")
        check_fraction(self.delta_r, "--delta-r")
        if self.robustness not in ("whitebox", "transfer"):
            raise InputError(f"--robustness {self.robustness}: expected whitebox or transfer")
        parse_panel(",".join(self.target_models))
        parse_model_spec(self.transfer_source)
        if not 2 <= self.folds <= 20:
            raise InputError(f"--folds {self.folds}: expected 2 to 20")
        check_seed(self.seed)
        if not self.margin >= 0:
            raise InputError(f"--margin {self.margin}: expected 0 or more")
        if self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected at least 1")

    def robustness_key(self, member: str) -> str:
        """The figure ``--delta-r`` judges for ``member``: white-box where the member has a
        gradient and white-box was asked for, else transfer, in the threat's space."""
        space = "valid" if self.threat.attack_space == "valid" else "continuous"
        kind = "whitebox" if self.robustness == "whitebox" and member != "hgb" else "transfer"
        return f"robustness_{kind}_{space}"


@dataclass(frozen=True)
class MemberVerdict:
    """Whether one panel model meets both thresholds in the cross-fitted estimate."""

    model: str
    robustness_key: str
    bias_score: float
    robustness: float
    degenerate: bool
    meets_bias: bool
    meets_robustness: bool

    @property
    def met(self) -> bool:
        """Both thresholds met by a model that is not degenerate."""
        return self.meets_bias and self.meets_robustness and not self.degenerate


@dataclass(frozen=True)
class TrainerFileResult:
    """What ``froc preprocess`` did and what the panel is estimated to reach."""

    source: str
    output: pd.DataFrame
    met: bool
    reason: str
    verdicts: tuple[MemberVerdict, ...]
    estimate: PanelEstimate
    targets: dict[str, float]
    flips: tuple[FlippedLabel, ...]
    additions: tuple[AddedRow, ...]
    label_column: str
    positive_value: str
    protected_column: str
    protected_values: tuple[str, ...]
    rows: dict[str, int]
    settings: dict[str, Any]
    seconds: dict[str, float]
    protected: dict[str, Any] = field(default_factory=dict)

    @property
    def judging_extras(self) -> dict[str, Any]:
        """The groups judged, those too small and the criterion, when not the paper's binary
        parity (whose reports keep the keys they always had)."""
        return {k: v for k, v in self.protected.items() if k in ("groups", "too_small", "fairness")}

    @property
    def flip_fraction(self) -> float:
        """Flipped labels as a fraction of the rows used."""
        return len(self.flips) / max(1, self.rows["used"])

    @property
    def augment_fraction(self) -> float:
        """Added rows as a fraction of the rows used."""
        return len(self.additions) / max(1, self.rows["used"])

    def to_dict(self) -> dict[str, Any]:
        """The verdict, panel estimate and settings as strict JSON (without the table)."""
        return to_jsonable(
            {
                "source": self.source,
                "met": self.met,
                "reason": self.reason,
                "flip_fraction": self.flip_fraction,
                "augment_fraction": self.augment_fraction,
                **({"protected": self.protected} if self.judging_extras else {}),
                "targets": self.targets,
                "verdicts": [{**asdict(verdict), "met": verdict.met} for verdict in self.verdicts],
                "panel": self.estimate.to_dict(),
                "rows": self.rows,
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )


def _judge(
    config: TrainerFileConfig, estimate: PanelEstimate, targets: dict[str, float], n_rows: int
) -> tuple[MemberVerdict, ...]:
    verdicts = []
    for member in config.target_models:
        mean = estimate.mean[member]
        key = config.robustness_key(member)
        robustness = mean.get(key, float("nan"))
        verdicts.append(
            MemberVerdict(
                model=member,
                robustness_key=key,
                bias_score=mean["bias_score"],
                robustness=robustness,
                degenerate=is_degenerate({**mean, "rows": float(n_rows)}),
                meets_bias=bool(mean["bias_score"] <= targets["bias_score"]),
                meets_robustness=bool(robustness >= targets["robustness"]),
            )
        )
    return tuple(verdicts)


def _reason(verdicts: tuple[MemberVerdict, ...], targets: dict[str, float]) -> str:
    misses = []
    for verdict in verdicts:
        if verdict.degenerate:
            misses.append(f"{verdict.model} is degenerate (near constant or at the floor)")
        if not verdict.meets_bias:
            misses.append(
                f"{verdict.model} S_B {verdict.bias_score:.4f} > {targets['bias_score']:.4f}"
            )
        if not verdict.meets_robustness:
            misses.append(
                f"{verdict.model} {verdict.robustness_key} {verdict.robustness:.4f} < "
                f"{targets['robustness']:.4f}"
            )
    if not misses:
        return "every panel model meets both thresholds in the cross-fitted estimate"
    return "; ".join(misses)


def _settings(config: TrainerFileConfig, device: torch.device) -> dict[str, Any]:
    settings = asdict(config)
    settings["data"] = config.data.to_dict()
    settings["device"] = str(device)
    settings["versions"] = environment_versions()
    return settings


def prepare_trainer_file(
    frame: pd.DataFrame,
    config: TrainerFileConfig,
    *,
    source: str,
    progress: ProgressCallback = silent,
) -> TrainerFileResult:
    """FRoC-PRE for an outside trainer (see the module docstring), on ``config.threads``
    torch threads (the caller's count is restored)."""
    hint = (
        f"try a smaller --lr (now {config.edits.lr:g}), or check the numeric columns for huge "
        "values"
    )
    with torch_threads(config.threads), numeric_failures("FRoC-PRE", hint):
        return _prepare_trainer_file(frame, config, source=source, progress=progress)


@flushing_denormals
def _prepare_trainer_file(
    frame: pd.DataFrame,
    config: TrainerFileConfig,
    *,
    source: str,
    progress: ProgressCallback,
) -> TrainerFileResult:
    started = time.perf_counter()
    frame = frame.reset_index(drop=True)  # edits address rows by position
    device = resolve_device(config.device)
    prepared = prepare_data(frame, config.data, source=source)
    prepared = judge_groups(prepared, None, config.data.min_group_size, "in the file")
    encoder = fit_encoder(prepared.frame, prepared.feature_columns, prepared.immutable_columns)
    rows = encode_rows(prepared, encoder, np.arange(prepared.n_rows), device)
    space = FeatureSpace.from_encoder(encoder, device)
    a = rows.a.to(torch.float32)
    progress(
        f"{source}: {prepared.n_rows} rows, {prepared.describe_groups()}; planning flips and "
        "additions"
    )
    plan = plan_edits(
        rows.x, rows.y, a, space=space, threat=config.threat, settings=config.edits,
        seed=config.seed, criterion=prepared.fairness,
    )  # fmt: skip
    seconds = {"plan": time.perf_counter() - started}
    progress(
        f"{len(plan.flipped)} labels flipped, {len(plan.added_source)} rows added; "
        f"cross-fitting {', '.join(config.target_models)} over {config.folds} folds"
    )
    mark = time.perf_counter()
    estimate = crossfit_panel(
        rows.x, rows.y, a, plan,
        panel=config.target_models, folds=config.folds, space=space, threat=config.threat,
        seed=config.seed, transfer_source=config.transfer_source,
        flip_scale=config.edits.flip_scale, progress=progress, criterion=prepared.fairness,
    )  # fmt: skip
    seconds["crossfit"] = time.perf_counter() - mark
    targets = {
        "bias_score": tightened_bias_threshold(
            config.delta_f,
            y=rows.y_numpy,
            a=rows.a_numpy,
            margin=config.margin,
            criterion=prepared.fairness,
        ),
        "robustness": tightened_robustness_threshold(
            config.delta_r, n_rows=len(rows), margin=config.margin
        ),
    }
    verdicts = _judge(config, estimate, targets, len(rows))
    output, flips, additions = apply_edits(frame, prepared, encoder, plan, config.threat)
    seconds["total"] = time.perf_counter() - started
    return TrainerFileResult(
        source=source,
        output=output,
        met=all(verdict.met for verdict in verdicts),
        reason=_reason(verdicts, targets),
        verdicts=verdicts,
        estimate=estimate,
        targets=targets,
        flips=flips,
        additions=additions,
        label_column=prepared.label_column,
        positive_value=prepared.positive_value,
        protected_column=prepared.protected_column,
        protected_values=prepared.protected_values,
        protected=prepared.protected_summary(),
        rows={
            "input": len(frame),
            "used": prepared.n_rows,
            "dropped": prepared.dropped_rows,
            "output": len(output),
            "features": encoder.n_features,
        },
        settings=_settings(config, device),
        seconds=seconds,
    )
