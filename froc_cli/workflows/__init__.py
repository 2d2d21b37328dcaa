"""Orchestration of each command: audit, train-in, preprocess, predict, compare, and the
scikit-learn estimator over FRoC-IN.
"""

from __future__ import annotations

from froc_cli.workflows._audit import (
    AuditConfig,
    AuditResult,
    audit_file,
    audit_table,
    audit_train_config,
)
from froc_cli.workflows._compare import (
    DEFAULT_LAMBDAS,
    METHOD_NAMES,
    METHODS,
    TABLE_METRICS,
    CompareConfig,
    CompareContext,
    CompareResult,
    GridPoint,
    MethodOutcome,
    MethodRow,
    MethodSpec,
    MethodSummary,
    RepeatResult,
    compare_file,
    compare_table,
    is_degenerate,
)
from froc_cli.workflows._estimator import (
    FairRobustClassifier,
)
from froc_cli.workflows._predict import (
    DECISION_COLUMN,
    PROBABILITY_COLUMN,
    Prediction,
    audit_saved_model,
    default_audit_spec,
    predict_table,
    unseen_categories,
)
from froc_cli.workflows._preprocess import (
    MemberVerdict,
    TrainerFileConfig,
    TrainerFileResult,
    prepare_trainer_file,
)
from froc_cli.workflows._stream import (
    DatasetPrediction,
    audit_saved_dataset,
    predict_dataset,
)
from froc_cli.workflows._train_in import (
    TrainInConfig,
    TrainInResult,
    Verdict,
    save_train_in_model,
    train_in_table,
)

__all__ = [
    "DECISION_COLUMN",
    "DEFAULT_LAMBDAS",
    "METHODS",
    "METHOD_NAMES",
    "PROBABILITY_COLUMN",
    "TABLE_METRICS",
    "AuditConfig",
    "AuditResult",
    "CompareConfig",
    "CompareContext",
    "CompareResult",
    "DatasetPrediction",
    "FairRobustClassifier",
    "GridPoint",
    "MemberVerdict",
    "MethodOutcome",
    "MethodRow",
    "MethodSpec",
    "MethodSummary",
    "Prediction",
    "RepeatResult",
    "TrainInConfig",
    "TrainInResult",
    "TrainerFileConfig",
    "TrainerFileResult",
    "Verdict",
    "audit_file",
    "audit_saved_dataset",
    "audit_saved_model",
    "audit_table",
    "audit_train_config",
    "compare_file",
    "compare_table",
    "default_audit_spec",
    "is_degenerate",
    "predict_dataset",
    "predict_table",
    "prepare_trainer_file",
    "save_train_in_model",
    "train_in_table",
    "unseen_categories",
]
