"""CPU against CUDA on Adult: the audit (FGSM + PGD; and with APGD x 5 and the certificate),
one FRoC-IN fit and one FRoC-PRE influence round; the FRoC-IN fit split between processes by
torchrun (NCCL, one process per GPU; gloo with two processes on cpu) and a streamed audit of a
saved model over 1,000,000 rows in 4 parquet shards (generated once in /tmp).

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
    python bench/bench_gpu.py --dry-run       # no GPU: the new cases, tiny, on cpu
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _datasets import load_adult, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record
from bench_froc_pre import influence_round

from froc_cli.attacks import FeatureSpace
from froc_cli.core import (
    DataSpec,
    Objective,
    ThreatModel,
    TrainConfig,
    environment_versions,
    open_dataset,
)
from froc_cli.data import fit_encoder
from froc_cli.methods import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, FrocInConfig
from froc_cli.models import ModelArtifact, build_model, train_model
from froc_cli.workflows import (
    AuditConfig,
    TrainInConfig,
    audit_saved_dataset,
    audit_table,
    train_in_table,
)

STREAM_DIR = Path("/tmp/froc_bench_gpu")


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


def streamed_audit_work(
    device: str,
    *,
    rows: int = 1_000_000,
    shards: int = 4,
    workdir: Path = STREAM_DIR,
) -> Callable[[], dict[str, float]]:
    """``froc audit DIR --model`` streamed (:func:`audit_saved_dataset`) over ``rows`` rows in
    ``shards`` parquet shards of bench/scale_runs.py's credit table (generated once under
    ``workdir``), with an mlp:16 trained for 5 epochs on the first 20,000 rows."""
    import pandas as pd
    from scale_runs import generate

    folder = workdir / f"shards_{rows}_{shards}"
    if not (folder / f"part-{shards - 1:03d}.parquet").is_file():
        generate(folder, rows, shards, seed=0)
    dataset = open_dataset(folder)
    sample = pd.read_parquet(dataset.shards[0]).iloc[:20_000]
    spec = DataSpec(protected="gender", label="approved", protected_group=("female",))
    features = ("age", "income", "hours", "education", "region")
    encoder = fit_encoder(sample, features)
    model = build_model("mlp:16", encoder.n_features, seed=0)
    x = torch.as_tensor(encoder.encode(sample))
    y = torch.as_tensor(sample["approved"].to_numpy(dtype="float32"))
    a = torch.as_tensor((sample["gender"] != "female").to_numpy(dtype="float32"))
    config = TrainConfig(model="mlp:16", epochs=5, batch_size=1024, device="cpu")
    train_model(model, x, y, a, objective=Objective(), config=config,
                space=FeatureSpace.from_encoder(encoder))  # fmt: skip
    artifact = ModelArtifact(
        model=model, encoder=encoder, model_spec="mlp:16", data_spec=spec,
        label_column="approved", positive_value="1", protected_column="gender",
        protected_values=("female",), info={},
    )  # fmt: skip
    audit = AuditConfig(data=spec, train=TrainConfig(device=device), threads=1)

    def work() -> dict[str, float]:
        result = audit_saved_dataset(dataset, artifact, audit, model_name="bench")
        m = result.metrics
        return {"rows": m["rows"], **{k: m[k] for k in ("accuracy", "bias_score", "robustness")}}

    return work


def distributed_command(device: str, processes: int, data: Path, epochs: int) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m froc_cli train-in`` on ``data`` (Adult's
    roles when it is adult.csv, the sample's otherwise): NCCL on cuda, gloo on cpu."""
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    if data.name == "adult.csv":
        roles = ["--protected", "sex", "--protected-group", "Female", "--label", "income",
                 "--positive", ">50K"]  # fmt: skip
    else:
        roles = ["--protected", "gender"]
    return [
        torchrun, "--standalone", "--nproc-per-node", str(processes), "-m", "froc_cli",
        "train-in", str(data), *roles, "--lambda-f", "0.5", "--lambda-r", "0.1",
        "--epochs", str(epochs), "--device", device, "--json", "--quiet",
    ]  # fmt: skip


def distributed_work(
    device: str, *, data: Path | None = None, epochs: int = DEFAULT_EPOCHS
) -> Callable[[], dict[str, float]]:
    """FRoC-IN's fit split between processes by torchrun: one process per GPU on cuda (NCCL;
    skipped below two GPUs: NCCL takes one GPU per process), two on cpu (gloo)."""
    folder = shared_data_dir()
    path = data if data is not None else (folder / "adult.csv" if folder else Path())
    processes = torch.cuda.device_count() if device == "cuda" else 2
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "OMP_NUM_THREADS": "1"}

    def work() -> dict[str, float]:
        if processes < 2:
            return {"skipped_fewer_than_two_gpus": 1.0}
        done = subprocess.run(
            distributed_command(device, processes, path, epochs),
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise RuntimeError(f"torchrun failed ({done.returncode}): {done.stderr[-2000:]}")
        test = json.loads(done.stdout)["test"]["metrics"]
        return {"processes": float(processes), **{k: test[k] for k in ("accuracy", "bias_score")}}

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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run only the streamed and distributed cases, tiny and on cpu, on "
        "sample_data/synthetic.csv; write nothing to bench/results (a check without a GPU)",
    )
    args = parser.parse_args()
    if args.dry_run:
        return dry_run()
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
        workloads["FRoC-IN fit under torchrun, one process per GPU (NCCL; gloo x 2 on cpu)"] = (
            distributed_work
        )
    workloads["streamed audit of a saved mlp:16 (1,000,000 rows in 4 parquet shards)"] = (
        streamed_audit_work
    )
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


def dry_run() -> int:
    """The streamed and distributed cases, tiny, on cpu: what a machine without a GPU can check
    of this script (tests/test_bench_gpu.py runs the same functions smaller still)."""
    torch.set_num_threads(1)
    sample = repo_root() / "sample_data" / "synthetic.csv"
    cases = {
        "streamed audit (100,000 rows, 2 shards)": streamed_audit_work("cpu", rows=100_000,
                                                                       shards=2),
        "train-in under torchrun (2 gloo processes)": distributed_work("cpu", data=sample,
                                                                       epochs=3),
    }  # fmt: skip
    for name, work in cases.items():
        started = time.perf_counter()
        figures = work()
        print(f"bench_gpu dry run: {name}: {time.perf_counter() - started:.1f} s, {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
