"""Fairness as users define it, end to end through the typer app in-process:

- ``--protected race`` (more than two values, no ``--protected-group``) judges every group;
- ``--protected sex,race`` judges the intersections (``Female & Black``, ...);
- ``--fairness parity|opportunity|odds`` picks the criterion of S_B (``metrics.bias_score``);
- groups below ``--min-group-size`` (on the test split of a trained audit, train-in and compare;
  on the whole file for ``--predictions`` and preprocess) are left out with a warning, and
  fewer than two judged groups is exit 3;
- ``--protected-group A,B`` still binarises.

The criteria are cross-checked against fairlearn on the same rows (every group holds both
labels and both decisions, so fairlearn's 0/0 convention never matters). Every run is tiny:
small seeded frames, logistic regression, a few epochs, two PGD steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error
from typer.testing import CliRunner, Result

from froc_cli.cli import app

LR = ["--target-model", "lr", "--pgd-steps", "2", "--threads", "1"]
AUDIT_FAST = [*LR, "--epochs", "20"]
TRAIN_IN_FAST = [*LR, "--epochs", "20", "--max-fits", "2"]
PREPROCESS_FAST = [
    "--flip-scale", "1.0", "--augment-rounds", "1", "--epochs", "20", "--warm-epochs", "5",
    "--folds", "2", "--target-models", "lr", "--pgd-steps", "2", "--threads", "1",
]  # fmt: skip
COMPARE_FAST = [*AUDIT_FAST, "--lambdas", "0", "--adv-epochs", "5", "--froc-in-budget", "5"]
RACES = ["Black", "White", "Asian", "Other"]
OFFSET = {"Black": -0.8, "White": 0.6, "Asian": 0.3, "Other": -0.2}  # the planted bias
BINARY_METRICS = {"bias_score", "disparate_impact", "equal_opportunity_difference"}
GROUP_METRICS = {"parity_difference", "opportunity_difference", "odds_difference"}
GROUP_FIGURES = {
    "rows",
    "base_rate",
    "favourable_rate",
    "true_positive_rate",
    "false_positive_rate",
    "accuracy",
}
CRITERION = {
    "parity": "parity_difference",
    "opportunity": "opportunity_difference",
    "odds": "odds_difference",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def froc(*args: object) -> Result:
    return CliRunner().invoke(app, [*map(str, args)])


def json_of(result: Result) -> dict[str, Any]:
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr, result.exception)
    payload = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert isinstance(payload, dict)
    return payload


def make_groups_frame(n: int = 600, seed: int = 0, *, tiny: int = 0) -> pd.DataFrame:
    """Approvals with a planted bias across four races (and a smaller one by sex), plus a
    ``decision`` column of imperfect decisions that follow the label and the same bias.
    ``tiny`` adds that many rows of a fifth race, "Pacific". Label ``approved`` (0/1) last."""
    rng = np.random.default_rng(seed)
    race = rng.choice(RACES, size=n, p=[0.3, 0.35, 0.2, 0.15]).astype(object)
    race[: min(tiny, n)] = "Pacific"
    sex = np.where(rng.random(n) < 0.5, "Female", "Male")
    age = rng.integers(18, 76, size=n)
    income = np.round(rng.uniform(10.0, 200.0, size=n), 2)
    offset = np.array([OFFSET.get(r, -0.5) for r in race])
    logit = 0.03 * (income - 105.0) + offset + np.where(sex == "Male", 0.4, -0.4)
    approved = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    nudged = logit + 0.8 * (2 * approved - 1)
    decision = (rng.random(n) < 1 / (1 + np.exp(-nudged))).astype(np.int64)
    if tiny:  # the tiny group holds both labels and both decisions
        approved[:tiny] = np.arange(tiny) % 2
        decision[:tiny] = (np.arange(tiny) // 2) % 2
    frame = pd.DataFrame(
        {"age": age, "income": income, "sex": sex, "race": race, "decision": decision}
    )
    frame["approved"] = approved
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def group_of(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The group names froc gives: the columns' values joined with " & "."""
    return frame[columns].astype(str).agg(" & ".join, axis=1)


def fairlearn_figures(frame: pd.DataFrame, groups: pd.Series) -> dict[str, Any]:
    """fairlearn's three criteria and per-group rates of ``decision`` against ``approved``."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    y, d = frame["approved"].to_numpy(), frame["decision"].to_numpy()
    by_group = MetricFrame(
        metrics={
            "favourable_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=y,
        y_pred=d,
        sensitive_features=groups.to_numpy(),
    )
    tpr = MetricFrame(
        metrics=true_positive_rate, y_true=y, y_pred=d, sensitive_features=groups.to_numpy()
    )
    return {
        "parity": demographic_parity_difference(y, d, sensitive_features=groups.to_numpy()),
        "opportunity": tpr.difference(),
        "odds": equalized_odds_difference(y, d, sensitive_features=groups.to_numpy()),
        "by_group": by_group.by_group,
    }


def assert_matches_fairlearn(
    payload: dict[str, Any], frame: pd.DataFrame, groups: pd.Series
) -> None:
    """Every criterion, and each judged group's rates, equal fairlearn's to 1e-9."""
    ours = payload["metrics"]
    theirs = fairlearn_figures(frame, groups)
    for criterion, key in CRITERION.items():
        assert ours[key] == pytest.approx(theirs[criterion], abs=1e-9), criterion
    assert ours["bias_score"] == pytest.approx(theirs[payload["protected"]["fairness"]], abs=1e-9)
    by_group = theirs["by_group"]
    assert set(payload["groups"]) == set(by_group.index)
    for name, figures in payload["groups"].items():
        assert figures["rows"] == int((groups == name).sum()), name
        for column in ("favourable_rate", "true_positive_rate", "false_positive_rate"):
            assert figures[column] == pytest.approx(by_group.loc[name, column], abs=1e-9)


def odds_from_groups(groups: dict[str, dict[str, float]]) -> float:
    """The largest TPR or FPR gap between two groups."""
    return max(
        max(g[rate] for g in groups.values()) - min(g[rate] for g in groups.values())
        for rate in ("true_positive_rate", "false_positive_rate")
    )


# --------------------------------------------------------------------------------------------
# 1-3. audit --predictions against fairlearn; too small groups
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictions_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = make_groups_frame(700, seed=1)
    # Every intersection is judged (>= 30 rows) and holds both labels and both decisions.
    cells = frame.groupby(["sex", "race"])
    assert cells.size().min() >= 30
    assert (cells["approved"].nunique() == 2).all() and (cells["decision"].nunique() == 2).all()
    return write(tmp_path_factory.mktemp("predictions"), frame), frame


@pytest.mark.parametrize("fairness", ["parity", "opportunity", "odds"])
@pytest.mark.parametrize("protected", ["race", "sex,race"])
def test_1_predictions_audit_equals_fairlearn(
    predictions_csv: tuple[Path, pd.DataFrame], protected: str, fairness: str
) -> None:
    path, frame = predictions_csv
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", protected,
        "--fairness", fairness, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    payload = json_of(result)
    columns = protected.split(",")
    groups = group_of(frame, columns)
    expected_names = sorted(groups.unique())
    assert len(expected_names) == (4 if protected == "race" else 8)
    assert payload["protected"] == {
        "column": protected,
        "groups": expected_names,
        "too_small": {},
        "fairness": fairness,
    }
    if protected == "sex,race":
        assert "Female & Black" in payload["groups"]
    assert payload["metrics"]["bias_score"] == payload["metrics"][CRITERION[fairness]]
    assert not {"disparate_impact", "equal_opportunity_difference"} & set(payload["metrics"])
    for figures in payload["groups"].values():
        assert set(figures) >= GROUP_FIGURES
    assert_matches_fairlearn(payload, frame, groups)
    # base rate and accuracy per group, by hand
    for name, figures in payload["groups"].items():
        rows = frame[groups == name]
        assert figures["base_rate"] == pytest.approx(rows["approved"].mean(), abs=1e-12)
        hits = (rows["approved"] == rows["decision"]).mean()
        assert figures["accuracy"] == pytest.approx(hits, abs=1e-12)


def test_1_default_criterion_is_parity(predictions_csv: tuple[Path, pd.DataFrame]) -> None:
    path, frame = predictions_csv
    result = froc("audit", path, "--predictions", "decision", "--protected", "race", "--json")
    payload = json_of(result)
    assert result.exit_code == 0
    assert payload["protected"]["fairness"] == "parity"
    assert_matches_fairlearn(payload, frame, group_of(frame, ["race"]))


@pytest.mark.parametrize("fairness", ["parity", "opportunity", "odds"])
def test_2_tiny_group_is_left_out_with_a_warning(tmp_path: Path, fairness: str) -> None:
    frame = make_groups_frame(600, seed=2, tiny=12)
    path = write(tmp_path, frame)
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "race",
        "--fairness", fairness, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    payload = json_of(result)
    assert payload["protected"]["too_small"] == {"Pacific": 12}
    assert "Pacific" not in payload["protected"]["groups"]
    assert "Pacific" not in payload["groups"]
    assert sorted(payload["groups"]) == sorted(RACES)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("froc: warning:")]
    assert len(warnings) == 1, result.stderr
    assert "Pacific" in warnings[0] and "--min-group-size" in warnings[0]
    # The figures are fairlearn's on the other groups' rows; the tiny group's rows still count
    # for accuracy (the whole file is audited).
    kept = frame[frame["race"] != "Pacific"]
    assert_matches_fairlearn(payload, kept, group_of(kept, ["race"]))
    assert payload["rows"]["audited"] == len(frame)
    assert payload["metrics"]["accuracy"] == pytest.approx(
        (frame["approved"] == frame["decision"]).mean(), abs=1e-12
    )


def test_2_human_output_names_the_tiny_group(tmp_path: Path) -> None:
    path = write(tmp_path, make_groups_frame(600, seed=2, tiny=12))
    result = froc("audit", path, "--predictions", "decision", "--protected", "race")
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert "Pacific" in result.stdout and "12 rows" in result.stdout
    for race in RACES:
        assert race in result.stdout
    assert any(
        line.startswith("froc: warning:") and "Pacific" in line
        for line in result.stderr.splitlines()
    )


def test_2_intersection_tiny_cell_is_left_out(tmp_path: Path) -> None:
    frame = make_groups_frame(700, seed=1)
    # Make one intersection tiny: keep only 8 rows of Male & Other, with both labels/decisions.
    cell = frame.index[(frame["sex"] == "Male") & (frame["race"] == "Other")]
    frame = frame.drop(cell[8:]).reset_index(drop=True)
    cell = frame.index[(frame["sex"] == "Male") & (frame["race"] == "Other")]
    frame.loc[cell, "approved"] = np.arange(8) % 2
    frame.loc[cell, "decision"] = (np.arange(8) // 2) % 2
    path = write(tmp_path, frame)
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "sex,race",
        "--fairness", "odds", "--json",
    )  # fmt: skip
    payload = json_of(result)
    assert result.exit_code == 0
    assert payload["protected"]["too_small"] == {"Male & Other": 8}
    assert "Male & Other" not in payload["groups"] and len(payload["groups"]) == 7
    assert any(
        line.startswith("froc: warning:") and "Male & Other" in line
        for line in result.stderr.splitlines()
    )
    kept = frame[group_of(frame, ["sex", "race"]) != "Male & Other"]
    assert_matches_fairlearn(payload, kept, group_of(kept, ["sex", "race"]))


def test_3_fewer_than_two_judged_groups_is_exit_3(tmp_path: Path) -> None:
    frame = make_groups_frame(600, seed=2)
    path = write(tmp_path, frame)
    # Only the largest group reaches one row more than the second largest has.
    counts = frame["race"].value_counts()
    minimum = int(counts.iloc[1]) + 1
    assert (counts >= minimum).sum() == 1
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "race",
        "--min-group-size", minimum, "--fairness", "odds",
    )  # fmt: skip
    assert_one_line_error(result, 3, "--min-group-size", "'race'", "data.csv")


def test_3_fewer_than_two_judged_groups_in_a_trained_audit_is_exit_3(tmp_path: Path) -> None:
    path = write(tmp_path, make_groups_frame(400, seed=2).drop(columns="decision"))
    result = froc(
        "audit", path, "--protected", "race", "--min-group-size", "1000", *AUDIT_FAST, "--json"
    )
    assert_one_line_error(result, 3, "--min-group-size", "'race'")


def test_3_fewer_than_two_judged_intersections_is_exit_3(tmp_path: Path) -> None:
    path = write(tmp_path, make_groups_frame(300, seed=2))
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "sex,race",
        "--min-group-size", "500",
    )  # fmt: skip
    assert_one_line_error(result, 3, "--min-group-size")


# --------------------------------------------------------------------------------------------
# 4-5. trained audit over every group; --protected-group still binarises
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """830 rows: four races, and 30 rows of a fifth, Pacific (about 9 in the test split)."""
    frame = make_groups_frame(830, seed=3, tiny=30).drop(columns="decision")
    return write(tmp_path_factory.mktemp("trained"), frame), frame


@pytest.fixture(scope="module")
def trained_odds(trained_csv: tuple[Path, pd.DataFrame]) -> Result:
    path, _ = trained_csv
    return froc(
        "audit", path, "--protected", "race", "--fairness", "odds", "--min-group-size", "20",
        *AUDIT_FAST, "--json",
    )  # fmt: skip


def test_4_trained_audit_judges_every_group(
    trained_csv: tuple[Path, pd.DataFrame], trained_odds: Result
) -> None:
    payload = json_of(trained_odds)
    protected = payload["protected"]
    assert protected["column"] == "race" and protected["fairness"] == "odds"
    assert protected["groups"] == sorted(RACES)
    # Pacific has 30 rows in the file, but is judged on the test split (~30% of them).
    (small,) = protected["too_small"].items()
    assert small[0] == "Pacific" and 0 < small[1] < 20
    assert sorted(payload["groups"]) == sorted(RACES)
    metrics = payload["metrics"]
    assert set(metrics) >= GROUP_METRICS
    assert {"bias_score_pgd", "bias_score_fgsm", "robustness_pgd"} <= set(metrics)
    assert not {"disparate_impact", "equal_opportunity_difference"} & set(metrics)
    assert metrics["bias_score"] == metrics["odds_difference"]
    assert metrics["bias_score"] == pytest.approx(odds_from_groups(payload["groups"]), abs=1e-12)
    for figures in payload["groups"].values():
        assert GROUP_FIGURES | {"robust_accuracy_fgsm", "robust_accuracy_pgd"} <= set(figures)
        assert 0.0 <= figures["robust_accuracy_pgd"] <= figures["accuracy"] + 1e-12
    # The judged groups' rows plus the tiny group's make up the audited test split.
    judged_rows = sum(g["rows"] for g in payload["groups"].values())
    assert judged_rows + small[1] == payload["rows"]["test"] == metrics["rows"]
    warnings = [
        line for line in trained_odds.stderr.splitlines() if line.startswith("froc: warning:")
    ]
    assert len(warnings) == 1 and "Pacific" in warnings[0], trained_odds.stderr


def test_4_human_output_lists_groups_and_criterion(trained_csv: tuple[Path, pd.DataFrame]) -> None:
    path, _ = trained_csv
    result = froc(
        "audit", path, "--protected", "race", "--fairness", "odds", "--min-group-size", "20",
        *AUDIT_FAST,
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    for race in RACES:
        assert race in result.stdout
    text = " ".join(result.stdout.split())  # rich may wrap a long line
    assert "equalized odds" in text
    assert "robust acc." in text and "PGD" in text  # the header may wrap in its column
    assert "Pacific" in text  # named as too small to judge


@pytest.mark.parametrize("fairness", ["parity", "opportunity"])
def test_4_trained_audit_criterion_picks_bias_score(
    trained_csv: tuple[Path, pd.DataFrame], trained_odds: Result, fairness: str
) -> None:
    path, _ = trained_csv
    result = froc(
        "audit", path, "--protected", "race", "--fairness", fairness,
        "--min-group-size", "20", *AUDIT_FAST, "--json",
    )  # fmt: skip
    payload = json_of(result)
    odds = json_of(trained_odds)
    # Same seed, same split, same model: only the criterion behind bias_score changes.
    for key in GROUP_METRICS:
        assert payload["metrics"][key] == odds["metrics"][key], key
    assert payload["groups"] == odds["groups"]
    assert payload["metrics"]["bias_score"] == payload["metrics"][CRITERION[fairness]]
    rate = "favourable_rate" if fairness == "parity" else "true_positive_rate"
    values = [g[rate] for g in payload["groups"].values()]
    assert payload["metrics"]["bias_score"] == pytest.approx(max(values) - min(values), abs=1e-12)


def test_5_protected_group_still_binarises(trained_csv: tuple[Path, pd.DataFrame]) -> None:
    path, _ = trained_csv
    result = froc(
        "audit", path, "--protected", "race", "--protected-group", "Black,Other",
        *AUDIT_FAST, "--json",
    )  # fmt: skip
    payload = json_of(result)
    protected = payload["protected"]
    assert protected["column"] == "race"
    assert protected["group_a0"] == ["Black", "Other"]
    assert "groups" not in protected and "too_small" not in protected
    assert "fairness" not in protected  # an absent fairness means parity
    metrics = payload["metrics"]
    assert set(metrics) >= BINARY_METRICS
    assert not GROUP_METRICS & set(metrics)
    assert set(payload["groups"]) == {"protected", "unprotected"}


def test_5_protected_group_with_predictions_equals_fairlearn(
    predictions_csv: tuple[Path, pd.DataFrame],
) -> None:
    path, frame = predictions_csv
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "race",
        "--protected-group", "Black", "--json",
    )  # fmt: skip
    payload = json_of(result)
    assert payload["protected"]["group_a0"] == ["Black"]
    assert "groups" not in payload["protected"]
    assert "disparate_impact" in payload["metrics"]
    assert "parity_difference" not in payload["metrics"]
    black = frame["race"] == "Black"
    gap = abs(frame.loc[black, "decision"].mean() - frame.loc[~black, "decision"].mean())
    assert payload["metrics"]["bias_score"] == pytest.approx(gap, abs=1e-9)


def test_5_intersection_protected_group_binarises(
    predictions_csv: tuple[Path, pd.DataFrame],
) -> None:
    path, frame = predictions_csv
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "sex,race",
        "--protected-group", "Female & Black", "--json",
    )  # fmt: skip
    payload = json_of(result)
    assert payload["protected"]["column"] == "sex,race"
    assert payload["protected"]["group_a0"] == ["Female & Black"]
    assert "groups" not in payload["protected"]
    assert payload["groups"]["protected"]["rows"] == int(
        ((frame["sex"] == "Female") & (frame["race"] == "Black")).sum()
    )


def test_5_binary_column_with_odds_equals_fairlearn(
    predictions_csv: tuple[Path, pd.DataFrame],
) -> None:
    path, frame = predictions_csv
    result = froc(
        "audit", path, "--predictions", "decision", "--protected", "sex", "--fairness", "odds",
        "--json",
    )  # fmt: skip
    payload = json_of(result)
    assert payload["protected"]["fairness"] == "odds"
    metrics = payload["metrics"]
    assert set(metrics) >= GROUP_METRICS  # not binary parity: every criterion is reported
    theirs = fairlearn_figures(frame, frame["sex"])
    for criterion, key in CRITERION.items():
        assert metrics[key] == pytest.approx(theirs[criterion], abs=1e-9), criterion
    assert metrics["bias_score"] == pytest.approx(theirs["odds"], abs=1e-9)


# --------------------------------------------------------------------------------------------
# 6. train-in, then an audit of the saved model
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_in_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Result]:
    folder = tmp_path_factory.mktemp("train_in")
    path = write(folder, make_groups_frame(800, seed=4).drop(columns="decision"))
    model = folder / "m.froc"
    result = froc(
        "train-in", path, "--protected", "race", "--fairness", "odds", "--delta-f", "0.3",
        "--delta-r", "0.1", *TRAIN_IN_FAST, "--allow-infeasible", "--json", "-o", model,
    )  # fmt: skip
    return path, model, result


def test_6_train_in_reports_every_group(train_in_run: tuple[Path, Path, Result]) -> None:
    _, model, result = train_in_run
    payload = json_of(result)
    assert payload["exit_code"] == result.exit_code
    assert payload["protected"] == {
        "column": "race",
        "groups": sorted(RACES),
        "too_small": {},
        "fairness": "odds",
    }
    test = payload["test"]
    assert sorted(test["groups"]) == sorted(RACES)
    assert set(test["metrics"]) >= GROUP_METRICS
    assert test["metrics"]["bias_score"] == test["metrics"]["odds_difference"]
    assert test["metrics"]["bias_score"] == pytest.approx(
        odds_from_groups(test["groups"]), abs=1e-12
    )
    assert sum(g["rows"] for g in test["groups"].values()) == payload["rows"]["test"]
    gate = {c["metric"]: c for c in payload["gates"]["test"]["checks"]}
    assert gate["bias_score"]["value"] == test["metrics"]["bias_score"]
    assert model.is_file()


def test_6_audit_of_the_saved_model_reports_groups(
    train_in_run: tuple[Path, Path, Result],
) -> None:
    path, model, trained = train_in_run
    test = json_of(trained)["test"]
    result = froc(
        "audit", path, "--model", model, "--fairness", "odds", "--pgd-steps", "2",
        "--threads", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    payload = json_of(result)
    assert payload["protected"]["column"] == "race"
    assert payload["protected"]["fairness"] == "odds"
    assert payload["protected"]["groups"] == sorted(RACES)
    assert sorted(payload["groups"]) == sorted(RACES)
    # On the table it was trained on, the audit sees train-in's test split: the same figures.
    assert payload["rows"]["audited"] == json_of(trained)["rows"]["test"]
    assert payload["metrics"]["bias_score"] == pytest.approx(
        test["metrics"]["bias_score"], abs=1e-12
    )
    for name, figures in payload["groups"].items():
        for key in GROUP_FIGURES:
            assert figures[key] == pytest.approx(test["groups"][name][key], abs=1e-12), key


def test_6_train_in_judges_groups_on_the_audits_test_split(
    trained_csv: tuple[Path, pd.DataFrame], trained_odds: Result
) -> None:
    path, _ = trained_csv
    result = froc(
        "train-in", path, "--protected", "race", "--fairness", "odds", "--min-group-size", "20",
        "--lambda-f", "0", "--lambda-r", "0", *LR, "--epochs", "20", "--json",
    )  # fmt: skip
    payload = json_of(result)
    audit = json_of(trained_odds)
    # audit and train-in split alike for a seed: the same test rows per group, the same tiny
    # group left out, with a warning.
    assert payload["protected"] == audit["protected"]
    assert {k: g["rows"] for k, g in payload["test"]["groups"].items()} == {
        k: g["rows"] for k, g in audit["groups"].items()
    }
    assert any(
        line.startswith("froc: warning:") and "Pacific" in line
        for line in result.stderr.splitlines()
    ), result.stderr


def test_6_model_trained_on_intersections_audits_and_predicts_new_tables(tmp_path: Path) -> None:
    """A model trained with --protected sex,race is audited (and scores rows) on a table it
    never saw: both protected columns are roles, not unknown columns (the audit once refused
    such a table with "--drop names the protected column 'sex'")."""
    train = write(tmp_path, make_groups_frame(700, seed=5).drop(columns="decision"))
    fresh = tmp_path / "fresh.csv"
    make_groups_frame(400, seed=6).drop(columns="decision").to_csv(fresh, index=False)
    model = tmp_path / "sr.froc"
    trained = froc(
        "train-in", train, "--protected", "sex,race", "--min-group-size", "5",
        "--lambda-f", "0", "--lambda-r", "0", *LR, "--epochs", "10", "-o", model,
        "--allow-infeasible", "--quiet",
    )  # fmt: skip
    assert model.is_file(), trained.stderr
    audit = json_of(froc("audit", fresh, "--model", model, "--min-group-size", "5", "--json"))
    assert audit["rows"]["audited"] == 400
    assert set(audit["groups"]) == {
        f"{sex} & {race}" for sex in ("Female", "Male") for race in RACES
    } - set(audit["protected"].get("too_small", []))
    scored = tmp_path / "scored.csv"
    predicted = froc("predict", model, fresh, "-o", scored)
    assert predicted.exit_code == 0, predicted.stderr
    assert len(pd.read_csv(scored)) == 400


# --------------------------------------------------------------------------------------------
# 7. preprocess over intersections
# --------------------------------------------------------------------------------------------


def test_7_preprocess_over_intersections(tmp_path: Path) -> None:
    frame = make_groups_frame(800, seed=5).drop(columns="decision")
    path = write(tmp_path, frame)
    output, manifest = tmp_path / "out.csv", tmp_path / "manifest.json"
    result = froc(
        "preprocess", path, "--protected", "sex,race", "--fairness", "opportunity",
        "--delta-f", "0.3", "--delta-r", "0.1", *PREPROCESS_FAST, "--json",
        "--manifest", manifest, "-o", output,
    )  # fmt: skip
    payload = json_of(result)
    names = sorted(group_of(frame, ["sex", "race"]).unique())
    assert len(names) == 8 and "Female & Black" in names
    assert payload["protected"]["groups"] == names
    assert payload["protected"]["fairness"] == "opportunity"
    written = json.loads(manifest.read_text(encoding="utf-8"))
    assert written["protected"]["groups"] == names
    assert written["protected"]["fairness"] == "opportunity"
    assert written["protected"]["too_small"] == {}
    assert written["met"] == payload["met"] == (result.exit_code == 0)
    # Written when the promise is met (no --allow-partial here).
    assert output.is_file() == bool(payload["met"])


def test_7_preprocess_allow_partial_writes_and_leaves_tiny_groups_out(tmp_path: Path) -> None:
    frame = make_groups_frame(640, seed=6, tiny=10).drop(columns="decision")
    path = write(tmp_path, frame)
    output, manifest = tmp_path / "out.csv", tmp_path / "manifest.json"
    result = froc(
        "preprocess", path, "--protected", "race", "--fairness", "odds", "--delta-f", "0.01",
        "--delta-r", "0.1", *PREPROCESS_FAST, "--allow-partial", "--json",
        "--manifest", manifest, "-o", output,
    )  # fmt: skip
    payload = json_of(result)
    # The whole file is judged: Pacific's 10 rows (all of them) are too few.
    assert payload["protected"]["too_small"] == {"Pacific": 10}
    assert payload["protected"]["groups"] == sorted(RACES)
    written = json.loads(manifest.read_text(encoding="utf-8"))
    assert written["protected"]["too_small"] == {"Pacific": 10}
    assert written["protected"]["fairness"] == "odds"
    assert output.is_file()
    assert any(
        line.startswith("froc: warning:") and "Pacific" in line
        for line in result.stderr.splitlines()
    )


# --------------------------------------------------------------------------------------------
# 8. compare over every group
# --------------------------------------------------------------------------------------------


def test_8_compare_over_every_group(tmp_path: Path) -> None:
    path = write(tmp_path, make_groups_frame(800, seed=4).drop(columns="decision"))
    result = froc(
        "compare", path, "--protected", "race", "--fairness", "opportunity",
        "--methods", "plain,massaging,froc-in", "--delta-f", "0.3", "--delta-r", "0.1",
        *COMPARE_FAST, "--json", "-q",
    )  # fmt: skip
    payload = json_of(result)
    protected = payload["protected"]
    assert protected["column"] == "race"
    assert protected["groups"] == sorted(RACES)
    assert protected["fairness"] == "opportunity"
    rows = {row["method"]: row for row in payload["methods"]}
    assert set(rows) == {"plain", "massaging", "froc-in"}
    for name, row in rows.items():
        assert row["failures"] == 0, (name, row["reasons"])
        mean = row["mean"]
        assert 0.0 <= mean["bias_score"] <= 1.0, name
        assert mean["bias_score"] == mean["opportunity_difference"], name
        assert set(mean) >= GROUP_METRICS, name


@pytest.fixture(scope="module")
def compare_tiny(tmp_path_factory: pytest.TempPathFactory) -> Result:
    """compare on 1030 rows whose fifth race (30 rows) has 9 rows in the test split."""
    frame = make_groups_frame(1030, seed=4, tiny=30).drop(columns="decision")
    path = write(tmp_path_factory.mktemp("compare_tiny"), frame)
    return froc(
        "compare", path, "--protected", "race", "--methods", "plain", "--delta-f", "0.3",
        "--delta-r", "0.1", "--min-group-size", "15", *COMPARE_FAST, "--json",
    )  # fmt: skip


def test_8_compare_notes_too_small_groups(compare_tiny: Result) -> None:
    payload = json_of(compare_tiny)
    (repeat,) = payload["repeats"]
    notes = [note for note in repeat["notes"] if "too small" in note]
    assert len(notes) == 1, repeat["notes"]
    assert "Pacific (9 rows)" in notes[0] and "--min-group-size 15" in notes[0]
    mean = payload["methods"][0]["mean"]
    assert mean["bias_score"] == mean["parity_difference"]


def test_8_compare_warns_and_lists_too_small_groups(compare_tiny: Result) -> None:
    payload = json_of(compare_tiny)
    assert any(
        line.startswith("froc: warning:") and "Pacific" in line
        for line in compare_tiny.stderr.splitlines()
    ), compare_tiny.stderr
    assert payload["protected"]["groups"] == sorted(RACES)
    assert payload["protected"]["too_small"] == {"Pacific": 9}


def test_8_compare_judges_groups_on_the_test_split(tmp_path: Path) -> None:
    path = write(tmp_path, make_groups_frame(800, seed=4).drop(columns="decision"))
    # Test split: 240 rows, every race >= 40; validation split: 112 rows, at most one >= 40.
    result = froc(
        "compare", path, "--protected", "race", "--methods", "plain", "--delta-f", "0.3",
        "--delta-r", "0.1", "--min-group-size", "40", *COMPARE_FAST, "--json", "-q",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.stderr
    payload = json_of(result)
    assert payload["protected"]["groups"] == sorted(RACES)


# --------------------------------------------------------------------------------------------
# 9. bad values: exit 2, one line
# --------------------------------------------------------------------------------------------

THRESHOLDED = ("train-in", "compare")  # need --delta-f/--delta-r (or lambdas) to start


@pytest.mark.parametrize("command", ["audit", "train-in", "preprocess", "compare"])
def test_9_unknown_fairness_is_exit_2(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, make_groups_frame(200, seed=7).drop(columns="decision"))
    extra = ["--delta-f", "0.1", "--delta-r", "0.5"] if command in THRESHOLDED else []
    result = froc(command, path, "--protected", "race", "--fairness", "equality", *extra)
    assert_one_line_error(result, 2, "equality", "--fairness")


@pytest.mark.parametrize("command", ["audit", "train-in", "preprocess", "compare"])
def test_9_unknown_intersection_column_is_exit_2(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, make_groups_frame(200, seed=7).drop(columns="decision"))
    extra = ["--delta-f", "0.1", "--delta-r", "0.5"] if command in THRESHOLDED else []
    result = froc(command, path, "--protected", "sex,nope", *extra)
    assert_one_line_error(result, 2, "'nope'")
