"""Auditing models froc did not train: scikit-learn and LightGBM pipelines on Adult, as ONNX.

Each model is a scikit-learn pipeline (one-hot encoding of the text columns, standard scaling
of the numbers, then a classifier) fitted on the seeded 70% of Adult that ``froc audit`` uses
for seed 0 (protected sex, group Female, stratified by label and group; sex is not an input)
and exported to ONNX (skl2onnx; LightGBM through onnxmltools' converter). ``froc audit``'s
engine audits it on the held-out 30% (13,567 rows) with the default threat model for ONNX
models: L-inf eps 0.1 in the valid space of records, one category switch, attacked by the
transfer attack (valid-space PGD and APGD of an mlp:128 surrogate trained on the model's
decisions) and the Square-style query attack with 1,000 queries per row.

Per model: accuracy (froc's and scikit-learn's own, which must be equal), the majority floor,
S_B, S_R under each attack and under both, each attack's queries (mean and total) and success,
and the seconds. Then the timing the issue asks for: ``froc audit TEST.csv --model
MLP.onnx --queries 1000`` end to end in a subprocess (median of ``--repeats`` runs), and the
query attack alone at its worst case: every one of the 13,567 rows spending all 1,000 queries
(13.6 million rows through onnxruntime, batched per iteration; a query function that never
reports success, so no row stops early).

Writes bench/results/onnx_audits.{json,md} with the run record (bench/_record.py). Skips
cleanly (exit 0) when ../shared/data is absent, and skips LightGBM when lightgbm or
onnxmltools is not installed.

    python bench/onnx_audits.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _datasets import load_adult, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from froc_cli.attacks import FeatureSpace, SquareAttack
from froc_cli.core import DataSpec, ThreatModel
from froc_cli.data import encode_rows, fit_encoder, prepare_data, split_indices
from froc_cli.models._onnx import OnnxOracle, load_onnx_model, match_input_columns
from froc_cli.workflows._audit import AuditConfig
from froc_cli.workflows._audit_onnx import OnnxAuditOptions, audit_onnx_model

QUERIES = 1000
THREAT = ThreatModel(eps=0.1, attack_space="valid", cat_budget=1)


def _lightgbm() -> Any:
    """A LightGBM classifier with its skl2onnx converter registered, or None."""
    try:
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    except ImportError:
        return None
    update_registered_converter(
        LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
        convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )  # fmt: skip
    return LGBMClassifier(n_estimators=200, num_leaves=31, random_state=0, verbose=-1, n_jobs=1)


def _classifiers() -> dict[str, Any]:
    models: dict[str, Any] = {
        "sklearn-mlp": MLPClassifier((64,), early_stopping=True, max_iter=200, random_state=0),
        "sklearn-lr": LogisticRegression(max_iter=1000),
    }
    lightgbm = _lightgbm()
    if lightgbm is not None:
        models["lightgbm"] = lightgbm
    return models


def _export(
    classifier: Any, train: pd.DataFrame, features: list[str], text: list[str], path: Path
) -> tuple[Pipeline, float]:
    numbers = [c for c in features if c not in text]
    pipeline = Pipeline(
        [
            ("encode", ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"),
                                           text), ("numbers", StandardScaler(), numbers)])),
            ("classifier", classifier),
        ]
    )  # fmt: skip
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(train[features], train["income"])
    fit_seconds = time.perf_counter() - started
    initial = [
        (c, StringTensorType([None, 1]) if c in text else FloatTensorType([None, 1]))
        for c in features
    ]
    model = to_onnx(
        pipeline, initial_types=initial, options={id(pipeline): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )  # fmt: skip
    path.write_bytes(model.SerializeToString())
    return pipeline, fit_seconds


def _audit(
    name: str, path: Path, pipeline: Pipeline, test: pd.DataFrame, spec: DataSpec,
    features: list[str], threads: int,
) -> dict[str, Any]:  # fmt: skip
    model = load_onnx_model(path, threads=threads)
    config = AuditConfig(data=spec, threat=THREAT, threads=threads)
    started = time.perf_counter()
    result = audit_onnx_model(
        test, model, config, OnnxAuditOptions(queries=QUERIES), source="adult test split",
        model_name=path.name,
        progress=lambda line: print(f"  {time.perf_counter() - started:6.1f}s {line}", flush=True),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    own = pipeline.predict(test[features])
    metrics = result.metrics
    return {
        "model": name,
        "rows": result.rows["audited"],
        "accuracy": metrics["accuracy"],
        "sklearn_accuracy": float((own == test["income"]).mean()),
        "majority_floor": metrics["majority_floor"],
        "bias_score": metrics["bias_score"],
        "robustness_transfer": metrics["robustness_transfer"],
        "robustness_query": metrics["robustness_query"],
        "robustness": metrics["robustness"],
        "accuracy_minus_robustness": metrics["accuracy"] - metrics["robustness"],
        "attacks": list(result.attacks),
        "white_box": result.settings["onnx"]["white_box"],
        "surrogate_agreement": result.settings["onnx"]["surrogate_agreement"],
        "queries_total": result.settings["onnx"]["queries_total"],
        "seconds": {**result.seconds, "wall": seconds},
    }


def _cli_timing(path: Path, table: Path, repeats: int, threads: int) -> dict[str, Any]:
    """``froc audit`` end to end in a fresh process, ``repeats`` times."""
    command = [
        sys.executable, "-m", "froc_cli", "audit", str(table), "--model", str(path),
        "--label", "income", "--positive", ">50K", "--protected", "sex",
        "--protected-group", "Female", "--queries", str(QUERIES), "--threads", str(threads),
        "--json", "--quiet",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(repo_root())}
    walls = []
    code = None
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        walls.append(time.perf_counter() - started)
        code = done.returncode
        if code not in (0, 1):
            raise RuntimeError(f"froc audit failed ({code}): {done.stderr.strip()}")
    return {
        "command": " ".join(["froc", *command[3:]]),
        "walls": walls,
        "median": statistics.median(walls),
        "exit_code": code,
        "load_after": list(os.getloadavg()),
    }


def _worst_case(
    path: Path, test: pd.DataFrame, spec: DataSpec, repeats: int, threads: int
) -> dict[str, Any]:
    """The query attack with every row spending all its queries (no row reported broken)."""
    model = load_onnx_model(path, threads=threads)
    prepared = prepare_data(test, spec, source="adult test split")
    mapping = match_input_columns(model, list(test.columns), "adult test split")
    encoder = fit_encoder(prepared.frame, prepared.feature_columns)
    rows = encode_rows(prepared, encoder, np.arange(prepared.n_rows), torch.device("cpu"))
    oracle = OnnxOracle(
        model=model, encoder=encoder, frame=prepared.frame[list(mapping.values())],
        x0=rows.x.numpy(), input_columns=mapping, positive_value=prepared.positive_value,
    )  # fmt: skip
    y = rows.y

    def never_broken(rows_: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, margins = oracle.query(rows_.numpy(), x.numpy())
        # Report each row as decided as its label, with the model's real margin magnitude.
        return y[rows_].bool(), torch.as_tensor(-np.abs(margins)) * (1 - 2 * y[rows_].double())

    walls = []
    for _ in range(repeats):
        oracle.queries = 0
        attack = SquareAttack(never_broken, FeatureSpace.from_encoder(encoder), eps=THREAT.eps,
                              queries=QUERIES, cat_budget=THREAT.cat_budget)  # fmt: skip
        started = time.perf_counter()
        with torch.no_grad():
            attack(rows.x, y)
        walls.append(time.perf_counter() - started)
    return {
        "rows": prepared.n_rows,
        "queries_per_row": QUERIES,
        "queries_total": oracle.queries,
        "walls": walls,
        "median": statistics.median(walls),
        "queries_per_second": oracle.queries / statistics.median(walls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--out", default=str(repo_root() / "bench" / "results" / "onnx_audits"))
    args = parser.parse_args()
    if shared_data_dir() is None:
        print("onnx_audits: ../shared/data not found; skipped")
        return 0
    torch.set_num_threads(args.threads)  # the audits set it too; the worst-case timing needs it
    record = start_record()
    frame, fields = load_adult("sex")
    spec = DataSpec(**fields)
    prepared = prepare_data(frame, spec, source="adult")
    train_positions, test_positions = split_indices(prepared.y, prepared.a, test_size=0.3, seed=0)
    train = frame.iloc[np.asarray(prepared.frame.index[train_positions])]
    test = frame.iloc[np.asarray(prepared.frame.index[test_positions])].reset_index(drop=True)
    features = [c for c in frame.columns if c not in ("income", "sex")]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        table = Path(folder) / "adult_test.csv"
        test.to_csv(table, index=False)
        for name, classifier in _classifiers().items():
            print(f"{name}: fitting and exporting", flush=True)
            path = Path(folder) / f"{name}.onnx"
            pipeline, fit_seconds = _export(classifier, train, features, text, path)
            paths[name] = path
            figures = _audit(name, path, pipeline, test, spec, features, args.threads)
            figures["fit_seconds"] = fit_seconds
            results.append(figures)
            print(json.dumps({k: v for k, v in figures.items() if k != "attacks"}), flush=True)
        print("timing froc audit end to end (sklearn-mlp)", flush=True)
        cli = _cli_timing(paths["sklearn-mlp"], table, args.repeats, args.threads)
        print(json.dumps(cli), flush=True)
        print("timing the query attack at its worst case (sklearn-mlp)", flush=True)
        worst = _worst_case(paths["sklearn-mlp"], test, spec, args.repeats, args.threads)
        print(json.dumps(worst), flush=True)
    finish_record(record)
    payload = {
        "threat_model": {"eps": THREAT.eps, "attack_space": "valid", "cat_budget": 1},
        "queries_per_row": QUERIES,
        "threads": args.threads,
        "models": results,
        "cli_timing": cli,
        "worst_case_query_attack": worst,
        "run": record,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(payload))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def _markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# ONNX audits on Adult (test split, 13,567 rows)",
        "",
        "| model | accuracy (froc / sklearn) | floor | S_B | S_R transfer | S_R query | S_R "
        "(both) | acc. - S_R | query attack: mean / total queries | success | seconds "
        "(surrogate, attacks, total) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in payload["models"]:
        query = next(a for a in m["attacks"] if a["attack"] == "query")
        s = m["seconds"]
        lines.append(
            f"| {m['model']} | {m['accuracy']:.4f} / {m['sklearn_accuracy']:.4f} | "
            f"{m['majority_floor']:.4f} | {m['bias_score']:.4f} | {m['robustness_transfer']:.4f} "
            f"| {m['robustness_query']:.4f} | {m['robustness']:.4f} | "
            f"{m['accuracy_minus_robustness']:.4f} | {query['queries_per_row_mean']:.1f} / "
            f"{query['queries_total']:,} | {query['success_rate']:.4f} | {s['surrogate']:.1f}, "
            f"{s['attack']:.1f}, {s['total']:.1f} |"
        )
    cli, worst = payload["cli_timing"], payload["worst_case_query_attack"]
    lines += [
        "",
        f"`{cli['command']}`: median {cli['median']:.1f} s over {len(cli['walls'])} runs "
        f"({', '.join(f'{w:.1f}' for w in cli['walls'])}).",
        "",
        f"Query attack, worst case ({worst['rows']:,} rows x {worst['queries_per_row']:,} "
        f"queries = {worst['queries_total']:,} queries, no row stopping early): median "
        f"{worst['median']:.1f} s ({', '.join(f'{w:.1f}' for w in worst['walls'])}), "
        f"{worst['queries_per_second']:,.0f} queries/s.",
        "",
        record_line(payload["run"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
