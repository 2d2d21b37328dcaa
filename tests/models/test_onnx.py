"""Loading ONNX classifiers: input conventions, outputs, decisions, the torch conversion, and
one-line errors for files that are not binary classifiers."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from conftest import make_frame
from onnx import TensorProto, helper
from onnx_models import numeric_frame, sklearn_onnx, torch_mlp_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier

from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.data import fit_encoder
from froc_cli.models._onnx import (
    OnnxOracle,
    label_texts,
    load_onnx_model,
    match_input_columns,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(400, seed=5)


@pytest.fixture(scope="module")
def logistic(frame: pd.DataFrame) -> tuple[Any, bytes, list[str]]:
    return sklearn_onnx(frame, LogisticRegression(max_iter=500))


def test_sklearn_pipeline_loads_with_named_inputs_and_zipmap(
    tmp_path: Path, logistic: tuple[Any, bytes, list[str]]
) -> None:
    _, data, features = logistic
    model = load_onnx_model(_write(tmp_path, "lr.onnx", data))
    assert model.layout == "columns"
    assert [i.name for i in model.inputs] == features
    assert {i.name: i.kind for i in model.inputs}["education"] == "string"
    assert {i.name: i.kind for i in model.inputs}["income"] == "float"
    assert model.label_output is not None and model.score_output == "zipmap"
    assert model.classes == (0, 1)
    assert "skl2onnx" in model.describe()


def test_oracle_decisions_equal_sklearn_predictions(
    tmp_path: Path, frame: pd.DataFrame, logistic: tuple[Any, bytes, list[str]]
) -> None:
    pipeline, data, features = logistic
    model = load_onnx_model(_write(tmp_path, "lr.onnx", data))
    encoder = fit_encoder(frame, tuple(features))
    oracle = OnnxOracle(
        model=model, encoder=encoder, frame=frame[features], x0=encoder.encode(frame),
        input_columns=match_input_columns(model, list(frame.columns), "frame"),
        positive_value="1",
    )  # fmt: skip
    decisions, margins = oracle.query(np.arange(len(frame)))
    np.testing.assert_array_equal(decisions, pipeline.predict(frame[features]))
    # Margins are the favourable log-odds: sklearn's decision function, to float32 precision.
    np.testing.assert_allclose(
        margins, pipeline.decision_function(frame[features]), rtol=1e-3, atol=1e-3
    )
    assert oracle.queries == len(frame)
    # Encoded variants decode relative to the row: unmoved rows are the file's values.
    x0 = encoder.encode(frame)
    again, _ = oracle.query(np.arange(len(frame)), x0.copy())
    np.testing.assert_array_equal(again, decisions)


def test_oracle_decodes_moves_onto_the_grid(
    tmp_path: Path, frame: pd.DataFrame, logistic: tuple[Any, bytes, list[str]]
) -> None:
    _, data, features = logistic
    model = load_onnx_model(_write(tmp_path, "lr.onnx", data))
    encoder = fit_encoder(frame, tuple(features))
    x0 = encoder.encode(frame)
    oracle = OnnxOracle(
        model=model, encoder=encoder, frame=frame[features], x0=x0,
        input_columns=match_input_columns(model, list(frame.columns), "frame"),
        positive_value="1",
    )  # fmt: skip
    moved = x0[:3].copy()
    age = next(c for c in encoder.columns if c.name == "age")
    moved[:, age.start] += 2.4 / age.scale  # 2.4 years: 2 on the integer grid
    education = next(c for c in encoder.columns if c.name == "education")
    moved[:, education.start : education.start + education.width] = 0
    moved[:, education.start] = 1  # the first category
    feed = oracle.feed(np.arange(3), moved)
    np.testing.assert_array_equal(feed["age"][:, 0], frame["age"].to_numpy()[:3] + 2)
    assert list(feed["education"][:, 0]) == [education.categories[0]] * 3
    np.testing.assert_array_equal(feed["income"][:, 0], frame["income"].to_numpy(np.float32)[:3])


def test_renamed_inputs_match_columns_by_sanitized_name(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    hyphened = frame.rename(columns={"income": "yearly-income"})
    _, data, _ = sklearn_onnx(hyphened, LogisticRegression(max_iter=300))
    model = load_onnx_model(_write(tmp_path, "renamed.onnx", data))
    assert "yearly_income" in [i.name for i in model.inputs]  # skl2onnx's own renaming
    mapping = match_input_columns(model, list(hyphened.columns), "table.csv")
    assert mapping["yearly_income"] == "yearly-income"
    with pytest.raises(InputError) as error:
        match_input_columns(model, [c for c in hyphened.columns if c != "age"], "table.csv")
    message = str(error.value)
    assert "'age'" in message and "table.csv" in message and "its inputs" in message
    assert "\n" not in message


def test_label_texts_are_froc_value_texts() -> None:
    assert list(label_texts(np.array([1, 0, 1], dtype=np.int64))) == ["1", "0", "1"]
    assert list(label_texts(np.array(["a", "b"], dtype=object))) == ["a", "b"]
    assert list(label_texts(np.array([1.0, 0.0]))) == ["1", "0"]


def test_torch_export_converts_to_the_same_decisions(tmp_path: Path) -> None:
    frame = numeric_frame(300, seed=1)
    features = ["a", "b", "c", "d"]
    net, data = torch_mlp_onnx(frame, features, epochs=100)
    model = load_onnx_model(_write(tmp_path, "net.onnx", data), features=tuple(features))
    assert model.layout == "matrix" and model.score_output == "probability"
    encoder = fit_encoder(frame, tuple(features))
    module, reason = model.torch_module(encoder, 0, 0.5)
    assert module is not None, reason
    x = torch.as_tensor(encoder.encode(frame))
    with torch.no_grad():
        logits = module(x)
        reference = torch.logit(net(torch.tensor(frame[features].to_numpy(np.float32)))[:, 0])
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4)
    # A threshold moves the margin by its log-odds.
    shifted, _ = model.torch_module(encoder, 0, 0.8)
    assert shifted is not None
    with torch.no_grad():
        torch.testing.assert_close(shifted(x), logits - np.log(4.0), rtol=1e-5, atol=1e-5)


def test_logit_output_without_sigmoid(tmp_path: Path) -> None:
    frame = numeric_frame(200, seed=2)
    _, data = torch_mlp_onnx(frame, ["a", "b"], sigmoid=False, epochs=50)
    model = load_onnx_model(_write(tmp_path, "logit.onnx", data), features=("a", "b"))
    assert model.score_output == "logit"


def test_matrix_input_needs_features(tmp_path: Path) -> None:
    frame = numeric_frame(200, seed=2)
    _, data = torch_mlp_onnx(frame, ["a", "b", "c"], epochs=5)
    path = _write(tmp_path, "net.onnx", data)
    with pytest.raises(InputError, match="--features COL1,COL2"):
        load_onnx_model(path)
    with pytest.raises(InputError, match=r"names 2 columns; model .* takes 3"):
        load_onnx_model(path, features=("a", "b"))
    # Named in the graph's metadata instead.
    graph = onnx.load_model_from_string(data)
    helper.set_model_props(graph, {"feature_names": '["a", "b", "c"]'})
    named = load_onnx_model(_write(tmp_path, "named.onnx", graph.SerializeToString()))
    assert named.features == ("a", "b", "c")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01garbage that is not protobuf\xff\xfe" * 10, "not an ONNX model"),
        (b"a,b,c\n1,2,3\n", "not an ONNX model"),
    ],
)
def test_corrupt_files_are_one_line_model_file_errors(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    with pytest.raises(ModelFileError) as error:
        load_onnx_model(_write(tmp_path, "bad.onnx", content))
    assert needle in str(error.value) and "\n" not in str(error.value)
    assert str(tmp_path / "bad.onnx") in str(error.value)


def test_truncated_model_is_a_model_file_error(
    tmp_path: Path, logistic: tuple[Any, bytes, list[str]]
) -> None:
    _, data, _ = logistic
    with pytest.raises(ModelFileError) as error:
        load_onnx_model(_write(tmp_path, "cut.onnx", data[: len(data) // 2]))
    assert "not an ONNX model" in str(error.value) and "\n" not in str(error.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_onnx_model(tmp_path / "absent.onnx")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_onnx_model(tmp_path)


def test_a_regressor_is_not_a_classifier(tmp_path: Path, frame: pd.DataFrame) -> None:
    numbers = frame[["age", "income"]].astype(np.float32)
    from skl2onnx import to_onnx

    regressor = LinearRegression().fit(numbers, frame["approved"])
    data = to_onnx(regressor, numbers.to_numpy()[:1]).SerializeToString()
    with pytest.raises(ModelFileError, match="a regressor, not a classifier"):
        load_onnx_model(_write(tmp_path, "reg.onnx", data), features=("age", "income"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_three_classes_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    three = frame.assign(approved=frame["education"])
    _, data, _ = sklearn_onnx(
        three.drop(columns=["education"]), MLPClassifier((4,), max_iter=20, random_state=0)
    )
    with pytest.raises(ModelFileError, match="3 classes"):
        load_onnx_model(_write(tmp_path, "three.onnx", data))


def test_a_graph_with_no_classifier_output(tmp_path: Path) -> None:
    node = helper.make_node("Identity", ["x"], ["out"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 5])],
    )  # fmt: skip
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data.ir_version = 8
    with pytest.raises(ModelFileError, match="5 columns"):
        load_onnx_model(
            _write(tmp_path, "id.onnx", data.SerializeToString()), features=tuple("abcde")
        )


def test_missing_extra_names_it(
    tmp_path: Path, logistic: tuple[Any, bytes, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("onnxruntime"):
            raise ImportError("No module named 'onnxruntime'", name="onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(InputError) as error:
        load_onnx_model(_write(tmp_path, "lr.onnx", logistic[1]))
    assert 'pip install "froc[onnx]"' in str(error.value)
    assert "onnxruntime is not installed" in str(error.value)
