"""How fast the ``froc`` command line answers when it does no work: help, version, and the input
errors it finds before training.

Each command runs as a subprocess (interpreter start included), timed with a wall clock; the
commands take turns, ``--repeats`` rounds (default 5), and each figure is the median of its
runs. Every figure is also given as a ratio to ``python -c "import typer, rich"`` measured the
same way, so the ratios stay comparable on a busy machine. A second floor, a one-option typer
app run with one argument, shows what typer itself costs to parse a command line (typer 0.2x
imports pydantic to coerce every parameter; ``import typer, rich`` does not include that).

Target (CLI speed issue): each froc command within 0.6 s on this machine. The load average is
recorded before and after, since other processes on a shared machine slow every figure down.

Writes bench/results/perf_cli.json and bench/results/perf_cli.md, both with the run record of
``bench/_record.py`` (code digest, command line, machine, load average at start and end).

    python bench/perf_cli.py
    python bench/perf_cli.py --repeats 9
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from _record import finish_record, record_line, start_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_S = 0.6
SYNTHETIC = str(ROOT / "sample_data" / "synthetic.csv")

_TYPER_FLOOR = """
import typer
app = typer.Typer()
@app.command()
def main(name: str = "x") -> None:
    pass
app(["--name", "y"])
"""


def _froc() -> list[str]:
    """The installed ``froc`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "froc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "froc_cli"]


def commands() -> dict[str, tuple[list[str], int]]:
    """Name -> (argv, expected exit code). The first is the baseline."""
    froc = _froc()
    return {
        'python -c "import typer, rich"': ([sys.executable, "-c", "import typer, rich"], 0),
        "typer floor (one-option app)": ([sys.executable, "-c", _TYPER_FLOOR], 0),
        'python -c "import froc_cli.cli"': ([sys.executable, "-c", "import froc_cli.cli"], 0),
        "froc --help": ([*froc, "--help"], 0),
        "froc --version": ([*froc, "--version"], 0),
        "froc audit --help": ([*froc, "audit", "--help"], 0),
        "froc audit missing.csv --protected x": (
            [*froc, "audit", "missing.csv", "--protected", "x"],
            2,
        ),
        "froc audit sample_data/synthetic.csv --protected nosuchcol": (
            [*froc, "audit", SYNTHETIC, "--protected", "nosuchcol"],
            2,
        ),
    }


def _time_once(argv: list[str], expected: int, cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != expected:
        raise SystemExit(
            f"{argv}: exit {done.returncode}, expected {expected}\n{done.stdout}{done.stderr}"
        )
    return seconds


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def measure(repeats: int) -> dict[str, Any]:
    table = commands()
    runs: dict[str, list[float]] = {name: [] for name in table}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:  # missing.csv is surely missing there
        cwd = Path(folder)
        for argv, code in table.values():  # warm the file cache; not counted
            _time_once(argv, code, cwd)
        for _ in range(repeats):
            for name, (argv, code) in table.items():
                runs[name].append(_time_once(argv, code, cwd))
    load_after = os.getloadavg()
    baseline_name = next(iter(table))
    baseline = statistics.median(runs[baseline_name])
    rows = []
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        rows.append(
            {
                "command": name,
                "median_s": round(median, 4),
                "runs_s": [round(s, 4) for s in seconds],
                "ratio_to_baseline": round(median / baseline, 2),
                "within_target": median <= TARGET_S if name.startswith("froc") else None,
            }
        )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "target_s": TARGET_S,
        "baseline": baseline_name,
        "repeats": repeats,
        "results": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "platform": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "typer": _version("typer"),
            "click": _version("click"),
            "rich": _version("rich"),
            "pydantic": _version("pydantic"),
            "froc": _version("froc"),
        },
    }


def render_markdown(report: dict[str, Any]) -> str:
    machine, versions = report["machine"], report["versions"]
    lines = [
        "# froc command-line start-up",
        "",
        f"Wall clock of each command as a subprocess, median of {report['repeats']} runs "
        f"(taking turns), {report['date']}. Target: each `froc` command within "
        f"{report['target_s']:g} s. Ratio: to `{report['baseline']}`.",
        "",
        "| command | median (s) | ratio | runs (s) |",
        "|---|---:|---:|---|",
    ]
    for row in report["results"]:
        runs = ", ".join(f"{s:.3f}" for s in row["runs_s"])
        lines.append(
            f"| `{row['command']}` | {row['median_s']:.3f} | {row['ratio_to_baseline']:.2f} "
            f"| {runs} |"
        )
    lines += [
        "",
        f"Machine: {machine['cpus']} CPUs, load average (1, 5, 15 min) "
        f"{machine['load_average_before']} before, {machine['load_average_after']} after; "
        f"{machine['platform']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        record_line(report["run"]),
        "",
        "The typer floor is a one-option typer app parsing one option: typer "
        f"{versions['typer']} imports pydantic to coerce parameters, a cost every `froc` "
        "command pays and `import typer, rich` does not show.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds (median over them)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    record = start_record()
    report = measure(max(1, args.repeats))
    report["run"] = finish_record(record)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perf_cli.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report)
    (args.out / "perf_cli.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
