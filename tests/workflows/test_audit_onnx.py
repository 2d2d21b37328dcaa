"""Auditing ONNX models from other stacks: fairness equals the model's own predictions (checked
with scikit-learn and fairlearn), and the black-box attacks are as strong as white-box ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from onnx import TensorProto, helper
from onnx_models import numeric_frame, sklearn_onnx, torch_mlp_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from froc_cli.core import DataSpec, ThreatModel, TrainConfig
from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.metrics import accuracy, bias_score
from froc_cli.models._onnx import load_onnx_model
from froc_cli.workflows._audit import AuditConfig
from froc_cli.workflows._audit_onnx import OnnxAuditOptions, audit_onnx_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST_TRAIN = TrainConfig(epochs=100)


def _audit(
    frame: pd.DataFrame,
    path: Path,
    spec: DataSpec,
    *,
    features: tuple[str, ...] = (),
    threshold: float | None = None,
    queries: int = 100,
    threat: ThreatModel | None = None,
) -> Any:
    model = load_onnx_model(path, features=features)
    config = AuditConfig(data=spec, train=FAST_TRAIN, threat=threat or ThreatModel())
    options = OnnxAuditOptions(features=features, threshold=threshold, queries=queries)
    return audit_onnx_model(frame, model, config, options, source="frame", model_name=str(path))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(500, seed=11)


@pytest.mark.parametrize(
    "classifier",
    [
        LogisticRegression(max_iter=500),
        MLPClassifier((16,), max_iter=400, random_state=0),
    ],
    ids=["logistic", "mlp"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_accuracy_and_bias_equal_sklearns_own_predictions(
    tmp_path: Path, frame: pd.DataFrame, classifier: Any
) -> None:
    pipeline, data, features = sklearn_onnx(frame, classifier)
    path = tmp_path / "pipeline.onnx"
    path.write_bytes(data)
    result = _audit(frame, path, DataSpec(protected="gender", protected_group=("female",)))
    predicted = pipeline.predict(frame[features])
    y = frame["approved"].to_numpy()
    a = (frame["gender"] != "female").to_numpy().astype(int)
    assert result.rows["audited"] == len(frame)
    assert result.metrics["accuracy"] == accuracy(predicted, y)
    assert result.metrics["accuracy"] == float((predicted == y).mean())
    assert result.metrics["bias_score"] == pytest.approx(bias_score(predicted, a), abs=1e-12)
    assert result.metrics["bias_score"] == pytest.approx(
        demographic_parity_difference(y, predicted, sensitive_features=frame["gender"]), abs=1e-9
    )
    # Robustness: every attack named with its queries, and the gated figure is the lowest.
    names = [record["attack"] for record in result.attacks]
    assert names == ["transfer", "query"]
    query = result.attacks[1]
    assert query["queries_per_row_budget"] == 100 and query["queries_per_row_max"] <= 100
    assert result.metrics["robustness"] <= min(
        result.metrics["robustness_transfer"], result.metrics["robustness_query"]
    )
    assert result.metrics["robustness"] < result.metrics["accuracy"]
    assert result.threat.attack_space == "valid"
    payload = result.to_dict()
    assert payload["mode"] == "onnx" and payload["attacks"][1]["attack"] == "query"
    assert "onnxruntime" in payload["settings"]["versions"]


def test_every_group_and_criterion_on_a_column_the_model_reads(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """region is a model input and the protected column: judged with four groups, and never
    changed by an attack."""
    pipeline, data, features = sklearn_onnx(frame, LogisticRegression(max_iter=500))
    assert "region" in features
    path = tmp_path / "with_region.onnx"
    path.write_bytes(data)
    result = _audit(frame, path, DataSpec(protected="region", fairness="odds"))
    predicted = pipeline.predict(frame[features])
    expected = equalized_odds_difference(
        frame["approved"], predicted, sensitive_features=frame["region"]
    )
    assert result.metrics["bias_score"] == pytest.approx(expected, abs=1e-9)
    assert result.metrics["odds_difference"] == pytest.approx(expected, abs=1e-9)
    assert set(result.evaluation.groups) == {"east", "north", "south", "west"}


def test_threshold_decides_on_the_probability(tmp_path: Path, frame: pd.DataFrame) -> None:
    pipeline, data, features = sklearn_onnx(frame, LogisticRegression(max_iter=500), zipmap=False)
    path = tmp_path / "lr.onnx"
    path.write_bytes(data)
    result = _audit(frame, path, DataSpec(protected="gender"), threshold=0.7, queries=20)
    decided = pipeline.predict_proba(frame[features])[:, 1] >= 0.7
    assert result.metrics["accuracy"] == float((decided == frame["approved"]).mean())
    assert "probability >= 0.7" in result.settings["onnx"]["decisions"]


def test_text_labels_and_the_favourable_class(tmp_path: Path, frame: pd.DataFrame) -> None:
    worded = frame.assign(approved=np.where(frame["approved"] == 1, "yes", "no"))
    pipeline, data, features = sklearn_onnx(worded, MLPClassifier((8,), max_iter=300,
                                            random_state=1), zipmap=False)  # fmt: skip
    path = tmp_path / "worded.onnx"
    path.write_bytes(data)
    for positive in ("yes", "no"):
        result = _audit(worded, path, DataSpec(protected="gender", positive=positive), queries=5)
        predicted = pipeline.predict(worded[features])
        assert result.metrics["accuracy"] == float((predicted == worded["approved"]).mean())
        share = float((predicted == positive).mean())
        assert result.metrics["rarer_decision_share"] == pytest.approx(min(share, 1 - share))
    with pytest.raises(InputError, match="predicts class 'no', not a value of label column"):
        _audit(frame, path, DataSpec(protected="gender"))


def test_torch_mlp_black_box_comes_within_005_of_white_box(tmp_path: Path) -> None:
    """A torch network exported with torch.onnx is attacked white-box (its graph converted
    back to torch) and black-box; the query attack is as strong as the gradient attacks."""
    frame = numeric_frame(600, seed=0)
    features = ("a", "b", "c", "d")
    _, data = torch_mlp_onnx(frame, list(features))
    path = tmp_path / "net.onnx"
    path.write_bytes(data)
    threat = ThreatModel(eps=0.1, attack_space="valid", attacks=("pgd", "apgd"))
    result = _audit(frame, path, DataSpec(protected="group"), features=features,
                    queries=1000, threat=threat)  # fmt: skip
    metrics = result.metrics
    assert [r["attack"] for r in result.attacks] == ["pgd", "apgd", "transfer", "query"]
    assert result.settings["onnx"]["white_box"] == "torch conversion of the graph"
    white_box = min(metrics["robustness_pgd"], metrics["robustness_apgd"])
    assert metrics["accuracy"] - white_box > 0.2  # the network is fragile at eps 0.1
    assert abs(metrics["robustness_query"] - white_box) <= 0.05
    assert metrics["robustness"] <= white_box


def test_two_columns_that_are_not_probabilities(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["out"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 2])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "identity.onnx"
    path.write_bytes(model.SerializeToString())
    frame = numeric_frame(100, seed=3)
    with pytest.raises(ModelFileError, match="is not class probabilities"):
        _audit(frame, path, DataSpec(protected="group"), features=("a", "b"))


def test_certify_and_label_input_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    _, data, _ = sklearn_onnx(frame, LogisticRegression(max_iter=300))
    path = tmp_path / "lr.onnx"
    path.write_bytes(data)
    model = load_onnx_model(path)
    config = AuditConfig(data=DataSpec(protected="gender"), certify=True)
    with pytest.raises(InputError, match="--certify"):
        audit_onnx_model(frame, model, config, source="frame", model_name="lr.onnx")
    as_label = AuditConfig(data=DataSpec(protected="gender", label="education"))
    with pytest.raises(InputError, match="reads the label column 'education'"):
        audit_onnx_model(frame, model, as_label, source="frame", model_name="lr.onnx")
