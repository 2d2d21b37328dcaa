"""froc: fair and robust tabular binary classification (FRoC-IN and FRoC-PRE).

The engine is importable and typed; the ``froc`` command line (``froc_cli.cli``) is a thin
wrapper over it. Names are imported on first use (PEP 562), so ``import froc_cli`` and the
command line's help do not pay for torch, pandas or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from froc_cli.core._version import __version__

# Each public name and the sub-package that defines it.
_HOMES: dict[str, str] = {
    "AuditConfig": "froc_cli.workflows",
    "AuditResult": "froc_cli.workflows",
    "CompareConfig": "froc_cli.workflows",
    "CompareResult": "froc_cli.workflows",
    "DataSpec": "froc_cli.core",
    "Decisions": "froc_cli.metrics",
    "Evaluation": "froc_cli.metrics",
    "FairRobustClassifier": "froc_cli.workflows",
    "FrocError": "froc_cli.core",
    "FrocInConfig": "froc_cli.methods",
    "GateResult": "froc_cli.metrics",
    "InputError": "froc_cli.core",
    "InsufficientDataError": "froc_cli.core",
    "ModelArtifact": "froc_cli.models",
    "ModelFileError": "froc_cli.core",
    "Objective": "froc_cli.core",
    "PreparedData": "froc_cli.data",
    "TabularEncoder": "froc_cli.data",
    "ThreatModel": "froc_cli.core",
    "TrainConfig": "froc_cli.core",
    "TrainInConfig": "froc_cli.workflows",
    "TrainInResult": "froc_cli.workflows",
    "accuracy": "froc_cli.metrics",
    "attack_decisions": "froc_cli.metrics",
    "audit_file": "froc_cli.workflows",
    "audit_saved_model": "froc_cli.workflows",
    "audit_table": "froc_cli.workflows",
    "bias_score": "froc_cli.metrics",
    "build_model": "froc_cli.models",
    "check_gate": "froc_cli.metrics",
    "compare_file": "froc_cli.workflows",
    "compare_table": "froc_cli.workflows",
    "disparate_impact_ratio": "froc_cli.metrics",
    "equal_opportunity_difference": "froc_cli.metrics",
    "evaluate_decisions": "froc_cli.metrics",
    "fairness_gap": "froc_cli.models",
    "fairness_term": "froc_cli.models",
    "fit_encoder": "froc_cli.data",
    "fit_froc_in": "froc_cli.methods",
    "load_model": "froc_cli.models",
    "majority_floor": "froc_cli.metrics",
    "parse_model_spec": "froc_cli.models",
    "plot_compare": "froc_cli.reports",
    "predict_table": "froc_cli.workflows",
    "prepare_data": "froc_cli.data",
    "read_table": "froc_cli.core",
    "robustness_score": "froc_cli.metrics",
    "save_model": "froc_cli.models",
    "save_train_in_model": "froc_cli.workflows",
    "split_indices": "froc_cli.data",
    "train_in_table": "froc_cli.workflows",
    "train_model": "froc_cli.models",
    "write_table_atomic": "froc_cli.core",
}

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
    "fairness_term",
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

if TYPE_CHECKING:
    from froc_cli.core import (
        DataSpec,
        FrocError,
        InputError,
        InsufficientDataError,
        ModelFileError,
        Objective,
        ThreatModel,
        TrainConfig,
        read_table,
        write_table_atomic,
    )
    from froc_cli.data import (
        PreparedData,
        TabularEncoder,
        fit_encoder,
        prepare_data,
        split_indices,
    )
    from froc_cli.methods import (
        FrocInConfig,
        fit_froc_in,
    )
    from froc_cli.metrics import (
        Decisions,
        Evaluation,
        GateResult,
        accuracy,
        attack_decisions,
        bias_score,
        check_gate,
        disparate_impact_ratio,
        equal_opportunity_difference,
        evaluate_decisions,
        majority_floor,
        robustness_score,
    )
    from froc_cli.models import (
        ModelArtifact,
        build_model,
        fairness_gap,
        fairness_term,
        load_model,
        parse_model_spec,
        save_model,
        train_model,
    )
    from froc_cli.reports import (
        plot_compare,
    )
    from froc_cli.workflows import (
        AuditConfig,
        AuditResult,
        CompareConfig,
        CompareResult,
        FairRobustClassifier,
        TrainInConfig,
        TrainInResult,
        audit_file,
        audit_saved_model,
        audit_table,
        compare_file,
        compare_table,
        predict_table,
        save_train_in_model,
        train_in_table,
    )


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'froc_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
