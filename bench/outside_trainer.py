"""Outside trainers on a preprocessed file: what a data owner's counterpart gets from ``froc``.

An independent judge: this script imports nothing from ``froc_cli`` (no training, model,
attack or metric code) and only calls the ``froc`` command line as a subprocess. Every model,
encoder, attack and measure below is its own (numpy, pandas, scikit-learn, torch on CPU).

Per seed ``s``:

1. Outer split. ``../shared/data/adult.csv`` (relative to the repository root) is read with
   every string value stripped; a row is dropped when any cell is empty/NaN or ``?`` (the same
   rule for every run; the shared file is already clean, so normally 0 rows go). A 70/30 split
   stratified by the label is drawn with ``train_test_split(random_state=s)``. The 70% is
   written to a temporary CSV: ``froc`` sees only that file; the 30% is never shown to it.
2. Files, each trained WHOLE by the outside trainers and measured on the 30%:
   ``input`` (the unedited 70%); ``froc`` (``froc preprocess <70%.csv> --label income
   --positive '>50K' --protected sex --protected-group Female --delta-f 0.05 --delta-r 0.6
   --seed s -o out.csv --manifest m.json`` plus ``--froc-args``; exit code, wall seconds and
   the child's peak RSS via ``/usr/bin/time -v`` are recorded, and the manifest's
   ``flip_fraction``/``augment_fraction``; the flipped and added shares are also recomputed
   here from the file itself); ``massaging`` (Kamiran & Calders: an LR ranker on this
   script's encoding, promote the M highest-scored unfavourable Female rows, demote the M
   lowest-scored favourable Male rows, M from the classic formula that equalises both
   groups' favourable rates) and ``massaging@f`` for each ``--massaging-fractions f`` (2M =
   round(f * rows): a fixed flipped share).
3. Encoding, fitted on the file being trained (as an outside trainer would): one-hot for the
   categorical (non-numeric dtype) columns, min-max to [0, 1] for the numeric ones (a constant
   column maps to 0); ``sex`` and the label are not features. The 30% is encoded with the same
   fitted encoder: unknown categories become all zeros, numeric values are not clipped.
4. Outside trainers, trained plainly on the whole file: MLP 1x64 (torch, ReLU, 300 full-batch
   Adam epochs, lr 0.01, BCE, ``torch.manual_seed(s)``); logistic regression (scikit-learn,
   ``max_iter=1000``, other defaults); ``HistGradientBoostingClassifier`` (defaults except
   ``random_state=s``, so its automatic early-stopping split is reproducible).
5. Measures on the 30%: accuracy, majority-class floor, S_B = |P(yhat=1|Female) -
   P(yhat=1|Male)|, and S_R = accuracy under attack against the TRUE labels: L-inf eps 0.1 in
   the min-max scaled space, PGD 10 sign steps of eps/4, no random start, numeric columns
   only. The attack runs in raw units: eps_j = 0.1 * (max_j - min_j) of the unedited 70%, and
   the attacked value is clipped to that 70%'s [min_j, max_j] (the scaled [0, 1] box). A test
   value already outside that box is never forced to move: the box is widened to include it.
   Integer columns (age, education-num, hours-per-week, capital-gain, capital-loss, fnlwgt)
   keep their attacked values as floats (no rounding). White-box numeric S_R for the MLP (its
   own gradient) and the LR (its own weights, as a torch linear model); transfer numeric S_R
   for all three: PGD crafted once per seed on a separate MLP 1x128 (same recipe,
   ``torch.manual_seed(s + 1000)``) trained on the unedited 70%, and the attacked raw rows
   re-encoded with each trainer's own encoder and replayed.

Writes bench/results/outside_trainer{_TAG}.json (every figure per seed, mean/sd across seeds,
settings, versions, wall seconds, and under ``"run"`` the run record of ``bench/_record.py``:
git commit, froc_cli source digest and dirty flag, command line, machine, load average at
start and end) and the matching .md table with the record's line, and
prints per seed and file whether the acceptance holds (every trainer S_B <= 0.05 and
acc >= 0.80, MLP white-box numeric S_R >= 0.6, every transfer S_R >= 0.6, froc exit 0).
Skips cleanly (exit 0) when ../shared/data/adult.csv is absent.

    python bench/outside_trainer.py --seeds 0 --files input massaging --massaging-fractions 0.129
    python bench/outside_trainer.py --seeds 0 1 2 --files froc --froc-args "--threads 1" --tag x
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
from _record import finish_record, record_line, start_record
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

LABEL = "income"
POSITIVE = ">50K"
PROTECTED = "sex"
PROTECTED_GROUP = "Female"
DELTA_F = 0.05
DELTA_R = 0.6
ACC_MIN = 0.80
EPS = 0.1
PGD_STEPS = 10
MLP_EPOCHS = 300
MLP_LR = 0.01
SURROGATE_SEED_OFFSET = 1000
TRAINERS = ("mlp64", "lr", "hgb")
TRAINER_NAMES = {
    "mlp64": "MLP 1x64",
    "lr": "logistic regression",
    "hgb": "HistGradientBoosting (defaults)",
}
METRICS = ("acc", "floor", "s_b", "s_r_wb_numeric", "s_r_transfer_numeric")


def repo_root() -> Path:
    """The repository root (the folder above ``bench/``)."""
    return Path(__file__).resolve().parent.parent


def data_file() -> Path:
    """Where adult.csv is expected: ../shared/data relative to the repository root."""
    return repo_root().parent / "shared" / "data" / "adult.csv"


# --------------------------------------------------------------------------------------------
# Data and encoding
# --------------------------------------------------------------------------------------------


def load_clean(path: Path) -> tuple[pd.DataFrame, int]:
    """Read the CSV, strip string cells, drop rows with any NaN/empty/``?`` cell.

    Returns the cleaned frame (index reset) and the number of rows dropped.
    """
    raw = pd.read_csv(path, skipinitialspace=True)
    for col in raw.columns:
        if not pd.api.types.is_numeric_dtype(raw[col]):
            raw[col] = raw[col].astype(str).str.strip().replace({"?": np.nan, "": np.nan})
    clean = raw.dropna(how="any").reset_index(drop=True)
    return clean, len(raw) - len(clean)


def outer_split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded 70/30 split stratified by the label (indices reset on both parts)."""
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame[LABEL], random_state=seed, shuffle=True
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def labels(frame: pd.DataFrame) -> np.ndarray:
    """1 for the favourable label, else 0 (float32)."""
    return (frame[LABEL].astype(str).str.strip() == POSITIVE).to_numpy(np.float32)


def protected_mask(frame: pd.DataFrame) -> np.ndarray:
    """True for rows of the protected group."""
    return (frame[PROTECTED].astype(str).str.strip() == PROTECTED_GROUP).to_numpy()


@dataclass
class Encoder:
    """One-hot + min-max encoder fitted on one training file (numeric columns first)."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    span: np.ndarray = field(default_factory=lambda: np.ones(0))
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Encoder:
        """Fit on ``frame``: dtypes decide numeric vs categorical; sex and label excluded."""
        feats = [c for c in frame.columns if c not in (LABEL, PROTECTED)]
        numeric = [c for c in feats if pd.api.types.is_numeric_dtype(frame[c])]
        categorical = [c for c in feats if c not in numeric]
        values = frame[numeric].to_numpy(np.float64)
        lo, hi = values.min(axis=0), values.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        cats = {c: sorted(frame[c].astype(str).unique().tolist()) for c in categorical}
        return cls(numeric, categorical, lo, span, cats)

    @property
    def width(self) -> int:
        """Number of encoded features."""
        return len(self.numeric) + sum(len(v) for v in self.categories.values())

    def scale(self, raw_numeric: np.ndarray) -> np.ndarray:
        """Min-max scale raw numeric values (columns in ``self.numeric`` order), no clip."""
        return ((raw_numeric - self.lo) / self.span).astype(np.float32)

    def one_hot(self, frame: pd.DataFrame) -> np.ndarray:
        """One-hot block of the categorical columns; unknown categories are all zeros."""
        blocks = []
        for col in self.categorical:
            cats = self.categories[col]
            codes = pd.Index(cats).get_indexer(frame[col].astype(str))
            block = np.zeros((len(frame), len(cats)), np.float32)
            known = codes >= 0
            block[np.nonzero(known)[0], codes[known]] = 1.0
            blocks.append(block)
        if not blocks:
            return np.zeros((len(frame), 0), np.float32)
        return np.concatenate(blocks, axis=1)

    def transform(self, frame: pd.DataFrame, raw_numeric: np.ndarray | None = None) -> np.ndarray:
        """Encode ``frame``; ``raw_numeric`` (attacked values) replaces its numeric columns."""
        if raw_numeric is None:
            raw_numeric = frame[self.numeric].to_numpy(np.float64)
        return np.concatenate([self.scale(raw_numeric), self.one_hot(frame)], axis=1)


# --------------------------------------------------------------------------------------------
# Trainers
# --------------------------------------------------------------------------------------------


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: int, seed: int) -> torch.nn.Module:
    """1-hidden-layer ReLU MLP, 300 full-batch Adam epochs (lr 0.01) on BCE, seeded."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=MLP_LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(MLP_EPOCHS):
        opt.zero_grad()
        loss = loss_fn(model(xt).squeeze(1), yt)
        loss.backward()
        opt.step()
    model.eval()
    return model


def torch_predict(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """0/1 predictions of a logit model."""
    with torch.no_grad():
        return (model(torch.from_numpy(x)).squeeze(1) > 0).numpy().astype(np.float32)


def lr_as_torch(lr: LogisticRegression) -> torch.nn.Module:
    """The fitted logistic regression as a torch linear logit model (its own weights)."""
    coef = torch.tensor(lr.coef_, dtype=torch.float32)
    lin = torch.nn.Linear(coef.shape[1], 1)
    with torch.no_grad():
        lin.weight.copy_(coef)
        lin.bias.copy_(torch.tensor(lr.intercept_, dtype=torch.float32))
    lin.eval()
    return lin


@dataclass
class Fitted:
    """One trainer fitted on one file: its encoder, predictor and (optional) torch twin."""

    encoder: Encoder
    predict: Any
    torch_model: torch.nn.Module | None
    seconds: float


def fit_trainers(frame: pd.DataFrame, seed: int) -> dict[str, Fitted]:
    """Fit the encoder on ``frame`` and train the three outside trainers on all of it."""
    enc = Encoder.fit(frame)
    x, y = enc.transform(frame), labels(frame)
    fitted: dict[str, Fitted] = {}
    t0 = time.perf_counter()
    mlp = train_mlp(x, y, 64, seed)
    fitted["mlp64"] = Fitted(
        enc, lambda z, m=mlp: torch_predict(m, z), mlp, time.perf_counter() - t0
    )
    t0 = time.perf_counter()
    lr = LogisticRegression(max_iter=1000).fit(x, y.astype(int))
    lr_t = lr_as_torch(lr)
    fitted["lr"] = Fitted(
        enc, lambda z, m=lr: m.predict(z).astype(np.float32), lr_t, time.perf_counter() - t0
    )
    t0 = time.perf_counter()
    hgb = HistGradientBoostingClassifier(random_state=seed).fit(x, y.astype(int))
    fitted["hgb"] = Fitted(
        enc, lambda z, m=hgb: m.predict(z).astype(np.float32), None, time.perf_counter() - t0
    )
    return fitted


# --------------------------------------------------------------------------------------------
# Attack and measures
# --------------------------------------------------------------------------------------------


@dataclass
class ThreatBox:
    """Raw-unit L-inf box per numeric column, from the unedited 70%'s ranges."""

    columns: list[str]
    lo: np.ndarray
    hi: np.ndarray
    integer: np.ndarray
    grid: bool = False

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: list[str], grid: bool = False) -> ThreatBox:
        """Ranges of ``columns`` in ``frame`` (the unedited 70%); ``grid`` rounds integers."""
        values = frame[columns].to_numpy(np.float64)
        integer = np.array([pd.api.types.is_integer_dtype(frame[c]) for c in columns])
        return cls(columns, values.min(axis=0), values.max(axis=0), integer, grid)

    @property
    def eps(self) -> np.ndarray:
        """eps 0.1 of the scaled space in raw units per column."""
        return EPS * (self.hi - self.lo)


def pgd_numeric(
    model: torch.nn.Module, enc: Encoder, test: pd.DataFrame, y: np.ndarray, box: ThreatBox
) -> np.ndarray:
    """PGD on the raw numeric columns against the true labels; returns attacked raw values.

    Gradients flow through ``enc``'s min-max scaling into ``model``; the categorical block is
    fixed. 10 sign steps of eps/4 from the clean point, projected on the eps-ball intersected
    with the 70%'s [min, max] (widened to include the clean value).
    """
    if enc.numeric != box.columns:
        raise ValueError(f"numeric columns differ: {enc.numeric} vs {box.columns}")
    x0 = test[box.columns].to_numpy(np.float64)
    lower = np.minimum(np.maximum(x0 - box.eps, box.lo), x0)
    upper = np.maximum(np.minimum(x0 + box.eps, box.hi), x0)
    step = box.eps / 4.0
    cat = torch.from_numpy(enc.one_hot(test))
    lo_t = torch.tensor(enc.lo, dtype=torch.float64)
    span_t = torch.tensor(enc.span, dtype=torch.float64)
    yt = torch.from_numpy(y)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    x = x0.copy()
    for _ in range(PGD_STEPS):
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        scaled = ((xt - lo_t) / span_t).float()
        loss = loss_fn(model(torch.cat([scaled, cat], dim=1)).squeeze(1), yt)
        (grad,) = torch.autograd.grad(loss, xt)
        x = np.clip(x + step * np.sign(grad.numpy()), lower, upper)
    if box.grid:  # diagnostic option: integer columns back on their grid, inside the box
        snapped = np.clip(np.round(x), np.ceil(lower), np.floor(upper))
        x = np.where(box.integer, snapped, x)
    return x


def measures(pred: np.ndarray, y: np.ndarray, prot: np.ndarray) -> dict[str, float]:
    """Accuracy, majority-class floor and S_B of 0/1 predictions."""
    floor = max(float(y.mean()), 1.0 - float(y.mean()))
    s_b = abs(float(pred[prot].mean()) - float(pred[~prot].mean()))
    return {"acc": float((pred == y).mean()), "floor": floor, "s_b": s_b}


def evaluate_file(
    frame: pd.DataFrame, test: pd.DataFrame, box: ThreatBox, transfer_raw: np.ndarray, seed: int
) -> dict[str, dict[str, float | None]]:
    """Train the three trainers on ``frame`` and measure each on the 30% (clean and attacked)."""
    y, prot = labels(test), protected_mask(test)
    out: dict[str, dict[str, float | None]] = {}
    for name, fit in fit_trainers(frame, seed).items():
        row: dict[str, float | None] = dict(
            measures(fit.predict(fit.encoder.transform(test)), y, prot)
        )
        row["s_r_wb_numeric"] = None
        if fit.torch_model is not None:
            adv = pgd_numeric(fit.torch_model, fit.encoder, test, y, box)
            row["s_r_wb_numeric"] = float(
                (fit.predict(fit.encoder.transform(test, adv)) == y).mean()
            )
        pred_tr = fit.predict(fit.encoder.transform(test, transfer_raw))
        row["s_r_transfer_numeric"] = float((pred_tr == y).mean())
        row["train_seconds"] = fit.seconds
        out[name] = row
    return out


def craft_transfer(
    train: pd.DataFrame, test: pd.DataFrame, box: ThreatBox, seed: int
) -> np.ndarray:
    """PGD rows crafted on an MLP 1x128 trained on the unedited 70% (its own encoding)."""
    enc = Encoder.fit(train)
    surrogate = train_mlp(enc.transform(train), labels(train), 128, seed + SURROGATE_SEED_OFFSET)
    return pgd_numeric(surrogate, enc, test, labels(test), box)


# --------------------------------------------------------------------------------------------
# Files: froc and massaging
# --------------------------------------------------------------------------------------------


def froc_command() -> list[str]:
    """The ``froc`` executable (beside this interpreter, on PATH, or ``python -m froc_cli``)."""
    beside = Path(sys.executable).parent / "froc"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("froc")
    return [found] if found else [sys.executable, "-m", "froc_cli"]


def parse_time_v(path: Path) -> int | None:
    """Peak RSS in KiB from a ``/usr/bin/time -v`` report, or None."""
    if not path.exists():
        return None
    match = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", path.read_text())
    return int(match.group(1)) if match else None


def run_froc_once(cmd: list[str], workdir: Path) -> dict[str, Any]:
    """Run ``cmd`` once under /usr/bin/time -v when present; exit code, wall, peak RSS."""
    timefile = workdir / "time.txt"
    timefile.unlink(missing_ok=True)
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [timer, "-v", "-o", str(timefile), *cmd] if timer else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    return {
        "exit_code": proc.returncode,
        "wall_seconds": wall,
        "peak_rss_mib": (kib / 1024) if (kib := parse_time_v(timefile)) else None,
        "stdout_tail": proc.stdout[-2000:],
        "stderr_tail": proc.stderr[-2000:],
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """flip/augment fractions and met/reason from the manifest, read defensively."""
    info: dict[str, Any] = {"manifest_present": path.exists()}
    if not path.exists():
        return info
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        info["manifest_error"] = repr(err)
        return info
    if not isinstance(data, dict):
        info["manifest_error"] = f"top level is {type(data).__name__}"
        return info
    for key in ("flip_fraction", "augment_fraction", "met", "reason", "targets"):
        if key in data:
            info[key] = data[key]
        elif key in ("flip_fraction", "augment_fraction"):
            print(f"  manifest lacks {key!r}; top-level keys: {sorted(data)}")
    # froc's own cross-fitted estimate per panel model (mean and fold sd), to set beside what
    # the outside trainers measure here.
    panel = data.get("panel")
    if isinstance(panel, dict):
        info["froc_estimate"] = {
            model: {
                "mean": figures.get("mean", {}),
                "sd": figures.get("sd", {}),
                "spread": figures.get("spread", {}),
            }
            for model, figures in panel.items()
            if isinstance(figures, dict)
        }
    return info


def run_froc(train_csv: Path, workdir: Path, seed: int, extra: list[str]) -> dict[str, Any]:
    """``froc preprocess`` on the 70% file; retries (60 s apart) while froc hits ImportError."""
    out_csv, manifest = workdir / "out.csv", workdir / "m.json"
    cmd = [
        *froc_command(),
        "preprocess",
        str(train_csv),
        "--label",
        LABEL,
        "--positive",
        POSITIVE,
        "--protected",
        PROTECTED,
        "--protected-group",
        PROTECTED_GROUP,
        "--delta-f",
        str(DELTA_F),
        "--delta-r",
        str(DELTA_R),
        "--seed",
        str(seed),
        "-o",
        str(out_csv),
        "--manifest",
        str(manifest),
        *extra,
    ]
    for attempt in range(4):
        out_csv.unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)
        info = run_froc_once(cmd, workdir)
        if "ImportError" not in info["stderr_tail"] or attempt == 3:
            break
        print("  froc hit an ImportError (package being edited?); retrying in 60 s")
        time.sleep(60)
    info.update(command=shlex.join(cmd), attempts=attempt + 1, output_written=out_csv.exists())
    info.update(read_manifest(manifest))
    info["output_path"] = str(out_csv) if out_csv.exists() else None
    return info


def file_shares(original: pd.DataFrame, edited: pd.DataFrame) -> dict[str, float | int]:
    """Flipped and added shares measured here: edited's first rows against the original."""
    n = len(original)
    head = edited.iloc[:n].reset_index(drop=True)
    flipped = int((labels(head) != labels(original)).sum())
    feats = [c for c in original.columns if c != LABEL]
    same = head[feats].astype(str).to_numpy() == original[feats].astype(str).to_numpy()
    return {
        "rows_in": n,
        "rows_out": len(edited),
        "flipped_rows": flipped,
        "flipped_share": flipped / n,
        "added_share": (len(edited) - n) / n,
        "input_rows_with_feature_changes": int((~same.all(axis=1)).sum()),
    }


def massaging_m(train: pd.DataFrame) -> int:
    """Classic M: flips per group that equalise both groups' favourable rates."""
    y, prot = labels(train), protected_mask(train)
    n_p, n_u = int(prot.sum()), int((~prot).sum())
    pos_p, pos_u = float(y[prot].sum()), float(y[~prot].sum())
    return max(0, round((pos_u * n_p - pos_p * n_u) / (n_p + n_u)))


def massage(train: pd.DataFrame, m: int) -> pd.DataFrame:
    """Kamiran & Calders massaging with an LR ranker (this script's encoding, sex excluded).

    Promotes the ``m`` highest-scored unfavourable protected rows and demotes the ``m``
    lowest-scored favourable unprotected rows; rows and columns otherwise unchanged.
    """
    enc = Encoder.fit(train)
    y, prot = labels(train), protected_mask(train)
    ranker = LogisticRegression(max_iter=1000).fit(enc.transform(train), y.astype(int))
    score = ranker.predict_proba(enc.transform(train))[:, 1]
    promote = np.nonzero(prot & (y == 0))[0]
    demote = np.nonzero(~prot & (y == 1))[0]
    promote = promote[np.argsort(-score[promote], kind="stable")[:m]]
    demote = demote[np.argsort(score[demote], kind="stable")[:m]]
    negative = next(v for v in train[LABEL].unique() if str(v).strip() != POSITIVE)
    out = train.copy()
    out.loc[promote, LABEL] = POSITIVE
    out.loc[demote, LABEL] = negative
    return out


# --------------------------------------------------------------------------------------------
# One seed
# --------------------------------------------------------------------------------------------


def make_files(
    train: pd.DataFrame, args: argparse.Namespace, seed: int, workdir: Path
) -> dict[str, tuple[pd.DataFrame | None, dict[str, Any]]]:
    """Every file to evaluate: name -> (frame or None when not written, facts about it)."""
    files: dict[str, tuple[pd.DataFrame | None, dict[str, Any]]] = {}
    if "input" in args.files:
        files["input"] = (train, {"seconds": 0.0})
    if "froc" in args.files:
        train_csv = workdir / "train70.csv"
        train.to_csv(train_csv, index=False)
        info = run_froc(train_csv, workdir, seed, shlex.split(args.froc_args))
        frame = None
        if info["output_path"]:
            frame = pd.read_csv(info["output_path"], skipinitialspace=True)
            frame = frame[[c for c in train.columns if c in frame.columns]]
            info.update(file_shares(train, frame))
        info["seconds"] = info["wall_seconds"]
        files["froc"] = (frame, info)
    if "massaging" in args.files:
        m_classic = massaging_m(train)
        variants = [("massaging", m_classic)]
        variants += [
            (f"massaging@{f:g}", round(f * len(train) / 2)) for f in args.massaging_fractions
        ]
        for name, m in variants:
            t0 = time.perf_counter()
            frame = massage(train, m)
            info = {"m_per_group": m, "m_classic": m_classic, **file_shares(train, frame)}
            info["seconds"] = time.perf_counter() - t0
            files[name] = (frame, info)
    return files


def acceptance(file_name: str, result: dict[str, Any]) -> dict[str, Any]:
    """The acceptance checks of one file in one seed (froc exit 0 only applies to froc)."""
    trainers = result.get("trainers") or {}
    if not trainers:
        return {"holds": False, "failed": ["no output file to train on"]}
    failed = []
    for t, row in trainers.items():
        if row["s_b"] > DELTA_F:
            failed.append(f"{t} S_B {row['s_b']:.3f} > {DELTA_F}")
        if row["acc"] < ACC_MIN:
            failed.append(f"{t} acc {row['acc']:.3f} < {ACC_MIN}")
        if row["s_r_transfer_numeric"] < DELTA_R:
            failed.append(f"{t} transfer S_R {row['s_r_transfer_numeric']:.3f} < {DELTA_R}")
    wb = trainers["mlp64"]["s_r_wb_numeric"]
    if wb is None or wb < DELTA_R:
        failed.append(f"mlp64 white-box S_R {fmt(wb)} < {DELTA_R}")
    if file_name == "froc" and result["file"].get("exit_code") != 0:
        failed.append(f"froc exit {result['file'].get('exit_code')}")
    return {"holds": not failed, "failed": failed}


def run_seed(frame: pd.DataFrame, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Split, build every file, train and measure; returns the seed's figures."""
    train, test = outer_split(frame, seed)
    numeric = Encoder.fit(train).numeric
    box = ThreatBox.from_frame(train, numeric, grid=args.integer_grid)
    t0 = time.perf_counter()
    transfer_raw = craft_transfer(train, test, box, seed)
    seed_out: dict[str, Any] = {
        "rows_train": len(train),
        "rows_test": len(test),
        "transfer_craft_seconds": time.perf_counter() - t0,
        "files": {},
    }
    with tempfile.TemporaryDirectory(prefix="outside-trainer-") as tmp:
        files = make_files(train, args, seed, Path(tmp))
        for name, (edited, info) in files.items():
            info.pop("output_path", None)
            result: dict[str, Any] = {"file": info, "trainers": None}
            if edited is None:
                print(f"  seed {seed} {name}: no output file (exit {info.get('exit_code')})")
            else:
                result["trainers"] = evaluate_file(edited, test, box, transfer_raw, seed)
            result["acceptance"] = acceptance(name, result)
            if name == "froc":
                result["agreement"] = agreement(result)
            seed_out["files"][name] = result
            print_seed_file(seed, name, result)
    return seed_out


# froc's panel member and figure key for each trainer and measure judged here.
ESTIMATE_OF = {"mlp64": "mlp:64", "lr": "lr", "hgb": "hgb"}
ESTIMATE_KEY = {
    "acc": "accuracy",
    "s_b": "bias_score",
    "s_r_wb_numeric": "robustness_whitebox_valid",
}


def agreement(result: dict[str, Any]) -> list[dict[str, Any]]:
    """froc's cross-fitted estimate (mean, spread) beside this script's figure, per trainer
    and measure: the distance in spreads (|judge - mean| / spread)."""
    estimate = result["file"].get("froc_estimate") or {}
    cells = []
    for trainer, member in ESTIMATE_OF.items():
        figures = estimate.get(member)
        if not figures or not result.get("trainers"):
            continue
        for measure, key in ESTIMATE_KEY.items():
            judge = result["trainers"][trainer].get(measure)
            mean = figures["mean"].get(key)
            spread = figures.get("spread", {}).get(key) or figures["sd"].get(key)
            if judge is None or mean is None or not spread:
                continue
            cells.append(
                {
                    "trainer": trainer,
                    "measure": measure,
                    "judge": judge,
                    "estimate": mean,
                    "fold_sd": figures["sd"].get(key),
                    "spread": spread,
                    "distance": abs(judge - mean) / spread,
                }
            )
    return cells


def print_seed_file(seed: int, name: str, result: dict[str, Any]) -> None:
    """One console block per seed and file: the figures and whether the acceptance holds."""
    info = result["file"]
    extra = ""
    if "flipped_share" in info:
        extra = f" flipped {info['flipped_share']:.1%} added {info['added_share']:.1%}"
    if "exit_code" in info:
        extra += f" exit {info['exit_code']} {info['wall_seconds']:.1f}s"
    print(f"seed {seed} file {name}:{extra}")
    for t, row in (result["trainers"] or {}).items():
        print(f"  {TRAINER_NAMES[t]:32s} " + " ".join(f"{k} {fmt(row[k])}" for k in METRICS))
    acc = result["acceptance"]
    verdict = "HOLDS" if acc["holds"] else "fails: " + "; ".join(acc["failed"])
    print(f"  acceptance: {verdict}")


# --------------------------------------------------------------------------------------------
# Summary and reports
# --------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """Format a figure, '-' for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def mean_sd(values: list[float]) -> dict[str, float | int | None]:
    """Mean, sample sd (None for one value) and count."""
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values)}


def summarise(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean/sd across seeds per file x trainer x measure, and per-file facts."""
    names: list[str] = []
    for seed_out in per_seed.values():
        names += [n for n in seed_out["files"] if n not in names]
    summary: dict[str, Any] = {}
    for name in names:
        results = [s["files"][name] for s in per_seed.values() if name in s["files"]]
        file_keys = (
            "exit_code",
            "wall_seconds",
            "peak_rss_mib",
            "flip_fraction",
            "augment_fraction",
            "flipped_share",
            "added_share",
            "seconds",
        )
        facts = {
            k: mean_sd([r["file"][k] for r in results if isinstance(r["file"].get(k), int | float)])
            for k in file_keys
        }
        facts["exit_codes"] = [r["file"].get("exit_code") for r in results]
        facts["acceptance_holds"] = [r["acceptance"]["holds"] for r in results]
        trainers: dict[str, Any] = {}
        for t in TRAINERS:
            rows = [r["trainers"][t] for r in results if r["trainers"]]
            trainers[t] = {
                m: mean_sd([row[m] for row in rows if row[m] is not None])
                for m in (*METRICS, "train_seconds")
            }
        summary[name] = {"file": facts, "trainers": trainers}
    return summary


def cell(stat: dict[str, Any], digits: int = 3, pct: bool = False) -> str:
    """'mean' or 'mean ± sd' of a summary entry, '-' when empty."""
    if not stat or stat["mean"] is None:
        return "-"
    scale, unit = (100.0, "%") if pct else (1.0, "")
    dg = 1 if pct else digits
    text = f"{stat['mean'] * scale:.{dg}f}{unit}"
    if stat["sd"] is not None:
        text += f" ± {stat['sd'] * scale:.{dg}f}{unit}"
    return text


def markdown(report: dict[str, Any]) -> str:
    """The markdown table: one row per file x trainer (mean ± sd across seeds)."""
    s = report["settings"]
    grid = "rounded to integers" if s.get("integer_grid") else "kept as floats"
    lines = [
        "# Outside trainers on a preprocessed file (bench/outside_trainer.py)",
        "",
        record_line(report["run"]),
        "",
        f"Seeds {s['seeds']}; wall {report['wall_seconds']:.0f} s; versions {report['versions']}.",
        "",
        "Adult, protected sex (Female); outer 70/30 split stratified by label; froc sees only the "
        "70%; each file trained WHOLE by each trainer and measured on the 30%. S_R = accuracy "
        "under L-inf eps 0.1 (min-max space of the unedited 70%), PGD 10 x eps/4, true labels, "
        f"numeric columns only (attacked integers {grid}). Transfer: crafted on an MLP "
        "1x128 trained on the unedited 70%. Mean ± sd across seeds.",
        "",
        f"froc args: `{s['froc_base_args']} {s['froc_args']}`".rstrip() + "",
        "",
        "| file | trainer | acc | floor | S_B | S_R white-box numeric | S_R transfer numeric "
        "| froc exit | flipped share | added share | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in report["summary"].items():
        facts = entry["file"]
        exits = ",".join(str(e) for e in facts["exit_codes"] if e is not None) or "-"
        for t in TRAINERS:
            m = entry["trainers"][t]
            lines.append(
                f"| {name} | {TRAINER_NAMES[t]} | {cell(m['acc'])} | {cell(m['floor'])} | "
                f"{cell(m['s_b'])} | {cell(m['s_r_wb_numeric'])} | "
                f"{cell(m['s_r_transfer_numeric'])} | {exits} | "
                f"{cell(facts['flipped_share'], pct=True)} | "
                f"{cell(facts['added_share'], pct=True)} | {cell(facts['seconds'], 1)} |"
            )
    lines += [
        "",
        "Acceptance per seed (every trainer S_B <= 0.05, acc >= 0.80, transfer S_R "
        ">= 0.6; MLP white-box S_R >= 0.6; froc exit 0):",
        "",
    ]
    for seed, seed_out in report["per_seed"].items():
        for name, res in seed_out["files"].items():
            acc = res["acceptance"]
            verdict = "holds" if acc["holds"] else "fails: " + "; ".join(acc["failed"])
            lines.append(f"- seed {seed}, {name}: {verdict}")
    froc_info = [
        (k, v["files"]["froc"]["file"])
        for k, v in report["per_seed"].items()
        if "froc" in v["files"]
    ]
    agreement_rows = [
        (seed, cell)
        for seed, seed_out in report["per_seed"].items()
        for cell in seed_out["files"].get("froc", {}).get("agreement", [])
    ]
    if agreement_rows:
        lines += [
            "",
            "froc's cross-fitted estimate against the figures measured here (spread: the sd one "
            "fitted model shows, the folds' sd floored at the sampling error; distance = "
            "|here - estimate| / spread):",
            "",
            "| seed | trainer | measure | estimate ± spread (fold sd) | here | distance |",
            "|---|---|---|---|---|---|",
        ]
        for seed, c in agreement_rows:
            lines.append(
                f"| {seed} | {TRAINER_NAMES[c['trainer']]} | {c['measure']} | "
                f"{c['estimate']:.3f} ± {c['spread']:.3f} ({fmt(c['fold_sd'])}) | "
                f"{c['judge']:.3f} | {c['distance']:.2f} |"
            )
        distances = [c["distance"] for _, c in agreement_rows]
        within1 = sum(d <= 1 for d in distances)
        within2 = sum(d <= 2 for d in distances)
        lines += [
            "",
            f"Within one spread: {within1} of {len(distances)} cells; within two: {within2} of "
            f"{len(distances)} (an unbiased estimate with a correct spread: about 68% and 95%).",
        ]
    if froc_info:
        lines += ["", "froc runs:", ""]
        for seed, info in froc_info:
            lines.append(
                f"- seed {seed}: exit {info.get('exit_code')}, {info.get('wall_seconds', 0):.1f} s "
                f"wall, peak RSS {fmt(info.get('peak_rss_mib'), 0)} MiB; manifest flip_fraction "
                f"{fmt(info.get('flip_fraction'), 4)}, augment_fraction "
                f"{fmt(info.get('augment_fraction'), 4)}; measured here: flipped "
                f"{fmt(info.get('flipped_share'), 4)} of the input rows, added "
                f"{fmt(info.get('added_share'), 4)}; met {info.get('met')}"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--files",
        nargs="+",
        default=["input", "froc", "massaging"],
        choices=["input", "froc", "massaging"],
    )
    p.add_argument("--froc-args", default="", help="extra arguments appended to froc preprocess")
    p.add_argument(
        "--massaging-fractions",
        type=float,
        nargs="*",
        default=[],
        help="also evaluate massaging with these fixed flipped shares (2M/rows)",
    )
    p.add_argument(
        "--integer-grid",
        action="store_true",
        help="diagnostic: round attacked integer columns to integers after PGD (default: floats)",
    )
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument(
        "--torch-threads", type=int, default=1, help="torch, OpenMP and BLAS threads (default 1)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every seed, write the JSON and markdown reports, print the acceptance."""
    args = parse_args(argv)
    path = data_file()
    if not path.exists():
        print(f"skipped: {path} not found (shared data absent)")
        return 0
    torch.set_num_threads(args.torch_threads)
    threadpool_limits(limits=args.torch_threads)  # OpenMP/BLAS (HGB, LR) on the same budget
    record = start_record()
    started, t0 = dt.datetime.now(dt.UTC).isoformat(), time.perf_counter()
    frame, dropped = load_clean(path)
    print(f"{path}: {len(frame)} rows after dropping {dropped} with missing values")
    per_seed = {str(s): run_seed(frame, args, s) for s in args.seeds}
    report: dict[str, Any] = {
        "started": started,
        "wall_seconds": time.perf_counter() - t0,
        "settings": {
            "seeds": args.seeds,
            "files": args.files,
            "froc_args": args.froc_args,
            "froc_base_args": f"--label {LABEL} --positive '{POSITIVE}' --protected {PROTECTED} "
            f"--protected-group {PROTECTED_GROUP} --delta-f {DELTA_F} --delta-r {DELTA_R} --seed s",
            "massaging_fractions": args.massaging_fractions,
            "eps": EPS,
            "pgd_steps": PGD_STEPS,
            "pgd_step": "eps/4",
            "mlp_epochs": MLP_EPOCHS,
            "mlp_lr": MLP_LR,
            "torch_threads": args.torch_threads,
            "integer_grid": args.integer_grid,
            "data": str(path),
            "rows": len(frame),
            "rows_dropped_missing": dropped,
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "torch": torch.__version__,
        },
        "run": finish_record(record),
        "per_seed": per_seed,
        "summary": summarise(per_seed),
    }
    out_dir = repo_root() / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "outside_trainer" + (f"_{args.tag}" if args.tag else "")
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report))
    print(f"wrote {out_dir / stem}.json and .md ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
