"""The failure matrix of one issue, one test per numbered case (case 1, outputs overwriting
inputs, is tests/cli/test_output_paths.py), each through the typer app in-process:

2. a CI gate never passes a useless model (one that approves nobody, a constant column);
3. an infinite or huge number in a numeric column is one line naming the column (and row);
4. ``preprocess`` keeps the input's own text (codes with leading zeros, ``12.50``) and a
   float32 column's decimal grid;
5. outputs get the modes a plain write gives (umask; an existing file keeps its mode), and
   the command line says which existing files it replaces;
6. bad option values (NaN, seeds out of range, thresholds outside [0, 1]) are exit 2;
7. an output that cannot be written is refused before any training, and the preprocess
   manifest is written even when its output table cannot be;
8. an interrupt between two renames waits for both; an audit of a saved model says when the
   table holds its training rows; semicolon-delimited files, tiny default groups, help and
   version, ``--delta-r 0``;
9. an internal error is exit 4 with a saved traceback; a CUDA index beyond the machine is
   exit 2.

Every run is tiny: small frames, logistic regression, a few epochs, two PGD steps. Names new
in the engine are imported inside the tests, so each test fails alone on an engine without
them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_one_line_error as one_line_error
from conftest import make_biased_frame, make_frame
from typer.testing import CliRunner, Result

from froc_cli.cli import app

LR = ["--target-model", "lr", "--pgd-steps", "2"]
AUDIT_FAST = [*LR, "--epochs", "20"]
# A plain fit that learns something in a blink (lambdas given: no search).
TRAIN_FAST = [*LR, "--lambda-f", "0", "--lambda-r", "0", "--epochs", "30", "--lr", "0.05"]
PREPROCESS_FAST = [
    "--flip-scale", "1.0", "--augment-rounds", "1", "--epochs", "20", "--warm-epochs", "5",
    "--folds", "2", "--target-models", "lr", "--pgd-steps", "2", "--min-group-size", "5",
    "--allow-partial",
]  # fmt: skip
TRAINED_ROWS = "rows this model was trained on"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def froc(*args: object) -> Result:
    return CliRunner().invoke(app, [*map(str, args)])


def one_line_problem(result: Result, code: int, *needles: str) -> str | None:
    """:func:`one_line_error` as a message (None: as expected), for tests that go through a
    list of cases and report every one that fails."""
    try:
        one_line_error(result, code, *needles)
    except AssertionError as error:
        return f"{error!r}; stderr={result.stderr!r}; exception={result.exception!r}"
    return None


def json_of(result: Result) -> dict[str, Any]:
    payload = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert isinstance(payload, dict)
    return payload


def forbid(monkeypatch: pytest.MonkeyPatch, *targets: str) -> None:
    """Make each engine entry point (``module:function``) fail loudly if it is called."""

    def make(name: str) -> Callable[..., NoReturn]:
        def called(*args: object, **kwargs: object) -> NoReturn:
            raise AssertionError(f"{name} was called: the work started")

        return called

    for target in targets:
        module, name = target.split(":")
        monkeypatch.setattr(f"{module}.{name}", make(name))


AUDIT_FILE = "froc_cli.workflows._audit:audit_file"
COMPARE_FILE = "froc_cli.workflows._compare:compare_file"
TRAIN_IN_TABLE = "froc_cli.workflows._train_in:train_in_table"
PREPARE_TRAINER_FILE = "froc_cli.workflows._preprocess:prepare_trainer_file"
ENGINES = (AUDIT_FILE, COMPARE_FILE, TRAIN_IN_TABLE, PREPARE_TRAINER_FILE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A tiny model (train-in -o) and the table it was trained on."""
    folder = tmp_path_factory.mktemp("trained")
    frame = make_biased_frame(600, seed=0)
    frame.to_csv(folder / "train.csv", index=False)
    model = folder / "m.froc"
    result = froc(
        "train-in", folder / "train.csv", "--protected", "gender", *TRAIN_FAST,
        "--allow-infeasible", "-q", "-o", model,
    )  # fmt: skip
    # 1: the plain fit may be judged degenerate; --allow-infeasible writes it all the same.
    assert result.exit_code in (0, 1), (result.stdout, result.stderr, result.exception)
    assert model.is_file()
    return model, frame


# --------------------------------------------------------------------------------------------
# 2. the CI gate passes a useless model
# --------------------------------------------------------------------------------------------


def test_2_gate_fails_a_model_that_approves_nobody(tmp_path: Path) -> None:
    frame = make_frame(400, seed=5)
    rng = np.random.default_rng(1)
    frame["approved"] = (rng.random(len(frame)) < 0.08).astype(np.int64)  # ~8% favourable
    assert 0.05 < frame["approved"].mean() < 0.11
    frame.to_csv(tmp_path / "rare.csv", index=False)
    result = froc(
        "audit", tmp_path / "rare.csv", "--protected", "gender", "--delta-f", "0.1",
        "--delta-r", "0.5", *AUDIT_FAST, "--json",
    )  # fmt: skip
    assert result.exit_code == 1, (result.stderr, result.exception)
    payload = json_of(result)
    metrics = payload["metrics"]
    assert metrics["rows"] == payload["rows"]["test"] == 120
    assert metrics["rarer_decision_share"] == 0.0  # the model approves nobody
    assert metrics["accuracy"] == metrics["majority_floor"]
    gate = payload["gate"]
    assert gate["passed"] is False and payload["exit_code"] == 1
    checks = {check["metric"]: check for check in gate["checks"]}
    # Fair and "robust" for free: the thresholds alone would pass it.
    assert checks["bias_score"]["passed"] and checks["robustness"]["passed"]
    failed = {name for name, check in checks.items() if not check["passed"]}
    assert failed and failed <= {"rarer_decision_share", "accuracy"}, gate
    for name in failed:
        assert checks[name]["comparison"] == ">="
        assert checks[name]["value"] < checks[name]["threshold"]


def test_2_gate_fails_a_constant_predictions_column(tmp_path: Path) -> None:
    frame = make_frame(400, seed=5)
    frame.insert(0, "pred", 1)  # everyone approved
    frame.to_csv(tmp_path / "const.csv", index=False)
    result = froc(
        "audit", tmp_path / "const.csv", "--protected", "gender", "--predictions", "pred",
        "--delta-f", "0.1", "--json",
    )  # fmt: skip
    assert result.exit_code == 1, (result.stderr, result.exception)
    payload = json_of(result)
    assert payload["metrics"]["bias_score"] == 0.0
    assert payload["metrics"]["rows"] == 400
    assert payload["metrics"]["rarer_decision_share"] == 0.0
    checks = {check["metric"]: check for check in payload["gate"]["checks"]}
    assert checks["bias_score"]["passed"]
    assert checks["rarer_decision_share"]["passed"] is False
    assert payload["gate"]["passed"] is False and payload["exit_code"] == 1


def test_2_lr_inf_is_refused(tmp_path: Path) -> None:
    make_frame(300).to_csv(tmp_path / "data.csv", index=False)
    result = froc(
        "audit", tmp_path / "data.csv", "--protected", "gender", *LR, "--epochs", "5",
        "--lr", "inf",
    )  # fmt: skip
    one_line_error(result, 2, "--lr inf: expected a positive finite number")


# --------------------------------------------------------------------------------------------
# 3. infinite and huge numbers
# --------------------------------------------------------------------------------------------


def _with_cell(value: float, row: int, seed: int = 2) -> pd.DataFrame:
    frame = make_biased_frame(300, seed=seed)
    frame.loc[row, "income"] = value
    return frame


def test_3_an_infinite_cell_is_named_with_its_row(tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    _with_cell(np.inf, 17).to_csv(path, index=False)
    assert ",inf," in path.read_text().splitlines()[18]
    result = froc("audit", path, "--protected", "gender", *AUDIT_FAST)
    one_line_error(result, 2, "inf.csv", "'income'", "has 1 infinite value(s) at row 17")


def test_3_dropna_drops_the_infinite_row(tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    _with_cell(-np.inf, 17).to_csv(path, index=False)
    result = froc("audit", path, "--protected", "gender", *AUDIT_FAST, "--dropna", "--json")
    assert result.exit_code == 0, (result.stderr, result.exception)
    payload = json_of(result)
    assert payload["rows"]["total"] == 299 and payload["rows"]["dropped"] == 1
    assert payload["gate"]["checks"] == []  # no thresholds asked for
    assert "RuntimeWarning" not in result.stderr


def test_3_predict_refuses_an_infinite_cell(
    tmp_path: Path, trained: tuple[Path, pd.DataFrame]
) -> None:
    model, _ = trained
    path = tmp_path / "inf.csv"
    _with_cell(np.inf, 5).to_csv(path, index=False)
    result = froc("predict", model, path, "-o", tmp_path / "scored.csv")
    one_line_error(result, 2, "inf.csv", "'income'")
    assert not (tmp_path / "scored.csv").exists()


def test_3_a_number_beyond_2_to_the_53_is_named(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    _with_cell(1e308, 3).to_csv(path, index=False)
    result = froc("audit", path, "--protected", "gender", *AUDIT_FAST)
    one_line_error(result, 2, "huge.csv", "'income'", "beyond +-2^53", "row 3")


# --------------------------------------------------------------------------------------------
# 4. preprocess keeps the input's values (and, with 5, the files' modes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessed:
    """One ``froc preprocess`` run under umask 022: ``output`` new, ``manifest`` existing
    (mode 0o640) before the run; ``result`` what was handed to the manifest writer."""

    source: Path
    output: Path
    manifest: Path
    run: Result
    result: Any


def _codes_csv(path: Path) -> None:
    """make_frame with a code column (``00001``..``00007``) and income written with two
    decimals (``133.80``), as a spreadsheet exports them."""
    frame = make_frame(300, seed=5)
    lines = ["code,age,income,education,region,gender,approved"]
    for i, row in enumerate(frame.itertuples(index=False)):
        lines.append(
            f"{i % 7 + 1:05d},{row.age},{row.income:.2f},{row.education},{row.region},"
            f"{row.gender},{row.approved}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> Preprocessed:
    import froc_cli.reports._manifest as manifest_module

    folder = tmp_path_factory.mktemp("preprocess")
    source, output, manifest = folder / "codes.csv", folder / "out.csv", folder / "manifest.json"
    _codes_csv(source)
    manifest.write_text("{}\n", encoding="utf-8")
    manifest.chmod(0o640)
    seen: dict[str, Any] = {}
    original = manifest_module.write_preprocess_outputs

    def spy(result: Any, **kwargs: Any) -> Any:
        seen["result"] = result
        return original(result, **kwargs)

    previous = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(manifest_module, "write_preprocess_outputs", spy)
            run = froc(
                "preprocess", source, "--protected", "gender", "-o", output,
                "--manifest", manifest, "--annotate", *PREPROCESS_FAST,
            )  # fmt: skip
    finally:
        os.umask(previous)
    assert run.exit_code in (0, 1), (run.stderr, run.exception)
    return Preprocessed(source, output, manifest, run, seen.get("result"))


def test_4_preprocess_keeps_the_inputs_own_text(preprocessed: Preprocessed) -> None:
    source = preprocessed.source.read_text(encoding="utf-8").splitlines()
    output = preprocessed.output.read_text(encoding="utf-8").splitlines()
    assert output[0] == source[0] + ",froc_origin"
    codes = {line.split(",")[0] for line in source[1:]}
    assert codes == {f"{k:05d}" for k in range(1, 8)}
    rows = [line.rsplit(",", 1) for line in output[1:]]
    origins = [origin.split(":")[0] for _, origin in rows]
    assert origins[: len(source) - 1].count("adversarial") == 0
    assert origins.count("original") > 0 and origins.count("adversarial") > 0
    # Every code cell, in every row (added rows too), is one of the input's texts.
    assert {text.split(",")[0] for text, _ in rows} <= codes
    kept = 0
    for i, (text, origin) in enumerate(rows[: len(source) - 1]):
        if origin == "original":  # an untouched row: the very line of the input
            assert text == source[i + 1], (i, text, source[i + 1])
            kept += text.split(",")[2].endswith("0")  # a trailing zero, e.g. 133.80
        else:  # flipped: every cell but the label as written in the input
            assert origin == "flipped"
            assert text.rsplit(",", 1)[0] == source[i + 1].rsplit(",", 1)[0], i
    assert kept > 0  # the trailing-zero case was exercised


def test_4_float32_parquet_added_rows_stay_on_the_grid(tmp_path: Path) -> None:
    frame = make_frame(200, seed=5)
    frame["income"] = frame["income"].astype(np.float32)  # values on a 0.01 grid
    source = tmp_path / "f32.parquet"
    frame.to_parquet(source, index=False)
    output = tmp_path / "out.parquet"
    result = froc(
        "preprocess", source, "--protected", "gender", "-o", output, "--annotate",
        *PREPROCESS_FAST, "--epochs", "10",
    )  # fmt: skip
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    written = pd.read_parquet(output)
    assert written["income"].dtype == np.float32
    added = written[written["froc_origin"].str.startswith("adversarial:")]
    assert len(added) > 0
    values = added["income"].to_numpy()
    sources = added["froc_origin"].str.split(":").str[1].astype(int).to_numpy()
    assert (values != frame["income"].to_numpy()[sources]).any()  # the attack moved some
    on_grid = np.round(values.astype(np.float64), 2).astype(np.float32) == values
    assert on_grid.all(), values[~on_grid][:8]


# --------------------------------------------------------------------------------------------
# 5. modes of written files
# --------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_5_outputs_get_the_modes_of_a_plain_write(
    tmp_path: Path, umask_022: None, preprocessed: Preprocessed
) -> None:
    frame = make_frame(300, seed=5)
    frame.insert(0, "pred", np.random.default_rng(0).integers(0, 2, len(frame)))
    data = tmp_path / "data.csv"
    frame.drop(columns="pred").to_csv(data, index=False)
    scored = tmp_path / "scored.csv"
    frame.to_csv(scored, index=False)
    audit = ["audit", scored, "--protected", "gender", "--predictions", "pred"]
    train = ["train-in", data, "--protected", "gender", *TRAIN_FAST, "--allow-infeasible"]

    fresh_report, fresh_model = tmp_path / "new.md", tmp_path / "new.froc"
    result = froc(*audit, "--report", fresh_report)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "it will be replaced" not in result.stderr
    result = froc(*train, "-o", fresh_model)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert (_mode(fresh_report), _mode(fresh_model)) == (0o644, 0o644)
    assert _mode(preprocessed.output) == 0o644  # preprocess -o, new

    old_report, old_model = tmp_path / "old.md", tmp_path / "old.froc"
    for path in (old_report, old_model):
        path.write_text("before\n", encoding="utf-8")
        path.chmod(0o640)
    result = froc(*audit, "--report", old_report)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert f"--report {old_report} exists; it will be replaced" in result.stderr
    result = froc(*train, "-o", old_model)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert f"--output {old_model} exists; it will be replaced" in result.stderr
    assert old_report.read_text(encoding="utf-8") != "before\n"
    assert old_model.read_bytes() != b"before\n"
    assert (_mode(old_report), _mode(old_model)) == (0o640, 0o640)
    # preprocess --manifest, existing at 0o640 (the fixture's run)
    assert json.loads(preprocessed.manifest.read_text(encoding="utf-8")) != {}
    assert _mode(preprocessed.manifest) == 0o640
    assert (
        f"--manifest {preprocessed.manifest} exists; it will be replaced" in preprocessed.run.stderr
    )


# --------------------------------------------------------------------------------------------
# 6. bad option values
# --------------------------------------------------------------------------------------------


def test_6_bad_option_values_are_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid(monkeypatch, *ENGINES)  # refused before any work, or the case fails
    data = tmp_path / "data.csv"
    make_frame(300).to_csv(data, index=False)
    audit = ["audit", data, "--protected", "gender", *AUDIT_FAST]
    train = ["train-in", data, "--protected", "gender", *TRAIN_FAST]
    seed_range = "expected a whole number from 0 to 2147483647"
    cases: list[tuple[list[object], tuple[str, ...]]] = [
        ([*audit, "--lr", "nan"], ("--lr nan",)),
        ([*train, "--lr", "nan"], ("--lr nan",)),
        ([*audit, "--seed", "-1"], ("--seed -1", seed_range)),
        ([*audit, "--seed", "99999999999"], ("--seed 99999999999", seed_range)),
        ([*train, "--seed", "-1"], ("--seed -1", seed_range)),
        ([*train, "--seed", "99999999999"], ("--seed 99999999999", seed_range)),
        ([*audit, "--delta-f", "-0.1"], ("--delta-f",)),
        ([*audit, "--delta-f", "nan"], ("--delta-f",)),
        ([*audit, "--delta-f", "2"], ("--delta-f",)),
        ([*audit, "--delta-r", "-1"], ("--delta-r",)),
        ([*audit, "--min-group-size", "-5"], ("--min-group-size -5",)),
        ([*audit, "--ci", "--bootstrap", "0"], ("--bootstrap 0",)),
    ]
    problems = {}
    for args, needles in cases:
        problem = one_line_problem(froc(*args), 2, *needles)
        if problem is not None:
            problems[" ".join(map(str, args[4:]))] = problem
    assert not problems, json.dumps(problems, indent=1)


# --------------------------------------------------------------------------------------------
# 7. failures found late
# --------------------------------------------------------------------------------------------


def test_7_unwritable_outputs_are_refused_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid(monkeypatch, *ENGINES)
    monkeypatch.chdir(tmp_path)
    make_frame(300).to_csv("data.csv", index=False)
    Path("folder").mkdir()
    gate = ["--delta-f", "0.1", "--delta-r", "0.5"]
    cases: list[tuple[list[object], tuple[str, ...]]] = [
        (["audit", "data.csv", "--protected", "gender", "--report", "folder"], ("--report",)),
        (
            ["audit", "data.csv", "--protected", "gender", "--report", "data.csv/r.md"],
            ("--report data.csv/r.md",),
        ),
        (
            ["compare", "data.csv", "--protected", "gender", *gate, "--report", "folder"],
            ("--report folder",),
        ),
        (
            ["train-in", "data.csv", "--protected", "gender", *gate, "-o", "data.csv/out.froc"],
            ("--output data.csv/out.froc",),
        ),
        (
            ["preprocess", "data.csv", "--protected", "gender", "-o", "data.csv/out.csv"],
            ("--output data.csv/out.csv",),
        ),
        (
            ["preprocess", "data.csv", "--protected", "gender", "--manifest", "folder"],
            ("--manifest folder",),
        ),
    ]
    problems = {}
    for args, needles in cases:
        problem = one_line_problem(froc(*args), 2, *needles)
        if problem is not None:
            problems[" ".join(map(str, args))] = problem
    assert not problems, json.dumps(problems, indent=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "folder"]


def test_7_manifest_is_written_when_the_table_cannot_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preprocessed: Preprocessed
) -> None:
    import froc_cli.reports._manifest as manifest_module
    from froc_cli.core._errors import InputError

    assert preprocessed.result is not None

    def full_disk(frame: pd.DataFrame, path: object) -> Callable[[Path], object]:
        def write(temp: Path) -> None:
            temp.write_bytes(b"half a tab")
            raise OSError(28, "No space left on device")

        return write

    monkeypatch.setattr(manifest_module, "table_writer", full_disk)
    source = tmp_path / "codes.csv"
    source.write_bytes(preprocessed.source.read_bytes())
    output, manifest = tmp_path / "out.csv", tmp_path / "manifest.json"
    with pytest.raises(InputError) as raised:
        manifest_module.write_preprocess_outputs(
            preprocessed.result,
            input_path=source,
            output_path=output,
            manifest_path=manifest,
        )
    assert "No space left on device" in str(raised.value)
    assert not output.exists()
    written = json.loads(manifest.read_text(encoding="utf-8"))
    assert written["output"] is None
    assert "No space left on device" in written["output_error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.csv", "manifest.json"]


# --------------------------------------------------------------------------------------------
# 8. the rest
# --------------------------------------------------------------------------------------------


def test_8a_an_interrupt_waits_for_both_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from froc_cli.core import _io
    from froc_cli.core._io import commit_files, stage_file

    table, manifest = tmp_path / "out.csv", tmp_path / "manifest.json"
    staged = [
        stage_file(table, lambda temp: temp.write_text("a,b\n1,2\n", encoding="utf-8")),
        stage_file(manifest, lambda temp: temp.write_text("{}\n", encoding="utf-8")),
    ]
    replaced: list[str] = []
    real_replace = os.replace

    class SpiedOs:
        """``os`` as froc_cli.core._io sees it: Ctrl-C arrives right after the first rename."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            replaced.append(Path(dst).name)
            if len(replaced) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(_io, "os", SpiedOs())
    with pytest.raises(KeyboardInterrupt):
        commit_files(staged)
    assert replaced == ["out.csv", "manifest.json"]
    assert table.read_text(encoding="utf-8") == "a,b\n1,2\n"
    assert manifest.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "out.csv"]
    assert signal.getsignal(signal.SIGINT) is handler


def test_8b_an_audit_says_when_it_sees_training_rows(
    tmp_path: Path, trained: tuple[Path, pd.DataFrame]
) -> None:
    model, frame = trained
    subset = frame.drop(index=range(0, len(frame), 10))  # not the training table itself
    subset.to_csv(tmp_path / "subset.csv", index=False)
    fresh = make_biased_frame(300, seed=1)
    assert len(fresh.merge(frame, how="inner")) == 0  # no row of it is a training row
    fresh.to_csv(tmp_path / "fresh.csv", index=False)

    def scope(name: str) -> tuple[str, str]:
        result = froc("audit", tmp_path / name, "--model", model, "--pgd-steps", "2", "--json")
        assert result.exit_code == 0, (result.stderr, result.exception)
        payload = json_of(result)
        return payload["model"], payload["settings"]["scope"]

    model_text, scope_text = scope("subset.csv")
    assert TRAINED_ROWS in model_text and TRAINED_ROWS in scope_text, model_text
    found = re.search(r"about (\d+) of which", scope_text)
    assert found is not None, scope_text
    # 540 audited rows, 70% of the 600 were training rows (fit and validation).
    assert 0.6 * len(subset) <= int(found.group(1)) <= 0.8 * len(subset), scope_text
    model_text, scope_text = scope("fresh.csv")
    assert TRAINED_ROWS not in model_text and TRAINED_ROWS not in scope_text, model_text


def test_8c_a_semicolon_delimited_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    make_frame(100).to_csv(path, index=False, sep=";")
    result = froc("audit", path, "--protected", "gender", *AUDIT_FAST)
    one_line_error(result, 2, "semi.csv", "semicolon-delimited")


def test_8d_many_tiny_groups_point_to_min_group_size_and_protected_group(tmp_path: Path) -> None:
    # Every group of a many-valued column is judged; on a 120-row test split none has 30 rows,
    # so fewer than two groups remain: exit 3 naming the smallest first, with both ways out.
    frame = make_frame(400, seed=4)
    rng = np.random.default_rng(0)
    city = rng.choice(np.array([f"city{i}" for i in range(10)], dtype=object), size=len(frame))
    city[:3] = "hamlet"  # three rows, never approved
    frame.loc[:2, "approved"] = 0
    frame.insert(0, "city", city)
    frame.to_csv(tmp_path / "many.csv", index=False)
    result = froc("audit", tmp_path / "many.csv", "--protected", "city", *AUDIT_FAST)
    one_line_error(result, 3, "hamlet", "--min-group-size", "--protected-group")


def test_8e_predict_help_lists_threads_and_version_prints() -> None:
    from froc_cli.core._version import __version__

    result = froc("predict", "--help")
    assert result.exit_code == 0
    assert "--threads" in result.stdout
    result = froc("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"froc \d+\.\d+\.\d+\n", result.stdout), result.stdout
    assert result.stdout == f"froc {__version__}\n"


def test_8f_delta_r_zero_searches_no_lambda_r(tmp_path: Path) -> None:
    make_frame(600).to_csv(tmp_path / "data.csv", index=False)
    result = froc(
        "train-in", tmp_path / "data.csv", "--protected", "gender", "--delta-f", "0.2",
        "--delta-r", "0", *LR, "--epochs", "30", "--lr", "0.05", "--max-fits", "6", "--json",
    )  # fmt: skip
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    payload = json_of(result)
    assert payload["lambda_r"] == 0.0
    assert payload["trials"], payload
    assert [trial["lambda_r"] for trial in payload["trials"]] == [0.0] * len(payload["trials"])


# --------------------------------------------------------------------------------------------
# 9. internal errors and devices
# --------------------------------------------------------------------------------------------


def test_9_an_internal_error_is_exit_4_with_a_saved_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_frame(300).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def boom(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("boom")

    monkeypatch.setattr("froc_cli.workflows._audit.audit_file", boom)
    result = froc("audit", tmp_path / "data.csv", "--protected", "gender", *AUDIT_FAST)
    assert result.exit_code == 4, (result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" in lines[0] and "please report" in lines[0], lines[0]
    assert "Traceback" not in result.output
    saved = [Path(word) for word in lines[0].split() if word.startswith(str(tmp_path))]
    assert len(saved) == 1 and saved[0].parent == tmp_path / "tmp", lines[0]
    assert "RuntimeError: boom" in saved[0].read_text(encoding="utf-8")


def test_9_a_cuda_index_beyond_the_machine_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_frame(300).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = froc(
        "audit", tmp_path / "data.csv", "--protected", "gender", *AUDIT_FAST,
        "--device", "cuda:7",
    )  # fmt: skip
    one_line_error(result, 2, "cuda:7", "cuda:0 to cuda:0")
