"""FairRobustClassifier: the scikit-learn contract on top of FRoC-IN."""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import unittest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DATA
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from froc_cli.core import InputError, InsufficientDataError
from froc_cli.workflows import FairRobustClassifier

FAST = {"model": "mlp:16", "epochs": 20, "pgd_steps": 3, "batch_size": 256, "device": "cpu"}
# The settings of the instances given to scikit-learn's estimator checks: a small net and few
# epochs (about 0.05 s a fit on the checks' data), still enough to pass their accuracy check.
CHECKS_FAST = {
    "model": "mlp:8",
    "epochs": 10,
    "lr": 0.05,
    "batch_size": 32,
    "pgd_steps": 2,
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    frame = pd.read_csv(SAMPLE_DATA / "synthetic.csv").head(800)
    y = frame.pop("approved")
    return frame, y, frame["gender"]


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.Series, pd.Series]) -> FairRobustClassifier:
    X, y, _ = data
    return FairRobustClassifier(
        lambda_f=1.0, lambda_r=0.5, protected="gender", protected_group=("female",), **FAST
    ).fit(X, y)


def test_init_only_stores_parameters() -> None:
    clf = FairRobustClassifier(lambda_f=2.0, delta_r=0.6, eps=0.2)
    params = clf.get_params()
    assert params["lambda_f"] == 2.0 and params["delta_r"] == 0.6 and params["eps"] == 0.2
    assert not hasattr(clf, "model_")
    copy = clone(clf)
    assert copy.get_params() == params
    # nothing is validated before fit (sklearn convention): a bad value fails in fit
    bad = FairRobustClassifier(lambda_f=-1.0)
    with pytest.raises(InputError, match=r"lambda_f=-1\.0"):
        bad.fit(pd.DataFrame({"x": [1, 2]}), [0, 1], sensitive_features=["a", "b"])


def test_predict_before_fit_is_an_error() -> None:
    with pytest.raises(NotFittedError):
        FairRobustClassifier(lambda_f=1.0).predict(pd.DataFrame({"x": [1.0]}))


def test_fit_predict_and_proba_agree(
    fitted: FairRobustClassifier, data: tuple[pd.DataFrame, pd.Series, pd.Series]
) -> None:
    X, y, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(fitted.classes_) == [0, 1]
    predicted = fitted.predict(X)
    assert np.array_equal(predicted, np.where(proba[:, 1] > 0.5, 1, 0))
    assert fitted.score(X, y) > max(y.mean(), 1 - y.mean())  # better than the majority floor
    assert fitted.lambda_f_ == 1.0 and fitted.lambda_r_ == 0.5
    assert "gender" not in fitted.feature_names_in_  # the protected column is never a feature
    assert fitted.n_features_in_ == X.shape[1] - 1


def test_sensitive_features_argument_equals_protected_column(
    fitted: FairRobustClassifier, data: tuple[pd.DataFrame, pd.Series, pd.Series]
) -> None:
    X, y, groups = data
    other = FairRobustClassifier(
        lambda_f=1.0, lambda_r=0.5, protected_group=("female",), **FAST
    ).fit(X.drop(columns="gender"), y, sensitive_features=groups)
    assert np.array_equal(other.predict_proba(X), fitted.predict_proba(X))


def test_favourable_class_can_be_the_smaller_label(
    data: tuple[pd.DataFrame, pd.Series, pd.Series],
) -> None:
    X, y, groups = data
    labels = np.where(y == 1, "approved", "declined")
    clf = FairRobustClassifier(lambda_f=0.5, positive="approved", **{**FAST, "epochs": 5})
    clf.fit(X.drop(columns="gender"), labels, sensitive_features=groups)
    assert list(clf.classes_) == ["approved", "declined"]
    proba = clf.predict_proba(X)
    assert np.array_equal(clf.predict(X), np.where(proba[:, 0] > 0.5, "approved", "declined"))


def test_save_and_load_round_trip(
    tmp_path: Path,
    fitted: FairRobustClassifier,
    data: tuple[pd.DataFrame, pd.Series, pd.Series],
) -> None:
    X, _, _ = data
    path = fitted.save(tmp_path / "clf.froc")
    loaded = FairRobustClassifier.load(path)
    assert np.array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.get_params() == fitted.get_params()


def test_bad_inputs(data: tuple[pd.DataFrame, pd.Series, pd.Series]) -> None:
    X, y, groups = data
    clf = FairRobustClassifier(lambda_f=1.0, **FAST)
    with pytest.raises(InputError, match="sensitive_features"):
        clf.fit(X.drop(columns="gender"), y)
    with pytest.raises(InputError, match="expected 2"):
        clf.fit(X, np.arange(len(X)) % 3, sensitive_features=groups)
    with pytest.raises(InputError, match="rows"):
        clf.fit(X, y[:10], sensitive_features=groups)


def test_search_through_the_estimator(data: tuple[pd.DataFrame, pd.Series, pd.Series]) -> None:
    X, y, _ = data
    clf = FairRobustClassifier(
        delta_f=0.15, delta_r=0.3, protected="gender", protected_group=("female",), **FAST
    ).fit(X, y)
    assert clf.search_.mode == "search"
    assert clf.feasible_ == clf.search_.feasible
    assert clf.lambda_f_ == clf.search_.lambda_f


# -- scikit-learn's estimator checks ---------------------------------------------------------

# Checks expected to fail, each with the reason: none (every check passes).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}
# Checks scikit-learn itself skips in this test run, each with the reason.
SKIPPED_BY_SKLEARN: dict[str, str] = {
    "check_array_api_input": (
        "skipped unless SCIPY_ARRAY_API=1 is set before SciPy is first imported, which a "
        "test cannot do in a shared pytest process; test_array_api_check runs it in a "
        "subprocess with it set"
    ),
}


def _expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [
        FairRobustClassifier(**CHECKS_FAST),  # plain training: nothing asked for
        FairRobustClassifier(lambda_r=0.5, **CHECKS_FAST),  # adversarial training (PGD)
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator: FairRobustClassifier, check: Any) -> None:
    try:
        check(estimator)
    except unittest.SkipTest:
        function = check
        while isinstance(function, functools.partial):
            function = function.func
        assert function.__name__ in SKIPPED_BY_SKLEARN, f"{function.__name__} skipped itself"
        raise


def test_array_api_check() -> None:
    """The one check scikit-learn skips in-process, run where it can run."""
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from froc_cli.workflows import FairRobustClassifier\n"
        f"estimator = FairRobustClassifier(**{CHECKS_FAST!r})\n"
        "check_array_api_input('FairRobustClassifier', estimator, array_namespace='numpy',"
        " expect_only_array_outputs=False)\n"
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


# -- the default constructor and plain numeric data -------------------------------------------


# Plain numeric data trains in ~40 Adam steps of 32 rows.
QUICK = {**CHECKS_FAST, "model": "mlp:16", "epochs": 20}


@pytest.fixture(scope="module")
def numeric() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


def test_default_constructor_trains_plainly_without_a_protected_attribute(
    numeric: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = numeric
    clf = FairRobustClassifier()
    assert clf.fit(X, y) is clf
    assert clf.lambda_f_ == 0.0 and clf.lambda_r_ == 0.0  # nothing asked for: plain BCE
    assert clf.protected_values_ == ()
    assert list(clf.classes_) == [0, 1]
    assert clf.n_features_in_ == 4 and not hasattr(clf, "feature_names_in_")
    assert clf.positive_value_ == "1"
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 2) and proba.dtype == np.float64
    assert np.array_equal(clf.predict(X), np.where(proba[:, 1] > 0.5, 1, 0))


def test_robust_training_without_a_protected_attribute(
    numeric: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = numeric
    clf = FairRobustClassifier(lambda_r=0.5, **QUICK).fit(X, y)
    assert clf.lambda_f_ == 0.0 and clf.lambda_r_ == 0.5
    assert clf.score(X, y) > 0.8
    searched = FairRobustClassifier(delta_r=0.5, **{**QUICK, "epochs": 5}).fit(X, y)
    assert searched.search_.mode == "search"


@pytest.mark.parametrize("params", [{"lambda_f": 1.0}, {"delta_f": 0.1}])
def test_fairness_needs_a_protected_attribute(
    numeric: tuple[np.ndarray, np.ndarray], params: dict[str, float]
) -> None:
    X, y = numeric
    with pytest.raises(ValueError, match="sensitive_features=") as caught:
        FairRobustClassifier(**params, **QUICK).fit(X, y)
    assert isinstance(caught.value, InputError) and "--" not in str(caught.value)
    # lambda_f=0 asks for no fairness: fine without one
    assert FairRobustClassifier(lambda_f=0.0, **QUICK).fit(X, y).lambda_f_ == 0.0


@pytest.mark.parametrize(
    ("labels", "favourable"),
    [
        (["no", "yes"], "yes"),
        ([-1, 1], 1),
        ([False, True], True),
        ([3, 7], 7),
    ],
)
def test_any_two_labels_map_through_classes(
    numeric: tuple[np.ndarray, np.ndarray], labels: list[Any], favourable: Any
) -> None:
    X, y01 = numeric
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[y01]
    clf = FairRobustClassifier(**QUICK).fit(X, y)
    assert list(clf.classes_) == sorted(labels)
    assert clf.classes_[clf._favourable_index] == favourable  # default: classes_[1]
    predicted = clf.predict(X)
    assert set(predicted) <= set(labels)
    proba = clf.predict_proba(X)
    assert np.array_equal(predicted, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.9
    # the favourable label chosen explicitly: the same classes, the other column favoured
    other = labels[0]
    flipped = FairRobustClassifier(positive=other, **QUICK).fit(X, y)
    assert list(flipped.classes_) == sorted(labels)
    assert flipped.classes_[flipped._favourable_index] == other
    assert flipped.score(X, y) > 0.9


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"lambda_f": -1.0}, "lambda_f=-1.0"),
        ({"lambda_r": float("nan")}, "lambda_r=nan"),
        ({"delta_f": 1.5}, "delta_f=1.5"),
        ({"delta_r": -0.1}, "delta_r=-0.1"),
        ({"attack": "cw"}, "attack='cw'"),
        ({"eps": 2.0}, "eps=2.0"),
        ({"pgd_steps": 0}, "pgd_steps=0"),
        ({"attack_space": "box"}, "attack_space='box'"),
        ({"attack_target": "all"}, "attack_target='all'"),
        ({"model": "big"}, "model='big'"),
        ({"epochs": 0}, "epochs=0"),
        ({"epochs": 2.5}, "epochs=2.5"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"val_size": 1.0}, "val_size=1.0"),
        ({"search_budget_s": 0}, "search_budget_s=0"),
        ({"seed": -1}, "seed=-1"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"protected": 3}, "protected=3"),
        ({"immutable": ("nope",)}, "immutable=('nope',)"),
        ({"immutable": (9,)}, "immutable=(9,)"),
        ({"positive": "maybe"}, "positive='maybe'"),
    ],
)
def test_errors_name_python_parameters(
    numeric: tuple[np.ndarray, np.ndarray], params: dict[str, Any], named: str
) -> None:
    X, y = numeric
    clf = FairRobustClassifier(**{**QUICK, **params})  # nothing is validated before fit
    with pytest.raises(ValueError) as caught:
        clf.fit(X, y)
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert named in message and "--" not in message
    assert not hasattr(clf, "model_")


def test_data_errors_are_worded_for_python(
    data: tuple[pd.DataFrame, pd.Series, pd.Series],
) -> None:
    X, y, groups = data
    clf = FairRobustClassifier(lambda_f=1.0, **FAST)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"X": X.drop(columns="gender"), "y": y}, "sensitive_features="),
        ({"X": X, "y": y[:10], "sensitive_features": groups}, "rows"),
        ({"X": X, "y": None}, "requires y to be passed"),
        ({"X": X, "y": np.zeros(len(X)), "sensitive_features": groups}, "1 class"),
        ({"X": X, "y": y, "sensitive_features": groups[:5]}, "sensitive_features has shape"),
        (
            {"X": X, "y": y, "sensitive_features": groups.where(groups != "male")},
            "sensitive_features has",
        ),
        ({"X": X, "y": y, "sensitive_features": np.full(len(X), "x")}, "single group"),
        (
            {"X": X.assign(age=X["age"].where(X.index != 3)), "y": y, "sensitive_features": groups},
            "NaN",
        ),
        (
            {"X": X.assign(age=X["age"].astype(str).where(X.index != 3, "n/a")), "y": y},
            "non-numeric text 'n/a'",
        ),
    ]
    for arguments, expected in cases:
        with pytest.raises(ValueError, match=expected) as caught:
            clf.fit(**arguments)
        assert isinstance(caught.value, InputError) and "--" not in str(caught.value)
    with pytest.raises(ValueError, match="protected_group=") as caught:
        FairRobustClassifier(lambda_f=1.0, protected_group=("other",), **FAST).fit(
            X, y, sensitive_features=groups
        )
    assert "--" not in str(caught.value)
    with pytest.raises(ValueError, match="protected='sex' is not a column of X"):
        FairRobustClassifier(lambda_f=1.0, protected="sex", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="X is an array without column names"):
        FairRobustClassifier(protected="gender", **FAST).fit(X.to_numpy(), y)
    tiny = X.head(6)
    with pytest.raises(InsufficientDataError, match="val_size=") as short:
        clf.fit(tiny, y.head(6), sensitive_features=["a", "b", "b", "b", "b", "b"])
    assert isinstance(short.value, ValueError)


def test_predict_checks_the_features_of_fit(
    fitted: FairRobustClassifier, data: tuple[pd.DataFrame, pd.Series, pd.Series]
) -> None:
    X, _, _ = data
    features = X.drop(columns="gender")
    assert list(fitted.feature_names_in_) == list(features.columns)
    # with or without the protected column: the same answer
    assert np.array_equal(fitted.predict_proba(features), fitted.predict_proba(X))
    with pytest.raises(ValueError, match="same order"):
        fitted.predict(features[features.columns[::-1]])
    with pytest.raises(ValueError, match="missing"):
        fitted.predict(features.drop(columns="age"))
    with pytest.raises(ValueError, match="unseen at fit time"):
        fitted.predict(X.assign(extra=1.0))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(X.assign(income=np.nan))
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.predict(np.ones(3))


def test_array_fit_is_positional_and_round_trips(
    tmp_path: Path, numeric: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = numeric
    clf = FairRobustClassifier(lambda_r=0.2, immutable=(3,), **QUICK).fit(X, y)
    assert clf.encoder_.immutable == ("x3",)
    with pytest.raises(ValueError, match="X has 3 features, but FairRobustClassifier is"):
        clf.predict(X[:, :3])
    loaded = FairRobustClassifier.load(clf.save(tmp_path / "clf.froc"))
    assert not hasattr(loaded, "feature_names_in_") and loaded.n_features_in_ == 4
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    unpickled = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(unpickled.predict_proba(X), clf.predict_proba(X))


def test_same_seed_same_model_and_rows_answer_alone(
    numeric: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = numeric
    first = FairRobustClassifier(lambda_r=0.3, **QUICK).fit(X, y).predict_proba(X)
    again = FairRobustClassifier(lambda_r=0.3, **QUICK).fit(X, y).predict_proba(X)
    assert np.array_equal(first, again)
    other = FairRobustClassifier(lambda_r=0.3, **{**QUICK, "seed": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, other)
    clf = FairRobustClassifier(**QUICK).fit(X, y)
    whole = clf.predict_proba(X)
    in_parts = np.concatenate([clf.predict_proba(X[i : i + 7]) for i in range(0, len(X), 7)])
    # float32 rounding would move a row's answer by ~1e-7 with the rows it is batched with;
    # the float64 forward pass leaves ~1e-16 (sklearn's subset checks allow 1e-9)
    np.testing.assert_allclose(in_parts, whole, rtol=0, atol=1e-13)
