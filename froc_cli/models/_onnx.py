"""Binary classifiers from other stacks, as ONNX files run by onnxruntime (the ``onnx`` extra).

An ONNX file is a protobuf graph: loading it parses data and builds onnxruntime's kernels, it
never runs Python code from the file. Two input conventions are read:

- **one named input per table column** (skl2onnx's pipelines): a string tensor for a
  category, a float tensor for a number, each of shape ``[N, 1]`` (or ``[N]``). Graph input
  names are matched to table columns exactly, else after mapping every character that is not
  a letter, digit or underscore to ``_`` (skl2onnx renames ``education-num`` to
  ``education_num``);
- **one 2-D float input** ``[N, k]`` (torch.onnx, onnxmltools' XGBoost and LightGBM
  converters): the table columns it reads, in order, come from ``features`` (``--features``)
  or from the graph's metadata (``feature_names``: a JSON list or comma-separated names).

Decisions come from the model's label output, or from its probabilities (ZipMap maps or an
``[N, 2]`` tensor) at a threshold; a one-column score is the favourable class's probability
when a Sigmoid makes it, else its logit.

:meth:`OnnxClassifier.torch_module` converts plain network graphs (one 2-D float input;
Gemm, MatMul, Add, Relu, LeakyRelu, Tanh, Flatten, Identity, a final Sigmoid or Softmax) to a
torch module on froc's encoded features, for the white-box attacks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.core._io import to_python
from froc_cli.data._dataset import value_text
from froc_cli.data._encoder import CategoricalColumn, Column, NumericColumn, TabularEncoder

__all__ = [
    "ONNX_EXTRA_HINT",
    "OnnxClassifier",
    "OnnxInput",
    "OnnxOracle",
    "label_texts",
    "load_onnx_model",
    "match_input_columns",
    "onnx_versions",
]

ONNX_EXTRA_HINT = 'pip install "froc[onnx]"'
# Rows per onnxruntime call: bounded memory on large tables, few calls on small ones.
RUN_CHUNK = 65_536
# Probabilities are clipped this far from 0 and 1 before taking log-odds (float32 saturates).
_PROBABILITY_FLOOR = 1e-12
_MAX_LISTED = 8
_FLOAT_KINDS = ("float", "double", "float16")
_LABEL_KINDS = ("int64", "int32", "string", "bool")
_ELEMENT_DTYPES: dict[str, Any] = {
    "float": np.float32,
    "double": np.float64,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
    "string": object,
}
_REGRESSOR_OPS = ("LinearRegressor", "TreeEnsembleRegressor", "SVMRegressor", "TreeEnsemble")


def _listed(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)})" if len(names) > _MAX_LISTED else "")


def _runtime() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules, or one line naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        missing = exc.name or "onnxruntime"
        raise InputError(
            f"auditing an ONNX model needs the onnx extra ({missing} is not installed): "
            f"{ONNX_EXTRA_HINT}"
        ) from exc
    return onnx, onnxruntime


def onnx_versions() -> dict[str, str]:
    """Versions of onnx and onnxruntime, for reports."""
    onnx, onnxruntime = _runtime()
    return {"onnx": str(onnx.__version__), "onnxruntime": str(onnxruntime.__version__)}


def _element(type_text: str) -> str:
    """``tensor(float)`` -> ``float``; maps and sequences keep their text."""
    match = re.fullmatch(r"tensor\((\w+)\)", type_text)
    return match.group(1) if match else type_text


@dataclass(frozen=True)
class OnnxInput:
    """One graph input: its name, element type (``float``, ``string``, ...) and shape (None for
    a dimension without a fixed size)."""

    name: str
    kind: str
    shape: tuple[int | None, ...]

    @property
    def width(self) -> int | None:
        """Columns of a 2-D input (None: not fixed, or not 2-D)."""
        return self.shape[1] if len(self.shape) == 2 else None


@dataclass(frozen=True)
class OnnxOutputs:
    """What a run returned: label values (None without a label output) and, per row, the
    probability (or logit) of each class in ``classes`` order (None without scores)."""

    labels: np.ndarray | None
    scores: np.ndarray | None


@dataclass
class OnnxClassifier:
    """A loaded ONNX binary classifier (see the module docstring).

    ``layout`` is ``columns`` (one input per table column) or ``matrix`` (one 2-D float input
    of the columns ``features``). ``score_output`` is ``zipmap`` (a sequence of maps), ``tensor``
    (``[N, 2]`` class probabilities), ``probability`` or ``logit`` (one column), or None.
    ``classes``: the class label of each score column when the graph names them.
    """

    path: Path
    session: Any
    graph: Any
    inputs: tuple[OnnxInput, ...]
    layout: Literal["columns", "matrix"]
    features: tuple[str, ...]
    label_output: str | None
    score_name: str | None
    score_output: str | None
    classes: tuple[Any, ...] | None
    producer: str
    threads: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def has_probabilities(self) -> bool:
        """Whether the model outputs scores (probabilities or a logit), not only labels."""
        return self.score_output is not None

    def describe(self) -> str:
        """One line: producer, inputs and outputs."""
        if self.layout == "matrix":
            reads = f"one 2-D input {self.inputs[0].name!r} of {len(self.features)} columns"
        else:
            reads = f"{len(self.inputs)} named inputs"
        outputs = [
            f"label {self.label_output!r}" if self.label_output else "",
            f"{self.score_output} scores {self.score_name!r}" if self.score_name else "",
        ]
        return f"ONNX {self.producer}, {reads}; outputs " + " and ".join(o for o in outputs if o)

    def run(self, feed: dict[str, np.ndarray]) -> OnnxOutputs:
        """Run the graph on ``feed`` (input name: array), :data:`RUN_CHUNK` rows at a time."""
        n = len(next(iter(feed.values())))
        names = [name for name in (self.label_output, self.score_name) if name is not None]
        labels: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for start in range(0, max(n, 1), RUN_CHUNK):
            part = {k: v[start : start + RUN_CHUNK] for k, v in feed.items()}
            try:
                results = self.session.run(names, part)
            except Exception as exc:  # onnxruntime raises its own classes: one line
                text = str(exc).strip().splitlines()
                raise InputError(
                    f"{self.path}: onnxruntime failed on the table's rows: "
                    f"{text[-1] if text else type(exc).__name__}"
                ) from exc
            got = dict(zip(names, results, strict=True))
            if self.label_output is not None:
                labels.append(np.asarray(got[self.label_output]).reshape(-1))
            if self.score_name is not None:
                scores.append(self._score_matrix(got[self.score_name]))
        return OnnxOutputs(
            labels=np.concatenate(labels) if labels else None,
            scores=np.concatenate(scores) if scores else None,
        )

    def _score_matrix(self, raw: Any) -> np.ndarray:
        if self.score_output == "zipmap":
            keys = list(self.classes or ())
            if not keys and raw:
                keys = list(raw[0].keys())
            return np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
        values = np.asarray(raw, dtype=np.float64)
        return values.reshape(len(values), -1)

    def torch_module(
        self, encoder: TabularEncoder, favourable_column: int, threshold: float
    ) -> tuple[nn.Module | None, str]:
        """The graph as a torch module from froc's encoded features to the favourable
        decision's logit margin (``> 0``: favourable at ``threshold``), and '' ; or None and
        why it does not convert (only plain network graphs with one 2-D float input do)."""
        if self.layout != "matrix":
            return None, "the graph has named inputs (only plain one-input networks convert)"
        missing = [c for c in self.features if c not in encoder.column_names]
        if missing:
            return None, f"the graph reads {_listed(missing)}, which attacks keep fixed"
        try:
            layers, final = _chain_layers(self.graph, self.inputs[0].name, self.score_name)
        except _NotConvertible as exc:
            return None, str(exc)
        if self.score_name is None or (final is None and self.score_output == "tensor"):
            return None, "its scores are not a sigmoid, softmax or logit output"
        decode = _decoder_layer(encoder, self.features)
        return _EncodedNetwork(decode, layers, final, favourable_column, threshold), ""


class _NotConvertible(Exception):
    """The graph is not a plain network froc converts to torch."""


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _chain_layers(
    graph_model: Any, input_name: str, output_name: str | None
) -> tuple[list[nn.Module], str | None]:
    """The torch layers of a chain graph from ``input_name`` to ``output_name``, and its final
    activation (``sigmoid``, ``softmax`` or None)."""
    from onnx import numpy_helper

    graph = graph_model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = _attributes(node).get("value")
            if value is not None:
                constants[node.output[0]] = numpy_helper.to_array(value)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        for name in node.input:
            if name and name not in constants:
                consumers.setdefault(name, []).append(node)
    layers: list[nn.Module] = []
    final: str | None = None
    current = input_name
    seen = 0
    while current != output_name:
        nodes = consumers.get(current, [])
        if len(nodes) != 1:
            raise _NotConvertible("the graph is not a chain of layers")
        node = nodes[0]
        seen += 1
        if final is not None:
            raise _NotConvertible(f"{node.op_type} follows the final {final}")
        layers.extend(_layer(node, constants))
        if node.op_type in ("Sigmoid", "Softmax"):
            final = node.op_type.lower()
        current = node.output[0]
        if seen > len(graph.node):
            raise _NotConvertible("the graph loops")
    return layers, final


def _layer(node: Any, constants: dict[str, np.ndarray]) -> list[nn.Module]:
    op = node.op_type
    attrs = _attributes(node)
    others = [name for name in node.input[1:] if name]
    if op == "Gemm":
        if attrs.get("transA", 0):
            raise _NotConvertible("Gemm with transA")
        weight = constants.get(node.input[1])
        bias = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if weight is None:
            raise _NotConvertible("Gemm whose weight is not a constant")
        weight = weight.T if not attrs.get("transB", 0) else weight
        weight = weight * float(attrs.get("alpha", 1.0))
        if bias is not None:
            bias = np.broadcast_to(bias * float(attrs.get("beta", 1.0)), (weight.shape[0],))
        return [_affine(weight, bias)]
    if op == "MatMul":
        weight = constants.get(node.input[1])
        if weight is None or weight.ndim != 2:
            raise _NotConvertible("MatMul whose weight is not a constant matrix")
        return [_affine(weight.T, None)]
    if op in ("Add", "Sub"):
        bias = constants.get(node.input[1])
        if bias is None:
            raise _NotConvertible(f"{op} of two computed tensors")
        shift = torch.tensor(np.array(bias, dtype=np.float32).reshape(-1))
        return [_Shift(shift if op == "Add" else -shift)]
    if others and any(name not in constants for name in others) and op != "Reshape":
        raise _NotConvertible(f"{op} with a computed second input")
    simple: dict[str, Callable[[], nn.Module]] = {
        "Relu": nn.ReLU,
        "Tanh": nn.Tanh,
        "Identity": nn.Identity,
        "Flatten": nn.Flatten,
        "Sigmoid": nn.Identity,  # the final sigmoid: the module returns its logit
        "Softmax": nn.Identity,  # the final softmax: the module returns the logit margin
    }
    if op == "LeakyRelu":
        return [nn.LeakyReLU(float(attrs.get("alpha", 0.01)))]
    if op in simple:
        return [simple[op]()]
    raise _NotConvertible(f"operator {op} is not a plain network layer")


def _affine(weight: np.ndarray, bias: np.ndarray | None) -> nn.Linear:
    """``nn.Linear`` of a (out, in) weight and an optional bias, in float32."""
    out_features, in_features = weight.shape
    layer = nn.Linear(in_features, out_features, bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(np.array(weight, dtype=np.float32)))
        if bias is not None:
            layer.bias.copy_(torch.tensor(np.array(bias, dtype=np.float32)))
    return layer


class _Shift(nn.Module):
    """``x + shift`` (an ONNX Add or Sub of a constant)."""

    shift: torch.Tensor

    def __init__(self, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The shifted input."""
        return x + self.shift


def _decoder_layer(encoder: TabularEncoder, features: tuple[str, ...]) -> nn.Linear:
    """Encoded features -> the graph's raw input columns, as one linear map: a number is
    ``x * scale + minimum``, a category block gives the block's value (its one-hot times the
    categories as numbers)."""
    by_name = {column.name: column for column in encoder.columns}
    weight = np.zeros((len(features), encoder.n_features), dtype=np.float64)
    bias = np.zeros(len(features), dtype=np.float64)
    for j, name in enumerate(features):
        column = by_name[name]
        if isinstance(column, NumericColumn):
            weight[j, column.start] = column.scale
            bias[j] = column.minimum
        else:
            values = [float(v) for v in column.categories]
            weight[j, column.start : column.start + column.width] = values
    return _affine(weight, bias)


class _EncodedNetwork(nn.Module):
    """Encoded features -> raw columns -> the converted graph -> the favourable decision's
    logit margin ``logit(p_favourable) - logit(threshold)``."""

    def __init__(
        self,
        decode: nn.Linear,
        layers: list[nn.Module],
        final: str | None,
        favourable_column: int,
        threshold: float,
    ) -> None:
        super().__init__()
        self.decode = decode
        self.layers = nn.Sequential(*layers)
        self.final = final
        self.favourable_column = favourable_column
        self.offset = math.log(threshold / (1.0 - threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit margin per row."""
        out = self.layers(self.decode(x))
        out = out.reshape(out.shape[0], -1)
        if out.shape[1] == 1:
            logit = out[:, 0]
        else:  # softmax (or raw) scores of two classes: the favourable one's log-odds
            logit = out[:, self.favourable_column] - out[:, 1 - self.favourable_column]
        return logit - self.offset


def _metadata_features(graph_model: Any) -> tuple[str, ...] | None:
    for prop in graph_model.metadata_props:
        if prop.key in ("feature_names", "froc_features", "features"):
            text = prop.value.strip()
            try:
                names = json.loads(text)
            except json.JSONDecodeError:
                names = [part.strip() for part in text.split(",") if part.strip()]
            if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                return tuple(names)
    return None


def _class_labels(graph_model: Any) -> tuple[Any, ...] | None:
    """Class labels named by a ZipMap or an ai.onnx.ml classifier node, in score order."""
    for wanted in ("ZipMap", None):
        for node in graph_model.graph.node:
            if wanted is not None and node.op_type != wanted:
                continue
            attrs = _attributes(node)
            for key in ("classlabels_int64s", "classlabels_ints", "classlabels_strings"):
                if key in attrs and len(attrs[key]):
                    values = attrs[key]
                    if key == "classlabels_strings":
                        return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)
                    return tuple(int(v) for v in values)
    return None


def _producing_op(graph_model: Any, name: str) -> str | None:
    by_output = {out: node for node in graph_model.graph.node for out in node.output}
    node = by_output.get(name)
    while node is not None and node.op_type in ("Identity", "Reshape", "Cast", "Flatten"):
        node = by_output.get(node.input[0])
    return None if node is None else str(node.op_type)


def _shape(arg: Any) -> tuple[int | None, ...]:
    shape = getattr(arg, "shape", None) or []
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in shape)


def load_onnx_model(
    path: str | Path, *, features: tuple[str, ...] = (), threads: int = 1
) -> OnnxClassifier:
    """Read and check an ONNX binary classifier (see the module docstring).

    Raises :class:`ModelFileError` (exit 2) for a missing, empty, corrupt or unloadable file,
    one that is not a binary classifier, or ``features`` that do not fit its input; and
    :class:`InputError` naming the ``onnx`` extra when onnxruntime is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected an .onnx model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data:
        raise ModelFileError(f"{path}: the file is empty, expected an ONNX model")
    onnx, onnxruntime = _runtime()
    try:
        graph_model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelFileError(f"{path}: not an ONNX model (the file does not parse)") from exc
    if not graph_model.graph.node or not graph_model.graph.output:
        raise ModelFileError(f"{path}: not an ONNX model (no graph in the file)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise ModelFileError(
            f"{path}: onnxruntime cannot load the model: {lines[-1] if lines else exc}"
        ) from exc
    inputs = tuple(
        OnnxInput(name=arg.name, kind=_element(arg.type), shape=_shape(arg))
        for arg in session.get_inputs()
    )
    layout, feature_names = _layout(path, graph_model, inputs, features)
    label_output, score_name, score_output = _outputs(path, graph_model, session)
    classes = _class_labels(graph_model)
    if classes is not None and len(classes) != 2:
        raise ModelFileError(
            f"{path}: a classifier of {len(classes)} classes ({_listed(list(map(str, classes)))}); "
            "froc audits binary classifiers"
        )
    producer = " ".join(
        p for p in (graph_model.producer_name, graph_model.producer_version) if p
    ).strip()
    return OnnxClassifier(
        path=path,
        session=session,
        graph=graph_model,
        inputs=inputs,
        layout=layout,
        features=feature_names,
        label_output=label_output,
        score_name=score_name,
        score_output=score_output,
        classes=classes,
        producer=producer or "model",
        threads=threads,
    )


def _layout(
    path: Path, graph_model: Any, inputs: tuple[OnnxInput, ...], features: tuple[str, ...]
) -> tuple[Literal["columns", "matrix"], tuple[str, ...]]:
    unsupported = [i for i in inputs if i.kind not in _ELEMENT_DTYPES or len(i.shape) > 2]
    if unsupported:
        first = unsupported[0]
        raise ModelFileError(
            f"{path}: input {first.name!r} is a {first.kind} of shape {list(first.shape)}; "
            "expected one tensor per table column or one 2-D float tensor"
        )
    single = inputs[0] if len(inputs) == 1 else None
    wide = (
        single is not None
        and single.kind in _FLOAT_KINDS
        and len(single.shape) == 2
        and single.width != 1
    )
    if features:
        if single is None or single.kind not in _FLOAT_KINDS or len(single.shape) != 2:
            raise InputError(
                f"--features: model {path} has {len(inputs)} input(s) "
                f"({_listed([i.name for i in inputs])}), not one 2-D float input"
            )
        if single.width is not None and single.width != len(features):
            raise InputError(
                f"--features names {len(features)} columns; model {path} input "
                f"{single.name!r} takes {single.width}"
            )
        return "matrix", features
    if wide and single is not None:
        named = _metadata_features(graph_model)
        if named is None:
            raise InputError(
                f"{path}: one 2-D input {single.name!r} of "
                f"{single.width if single.width is not None else 'any number of'} columns, "
                "and the graph does not name them; give the table columns in order with "
                "--features COL1,COL2,..."
            )
        if single.width is not None and single.width != len(named):
            raise ModelFileError(
                f"{path}: its metadata names {len(named)} features, input {single.name!r} "
                f"takes {single.width}"
            )
        return "matrix", named
    not_column = [i for i in inputs if len(i.shape) == 2 and i.width not in (1, None)]
    if not_column:
        raise ModelFileError(
            f"{path}: input {not_column[0].name!r} has {not_column[0].width} columns next to "
            "other inputs; expected one input per table column"
        )
    return "columns", tuple(i.name for i in inputs)


def _outputs(
    path: Path, graph_model: Any, session: Any
) -> tuple[str | None, str | None, str | None]:
    """(label output, score output, score kind) of a binary classifier, or ModelFileError."""
    label_output: str | None = None
    score_name: str | None = None
    score_output: str | None = None
    described = []
    for arg in session.get_outputs():
        kind = _element(arg.type)
        shape = _shape(arg)
        described.append(f"{arg.name!r} {arg.type} {list(shape)}")
        op = _producing_op(graph_model, arg.name)
        if op in _REGRESSOR_OPS:
            raise ModelFileError(
                f"{path}: output {arg.name!r} comes from a {op}: a regressor, not a classifier"
            )
        width = shape[1] if len(shape) == 2 else (1 if len(shape) == 1 else None)
        if kind in _LABEL_KINDS and len(shape) in (1, 2) and width in (1, None):
            label_output = label_output or arg.name
        elif kind.startswith("seq(map(") and score_name is None:
            score_name, score_output = arg.name, "zipmap"
        elif kind in _FLOAT_KINDS and len(shape) in (1, 2) and score_name is None:
            if width == 2:
                score_name, score_output = arg.name, "tensor"
            elif width == 1:
                score_name = arg.name
                score_output = "probability" if op == "Sigmoid" else "logit"
            elif width is not None and width > 2:
                raise ModelFileError(
                    f"{path}: output {arg.name!r} has {width} columns (a classifier of "
                    f"{width} classes, or not a classifier); froc audits binary classifiers"
                )
    if label_output is None and score_name is None:
        raise ModelFileError(
            f"{path}: not a binary classifier: outputs {'; '.join(described)} (expected a "
            "label output or the probabilities of two classes)"
        )
    if label_output is not None and score_output in ("probability", "logit"):
        # A label next to a single float column: the column may be anything (a regressor's
        # value), so decisions come from the label alone.
        score_name = score_output = None
    return label_output, score_name, score_output


def match_input_columns(model: OnnxClassifier, columns: list[str], source: str) -> dict[str, str]:
    """Graph input name -> table column, for the ``columns`` layout: the same name, else the
    one column whose name maps to it with every non-word character replaced by ``_``.
    One line naming both sides when an input has no column."""
    if model.layout == "matrix":
        lacking = [c for c in model.features if c not in columns]
        if lacking:
            raise InputError(
                f"{source}: lacks column(s) {_listed(lacking)} that model {model.path} reads "
                f"(--features or its metadata); the table's columns: {_listed(columns)}"
            )
        return {}
    sanitized: dict[str, list[str]] = {}
    for column in columns:
        sanitized.setdefault(re.sub(r"\W", "_", column), []).append(column)
    mapping: dict[str, str] = {}
    lacking = []
    for spec in model.inputs:
        if spec.name in columns:
            mapping[spec.name] = spec.name
        elif len(sanitized.get(spec.name, [])) == 1:
            mapping[spec.name] = sanitized[spec.name][0]
        else:
            lacking.append(spec.name)
    if lacking:
        raise InputError(
            f"{source}: no column for input(s) {_listed(lacking)} of model {model.path} (its "
            f"inputs: {_listed([i.name for i in model.inputs])}; the table's columns: "
            f"{_listed(columns)})"
        )
    return mapping


def label_texts(labels: np.ndarray) -> np.ndarray:
    """Each label value as froc's canonical text (``1`` for 1 and 1.0, as
    :func:`froc_cli.data.value_text`), computed once per distinct value (hashed, not sorted:
    the query attack reads the labels of every query)."""
    codes, uniques = pd.factorize(np.asarray(labels).reshape(-1))
    texts = np.array([value_text(to_python(u)) for u in uniques], dtype=object)
    return texts[codes]


@dataclass
class OnnxOracle:
    """Queries of an ONNX classifier on some rows of a table, and on encoded variants of them.

    ``frame`` holds the audited rows' original values of every column the model reads;
    ``encoder`` encodes the columns an attacker may change (the protected column and anything
    else the model reads are fed as they are). ``x0`` are the rows' encoded features.
    A query decodes an encoded variant relative to its row: a number is the row's own value plus
    the encoded move times the column's scale, rounded to the column's grid (an unmoved value
    is the file's exact value); a category is its block's largest entry.

    Decisions (1 = favourable): the model's label output, or its favourable probability
    ``>= threshold`` (``use_scores``). Scores are the log-odds margin ``logit(p) -
    logit(threshold)`` (> 0 leans favourable); without probabilities, +1 / -1 from the decision.
    ``queries`` counts the rows sent to the model.
    """

    model: OnnxClassifier
    encoder: TabularEncoder
    frame: pd.DataFrame
    x0: np.ndarray
    input_columns: dict[str, str]
    positive_value: str
    threshold: float = 0.5
    use_scores: bool = False
    favourable_column: int = 1
    queries: int = 0
    _fixed: dict[str, np.ndarray] = field(default_factory=dict)
    _categories: dict[str, np.ndarray] = field(default_factory=dict)
    _encoded: dict[str, Column] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._encoded = {column.name: column for column in self.encoder.columns}
        kinds = {spec.name: spec.kind for spec in self.model.inputs}
        matrix_kind = self.model.inputs[0].kind if self.model.layout == "matrix" else None
        for name, column in self._feeds():
            kind = matrix_kind or kinds[name]
            dtype = _ELEMENT_DTYPES[kind]
            series = self.frame[column]
            try:
                if dtype is object:
                    values = series.astype(str).to_numpy(dtype=object)
                else:
                    values = np.asarray(series.to_numpy()).astype(dtype)
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"{self.model.path}: input {name!r} takes {kind} values; column {column!r} "
                    f"holds {series.dtype} values such as {series.iloc[0]!r}"
                ) from exc
            self._fixed[column] = values
        for encoded in self.encoder.columns:
            if isinstance(encoded, CategoricalColumn):
                kind = matrix_kind or kinds[self._input_of(encoded.name)]
                dtype = _ELEMENT_DTYPES[kind]
                try:
                    cats = (
                        np.array([str(v) for v in encoded.categories], dtype=object)
                        if dtype is object
                        else np.array(encoded.categories).astype(dtype)
                    )
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        f"{self.model.path}: input {self._input_of(encoded.name)!r} takes "
                        f"{kind} values; column {encoded.name!r} holds categories such as "
                        f"{encoded.categories[0]!r}"
                    ) from exc
                self._categories[encoded.name] = cats

    def _feeds(self) -> list[tuple[str, str]]:
        """(input name, table column) pairs, one per column fed."""
        if self.model.layout == "matrix":
            return [(self.model.inputs[0].name, column) for column in self.model.features]
        return list(self.input_columns.items())

    def _input_of(self, column: str) -> str:
        if self.model.layout == "matrix":
            return self.model.inputs[0].name
        return next(name for name, col in self.input_columns.items() if col == column)

    def _column_values(self, column: str, rows: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        fixed = self._fixed[column][rows]
        spec = self._encoded.get(column)
        if x is None or spec is None:
            return fixed
        if isinstance(spec, NumericColumn):
            moved = x[:, spec.start] - self.x0[rows, spec.start]
            if not moved.any():
                return fixed
            base = fixed.astype(np.float64)
            values = base + moved.astype(np.float64) * spec.scale
            if spec.grid is not None:
                decimals = max(0, round(-math.log10(spec.grid)))
                steps = np.round((values - base) / spec.grid)
                values = np.round(base + steps * spec.grid, decimals)
            return np.where(moved != 0, values, base).astype(fixed.dtype)
        block = x[:, spec.start : spec.start + spec.width]
        picked: np.ndarray = self._categories[column][block.argmax(axis=1)]
        return picked

    def feed(self, rows: np.ndarray, x: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The graph's inputs for ``rows`` (positions in ``frame``), as they are (``x`` None)
        or with the encoded features ``x`` (one row of ``x`` per entry of ``rows``)."""
        if self.model.layout == "matrix":
            spec = self.model.inputs[0]
            stacked = np.stack(
                [self._column_values(c, rows, x) for c in self.model.features], axis=1
            )
            return {spec.name: stacked.astype(_ELEMENT_DTYPES[spec.kind])}
        feed = {}
        for spec in self.model.inputs:
            values = self._column_values(self.input_columns[spec.name], rows, x)
            feed[spec.name] = values.reshape(-1, 1) if len(spec.shape) == 2 else values
        return feed

    def decide(self, outputs: OnnxOutputs) -> tuple[np.ndarray, np.ndarray]:
        """(decisions 0/1, score margins) of a run's outputs."""
        margin: np.ndarray | None = None
        if outputs.scores is not None:
            margin = self._margin(outputs.scores)
        if self.use_scores or outputs.labels is None:
            if margin is None:  # pragma: no cover - the loader guarantees one output
                raise InputError(f"{self.model.path}: no decision output")
            decisions = (margin >= 0).astype(np.int8)
        else:
            decisions = (label_texts(outputs.labels) == self.positive_value).astype(np.int8)
        if margin is None:
            margin = np.where(decisions > 0, 1.0, -1.0)
        return decisions, margin

    def _margin(self, scores: np.ndarray) -> np.ndarray:
        offset = math.log(self.threshold / (1.0 - self.threshold))
        if self.model.score_output == "logit":
            return scores[:, 0] - offset
        p = scores[:, 0] if scores.shape[1] == 1 else scores[:, self.favourable_column]
        p = np.clip(p, _PROBABILITY_FLOOR, 1.0 - _PROBABILITY_FLOOR)
        return np.log(p) - np.log1p(-p) - offset

    def query(self, rows: np.ndarray, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(decisions, margins) of the model on ``rows``, as they are or as ``x`` encodes."""
        self.queries += len(rows)
        return self.decide(self.model.run(self.feed(rows, x)))
