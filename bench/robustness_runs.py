"""How strong froc's robustness figures are: PGD-10, APGD with 1 and 5 restarts and certified
bounds, on Adult, for a plain, an adversarially trained and a FRoC-IN model.

Each model is trained by ``froc train-in``'s engine on the seeded 70% of Adult (protected sex,
group Female) and measured on the held-out 30% (13,567 rows), the split ``froc audit`` and
``froc train-in`` use for seed 0:

- ``plain``: lambda_F = lambda_R = 0;
- ``adversarial``: lambda_F = 0, lambda_R = 1 (PGD adversarial training, eq. 3);
- ``froc-in``: the search for delta_F 0.05, delta_R 0.6 (the user's line), gated on what
  ``--attack`` gives (``fgsm,pgd`` by default; ``--gate-attack`` changes it).

For each model and each attack space (continuous; valid records with one category switch) it
records S_R under PGD-10, APGD-100 with 1 and with 5 restarts (wall seconds of each), the rows
no attack broke (accuracy, balanced and retention summaries), the certified share (CROWN; wall
seconds), the majority-class floor beside each, and whether certified <= strongest attack.

Writes bench/results/robustness_runs.{json,md} with the run record (bench/_record.py). Skips
cleanly (exit 0) when ../shared/data is absent.

    python bench/robustness_runs.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _datasets import load_adult, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record

from froc_cli.attacks import FeatureSpace, certify_rows, make_attack
from froc_cli.core import DataSpec, ThreatModel
from froc_cli.data import split_prepared
from froc_cli.methods import FrocInConfig
from froc_cli.metrics import attack_in_chunks, robust_summary
from froc_cli.models import predict_logits
from froc_cli.workflows import TrainInConfig, train_in_table

MODELS = {
    "plain": {"lambda_f": 0.0, "lambda_r": 0.0},
    "adversarial": {"lambda_f": 0.0, "lambda_r": 1.0},
    "froc-in": {"delta_f": 0.05, "delta_r": 0.6},
}
SPACES = {
    "continuous": ThreatModel(),
    "valid": ThreatModel(attack_space="valid", cat_budget=1),
}


def _decisions(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    return (predict_logits(model, x) > 0).cpu().numpy()


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def measure(model: torch.nn.Module, rows: Any, space: FeatureSpace, seed: int) -> dict[str, Any]:
    """Every attack and the certificate on ``rows``, in both attack spaces."""
    y = rows.y_numpy.astype(bool)
    clean = _decisions(model, rows.x)
    out: dict[str, Any] = {
        "rows": len(y),
        "accuracy": float((clean == y).mean()),
        "majority_floor": float(max(y.mean(), 1 - y.mean())),
    }
    for name, threat in SPACES.items():
        figures: dict[str, Any] = {}
        broken_any = np.zeros(len(y), dtype=bool)
        runs = {
            "pgd10": replace(threat, attacks=("pgd",)),
            "apgd_1": replace(threat, attacks=("apgd",), restarts=1),
            "apgd_5": replace(threat, attacks=("apgd",), restarts=5),
        }
        for label, run in runs.items():
            attack = make_attack(run.attacks[0], model, space, run, seed=seed)
            x_adv, seconds = _timed(lambda a=attack: attack_in_chunks(a, rows.x, rows.y))
            robust = _decisions(model, x_adv) == y
            broken_any |= ~robust
            figures[label] = {"robustness": float(robust.mean()), "seconds": round(seconds, 2)}
        robust = ~broken_any
        certified, seconds = _timed(lambda t=threat: certify_rows(model, rows.x, rows.y, space, t))
        certified = certified.cpu().numpy()
        figures["strongest"] = {
            summary: robust_summary(robust, y, clean, summary)
            for summary in ("accuracy", "balanced", "retention")
        }
        figures["certified"] = {"robustness": float(certified.mean()), "seconds": round(seconds, 2)}
        figures["certified_within_attacked"] = bool((certified <= robust).all())
        figures["unknown_gap"] = figures["strongest"]["accuracy"] - float(certified.mean())
        out[name] = figures
    return out


def run(threads: int, seed: int, gate_attack: str) -> dict[str, Any]:
    """Train the three models and measure them."""
    torch.set_num_threads(threads)
    frame, fields = load_adult("sex")
    spec = DataSpec(**fields)
    results: dict[str, Any] = {}
    for name, weights in MODELS.items():
        threat = ThreatModel(attacks=tuple(gate_attack.split(",")))  # type: ignore[arg-type]
        froc = FrocInConfig(threat=threat, **weights)
        froc = replace(froc, train=replace(froc.train, seed=seed))
        config = TrainInConfig(data=spec, froc=froc, threads=threads)
        result, seconds = _timed(lambda c=config: train_in_table(frame, c, source="adult.csv"))
        model = result.model.eval()
        split = split_prepared(
            result.prepared, test_size=config.test_size, seed=seed, device="cpu", min_group_size=30
        )
        space = FeatureSpace.from_encoder(split.encoder, split.device)
        entry = measure(model, split.test, space, seed)
        entry.update(
            verdict=result.verdict,
            lambda_f=result.outcome.lambda_f,
            lambda_r=result.outcome.lambda_r,
            train_seconds=round(seconds, 1),
            test_metrics=result.test.metrics,
        )
        results[name] = entry
        print(f"{name}: {json.dumps({k: entry[k] for k in ('accuracy', 'verdict')})}", flush=True)
    return results


def _markdown(results: dict[str, Any], record: dict[str, Any]) -> str:
    lines = [
        "# Robustness figures on Adult (sex), seed 0: PGD-10, APGD and certified",
        "",
        record_line(record),
        "",
        "| model | space | acc. | floor | PGD-10 | APGD x1 | APGD x5 | strongest (acc.) | "
        "balanced | retention | certified | APGD x5 s | certify s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, entry in results.items():
        for space in SPACES:
            f = entry[space]
            lines.append(
                f"| {model} | {space} | {entry['accuracy']:.3f} | {entry['majority_floor']:.3f} | "
                f"{f['pgd10']['robustness']:.3f} | {f['apgd_1']['robustness']:.3f} | "
                f"{f['apgd_5']['robustness']:.3f} | {f['strongest']['accuracy']:.3f} | "
                f"{f['strongest']['balanced']:.3f} | {f['strongest']['retention']:.3f} | "
                f"{f['certified']['robustness']:.3f} | {f['apgd_5']['seconds']:.1f} | "
                f"{f['certified']['seconds']:.1f} |"
            )
    froc_in = results.get("froc-in", {})
    if froc_in:
        strongest = froc_in["continuous"]["strongest"]["accuracy"]
        lines += [
            "",
            f"FRoC-IN (verdict {froc_in['verdict']}, lambda_F {froc_in['lambda_f']:.3g}, "
            f"lambda_R {froc_in['lambda_r']:.3g}): S_R under the strongest attack "
            f"{strongest:.3f} {'meets' if strongest >= 0.6 else 'misses'} delta_R 0.6.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate-attack", default="fgsm,pgd")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if shared_data_dir() is None:
        print("../shared/data not found: skipping", file=sys.stderr)
        return 0
    record = start_record()
    results = run(args.threads, args.seed, args.gate_attack)
    finish_record(record)
    out = Path(repo_root(), "bench", "results", f"robustness_runs{args.tag}")
    out.with_suffix(".json").write_text(
        json.dumps({"record": record, "results": results}, indent=1, default=float) + "\n"
    )
    out.with_suffix(".md").write_text(_markdown(results, record))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
