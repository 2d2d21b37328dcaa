"""froc: fair and robust tabular binary classification (FRoC-IN and FRoC-PRE).

The engine is importable and typed; the ``froc`` command line (``froc_cli.cli``) is a thin
wrapper over it.
"""

from __future__ import annotations

from ._artifact import ModelArtifact, load_model, save_model
from ._audit import (
    AuditConfig,
    AuditResult,
    GateResult,
    audit_file,
    audit_table,
    check_gate,
)
from ._compare import CompareConfig, CompareResult, compare_file, compare_table
from ._config import DataSpec, Objective, ThreatModel, TrainConfig
from ._dataset import PreparedData, prepare_data
from ._encoder import TabularEncoder, fit_encoder
from ._errors import FrocError, InputError, InsufficientDataError, ModelFileError
from ._estimator import FairRobustClassifier
from ._evaluate import Decisions, Evaluation, attack_decisions, evaluate_decisions
from ._froc_in import (
    FrocInConfig,
    TrainInConfig,
    TrainInResult,
    fit_froc_in,
    save_train_in_model,
    train_in_table,
)
from ._io import read_table, write_table_atomic
from ._metrics import (
    accuracy,
    bias_score,
    disparate_impact_ratio,
    equal_opportunity_difference,
    majority_floor,
    robustness_score,
)
from ._models import build_model, parse_model_spec
from ._plot import plot_compare
from ._predict import audit_saved_model, predict_table
from ._split import split_indices
from ._training import fairness_gap, train_model
from ._version import __version__

__all__ = [
    "AuditConfig",
    "AuditResult",
    "CompareConfig",
    "CompareResult",
    "DataSpec",
    "Decisions",
    "Evaluation",
    "FairRobustClassifier",
    "FrocError",
    "FrocInConfig",
    "GateResult",
    "InputError",
    "InsufficientDataError",
    "ModelArtifact",
    "ModelFileError",
    "Objective",
    "PreparedData",
    "TabularEncoder",
    "ThreatModel",
    "TrainConfig",
    "TrainInConfig",
    "TrainInResult",
    "__version__",
    "accuracy",
    "attack_decisions",
    "audit_file",
    "audit_saved_model",
    "audit_table",
    "bias_score",
    "build_model",
    "check_gate",
    "compare_file",
    "compare_table",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "evaluate_decisions",
    "fairness_gap",
    "fit_encoder",
    "fit_froc_in",
    "load_model",
    "majority_floor",
    "parse_model_spec",
    "plot_compare",
    "predict_table",
    "prepare_data",
    "read_table",
    "robustness_score",
    "save_model",
    "save_train_in_model",
    "split_indices",
    "train_in_table",
    "train_model",
    "write_table_atomic",
]
