"""FRoC-PRE acceptance figures: ``froc preprocess`` on Adult, COMPAS and the bundled sample.

Every run is the ``froc`` command line as a subprocess (``python -m froc_cli preprocess ...
--json --quiet --manifest``), wall-clocked with its CPU seconds and peak RSS, so the figures
are what a user gets (interpreter start, reading, the rounds, the fresh targets, writing).
The 1-minute load average is recorded around every run: other processes on a shared machine
slow every wall-clock figure down.

1. Adult, protected sex (group Female), ``--delta-f 0.05 --delta-r 0.6``: rounds, flip and
   augmentation fractions, the fresh target (mlp:64, plain BCE on the output minus the
   held-out rows) on the held-out split: accuracy, S_B, white-box and transfer S_R in the
   valid, numeric-only and continuous attack spaces; the same target trained on the input
   (no edits) and on the output without the added rows (flips only: the no-augmentation
   target). Acceptance: S_B <= 0.05 with accuracy >= 0.80; within 60 s wall; peak RSS
   <= 2 GiB. Also the seconds of one influence round (flip influence over every training
   row, eq. 22 over a round's candidates) on a surrogate trained on Adult: below 0.5 s.
2. COMPAS (ProPublica filter, no leak columns), protected race (group African-American),
   ``--delta-f 0.05 --delta-r 0.5``: met, or exit 1 with the best round.
3. The user's line as written on a copy of sample_data/synthetic.csv (label ``approved``
   last, protected ``gender``): ``froc preprocess data.csv --protected gender --delta-f 0.05
   --delta-r 0.6``.

Writes bench/results/froc_pre.json and bench/results/froc_pre.md (with the run record of
``bench/_record.py``: code digest, command line, machine, load at start and end). Skips
cleanly (exit 0) when ../shared/data is absent.

    python bench/bench_froc_pre.py --threads 1 --extra-seeds 1 2   # about 15 minutes
    python bench/bench_froc_pre.py --threads 1 --balanced           # about 6 minutes
    python bench/bench_froc_pre.py --skip-compas --skip-sample
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record

from froc_cli.attacks import FeatureSpace, ValidRecordAttack
from froc_cli.core import (
    DataSpec,
    Objective,
    TrainConfig,
    environment_versions,
    read_table,
    write_text_atomic,
)
from froc_cli.data import carve_validation, encode_rows, fit_encoder, prepare_data, split_indices
from froc_cli.methods import (
    PreprocessConfig,
    compute_augment_influence,
    compute_flip_influence,
    measure_target,
)
from froc_cli.models import build_model, train_model

RESULTS = repo_root() / "bench" / "results"
ADULT = {"delta_f": 0.05, "delta_r": 0.6, "min_accuracy": 0.80, "wall_limit_s": 60.0}
COMPAS = {"delta_f": 0.05, "delta_r": 0.5}
RSS_LIMIT_MIB = 2048
INFLUENCE_LIMIT_S = 0.5
PAPER = {"flip_fraction": 0.063, "augment_fraction": 0.156, "seconds_per_round": 38.0}
PROTOTYPE = {
    "rounds": 232,
    "flip_fraction": 0.056,
    "augment_fraction": 0.69,
    "seconds": 188.0,
    "accuracy": 0.789,
    "bias_score": 0.043,
    "robustness_whitebox_numeric": 0.68,
}
METRICS = (
    ("accuracy", "acc"),
    ("bias_score", "S_B"),
    ("robustness_whitebox_valid", "S_R wb valid"),
    ("robustness_whitebox_numeric", "S_R wb numeric"),
    ("robustness_whitebox_continuous", "S_R wb cont."),
    ("robustness_transfer_valid", "S_R tr valid"),
    ("robustness_transfer_numeric", "S_R tr numeric"),
    ("robustness_transfer_continuous", "S_R tr cont."),
)


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


def run_preprocess(
    path: Path, args: list[str], workdir: Path, extra: list[str] | None = None
) -> dict[str, Any]:
    """One ``froc preprocess --json`` subprocess: JSON, manifest, exit code, time, RSS, load."""
    manifest = workdir / f"{path.stem}.manifest.json"
    command = [
        sys.executable,
        "-m",
        "froc_cli",
        "preprocess",
        str(path),
        *args,
        *(extra or []),
        "--manifest",
        str(manifest),
        "--allow-partial",
        "--json",
        "--quiet",
    ]
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"froc preprocess failed ({done.returncode}): {done.stderr.strip()}")
    payload = json.loads(done.stdout)
    return {
        "command": " ".join(["froc", *command[3:]]),
        "exit_code": done.returncode,
        "result": payload,
        "manifest": json.loads(manifest.read_text()),
        "wall_s": wall,
        "cpu_s": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024,  # the largest child so far, in KiB on Linux
        "load": [load_before, os.getloadavg()[0]],
    }


def comparison_target(
    run: dict[str, Any], frame_path: Path, fields: dict[str, Any], *, flips: bool
) -> dict[str, float]:
    """A fresh target like the run's, trained on the same non-held-out rows WITHOUT the added
    rows: with the run's flips (``flips``: the no-augmentation target) or as in the input
    (no edits), measured on the same held-out split."""
    settings = run["manifest"]["settings"]
    config = PreprocessConfig(
        data=DataSpec(
            protected=fields["protected"],
            label=fields["label"],
            positive=fields["positive"],
            protected_group=tuple(fields["protected_group"]),
        ),
        delta_f=settings["delta_f"],
        delta_r=settings["delta_r"],
        target_model=settings["target_model"],
        target_epochs=settings["target_epochs"],
        train=TrainConfig(lr=settings["lr"], seed=settings["seed"], device="cpu"),
    )
    source = read_table(frame_path)
    rows = read_table(run["result"]["output_file"]).iloc[: len(source)] if flips else source
    prepared = prepare_data(source, config.data, source="input")
    edited = prepare_data(rows, config.data, source="rows")
    rest, test_pos = split_indices(
        prepared.y, prepared.a, test_size=settings["test_size"], seed=config.train.seed
    )
    edit_pos, val_pos = carve_validation(
        prepared, rest, val_size=settings["val_size"], seed=config.train.seed
    )
    encoder = fit_encoder(prepared.frame.iloc[edit_pos], prepared.feature_columns)
    space = FeatureSpace.from_encoder(encoder)
    device = torch.device("cpu")
    train = encode_rows(edited, encoder, np.concatenate([edit_pos, val_pos]), device)
    test = encode_rows(prepared, encoder, test_pos, device)
    data = (
        train.x,
        torch.as_tensor(train.y_numpy.astype(np.float32)),
        torch.as_tensor(train.a_numpy.astype(np.float32)),
    )
    name = "flipped rows only" if flips else "the input"
    return measure_target(config, space, data, test, name).metrics


def influence_round(device_name: str = "cpu") -> Callable[[], dict[str, float]]:
    """The work of one influence round on Adult, set up and ready to time: flip influence
    (eqs. 17-21, last layer) over all training rows of a round late in a run (editable +
    validation + 10,000 added rows) and eq. 22 over 2,000 candidate adversarial rows, on an
    mlp:128 trained 200 epochs. Also used by bench_gpu.py on CUDA."""
    frame, fields = load_adult()
    prepared = prepare_data(frame, DataSpec(**fields), source="adult")
    rest, _ = split_indices(prepared.y, prepared.a, test_size=0.2, seed=0)
    edit_pos, val_pos = carve_validation(prepared, rest, val_size=0.2, seed=0)
    encoder = fit_encoder(prepared.frame.iloc[edit_pos], prepared.feature_columns)
    device = torch.device(device_name)
    space = FeatureSpace.from_encoder(encoder, device)
    edit = encode_rows(prepared, encoder, edit_pos, device)
    val = encode_rows(prepared, encoder, val_pos, device)
    model = build_model("mlp:128", encoder.n_features, seed=0, device=device)
    x = torch.cat([edit.x, val.x])
    y = torch.cat([edit.y, val.y])
    a = torch.as_tensor(
        np.concatenate([edit.a_numpy, val.a_numpy]).astype(np.float32), device=device
    )
    cfg = TrainConfig(model="mlp:128", epochs=200, seed=0, device=device_name)
    train_model(model, x, y, a, objective=Objective(), config=cfg, space=space)
    attack = ValidRecordAttack(model, space, eps=0.1, steps=10, cat_budget=1)
    adv = attack(edit.x[:10_000], edit.y[:10_000])
    x_all, y_all = torch.cat([x, adv]), torch.cat([y, edit.y[:10_000]])
    candidates = attack(edit.x[10_000:12_000], edit.y[10_000:12_000])
    a_val = torch.as_tensor(val.a_numpy.astype(np.float32), device=device)

    def work() -> dict[str, float]:
        flip = compute_flip_influence(model, x_all, y_all, val.x, val.y, a_val, params="last")
        compute_augment_influence(model, candidates, edit.y[10_000:12_000], params="last")
        return {
            "soft_bias_F": flip.fairness,
            "training_rows": float(x_all.shape[0]),
            "candidates": float(candidates.shape[0]),
        }

    return work


def influence_round_seconds(repeats: int = 3) -> dict[str, float]:
    """Seconds of one influence round on Adult on CPU (see :func:`influence_round`)."""
    work = influence_round()
    times, figures = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        figures = work()
        times.append(time.perf_counter() - started)
    return {
        "seconds_min": min(times),
        "seconds_median": float(np.median(times)),
        "training_rows": int(figures["training_rows"]),
        "candidates": int(figures["candidates"]),
        "torch_threads": torch.get_num_threads(),
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    result = run["result"]
    trajectory = result["trajectory"]
    per_round = [r["seconds"] for r in trajectory[1:]] or [0.0]
    chosen = next(r for r in trajectory if r["round"] == result["chosen_round"])
    return {
        "exit_code": run["exit_code"],
        "met": result["met"],
        "reason": result["reason"],
        "rounds": result["rounds_run"],
        "chosen_round": result["chosen_round"],
        "flipped": result["flipped"],
        "added": result["added"],
        "flip_fraction": result["flip_fraction"],
        "augment_fraction": result["augment_fraction"],
        "editable_rows": result["rows"]["editable"],
        "validation": {k: chosen[k] for k in ("bias_score", "robustness", "accuracy")},
        "target": result["target"]["metrics"],
        "notes": result["notes"],
        "checks": result["checks"],
        "seconds": result["seconds"],
        "seconds_per_round_mean": float(np.mean(per_round)),
        "seconds_per_round_max": float(np.max(per_round)),
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "peak_rss_mib": run["peak_rss_mib"],
        "load": run["load"],
        "command": run["command"],
    }


def seed_row(seed: int, s: dict[str, Any]) -> dict[str, Any]:
    """The key figures of one Adult run."""
    keys = ("accuracy", "bias_score", "robustness_whitebox_valid", "robustness_whitebox_numeric")
    return {
        "seed": seed,
        "exit_code": s["exit_code"],
        "rounds": s["rounds"],
        "flip_fraction": s["flip_fraction"],
        "augment_fraction": s["augment_fraction"],
        **{key: s["target"][key] for key in keys},
        "robustness_transfer_valid": s["target"]["robustness_transfer_valid"],
        "wall_s": s["wall_s"],
        "cpu_s": s["cpu_s"],
    }


def target_table(rows: list[tuple[str, dict[str, float] | None]]) -> list[str]:
    lines = [
        "| trained on | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for name, metrics in rows:
        if metrics is None:
            continue
        cells = [_fmt(metrics.get(key)) for key, _ in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def prototype_comparison(s: dict[str, Any]) -> list[str]:
    """The issue's naive prototype and the paper against this run (Adult)."""
    target = s["target"]
    rows = [
        ("rounds", PROTOTYPE["rounds"], s["rounds"], "n/a"),
        (
            "flipped (of the rows edited)",
            f"{PROTOTYPE['flip_fraction']:.1%}",
            f"{s['flip_fraction']:.1%}",
            f"{PAPER['flip_fraction']:.1%}",
        ),
        (
            "added",
            f"{PROTOTYPE['augment_fraction']:.0%}",
            f"{s['augment_fraction']:.1%}",
            f"{PAPER['augment_fraction']:.1%}",
        ),
        (
            "seconds",
            f"{PROTOTYPE['seconds']:.0f}",
            f"{s['wall_s']:.0f} wall, {s['cpu_s']:.0f} CPU",
            f"{PAPER['seconds_per_round']:.0f} per round",
        ),
        ("fresh mlp:64 accuracy", PROTOTYPE["accuracy"], f"{target['accuracy']:.4f}", "n/a"),
        ("fresh mlp:64 S_B", PROTOTYPE["bias_score"], f"{target['bias_score']:.4f}", "n/a"),
        (
            "fresh mlp:64 S_R white-box numeric-only",
            PROTOTYPE["robustness_whitebox_numeric"],
            f"{target['robustness_whitebox_numeric']:.4f}",
            "n/a",
        ),
        (
            "fresh mlp:64 S_R white-box valid (1 category switch)",
            "n/a",
            f"{target['robustness_whitebox_valid']:.4f}",
            "n/a",
        ),
    ]
    lines = ["| figure | naive prototype (issue) | this run | paper |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return [*lines, ""]


def render(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [
        "# FRoC-PRE benchmark (bench/bench_froc_pre.py)",
        "",
        f"Run {results['started']} on {env['cpus']} CPUs, torch threads {env['torch_threads']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "",
        "Threat model: L-inf eps 0.1 on [0,1]-scaled features, PGD 10 steps of eps/4 against "
        "the true labels. `valid` = real records (numeric moves within range on their grid, "
        "one category switch); `numeric` = valid records, no category switch; `continuous` = "
        "the encoded space. White-box attacks are crafted on the target; transfer attacks on "
        "an independently initialised twin trained on the same rows. The fresh target is a "
        "plain-BCE mlp:64 trained on the output minus the held-out 20% split, which is never "
        "edited nor used to choose.",
        "",
    ]
    for name, title in (
        ("adult", "Adult, sex=Female: --delta-f 0.05 --delta-r 0.6"),
        ("compas", "COMPAS, race=African-American: --delta-f 0.05 --delta-r 0.5"),
        ("sample", "sample_data/synthetic.csv, the user's line as written"),
    ):
        if name in results:
            lines += render_dataset(name, title, results[name])
    lines += render_comparisons(results)
    if "run" in results:
        lines += ["", record_line(results["run"]), ""]
    return "\n".join(lines)


def render_dataset(name: str, title: str, s: dict[str, Any]) -> list[str]:
    """The markdown section of one dataset's run."""
    lines = [f"## {title}", "", f"`{s['command']}`", ""]
    verdict = "met" if s["met"] else "NOT met"
    lines += [
        f"Exit {s['exit_code']} ({verdict}): {s['reason']}.",
        "",
        f"Rounds {s['rounds']} (data of round {s['chosen_round']}); flipped {s['flipped']} "
        f"({s['flip_fraction']:.1%} of {s['editable_rows']} editable rows), added "
        f"{s['added']} ({s['augment_fraction']:.1%}). Surrogate on validation: S_B "
        f"{s['validation']['bias_score']:.4f}, S_R {s['validation']['robustness']:.4f}, "
        f"accuracy {s['validation']['accuracy']:.4f}.",
        "",
        f"Wall {s['wall_s']:.1f} s (CPU {s['cpu_s']:.1f} s, load {s['load'][0]:.1f}-"
        f"{s['load'][1]:.1f}); rounds {s['seconds']['rounds']:.1f} s, "
        f"{s['seconds_per_round_mean']:.2f} s per round (max "
        f"{s['seconds_per_round_max']:.2f}); fresh targets {s['seconds']['target']:.1f} s; "
        f"peak RSS {s['peak_rss_mib']:.0f} MiB.",
        "",
    ]
    rows: list[tuple[str, dict[str, float] | None]] = [
        ("output (flips + added rows)", s["target"]),
        ("output without the added rows (flips only)", s.get("flips_only_target")),
        ("input (no edits)", s.get("input_target")),
    ]
    lines += [*target_table(rows), ""]
    lines += [f"Note: {note}." for note in s["notes"]]
    if s["notes"]:
        lines.append("")
    if name == "adult":
        lines += prototype_comparison(s)
    return lines


def render_comparisons(results: dict[str, Any]) -> list[str]:
    """The sections after the datasets: seeds, --addition-rank, influence speed, acceptance."""
    lines: list[str] = []
    if len(results.get("adult_seeds", [])) > 1:
        lines += [
            "## Adult, spread over seeds (split, initialisations and pools all change)",
            "",
            "| seed | exit | rounds | flipped | added | acc | S_B | S_R wb valid | "
            "S_R wb numeric | S_R tr valid | wall s | CPU s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["adult_seeds"]:
            lines.append(
                f"| {row['seed']} | {row['exit_code']} | {row['rounds']} | "
                f"{row['flip_fraction']:.1%} | {row['augment_fraction']:.1%} | "
                f"{row['accuracy']:.4f} | {row['bias_score']:.4f} | "
                f"{row['robustness_whitebox_valid']:.4f} | "
                f"{row['robustness_whitebox_numeric']:.4f} | "
                f"{row['robustness_transfer_valid']:.4f} | {row['wall_s']:.0f} | "
                f"{row['cpu_s']:.0f} |"
            )
        lines.append("")
    if "adult_balanced" in results:
        rows = [("accuracy (eq. 22, default)", results["adult_seeds"][0])]
        rows.append(("balanced (I_U and predicted change of F)", results["adult_balanced"]))
        lines += [
            "## Adult, --addition-rank: which adversarial rows to add",
            "",
            "| --addition-rank | exit | rounds | flipped | added | acc | S_B | S_R wb valid | "
            "S_R wb numeric | S_R tr valid | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, row in rows:
            lines.append(
                f"| {label} | {row['exit_code']} | {row['rounds']} | "
                f"{row['flip_fraction']:.1%} | {row['augment_fraction']:.1%} | "
                f"{row['accuracy']:.4f} | {row['bias_score']:.4f} | "
                f"{row['robustness_whitebox_valid']:.4f} | "
                f"{row['robustness_whitebox_numeric']:.4f} | "
                f"{row['robustness_transfer_valid']:.4f} | {row['wall_s']:.0f} |"
            )
        lines.append("")
    if "influence" in results:
        inf = results["influence"]
        lines += [
            "## Influence round speed (Adult)",
            "",
            f"Flip influence over {inf['training_rows']} training rows + eq. 22 over "
            f"{inf['candidates']} candidates, last-layer closed form, "
            f"{inf['torch_threads']} torch threads: {inf['seconds_min']:.3f} s (median "
            f"{inf['seconds_median']:.3f} s); limit {INFLUENCE_LIMIT_S} s; the published "
            f"reference code: {PAPER['seconds_per_round']:.0f} s per round.",
            "",
        ]
    if "acceptance" in results:
        lines += ["## Acceptance", ""]
        for check, passed in results["acceptance"].items():
            lines.append(f"- {check}: {'pass' if passed else 'FAIL'}")
        lines.append("")
    return lines


def parse_args() -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-compas", action="store_true")
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--balanced",
        action="store_true",
        help="one more Adult run with --addition-rank balanced (same seed), for the comparison",
    )
    parser.add_argument(
        "--extra-seeds",
        type=int,
        nargs="*",
        default=[],
        help="more Adult runs with these seeds (key figures only, for the spread)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of the runs (default: torch's)"
    )
    return parser.parse_args()


def run_all(args: argparse.Namespace, data_dir: Path, results: dict[str, Any]) -> None:
    """Every run the options ask for, their figures added to ``results``."""
    seed = ["--seed", str(args.seed)]
    if args.threads is not None:
        seed += ["--threads", str(args.threads)]
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="froc-pre-bench-") as tmp:
        workdir = Path(tmp)
        adult_path = workdir / "adult.csv"
        shutil.copyfile(data_dir / "adult.csv", adult_path)
        _, adult_fields = load_adult()
        print("bench_froc_pre: Adult ...", file=sys.stderr, flush=True)
        run = run_preprocess(
            adult_path,
            [*spec_args(adult_fields), "--delta-f", "0.05", "--delta-r", "0.6", *seed],
            workdir,
        )
        results["adult"] = summarise(run)
        results["adult"]["flips_only_target"] = comparison_target(
            run, adult_path, adult_fields, flips=True
        )
        results["adult"]["input_target"] = comparison_target(
            run, adult_path, adult_fields, flips=False
        )
        results["influence"] = influence_round_seconds()
        results["adult_seeds"] = [seed_row(args.seed, results["adult"])]
        for extra in args.extra_seeds:
            print(f"bench_froc_pre: Adult, seed {extra} ...", file=sys.stderr, flush=True)
            options = [*spec_args(adult_fields), "--delta-f", "0.05", "--delta-r", "0.6"]
            options += ["--seed", str(extra), *seed[2:]]
            results["adult_seeds"].append(
                seed_row(extra, summarise(run_preprocess(adult_path, options, workdir)))
            )
        if args.balanced:
            print(
                "bench_froc_pre: Adult, --addition-rank balanced ...", file=sys.stderr, flush=True
            )
            options = [*spec_args(adult_fields), "--delta-f", "0.05", "--delta-r", "0.6", *seed]
            balanced = run_preprocess(
                adult_path, [*options, "--addition-rank", "balanced"], workdir
            )
            results["adult_balanced"] = seed_row(args.seed, summarise(balanced))
        if not args.skip_compas:
            print("bench_froc_pre: COMPAS ...", file=sys.stderr, flush=True)
            frame, fields = load_compas()
            compas_path = workdir / "compas.csv"
            frame.to_csv(compas_path, index=False)
            run = run_preprocess(
                compas_path,
                [*spec_args(fields), "--delta-f", "0.05", "--delta-r", "0.5", *seed],
                workdir,
            )
            results["compas"] = summarise(run)
            results["compas"]["flips_only_target"] = comparison_target(
                run, compas_path, fields, flips=True
            )
            results["compas"]["input_target"] = comparison_target(
                run, compas_path, fields, flips=False
            )
        if not args.skip_sample:
            print("bench_froc_pre: sample ...", file=sys.stderr, flush=True)
            sample = workdir / "data.csv"
            shutil.copyfile(repo_root() / "sample_data" / "synthetic.csv", sample)
            run = run_preprocess(
                sample,
                ["--protected", "gender", "--delta-f", "0.05", "--delta-r", "0.6"],
                workdir,
                extra=seed[2:],
            )
            results["sample"] = summarise(run)


def acceptance(results: dict[str, Any]) -> dict[str, bool]:
    """The acceptance checks of the runs made."""
    adult = results["adult"]
    target = adult["target"]
    checks = {
        "Adult: constraints met (exit 0)": adult["exit_code"] == 0,
        "Adult: fresh target S_B <= 0.05 on the held-out split": target["bias_score"] <= 0.05,
        "Adult: fresh target accuracy >= 0.80": target["accuracy"] >= ADULT["min_accuracy"],
        "Adult: whole run within 60 s wall": adult["wall_s"] <= ADULT["wall_limit_s"],
        "Adult: peak RSS within 2 GiB": adult["peak_rss_mib"] <= RSS_LIMIT_MIB,
        "Adult: one influence round below 0.5 s": results["influence"]["seconds_min"]
        < INFLUENCE_LIMIT_S,
    }
    if "compas" in results:
        compas = results["compas"]
        checks["COMPAS: met, or exit 1 with the best round"] = compas["exit_code"] == 0 or (
            "best round" in compas["reason"] and compas["exit_code"] == 1
        )
    if "sample" in results:
        checks["sample: the user's line runs (exit 0 or 1)"] = results["sample"]["exit_code"] in (
            0,
            1,
        )
    return checks


def main() -> int:
    args = parse_args()
    data_dir = shared_data_dir()
    if data_dir is None:
        print("bench_froc_pre: ../shared/data not found; skipping (nothing measured)")
        return 0
    record = start_record()
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads or torch.get_num_threads(),
            "versions": environment_versions(),
        },
    }
    run_all(args, data_dir, results)
    results["acceptance"] = acceptance(results)
    results["run"] = finish_record(record)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(results, indent=2) + "\n", RESULTS / "froc_pre.json")
    write_text_atomic(render(results), RESULTS / "froc_pre.md")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
