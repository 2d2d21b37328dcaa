"""``froc preprocess`` as a data owner runs it: exit code, wall time, peak memory and verdict.

Each case writes its input table to a temporary folder and runs the ``froc`` command line on it
under ``/usr/bin/time -v`` (peak RSS of the child), then reads the manifest's verdict, flipped
and added shares and froc's own phase seconds:

- ``adult-sex``: the 70% of the label-stratified ``train_test_split(random_state=0)`` of
  Adult, as ``bench/outside_trainer.py`` seed 0 builds it, with the user's line (``--delta-f
  0.05 --delta-r 0.6``); the speed target is 120 s wall on 2 cores and 2 GiB peak RSS;
- ``compas-race``: COMPAS (ProPublica filter, leak-free features), protected race (group
  African-American), favourable ``0`` (did not re-offend), ``--delta-f 0.05 --delta-r 0.5``;
- ``synthetic-gender``: the user's line as written on ``sample_data/synthetic.csv`` (label =
  the last column, 0/1; ``--protected gender --delta-f 0.05 --delta-r 0.6``).

Writes bench/results/preprocess_runs{TAG}.{json,md} with the run record (bench/_record.py).
Skips cleanly (exit 0) when ../shared/data is absent. Run it with nothing else on the machine
for the timings to mean anything (the record keeps the load before and after).

    python bench/preprocess_runs.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record
from sklearn.model_selection import train_test_split

CASES: dict[str, list[str]] = {
    "adult-sex": [
        "--label", "income", "--positive", ">50K", "--protected", "sex",
        "--protected-group", "Female", "--delta-f", "0.05", "--delta-r", "0.6",
    ],
    "compas-race": [
        "--label", "two_year_recid", "--positive", "0", "--protected", "race",
        "--protected-group", "African-American", "--delta-f", "0.05", "--delta-r", "0.5",
    ],
    # The user's line as written: the label is the last column, the group chosen by default.
    "synthetic-gender": ["--protected", "gender", "--delta-f", "0.05", "--delta-r", "0.6"],
}  # fmt: skip


def froc_command() -> list[str]:
    """The ``froc`` executable beside this interpreter, else ``python -m froc_cli``."""
    beside = Path(sys.executable).parent / "froc"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "froc_cli"]


def case_table(name: str) -> Any:
    """The input table of a case (see the module docstring)."""
    if name == "adult-sex":
        frame, _ = load_adult("sex")
        train, _ = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["income"])
        return train.reset_index(drop=True)
    if name == "synthetic-gender":
        return pd.read_csv(repo_root() / "sample_data" / "synthetic.csv")
    frame, _ = load_compas("race")
    return frame


def run_case(name: str, threads: int, workdir: Path) -> dict[str, Any]:
    """One ``froc preprocess`` run under ``/usr/bin/time -v``."""
    data = workdir / f"{name}.csv"
    case_table(name).to_csv(data, index=False)
    manifest = workdir / f"{name}.manifest.json"
    args = [
        "preprocess", str(data), *CASES[name], "--threads", str(threads),
        "-o", str(workdir / f"{name}.froc.csv"), "--manifest", str(manifest), "--quiet",
    ]  # fmt: skip
    timing = workdir / f"{name}.time"
    command = ["/usr/bin/time", "-v", "-o", str(timing), *froc_command(), *args]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text())
    out: dict[str, Any] = {
        "command": "froc " + shlex.join([*args[:1], f"{name}.csv", *args[2:]]),
        "exit_code": completed.returncode,
        "wall_seconds": wall,
        "peak_rss_mib": int(rss.group(1)) / 1024 if rss else None,
        "stderr_tail": completed.stderr.strip().splitlines()[-3:],
    }
    if manifest.exists():
        m = json.loads(manifest.read_text())
        out.update(
            met=m["met"],
            reason=m["reason"],
            flip_fraction=m["flip_fraction"],
            augment_fraction=m["augment_fraction"],
            targets=m["targets"],
            verdicts=m["verdicts"],
            seconds=m["seconds"],
            rows=m["rows"],
        )
    return out


def markdown(payload: dict[str, Any]) -> str:
    """The results as a short markdown page."""
    lines = [
        "# `froc preprocess` runs (bench/preprocess_runs.py)",
        "",
        record_line(payload["run"]),
        "",
        "| case | exit | wall s | peak RSS MiB | flipped | added | plan s | crossfit s | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in payload["cases"].items():
        seconds = r.get("seconds", {})
        lines.append(
            f"| {name} | {r['exit_code']} | {r['wall_seconds']:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {r.get('flip_fraction', 0):.1%} | "
            f"{r.get('augment_fraction', 0):.1%} | {seconds.get('plan', 0):.1f} | "
            f"{seconds.get('crossfit', 0):.1f} | {r.get('reason', '')} |"
        )
    lines += ["", "Per panel model (cross-fitted estimate, judged figures):", ""]
    for name, r in payload["cases"].items():
        for v in r.get("verdicts", []):
            lines.append(
                f"- {name}, {v['model']}: S_B {v['bias_score']:.4f}, {v['robustness_key']} "
                f"{v['robustness']:.4f}, met {v['met']}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    if shared_data_dir() is None:
        print("../shared/data is absent: nothing to run")
        return 0
    if shutil.which("/usr/bin/time") is None:
        print("/usr/bin/time is absent: peak RSS cannot be measured")
        return 0
    record = start_record()
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="preprocess-runs-") as tmp:
        for name in args.cases:
            cases[name] = run_case(name, args.threads, Path(tmp))
            r = cases[name]
            print(
                f"{name}: exit {r['exit_code']}, {r['wall_seconds']:.1f} s, "
                f"{r['peak_rss_mib']:.0f} MiB; {r.get('reason', r['stderr_tail'])}"
            )
    payload = {"threads": args.threads, "cases": cases, "run": finish_record(record)}
    out = repo_root() / "bench" / "results" / f"preprocess_runs{args.tag}"
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(payload))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
