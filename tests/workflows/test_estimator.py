"""FairRobustClassifier: the scikit-learn contract on top of FRoC-IN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SAMPLE_DATA
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from froc_cli.core import InputError
from froc_cli.workflows import FairRobustClassifier

FAST = {"model": "mlp:16", "epochs": 20, "pgd_steps": 3, "batch_size": 256, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    with pytest.raises(InputError, match="--lambda-f"):
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
