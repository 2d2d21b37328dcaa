"""A saved model on a dataset of parquet shards, streamed: the audit and predictions in bounded
memory whatever the row count.

The audit reads the dataset twice in record batches: a first pass over the label and protected
columns settles the group coding exactly as a whole-table read would (the groups, the default
protected group); the second prepares, encodes, attacks and decides each batch and adds its
decisions to :class:`froc_cli.metrics.DecisionCounts`, whose sums merge exactly. How many
audited rows are the model's training rows is estimated, as for a file, from the training-row
hashes the model file keeps, on about ``HASHED_ROWS`` rows (every k-th batch: hashing costs
about as much as attacking) scaled up to every row. Predictions
are written one output shard per input shard, each through a temporary file renamed into place
once every shard is written (a failed run leaves none).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import DataSpec
from froc_cli.core._device import resolve_device, torch_threads
from froc_cli.core._errors import InputError
from froc_cli.core._io import StagedFile, commit_files, row_hashes, stage_file, unpack_row_hashes
from froc_cli.core._paths import same_file
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._shards import STREAM_BATCH_ROWS, Dataset
from froc_cli.data._dataset import (
    GroupCoding,
    PreparedData,
    matches_value,
    prepare_data,
    protected_series,
    require_columns,
    resolve_group_coding,
)
from froc_cli.data._rows import encode_rows
from froc_cli.data._splits import too_small_groups
from froc_cli.metrics._counts import DecisionCounts
from froc_cli.metrics._evaluate import attack_decisions
from froc_cli.models._artifact import ModelArtifact
from froc_cli.workflows._audit import AuditConfig, AuditResult, data_fields
from froc_cli.workflows._predict import (
    DECISION_COLUMN,
    predict_table,
    saved_model_settings,
    saved_model_spec,
    unseen_categories,
)

__all__ = [
    "DatasetPrediction",
    "audit_saved_dataset",
    "predict_dataset",
]


# Rows of a streamed audit hashed to estimate how many are the model's training rows.
HASHED_ROWS = 1_000_000


@dataclass(frozen=True)
class _RolesPass:
    """What the first pass found: the group coding, and rows and favourable rows seen."""

    coding: GroupCoding
    rows: int
    favourable: int


def _roles_pass(dataset: Dataset, spec: DataSpec, batch_rows: int) -> _RolesPass:
    """Read the label and protected columns only; settle the group coding a whole-table read
    would (:func:`froc_cli.data.resolve_group_coding`)."""
    label, positive = str(spec.label), str(spec.positive)
    protected = (spec.protected,) if spec.protected in dataset.columns else spec.protected_columns
    columns = list(dataset.columns)
    require_columns(dataset.source, columns, [label], "--label")
    require_columns(dataset.source, columns, list(protected), "--protected")
    per_value: dict[Any, list[int]] = {}
    rows = favourable = 0
    for batch in dataset.batches([label, *protected], batch_rows):
        frame = batch.frame.dropna()  # a row with a missing role fails or is dropped later
        values = protected_series(frame, spec)
        hit = matches_value(frame[label], positive)
        rows, favourable = rows + len(frame), favourable + int(hit.sum())
        sums = pd.DataFrame({"v": values.to_numpy(dtype=object), "y": hit}).groupby(
            "v", sort=False
        )["y"]
        for value, size, count in zip(
            sums.size().index, sums.size().to_numpy(), sums.sum().to_numpy(), strict=True
        ):
            seen = per_value.setdefault(value, [0, 0])
            seen[0], seen[1] = seen[0] + int(size), seen[1] + int(count)
    if favourable == 0:
        raise InputError(
            f"{dataset.source}: label column {label!r} never holds the model's favourable "
            f"value {positive!r}; expected two classes"
        )
    if favourable == rows:
        raise InputError(
            f"{dataset.source}: label column {label!r} holds only the favourable value "
            f"{positive!r}; expected two classes"
        )
    distinct = pd.Series(list(per_value), dtype=object, name=",".join(protected))
    inferred = pd.Series(distinct.tolist(), name=distinct.name)  # the column's own type
    rates = np.array([seen[1] / seen[0] for seen in per_value.values()])
    coding = resolve_group_coding(dataset.source, inferred, rates, spec.protected_group)
    return _RolesPass(coding, rows, favourable)


def _training_matches(frame: pd.DataFrame, columns: list[str], stored: np.ndarray) -> int:
    """Rows of ``frame`` whose hash is among a model file's stored training-row hashes."""
    if not len(stored) or not len(frame):
        return 0
    return int(np.isin(row_hashes(frame, columns), stored).sum())


def audit_saved_dataset(
    dataset: Dataset,
    artifact: ModelArtifact,
    config: AuditConfig,
    *,
    model_name: str,
    progress: ProgressCallback = silent,
    batch_rows: int = STREAM_BATCH_ROWS,
) -> AuditResult:
    """Audit a saved model on every row of ``dataset``, streamed (see the module docstring):
    the figures :func:`froc_cli.workflows.audit_saved_model` gives on the concatenated table,
    in memory bounded by ``batch_rows``; bootstrap intervals by the Poisson bootstrap of
    :class:`froc_cli.metrics.DecisionCounts`."""
    with torch_threads(config.threads):
        return _audit_saved_dataset(dataset, artifact, config, model_name, progress, batch_rows)


def _audit_saved_dataset(
    dataset: Dataset,
    artifact: ModelArtifact,
    config: AuditConfig,
    model_name: str,
    progress: ProgressCallback,
    batch_rows: int,
) -> AuditResult:
    started = time.perf_counter()
    source = dataset.source
    encoder = artifact.encoder
    spec = saved_model_spec(list(dataset.columns), artifact, config.data, source, model_name)
    device = resolve_device(config.train.device)
    roles = _roles_pass(dataset, spec, batch_rows)
    coding = roles.coding
    audit_encoder = replace(encoder, immutable=tuple(spec.immutable) or encoder.immutable)
    model = artifact.model.to(device)
    space = FeatureSpace.from_encoder(audit_encoder, device)
    packed = artifact.info.get("split", {}).get("training_rows")
    stored, stored_from = unpack_row_hashes(packed) if isinstance(packed, dict) else (None, 0)
    hashed_columns = [*encoder.column_names, artifact.label_column]
    counts = DecisionCounts(
        attacks=config.threat.attacks,
        certified=config.certify,
        criterion=spec.fairness,
        group_names=coding.group_names,
        n_resamples=config.n_resamples if config.ci else 0,
        seed=config.train.seed,
    )
    progress(
        f"{source}: auditing model {model_name} on every row of {len(dataset.shards)} shard(s) "
        f"({dataset.rows:,} rows), streamed {batch_rows:,} rows at a time"
    )
    summary: PreparedData | None = None
    unseen: Counter[str] = Counter()
    audited = dropped = matches = hashed = 0
    attack_seconds = 0.0
    # Hashing rows costs about as much as attacking them: every stride-th batch is hashed
    # (about HASHED_ROWS rows), and the overlap scaled up, as the stored sample already is.
    stride = max(1, math.ceil(dataset.rows / HASHED_ROWS))
    for number, batch in enumerate(dataset.batches(batch_rows=batch_rows)):
        prepared = prepare_data(batch.frame, spec, source=str(batch.path), coding=coding)
        dropped += prepared.dropped_rows
        if summary is None:
            summary = prepared
        if not prepared.n_rows:
            continue
        positions = batch.start + (np.asarray(prepared.frame.index) - batch.offset)
        rows = encode_rows(prepared, audit_encoder, np.arange(prepared.n_rows), device)
        mark = time.perf_counter()
        decisions = attack_decisions(
            model, rows.x, rows.y, rows.a_numpy, space, config.threat, **prepared.judging,
            seed=config.train.seed, certify=config.certify,
        )  # fmt: skip
        attack_seconds += time.perf_counter() - mark
        counts.add(decisions, positions)
        audited += prepared.n_rows
        unseen.update(unseen_categories(prepared.frame, encoder))
        if stored is not None and number % stride == 0:
            matches += _training_matches(prepared.frame, hashed_columns, stored)
            hashed += prepared.n_rows
        if batch.offset == 0:
            progress(f"shard {batch.shard + 1}/{len(dataset.shards)}: {batch.path.name}")
    if summary is None or not audited:
        raise InputError(f"{source}: no rows left after --dropna")
    labels = counts.decisions().y
    weights = counts.decisions().weight
    assert weights is not None
    if weights[labels == 1].sum() == 0 or weights[labels == 0].sum() == 0:
        raise InputError(f"{source}: the rows audited hold a single label value")
    group_rows = counts.group_rows()
    n_codes = len(coding.group_names or (0, 1))
    per_code = np.array([group_rows.get(code, 0) for code in range(n_codes)], dtype=np.int64)
    small = too_small_groups(summary, per_code, spec.min_group_size, "in the audited rows")
    if small:
        counts.without_groups(small)
        names = coding.group_names or ()
        summary = replace(summary, too_small=tuple((names[g], int(per_code[g])) for g in small))
    scope = "every row"
    if stored is not None and len(stored) and matches:
        overlap = round(
            matches * max(stored_from, len(stored)) / len(stored) * audited / max(hashed, 1)
        )
        scope = (
            f"every row, about {overlap} of which are rows this model was trained on (its "
            "figures on them are optimistic)"
        )
    evaluation = counts.evaluate()
    settings = saved_model_settings(config, artifact, model_name, scope, device, dict(unseen))
    settings["streamed"] = {
        "shards": len(dataset.shards),
        "batch_rows": batch_rows,
        "bootstrap": "poisson" if config.ci else None,
    }
    return AuditResult(
        mode="model",
        model=f"saved model {model_name}: {artifact.describe()}, audited on {scope}",
        rows={
            "total": audited,
            "audited": audited,
            "dropped": dropped,
            "features": encoder.n_features,
        },
        threat=config.threat,
        evaluation=evaluation,
        settings=settings,
        seconds={"attack": attack_seconds, "total": time.perf_counter() - started},
        **data_fields(summary, source),
    )


@dataclass(frozen=True)
class DatasetPrediction:
    """What :func:`predict_dataset` wrote: one output shard per input shard, the rows and
    favourable decisions, and the rows whose categories the model never saw, per column."""

    outputs: tuple[Path, ...]
    rows: int
    favourable: int
    unseen: dict[str, int]


def output_shards(dataset: Dataset, out_dir: str | os.PathLike[str]) -> list[Path]:
    """The output shard of each input shard: its name in ``out_dir`` (``.parquet``), refusing
    an output that is an input shard or two inputs with one name."""
    out = Path(out_dir)
    if (out.exists() and not out.is_dir()) or (
        not out.exists() and out.suffix.lower() in (".csv", ".parquet", ".pq")
    ):
        raise InputError(
            f"--output {out}: expected a folder; predictions over a dataset of shards are "
            "written one shard per input shard"
        )
    paths = [out / (shard.stem + ".parquet") for shard in dataset.shards]
    seen: dict[Path, Path] = {}
    for shard, path in zip(dataset.shards, paths, strict=True):
        if path in seen:
            raise InputError(
                f"{shard} and {seen[path]}: both would be written to {path}; rename one"
            )
        seen[path] = shard
        if any(same_file(path, other) for other in dataset.shards):
            raise InputError(
                f"--output {out}: would overwrite input shard {path}; froc never overwrites "
                "its input"
            )
    return paths


def predict_dataset(
    dataset: Dataset,
    artifact: ModelArtifact,
    out_dir: str | os.PathLike[str],
    *,
    model_name: str = "model",
    passthrough: tuple[str, ...] = (),
    device: str = "cpu",
    threads: int | None = None,
    batch_rows: int = STREAM_BATCH_ROWS,
    progress: ProgressCallback = silent,
) -> DatasetPrediction:
    """:func:`froc_cli.workflows.predict_table` over every shard of ``dataset``, streamed:
    ``out_dir/<shard>.parquet`` holds each input shard's rows with ``froc_proba`` and
    ``froc_decision`` appended, in input order. Every shard is written to a temporary file
    first; all are renamed into place once all are written (none on failure)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = output_shards(dataset, out_dir)
    staged: list[StagedFile] = []
    unseen: Counter[str] = Counter()
    totals = {"rows": 0, "favourable": 0}

    def write_shard(index: int, temp: Path) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            for batch in dataset.batches(batch_rows=batch_rows, shards=[index]):
                prediction = predict_table(
                    batch.frame, artifact, source=str(batch.path), model_name=model_name,
                    passthrough=passthrough, device=device,
                )  # fmt: skip
                table = pa.Table.from_pandas(prediction.frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(temp, table.schema)
                writer.write_table(table.cast(writer.schema))
                unseen.update(prediction.unseen)
                totals["rows"] += len(prediction.frame)
                totals["favourable"] += int(prediction.frame[DECISION_COLUMN].sum())
        finally:
            if writer is not None:
                writer.close()

    with torch_threads(threads):
        try:
            for index, path in enumerate(paths):
                staged.append(stage_file(path, functools.partial(write_shard, index)))
                progress(f"shard {index + 1}/{len(paths)}: {dataset.shards[index].name} -> {path}")
        except BaseException:
            for item in staged:
                item.discard()
            raise
        commit_files(staged)
    return DatasetPrediction(
        outputs=tuple(paths),
        rows=totals["rows"],
        favourable=totals["favourable"],
        unseen=dict(unseen),
    )
