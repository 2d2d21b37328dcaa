"""Using a saved model (``.froc``): predictions for a table, and an audit without training."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import DataSpec
from froc_cli.core._device import resolve_device, torch_threads
from froc_cli.core._errors import InputError
from froc_cli.core._io import frame_fingerprint, row_hashes, unpack_row_hashes
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import PreparedData, number_problem, prepare_data
from froc_cli.data._encoder import CategoricalColumn, NumericColumn, TabularEncoder
from froc_cli.data._rows import encode_rows
from froc_cli.data._splits import judge_groups, split_indices
from froc_cli.metrics._evaluate import attack_decisions, evaluate_decisions
from froc_cli.models._artifact import ModelArtifact
from froc_cli.models._training import predict_logits
from froc_cli.workflows._audit import AuditConfig, AuditResult, data_fields

__all__ = [
    "DECISION_COLUMN",
    "PROBABILITY_COLUMN",
    "Prediction",
    "audit_saved_model",
    "default_audit_spec",
    "predict_table",
    "saved_model_settings",
    "saved_model_spec",
    "unseen_categories",
]

PROBABILITY_COLUMN = "froc_proba"
DECISION_COLUMN = "froc_decision"
_MAX_LISTED = 8


def _listed(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} columns)" if len(names) > _MAX_LISTED else "")


@dataclass(frozen=True)
class Prediction:
    """The input table with the favourable-class probability and the decision appended (rows
    in input order), and the rows whose categories the model never saw, per column."""

    frame: pd.DataFrame
    unseen: dict[str, int]


def _check_columns(
    frame: pd.DataFrame,
    artifact: ModelArtifact,
    *,
    source: str,
    model_name: str,
    passthrough: tuple[str, ...],
) -> None:
    columns = [str(c) for c in frame.columns]
    features = artifact.feature_columns
    lacking = [c for c in features if c not in columns]
    if lacking:
        raise InputError(
            f"{source}: lacks column(s) {_listed(lacking)} that model {model_name} reads "
            f"(it reads {_listed(list(features))})"
        )
    absent = [c for c in passthrough if c not in columns]
    if absent:
        raise InputError(
            f"{source}: unknown column {absent[0]!r} given to --drop; columns are "
            f"{_listed(columns)}"
        )
    known = {
        *features,
        artifact.label_column,
        *artifact.data_spec.protected_columns,
        *artifact.data_spec.drop,
        *passthrough,
    }
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise InputError(
            f"{source}: column(s) {_listed(unknown)} unknown to model {model_name} (trained on "
            f"{_listed(list(features))}); pass --drop {unknown[0]} to carry such columns through "
            "unchanged"
        )
    for name in (PROBABILITY_COLUMN, DECISION_COLUMN):
        if name in columns:
            raise InputError(
                f"{source}: already has a column {name!r}; rename it before predicting"
            )


def _check_values(frame: pd.DataFrame, encoder: TabularEncoder, source: str) -> None:
    """Every value the model reads present and a finite number where it expects one; rows
    named by ``frame``'s row labels (a file's row positions, a batch's within its shard)."""
    labels = np.asarray(frame.index)
    for column in encoder.columns:
        series = frame[column.name]
        missing = np.flatnonzero(series.isna().to_numpy())
        if missing.size:
            rows = ", ".join(str(int(r)) for r in labels[missing[:_MAX_LISTED]])
            raise InputError(
                f"{source}: column {column.name!r} has {missing.size} missing value(s) at row "
                f"{rows}{', ...' if missing.size > _MAX_LISTED else ''}; the model needs a value"
            )
        if isinstance(column, NumericColumn) and not (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        ):
            parsed = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero(parsed.isna().to_numpy())
            if bad.size:
                raise InputError(
                    f"{source}: non-numeric value {series.iloc[bad[0]]!r} in numeric column "
                    f"{column.name!r} (row {int(labels[bad[0]])}); expected a number"
                )
            series = parsed
        if isinstance(column, NumericColumn):
            problem = number_problem(
                source, column.name, series.to_numpy(dtype=np.float64), labels,
                exact=series.to_numpy(), dropna_hint=False,
            )  # fmt: skip
            if problem is not None:
                raise InputError(problem)


def unseen_categories(frame: pd.DataFrame, encoder: TabularEncoder) -> dict[str, int]:
    """Per categorical column, how many rows hold a category the model never saw (they encode
    as none of the known categories)."""
    counts: dict[str, int] = {}
    for column in encoder.columns:
        if isinstance(column, CategoricalColumn):
            known = set(column.categories)
            distinct = pd.Series(frame[column.name].unique()).to_numpy(dtype=object)
            strays = [
                v for v in distinct if (v.item() if isinstance(v, np.generic) else v) not in known
            ]
            if strays:
                counts[column.name] = int(frame[column.name].isin(strays).sum())
    return counts


def predict_table(
    frame: pd.DataFrame,
    artifact: ModelArtifact,
    *,
    source: str,
    model_name: str = "model",
    passthrough: tuple[str, ...] = (),
    device: str = "cpu",
    threads: int | None = None,
) -> Prediction:
    """Append ``froc_proba`` (probability of the favourable label value) and ``froc_decision``
    (1 = favourable, decided at probability > 0.5 as every froc metric) to ``frame``.

    Columns the model reads must all be present; any other column must be the label, the
    protected column, a column dropped at training, or named in ``passthrough``. Runs on
    ``threads`` torch threads (None: the caller's count).
    """
    with torch_threads(threads):
        return _predict_table(
            frame, artifact, source=source, model_name=model_name, passthrough=passthrough,
            device=device,
        )  # fmt: skip


def _predict_table(
    frame: pd.DataFrame,
    artifact: ModelArtifact,
    *,
    source: str,
    model_name: str,
    passthrough: tuple[str, ...],
    device: str,
) -> Prediction:
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    _check_columns(frame, artifact, source=source, model_name=model_name, passthrough=passthrough)
    encoder = artifact.encoder
    _check_values(frame, encoder, source)
    features = frame[list(encoder.column_names)].copy()
    for column in encoder.columns:
        if isinstance(column, NumericColumn):
            features[column.name] = pd.to_numeric(features[column.name])
    try:
        x = torch.as_tensor(encoder.encode(features), device=resolve_device(device))
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from exc
    model = artifact.model.to(x.device)
    logits = predict_logits(model, x)
    proba = torch.sigmoid(logits).cpu().numpy().astype(np.float64)
    frame[PROBABILITY_COLUMN] = proba
    frame[DECISION_COLUMN] = (logits > 0).cpu().numpy().astype(np.int64)
    return Prediction(frame=frame, unseen=unseen_categories(features, encoder))


def _test_split_labels(frame: pd.DataFrame, artifact: ModelArtifact, source: str) -> np.ndarray:
    """File row positions of the held-out test split the model was scored on (same split)."""
    split = artifact.info.get("split", {})
    prepared = prepare_data(frame, artifact.data_spec, source=source)
    _, test_pos = split_indices(
        prepared.y, prepared.a, test_size=float(split["test_size"]), seed=int(split["seed"])
    )
    return np.asarray(prepared.frame.index[test_pos])


def _training_overlap(
    prepared: PreparedData, positions: np.ndarray, artifact: ModelArtifact, encoder: TabularEncoder
) -> int:
    """About how many of the audited rows are rows the model was trained on (0 when none, or
    when the model file keeps no training-row hashes): the audited rows whose hash is among the
    stored sample, scaled up by the sampling fraction."""
    packed = artifact.info.get("split", {}).get("training_rows")
    if not isinstance(packed, dict):
        return 0
    stored, total = unpack_row_hashes(packed)
    if not len(stored):
        return 0
    audited = row_hashes(
        prepared.frame.iloc[positions], [*encoder.column_names, prepared.label_column]
    )
    matches = int(np.isin(audited, stored).sum())
    return round(matches * max(total, len(stored)) / len(stored))


def audit_saved_model(
    frame: pd.DataFrame,
    artifact: ModelArtifact,
    config: AuditConfig,
    *,
    source: str,
    model_name: str,
    progress: ProgressCallback = silent,
) -> AuditResult:
    """Audit a saved model on ``frame`` (no training) with the threat model of ``config``.

    The label is the model's; ``config.data`` gives the protected group, immutable columns and
    cleaning. When ``frame`` is the very table the model was trained on (same fingerprint),
    only its held-out test split is audited; otherwise every row is.
    """
    with torch_threads(config.threads):
        return _audit_saved_model(
            frame, artifact, config, source=source, model_name=model_name, progress=progress
        )


def _audit_saved_model(
    frame: pd.DataFrame,
    artifact: ModelArtifact,
    config: AuditConfig,
    *,
    source: str,
    model_name: str,
    progress: ProgressCallback,
) -> AuditResult:
    started = time.perf_counter()
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    encoder = artifact.encoder
    spec = saved_model_spec(list(frame.columns), artifact, config.data, source, model_name)
    prepared = prepare_data(frame, spec, source=source)
    scope = "every row"
    positions = np.arange(prepared.n_rows)
    fingerprint = artifact.info.get("split", {}).get("fingerprint")
    if fingerprint and fingerprint == frame_fingerprint(frame):
        test_labels = _test_split_labels(frame, artifact, source)
        positions = np.flatnonzero(np.isin(np.asarray(prepared.frame.index), test_labels))
        scope = "its held-out test split (this is the table it was trained on)"
    else:
        overlap = _training_overlap(prepared, positions, artifact, encoder)
        if overlap:
            scope = (
                f"every row, about {overlap} of which are rows this model was trained on (its "
                "figures on them are optimistic)"
            )
    prepared = judge_groups(prepared, positions, spec.min_group_size, "in the audited rows")
    device = resolve_device(config.train.device)
    audit_encoder = replace(encoder, immutable=tuple(spec.immutable) or encoder.immutable)
    rows = encode_rows(prepared, audit_encoder, positions, device)
    unseen = unseen_categories(prepared.frame.iloc[positions], encoder)
    progress(
        f"{source}: auditing model {model_name} on {scope} ({len(positions)} rows), "
        f"{prepared.describe_groups()}"
        + (f"; unseen categories in {', '.join(unseen)}" if unseen else "")
    )
    model = artifact.model.to(device)
    space = FeatureSpace.from_encoder(audit_encoder, device)
    mark = time.perf_counter()
    decisions = attack_decisions(
        model, rows.x, rows.y, rows.a_numpy, space, config.threat, **prepared.judging,
        seed=config.train.seed, certify=config.certify,
    )  # fmt: skip
    attack_seconds = time.perf_counter() - mark
    evaluation = evaluate_decisions(
        decisions, ci=config.ci, seed=config.train.seed, n_resamples=config.n_resamples
    )
    settings = saved_model_settings(config, artifact, model_name, scope, device, unseen)
    return AuditResult(
        mode="model",
        model=f"saved model {model_name}: {artifact.describe()}, audited on {scope}",
        rows={
            "total": prepared.n_rows,
            "audited": len(positions),
            "dropped": prepared.dropped_rows,
            "features": encoder.n_features,
        },
        threat=config.threat,
        evaluation=evaluation,
        settings=settings,
        seconds={"attack": attack_seconds, "total": time.perf_counter() - started},
        **data_fields(prepared, source),
    )


def saved_model_spec(
    columns: list[str],
    artifact: ModelArtifact,
    spec: DataSpec,
    source: str,
    model_name: str,
) -> DataSpec:
    """The data spec an audit of a saved model uses on a table with ``columns``: the model's
    label and favourable value, ``spec``'s protected group, immutable columns and cleaning,
    and every column that is none of these dropped; refusing a table that lacks a column the
    model reads and options that contradict the model."""
    encoder = artifact.encoder
    lacking = [c for c in encoder.column_names if c not in columns]
    if lacking:
        raise InputError(
            f"{source}: lacks column(s) {_listed(lacking)} that model {model_name} reads"
        )
    if spec.label is not None and spec.label != artifact.label_column:
        raise InputError(
            f"--label {spec.label!r}: model {model_name} predicts {artifact.label_column!r}"
        )
    if spec.positive is not None and spec.positive != artifact.positive_value:
        raise InputError(
            f"--positive {spec.positive!r}: model {model_name} predicts "
            f"{artifact.label_column}={artifact.positive_value!r}"
        )
    unknown_immutable = [c for c in spec.immutable if c not in encoder.column_names]
    if unknown_immutable:
        raise InputError(
            f"--immutable {_listed(unknown_immutable)}: not columns model {model_name} reads"
        )
    roles = {artifact.label_column, spec.protected, *spec.protected_columns, *encoder.column_names}
    ignored = tuple(c for c in columns if c not in roles)
    return replace(
        spec,
        label=artifact.label_column,
        positive=artifact.positive_value,
        drop=tuple(dict.fromkeys((*spec.drop, *ignored))),
    )


def saved_model_settings(
    config: AuditConfig,
    artifact: ModelArtifact,
    model_name: str,
    scope: str,
    device: torch.device,
    unseen: dict[str, int],
) -> dict[str, Any]:
    """The settings of a saved model's audit, as its report states them."""
    return {
        "seed": config.train.seed,
        "scope": scope,
        "train": {"device": str(device)},
        "model_file": model_name,
        "model_info": {
            key: artifact.info.get(key) for key in ("objective", "verdict", "split", "versions")
        },
        "unseen_categories": dict(unseen),
        "bootstrap_resamples": config.n_resamples if config.ci else 0,
        "threads": torch.get_num_threads(),
        "versions": environment_versions(),
    }


def default_audit_spec(artifact: ModelArtifact, **overrides: Any) -> DataSpec:
    """The model's data spec with the given fields replaced (None leaves a field as saved)."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(artifact.data_spec, **changes)
