"""FRoC-IN acceptance figures: the delta-driven search on Adult and COMPAS, and fit speed.

Every figure comes from running the ``froc`` command line as a subprocess (``python -m
froc_cli train-in ... --json --quiet``), wall-clocked, so it is what a user gets (interpreter
start, reading, split, training, scoring). Threat model: the default (L-inf eps 0.1 on
[0,1]-scaled features, PGD 10 steps of eps/4, true labels); the test split is never used for
choosing (the search uses a validation split carved from the training part).

1. Adult, protected sex (group Female), ``--delta-f 0.05 --delta-r 0.6``, seeds 0, 1, 2:
   held-out test accuracy, S_B and S_R(PGD) per seed and mean / sd; acceptance: S_B <= 0.05,
   S_R >= 0.6 and accuracy >= 0.82; the search within 300 s.
2. COMPAS (ProPublica filter, no leak columns), protected race (group African-American),
   ``--delta-f 0.05 --delta-r 0.5``: both met with accuracy >= 0.60, or an infeasible verdict
   with the closest point.
3. Speed: one fit with given lambdas on Adult for all the default epochs (``--patience 0``),
   with 1 and with 2 torch threads (``--threads``); target within 40 s on 2 cores.
   ``--speed-patience default,0`` also times the default command (early stopping).

The 1-minute load average is recorded around every run: other processes on a shared machine
slow every wall-clock figure down. The CPU seconds of each run (user + system, from
``getrusage``) are recorded too: with ``--threads 1`` they are close to the wall time the run
would take on an idle machine. Writes bench/results/froc_in.json and bench/results/froc_in.md,
with the run record of ``bench/_record.py`` (code digest, command line, machine, load at start
and end). A part that is skipped keeps its figures from the earlier file, so every part (and
every speed run) carries the short record of the run that measured it (``"run"``; ``null``:
measured before runs were recorded). Skips cleanly (exit 0) when ../shared/data is absent.

    python bench/bench_froc_in.py                 # everything (about 15-25 minutes)
    python bench/bench_froc_in.py --seeds 0 --skip-compas
    python bench/bench_froc_in.py --skip-adult --skip-compas --speed-threads 1 \
        --speed-patience default                  # the default command's fit alone (~1 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, record_ref, start_record

from froc_cli.core import environment_versions, write_text_atomic

RESULTS = repo_root() / "bench" / "results"
ADULT = {"delta_f": 0.05, "delta_r": 0.6, "min_accuracy": 0.82, "search_limit_s": 300.0}
COMPAS = {"delta_f": 0.05, "delta_r": 0.5, "min_accuracy": 0.60}
FIT_LIMIT_S = 40.0
PAPER_CODE_FIT_S = 393.0  # FIGURES.md: the published reference code, one FRoC-IN fit on Adult
SPEED_LAMBDAS = ("0.5", "0.1")


def spec_args(fields: dict[str, Any]) -> list[str]:
    """CLI options of the DataSpec fields from bench/_datasets.py."""
    return [
        "--label",
        fields["label"],
        "--positive",
        fields["positive"],
        "--protected",
        fields["protected"],
        "--protected-group",
        ",".join(fields["protected_group"]),
    ]


def run_train_in(path: Path, args: list[str], threads: int | None = None) -> dict[str, Any]:
    """One ``froc train-in --json`` subprocess: its JSON, exit code, wall time and load."""
    command = [sys.executable, "-m", "froc_cli", "train-in", str(path), *args, "--json", "--quiet"]
    if threads is not None:
        command += ["--threads", str(threads)]
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    payload = json.loads(done.stdout)
    return {
        "command": " ".join(["froc", "train-in", path.name, *args]),
        "exit_code": done.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "threads": threads,
        "result": payload,
    }


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one train-in run that the report needs."""
    result = run["result"]
    test = result["test"]["metrics"]
    validation = result["validation"]["metrics"]
    chosen = result["trials"][result["chosen_trial"]]
    return {
        "seed": result["settings"]["seed"],
        "verdict": result["verdict"],
        "exit_code": run["exit_code"],
        "lambda_f": result["lambda_f"],
        "lambda_r": result["lambda_r"],
        "test": {
            k: test[k]
            for k in (
                "accuracy",
                "majority_floor",
                "bias_score",
                "robustness_fgsm",
                "robustness_pgd",
            )
        },
        "validation": {
            k: validation[k]
            for k in (
                "accuracy",
                "majority_floor",
                "bias_score",
                "robustness_fgsm",
                "robustness_pgd",
            )
        },
        "test_near_constant": result["test"]["near_constant"],
        "trials": len(result["trials"]),
        "chosen_trial": chosen,
        "path": [
            {
                "lambda_f": t["lambda_f"],
                "lambda_r": t["lambda_r"],
                "epochs": t["epochs_run"],
                "accuracy": t["score"]["accuracy"],
                "bias_score": t["score"]["bias_score"],
                "robustness_pgd": t["score"]["robustness_pgd"],
                "near_constant": t["score"]["near_constant"],
                "below_floor": t["score"]["below_floor"],
                "meets_targets": t["meets_targets"],
                "seconds": t["seconds"],
            }
            for t in result["trials"]
        ],
        "search_s": result["seconds"]["fit"],
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "load_before": run["load_before"],
        "load_after": run["load_after"],
    }


def mean_sd(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def bench_search(
    path: Path,
    fields: dict[str, Any],
    targets: dict[str, float],
    seeds: list[int],
    threads: int | None,
) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    runs = []
    for seed in seeds:
        args = [
            *spec_args(fields),
            "--delta-f",
            str(targets["delta_f"]),
            "--delta-r",
            str(targets["delta_r"]),
            "--seed",
            str(seed),
        ]
        run = run_train_in(path, args, threads=threads)
        runs.append(summarise(run))
        figures = runs[-1]["test"]
        print(
            f"  seed {seed}: {runs[-1]['verdict']}, lambda_F={runs[-1]['lambda_f']:.3g} "
            f"lambda_R={runs[-1]['lambda_r']:.3g}; test acc {figures['accuracy']:.4f} "
            f"S_B {figures['bias_score']:.4f} S_R(PGD) {figures['robustness_pgd']:.4f}; "
            f"search {runs[-1]['search_s']:.0f}s, wall {run['wall_s']:.0f}s, "
            f"load {run['load_before']:.1f}->{run['load_after']:.1f}",
            flush=True,
        )
    summary = {
        key: mean_sd([r["test"][key] for r in runs])
        for key in ("accuracy", "bias_score", "robustness_pgd", "robustness_fgsm")
    }
    summary["search_s"] = mean_sd([r["search_s"] for r in runs])
    summary["wall_s"] = mean_sd([r["wall_s"] for r in runs])
    met = [
        r["test"]["bias_score"] <= targets["delta_f"]
        and r["test"]["robustness_pgd"] >= targets["delta_r"]
        and r["test"]["accuracy"] >= targets["min_accuracy"]
        for r in runs
    ]
    return {
        "started": started,
        "threads": threads,
        "targets": targets,
        "runs": runs,
        "summary": summary,
        "met_per_seed": met,
    }


def bench_speed(
    path: Path, fields: dict[str, Any], thread_counts: list[int], patiences: list[str]
) -> dict[str, Any]:
    """One fit per (threads, patience); patience ``default`` passes no --patience."""
    out: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lambdas": SPEED_LAMBDAS,
        "runs": [],
    }
    for threads, patience in [(t, p) for p in patiences for t in thread_counts]:
        args = [
            *spec_args(fields),
            "--lambda-f",
            SPEED_LAMBDAS[0],
            "--lambda-r",
            SPEED_LAMBDAS[1],
        ]
        if patience != "default":
            args += ["--patience", patience]
        run = run_train_in(path, args, threads=threads)
        result = run["result"]
        epochs = result["trials"][0]["epochs_run"]
        best_epoch = result["trials"][0]["best_epoch"]
        entry = {
            "threads": threads,
            "patience": patience,
            "command": run["command"] + f" --threads {threads}",
            "wall_s": run["wall_s"],
            "cpu_s": run["cpu_s"],
            "fit_s": result["seconds"]["fit"],
            "epochs": epochs,
            "best_epoch": best_epoch,
            "fit_s_per_epoch": result["seconds"]["fit"] / epochs,
            "batch_size": result["settings"]["train"]["batch_size"],
            "rows_fit": result["rows"]["fit"],
            "load_before": run["load_before"],
            "load_after": run["load_after"],
            "test": {
                k: result["test"]["metrics"][k]
                for k in ("accuracy", "bias_score", "robustness_pgd")
            },
        }
        out["runs"].append(entry)
        print(
            f"  {threads} thread(s), patience {patience}: wall {entry['wall_s']:.1f}s, "
            f"fit {entry['fit_s']:.1f}s "
            f"({epochs} epochs, {entry['fit_s_per_epoch']:.3f}s each), load "
            f"{entry['load_before']:.1f}->{entry['load_after']:.1f}",
            flush=True,
        )
    return out


def _speed_key(run: dict[str, Any]) -> tuple[int, str]:
    """(threads, patience) of a speed run; runs from before --speed-patience used 0."""
    return run["threads"], str(run.get("patience", "0"))


def _measured_by(ref: dict[str, Any] | None) -> str:
    """Which run measured a part: its start, commit and froc_cli digest."""
    if not ref:
        return "Measured before runs were recorded (no code digest)."
    dirty = "+edits" if ref.get("dirty") else ""
    return (
        f"Measured {ref['started']}, code {(ref.get('commit') or '?')[:12]}{dirty} "
        f"sha256 {ref['froc_cli_sha256'][:12]}."
    )


def fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# FRoC-IN benchmark (bench/bench_froc_in.py)",
        "",
        f"Last run {report['started']} on {report['cpus']} CPUs (parts not rerun keep their "
        f"figures and dates); torch threads default {report['torch_threads']}; versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        record_line(report["run"]) if "run" in report else "Run record: none (older run).",
        "",
        "Threat model: L-inf eps 0.1 on [0,1]-scaled features, PGD 10 steps of eps/4 against the"
        " true labels. Lambdas chosen on a validation split carved from the training part; the"
        " held-out 30% test split is never used for choosing.",
        "",
    ]
    for name, key in (("Adult, sex=Female", "adult"), ("COMPAS, race=African-American", "compas")):
        block = report.get(key)
        if not block:
            continue
        targets = block["targets"]
        lines += [
            f"## {name}: --delta-f {targets['delta_f']} --delta-r {targets['delta_r']}",
            "",
            f"Run {block.get('started', '?')}, torch threads {block.get('threads') or 'default'}. "
            + _measured_by(block.get("run")),
            "",
            "| seed | verdict | lambda_F | lambda_R | test acc | floor | S_B | S_R FGSM | S_R PGD |"
            " val acc | val S_B | val S_R PGD | fits | search s | wall s | CPU s | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in block["runs"]:
            t, v = run["test"], run["validation"]
            lines.append(
                f"| {run['seed']} | {run['verdict']} | {run['lambda_f']:.3g} | "
                f"{run['lambda_r']:.3g} | {fmt(t['accuracy'])} | {fmt(t['majority_floor'])} | "
                f"{fmt(t['bias_score'])} | {fmt(t['robustness_fgsm'])} | "
                f"{fmt(t['robustness_pgd'])} | {fmt(v['accuracy'])} | {fmt(v['bias_score'])} | "
                f"{fmt(v['robustness_pgd'])} | {run['trials']} | {run['search_s']:.0f} | "
                f"{run['wall_s']:.0f} | {run['cpu_s']:.0f} | "
                f"{run['load_before']:.1f}-{run['load_after']:.1f} |"
            )
        s = block["summary"]
        lines += [
            "",
            f"Test mean (sd) over {len(block['runs'])} seeds: accuracy "
            f"{fmt(s['accuracy']['mean'])} ({fmt(s['accuracy']['sd'])}), S_B "
            f"{fmt(s['bias_score']['mean'])} ({fmt(s['bias_score']['sd'])}), S_R PGD "
            f"{fmt(s['robustness_pgd']['mean'])} ({fmt(s['robustness_pgd']['sd'])}); search "
            f"{s['search_s']['mean']:.0f} s (max {s['search_s']['max']:.0f} s). "
            f"All three met per seed: {block['met_per_seed']}.",
            "",
        ]
    speed = report.get("speed")
    if speed:
        lines += [
            f"## Speed: one fit on Adult, lambda_F={speed['lambdas'][0]}, "
            f"lambda_R={speed['lambdas'][1]}, PGD-10",
            "",
            f"Last speed run {speed.get('started', '?')}. Patience 0: every default epoch runs; "
            "patience `default`: the command as a user runs it (early stopping).",
            "",
            "| threads | patience | epochs (best) | batch | fit rows | fit s | s/epoch |"
            " wall s (whole command) | CPU s | load | measured by |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in speed["runs"]:
            lines.append(
                f"| {run['threads']} | {run.get('patience', '0')} | {run['epochs']} "
                f"({run.get('best_epoch', '?')}) | {run['batch_size']} | {run['rows_fit']} "
                f"| {run['fit_s']:.1f} | {run['fit_s_per_epoch']:.3f} | {run['wall_s']:.1f} | "
                f"{run['cpu_s']:.1f} | {run['load_before']:.1f}-{run['load_after']:.1f} | "
                f"{_measured_by(run.get('run'))} |"
            )
        lines += [
            "",
            f"Target: within {FIT_LIMIT_S:.0f} s wall on 2 cores; the paper's reference code: "
            f"about {PAPER_CODE_FIT_S:.0f} s for one fit (FIGURES.md, not re-measured).",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (Adult, COMPAS)")
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--skip-compas", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for the search runs"
    )
    parser.add_argument(
        "--speed-threads", default="1,2", help="thread counts of the speed runs (comma-separated)"
    )
    parser.add_argument(
        "--speed-patience",
        default="0",
        help="--patience of the speed runs, comma-separated; 'default' passes none (early "
        "stopping as a user gets it)",
    )
    options = parser.parse_args()
    data_dir = shared_data_dir()
    if data_dir is None:
        print("bench_froc_in: ../shared/data not found; nothing to benchmark (skipped)")
        return 0
    record = start_record()
    seeds = [int(s) for s in options.seeds.split(",") if s.strip()]
    previous: dict[str, Any] = {}
    if (RESULTS / "froc_in.json").is_file():
        previous = json.loads((RESULTS / "froc_in.json").read_text())
    import torch

    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "search_threads": options.threads,
        "versions": environment_versions(),
    }
    adult_frame, adult_fields = load_adult("sex", data_dir)
    with tempfile.TemporaryDirectory() as folder:
        adult_csv = Path(folder) / "adult.csv"
        adult_frame.to_csv(adult_csv, index=False)
        if not options.skip_speed:
            print("speed: one fit on Adult", flush=True)
            counts = [int(t) for t in options.speed_threads.split(",") if t.strip()]
            patiences = [p.strip() for p in options.speed_patience.split(",") if p.strip()]
            report["speed"] = bench_speed(adult_csv, adult_fields, counts, patiences)
        if not options.skip_adult:
            print("Adult search", flush=True)
            report["adult"] = bench_search(adult_csv, adult_fields, ADULT, seeds, options.threads)
        if not options.skip_compas:
            compas_frame, compas_fields = load_compas("race", data_dir)
            compas_csv = Path(folder) / "compas.csv"
            compas_frame.to_csv(compas_csv, index=False)
            print("COMPAS search", flush=True)
            report["compas"] = bench_search(
                compas_csv, compas_fields, COMPAS, seeds, options.threads
            )
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["run"] = finish_record(record)
    ref = record_ref(record)
    for key in ("adult", "compas"):
        if key in report:
            report[key]["run"] = ref
    for run in report.get("speed", {}).get("runs", []):
        run["run"] = ref
    for key in ("speed", "adult", "compas"):
        if key not in report and key in previous:
            report[key] = previous[key]  # a part skipped this time keeps its last figures
            report[key].setdefault("run", None)  # and the run that measured them
    if "speed" in previous and report.get("speed") is not previous["speed"]:
        measured = {_speed_key(run) for run in report["speed"]["runs"]}
        kept = [run for run in previous["speed"]["runs"] if _speed_key(run) not in measured]
        for run in kept:
            run.setdefault("run", None)
        report["speed"]["runs"] = sorted(
            kept + report["speed"]["runs"], key=lambda run: (run["threads"], _speed_key(run))
        )  # (threads, patience) pairs not rerun keep their last figures (with their load)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(report, indent=2) + "\n", RESULTS / "froc_in.json")
    write_text_atomic(render_markdown(report), RESULTS / "froc_in.md")
    print(f"wrote {RESULTS / 'froc_in.json'} and {RESULTS / 'froc_in.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
