"""FRoC-IN's constrained search against the grid, measured on an outer split froc never sees.

For every case and seed: a 70/30 split of the table stratified by the label
(``train_test_split(random_state=seed)``) is drawn here; ``froc train-in`` runs on the 70%
as a subprocess (``--json --quiet --seed SEED --allow-infeasible -o model.froc``, its own
defaults otherwise: the 30% test split it carves, the validation split, 1 torch thread), once
with ``--search constrained`` (the default) and once with ``--search grid``, wall-clocked from
here; then ``froc audit OUTER_30.csv --model model.froc --json`` scores the saved model on the
outer 30% (the whole file: the model never saw it). Recorded per run: froc's exit code and
verdict, the chosen lambdas, the iterates/fits, the search seconds and the wall seconds, and
the outer figures: accuracy, majority floor, S_B (the case's criterion) with its binomial
standard error, S_R as the gate measures it (FGSM and PGD, a row robust when neither breaks
it) with its standard error.

A case is *met* on a seed when, on the outer split, S_B <= delta_F + SE(S_B), S_R >= delta_R
- SE(S_R) (the issue's "may exceed the thresholds by no more than their standard error") and
accuracy >= the case's minimum.

Cases (``--cases``; Adult ones on seeds 0, 1, 2, the others on seed 0):

- ``adult-03-80``: Adult, sex (Female), parity, dF 0.03 / dR 0.8, accuracy >= 0.80.
- ``adult-02-75``: Adult, sex, dF 0.02 / dR 0.75 (the grid's near miss of the issue).
- ``adult-05-60``: Adult, sex, dF 0.05 / dR 0.6, accuracy >= 0.82, in less wall time than the
  grid.
- ``compas-05-50``: COMPAS (ProPublica filter, leak-free features), race (African-American),
  dF 0.05 / dR 0.5.
- ``adult-race-odds``: Adult, race (every value but White), equalized odds, dF 0.1 / dR 0.6.
- ``adult-sex-race``: Adult, sex x race intersections, parity, dF 0.1 / dR 0.6.

Writes bench/results/frontier_runs.{json,md} with the run record (bench/_record.py); a case
not run keeps its figures from the earlier file. Skips cleanly (exit 0) when ../shared/data is
absent.

    python bench/frontier_runs.py
    python bench/frontier_runs.py --cases adult-05-60 --seeds 0 --searches constrained
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, record_ref, start_record
from sklearn.model_selection import train_test_split

from froc_cli.core import write_text_atomic

RESULTS = repo_root() / "bench" / "results"
# "plain": a plain fit (lambdas 0, every one of the default epochs) on the same split, the unit of
# the issue's speed target (one constrained run within 3 plain fits' time).
SEARCHES = ("constrained", "grid", "plain")
CASES: dict[str, dict[str, Any]] = {
    "adult-03-80": {"data": "adult", "protected": "sex", "delta_f": 0.03, "delta_r": 0.8,
                    "min_accuracy": 0.80, "seeds": (0, 1, 2)},
    "adult-02-75": {"data": "adult", "protected": "sex", "delta_f": 0.02, "delta_r": 0.75,
                    "min_accuracy": None, "seeds": (0, 1, 2)},
    "adult-05-60": {"data": "adult", "protected": "sex", "delta_f": 0.05, "delta_r": 0.6,
                    "min_accuracy": 0.82, "seeds": (0, 1, 2)},
    "compas-05-50": {"data": "compas", "protected": "race", "delta_f": 0.05, "delta_r": 0.5,
                     "min_accuracy": None, "seeds": (0,)},
    "adult-race-odds": {"data": "adult", "protected": "race", "delta_f": 0.1, "delta_r": 0.6,
                        "fairness": "odds", "min_accuracy": 0.80, "seeds": (0,)},
    "adult-sex-race": {"data": "adult", "protected": "sex,race", "delta_f": 0.1,
                       "delta_r": 0.6, "min_accuracy": 0.80, "seeds": (0,)},
}  # fmt: skip


def case_table(case: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """The table and the data-role options of ``case``."""
    if case["data"] == "compas":
        frame, fields = load_compas("race")
    elif case["protected"] == "sex,race":
        frame, fields = load_adult("sex")
        fields = {"label": fields["label"], "positive": fields["positive"]}
        fields["protected"] = "sex,race"
    else:
        frame, fields = load_adult(case["protected"])
    args = ["--protected", str(fields["protected"]), "--label", str(fields["label"]),
            "--positive", str(fields["positive"])]  # fmt: skip
    groups = fields.get("protected_group")
    if groups:
        args += ["--protected-group", ",".join(groups)]
    if case.get("fairness"):
        args += ["--fairness", case["fairness"]]
    return frame, args


def froc(*args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """``python -m froc_cli ARGS``: the process, its wall seconds and CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "froc_cli", *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return done, wall, cpu


def standard_errors(audit: dict[str, Any]) -> tuple[float, float]:
    """Binomial SE of S_B (the two groups furthest apart on the criterion's rates: favourable
    rate for parity, TPR and FPR for odds, the larger) and of S_R."""
    metrics = audit["metrics"]
    n = int(metrics["rows"])
    r = metrics["robustness"]
    se_r = math.sqrt(r * (1 - r) / max(n, 1))
    groups = [g for g in audit["groups"].values() if g.get("rows")]
    fairness = audit["protected"].get("fairness", "parity")
    rates: list[tuple[str, str, float]] = [("favourable_rate", "rows", 1.0)]
    if fairness in ("odds", "opportunity"):
        rates = [("true_positive_rate", "positives", 1.0)]
        if fairness == "odds":
            rates.append(("false_positive_rate", "negatives", 0.0))
    se_b = math.nan
    for key, _, label in rates:
        usable = [g for g in groups if g.get(key) is not None]
        if len(usable) < 2:
            continue
        high = max(usable, key=lambda g: g[key])
        low = min(usable, key=lambda g: g[key])

        def count(group: dict[str, Any], label: float = label, key: str = key) -> float:
            if key == "favourable_rate":
                return float(group["rows"])
            share = group["base_rate"] if label == 1.0 else 1 - group["base_rate"]
            return max(1.0, float(group["rows"]) * share)

        variance = sum(g[key] * (1 - g[key]) / count(g) for g in (high, low))
        se_b = max(0.0 if math.isnan(se_b) else se_b, math.sqrt(variance))
    return se_b, se_r


def run_one(
    name: str, case: dict[str, Any], seed: int, search: str, workdir: Path
) -> dict[str, Any]:
    frame, data_args = case_table(case)
    train, test = train_test_split(
        frame, test_size=0.3, random_state=seed, stratify=frame[frame.columns[-1]]
    )
    train_csv, test_csv = workdir / f"{name}-{seed}-train.csv", workdir / f"{name}-{seed}-test.csv"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    model = workdir / f"{name}-{seed}-{search}.froc"
    load_before = os.getloadavg()[0]
    how = ["--search", search, "--delta-f", str(case["delta_f"]), "--delta-r", str(case["delta_r"])]
    if search == "plain":
        how = ["--lambda-f", "0", "--lambda-r", "0", "--patience", "0"]
    done, wall, cpu = froc(
        "train-in", str(train_csv), *data_args, *how, "--seed", str(seed),
        "--allow-infeasible", "-o", str(model), "--json", "--quiet",
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"train-in {name} seed {seed} {search}: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    audited, _, _ = froc("audit", str(test_csv), "--model", str(model), "--json", "--quiet")
    if audited.returncode not in (0, 1):
        raise RuntimeError(f"audit {name} seed {seed} {search}: {audited.stderr.strip()}")
    audit = json.loads(audited.stdout)
    metrics = audit["metrics"]
    se_b, se_r = standard_errors(audit)
    outer = {
        "rows": int(metrics["rows"]),
        "accuracy": metrics["accuracy"],
        "majority_floor": metrics["majority_floor"],
        "bias_score": metrics["bias_score"],
        "bias_se": se_b,
        "robustness": metrics["robustness"],
        "robustness_se": se_r,
        "robustness_pgd": metrics["robustness_pgd"],
    }
    minimum = case.get("min_accuracy")
    met = (
        outer["bias_score"] <= case["delta_f"] + se_b
        and outer["robustness"] >= case["delta_r"] - se_r
        and (minimum is None or outer["accuracy"] >= minimum)
    )
    return {
        "seed": seed,
        "search": search,
        "exit_code": done.returncode,
        "verdict": result["verdict"],
        "lambda_f": result["lambda_f"],
        "lambda_r": result["lambda_r"],
        "iterates": len(result["trials"]),
        "search_s": result["seconds"]["fit"],
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "froc_test": {k: result["test"]["metrics"][k] for k in ("accuracy", "bias_score",
                                                                  "robustness")},
        "relaxation": result.get("relaxation"),
        "outer": outer,
        "met_on_outer": met,
    }  # fmt: skip


def trace_frontier(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """``froc train-in --frontier`` on the outer 70% of case ``name``, seed 0."""
    case = CASES[name]
    frame, data_args = case_table(case)
    train, _ = train_test_split(
        frame, test_size=0.3, random_state=0, stratify=frame[frame.columns[-1]]
    )
    picture = RESULTS / f"frontier_{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        train_csv = Path(tmp) / "train.csv"
        train.to_csv(train_csv, index=False)
        done, wall, cpu = froc(
            "train-in", str(train_csv), *data_args, "--delta-f", str(case["delta_f"]),
            "--delta-r", str(case["delta_r"]), "--seed", "0", "--frontier", str(picture),
            "--json", "--quiet",
        )  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"train-in --frontier {name}: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    print(f"frontier {name}: exit {done.returncode}, wall {wall:.0f}s, picture {picture}")
    return {
        "exit_code": done.returncode,
        "verdict": result["verdict"],
        "frontier": result["frontier"],
        "relaxation": result["relaxation"],
        "picture": picture.name,
        "wall_s": wall,
        "cpu_s": cpu,
        "run": record_ref(record),
    }


def summarise(runs: list[dict[str, Any]], search: str) -> dict[str, Any]:
    mine = [r for r in runs if r["search"] == search]
    if not mine:
        return {}

    def median(key: str, outer: bool = True) -> float:
        return statistics.median(r["outer"][key] if outer else r[key] for r in mine)

    return {
        "seeds": [r["seed"] for r in mine],
        "met_on_outer": [r["met_on_outer"] for r in mine],
        "exit_codes": [r["exit_code"] for r in mine],
        "median_accuracy": median("accuracy"),
        "median_bias_score": median("bias_score"),
        "median_robustness": median("robustness"),
        "median_wall_s": median("wall_s", outer=False),
        "median_cpu_s": median("cpu_s", outer=False),
    }


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# FRoC-IN: constrained search vs grid (bench/frontier_runs.py)",
        "",
        "Outer 70/30 split (stratified by label, random_state = seed); froc sees only the 70%; "
        "figures on the outer 30% by `froc audit --model`. S_R: the gate's figure (FGSM and "
        "PGD-10, eps 0.1, true labels). 'met' = S_B <= delta_F + SE, S_R >= delta_R - SE and "
        "accuracy >= the case's minimum, on the outer split.",
        "",
        "| case | search | seed | exit | verdict | lambda_F | lambda_R | acc | floor | S_B (SE) "
        "| S_R (SE) | met | wall s | CPU s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, part in report["cases"].items():
        for run in part["runs"]:
            o = run["outer"]
            lines.append(
                f"| {name} | {run['search']} | {run['seed']} | {run['exit_code']} | "
                f"{run['verdict']} | {fmt(run['lambda_f'], 2)} | {fmt(run['lambda_r'], 2)} | "
                f"{fmt(o['accuracy'])} | {fmt(o['majority_floor'])} | {fmt(o['bias_score'])} "
                f"({fmt(o['bias_se'])}) | {fmt(o['robustness'])} ({fmt(o['robustness_se'])}) | "
                f"{'yes' if run['met_on_outer'] else 'no'} | {run['wall_s']:.0f} | "
                f"{run['cpu_s']:.0f} | {run['load_before']:.1f} |"
            )
    lines += ["", "Medians per case and search:", "",
              "| case | search | met (per seed) | acc | S_B | S_R | wall s | CPU s |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, part in report["cases"].items():
        for search, s in part["summary"].items():
            if not s:
                continue
            met = " ".join("yes" if m else "no" for m in s["met_on_outer"])
            lines.append(
                f"| {name} | {search} | {met} | {fmt(s['median_accuracy'])} | "
                f"{fmt(s['median_bias_score'])} | {fmt(s['median_robustness'])} | "
                f"{s['median_wall_s']:.0f} | {s['median_cpu_s']:.0f} |"
            )
    for name, example in report.get("frontiers", {}).items():
        lines += ["", f"Frontier of {name} (seed 0, outer 70%; validation figures; "
                  f"{example['frontier']['epochs_per_point']} warm-started epochs a point; "
                  f"wall {example['wall_s']:.0f} s; picture {example['picture']}):", "",
                  "| varied | delta_F | delta_R | acc | S_B | S_R | met |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for varied, key in (("delta_F", "bias"), ("delta_R", "robustness")):
            for p in example["frontier"][key]:
                lines.append(
                    f"| {varied} | {fmt(p['delta_f'])} | {fmt(p['delta_r'])} | "
                    f"{fmt(p['accuracy'])} | {fmt(p['bias_score'])} | {fmt(p['robustness'])} | "
                    f"{'yes' if p['feasible'] else 'no'} |"
                )
    lines += ["", record_line(report["run"]), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", default=None, help="override the cases' seeds, e.g. 0,1")
    parser.add_argument("--searches", default=",".join(SEARCHES))
    parser.add_argument(
        "--frontier",
        default=None,
        help="instead of the cases: `froc train-in --frontier` for this case on seed 0, the "
        "picture to bench/results/frontier_<case>.png and its points into the results",
    )
    args = parser.parse_args()
    if shared_data_dir() is None:
        print("../shared/data is absent: nothing to measure")
        return 0
    record = start_record()
    previous_path = RESULTS / "frontier_runs.json"
    report: dict[str, Any] = {"cases": {}}
    if previous_path.is_file():
        report = json.loads(previous_path.read_text())
    searches = [s for s in args.searches.split(",") if s]
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.frontier:
        report.setdefault("frontiers", {})[args.frontier] = trace_frontier(args.frontier, record)
        report["run"] = finish_record(dict(record))
        write_text_atomic(json.dumps(report, indent=2) + "\n", previous_path)
        write_text_atomic(markdown(report), RESULTS / "frontier_runs.md")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in [c for c in args.cases.split(",") if c]:
            case = CASES[name]
            seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(case["seeds"])
            part = report["cases"].setdefault(name, {"runs": []})
            part["settings"] = {k: v for k, v in case.items() if k != "seeds"}
            for seed in seeds:
                for search in searches:
                    run = run_one(name, case, seed, search, Path(tmp))
                    run["run"] = record_ref(record)
                    # a rerun replaces the same (seed, search); other runs stay
                    part["runs"] = [
                        r for r in part["runs"] if (r["seed"], r["search"]) != (seed, search)
                    ] + [run]
                    part["runs"].sort(key=lambda r: (r["seed"], SEARCHES.index(r["search"])))
                    part["summary"] = {s: summarise(part["runs"], s) for s in SEARCHES}
                    o = run["outer"]
                    print(
                        f"{name} seed {seed} {search}: exit {run['exit_code']} "
                        f"{run['verdict']}; outer acc {o['accuracy']:.4f} S_B "
                        f"{o['bias_score']:.4f}±{o['bias_se']:.4f} S_R {o['robustness']:.4f}"
                        f"±{o['robustness_se']:.4f} met {run['met_on_outer']}; wall "
                        f"{run['wall_s']:.0f}s cpu {run['cpu_s']:.0f}s load "
                        f"{run['load_before']:.1f}",
                        flush=True,
                    )
                    # written after every run: a long benchmark stopped midway keeps its runs
                    report["run"] = finish_record(dict(record))
                    write_text_atomic(json.dumps(report, indent=2) + "\n", previous_path)
                    write_text_atomic(markdown(report), RESULTS / "frontier_runs.md")
    print(f"wrote {previous_path} and {RESULTS / 'frontier_runs.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
