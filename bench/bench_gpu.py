"""CPU against CUDA on Adult: the audit (FGSM + PGD; and with APGD x 5 and the certificate),
one FRoC-IN fit and one FRoC-PRE influence round.

Each workload runs through the public engine (``audit_table``, ``train_in_table``) or the
influence functions, once on ``cpu`` (one torch thread, the CLI default) and once on ``cuda``,
after one untimed warm-up on CUDA (kernel and allocator start-up). Wall seconds are medians of
``--repeats`` runs, with ``torch.cuda.synchronize()`` before each clock read; the figures of
both devices are written side by side, since float sums differ between devices (the same
seed gives the same output on the same device, not across devices).

Writes bench/results/gpu.json and bench/results/gpu.md (with the run record of
``bench/_record.py``: code digest, command line, machine, load at start and end). Exits 0
without measuring anything when CUDA or ../shared/data is absent, so it is safe to run
anywhere; on a machine with a GPU:

    python bench/bench_gpu.py                 # about 3 minutes on one GPU
    python bench/bench_gpu.py --repeats 1 --skip-froc-in
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _datasets import load_adult, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record
from bench_froc_pre import influence_round

from froc_cli.core import DataSpec, ThreatModel, TrainConfig, environment_versions
from froc_cli.methods import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, FrocInConfig
from froc_cli.workflows import AuditConfig, TrainInConfig, audit_table, train_in_table


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(device: str, work: Callable[[], dict[str, float]], repeats: int) -> dict[str, Any]:
    seconds, figures = [], {}
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        figures = work()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    return {"seconds_median": statistics.median(seconds), "seconds": seconds, "figures": figures}


def _spec() -> DataSpec:
    _, fields = load_adult()
    return DataSpec(**fields)


def audit_work(device: str) -> Callable[[], dict[str, float]]:
    frame, _ = load_adult()
    config = AuditConfig(data=_spec(), train=TrainConfig(device=device), threads=1)

    def work() -> dict[str, float]:
        m = audit_table(frame, config, source="adult.csv").metrics
        return {k: m[k] for k in ("accuracy", "bias_score", "robustness_pgd")}

    return work


def strong_audit_work(device: str) -> Callable[[], dict[str, float]]:
    """The audit with APGD (5 restarts) beside FGSM and PGD, and the CROWN certificate."""
    frame, _ = load_adult()
    threat = ThreatModel(attacks=("fgsm", "pgd", "apgd"), restarts=5)
    config = AuditConfig(
        data=_spec(), threat=threat, train=TrainConfig(device=device), threads=1, certify=True
    )

    def work() -> dict[str, float]:
        m = audit_table(frame, config, source="adult.csv").metrics
        keys = ("accuracy", "robustness_pgd", "robustness_apgd", "robustness_certified")
        return {k: m[k] for k in keys}

    return work


def froc_in_work(device: str) -> Callable[[], dict[str, float]]:
    frame, _ = load_adult()
    train = TrainConfig(epochs=DEFAULT_EPOCHS, batch_size=DEFAULT_BATCH_SIZE, device=device)
    froc = FrocInConfig(lambda_f=0.5, lambda_r=0.1, train=train)  # froc train-in's schedule
    config = TrainInConfig(data=_spec(), froc=froc)

    def work() -> dict[str, float]:
        test = train_in_table(frame, config, source="adult.csv").test.metrics
        return {k: test[k] for k in ("accuracy", "bias_score", "robustness_pgd")}

    return work


def render(results: dict[str, Any]) -> str:
    lines = [
        "# CPU against CUDA (bench/bench_gpu.py)",
        "",
        f"Run {results['started']}; {results['gpu']}; CPU: torch threads 1; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        "| workload | CPU s (median) | CUDA s (median) | speed-up | CPU figures | CUDA figures |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["workloads"].items():
        cpu, gpu = row["cpu"], row["cuda"]
        ratio = cpu["seconds_median"] / gpu["seconds_median"]
        figs = [", ".join(f"{k} {v:.4f}" for k, v in r["figures"].items()) for r in (cpu, gpu)]
        lines.append(
            f"| {name} | {cpu['seconds_median']:.2f} | {gpu['seconds_median']:.2f} | "
            f"{ratio:.1f}x | {figs[0]} | {figs[1]} |"
        )
    if "run" in results:
        lines += ["", record_line(results["run"])]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-froc-in", action="store_true")
    parser.add_argument("--out", type=Path, default=repo_root() / "bench" / "results")
    parser.add_argument(
        "--second-device",
        default="cuda",
        help="the device compared with cpu (cpu only checks this script on a machine without GPU)",
    )
    args = parser.parse_args()
    if shared_data_dir() is None:
        print("bench_gpu: ../shared/data not found; nothing measured", file=sys.stderr)
        return 0
    second = args.second_device
    if second == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: CUDA is not available; nothing measured", file=sys.stderr)
        return 0
    record = start_record()
    torch.set_num_threads(1)
    workloads: dict[str, Callable[[str], Callable[[], dict[str, float]]]] = {
        "audit (mlp:128, 300 epochs full batch, FGSM + PGD-10 on 13,567 rows)": audit_work,
        "audit with APGD-100 x 5 restarts and the CROWN certificate (13,567 rows)": (
            strong_audit_work
        ),
        "FRoC-PRE influence round (46,177 rows + eq. 22 on 2,000)": influence_round,
    }
    if not args.skip_froc_in:
        workloads["FRoC-IN fit (lambda_F 0.5, lambda_R 0.1, PGD-10)"] = froc_in_work
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(0) if second == "cuda" else f"no GPU ({second})",
        "versions": environment_versions(),
        "workloads": {},
    }
    for name, make in workloads.items():
        print(f"bench_gpu: {name}", file=sys.stderr, flush=True)
        row = {}
        for key, device in (("cpu", "cpu"), ("cuda", second)):
            work = make(device)
            if device == "cuda":
                work()  # warm-up: CUDA context, kernels, allocator
            row[key] = _timed(device, work, args.repeats)
        results["workloads"][name] = row
    results["run"] = finish_record(record)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu" if second == "cuda" else f"gpu_check_{second}"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
