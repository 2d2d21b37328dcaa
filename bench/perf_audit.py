"""End-to-end speed and memory of ``froc audit``: full Adult, and a generated 1,000,000-row file.

Each audit runs ``python -m froc_cli audit ... --json --quiet`` as a subprocess (read, split,
train, attack, report: the whole command, interpreter start included), timed with a wall clock;
peak RSS comes from ``/usr/bin/time -v`` when present, else ``resource.getrusage``
(RUSAGE_CHILDREN, the largest child so far). Adult: median of ``--repeats`` runs (default 3).
The 1,000,000-row file is generated with ``sample_data/make_synthetic.py``'s seeded generator
(``generate(rows, seed)``, same columns as sample_data/synthetic.csv) into a temporary folder.

Targets (audit issue): Adult within 30 s wall and 2 GiB peak RSS on 2 cores; 1,000,000 rows
within 180 s. The load average is recorded before and after every run, since other processes
on a shared machine slow every figure down.

Writes bench/results/perf_audit{_TAG}.json and .md; both carry the run record of
``bench/_record.py`` (code digest, command line, machine, load average at start and end).
Only the parts asked for run (``--skip-adult``, ``--skip-1m``, ``--threads-repeats 0``), so
``--skip-adult --skip-1m --tag threads`` measures the thread comparison alone in its own file.

    python bench/perf_audit.py                      # Adult x3, then 1,000,000 rows x1
    python bench/perf_audit.py --skip-1m --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from _datasets import ADULT_FILE, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record

from froc_cli.core import DataSpec, environment_versions, hash_file, read_table, write_text_atomic
from froc_cli.workflows import AuditConfig, audit_table

GIB = 1024**3
ADULT_WALL_TARGET_S = 30.0
ADULT_RSS_TARGET_BYTES = 2 * GIB
MILLION_WALL_TARGET_S = 180.0
ADULT_ARGS = (
    "--label",
    "income",
    "--positive",
    ">50K",
    "--protected",
    "sex",
    "--protected-group",
    "Female",
)
SYNTHETIC_ARGS = ("--protected", "gender", "--protected-group", "female")
TIME_BIN = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None


def load_make_synthetic() -> ModuleType:
    """Import sample_data/make_synthetic.py by path (sample_data is not a package)."""
    path = repo_root() / "sample_data" / "make_synthetic.py"
    spec = importlib.util.spec_from_file_location("froc_make_synthetic", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_WAITED = [0.0]  # seconds waited so far by wait_for_quiet, over the whole script


def wait_for_quiet(max_load: float | None, wait_max_s: float) -> float:
    """Wait until the 1-minute load average is below ``max_load``, at most ``wait_max_s`` over
    the whole script; returns the seconds waited. Other processes on a 2-core machine slow
    every figure, so the load is recorded with each run either way."""
    if max_load is None:
        return 0.0
    started = time.perf_counter()
    while os.getloadavg()[0] >= max_load and _WAITED[0] < wait_max_s:
        time.sleep(10)
        _WAITED[0] += 10
    return time.perf_counter() - started


def run_audit(path: Path, extra: tuple[str, ...]) -> dict[str, Any]:
    """One ``froc audit --json`` subprocess: wall, peak RSS, CPU time, and its JSON output."""
    command = [sys.executable, "-m", "froc_cli", "audit", str(path), *extra, "--json", "--quiet"]
    if TIME_BIN is not None:
        command = ["/usr/bin/time", "-v", *command]
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"froc audit exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    rss_kib = after.ru_maxrss  # Linux: KiB; the largest child so far
    rss_source = "getrusage(RUSAGE_CHILDREN)"
    if TIME_BIN is not None:
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        if found:
            rss_kib = int(found.group(1))
            rss_source = "/usr/bin/time -v"
    payload = json.loads(done.stdout)
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_bytes": rss_kib * 1024,
        "peak_rss_source": rss_source,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "stage_seconds": payload["seconds"],
        "metrics": {
            k: payload["metrics"][k]
            for k in ("accuracy", "bias_score", "robustness_fgsm", "robustness_pgd")
        },
        "rows": payload["rows"],
        "train": payload["settings"]["train"],
    }


def time_startup(repeats: int) -> float:
    """Median wall of ``python -m froc_cli --help`` (interpreter and import cost)."""
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "froc_cli", "--help"], capture_output=True, check=True
        )
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def time_read(path: Path, repeats: int) -> float:
    """Median wall of ``read_table(path)`` in this process."""
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        read_table(path)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def compare_threads(
    files: dict[str, tuple[Path, DataSpec]],
    counts: tuple[int, ...],
    repeats: int,
    quiet: tuple[float | None, float] = (None, 0.0),
) -> list[dict[str, Any]]:
    """In-process ``audit_table`` with ``AuditConfig(threads=t)`` for each thread count,
    interleaved (t1, t2, t1, t2, ...) so both see the same load; train/attack seconds and
    metrics (which differ in the last bits between thread counts, hence the decisions)."""
    rows = []
    for name, (path, spec) in files.items():
        frame = read_table(path)
        for repeat in range(repeats):
            for threads in counts:
                wait_for_quiet(*quiet)
                load = os.getloadavg()[0]
                started = time.perf_counter()
                result = audit_table(
                    frame, AuditConfig(data=spec, threads=threads), source=str(path)
                )
                wall = time.perf_counter() - started
                m = result.metrics
                row = {
                    "file": name,
                    "threads": threads,
                    "repeat": repeat,
                    "wall_s": wall,
                    "train_s": result.seconds["train"],
                    "attack_s": result.seconds["attack"],
                    "load_average_before": load,
                    "load_average_after": os.getloadavg()[0],
                    "accuracy": m["accuracy"],
                    "bias_score": m["bias_score"],
                    "robustness_pgd": m["robustness_pgd"],
                }
                print(
                    f"threads {threads} {name}: train {row['train_s']:.1f} s, attack "
                    f"{row['attack_s']:.1f} s (load {load:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(row)
    return rows


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median wall / CPU / stages and the largest peak RSS over the runs."""
    stages = {
        key: statistics.median(run["stage_seconds"][key] for run in runs)
        for key in runs[0]["stage_seconds"]
    }
    return {
        "runs": len(runs),
        "median_wall_s": statistics.median(run["wall_s"] for run in runs),
        "walls_s": [run["wall_s"] for run in runs],
        "median_cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "max_peak_rss_bytes": max(run["peak_rss_bytes"] for run in runs),
        "median_stage_seconds": stages,
        "load_averages": [run["load_average_before"] for run in runs],
    }


def _gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def render_markdown(payload: dict[str, Any]) -> str:
    """Human-readable summary of the perf results."""
    lines = [
        "# froc audit: end-to-end speed and memory",
        "",
        f"Generated {payload['date']} by `bench/perf_audit.py`. Machine: "
        f"{payload['machine']['cpus']} CPUs; torch threads in the audit process: "
        f"{payload['machine']['torch_threads_note']}. `python -m froc_cli --help` start-up: "
        f"{payload['startup_s']:.2f} s (median).",
    ]
    if payload["audits"]:
        lines += [
            "",
            "| file | rows | runs | median wall | target | peak RSS | CPU (user+sys) | stages "
            "(prepare / train / attack) | load avg (1 min) before runs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for name, entry in payload["audits"].items():
        s = entry["summary"]
        st = s["median_stage_seconds"]
        lines.append(
            f"| {name} | {entry['rows']:,} | {s['runs']} | {s['median_wall_s']:.1f} s "
            f"| {entry['target']} | {_gib(s['max_peak_rss_bytes'])} | {s['median_cpu_s']:.1f} s "
            f"| {st.get('prepare', 0):.1f} / {st.get('train', 0):.1f} / "
            f"{st.get('attack', 0):.1f} s "
            f"| {', '.join(f'{x:.1f}' for x in s['load_averages'])} |"
        )
    if payload["read_s"]:
        lines += ["", "CSV read (`read_table`, median in-process):", ""]
    for name, seconds in payload["read_s"].items():
        lines.append(f"- {name}: {seconds:.2f} s")
    if payload["audits"]:
        lines += ["", "Audit metrics and training settings of the last run of each file:", ""]
    for name, entry in payload["audits"].items():
        last = entry["runs"][-1]
        m = last["metrics"]
        t = last["train"]
        lines.append(
            f"- {name}: acc {m['accuracy']:.4f}, S_B {m['bias_score']:.4f}, S_R FGSM "
            f"{m['robustness_fgsm']:.4f}, PGD {m['robustness_pgd']:.4f}; trained {t['model']} "
            f"{t['epochs']} epochs, batch {t['batch_size'] or 'full'}"
        )
    if payload.get("threads"):
        lines += [
            "",
            "Torch threads (in-process `audit_table(..., AuditConfig(threads=t))`, interleaved "
            "runs; the audit default is 1):",
            "",
            "| file | threads | train s | attack s | load avg (1 min) before-after | acc | S_B "
            "| S_R PGD |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in payload["threads"]:
            after = row.get("load_average_after")
            load = f"{row['load_average_before']:.1f}" + (f"-{after:.1f}" if after else "")
            lines.append(
                f"| {row['file']} | {row['threads']} | {row['train_s']:.1f} | "
                f"{row['attack_s']:.2f} | {load} | "
                f"{row['accuracy']:.4f} | {row['bias_score']:.4f} | {row['robustness_pgd']:.4f} |"
            )
    if "generate_s" in payload:
        lines += ["", f"Generating the 1,000,000-row file took {payload['generate_s']:.1f} s."]
    versions = ", ".join(f"{k} {v}" for k, v in payload["versions"].items())
    lines += ["", f"Versions: {versions}.", ""]
    if "run" in payload:
        lines += [record_line(payload["run"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Adult runs (median reported)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument("--repeats-1m", type=int, default=1, help="runs on the generated file")
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument(
        "--threads-repeats",
        type=int,
        default=2,
        help="interleaved repeats of the 1-vs-2-thread comparison (0 skips it)",
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="before each timed run wait until the 1-minute load average is below this",
    )
    parser.add_argument(
        "--wait-max", type=float, default=1800, help="longest total wait for quiet, seconds"
    )
    parser.add_argument("--tag", default="", help="suffix of the results files")
    parser.add_argument("--out", type=Path, default=repo_root() / "bench" / "results")
    args = parser.parse_args(argv)
    record = start_record()

    payload: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "script": "bench/perf_audit.py",
        "versions": environment_versions(),
        "machine": {
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "torch_threads_note": "1 (default of AuditConfig.threads and froc audit --threads)",
        },
        "peak_rss_tool": "/usr/bin/time -v" if TIME_BIN else "getrusage(RUSAGE_CHILDREN)",
        "audits": {},
        "read_s": {},
    }
    wait_for_quiet(args.max_load, args.wait_max)
    payload["startup_s"] = time_startup(3)

    data_dir = shared_data_dir()
    if args.skip_adult:
        pass
    elif data_dir is None:
        print("perf_audit: ../shared/data not found; skipping the Adult audit", file=sys.stderr)
    else:
        adult = data_dir / ADULT_FILE
        runs = []
        for i in range(args.repeats):
            waited = wait_for_quiet(args.max_load, args.wait_max)
            run = run_audit(adult, ADULT_ARGS)
            run["waited_for_quiet_s"] = waited
            print(
                f"adult run {i + 1}: {run['wall_s']:.1f} s wall, "
                f"{_gib(run['peak_rss_bytes'])} peak RSS, stages {run['stage_seconds']} "
                f"(load {run['load_average_before']:.1f})",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
        payload["read_s"]["adult.csv"] = time_read(adult, 3)
        payload["audits"]["adult.csv"] = {
            "file": str(adult),
            "sha256": hash_file(adult),
            "rows": runs[0]["rows"]["total"],
            "command_args": list(ADULT_ARGS),
            "target": f"<= {ADULT_WALL_TARGET_S:.0f} s, <= 2 GiB",
            "passed": bool(
                statistics.median(r["wall_s"] for r in runs) <= ADULT_WALL_TARGET_S
                and max(r["peak_rss_bytes"] for r in runs) <= ADULT_RSS_TARGET_BYTES
            ),
            "summary": summarise(runs),
            "runs": runs,
        }

    if not args.skip_1m:
        make_synthetic = load_make_synthetic()
        with tempfile.TemporaryDirectory(prefix="froc_perf_") as folder:
            path = Path(folder) / f"synthetic_{args.rows}.csv"
            started = time.perf_counter()
            frame = make_synthetic.generate(args.rows, 0)
            make_synthetic.write_csv_atomic(frame, path)
            del frame
            payload["generate_s"] = time.perf_counter() - started
            name = f"synthetic {args.rows:,} rows (seed 0)"
            runs = []
            for i in range(args.repeats_1m):
                waited = wait_for_quiet(args.max_load, args.wait_max)
                run = run_audit(path, SYNTHETIC_ARGS)
                run["waited_for_quiet_s"] = waited
                print(
                    f"{name} run {i + 1}: {run['wall_s']:.1f} s wall, "
                    f"{_gib(run['peak_rss_bytes'])} peak RSS, stages {run['stage_seconds']}, "
                    f"train {run['train']} (load {run['load_average_before']:.1f})",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run)
            payload["read_s"][name] = time_read(path, 1)
            payload["audits"][name] = {
                "file": "generated: make_synthetic.generate(rows, seed=0)",
                "bytes": path.stat().st_size,
                "rows": args.rows,
                "command_args": list(SYNTHETIC_ARGS),
                "target": f"<= {MILLION_WALL_TARGET_S:.0f} s",
                "passed": bool(
                    statistics.median(r["wall_s"] for r in runs) <= MILLION_WALL_TARGET_S
                ),
                "summary": summarise(runs),
                "runs": runs,
            }

    if args.threads_repeats > 0:
        files = {
            "sample_data/synthetic.csv": (
                repo_root() / "sample_data" / "synthetic.csv",
                DataSpec(protected="gender", protected_group=("female",)),
            )
        }
        if data_dir is not None:
            files["adult.csv"] = (
                data_dir / ADULT_FILE,
                DataSpec(
                    protected="sex", label="income", positive=">50K", protected_group=("Female",)
                ),
            )
        payload["threads"] = compare_threads(
            files, (1, 2), args.threads_repeats, (args.max_load, args.wait_max)
        )

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"perf_audit{'_' + args.tag if args.tag else ''}"
    payload["max_load"] = args.max_load
    payload["run"] = finish_record(record)
    write_text_atomic(json.dumps(payload, indent=2) + "\n", args.out / f"{stem}.json")
    write_text_atomic(render_markdown(payload), args.out / f"{stem}.md")
    print(render_markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
