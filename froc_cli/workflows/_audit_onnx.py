"""Audit a model from another stack, as an ONNX file: fairness on every row, and robustness by
black-box attacks (transfer from a surrogate, a query attack) and, when the graph converts to
torch, white-box attacks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace, QueryAttack, SquareAttack, TransferAttack, make_attack
from froc_cli.core._config import Objective, TrainConfig, check_fraction
from froc_cli.core._device import resolve_device, torch_threads
from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import PreparedData, prepare_data, value_texts
from froc_cli.data._encoder import fit_encoder
from froc_cli.data._rows import encode_rows
from froc_cli.data._splits import judge_groups
from froc_cli.metrics._evaluate import Decisions, attack_in_chunks, evaluate_decisions
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._onnx import (
    OnnxClassifier,
    OnnxOracle,
    label_texts,
    match_input_columns,
    onnx_versions,
)
from froc_cli.models._training import predict_logits, train_model
from froc_cli.workflows._audit import (
    AuditConfig,
    AuditResult,
    audit_train_config,
    data_fields,
)

__all__ = ["DEFAULT_QUERIES", "OnnxAuditOptions", "audit_onnx_model"]

DEFAULT_QUERIES = 1000
# The torch conversion of a graph is used for white-box attacks only when its decisions agree
# with onnxruntime's on all but this share of the audited rows (float32 sums differ in order).
_CONVERSION_TOLERANCE = 0.001
# The white-box attacks' crafted examples are computed on the conversion and judged by
# onnxruntime; the surrogate crafts with these attacks (valid space).
_TRANSFER_CRAFTERS = ("pgd", "apgd")
_LISTED = 8


@dataclass(frozen=True)
class OnnxAuditOptions:
    """How an ONNX model is read and attacked.

    ``features``: the table columns of a single 2-D float input, in order (when the graph does
    not name them). ``threshold``: decide ``favourable probability >= threshold`` (None: the
    model's label output, or probability >= 0.5 when it has none). ``queries``: the query
    attack's budget per row (0: transfer and white-box attacks only).
    """

    features: tuple[str, ...] = ()
    threshold: float | None = None
    queries: int = DEFAULT_QUERIES

    def __post_init__(self) -> None:
        if self.threshold is not None:
            check_fraction(self.threshold, "--threshold")
            if not 0.0 < self.threshold < 1.0:
                raise InputError(f"--threshold {self.threshold}: expected a number in (0, 1)")
        if self.queries < 0:
            raise InputError(f"--queries {self.queries}: expected 0 or more")


def _listed(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    return shown + (f", ... ({len(names)})" if len(names) > _LISTED else "")


def audit_onnx_model(
    frame: pd.DataFrame,
    model: OnnxClassifier,
    config: AuditConfig,
    options: OnnxAuditOptions | None = None,
    *,
    source: str,
    model_name: str,
    progress: ProgressCallback = silent,
) -> AuditResult:
    """Audit ``model`` on every row of ``frame`` (it was trained elsewhere).

    Fairness (every criterion and group froc supports) from its decisions; robustness in
    froc's valid space of records (``config.threat``'s eps, category budget, immutable
    columns; the protected column fixed) under a transfer attack from a froc surrogate trained
    to imitate its decisions (``config.train``), a Square-style query attack
    (``options.queries`` per row) and, when the graph converts to torch, the white-box attacks
    of ``config.threat.attacks``. A row is robust when no attack broke it.
    """
    options = options or OnnxAuditOptions()
    with torch_threads(config.threads):
        return _audit(frame, model, config, options, source, model_name, progress)


def _prepare(
    frame: pd.DataFrame, model: OnnxClassifier, config: AuditConfig, source: str, name: str
) -> tuple[PreparedData, dict[str, str], list[str]]:
    """The prepared table (features: the columns the model reads, but the protected ones), the
    input -> column mapping (named inputs) and the columns the model reads."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    spec = config.data
    label = spec.label if spec.label is not None else columns[-1]
    mapping = match_input_columns(model, columns, source)
    reads = list(dict.fromkeys(mapping.values() if mapping else model.features))
    if label in reads:
        raise InputError(
            f"{source}: model {name} reads the label column {label!r}; name the label with "
            "--label if it is another column"
        )
    unknown_immutable = [c for c in spec.immutable if c not in reads and c in columns]
    if unknown_immutable:
        raise InputError(f"--immutable {_listed(unknown_immutable)}: not read by model {name}")
    kinds = {spec_.name: spec_.kind for spec_ in model.inputs}
    for input_name, column in mapping.items():
        if kinds[input_name] == "string":
            # A category to the model: a category to froc too (text compared as text).
            series = frame[column]
            frame[column] = series.astype(object).where(series.isna(), series.astype(str))
    roles = {label, *spec.protected_columns, spec.protected, *reads}
    ignored = tuple(c for c in columns if c not in roles)
    prepared = prepare_data(
        frame,
        replace(spec, label=label, drop=tuple(dict.fromkeys((*spec.drop, *ignored)))),
        source=source,
    )
    return prepared, mapping, reads


def _favourable_column(
    model: OnnxClassifier, prepared: PreparedData, labels: np.ndarray | None, scores: np.ndarray
) -> int:
    """Which score column is the favourable class's: the graph's class labels, else the
    column the label output agrees with, else the second (class 1)."""
    positive = prepared.positive_value
    if scores.shape[1] == 1:
        return 0
    if model.classes is not None:
        texts = list(label_texts(np.array(model.classes, dtype=object)))
        return texts.index(positive) if positive in texts else 1
    if labels is not None:
        favourable = label_texts(labels) == positive
        winner = scores.argmax(axis=1)
        if favourable.any():
            return int(np.bincount(winner[favourable], minlength=2).argmax())
        if (~favourable).any():
            return 1 - int(np.bincount(winner[~favourable], minlength=2).argmax())
    return 1


def _check_classes(
    model: OnnxClassifier, prepared: PreparedData, labels: np.ndarray | None
) -> None:
    """The model's classes must be values of the label column (else no decision would read
    as favourable, silently)."""
    table = value_texts(prepared.frame[prepared.label_column])
    known = (
        list(label_texts(np.array(model.classes, dtype=object)))
        if model.classes is not None
        else (sorted(set(label_texts(labels))) if labels is not None else [])
    )
    stray = [text for text in known if text not in table]
    if stray:
        raise InputError(
            f"{prepared.source}: model {model.path} predicts class {stray[0]!r}, not a value of "
            f"label column {prepared.label_column!r} ({_listed(table)}); pass the table the "
            "model was trained for, or --label"
        )
    if model.classes is not None and prepared.positive_value not in known:
        raise InputError(
            f"{prepared.source}: favourable value {prepared.positive_value!r} is not a class of "
            f"model {model.path} ({_listed(known)})"
        )


def _check_scores(model: OnnxClassifier, scores: np.ndarray) -> None:
    """Two-column scores must be class probabilities (in [0, 1], each row summing to 1):
    a graph that outputs two other numbers per row is not a classifier."""
    if model.score_output not in ("tensor", "zipmap") or not len(scores):
        return
    outside = (scores < -1e-6) | (scores > 1 + 1e-6)
    off = np.abs(scores.sum(axis=1) - 1.0) > 1e-3
    if outside.any() or off.any():
        row = int(np.flatnonzero(outside.any(axis=1) | off)[0])
        raise ModelFileError(
            f"{model.path}: output {model.score_name!r} is not class probabilities (row {row}: "
            f"{', '.join(f'{v:.4g}' for v in scores[row])}); expected a binary classifier"
        )


def _query_function(oracle: OnnxOracle, device: torch.device) -> Callable[..., Any]:
    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        decisions, margins = oracle.query(rows.cpu().numpy(), candidates.cpu().numpy())
        return (
            torch.as_tensor(decisions.astype(bool), device=device),
            torch.as_tensor(margins, dtype=torch.float64, device=device),
        )

    return query


def _attack_record(
    name: str,
    method: str,
    labels: np.ndarray,
    clean: np.ndarray,
    adversarial: np.ndarray,
    queries: np.ndarray,
    budget: int,
    seconds: float,
) -> dict[str, Any]:
    """What the report says of one attack: its queries and its success on the rows the model
    decided as the attacked labels."""
    right = clean == labels
    broken = right & (adversarial != labels)
    return {
        "attack": name,
        "method": method,
        "queries_per_row_budget": budget,
        "queries_per_row_mean": float(queries.mean()) if len(queries) else 0.0,
        "queries_per_row_max": int(queries.max()) if len(queries) else 0,
        "queries_total": int(queries.sum()),
        "rows_attacked": int(right.sum()),
        "rows_broken": int(broken.sum()),
        "success_rate": float(broken.sum() / right.sum()) if right.any() else 0.0,
        "seconds": seconds,
    }


def _audit(
    frame: pd.DataFrame,
    model: OnnxClassifier,
    config: AuditConfig,
    options: OnnxAuditOptions,
    source: str,
    name: str,
    progress: ProgressCallback,
) -> AuditResult:
    started = time.perf_counter()
    if config.predictions is not None:
        raise InputError("--model and --predictions: audit one or the other")
    if config.certify:
        raise InputError(
            "--certify proves bounds for froc's own networks, not for an ONNX model; audit "
            "without it"
        )
    if options.threshold is not None and not model.has_probabilities:
        raise InputError(f"--threshold needs class probabilities; model {name} outputs labels only")
    parse_model_spec(config.train.model)
    device = resolve_device(config.train.device)
    prepared, mapping, reads = _prepare(frame, model, config, source, name)
    prepared = judge_groups(prepared, None, config.data.min_group_size, "in the file")
    encoder = fit_encoder(prepared.frame, prepared.feature_columns, prepared.immutable_columns)
    rows = encode_rows(prepared, encoder, np.arange(prepared.n_rows), device)
    threshold = options.threshold if options.threshold is not None else 0.5
    oracle = OnnxOracle(
        model=model,
        encoder=encoder,
        frame=prepared.frame[reads].reset_index(drop=True),
        x0=rows.x.cpu().numpy(),
        input_columns=mapping,
        positive_value=prepared.positive_value,
        threshold=threshold,
        use_scores=options.threshold is not None,
    )
    everyone = np.arange(prepared.n_rows)
    outputs = model.run(oracle.feed(everyone))
    _check_classes(model, prepared, outputs.labels)
    if outputs.scores is not None:
        _check_scores(model, outputs.scores)
        oracle.favourable_column = _favourable_column(
            model, prepared, outputs.labels, outputs.scores
        )
    clean, _ = oracle.decide(outputs)
    fixed = [c for c in reads if c not in prepared.feature_columns]
    progress(
        f"{source}: auditing ONNX model {name} on every row ({prepared.n_rows}), "
        f"{prepared.describe_groups()}"
        + (f"; it reads {_listed(fixed)}, which attacks keep fixed" if fixed else "")
    )
    seconds: dict[str, float] = {"prepare": time.perf_counter() - started}

    threat = replace(config.threat, attack_space="valid")
    y = rows.y_numpy
    labels = y if threat.attack_target == "true" else clean.astype(np.int8)
    y_attack = torch.as_tensor(labels.astype(np.float32), device=device)
    space = FeatureSpace.from_encoder(encoder, device)
    query = _query_function(oracle, device)
    adversarial: dict[str, np.ndarray] = {}
    records: list[dict[str, Any]] = []
    whitebox, reason = model.torch_module(encoder, oracle.favourable_column, threshold)
    if whitebox is not None:
        whitebox = whitebox.to(device).eval()
        agree = (predict_logits(whitebox, rows.x) >= 0).cpu().numpy() == (clean > 0)
        if float(1.0 - agree.mean()) > _CONVERSION_TOLERANCE:
            reason = (
                f"its torch conversion disagrees with onnxruntime on {int((~agree).sum())} rows"
            )
            whitebox = None
    if whitebox is not None:
        for kind in threat.attacks:
            mark = time.perf_counter()
            progress(f"white-box {kind} on the graph's torch conversion (valid space)")
            examples = attack_in_chunks(
                make_attack(kind, whitebox, space, threat, seed=config.train.seed), rows.x, y_attack
            )
            decided, _ = oracle.query(everyone, examples.cpu().numpy())
            adversarial[kind] = decided
            method = (
                f"white-box {kind.upper()} on the torch conversion of the graph, valid space; "
                "decisions from onnxruntime"
            )
            queries = np.ones(len(labels), dtype=np.int64)
            seconds_taken = time.perf_counter() - mark
            records.append(
                _attack_record(kind, method, labels, clean, decided, queries, 1, seconds_taken)
            )
    else:
        progress(f"no white-box attack: {reason}")

    # Transfer: a froc network taught the model's own decisions on these rows.
    mark = time.perf_counter()
    train = audit_train_config(config.train, prepared.n_rows)
    progress(f"training a {train.model} surrogate on the model's decisions ({train.epochs} epochs)")
    surrogate = build_model(train.model, encoder.n_features, seed=train.seed, device=device)
    decisions_tensor = torch.as_tensor(clean.astype(np.float32), device=device)
    train_model(
        surrogate,
        rows.x,
        decisions_tensor,
        rows.a,
        objective=Objective(),
        config=train,
        space=space,
    )
    surrogate.eval()
    imitation = float(((predict_logits(surrogate, rows.x) > 0).cpu().numpy() == (clean > 0)).mean())
    seconds["surrogate"] = time.perf_counter() - mark
    crafting = replace(threat, attack_target="true")
    crafters = [
        _chunked(make_attack(kind, surrogate, space, crafting, seed=config.train.seed))
        for kind in _TRANSFER_CRAFTERS
    ]
    progress(f"transfer attack ({' and '.join(k.upper() for k in _TRANSFER_CRAFTERS)} examples)")
    mark = time.perf_counter()
    transfer = TransferAttack(query, crafters)
    start = transfer(rows.x, y_attack)
    adversarial["transfer"] = _decided(transfer, labels)
    method = (
        f"black-box transfer: valid-space PGD and APGD examples of a {train.model} surrogate "
        f"that agrees with the model on {imitation:.1%} of the rows"
    )
    used = transfer.queries_used.cpu().numpy()
    seconds_taken = time.perf_counter() - mark
    records.append(
        _attack_record(
            "transfer",
            method,
            labels,
            clean,
            adversarial["transfer"],
            used,
            1 + len(crafters),
            seconds_taken,
        )
    )
    if options.queries > 0:
        progress(f"query attack ({options.queries} queries per row at most, batched)")
        mark = time.perf_counter()
        square = SquareAttack(
            query,
            space,
            eps=threat.eps,
            queries=options.queries,
            cat_budget=threat.cat_budget,
            seed=config.train.seed,
        )
        square.forward(rows.x, y_attack, start=start)
        adversarial["query"] = _decided(square, labels)
        method = (
            "black-box Square-style random search in the valid space, from the transfer "
            "examples, guided by the model's probability margin"
            + ("" if model.has_probabilities else " (labels only: no margin)")
        )
        used = square.queries_used.cpu().numpy()
        seconds_taken = time.perf_counter() - mark
        records.append(
            _attack_record(
                "query",
                method,
                labels,
                clean,
                adversarial["query"],
                used,
                options.queries,
                seconds_taken,
            )
        )
    seconds["attack"] = time.perf_counter() - started - seconds["prepare"] - seconds["surrogate"]

    decisions = Decisions(
        y=y,
        a=rows.a_numpy.astype(np.int8),
        pred=clean.astype(np.int8),
        pred_fgsm=adversarial.get("fgsm"),
        pred_pgd=adversarial.get("pgd"),
        pred_apgd=adversarial.get("apgd"),
        pred_other={k: adversarial[k] for k in ("transfer", "query") if k in adversarial},
        **prepared.judging,
    )
    evaluation = evaluate_decisions(
        decisions, ci=config.ci, seed=config.train.seed, n_resamples=config.n_resamples
    )
    for record in records:
        record["robustness"] = evaluation.metrics[f"robustness_{record['attack']}"]
    seconds["total"] = time.perf_counter() - started
    settings: dict[str, Any] = {
        "seed": config.train.seed,
        "scope": "every row",
        "train": {"device": str(device), "surrogate": _surrogate_settings(train)},
        "model_file": name,
        "onnx": {
            "producer": model.producer,
            "layout": model.layout,
            "inputs": {spec.name: mapping.get(spec.name, spec.name) for spec in model.inputs}
            if mapping
            else {model.inputs[0].name: list(model.features)},
            "decisions": (
                f"favourable probability >= {threshold:g}"
                if options.threshold is not None or model.label_output is None
                else f"label output {model.label_output!r}"
            ),
            "white_box": "torch conversion of the graph" if whitebox is not None else reason,
            "queries_per_row": options.queries,
            "queries_total": oracle.queries,
            "surrogate_agreement": imitation,
        },
        "bootstrap_resamples": config.n_resamples if config.ci else 0,
        "threads": torch.get_num_threads(),
        "versions": environment_versions() | onnx_versions(),
    }
    return AuditResult(
        mode="onnx",
        model=f"ONNX model {name}: {model.describe()}, audited on every row",
        rows={
            "total": prepared.n_rows,
            "audited": prepared.n_rows,
            "dropped": prepared.dropped_rows,
            "features": encoder.n_features,
        },
        threat=threat,
        evaluation=evaluation,
        settings=settings,
        seconds=seconds,
        attacks=tuple(records),
        **data_fields(prepared, source),
    )


def _surrogate_settings(train: TrainConfig) -> dict[str, Any]:
    return {
        "model": train.model,
        "epochs": train.epochs,
        "lr": train.lr,
        "batch_size": train.batch_size,
    }


def _chunked(attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., Any]:
    def craft(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return attack_in_chunks(attack, x, y)

    return craft


def _decided(attack: QueryAttack, labels: np.ndarray) -> np.ndarray:
    """The model's decisions on an attack's examples: the other decision where it broke the
    row (as queried), the attacked label where it did not."""
    broken = attack.broken.cpu().numpy()
    return np.where(broken, 1 - labels, labels).astype(np.int8)
