"""The run record every bench script writes beside its figures (key ``"run"`` in the JSON).

A figure in BENCHMARKS.md is only as good as the code and the machine that produced it, so
each results file carries:

- ``code``: the git commit (``git rev-parse HEAD``), a sha256 over the current contents of the
  froc_cli/ sources git knows of (tracked plus untracked-but-not-ignored files, so uncommitted
  edits change it), ``dirty`` (those sources differ from the commit) and whether the digest
  changed while the run went on (other people edit the engine while benchmarks run);
- ``command``: the exact command line (``sys.argv``), the interpreter and the working folder;
- ``machine``: CPU count and model, platform, Python, the torch version and its thread counts
  in this process (``None`` when this process never imported torch: the figures then come
  from ``froc`` subprocesses, whose ``--threads`` the command line shows);
- ``load``: ``os.getloadavg()`` (1, 5, 15 min) at the start and at the end, and the dates.

Only read-only git calls, with ``--no-optional-locks`` so no index refresh is written. This
module imports nothing from froc_cli (``bench/outside_trainer.py`` is an independent judge).

    record = start_record()
    ...  # the benchmark
    finish_record(record)
    payload["run"] = record
    markdown_lines.append(record_line(record))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["code_digest", "finish_record", "record_line", "record_ref", "start_record"]

_ROOT = Path(__file__).resolve().parent.parent
_T0_KEY = "_perf_counter_start"


def _git(*args: str) -> str | None:
    """stdout of one read-only git command in the repository, None on failure."""
    try:
        res = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return res.stdout if res.returncode == 0 else None


def code_digest() -> dict[str, Any]:
    """Commit, sha256 of the froc_cli/ sources' current contents, and whether they are dirty."""
    listing = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "froc_cli")
    names = sorted({n for n in (listing or "").split("\0") if n})
    if not names:  # no git (a source tarball): every file under froc_cli but caches
        names = sorted(
            str(p.relative_to(_ROOT))
            for p in (_ROOT / "froc_cli").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
    digest = hashlib.sha256()
    for name in names:
        path = _ROOT / name
        if not path.is_file():  # tracked but deleted in the work tree
            continue
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    commit = (_git("rev-parse", "HEAD") or "").strip() or None
    status = _git("status", "--porcelain", "--untracked-files=all", "--", "froc_cli")
    return {
        "commit": commit,
        "froc_cli_sha256": digest.hexdigest(),
        "froc_cli_files": len(names),
        "dirty": None if status is None else bool(status.strip()),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _machine() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    try:
        torch_version = torch.__version__ if torch is not None else metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_version,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "torch_interop_threads": torch.get_num_interop_threads() if torch is not None else None,
    }


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def start_record() -> dict[str, Any]:
    """The record at the start of a run: code digest, command line, date, load average."""
    return {
        "code": code_digest(),
        "command": {
            "argv": list(sys.argv),
            "line": shlex.join(["python", *sys.argv]),
            "python_executable": sys.executable,
            "cwd": os.getcwd(),
        },
        "started": _now(),
        "load_start": _load(),
        _T0_KEY: time.perf_counter(),
    }


def finish_record(record: dict[str, Any]) -> dict[str, Any]:
    """Complete ``record`` in place (end date, load, wall, machine, code check) and return it."""
    t0 = record.pop(_T0_KEY, None)
    record["finished"] = _now()
    record["load_end"] = _load()
    record["wall_seconds"] = None if t0 is None else round(time.perf_counter() - t0, 1)
    record["machine"] = _machine()
    end_code = code_digest()
    record["code_changed_during_run"] = (
        end_code["froc_cli_sha256"] != record["code"]["froc_cli_sha256"]
        or end_code["commit"] != record["code"]["commit"]
    )
    if record["code_changed_during_run"]:
        record["code_at_end"] = end_code
    return record


def record_line(record: dict[str, Any]) -> str:
    """One markdown line with the record (for the script's .md output)."""
    code, machine = record["code"], record.get("machine", {})
    commit = (code.get("commit") or "no git")[:12]
    dirty = " + uncommitted froc_cli edits" if code.get("dirty") else ""
    changed = " (froc_cli CHANGED during the run)" if record.get("code_changed_during_run") else ""
    threads = machine.get("torch_threads")
    torch_text = f"torch {machine.get('torch')}" + (
        f" ({threads} thread{'s' if threads != 1 else ''} here)" if threads is not None else ""
    )
    load_end = record.get("load_end", "?")
    return (
        f"Run record: `{record['command']['line']}`; {record['started']} -> "
        f"{record.get('finished', '?')} ({record.get('wall_seconds', '?')} s); code {commit}"
        f"{dirty}, froc_cli sha256 {code['froc_cli_sha256'][:12]}{changed}; "
        f"{machine.get('cpus')} CPUs ({machine.get('cpu_model')}), {machine.get('platform')}, "
        f"Python {machine.get('python')}, {torch_text}; load average (1/5/15 min) "
        f"{record['load_start']} at start, {load_end} at end."
    )


def record_ref(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The short form of a record, for a part of a results file that keeps its own provenance
    (a script that merges parts of earlier runs stamps each part with the run that measured it)."""
    if record is None:
        return None
    code = record["code"]
    return {
        "started": record["started"],
        "command": record["command"]["line"],
        "commit": code.get("commit"),
        "froc_cli_sha256": code["froc_cli_sha256"],
        "dirty": code.get("dirty"),
        "load_start": record["load_start"],
        "load_end": record.get("load_end"),
    }
