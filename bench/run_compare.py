"""``froc compare`` on Adult (sex) and COMPAS (race): the table, the report and the plot.

Runs the compare engine (the code behind ``froc compare``) on the shared datasets loaded by
``bench/_datasets.py`` (Adult as is; COMPAS after the ProPublica filter, leak-free features) and
writes, per dataset, under bench/results/:

    compare_<dataset><tag>.json   everything (rows, every grid point, settings, timings)
    compare_<dataset><tag>.md     the report (table, grid, settings) with the command
    compare_<dataset><tag>.png    accuracy over the (S_R, S_B) plane with the (delta_F, delta_R) box

Each file records the exact command that made it, the equivalent ``froc compare`` line where one
exists (Adult; COMPAS needs the filter), the wall time, the torch thread count and the load
average before and after (other processes on a shared machine slow every figure down); the JSON
has the run record of ``bench/_record.py`` under ``"run"`` (code digest, command line, machine,
load at start and end) and the .md its line.

Skips cleanly (exit 0) when ../shared/data is absent.

    python bench/run_compare.py                       # Adult and COMPAS, one seed each
    python bench/run_compare.py --dataset compas --repeats 3
    python bench/run_compare.py --dataset adult --attack-space valid --tag _valid
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from typing import Any

from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record

from froc_cli.core import DataSpec, ProgressCallback, ThreatModel, TrainConfig, write_text_atomic
from froc_cli.reports import plot_compare, render_compare_markdown
from froc_cli.workflows import (
    METHOD_NAMES,
    CompareConfig,
    CompareResult,
    compare_table,
)

# The (delta_F, delta_R) box per dataset: between what fairness alone and robustness alone reach
# (see BENCHMARKS.md, Compare).
DATASETS: dict[str, dict[str, Any]] = {
    "adult": {"protected": "sex", "delta_f": 0.05, "delta_r": 0.6},
    "compas": {"protected": "race", "delta_f": 0.05, "delta_r": 0.4},
}
ADULT_CLI = (
    "froc compare ../shared/data/adult.csv --label income --positive '>50K' --protected sex "
    "--protected-group Female"
)


def _load(dataset: str) -> tuple[Any, dict[str, Any]]:
    protected = DATASETS[dataset]["protected"]
    return load_adult(protected) if dataset == "adult" else load_compas(protected)


def _progress(started: float) -> ProgressCallback:
    def report(line: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {line}", file=sys.stderr, flush=True)

    return report


def _cli_equivalent(dataset: str, config: CompareConfig, args: argparse.Namespace) -> str | None:
    if dataset != "adult":
        return None
    parts = [
        ADULT_CLI,
        f"--delta-f {config.delta_f:g} --delta-r {config.delta_r:g}",
        f"--attack-space {config.threat.attack_space}",
        f"--repeats {config.repeats}",
        f"--epochs {config.train.epochs} --adv-epochs {config.adv_epochs} --threads {args.threads}",
        f"--froc-in-budget {config.froc_in_budget_s:g}",
        f"--froc-pre-rounds {config.froc_pre_rounds}",
    ]
    if args.methods:
        parts.append(f"--methods {args.methods}")
    if args.sweep:
        parts.append("--sweep")
    return " ".join(parts)


def run(dataset: str, args: argparse.Namespace, command: str) -> CompareResult:
    frame, fields = _load(dataset)
    settings = DATASETS[dataset]
    config = CompareConfig(
        data=DataSpec(**fields),
        delta_f=settings["delta_f"] if args.delta_f is None else args.delta_f,
        delta_r=settings["delta_r"] if args.delta_r is None else args.delta_r,
        threat=ThreatModel(attack_space=args.attack_space),
        train=TrainConfig(epochs=args.epochs, device="cpu"),
        repeats=args.repeats,
        adv_epochs=args.adv_epochs,
        froc_in_budget_s=args.froc_in_budget,
        froc_pre_rounds=args.froc_pre_rounds,
        threads=args.threads,
        methods=tuple(args.methods.split(",")) if args.methods else (),
        sweep=args.sweep,
    )
    if args.sweep:
        config = replace(
            config,
            sweep_lambdas_f=(0.0, 0.5, 1.0, 2.0),
            sweep_lambdas_r=(0.0, 0.3, 1.0),
            sweep_deltas_f=(0.05, 0.1),
            sweep_deltas_r=(config.delta_r - 0.2, config.delta_r),
        )
    record = start_record()  # the code this run imports (others still edit it), the load
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f"{dataset}: {len(frame)} rows, {args.threads} torch thread(s)", file=sys.stderr)
    result = compare_table(
        frame,
        config,
        source=f"{dataset} ({settings['protected']})",
        progress=_progress(started),
        command=command,
    )
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    finish_record(record)
    results = repo_root() / "bench" / "results"
    stem = f"compare_{dataset}{args.tag}"
    plot_compare(result, results / f"{stem}.png")
    environment = {
        "wall_seconds": wall,
        "torch_threads": result.settings["threads"],
        "cpu_count": os.cpu_count(),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "cli_equivalent": _cli_equivalent(dataset, config, args),
        "froc_cli_source_sha256": record["code"]["froc_cli_sha256"],
    }
    payload = result.to_dict()
    payload["bench"] = environment
    payload["run"] = record
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    write_text_atomic(text, results / f"{stem}.json")
    lines = [
        render_compare_markdown(result, plot=f"{stem}.png").rstrip("\n"),
        f"- Bench: {wall:.0f} s wall, {environment['torch_threads']} torch threads, "
        f"{environment['cpu_count']} CPUs; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f}",
        f"- {record_line(record)}",
    ]
    if environment["cli_equivalent"]:
        lines.append(f"- Equivalent command line: `{environment['cli_equivalent']}`")
    write_text_atomic("\n".join(lines) + "\n", results / f"{stem}.md")
    print(f"{dataset}: {wall:.1f} s; wrote {results / stem}.{{json,md,png}}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", choices=["adult", "compas", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--adv-epochs", type=int, default=50)
    parser.add_argument("--froc-in-budget", type=float, default=120.0)
    parser.add_argument("--froc-pre-rounds", type=int, default=150)
    parser.add_argument("--delta-f", type=float, default=None)
    parser.add_argument("--delta-r", type=float, default=None)
    parser.add_argument("--attack-space", choices=["continuous", "valid"], default="continuous")
    parser.add_argument("--methods", default=None, help=f"subset of {','.join(METHOD_NAMES)}")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (compare's default)")
    parser.add_argument("--tag", default="", help="suffix of the output file names")
    args = parser.parse_args(argv)
    if shared_data_dir() is None:
        print("run_compare: ../shared/data not found; nothing to do", file=sys.stderr)
        return 0
    command = shlex.join(["python", "bench/run_compare.py", *(argv or sys.argv[1:])])
    datasets = ["adult", "compas"] if args.dataset == "all" else [args.dataset]
    for dataset in datasets:
        run(dataset, args, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
