"""froc: fair and robust tabular binary classification (FRoC-IN and FRoC-PRE).

The engine is importable and typed; the ``froc`` command line (``froc_cli.cli``) is a thin
wrapper over it.
"""

from __future__ import annotations

from ._audit import (
    AuditConfig,
    AuditResult,
    GateResult,
    audit_file,
    audit_table,
    check_gate,
)
from ._config import DataSpec, Objective, ThreatModel, TrainConfig
from ._dataset import PreparedData, prepare_data
from ._encoder import TabularEncoder, fit_encoder
from ._errors import FrocError, InputError, InsufficientDataError, ModelFileError
from ._evaluate import Decisions, Evaluation, attack_decisions, evaluate_decisions
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
from ._split import split_indices
from ._training import fairness_gap, train_model
from ._version import __version__

__all__ = [
    "AuditConfig",
    "AuditResult",
    "DataSpec",
    "Decisions",
    "Evaluation",
    "FrocError",
    "GateResult",
    "InputError",
    "InsufficientDataError",
    "ModelFileError",
    "Objective",
    "PreparedData",
    "TabularEncoder",
    "ThreatModel",
    "TrainConfig",
    "__version__",
    "accuracy",
    "attack_decisions",
    "audit_file",
    "audit_table",
    "bias_score",
    "build_model",
    "check_gate",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "evaluate_decisions",
    "fairness_gap",
    "fit_encoder",
    "majority_floor",
    "parse_model_spec",
    "prepare_data",
    "read_table",
    "robustness_score",
    "split_indices",
    "train_model",
    "write_table_atomic",
]
