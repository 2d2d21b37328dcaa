"""End-to-end tests of ``froc preprocess`` through the typer app.

The output keeps the input's schema and is byte-identical for the same seed; the manifest's
hashes match the files; the input is never overwritten; not met is exit 1 and writes the
output only with --allow-partial; bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_line_error, make_frame
from typer.testing import CliRunner, Result

from froc_cli.cli import app
from froc_cli.core import read_table

FAST = [
    "--surrogate",
    "mlp:8",
    "--epochs",
    "30",
    "--warm-epochs",
    "5",
    "--augment-rounds",
    "2",
    "--target-models",
    "lr,hgb",
    "--transfer-source",
    "mlp:8",
    "--folds",
    "2",
    "--pgd-steps",
    "3",
    "--min-group-size",
    "5",
]
MET = ["--delta-f", "1", "--delta-r", "0"]
NOT_MET = ["--delta-f", "0.02", "--delta-r", "0.9"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    make_frame().to_csv(path, index=False)
    return path


def preprocess(*args: object) -> Result:
    return CliRunner().invoke(app, ["preprocess", *map(str, args)])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_users_line_works_as_written(data_csv: Path) -> None:
    """``froc preprocess data.csv --protected gender --delta-f 0.05 --delta-r 0.6`` with every
    other setting at its default (fewer copy rounds to keep the test short)."""
    result = preprocess(
        data_csv, "--protected", "gender", "--delta-f", "0.05", "--delta-r", "0.6",
        "--augment-rounds", 2,
    )  # fmt: skip
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    default = data_csv.with_name("data.froc.csv")
    assert "3-fold cross-fitted" in result.stdout
    for model in ("mlp:64", "lr", "hgb"):
        assert model in result.stdout
    assert "S_R PGD whitebox, valid records" in result.stdout
    assert "fold 1/3, mlp:64" in result.stderr
    assert "seed 0, device cpu, 1 torch thread(s);" in result.stdout  # the --threads default
    if result.exit_code == 0:
        assert f"output written to {default}" in result.stdout
        assert default.is_file()
    else:
        assert "promise NOT met" in result.stdout
        assert not default.exists()


def test_default_output_is_beside_the_input_with_its_schema(data_csv: Path) -> None:
    before = sha256(data_csv)
    manifest = data_csv.with_name("m.json")
    result = preprocess(data_csv, "--protected", "gender", *MET, *FAST, "--manifest", manifest)
    assert result.exit_code == 0, result.stderr
    written = data_csv.with_name("data.froc.csv")
    assert f"output written to {written}" in result.stdout
    assert sha256(data_csv) == before
    original, out = read_table(data_csv), read_table(written)
    assert list(out.columns) == list(original.columns)
    assert out.dtypes.to_dict() == original.dtypes.to_dict()
    flipped = [flip["index"] for flip in json.loads(manifest.read_text())["flips"]]
    assert flipped
    pd.testing.assert_frame_equal(
        out.iloc[: len(original)].drop(index=flipped), original.drop(index=flipped)
    )
    assert (out.loc[flipped, "approved"] == 1 - original.loc[flipped, "approved"]).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_format_follows_the_suffix_and_keeps_the_schema(
    data_csv: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"out{suffix}"
    manifest = tmp_path / "m.json"
    args = ["--protected", "gender", *NOT_MET, *FAST, "--allow-partial"]
    result = preprocess(data_csv, *args, "-o", out, "--manifest", manifest)
    assert result.exit_code == 1, result.stderr
    original, written = read_table(data_csv), read_table(out)
    assert list(written.columns) == list(original.columns)
    assert written.dtypes.to_dict() == original.dtypes.to_dict()
    info = json.loads(manifest.read_text())
    assert len(written) == len(original) + len(info["additions"])
    assert info["flips"] or info["additions"]
    flipped = {f["index"] for f in info["flips"]}
    same = written.iloc[: len(original)].drop(index=list(flipped))
    pd.testing.assert_frame_equal(same, original.drop(index=list(flipped)))
    for flip in info["flips"]:
        assert original.at[flip["index"], "approved"] == flip["old_label"]
        assert written.at[flip["index"], "approved"] == flip["new_label"]
    # Every added row is a valid record next to its source: categories seen, numbers in
    # range and on their grid, protected column copied, label = the source's after flips.
    added = written.iloc[len(original) :].reset_index(drop=True)
    sources = [a["source_index"] for a in info["additions"]]
    assert [a["output_row"] for a in info["additions"]] == list(range(len(original), len(written)))
    for column in ("education", "region"):
        assert set(added[column]) <= set(original[column])
    for column in ("age", "income"):
        assert added[column].between(original[column].min(), original[column].max()).all()
    assert (added["income"] == added["income"].round(2)).all()
    assert (added["gender"].to_numpy() == original.loc[sources, "gender"].to_numpy()).all()
    assert (added["approved"].to_numpy() == written.loc[sources, "approved"].to_numpy()).all()


def test_manifest_hashes_match_the_files(data_csv: Path, tmp_path: Path) -> None:
    out, manifest = tmp_path / "out.csv", tmp_path / "manifest.json"
    args = ["--protected", "gender", *NOT_MET, *FAST, "--allow-partial", "--seed", "3"]
    result = preprocess(data_csv, *args, "-o", out, "--manifest", manifest)
    assert result.exit_code == 1, result.stderr
    info = json.loads(manifest.read_text())
    assert info["input"]["sha256"] == sha256(data_csv)
    assert info["output"]["sha256"] == sha256(out)
    assert info["output"]["rows"] == len(read_table(out))
    assert info["seed"] == 3 and info["settings"]["seed"] == 3
    assert {"froc", "torch", "python"} <= set(info["versions"])
    assert info["met"] is False and "S_B" in info["reason"]
    assert [v["model"] for v in info["verdicts"]] == ["lr", "hgb"]
    for verdict in info["verdicts"]:
        panel = info["panel"][verdict["model"]]
        assert len(panel["folds"]) == 2
        assert verdict["bias_score"] == panel["mean"]["bias_score"]
        assert verdict["meets_bias"] == (verdict["bias_score"] <= info["targets"]["bias_score"])
    for flip in info["flips"]:
        assert {"index", "old_label", "new_label", "influence", "delta_fairness"} <= set(flip)
    for added in info["additions"]:
        assert {"output_row", "source_index", "attack", "eps", "influence", "round"} <= set(added)
        assert added["attack"].startswith("valid") and added["eps"] == 0.1


def test_not_met_is_exit_1_and_writes_nothing_without_allow_partial(
    data_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = preprocess(data_csv, "--protected", "gender", *NOT_MET, *FAST, "-o", out)
    assert result.exit_code == 1, result.stderr
    assert not out.exists()
    assert "promise NOT met" in result.stdout
    assert "output NOT written" in result.stdout


def test_same_seed_gives_byte_identical_output(data_csv: Path, tmp_path: Path) -> None:
    args = ["--protected", "gender", *NOT_MET, *FAST, "--allow-partial", "--quiet"]
    for suffix in (".csv", ".parquet"):
        first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        assert preprocess(data_csv, *args, "-o", first).exit_code == 1
        assert preprocess(data_csv, *args, "-o", second).exit_code == 1
        assert first.read_bytes() == second.read_bytes()


def test_annotate_adds_the_origin_column(data_csv: Path, tmp_path: Path) -> None:
    out, manifest = tmp_path / "out.parquet", tmp_path / "m.json"
    args = ["--protected", "gender", *NOT_MET, *FAST, "--allow-partial", "--annotate"]
    assert preprocess(data_csv, *args, "-o", out, "--manifest", manifest).exit_code == 1
    written, info = read_table(out), json.loads(manifest.read_text())
    n = len(read_table(data_csv))
    assert list(written.columns)[-1] == "froc_origin"
    origin = written["froc_origin"]
    assert (origin.iloc[[f["index"] for f in info["flips"]]] == "flipped").all()
    assert origin.iloc[:n].isin(["original", "flipped"]).all()
    expected = [f"adversarial:{a['source_index']}" for a in info["additions"]]
    assert origin.iloc[n:].tolist() == expected


def test_json_prints_one_object(data_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = preprocess(data_csv, "--protected", "gender", *MET, *FAST, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["met"] is True and payload["exit_code"] == 0
    assert payload["output_file"] == str(out)
    assert {"accuracy", "bias_score", "robustness_whitebox_valid"} <= set(
        payload["panel"]["lr"]["mean"]
    )
    assert "robustness_transfer_valid" in payload["panel"]["hgb"]["mean"]
    assert result.stderr == ""


def test_refuses_to_overwrite_the_input(data_csv: Path) -> None:
    before = sha256(data_csv)
    result = preprocess(data_csv, "--protected", "gender", *MET, *FAST, "-o", data_csv)
    assert_one_line_error(result, 2, "never overwrites its input")
    assert sha256(data_csv) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--robustness", "greybox"], "--robustness"),
        (["--attack-space", "discrete"], "--attack-space"),
        (["--target-models", "lr,svm"], "--target-models"),
        (["--folds", "1"], "--folds"),
        (["-o", "out.txt"], "out.txt"),
        (["--surrogate", "forest"], "forest"),
        (["--delta-f", "2"], "--delta-f"),
    ],
)
def test_bad_values_are_one_line_exit_2(data_csv: Path, args: list[str], needle: str) -> None:
    result = preprocess(data_csv, "--protected", "gender", *FAST, *args)
    assert_one_line_error(result, 2, needle)


def test_unknown_protected_column_is_exit_2(data_csv: Path) -> None:
    result = preprocess(data_csv, "--protected", "sex", *FAST)
    assert_one_line_error(result, 2, "'sex'", "--protected")


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["preprocess", "--help"])
    assert result.exit_code == 0
    assert "Example: froc preprocess data.csv --protected gender" in result.stdout
