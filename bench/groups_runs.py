"""Many groups, intersections and three criteria through the ``froc`` command line.

Every figure comes from a ``froc`` subprocess (``--json --threads 2``, default seed 0) on a
temporary CSV, wall-clocked from here, except the outside trainers of case 4, which are this
script's own code (scikit-learn; nothing imported from froc_cli). Cases:

1. ``adult-audit``: Adult ``audit --label income --positive '>50K'`` with ``--protected race``
   (parity, and ``--fairness odds``) and ``--protected sex,race``: every judged group's row
   (rows, base rate, favourable rate, TPR, FPR, accuracy, robust accuracy PGD), the groups
   left out as too small and froc's warning line, S_B per criterion.
2. ``adult-train-in``: Adult ``train-in --protected race --delta-f 0.1 --delta-r 0.6`` with
   ``--fairness parity`` and ``odds``, each with ``--fairness-surrogate smoothmax`` and
   ``deviation``, plus ``--protected sex,race --fairness parity`` (smoothmax): verdict, exit
   code, test accuracy, S_B and S_R PGD, majority floor, the chosen weights, wall seconds. The
   issue's acceptance per run: met with test accuracy >= 0.80, or an honest exit 1 (the
   closest point reported). Surrogates compared per criterion: at met targets the higher test
   accuracy trains better, else the smaller test violation (S_B over delta_f plus S_R under
   delta_r).
3. ``compas``: COMPAS (ProPublica filter, leak-free features; label ``two_year_recid``,
   favourable ``0`` as bench/preprocess_runs.py uses it), ``--protected race`` (6 values):
   ``audit --fairness odds`` (the groups too small on the 30% test split and the warning; the
   same audit with ``--quiet`` too, to record whether the warning survives it) and ``train-in
   --fairness odds --delta-f 0.1 --delta-r 0.5``.
4. ``adult-preprocess``: ``froc preprocess --protected sex,race --delta-f 0.1 --delta-r 0.6
   --allow-partial`` on the 70% of the label-stratified ``train_test_split(random_state=0)``
   of Adult (as bench/outside_trainer.py seed 0 builds it); froc's exit code and verdict are
   recorded. An independent outside trainer (logistic regression, ``max_iter=1000``; and
   ``HistGradientBoostingClassifier(random_state=0)``) on a one-hot + min-max encoding fitted
   on the file it trains (``sex``, ``race`` and the label are not features; unknown categories
   of the 30% encode as zeros) is fitted on (a) the unedited 70% and (b) the WHOLE froc output,
   and measured on the held-out 30%: accuracy and the largest favourable-rate (parity) gap over
   the sex x race groups with >= 30 rows in the 30% (computed here). Acceptance: the gap on the
   output below the input's, per trainer.

froc's own figures are also checked for consistency (S_B per criterion against the largest
gap of its per-group rates; groups, too-small groups and rows adding up; the warning naming
each group left out); any mismatch, traceback or unexpected exit code is listed under
``problems``.

Writes bench/results/groups_runs{TAG}.{json,md} with the run record (bench/_record.py). Skips
cleanly (exit 0) when ../shared/data is absent.

    python bench/groups_runs.py
    python bench/groups_runs.py --cases compas --tag _compas
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _datasets import load_adult, load_compas, repo_root, shared_data_dir
from _record import finish_record, record_line, start_record
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

CASES = ("adult-audit", "adult-train-in", "compas", "adult-preprocess")
ADULT_SPEC = ["--label", "income", "--positive", ">50K"]
COMPAS_SPEC = ["--label", "two_year_recid", "--positive", "0"]
ACC_MIN = 0.80
MIN_GROUP_ROWS = 30  # case 4: groups of the 30% judged here
TOL = 1e-9
RETRIES = 3  # froc hit an ImportError/SyntaxError (the package being edited): retry 60 s later

AUDIT_RUNS: dict[str, list[str]] = {
    "race-parity": ["--protected", "race"],
    "race-odds": ["--protected", "race", "--fairness", "odds"],
    "sex,race-parity": ["--protected", "sex,race"],
}
TRAIN_IN_RUNS: dict[str, list[str]] = {
    "race-parity-smoothmax": [
        "--protected", "race", "--fairness", "parity", "--fairness-surrogate", "smoothmax",
    ],
    "race-parity-deviation": [
        "--protected", "race", "--fairness", "parity", "--fairness-surrogate", "deviation",
    ],
    "race-odds-smoothmax": [
        "--protected", "race", "--fairness", "odds", "--fairness-surrogate", "smoothmax",
    ],
    "race-odds-deviation": [
        "--protected", "race", "--fairness", "odds", "--fairness-surrogate", "deviation",
    ],
    "sex,race-parity-smoothmax": [
        "--protected", "sex,race", "--fairness", "parity", "--fairness-surrogate", "smoothmax",
    ],
}  # fmt: skip
ADULT_TRAIN_IN_TARGETS = ["--delta-f", "0.1", "--delta-r", "0.6"]
COMPAS_TRAIN_IN = ["--protected", "race", "--fairness", "odds", "--delta-f", "0.1"]
COMPAS_TRAIN_IN += ["--delta-r", "0.5"]
PREPROCESS_ARGS = ["--protected", "sex,race", "--delta-f", "0.1", "--delta-r", "0.6"]
GROUP_COLUMNS = ("rows", "base_rate", "favourable_rate", "true_positive_rate")
GROUP_COLUMNS += ("false_positive_rate", "accuracy", "robust_accuracy_pgd")


# --------------------------------------------------------------------------------------------
# Running froc
# --------------------------------------------------------------------------------------------


def froc_command() -> list[str]:
    """The ``froc`` executable beside this interpreter, else ``python -m froc_cli``."""
    beside = Path(sys.executable).parent / "froc"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "froc_cli"]


def load() -> list[float]:
    """The load average (1, 5, 15 min), rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def run_froc(
    subcommand: str, data: Path, args: list[str], threads: int, workdir: Path
) -> dict[str, Any]:
    """One ``froc <subcommand> <data> ... --json --threads N`` run (under /usr/bin/time -v when
    present): exit code, wall seconds, peak RSS, the JSON, froc's warning lines, the stderr
    tail and the load before and after."""
    full_args = [subcommand, str(data), *args, "--json", "--threads", str(threads)]
    timing = workdir / "time.txt"
    timer = ["/usr/bin/time", "-v", "-o", str(timing)] if Path("/usr/bin/time").exists() else []
    shown = "froc " + shlex.join([subcommand, data.name, *full_args[2:]])
    print(f"  {shown}", flush=True)
    for attempt in range(1, RETRIES + 2):
        timing.unlink(missing_ok=True)
        load_before = load()
        started = time.perf_counter()
        done = subprocess.run(
            [*timer, *froc_command(), *full_args], capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        transient = re.search(r"\b(ImportError|ModuleNotFoundError|SyntaxError)\b", done.stderr)
        if not transient or attempt > RETRIES:
            break
        print("  froc hit an import/syntax error (package being edited?); retrying in 60 s")
        time.sleep(60)
    rss = None
    if timing.exists():
        match = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", timing.read_text())
        rss = int(match.group(1)) / 1024 if match else None
    stderr = [line for line in done.stderr.splitlines() if not line.startswith("\t")]
    out: dict[str, Any] = {
        "command": shown,
        "exit_code": done.returncode,
        "wall_seconds": round(wall, 2),
        "peak_rss_mib": None if rss is None else round(rss, 1),
        "attempts": attempt,
        "load_before": load_before,
        "load_after": load(),
        "warnings": [line for line in stderr if line.startswith("froc: warning:")],
        "stderr_tail": stderr[-8:],
        "traceback": "Traceback (most recent call last)" in done.stderr,
        "payload": None,
    }
    try:
        out["payload"] = json.loads(done.stdout)
    except ValueError as err:
        out["json_error"] = f"{err!r}; stdout head: {done.stdout[:300]!r}"
    status = f"exit {done.returncode}, {wall:.1f} s"
    if out["warnings"]:
        status += f"; {len(out['warnings'])} warning(s)"
    print(f"    {status}", flush=True)
    return out


# --------------------------------------------------------------------------------------------
# froc's figures and their consistency
# --------------------------------------------------------------------------------------------


def spread(values: list[float]) -> float | None:
    """max - min of the finite values, None when fewer than two."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return max(finite) - min(finite) if len(finite) >= 2 else None


def consistency(
    payload: dict[str, Any],
    metrics: dict[str, Any],
    groups: dict[str, Any],
    rows_evaluated: float | None,
    warnings: list[str],
) -> list[str]:
    """Mismatches between froc's summary figures and its own per-group rows."""
    problems: list[str] = []
    protected = payload.get("protected") or {}
    judged = list(protected.get("groups") or [])
    too_small = dict(protected.get("too_small") or {})
    if sorted(groups) != sorted(judged):
        problems.append(f"groups {sorted(groups)} != protected.groups {sorted(judged)}")
    if set(too_small) & set(groups):
        problems.append(f"too-small groups also judged: {sorted(set(too_small) & set(groups))}")
    small = [g for g, r in groups.items() if r.get("rows", 0) < MIN_GROUP_ROWS]
    if small:
        problems.append(f"judged groups below 30 rows: {small}")
    if rows_evaluated is not None:
        total = sum(r.get("rows", 0) for r in groups.values()) + sum(too_small.values())
        if abs(total - rows_evaluated) > 0.5:
            problems.append(f"judged + too-small rows {total} != evaluated rows {rows_evaluated}")
    rows = list(groups.values())
    parity = spread([r.get("favourable_rate") for r in rows])
    opportunity = spread([r.get("true_positive_rate") for r in rows])
    fpr = spread([r.get("false_positive_rate") for r in rows])
    odds = None if opportunity is None or fpr is None else max(opportunity, fpr)
    expected = {
        "parity_difference": parity,
        "opportunity_difference": opportunity,
        "odds_difference": odds,
    }
    for key, value in expected.items():
        got = metrics.get(key)
        if value is None or got is None:
            continue
        if abs(got - value) > TOL:
            problems.append(f"{key} {got:.6f} != largest gap of the group rates {value:.6f}")
    criterion = protected.get("fairness")
    key = f"{criterion}_difference"
    if key in metrics and abs(metrics["bias_score"] - metrics[key]) > TOL:
        problems.append(f"bias_score {metrics['bias_score']:.6f} != {key} {metrics[key]:.6f}")
    if too_small:
        text = " ".join(warnings)
        if not warnings:
            problems.append(f"too-small groups {sorted(too_small)} but no 'froc: warning:' line")
        missing = [g for g in too_small if repr(g) not in text and g not in text]
        if warnings and missing:
            problems.append(f"warning does not name {missing}")
    elif warnings:
        problems.append(f"warning without too-small groups: {warnings}")
    return problems


def run_problems(run: dict[str, Any], allowed_exits: tuple[int, ...]) -> list[str]:
    """Crashes, tracebacks, missing JSON or unexpected exit codes of one run."""
    problems = []
    if run["exit_code"] not in allowed_exits:
        problems.append(f"exit {run['exit_code']} (expected one of {allowed_exits})")
    if run["traceback"]:
        problems.append("traceback on stderr")
    if run["payload"] is None:
        problems.append(f"no JSON on stdout ({run.get('json_error')})")
    elif run["payload"].get("exit_code") not in (None, run["exit_code"]):
        problems.append(f"JSON exit_code {run['payload']['exit_code']} != {run['exit_code']}")
    return problems


def audit_figures(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one audit run that the report needs, and its problems."""
    problems = run_problems(run, (0,))
    payload = run.pop("payload")
    out = {k: v for k, v in run.items()}
    if payload is None:
        out["problems"] = problems
        return out
    metrics = payload["metrics"]
    out.update(
        protected=payload.get("protected"),
        rows=payload.get("rows"),
        metrics={
            k: metrics.get(k)
            for k in (
                "accuracy",
                "majority_floor",
                "bias_score",
                "parity_difference",
                "opportunity_difference",
                "odds_difference",
                "robustness_pgd",
                "robustness_fgsm",
            )
        },
        groups=payload.get("groups", {}),
        froc_seconds=payload.get("seconds"),
    )
    problems += consistency(
        payload, metrics, out["groups"], (payload.get("rows") or {}).get("test"), run["warnings"]
    )
    out["problems"] = problems
    return out


def violation(test: dict[str, Any], delta_f: float, delta_r: float) -> float:
    """Test S_B over delta_f plus test S_R PGD under delta_r (0: both thresholds met)."""
    return max(0.0, test["bias_score"] - delta_f) + max(0.0, delta_r - test["robustness_pgd"])


def train_in_figures(run: dict[str, Any], delta_f: float, delta_r: float) -> dict[str, Any]:
    """The figures of one train-in run, the issue's acceptance and its problems."""
    problems = run_problems(run, (0, 1))
    payload = run.pop("payload")
    out = {k: v for k, v in run.items()}
    if payload is None:
        out["problems"] = problems
        out["acceptance"] = {"holds": False, "why": "no JSON"}
        return out
    keys = (
        "accuracy",
        "majority_floor",
        "bias_score",
        "parity_difference",
        "opportunity_difference",
        "odds_difference",
        "robustness_pgd",
        "rarer_decision_share",
    )
    test = payload["test"]["metrics"]
    validation = payload.get("validation", {}).get("metrics", {})
    trials = payload.get("trials") or []
    out.update(
        verdict=payload.get("verdict"),
        passed=payload.get("passed"),
        mode=payload.get("mode"),
        lambda_f=payload.get("lambda_f"),
        lambda_r=payload.get("lambda_r"),
        protected=payload.get("protected"),
        rows=payload.get("rows"),
        validation_targets=payload.get("validation_targets"),
        test={k: test.get(k) for k in keys},
        validation={k: validation.get(k) for k in keys},
        test_near_constant=payload["test"].get("near_constant"),
        test_gate=(payload.get("gates") or {}).get("test", {}).get("passed"),
        groups=payload["test"].get("groups", {}),
        trials=len(trials),
        chosen_trial=payload.get("chosen_trial"),
        path=[
            {
                "lambda_f": t.get("lambda_f"),
                "lambda_r": t.get("lambda_r"),
                "accuracy": (t.get("score") or {}).get("accuracy"),
                "bias_score": (t.get("score") or {}).get("bias_score"),
                "robustness_pgd": (t.get("score") or {}).get("robustness_pgd"),
                "seconds": t.get("seconds"),
            }
            for t in trials
        ],
        froc_seconds=payload.get("seconds"),
    )
    out["test_violation"] = violation(out["test"], delta_f, delta_r)
    out["test_meets_thresholds"] = out["test_violation"] == 0.0
    problems += consistency(
        payload, test, out["groups"], (payload.get("rows") or {}).get("test"), run["warnings"]
    )
    if run["exit_code"] == 0 and payload.get("verdict") in ("infeasible", "degenerate"):
        problems.append(f"exit 0 with verdict {payload.get('verdict')}")
    if run["exit_code"] == 1 and payload.get("passed"):
        problems.append("exit 1 with passed true")
    if run["exit_code"] == 0:
        ok = test["accuracy"] >= ACC_MIN
        why = f"met, test accuracy {test['accuracy']:.4f} {'>=' if ok else '<'} {ACC_MIN}"
    elif run["exit_code"] == 1:
        ok = out["chosen_trial"] is not None and out["lambda_f"] is not None
        why = f"honest exit 1 ({payload.get('verdict')}), closest point reported: {ok}"
    else:
        ok, why = False, f"exit {run['exit_code']}"
    out["acceptance"] = {"holds": ok, "why": why}
    out["problems"] = problems
    return out


def compare_surrogates(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per criterion: which F surrogate trains better (met: higher test accuracy; else the
    smaller test violation; froc's own verdict first)."""
    verdicts = []
    for criterion in ("parity", "odds"):
        pair = {s: runs.get(f"race-{criterion}-{s}") for s in ("smoothmax", "deviation")}
        if any(r is None or "test" not in r for r in pair.values()):
            continue

        def key(r: dict[str, Any]) -> tuple[int, float, float]:
            met = r["exit_code"] == 0
            return (int(met), -r["test_violation"], r["test"]["accuracy"])

        scores = {s: key(r) for s, r in pair.items()}
        if scores["smoothmax"] == scores["deviation"]:
            better = "tie"
        else:
            better = max(scores, key=lambda s: scores[s])
        verdicts.append(
            {
                "criterion": criterion,
                "better": better,
                "figures": {
                    s: {
                        "exit_code": r["exit_code"],
                        "verdict": r["verdict"],
                        "test_accuracy": r["test"]["accuracy"],
                        "test_bias_score": r["test"]["bias_score"],
                        "test_robustness_pgd": r["test"]["robustness_pgd"],
                        "test_violation": r["test_violation"],
                        "wall_seconds": r["wall_seconds"],
                    }
                    for s, r in pair.items()
                },
                "rule": "froc met first, then the smaller test violation, then higher accuracy",
            }
        )
    return verdicts


# --------------------------------------------------------------------------------------------
# Case 4: an independent outside trainer (nothing from froc_cli)
# --------------------------------------------------------------------------------------------


class Encoder:
    """One-hot (non-numeric columns) + min-max (numeric) fitted on one training file."""

    def __init__(self, frame: pd.DataFrame, exclude: tuple[str, ...]) -> None:
        feats = [c for c in frame.columns if c not in exclude]
        self.numeric = [c for c in feats if pd.api.types.is_numeric_dtype(frame[c])]
        self.categorical = [c for c in feats if c not in self.numeric]
        values = frame[self.numeric].to_numpy(np.float64)
        self.lo = values.min(axis=0)
        hi = values.max(axis=0)
        self.span = np.where(hi > self.lo, hi - self.lo, 1.0)
        self.categories = {c: sorted(frame[c].astype(str).unique()) for c in self.categorical}

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame``: numeric scaled (not clipped), unknown categories all zeros."""
        blocks = [(frame[self.numeric].to_numpy(np.float64) - self.lo) / self.span]
        for col in self.categorical:
            codes = pd.Index(self.categories[col]).get_indexer(frame[col].astype(str))
            block = np.zeros((len(frame), len(self.categories[col])))
            known = codes >= 0
            block[np.nonzero(known)[0], codes[known]] = 1.0
            blocks.append(block)
        return np.concatenate(blocks, axis=1).astype(np.float32)


def favourable(frame: pd.DataFrame) -> np.ndarray:
    """1 where the Adult label is >50K."""
    return (frame["income"].astype(str).str.strip() == ">50K").to_numpy(np.int64)


def group_gaps(pred: np.ndarray, y: np.ndarray, keys: pd.Series, min_rows: int) -> dict[str, Any]:
    """Per group (>= min_rows rows) favourable rate, TPR, FPR; the largest parity gap (and the
    pair), the largest TPR/FPR gap (equalised odds), and the groups left out."""
    rates: dict[str, dict[str, float]] = {}
    left_out: dict[str, int] = {}
    values = keys.to_numpy()
    for key in sorted(set(values)):
        rows = np.nonzero(values == key)[0]
        if len(rows) < min_rows:
            left_out[str(key)] = len(rows)
            continue
        p, t = pred[rows], y[rows]
        rates[str(key)] = {
            "rows": len(rows),
            "base_rate": float(t.mean()),
            "favourable_rate": float(p.mean()),
            "true_positive_rate": float(p[t == 1].mean()) if (t == 1).any() else float("nan"),
            "false_positive_rate": float(p[t == 0].mean()) if (t == 0).any() else float("nan"),
        }
    fav = {g: r["favourable_rate"] for g, r in rates.items()}
    low, high = min(fav, key=fav.__getitem__), max(fav, key=fav.__getitem__)
    tpr = spread([r["true_positive_rate"] for r in rates.values()])
    fpr = spread([r["false_positive_rate"] for r in rates.values()])
    return {
        "parity_gap": fav[high] - fav[low],
        "parity_pair": [low, high],
        "odds_gap": None if tpr is None or fpr is None else max(tpr, fpr),
        "groups": rates,
        "left_out": left_out,
    }


def outside_trainers(frame: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """LR and HGB fitted on the whole ``frame`` (own encoding), measured on ``test``."""
    exclude = ("income", "sex", "race")
    enc = Encoder(frame, exclude)
    x, y = enc.transform(frame), favourable(frame)
    x_test, y_test = enc.transform(test), favourable(test)
    keys = {
        "sex,race": test["sex"].astype(str) + "|" + test["race"].astype(str),
        "race": test["race"].astype(str),
        "sex": test["sex"].astype(str),
    }
    out: dict[str, Any] = {}
    models = {
        "lr": lambda: LogisticRegression(max_iter=1000),
        "hgb": lambda: HistGradientBoostingClassifier(random_state=0),
    }
    for name, make in models.items():
        started = time.perf_counter()
        model = make().fit(x, y)
        pred = model.predict(x_test).astype(np.int64)
        out[name] = {
            "accuracy": float((pred == y_test).mean()),
            "majority_floor": float(max(y_test.mean(), 1 - y_test.mean())),
            "favourable_share": float(pred.mean()),
            "gaps": {k: group_gaps(pred, y_test, v, MIN_GROUP_ROWS) for k, v in keys.items()},
            "train_seconds": round(time.perf_counter() - started, 2),
        }
        gap = out[name]["gaps"]["sex,race"]
        print(
            f"    {name}: acc {out[name]['accuracy']:.4f}, largest sex x race parity gap "
            f"{gap['parity_gap']:.4f} ({gap['parity_pair'][0]} vs {gap['parity_pair'][1]})",
            flush=True,
        )
    labels_gap = group_gaps(y_test, y_test, keys["sex,race"], MIN_GROUP_ROWS)
    out["label_base_rates"] = {g: r["base_rate"] for g, r in labels_gap["groups"].items()} | {
        "largest_gap": labels_gap["parity_gap"]
    }
    return out


def file_facts(train: pd.DataFrame, edited: pd.DataFrame) -> dict[str, Any]:
    """Rows and label shares of the froc output against its input, measured here."""
    n = len(train)
    head = edited.iloc[:n].reset_index(drop=True)
    flipped = int((favourable(head) != favourable(train)).sum())
    return {
        "rows_in": n,
        "rows_out": len(edited),
        "added_share": (len(edited) - n) / n,
        "flipped_rows_in_first_n": flipped,
        "flipped_share": flipped / n,
        "favourable_share_in": float(favourable(train).mean()),
        "favourable_share_out": float(favourable(edited).mean()),
    }


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def case_adult_audit(threads: int, workdir: Path) -> dict[str, Any]:
    """Case 1."""
    frame, _ = load_adult("race")
    data = workdir / "adult.csv"
    frame.to_csv(data, index=False)
    runs = {}
    for name, extra in AUDIT_RUNS.items():
        runs[name] = audit_figures(run_froc("audit", data, [*ADULT_SPEC, *extra], threads, workdir))
    return {"data": "adult.csv (45,222 rows)", "runs": runs}


def case_adult_train_in(threads: int, workdir: Path) -> dict[str, Any]:
    """Case 2."""
    frame, _ = load_adult("race")
    data = workdir / "adult.csv"
    frame.to_csv(data, index=False)
    runs = {}
    for name, extra in TRAIN_IN_RUNS.items():
        args = [*ADULT_SPEC, *extra, *ADULT_TRAIN_IN_TARGETS]
        runs[name] = train_in_figures(run_froc("train-in", data, args, threads, workdir), 0.1, 0.6)
    return {
        "data": "adult.csv (45,222 rows)",
        "thresholds": {"delta_f": 0.1, "delta_r": 0.6},
        "runs": runs,
        "surrogates": compare_surrogates(runs),
    }


def case_compas(threads: int, workdir: Path) -> dict[str, Any]:
    """Case 3."""
    frame, _ = load_compas("race")
    data = workdir / "compas.csv"
    frame.to_csv(data, index=False)
    audit_args = [*COMPAS_SPEC, "--protected", "race", "--fairness", "odds"]
    audit = audit_figures(run_froc("audit", data, audit_args, threads, workdir))
    quiet = run_froc("audit", data, [*audit_args, "--quiet"], threads, workdir)
    quiet_payload = quiet.pop("payload") or {}
    quiet_metrics = quiet_payload.get("metrics") or {}
    same = bool(quiet_metrics) and all(
        quiet_metrics.get(k) == v for k, v in audit.get("metrics", {}).items()
    )
    same = same and quiet_payload.get("groups") == audit.get("groups")
    quiet_note = {
        "command": quiet["command"],
        "exit_code": quiet["exit_code"],
        "wall_seconds": quiet["wall_seconds"],
        "warnings": quiet["warnings"],
        "too_small_in_json": (quiet_payload.get("protected") or {}).get("too_small"),
        "same_figures": same,
    }
    train = train_in_figures(
        run_froc("train-in", data, [*COMPAS_SPEC, *COMPAS_TRAIN_IN], threads, workdir), 0.1, 0.5
    )
    return {
        "data": "COMPAS, ProPublica filter (6,172 rows), race 6 values",
        "race_counts": frame["race"].value_counts().to_dict(),
        "audit": audit,
        "audit_quiet": quiet_note,
        "train_in": train,
        "thresholds": {"delta_f": 0.1, "delta_r": 0.5},
    }


def case_adult_preprocess(threads: int, workdir: Path) -> dict[str, Any]:
    """Case 4."""
    frame, _ = load_adult("race")
    train, test = train_test_split(
        frame, test_size=0.3, random_state=0, stratify=frame["income"], shuffle=True
    )
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    data = workdir / "adult70.csv"
    train.to_csv(data, index=False)
    out_csv, manifest = workdir / "adult70.froc.csv", workdir / "adult70.manifest.json"
    args = [*ADULT_SPEC, *PREPROCESS_ARGS, "--allow-partial", "-o", str(out_csv)]
    args += ["--manifest", str(manifest)]
    run = run_froc("preprocess", data, args, threads, workdir)
    run["command"] = run["command"].replace(str(out_csv), out_csv.name)
    run["command"] = run["command"].replace(str(manifest), manifest.name)
    problems = run_problems(run, (0, 1))
    payload = run.pop("payload") or {}
    froc = {
        **run,
        "met": payload.get("met"),
        "reason": payload.get("reason"),
        "flip_fraction": payload.get("flip_fraction"),
        "augment_fraction": payload.get("augment_fraction"),
        "protected": payload.get("protected"),
        "targets": payload.get("targets"),
        "verdicts": payload.get("verdicts"),
        "froc_seconds": payload.get("seconds"),
        "output_written": out_csv.exists(),
    }
    if payload and (run["exit_code"] == 0) != bool(payload.get("met")):
        problems.append(f"exit {run['exit_code']} but met {payload.get('met')}")
    print("  outside trainers on the unedited 70%:", flush=True)
    files: dict[str, Any] = {"input": {"rows": len(train), **outside_trainers(train, test)}}
    if out_csv.exists():
        edited = pd.read_csv(out_csv)
        edited = edited[[c for c in train.columns if c in edited.columns]]
        froc["file"] = file_facts(train, edited)
        print("  outside trainers on the whole froc output:", flush=True)
        files["froc"] = {"rows": len(edited), **outside_trainers(edited, test)}
    else:
        problems.append("no output file although --allow-partial was given")
    acceptance = {}
    if "froc" in files:
        for name in ("lr", "hgb"):
            before = files["input"][name]["gaps"]["sex,race"]["parity_gap"]
            after = files["froc"][name]["gaps"]["sex,race"]["parity_gap"]
            acceptance[name] = {"input_gap": before, "output_gap": after, "holds": after < before}
    froc["problems"] = problems
    return {
        "data": "adult.csv: 70% of train_test_split(test_size=0.3, random_state=0, "
        "stratify=income)",
        "rows_train": len(train),
        "rows_test": len(test),
        "min_group_rows": MIN_GROUP_ROWS,
        "froc": froc,
        "files": files,
        "acceptance": acceptance,
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def f4(value: Any) -> str:
    """A figure to 4 decimals, '-' for None/NaN."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def group_table(groups: dict[str, dict[str, Any]]) -> list[str]:
    """One row per judged group."""
    lines = [
        "| group | rows | base rate | favourable rate | TPR | FPR | accuracy | robust acc PGD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in groups.items():
        cells = [f"{r.get('rows', 0):.0f}", *(f4(r.get(k)) for k in GROUP_COLUMNS[1:])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def too_small_text(protected: dict[str, Any] | None) -> str:
    """The groups left out, as 'name (rows)'."""
    small = (protected or {}).get("too_small") or {}
    return ", ".join(f"{g} ({n})" for g, n in small.items()) or "none"


def md_audit(lines: list[str], name: str, r: dict[str, Any]) -> None:
    """One audit run: summary, groups, warnings."""
    m = r.get("metrics", {})
    crit = (r.get("protected") or {}).get("fairness", "?")
    lines += [
        f"### audit {name}",
        "",
        f"`{r['command']}`: exit {r['exit_code']}, {r['wall_seconds']:.1f} s wall, "
        f"load {r['load_before'][0]} -> {r['load_after'][0]}.",
        "",
        f"Accuracy {f4(m.get('accuracy'))} (floor {f4(m.get('majority_floor'))}); S_B "
        f"({crit}) **{f4(m.get('bias_score'))}**; parity {f4(m.get('parity_difference'))}, "
        f"opportunity {f4(m.get('opportunity_difference'))}, odds "
        f"{f4(m.get('odds_difference'))}; S_R PGD {f4(m.get('robustness_pgd'))}. Too small: "
        f"{too_small_text(r.get('protected'))}.",
        "",
        *group_table(r.get("groups", {})),
        "",
    ]
    for w in r.get("warnings", []):
        lines.append(f"stderr: `{w}`")
    if r.get("warnings"):
        lines.append("")
    if r.get("problems"):
        lines += [f"PROBLEMS: {'; '.join(r['problems'])}", ""]


def train_in_row(name: str, r: dict[str, Any]) -> str:
    """One train-in run as a table row."""
    t = r.get("test", {})
    acc = r.get("acceptance", {})
    return (
        f"| {name} | {r['exit_code']} | {r.get('verdict')} | {f4(t.get('accuracy'))} | "
        f"{f4(t.get('majority_floor'))} | {f4(t.get('bias_score'))} | "
        f"{f4(t.get('robustness_pgd'))} | {f4(r.get('test_violation'))} | "
        f"{r.get('lambda_f')} / {r.get('lambda_r')} | {r.get('trials')} | "
        f"{r['wall_seconds']:.0f} | {'yes' if acc.get('holds') else 'NO'} |"
    )


TRAIN_IN_HEAD = [
    "| run | exit | verdict | test acc | floor | test S_B | test S_R PGD | test violation "
    "| lambda_f / lambda_r | fits | wall s | acceptance |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def markdown(payload: dict[str, Any]) -> str:
    """The results as a readable markdown page."""
    lines = [
        "# Many groups, intersections and criteria (bench/groups_runs.py)",
        "",
        record_line(payload["run"]),
        "",
        f"froc subprocesses with `--json --threads {payload['threads']}`, seed 0; wall seconds "
        "measured here; load = 1-minute load average before -> after each run.",
        "",
    ]
    cases = payload["cases"]
    if "adult-audit" in cases:
        lines += ["## 1. Adult audit (`--label income --positive '>50K'`)", ""]
        lines += [
            "| run | exit | wall s | acc | criterion | S_B | parity | opportunity | odds | "
            "S_R PGD | too small |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in cases["adult-audit"]["runs"].items():
            m = r.get("metrics", {})
            lines.append(
                f"| {name} | {r['exit_code']} | {r['wall_seconds']:.1f} | "
                f"{f4(m.get('accuracy'))} | {(r.get('protected') or {}).get('fairness')} | "
                f"{f4(m.get('bias_score'))} | {f4(m.get('parity_difference'))} | "
                f"{f4(m.get('opportunity_difference'))} | {f4(m.get('odds_difference'))} | "
                f"{f4(m.get('robustness_pgd'))} | {too_small_text(r.get('protected'))} |"
            )
        lines.append("")
        for name, r in cases["adult-audit"]["runs"].items():
            md_audit(lines, name, r)
    if "adult-train-in" in cases:
        c = cases["adult-train-in"]
        lines += [
            "## 2. Adult train-in (`--delta-f 0.1 --delta-r 0.6`)",
            "",
            "Acceptance: exit 0 with test accuracy >= 0.80, or an honest exit 1 with the "
            "closest point. Test violation = max(0, S_B - 0.1) + max(0, 0.6 - S_R PGD).",
            "",
            *TRAIN_IN_HEAD,
        ]
        lines += [train_in_row(n, r) for n, r in c["runs"].items()]
        lines += ["", "Surrogate comparison (`--protected race`):", ""]
        for s in c["surrogates"]:
            fig = s["figures"]
            lines.append(
                f"- {s['criterion']}: **{s['better']}** trains better; smoothmax exit "
                f"{fig['smoothmax']['exit_code']}, acc {f4(fig['smoothmax']['test_accuracy'])}, "
                f"violation {f4(fig['smoothmax']['test_violation'])}; deviation exit "
                f"{fig['deviation']['exit_code']}, acc {f4(fig['deviation']['test_accuracy'])}, "
                f"violation {f4(fig['deviation']['test_violation'])} ({s['rule']})."
            )
        lines.append("")
        for name, r in c["runs"].items():
            lines += [f"### train-in {name}: test groups", "", f"`{r['command']}`", ""]
            lines += [*group_table(r.get("groups", {})), ""]
            lines += [f"stderr: `{w}`" for w in r.get("warnings", [])]
            if r.get("problems"):
                lines += [f"PROBLEMS: {'; '.join(r['problems'])}", ""]
    if "compas" in cases:
        c = cases["compas"]
        q = c["audit_quiet"]
        lines += [
            "## 3. COMPAS (`--label two_year_recid --positive 0 --protected race`)",
            "",
            f"race counts (6,172 rows): {c['race_counts']}.",
            "",
        ]
        md_audit(lines, "race-odds", c["audit"])
        lines += [
            f"With `--quiet`: exit {q['exit_code']}, warning lines {q['warnings'] or 'none'}; "
            f"JSON too_small {q['too_small_in_json']}; same figures {q['same_figures']}.",
            "",
            "### train-in (`--fairness odds --delta-f 0.1 --delta-r 0.5`)",
            "",
            *TRAIN_IN_HEAD,
            train_in_row("race-odds-smoothmax", c["train_in"]),
            "",
            *group_table(c["train_in"].get("groups", {})),
            "",
        ]
        lines += [f"stderr: `{w}`" for w in c["train_in"].get("warnings", [])]
        if c["train_in"].get("problems"):
            lines += ["", f"PROBLEMS: {'; '.join(c['train_in']['problems'])}"]
        lines.append("")
    if "adult-preprocess" in cases:
        c = cases["adult-preprocess"]
        fr = c["froc"]
        ff = fr.get("file", {})
        lines += [
            "## 4. Adult preprocess, `--protected sex,race --delta-f 0.1 --delta-r 0.6`",
            "",
            f"froc saw the 70% ({c['rows_train']} rows); the 30% ({c['rows_test']} rows) is "
            f"held out. `{fr['command']}`: exit {fr['exit_code']}, met {fr.get('met')}, "
            f"{fr['wall_seconds']:.0f} s wall, peak RSS {f4(fr.get('peak_rss_mib'))} MiB; "
            f"{fr.get('reason')}. Flip fraction {f4(fr.get('flip_fraction'))}, augment "
            f"fraction {f4(fr.get('augment_fraction'))}; output {ff.get('rows_out')} rows, "
            f"favourable share {f4(ff.get('favourable_share_in'))} -> "
            f"{f4(ff.get('favourable_share_out'))}. Too small (froc): "
            f"{too_small_text(fr.get('protected'))}.",
            "",
        ]
        if fr.get("verdicts"):
            lines += ["froc's panel (cross-fitted estimate):", ""]
            for v in fr["verdicts"]:
                lines.append(
                    f"- {v.get('model')}: S_B {f4(v.get('bias_score'))}, "
                    f"{v.get('robustness_key')} {f4(v.get('robustness'))}, met {v.get('met')}"
                )
            lines.append("")
        lines += [
            "Outside trainers (this script's code: one-hot + min-max fitted on the trained "
            "file, sex/race/label not features), measured on the 30%; parity gap = largest "
            f"favourable-rate gap over the groups with >= {c['min_group_rows']} rows:",
            "",
            "| file | trainer | acc | floor | sex x race parity gap (pair) | sex x race odds gap "
            "| race parity gap | sex parity gap |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for fname, fres in c["files"].items():
            for t in ("lr", "hgb"):
                r = fres[t]
                g = r["gaps"]
                pair = " vs ".join(g["sex,race"]["parity_pair"])
                lines.append(
                    f"| {fname} | {t} | {f4(r['accuracy'])} | {f4(r['majority_floor'])} | "
                    f"{f4(g['sex,race']['parity_gap'])} ({pair}"
                    f") | {f4(g['sex,race']['odds_gap'])} | {f4(g['race']['parity_gap'])} | "
                    f"{f4(g['sex']['parity_gap'])} |"
                )
        left = c["files"]["input"]["lr"]["gaps"]["sex,race"]["left_out"]
        lines += ["", f"sex x race groups under 30 rows in the 30% (left out): {left or 'none'}."]
        lines += ["", "Favourable rate per sex x race group on the 30%:", ""]
        cols = [(f, t) for f in c["files"] for t in ("lr", "hgb")]
        lines.append(
            "| group | rows | base rate | " + " | ".join(f"{f} {t}" for f, t in cols) + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(cols))
        groups = c["files"]["input"]["lr"]["gaps"]["sex,race"]["groups"]
        for gname, gr in groups.items():
            cells = [
                f4(c["files"][f][t]["gaps"]["sex,race"]["groups"][gname]["favourable_rate"])
                for f, t in cols
            ]
            lines.append(
                f"| {gname} | {gr['rows']} | {f4(gr['base_rate'])} | " + " | ".join(cells) + " |"
            )
        lines += ["", "Acceptance (gap on the output below the input's):", ""]
        for t, a in c["acceptance"].items():
            lines.append(
                f"- {t}: {f4(a['input_gap'])} -> {f4(a['output_gap'])}: "
                f"{'holds' if a['holds'] else 'FAILS'}"
            )
        if fr.get("problems"):
            lines += ["", f"PROBLEMS: {'; '.join(fr['problems'])}"]
        lines.append("")
    problems = payload["problems"]
    lines += ["## Problems found", ""]
    lines += [f"- {p}" for p in problems] or ["none"]
    return "\n".join(lines) + "\n"


def collect_problems(cases: dict[str, Any]) -> list[str]:
    """Every problem of every run, prefixed by where it occurred."""
    found = []
    for name, r in cases.get("adult-audit", {}).get("runs", {}).items():
        found += [f"adult audit {name}: {p}" for p in r.get("problems", [])]
    for name, r in cases.get("adult-train-in", {}).get("runs", {}).items():
        found += [f"adult train-in {name}: {p}" for p in r.get("problems", [])]
    if "compas" in cases:
        found += [f"compas audit: {p}" for p in cases["compas"]["audit"].get("problems", [])]
        found += [f"compas train-in: {p}" for p in cases["compas"]["train_in"].get("problems", [])]
    if "adult-preprocess" in cases:
        found += [f"adult preprocess: {p}" for p in cases["adult-preprocess"]["froc"]["problems"]]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--out", type=Path, help="result stem (default bench/results/groups_runs)")
    args = parser.parse_args(argv)
    if shared_data_dir() is None:
        print("../shared/data is absent: nothing to run")
        return 0
    record = start_record()
    runners = {
        "adult-audit": case_adult_audit,
        "adult-train-in": case_adult_train_in,
        "compas": case_compas,
        "adult-preprocess": case_adult_preprocess,
    }
    cases: dict[str, Any] = {}
    out = args.out or repo_root() / "bench" / "results" / f"groups_runs{args.tag}"
    with tempfile.TemporaryDirectory(prefix="groups-runs-") as tmp, threadpool_limits(args.threads):
        for name in args.cases:
            print(f"{name}:", flush=True)
            started = time.perf_counter()
            cases[name] = runners[name](args.threads, Path(tmp))
            cases[name]["case_wall_seconds"] = round(time.perf_counter() - started, 1)
    payload = {
        "threads": args.threads,
        "cases": cases,
        "problems": collect_problems(cases),
        "run": finish_record(record),
    }
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(payload))
    for p in payload["problems"]:
        print(f"PROBLEM: {p}")
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
