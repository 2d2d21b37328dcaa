"""Audit: bias score S_B (eq. 7) and robustness score S_R (eq. 8) of a model on a table."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import (
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
from froc_cli.data._dataset import PreparedData, matches_value, prepare_data, value_texts
from froc_cli.data._splits import judge_groups, split_prepared
from froc_cli.metrics._evaluate import Decisions, Evaluation, attack_decisions, evaluate_decisions
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._training import train_model

__all__ = [
    "AuditConfig",
    "AuditResult",
    "audit_file",
    "audit_table",
    "audit_train_config",
    "data_fields",
]


# Above this many training rows an audit given no batch size trains on mini-batches: a full-batch
# epoch costs time in proportion to the rows (see BENCHMARKS.md, Audit, and bench/perf_audit.py).
# Adult's training rows stay full batch, as the paper.
AUTO_MINIBATCH_ROWS = 100_000
AUTO_BATCH_SIZE = 8192


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and how: data roles, threat model, training of the audited model.

    With ``predictions`` set, the named column's decisions are audited (fairness only: no model,
    no training, every row). Otherwise the default target is trained on a seeded split
    stratified by label and group and audited on the held-out part (the paper's Table 2).

    ``threads``: torch CPU threads while the audit runs (``torch.set_num_threads``, restored on
    return; the settings record it); ``None`` keeps the caller's setting (torch's default is one
    per core, or OMP_NUM_THREADS). The default, 1, makes a seed give the same model whatever
    the machine's core count (float sums split across threads differ in their last bits, and
    300 epochs amplify that into different decisions), and was the robust choice on a 2-core
    machine, idle or busy: see BENCHMARKS.md (Audit, Threads) and bench/perf_audit.py.
    """

    data: DataSpec
    threat: ThreatModel = field(default_factory=ThreatModel)
    train: TrainConfig = field(default_factory=TrainConfig)
    test_size: float = 0.3
    ci: bool = False
    n_resamples: int = 1000
    predictions: str | None = None
    threads: int | None = 1
    delta_f: float | None = None
    delta_r: float | None = None
    certify: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.test_size < 1.0:
            raise InputError(f"--test-size {self.test_size}: expected a fraction in (0, 1)")
        if self.n_resamples < 1:
            raise InputError(f"--bootstrap {self.n_resamples}: expected at least 1 resample")
        check_fraction(self.delta_f, "--delta-f")
        check_fraction(self.delta_r, "--delta-r")
        if self.certify and self.predictions is not None:
            raise InputError(
                "--certify needs a model to certify; --predictions audits fairness only"
            )
        if self.delta_r is not None and self.predictions is not None:
            raise InputError(
                "--delta-r needs a model to attack; --predictions audits fairness only"
            )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected at least 1")


@dataclass(frozen=True)
class AuditResult:
    """Everything an audit found, with the settings needed to reproduce it."""

    source: str
    mode: str
    model: str
    label_column: str
    positive_value: str
    protected_column: str
    protected_values: tuple[str, ...]
    protected_group_defaulted: bool
    rows: dict[str, int]
    threat: ThreatModel | None
    evaluation: Evaluation
    settings: dict[str, Any]
    seconds: dict[str, float]
    protected: dict[str, Any] = field(default_factory=dict)
    # Per attack (ONNX audits): name, method, queries per row, rows broken, success, S_R.
    attacks: tuple[dict[str, Any], ...] = ()

    @property
    def fairness(self) -> str:
        """The criterion ``bias_score`` measures."""
        return str(self.protected.get("fairness", "parity"))

    @property
    def too_small(self) -> dict[str, int]:
        """Groups too small to judge (name: rows), left out of every fairness figure."""
        return dict(self.protected.get("too_small", {}))

    @property
    def metrics(self) -> dict[str, float]:
        """Shortcut to the evaluation's metrics."""
        return self.evaluation.metrics

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (NaN becomes None)."""

        return to_jsonable(
            {
                "source": self.source,
                "mode": self.mode,
                "model": self.model,
                "label": {"column": self.label_column, "favourable": self.positive_value},
                "protected": self.protected,
                "rows": self.rows,
                "threat_model": None
                if self.threat is None
                else {**asdict(self.threat), "pgd_step_size": self.threat.pgd_step_size},
                "metrics": self.evaluation.metrics,
                "intervals": {k: list(v) for k, v in self.evaluation.intervals.items()},
                "groups": self.evaluation.groups,
                "settings": self.settings,
                "seconds": self.seconds,
            }
            | ({"attacks": list(self.attacks)} if self.attacks else {})
        )


def _prediction_decisions(prepared: PreparedData, column: str) -> np.ndarray:
    """Decisions of a predictions column: label values (favourable = the label's favourable
    value), or probabilities in [0, 1] decided at 0.5 as the paper's M(x) = 1(M_c(x) >= 0.5)."""
    series = prepared.frame[column]
    labels = value_texts(prepared.frame[prepared.label_column])
    stray = [text for text in value_texts(series) if text not in labels]
    if not stray:
        return matches_value(series, prepared.positive_value).astype(np.int8)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        scores = series.to_numpy(dtype=float)
        outside = ~((scores >= 0) & (scores <= 1))
        if not outside.any():
            return (scores >= 0.5).astype(np.int8)
        # Name a value that is wrong as a probability too, not merely the first non-label.
        stray = value_texts(series[outside])
    raise InputError(
        f"{prepared.source}: predictions column {column!r} has value {stray[0]!r}, neither a "
        f"value of label column {prepared.label_column!r} ({', '.join(map(repr, labels[:8]))}"
        f"{', ...' if len(labels) > 8 else ''}) nor a probability in [0, 1]"
    )


def audit_train_config(train: TrainConfig, n_rows: int) -> TrainConfig:
    """The training schedule an audit uses on ``n_rows`` training rows.

    ``train`` unchanged when it names a batch size or when ``n_rows <= AUTO_MINIBATCH_ROWS``
    (100,000). Above, mini-batches of ``AUTO_BATCH_SIZE`` (8,192) rows for
    ``ceil(epochs * 8192 / n_rows)`` epochs: about as many Adam steps as the full-batch
    schedule's ``epochs`` (700,000 rows: 4 epochs, 344 steps instead of 300), at a fraction of
    its cost. The audit states the schedule it used (progress line, ``model``, settings).
    """
    if train.batch_size is not None or n_rows <= AUTO_MINIBATCH_ROWS:
        return train
    epochs = max(1, math.ceil(train.epochs * AUTO_BATCH_SIZE / n_rows))
    return replace(train, batch_size=AUTO_BATCH_SIZE, epochs=epochs)


def _settings(config: AuditConfig, device: str | None) -> dict[str, Any]:
    train = asdict(config.train)
    if device is not None:
        train["device"] = device
    return {
        "seed": config.train.seed,
        "test_size": config.test_size,
        "train": train,
        "bootstrap_resamples": config.n_resamples if config.ci else 0,
        "threads": torch.get_num_threads(),
        "versions": environment_versions(),
    }


def audit_table(
    frame: pd.DataFrame,
    config: AuditConfig,
    *,
    source: str,
    progress: ProgressCallback = silent,
) -> AuditResult:
    """Audit ``frame``: train the target on a split and attack it, or audit a predictions column.

    Runs with ``config.threads`` torch threads (restored on return).
    """
    with torch_threads(config.threads):
        return _audit_table(frame, config, source=source, progress=progress)


def _audit_table(
    frame: pd.DataFrame,
    config: AuditConfig,
    *,
    source: str,
    progress: ProgressCallback,
) -> AuditResult:
    started = time.perf_counter()
    if not config.predictions:
        # Usage errors before any work: a mistyped model or device is exit 2 whatever the data.
        parse_model_spec(config.train.model)
        resolve_device(config.train.device)
    exclude = (config.predictions,) if config.predictions else ()
    prepared = prepare_data(frame, config.data, source=source, exclude=exclude)
    if config.predictions:
        return _audit_predictions(prepared, config, config.predictions, started)
    return _audit_trained(prepared, config, started, progress)


def data_fields(prepared: PreparedData, source: str | None = None) -> dict[str, Any]:
    """The AuditResult fields every audit takes from the prepared data (``source``: another
    name for the input than the prepared data's own)."""
    return {
        "source": prepared.source if source is None else source,
        "label_column": prepared.label_column,
        "positive_value": prepared.positive_value,
        "protected_column": prepared.protected_column,
        "protected_values": prepared.protected_values,
        "protected_group_defaulted": prepared.protected_group_defaulted,
        "protected": prepared.protected_summary(),
    }


def _audit_predictions(
    prepared: PreparedData, config: AuditConfig, column: str, started: float
) -> AuditResult:
    """Fairness of the decisions in a predictions column, on every row."""
    prepared = judge_groups(prepared, None, config.data.min_group_size, "in the file")
    decisions = Decisions(
        y=prepared.y.astype(np.int8),
        a=prepared.a.astype(np.int8),
        pred=_prediction_decisions(prepared, column),
        **prepared.judging,
    )
    evaluation = evaluate_decisions(
        decisions, ci=config.ci, seed=config.train.seed, n_resamples=config.n_resamples
    )
    seconds = {"total": time.perf_counter() - started}
    return AuditResult(
        mode="predictions",
        model=f"predictions column {column!r}",
        rows={
            "total": prepared.n_rows,
            "audited": prepared.n_rows,
            "dropped": prepared.dropped_rows,
        },
        threat=None,
        evaluation=evaluation,
        settings=_settings(config, None),
        seconds=seconds,
        **data_fields(prepared),
    )


def _audit_schedule(config: AuditConfig, n_train: int) -> tuple[AuditConfig, str]:
    """``config`` with the training schedule for ``n_train`` rows, and how it was changed
    (empty when it was not)."""
    train_config = audit_train_config(config.train, n_train)
    if train_config is config.train:
        return config, ""
    schedule = (
        f", mini-batches of {train_config.batch_size} (automatic above "
        f"{AUTO_MINIBATCH_ROWS:,} training rows without --batch-size)"
    )
    return replace(config, train=train_config), schedule


def _audit_trained(
    prepared: PreparedData, config: AuditConfig, started: float, progress: ProgressCallback
) -> AuditResult:
    """Train the target on a seeded split and attack it on the held-out part."""
    split = split_prepared(
        prepared,
        test_size=config.test_size,
        seed=config.train.seed,
        device=config.train.device,
        min_group_size=config.data.min_group_size,
    )
    device, encoder, train, test = split.device, split.encoder, split.train, split.test
    prepared = split.prepared  # with the groups too small to judge left out
    seconds = {"prepare": time.perf_counter() - started}

    progress(
        f"{prepared.source}: {prepared.n_rows} rows, label {prepared.label_column!r} "
        f"(favourable {prepared.positive_value!r}), {prepared.describe_groups()}"
    )
    config, schedule = _audit_schedule(config, len(train.positions))
    progress(
        f"training {config.train.model} for {config.train.epochs} epochs{schedule} on {device}"
    )
    mark = time.perf_counter()
    model = build_model(
        config.train.model, encoder.n_features, seed=config.train.seed, device=device
    )
    space = FeatureSpace.from_encoder(encoder, device)
    train_model(
        model, train.x, train.y, train.a, objective=Objective(), config=config.train, space=space
    )
    seconds["train"] = time.perf_counter() - mark

    progress(
        f"attacking the test split ({config.threat.describe_attacks()})"
        + (", certifying" if config.certify else "")
    )
    mark = time.perf_counter()
    decisions = attack_decisions(
        model, test.x, test.y, test.a_numpy, space, config.threat, **prepared.judging,
        seed=config.train.seed, certify=config.certify,
    )  # fmt: skip
    seconds["attack"] = time.perf_counter() - mark
    evaluation = evaluate_decisions(
        decisions, ci=config.ci, seed=config.train.seed, n_resamples=config.n_resamples
    )
    seconds["total"] = time.perf_counter() - started
    return AuditResult(
        mode="trained",
        model=f"{config.train.model} trained on the {1 - config.test_size:.0%} split"
        + (f", {config.train.epochs} epochs{schedule}" if schedule else ""),
        rows={
            "total": prepared.n_rows,
            "train": len(train.positions),
            "test": len(test.positions),
            "dropped": prepared.dropped_rows,
            "features": encoder.n_features,
        },
        threat=config.threat,
        evaluation=evaluation,
        settings=_settings(config, str(device)),
        seconds=seconds,
        **data_fields(prepared),
    )


def audit_file(
    path: str | Path, config: AuditConfig, *, progress: ProgressCallback = silent
) -> AuditResult:
    """Read ``path`` (CSV or parquet) and audit it (see :func:`audit_table`)."""
    # No progress line before the input is validated: a bad file gets one line on stderr.
    frame = read_table(path)
    return audit_table(frame, config, source=str(path), progress=progress)
