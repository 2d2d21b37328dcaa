"""Binary runs with the default criterion keep their bytes (issue "Fairness as users define it").

Recorded on commit 9d0a0aa, before froc judged many groups and several criteria: the seeded
JSON of audit, train-in, preprocess and compare on the bundled samples, the preprocess output's
and the model's sha256. Volatile fields (timings, versions, paths) are left out of the
comparison; every figure, verdict, trial and row count is compared exactly.

Each command runs in its own process with ``MKL_CBWR=COMPATIBLE``: MKL otherwise picks its
kernels by processor (an AVX-512 Xeon and another x86 machine train different last bits, and
300 epochs make them different decisions); the compatible path gives every x86 machine the
same figures. Regenerate only for a change meant to change these outputs:
``FROC_RECORD_PINS=1 python -m pytest tests/test_pinned_binary_runs.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data"
PINS = Path(__file__).resolve().parent / "pinned"
VOLATILE = {"versions", "source", "command", "input", "output"}
SYNTHETIC = [str(SAMPLES / "synthetic.csv"), "--protected", "gender"]
ADULT = [
    str(SAMPLES / "adult_sample.csv"), "--label", "income", "--positive", ">50K",
    "--protected", "sex", "--protected-group", "Female",
]  # fmt: skip
THRESHOLDS = ["--delta-f", "0.1", "--delta-r", "0.3", "--threads", "1"]

CASES: dict[str, list[str]] = {
    "audit_synthetic_ci": ["audit", *SYNTHETIC, "--ci", "--bootstrap", "50", "--threads", "1"],
    "audit_adult_predictions": [],  # filled in by the test: needs a predictions file
    "train_in_synthetic": [
        "train-in", *SYNTHETIC, *THRESHOLDS, "--epochs", "40", "--max-fits", "3",
        "--allow-infeasible", "-o", "{tmp}/m.froc",
    ],
    "preprocess_synthetic": [
        "preprocess", *SYNTHETIC, *THRESHOLDS, "-o", "{tmp}/pre.csv", "--manifest",
        "{tmp}/man.json",
    ],
    "preprocess_adult": [
        "preprocess", *ADULT, *THRESHOLDS, "--folds", "2", "-o", "{tmp}/pre.csv",
    ],
    "compare_synthetic": ["compare", *SYNTHETIC, *THRESHOLDS, "--epochs", "30"],
}  # fmt: skip


def run_froc(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``froc ARGS`` in a fresh process on MKL's processor-independent kernels."""
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "froc_cli", *args], capture_output=True, text=True, env=env
    )


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in VOLATILE and "seconds" not in k and not k.endswith("_file")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_metadata(path: Path) -> dict[str, str]:
    """The safetensors header's metadata of a ``.froc`` file (weights digest, description)."""
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    metadata: dict[str, str] = json.loads(data[8 : 8 + length])["__metadata__"]
    return metadata


def _run(case: str, tmp: Path) -> dict[str, Any]:
    if case == "audit_adult_predictions":
        import pandas as pd

        frame = pd.read_csv(SAMPLES / "adult_sample.csv")
        # A fixed, seedless rule: decisions that differ by group and by education.
        frame["pred"] = ((frame["education-num"] >= 13) | (frame["sex"] == "Male")).astype(int)
        frame.to_csv(tmp / "with_pred.csv", index=False)
        args = [
            "audit", str(tmp / "with_pred.csv"), "--label", "income", "--positive", ">50K",
            "--protected", "race", "--protected-group", "Black,Other", "--predictions", "pred",
            "--label", "income",
        ]  # fmt: skip
    else:
        args = [a.replace("{tmp}", str(tmp)) for a in CASES[case]]
    result = run_froc([*args, "--json", "--quiet"])
    assert result.returncode in (0, 1), result.stderr
    pinned: dict[str, Any] = {
        "exit_code": result.returncode,
        "json": _stable(json.loads(result.stdout)),
    }
    for name in ("m.froc", "pre.csv", "man.json"):
        path = tmp / name
        if path.exists():
            if name == "man.json":
                pinned["manifest"] = _stable(json.loads(path.read_text()))
            elif name == "m.froc":
                metadata = _model_metadata(path)
                pinned["model_weights_sha256"] = metadata["weights_sha256"]
                pinned["model_description"] = _stable(json.loads(metadata["froc"]))
            else:
                pinned["output_sha256"] = _sha256(path)
    return pinned


@pytest.mark.parametrize("case", sorted(CASES))
def test_binary_run_keeps_its_bytes(case: str, tmp_path: Path) -> None:
    got = _run(case, tmp_path)
    pin = PINS / f"{case}.json"
    if os.environ.get("FROC_RECORD_PINS"):
        pin.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert_keeps(got, json.loads(pin.read_text()))


def assert_keeps(got: Any, pinned: Any, path: str = "") -> None:
    """Every pinned value is still there and unchanged (the file hashes included); keys a
    later issue added are allowed (issue "Robustness numbers you can trust" added the strongest
    attack's figures and the floor warning), nothing pinned may change or go."""
    if isinstance(pinned, dict):
        assert isinstance(got, dict), path
        for key, value in pinned.items():
            assert key in got, f"{path}/{key} is gone"
            assert_keeps(got[key], value, f"{path}/{key}")
    elif isinstance(pinned, list):
        assert isinstance(got, list) and len(got) == len(pinned), path
        for index, (new, old) in enumerate(zip(got, pinned, strict=True)):
            assert_keeps(new, old, f"{path}[{index}]")
    else:
        assert got == pinned, f"{path}: {got!r} != {pinned!r}"
