"""The command line answers at once: importing it, its help and the input errors it finds before
any work load neither torch, pandas nor scikit-learn (a test of imports, not of timing:
bench/perf_cli.py measures the time). Its copies of engine defaults and of the engine's first
input checks agree with the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer.main
from conftest import SAMPLE_DATA, make_biased_frame
from typer.testing import CliRunner

from froc_cli.cli import _defaults, _precheck, app
from froc_cli.core._config import DataSpec
from froc_cli.core._errors import InputError
from froc_cli.core._version import __version__

ENGINE = ("torch", "pandas", "sklearn")
SYNTHETIC = str(SAMPLE_DATA / "synthetic.csv")


def _engine_modules_after(code: str, cwd: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter; the engine modules it left imported."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {ENGINE!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=cwd,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_engine() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import froc_cli.cli, sys; "
            "print(sorted(m for m in ('torch','pandas','sklearn') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


_RUN = (
    "from froc_cli.cli import app\n"
    "try:\n"
    "    app({args!r})\n"
    "except SystemExit as exit:\n"
    "    assert exit.code == {code}, exit.code\n"
)

FAST_PATHS = {
    "--help": (["--help"], 0),
    "--version": (["--version"], 0),
    "audit --help": (["audit", "--help"], 0),
    "compare --help": (["compare", "--help"], 0),
    "train-in --help": (["train-in", "--help"], 0),
    "preprocess --help": (["preprocess", "--help"], 0),
    "predict --help": (["predict", "--help"], 0),
    "audit missing file": (["audit", "missing.csv", "--protected", "x"], 2),
    "audit unknown column": (["audit", SYNTHETIC, "--protected", "nosuchcol"], 2),
    "audit unknown label": (["audit", SYNTHETIC, "--protected", "gender", "--label", "y"], 2),
    "audit --threads 0": (["audit", SYNTHETIC, "--protected", "gender", "--threads", "0"], 2),
    "audit --eps 2": (["audit", SYNTHETIC, "--protected", "gender", "--eps", "2"], 2),
    "audit missing --model": (["audit", SYNTHETIC, "--model", "missing.froc"], 2),
    "train-in missing file": (
        ["train-in", "missing.csv", "--protected", "x", "--lambda-f", "1"],
        2,
    ),
    "train-in unknown column": (
        ["train-in", SYNTHETIC, "--protected", "nosuchcol", "--delta-f", "0.1"],
        2,
    ),
    "train-in without weights": (["train-in", SYNTHETIC, "--protected", "gender"], 2),
    "compare unknown column": (
        ["compare", SYNTHETIC, "--protected", "x", "--delta-f", "0.1", "--delta-r", "0.5"],
        2,
    ),
    "preprocess missing file": (["preprocess", "missing.csv", "--protected", "x"], 2),
    "predict missing model": (["predict", "missing.froc", SYNTHETIC, "-o", "out.csv"], 2),
    "bad option type": (["audit", SYNTHETIC, "--protected", "gender", "--epochs", "x"], 2),
}


@pytest.mark.parametrize("case", list(FAST_PATHS), ids=list(FAST_PATHS))
def test_help_and_early_errors_load_no_engine(case: str, tmp_path: Path) -> None:
    args, code = FAST_PATHS[case]
    assert _engine_modules_after(_RUN.format(args=args, code=code), tmp_path) == []


def test_shell_completion_loads_no_engine(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(_FROC_COMPLETE='complete_bash', COMP_WORDS='froc audit --thr', "
        "COMP_CWORD='2')\n"
        "sys.argv = ['froc']\n"
        "from froc_cli.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print()\n"
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "--threads" in done.stdout.split()


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"froc {__version__}\n"


def test_every_command_takes_the_same_threads_option() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    options = {}
    for name, command in group.commands.items():
        (threads,) = [p for p in command.params if p.name == "threads"]
        options[name] = (tuple(threads.opts), threads.default, threads.help)
    assert set(options) == {"audit", "compare", "train-in", "predict", "preprocess"}
    assert len(set(options.values())) == 1, options


# --------------------------------------------------------------------------------------------
# the command line's copies agree with the engine
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_engines() -> None:
    from froc_cli.core._io import TABLE_SUFFIXES
    from froc_cli.data._dataset import _MAX_LISTED
    from froc_cli.methods._froc_in import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS
    from froc_cli.workflows._compare import DEFAULT_LAMBDAS, METHOD_NAMES

    assert _defaults.METHOD_NAMES == METHOD_NAMES
    assert _defaults.DEFAULT_LAMBDAS == DEFAULT_LAMBDAS
    assert _defaults.DEFAULT_EPOCHS == DEFAULT_EPOCHS
    assert _defaults.DEFAULT_BATCH_SIZE == DEFAULT_BATCH_SIZE
    assert _precheck.TABLE_SUFFIXES == TABLE_SUFFIXES
    assert _precheck._MAX_LISTED == _MAX_LISTED


def _engine_error(path: Path, spec: DataSpec, exclude: tuple[str, ...] = ()) -> str | None:
    from froc_cli.core._io import read_table
    from froc_cli.data._dataset import prepare_data

    try:
        prepare_data(read_table(path), spec, source=str(path), exclude=exclude)
    except InputError as error:
        return str(error)
    return None


def _fast_error(path: Path, spec: DataSpec, exclude: tuple[str, ...] = ()) -> str | None:
    try:
        _precheck.check_table_file(path)
        _precheck.check_csv_columns(path, spec, exclude)
    except InputError as error:
        return str(error)
    return None


def _wide_frame() -> pd.DataFrame:
    frame = make_biased_frame(60, seed=1)
    for i in range(10):
        frame.insert(0, f"extra{i}", i)
    return frame


COLUMN_CASES: dict[str, tuple[DataSpec, tuple[str, ...]]] = {
    "protected": (DataSpec(protected="sex"), ()),
    "label": (DataSpec(protected="gender", label="outcome"), ()),
    "label and protected": (DataSpec(protected="sex", label="outcome"), ()),
    "drop": (DataSpec(protected="gender", drop=("age", "nope")), ()),
    "immutable": (DataSpec(protected="gender", immutable=("nope",)), ()),
    "predictions": (DataSpec(protected="gender"), ("score",)),
    "all known": (DataSpec(protected="gender", drop=("age",)), ()),
}


@pytest.mark.parametrize("wide", [False, True], ids=["6 columns", "16 columns"])
@pytest.mark.parametrize("case", list(COLUMN_CASES), ids=list(COLUMN_CASES))
def test_unknown_column_message_is_the_engines(tmp_path: Path, case: str, wide: bool) -> None:
    path = tmp_path / "data.csv"
    (_wide_frame() if wide else make_biased_frame(60, seed=1)).to_csv(path, index=False)
    spec, exclude = COLUMN_CASES[case]
    engine = _engine_error(path, spec, exclude)
    fast = _fast_error(path, spec, exclude)
    if case == "all known":
        assert fast is None
    else:
        assert engine is not None and "unknown column" in engine
        assert fast == engine


FILE_CASES = {
    "missing": "missing.csv",
    "folder": "folder.csv",
    "empty": "empty.csv",
    "unknown suffix": "data.xlsx",
    "missing parquet": "missing.parquet",
}


@pytest.mark.parametrize("case", list(FILE_CASES), ids=list(FILE_CASES))
def test_file_messages_are_the_engines(tmp_path: Path, case: str) -> None:
    path = tmp_path / FILE_CASES[case]
    if case == "folder":
        path.mkdir()
    elif case in ("empty", "unknown suffix"):
        path.write_bytes(b"")
    spec = DataSpec(protected="gender")
    engine = _engine_error(path, spec)
    assert engine is not None
    assert _fast_error(path, spec) == engine


UNSURE = {
    # read_table or pandas would answer first, or differently: no verdict from the header.
    "duplicate header": "a,b,a,y\n1,2,3,0\n",
    "header only": "a,b,y\n",
    "blank data lines": "a,b,y\n\n\n",
    "empty column name": "a,,y\n1,2,0\n",
    "byte-order mark": "\ufeffa,b,y\n1,2,0\n",
    "row wider than the header": "a,b,y\n1,2,0\n1,2,0,9\n",
    "not UTF-8": None,
}


@pytest.mark.parametrize("case", list(UNSURE), ids=list(UNSURE))
def test_no_verdict_when_unsure(tmp_path: Path, case: str) -> None:
    path = tmp_path / "data.csv"
    text = UNSURE[case]
    if text is None:
        path.write_bytes(b"a,b,y\n1,2,0\n\xff\xfe,3,1\n")
    else:
        path.write_text(text, encoding="utf-8")
    _precheck.check_csv_columns(path, DataSpec(protected="nosuchcol"))  # no error raised


def test_train_in_usage_message_is_the_engines() -> None:
    from froc_cli.cli.train_in import NO_WEIGHTS_NOR_THRESHOLDS
    from froc_cli.methods._froc_in import FrocInConfig

    with pytest.raises(InputError) as caught:
        FrocInConfig()
    assert str(caught.value) == NO_WEIGHTS_NOR_THRESHOLDS


def test_model_and_device_guard() -> None:
    from froc_cli.models._nets import parse_model_spec

    for spec in ("lr", "mlp:128", "MLP:64x32 ", "mlp:1x2x3"):
        assert _precheck.safe_model_and_device(spec, "auto")
        parse_model_spec(spec)  # the engine accepts every spec the guard passes
    for spec in ("rnn", "mlp:", "mlp:0", "mlp:²", "mlp:12x"):
        assert not _precheck.safe_model_and_device(spec, "cpu")
    assert not _precheck.safe_model_and_device("lr", "cuda")
    assert _precheck.safe_model_and_device("lr", " CPU ")


@pytest.mark.parametrize(
    ("args", "needle", "where"),
    [
        (["audit", "data.csv", "--protected", "g", "--no-such-option"],
         "No such option: --no-such-option", "froc audit --help"),
        (["audit", "data.csv", "--protected", "g", "--epochs", "abc"],
         "Invalid value for '--epochs'", "froc audit --help"),
        (["audit"], "Missing argument 'data'", "froc audit --help"),
        (["no-such-command"], "No such command 'no-such-command'", "froc --help"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_exit_2(args: list[str], needle: str, where: str) -> None:
    """click's boxed usage message becomes one 'froc: error:' line, like every input error."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("froc: error: "), result.stderr
    assert needle in lines[0] and f"(see '{where}')" in lines[0]


@pytest.mark.parametrize("command", ["audit", "train-in", "preprocess", "compare", "predict"])
def test_flags_do_not_read_as_taking_a_value(command: str) -> None:
    """A flag's help line shows no "<bool>" value (typer's own --help line aside)."""
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    flagged = [line for line in result.stdout.splitlines() if "<bool>" in line]
    assert all("--help" in line for line in flagged), flagged


@pytest.mark.parametrize("as_json", [True, False])
def test_a_closed_stdout_is_exit_141_without_noise(tmp_path: Path, as_json: bool) -> None:
    """``froc audit ... | head``: the reader going away is neither a verdict (1) nor a bug (4)."""
    frame = make_biased_frame(400, seed=1)
    frame.insert(0, "decision", frame["approved"])
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    command = [sys.executable, "-m", "froc_cli", "audit", str(data), "--protected", "gender",
               "--predictions", "decision", *(["--json"] if as_json else [])]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()  # the reader leaves before froc writes its results
        stderr = child.stderr.read().decode()
        code = child.wait(timeout=120)
    assert code == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


def test_no_help_text_is_eaten_by_rich_markup() -> None:
    """rich reads "[word ...]" in a help text as a markup tag and drops it from --help (a
    "[default: ...]" and the "[onnx]" of an install line once vanished that way): no option's
    help may hold one unescaped."""
    import re

    import typer.main

    command = typer.main.get_command(app)
    tag = re.compile(r"(?<!\\)\[/?[a-zA-Z#][^\]]*\]")  # an escaped "\\[" is shown as is
    offenders = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if tag.search(sub.help or ""):
            offenders.append(f"{name}: {sub.help}")
        for param in sub.params:
            text = getattr(param, "help", None) or ""
            if tag.search(text):
                offenders.append(f"{name} {param.name}: {text}")
    assert not offenders, offenders
