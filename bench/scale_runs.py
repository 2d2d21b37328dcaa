"""Past one machine: a streamed audit and predictions over 10,000,000 rows in 10 parquet shards,
and FRoC-IN trained by 1 and 2 processes under torchrun on Adult.

1. **Streamed audit.** Generates ``--rows`` rows (default 10,000,000) of a credit table in
   ``--shards`` parquet shards under ``--workdir`` (in /tmp, never in the repository), trains
   and saves a small model on a 50,000-row sample (``froc train-in``), then runs
   ``froc audit DIR --model m.froc --json`` (FGSM + PGD-10, the defaults) in a subprocess and
   measures its wall time and peak resident memory (``os.wait4``'s ``ru_maxrss`` of that one
   child). Checks that every row was counted. The 100,000,000-row figure is EXTRAPOLATED from
   the measured throughput (rows per second), not measured.
2. **Streamed predictions.** ``froc predict m.froc DIR -o OUT_DIR``: wall time, peak memory,
   rows written (read back from the output shards' metadata).
3. **torchrun on Adult.** ``froc train-in`` on ../shared/data/adult.csv (sex, group Female,
   the split of bench/_datasets.py) with fixed lambdas, once as one plain process and under
   ``torchrun --standalone --nproc-per-node`` 1 and 2: test accuracy and S_B of each against
   the single process's, and training throughput (training rows x epochs per second of fit).
4. **The training loop alone.** ``train_model`` on Adult's training split under torchrun with
   1 and 2 processes (``--probe-steps``), without the validation scoring and test attacks that
   every process of train-in repeats: the cleanest 1-against-2 throughput.

Other engineers share this machine's 2 cores: the load average is recorded at the start and
the end (bench/_record.py) and beside each timing (``uptime``); rerun a timing that misses
only because of load. Writes bench/results/scale_runs.json and .md.

    python bench/scale_runs.py                     # ~10 minutes on 2 cores
    python bench/scale_runs.py --rows 1000000 --shards 2 --skip-adult   # a quick look
    python bench/scale_runs.py --skip-streamed --skip-adult --probe-epochs 5 \
        --output bench/results/scale_runs_probe.json    # 1 against 2 processes only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _datasets import ADULT_FILE, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record

RESULTS = repo_root() / "bench" / "results"
EDUCATION = np.array(["highschool", "bachelor", "master", "phd"], dtype=object)
REGION = np.array(["north", "south", "east", "west", "centre"], dtype=object)
GIB = 1024**3


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def generate_shard(path: Path, rows: int, seed: int, shard: int) -> None:
    """One shard of a credit table whose approvals favour men and higher incomes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, shard])
    male = rng.random(rows) < 0.55
    age = rng.integers(18, 76, size=rows)
    income = np.round(rng.uniform(10.0, 200.0, size=rows) + np.where(male, 15.0, -15.0), 2)
    hours = rng.integers(10, 61, size=rows)
    education = rng.integers(0, len(EDUCATION), size=rows)
    region = rng.integers(0, len(REGION), size=rows)
    logit = (
        0.04 * (income - 105.0)
        + 0.5 * (education - 1.5)
        + 0.02 * (hours - 40)
        + np.where(male, 0.6, -0.6)
    )
    approved = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    table = pa.table(
        {
            "age": age,
            "income": income,
            "hours": hours,
            "education": pa.array(EDUCATION[education]),
            "region": pa.array(REGION[region]),
            "gender": pa.array(np.where(male, "male", "female").astype(object)),
            "approved": approved,
        }
    )
    pq.write_table(table, path, row_group_size=262_144)


def generate(folder: Path, rows: int, shards: int, seed: int) -> dict[str, Any]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    base, extra = divmod(rows, shards)
    for shard in range(shards):
        count = base + (1 if shard < extra else 0)
        generate_shard(folder / f"part-{shard:03d}.parquet", count, seed, shard)
    size = sum(p.stat().st_size for p in folder.iterdir())
    return {
        "rows": rows,
        "shards": shards,
        "bytes": size,
        "seconds": round(time.perf_counter() - started, 1),
    }


def froc(*args: str) -> list[str]:
    return [sys.executable, "-m", "froc_cli", *args]


# --max-load: before each timed command, wait (at most --wait-max seconds in all) until the
# 1-minute load average is below it; the load is recorded beside each timing either way.
QUIET = {"max_load": None, "wait_max": 0.0, "waited": 0.0}


def _wait_for_quiet() -> None:
    limit = QUIET["max_load"]
    while limit is not None and os.getloadavg()[0] >= limit and QUIET["waited"] < QUIET["wait_max"]:
        time.sleep(5)
        QUIET["waited"] += 5


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; its wall seconds, peak RSS (its own, from wait4), exit code, stdout."""
    _wait_for_quiet()
    load = _load()
    started = time.perf_counter()
    with (cwd / "stdout.txt").open("w") as out, (cwd / "stderr.txt").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "command": " ".join(command[1:]),
        "exit_code": process.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "peak_rss_gib": round(usage.ru_maxrss * 1024 / GIB, 3),
        # CPU seconds of the command and every process it waited for (torchrun's workers).
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "load_before": load,
        "load_after": _load(),
        "stdout": (cwd / "stdout.txt").read_text(),
        "stderr_tail": (cwd / "stderr.txt").read_text()[-2000:],
    }


def streamed_runs(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    import pandas as pd

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    shards = work / "shards"
    data = generate(shards, args.rows, args.shards, args.seed)
    print(f"generated {data}", file=sys.stderr)
    sample = work / "sample.parquet"
    pd.read_parquet(shards / "part-000.parquet").iloc[:50_000].to_parquet(sample, index=False)
    model = work / "m.froc"
    train = measured(
        froc("train-in", str(sample), "--protected", "gender", "--lambda-f", "0.5",
             "--lambda-r", "0.2", "--train-attack", "fgsm", "--target-model", "mlp:16",
             "--epochs", "10", "--json", "-o", str(model), "--allow-infeasible"),
        work, env,
    )  # fmt: skip
    trained = json.loads(train.pop("stdout"))
    audit = measured(
        froc("audit", str(shards), "--model", str(model), "--json", "--threads",
             str(args.threads)),
        work, env,
    )  # fmt: skip
    payload = json.loads(audit.pop("stdout")) if audit["exit_code"] in (0, 1) else {}
    audited = int(payload.get("rows", {}).get("audited", -1))
    rate = audited / audit["seconds"] if audit["seconds"] else float("nan")
    out = work / "predicted"
    if out.exists():
        shutil.rmtree(out)
    predict = measured(
        froc("predict", str(model), str(shards), "-o", str(out), "--json", "--threads",
             str(args.threads)),
        work, env,
    )  # fmt: skip
    predicted = json.loads(predict.pop("stdout")) if predict["exit_code"] == 0 else {}
    import pyarrow.parquet as pq

    written = sum(pq.read_metadata(p).num_rows for p in sorted(out.glob("*.parquet")))
    predict_rate = written / predict["seconds"] if predict["seconds"] else float("nan")
    return {
        "data": data,
        "model": {
            "train": train,
            "test_metrics": {
                k: trained["test"]["metrics"][k] for k in ("accuracy", "bias_score", "robustness")
            },
        },
        "audit": {
            **audit,
            "rows_audited": audited,
            "every_row_counted": audited == args.rows,
            "rows_per_second": round(rate),
            "metrics": {
                k: payload.get("metrics", {}).get(k)
                for k in ("accuracy", "bias_score", "robustness", "majority_floor")
            },
            "within_2_gib": audit["peak_rss_bytes"] <= 2 * GIB,
            "within_300_s": audit["seconds"] <= 300,
            "extrapolated_100m_seconds": round(100_000_000 / rate) if rate else None,
        },
        "predict": {
            **predict,
            "rows_written": written,
            "every_row_written": written == args.rows == predicted.get("rows"),
            "output_shards": len(list(out.glob("*.parquet"))),
            "rows_per_second": round(predict_rate),
            "within_2_gib": predict["peak_rss_bytes"] <= 2 * GIB,
            "extrapolated_100m_seconds": round(100_000_000 / predict_rate)
            if predict_rate
            else None,
        },
    }


def adult_runs(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any] | None:
    folder = shared_data_dir()
    if folder is None:
        print("../shared/data absent: skipping the Adult torchrun runs", file=sys.stderr)
        return None
    work = Path(args.workdir) / "adult"
    work.mkdir(parents=True, exist_ok=True)
    common = [
        "train-in", str(folder / ADULT_FILE), "--protected", "sex", "--protected-group",
        "Female", "--label", "income", "--positive", ">50K", "--lambda-f", "0.5",
        "--lambda-r", "0.5", "--epochs", str(args.adult_epochs), "--json", "--threads", "1",
    ]  # fmt: skip
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    runs: dict[str, Any] = {}
    for name, prefix in (
        ("single_process", [sys.executable, "-m", "froc_cli"]),
        ("torchrun_1", [torchrun, "--standalone", "--nproc-per-node", "1", "-m", "froc_cli"]),
        ("torchrun_2", [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "froc_cli"]),
    ):
        run = measured([*prefix, *common, "-o", str(work / f"{name}.froc")], work, env)
        result = json.loads(run.pop("stdout")) if run["exit_code"] in (0, 1) else {}
        trial = result.get("trials", [{}])[result.get("chosen_trial", 0) or 0]
        fit_rows = result.get("rows", {}).get("fit", 0)
        fit_seconds = result.get("seconds", {}).get("fit", float("nan"))
        runs[name] = {
            **run,
            "test_accuracy": result.get("test", {}).get("metrics", {}).get("accuracy"),
            "test_bias_score": result.get("test", {}).get("metrics", {}).get("bias_score"),
            "test_robustness": result.get("test", {}).get("metrics", {}).get("robustness"),
            "epochs_run": trial.get("epochs_run"),
            "fit_rows": fit_rows,
            "fit_seconds": fit_seconds,
            "rows_epochs_per_second": round(fit_rows * (trial.get("epochs_run") or 0) / fit_seconds)
            if fit_seconds
            else None,
            "verdict": result.get("verdict"),
        }
        print(f"{name}: {runs[name]['seconds']} s", file=sys.stderr)
    base = runs["single_process"]
    for name in ("torchrun_1", "torchrun_2"):
        run = runs[name]
        if run["test_accuracy"] is None or base["test_accuracy"] is None:
            continue
        run["accuracy_gap"] = round(abs(run["test_accuracy"] - base["test_accuracy"]), 4)
        run["bias_gap"] = round(abs(run["test_bias_score"] - base["test_bias_score"]), 4)
        run["within_tolerance"] = run["accuracy_gap"] <= 0.01 and run["bias_gap"] <= 0.02
        run["fit_speedup_vs_single"] = round(base["fit_seconds"] / run["fit_seconds"], 2)
    return runs


def probe_steps(epochs: int) -> int:
    """Run under torchrun (or alone): time ``train_model`` alone on Adult's training split
    (eq. 10 with lambda_F 0.5, lambda_R 0.5, PGD-10, batches of 1024), without the validation
    scoring and test attacks that every process of ``froc train-in`` repeats; rank 0 prints
    one JSON line."""
    import torch
    from _datasets import load_adult

    from froc_cli.attacks import FeatureSpace
    from froc_cli.core import DataSpec, Objective, TrainConfig, distributed_session, is_writer
    from froc_cli.core._distributed import world_size
    from froc_cli.data import prepare_data, split_prepared
    from froc_cli.models import build_model, train_model

    torch.set_num_threads(1)
    frame, fields = load_adult()
    with distributed_session("cpu"):
        prepared = prepare_data(frame, DataSpec(**fields), source="adult.csv")
        split = split_prepared(prepared, test_size=0.3, seed=0, device="cpu", min_group_size=30)
        config = TrainConfig(model="mlp:128", epochs=epochs, batch_size=1024, device="cpu")
        space = FeatureSpace.from_encoder(split.encoder)
        objective = Objective(lambda_f=0.5, lambda_r=0.5)
        # Untimed warm-up of one epoch: the first DistributedDataParallel imports
        # torch.distributed's modules (~3 s, once per process) and every first call has lazy
        # set-up; both process counts warm up alike. The warm-up is timed on its own.
        mark = time.perf_counter()
        warm = build_model("mlp:128", split.encoder.n_features, seed=1)
        train_model(warm, split.train.x, split.train.y, split.train.a, objective=objective,
                    config=replace(config, epochs=1), space=space)  # fmt: skip
        warm_up = time.perf_counter() - mark
        model = build_model("mlp:128", split.encoder.n_features, seed=0)
        started = time.perf_counter()
        history = train_model(
            model, split.train.x, split.train.y, split.train.a,
            objective=objective, config=config, space=space,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        allreduce_ms = None
        if world_size() > 1:  # one all-reduce of a gradient's size (mlp:128 on Adult)
            import torch.distributed as dist

            gradient = torch.zeros(sum(p.numel() for p in model.parameters()))
            mark = time.perf_counter()
            for _ in range(200):
                dist.all_reduce(gradient)
            allreduce_ms = round((time.perf_counter() - mark) / 200 * 1000, 3)
        if is_writer():
            rows = len(split.train.positions)
            found = {
                "processes": world_size(),
                "rows": rows,
                "epochs": epochs,
                "train_seconds": round(seconds, 2),
                "warm_up_seconds": round(warm_up, 2),
                "rows_epochs_per_second": round(rows * epochs / seconds),
                "last_loss": history[-1].loss,
                "steps": epochs * -(-rows // 1024),
                "allreduce_ms": allreduce_ms,
            }
            print(json.dumps(found))
    return 0


def probe_runs(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any] | None:
    if shared_data_dir() is None:
        return None
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    script = str(Path(__file__).resolve())
    work = Path(args.workdir) / "probe"
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = {}
    for processes in (1, 2):
        command = [torchrun, "--standalone", "--nproc-per-node", str(processes), script,
                   "--probe-steps", str(args.probe_epochs)]  # fmt: skip
        run = measured(command, work, env)
        found = json.loads(run.pop("stdout").strip().splitlines()[-1])
        runs[f"processes_{processes}"] = {**run, **found}
    # Two independent single processes at once: how much each slows down when both want a
    # core of this shared machine (no communication at all between them).
    _wait_for_quiet()
    load = _load()
    single = [torchrun, "--standalone", "--nproc-per-node", "1", script, "--probe-steps",
              str(args.probe_epochs)]  # fmt: skip
    pair = [
        subprocess.Popen(single, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         cwd=work, env=env)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [process.communicate()[0] for process in pair]
    runs["two_independent_single_processes_at_once"] = {
        "train_seconds": [json.loads(o.strip().splitlines()[-1])["train_seconds"] for o in outputs],
        "load_before": load,
        "load_after": _load(),
    }
    one, two = runs["processes_1"], runs["processes_2"]
    runs["speedup"] = round(one["train_seconds"] / two["train_seconds"], 2)
    runs["loss_gap"] = abs(one["last_loss"] - two["last_loss"])
    return runs


def _markdown(payload: dict[str, Any]) -> str:
    lines = ["# Scale runs (bench/scale_runs.py)", ""]
    streamed = payload.get("streamed")
    if streamed:
        data, audit, predict = streamed["data"], streamed["audit"], streamed["predict"]
        lines += [
            f"Dataset: {data['rows']:,} rows in {data['shards']} parquet shards "
            f"({data['bytes'] / 1e6:.0f} MB, generated in {data['seconds']} s).",
            "",
            "| step | wall s | peak RSS GiB | rows | rows/s | 100M rows (extrapolated) | load |",
            "|---|---|---|---|---|---|---|",
            f"| audit DIR --model (FGSM+PGD-10) | {audit['seconds']} | {audit['peak_rss_gib']} | "
            f"{audit['rows_audited']:,} | {audit['rows_per_second']:,} | "
            f"~{audit['extrapolated_100m_seconds']:,} s (extrapolated) | "
            f"{audit['load_before']} -> {audit['load_after']} |",
            f"| predict DIR -o OUT_DIR | {predict['seconds']} | {predict['peak_rss_gib']} | "
            f"{predict['rows_written']:,} | {predict['rows_per_second']:,} | "
            f"~{predict['extrapolated_100m_seconds']:,} s (extrapolated) | "
            f"{predict['load_before']} -> {predict['load_after']} |",
            "",
            f"Every row counted: {audit['every_row_counted']}; peak RSS <= 2 GiB: "
            f"{audit['within_2_gib']}; within 300 s: {audit['within_300_s']}. "
            f"Predict wrote {predict['output_shards']} shards, every row: "
            f"{predict['every_row_written']}.",
            "",
        ]
    adult = payload.get("adult")
    if adult:
        lines += [
            "| Adult train-in | wall s | CPU s | fit s | rows x epochs / s | test acc | S_B | "
            "|acc gap| | |S_B gap| | load |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, run in adult.items():
            lines.append(
                f"| {name} | {run['seconds']} | {run['cpu_seconds']} | {run['fit_seconds']:.1f} | "
                f"{run['rows_epochs_per_second']} | {run['test_accuracy']:.4f} | "
                f"{run['test_bias_score']:.4f} | {run.get('accuracy_gap', '-')} | "
                f"{run.get('bias_gap', '-')} | {run['load_before']} -> {run['load_after']} |"
            )
        lines.append("")
    probe = payload.get("probe")
    if probe:
        lines += [
            "| train_model alone on Adult | train s | rows x epochs / s | warm-up s (1 epoch, "
            "first DDP) | wall s (whole command) | CPU s (whole command) | load |",
            "|---|---|---|---|---|---|---|",
        ]
        for key in ("processes_1", "processes_2"):
            run = probe[key]
            lines.append(
                f"| {run['processes']} process(es), {run['epochs']} epochs | "
                f"{run['train_seconds']} | {run['rows_epochs_per_second']} | "
                f"{run['warm_up_seconds']} | {run['seconds']} | "
                f"{run['cpu_seconds']} | "
                f"{run['load_before']} -> {run['load_after']} |"
            )
        pair = probe["two_independent_single_processes_at_once"]
        lines += [
            "",
            f"Speed-up of 2 processes: {probe['speedup']}x; one gloo all-reduce of the "
            f"gradient: {probe['processes_2']['allreduce_ms']} ms. Two independent single "
            f"processes run at the same time: {pair['train_seconds']} s each (load "
            f"{pair['load_before']} -> {pair['load_after']}).",
            "",
        ]
    lines.append(record_line(payload["run"]))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of audit/predict")
    parser.add_argument("--workdir", default="/tmp/froc_scale_runs")
    parser.add_argument("--adult-epochs", type=int, default=20)
    parser.add_argument("--probe-epochs", type=int, default=3)
    parser.add_argument("--probe-steps", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-load", type=float, default=None)
    parser.add_argument("--wait-max", type=float, default=900.0)
    parser.add_argument("--skip-streamed", action="store_true")
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--skip-probe", action="store_true")
    parser.add_argument("--output", default=str(RESULTS / "scale_runs.json"))
    args = parser.parse_args()
    if args.probe_steps:
        return probe_steps(args.probe_steps)
    if Path(args.workdir).resolve().is_relative_to(repo_root()):
        parser.error("--workdir must be outside the repository (the data is gigabytes)")
    QUIET.update(max_load=args.max_load, wait_max=args.wait_max)
    record = start_record()
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "OMP_NUM_THREADS": "1"}
    payload: dict[str, Any] = {"settings": vars(args)}
    if not args.skip_streamed:
        payload["streamed"] = streamed_runs(args, env)
    if not args.skip_adult:
        payload["adult"] = adult_runs(args, env)
    if not args.skip_probe:
        payload["probe"] = probe_runs(args, env)
    payload["waited_for_quiet_seconds"] = QUIET["waited"]
    payload["run"] = finish_record(record)
    output = Path(args.output)
    output.write_text(json.dumps(payload, indent=2) + "\n")
    output.with_suffix(".md").write_text(_markdown(payload))
    print(_markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
