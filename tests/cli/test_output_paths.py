"""Every file a command writes is never one of its inputs nor another output of the same run.

Each collision is refused with exit 2 and one line on stderr, before any work: the command
never imports the engine (torch, pandas, scikit-learn), the inputs keep their bytes and no
file is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

from froc_cli.core._errors import InputError
from froc_cli.core._paths import check_output_paths

ENGINE = ("torch", "pandas", "sklearn")
GATE = ["--delta-f", "0.1", "--delta-r", "0.5"]

_PROBE = """
import json, sys
from froc_cli.cli import app
try:
    app({args!r})
    code = 0
except SystemExit as exit:
    code = exit.code
engine = sorted(m for m in {engine!r} if m in sys.modules)
print(json.dumps([code, engine]))
"""

# (arguments, the line's needles); run in a folder holding data.csv and m.froc.
CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "audit --report DATA": (
        ["audit", "data.csv", "--protected", "gender", "--report", "data.csv"],
        ("--report data.csv", "(DATA)", "never overwrites its input"),
    ),
    "compare --report DATA": (
        ["compare", "data.csv", "--protected", "gender", *GATE, "--report", "data.csv"],
        ("--report data.csv", "(DATA)", "never overwrites its input"),
    ),
    "train-in -o DATA": (
        ["train-in", "data.csv", "--protected", "gender", *GATE, "-o", "data.csv"],
        ("--output data.csv", "(DATA)", "never overwrites its input"),
    ),
    "train-in --trace DATA": (
        ["train-in", "data.csv", "--protected", "gender", *GATE, "--trace", "./data.csv"],
        ("--trace data.csv", "(DATA)", "never overwrites its input"),
    ),
    "train-in --trace is -o": (
        ["train-in", "data.csv", "--protected", "gender", *GATE, "-o", "t.csv", "--trace", "t.csv"],
        ("--trace t.csv: is also the --output file",),
    ),
    "audit --report the --model": (
        ["audit", "data.csv", "--protected", "gender", "--model", "m.froc", "--report", "m.froc"],
        ("--report m.froc", "(--model)", "never overwrites its input"),
    ),
    "predict -o MODEL_FILE": (
        ["predict", "m.froc", "data.csv", "-o", "m.froc"],
        ("--output m.froc", "(MODEL_FILE)", "never overwrites its input"),
    ),
    "predict -o DATA": (
        ["predict", "m.froc", "data.csv", "-o", "sub/../data.csv"],
        ("--output sub/../data.csv", "(DATA)", "never overwrites its input"),
    ),
    "preprocess --manifest is -o": (
        [
            "preprocess",
            "data.csv",
            "--protected",
            "gender",
            "-o",
            "out.csv",
            "--manifest",
            "out.csv",
        ],
        ("--manifest out.csv: is also the --output file",),
    ),
    "preprocess --manifest is the default -o": (
        ["preprocess", "data.csv", "--protected", "gender", "--manifest", "data.froc.csv"],
        ("--manifest data.froc.csv: is also the --output file",),
    ),
    "preprocess --manifest DATA": (
        ["preprocess", "data.csv", "--protected", "gender", "--manifest", "data.csv"],
        ("--manifest data.csv", "(DATA)", "never overwrites its input"),
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_an_output_that_collides_is_refused_before_any_work(case: str, tmp_path: Path) -> None:
    args, needles = CASES[case]
    shutil.copy(SAMPLE_DATA / "synthetic.csv", tmp_path / "data.csv")
    (tmp_path / "m.froc").write_bytes(b"not read: the collision is found first")
    (tmp_path / "sub").mkdir()
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args, engine=ENGINE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    code, engine = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 2, done.stderr
    assert engine == [], f"the engine was imported: {engine}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("froc: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert after == before  # inputs unchanged, no stray file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "m.froc", "sub"]


def _layout(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "model.froc").write_bytes(b"model")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("data.csv", "is the input file (DATA); froc never overwrites its input"),
        ("./sub/../data.csv", "is the input file (DATA)"),
        ("link.csv", "is the input file (DATA)"),  # a symlink to the input
        ("hard.csv", "is the input file (DATA)"),  # a hard link to the input
        ("ABSOLUTE", "is the input file (DATA)"),
        ("model.froc", "is the input file (--model)"),
        ("report.md", None),
        ("sub/data.csv", None),
        ("missing/dir/report.md", None),
    ],
)
def test_check_output_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, message: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    _layout(tmp_path)
    (tmp_path / "link.csv").symlink_to(tmp_path / "data.csv")
    os.link(tmp_path / "data.csv", tmp_path / "hard.csv")
    target = tmp_path / "data.csv" if output == "ABSOLUTE" else Path(output)
    inputs = {"DATA": Path("data.csv"), "--model": Path("model.froc")}
    if message is None:
        check_output_paths(inputs, {"--report": target})
        return
    with pytest.raises(InputError) as raised:
        check_output_paths(inputs, {"--report": target})
    text = str(raised.value)
    assert "\n" not in text and text.startswith(f"--report {target}: ")
    assert message in text


def test_check_output_paths_between_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _layout(tmp_path)
    inputs = {"DATA": Path("data.csv")}
    with pytest.raises(InputError, match=r"^--trace t\.csv: is also the --output file$"):
        check_output_paths(inputs, {"--output": Path("t.csv"), "--trace": Path("./t.csv")})
    # Options not given are skipped; distinct outputs pass.
    check_output_paths({"DATA": Path("data.csv"), "--model": None}, {"--output": None})
    check_output_paths(inputs, {"--output": Path("m.froc"), "--trace": Path("t.csv")})
