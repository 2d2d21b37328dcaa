"""Small ONNX models from other stacks, for the tests: scikit-learn pipelines exported with
skl2onnx, and torch networks exported with torch.onnx."""

from __future__ import annotations

import io
import itertools
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["numeric_frame", "sklearn_onnx", "torch_mlp_onnx"]


def sklearn_onnx(
    frame: pd.DataFrame,
    classifier: ClassifierMixin,
    *,
    label: str = "approved",
    ignore: tuple[str, ...] = ("gender",),
    zipmap: bool = True,
) -> tuple[Pipeline, bytes, list[str]]:
    """A one-hot + scaler + ``classifier`` pipeline fitted on ``frame`` (all columns but the
    label and ``ignore``), its skl2onnx export (one named input per column: strings for text
    columns, floats for numbers; skl2onnx names ``a-b`` ``a_b``) and its feature columns."""
    features = [c for c in frame.columns if c != label and c not in ignore]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    numbers = [c for c in features if c not in text]
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("categories", OneHotEncoder(handle_unknown="ignore"), text),
                        ("numbers", StandardScaler(), numbers),
                    ]
                ),
            ),
            ("classifier", classifier),
        ]
    )
    pipeline.fit(frame[features], frame[label])
    initial: list[tuple[str, Any]] = [
        (c, StringTensorType([None, 1]) if c in text else FloatTensorType([None, 1]))
        for c in features
    ]
    options = {id(pipeline): {"zipmap": zipmap}}
    model = to_onnx(pipeline, initial_types=initial, options=options, target_opset=17)
    return pipeline, model.SerializeToString(), features


def numeric_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Four continuous features (no decimal grid), a binary group and a label they predict
    well with an interaction (a network beats a line). Label ``y`` last."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.uniform(0, 20, n),
            "b": rng.uniform(0, 10, n),
            "c": rng.normal(5, 2, n),
            "d": rng.uniform(0, 5, n),
        }
    )
    group = np.where(rng.random(n) < 0.5, "f", "m")
    logit = (
        0.3 * (frame.a - 10)
        + 0.5 * (frame.b - 5)
        - 0.2 * (frame.c - 5) * (frame.d - 2)
        + np.where(group == "m", 0.8, -0.8)
    )
    frame["group"] = group
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame


def torch_mlp_onnx(
    frame: pd.DataFrame,
    features: list[str],
    *,
    label: str = "y",
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 16),
    sigmoid: bool = True,
    epochs: int = 400,
) -> tuple[torch.nn.Module, bytes]:
    """A ReLU network on the raw ``features`` trained on ``frame`` (seeded), exported with
    torch.onnx as one 2-D float input ``x``; it ends in a Sigmoid (probability) or not (logit)."""
    generator = torch.Generator().manual_seed(seed)
    widths = [len(features), *hidden]
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(widths[-1], 1))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.uniform_(-0.3, 0.3, generator=generator)
    x = torch.tensor(frame[features].to_numpy(np.float32))
    y = torch.tensor(frame[label].to_numpy(np.float32))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).squeeze(1), y)
        loss.backward()
        optimiser.step()
    exported = torch.nn.Sequential(net, torch.nn.Sigmoid()) if sigmoid else net
    exported.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            exported, x[:2], buffer, input_names=["x"], output_names=["score"],
            dynamic_axes={"x": {0: "rows"}}, dynamo=False,
        )  # fmt: skip
    return exported, buffer.getvalue()
