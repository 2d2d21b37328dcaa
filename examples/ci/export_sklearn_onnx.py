"""Train a scikit-learn pipeline and export it to ONNX with skl2onnx, as a team would before
its CI audit step (see froc-audit-onnx.yml beside this file).

The pipeline one-hot encodes the text columns, scales the numbers and fits a classifier
(logistic regression, or an MLP with --mlp) on a seeded share of TABLE; the graph takes one
named input per column (strings for text columns, floats for numbers), the convention
``froc audit --model MODEL.onnx`` reads. The rows it was not trained on are written to
--holdout, for the audit.

    python examples/ci/export_sklearn_onnx.py sample_data/synthetic.csv --label approved \
        --drop gender -o pipeline.onnx --holdout holdout.csv

Needs scikit-learn, skl2onnx and pandas (``pip install "froc[dev]"`` has them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path, help="training table (.csv)")
    parser.add_argument("--label", required=True, help="label column")
    parser.add_argument(
        "--drop", default="", help="columns the model must not read, e.g. the protected one"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--holdout", type=Path, help="write the rows not trained on here (.csv)")
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--mlp", action="store_true", help="an MLP instead of logistic regression")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame = pd.read_csv(args.table)
    dropped = {c.strip() for c in args.drop.split(",") if c.strip()}
    features = [c for c in frame.columns if c != args.label and c not in dropped]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    numbers = [c for c in features if c not in text]
    train, holdout = train_test_split(
        frame, test_size=args.test_size, random_state=args.seed, stratify=frame[args.label]
    )
    classifier = (
        MLPClassifier((64,), early_stopping=True, max_iter=300, random_state=args.seed)
        if args.mlp
        else LogisticRegression(max_iter=1000)
    )
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
    pipeline.fit(train[features], train[args.label])
    inputs = [
        (c, StringTensorType([None, 1]) if c in text else FloatTensorType([None, 1]))
        for c in features
    ]
    model = to_onnx(pipeline, initial_types=inputs, options={id(pipeline): {"zipmap": False}})
    args.output.write_bytes(model.SerializeToString())
    print(f"wrote {args.output}: {type(classifier).__name__} on {len(features)} columns")
    if args.holdout is not None:
        holdout.to_csv(args.holdout, index=False)
        print(f"wrote {args.holdout}: {len(holdout)} rows the model was not trained on")


if __name__ == "__main__":
    main()
