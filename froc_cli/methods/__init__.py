"""The paper's methods: FRoC-IN (eq. 10, 13-15), the influence scores (eqs. 17-22), FRoC-PRE
(Algorithm 1) and the pre-processing baselines.
"""

from __future__ import annotations

from froc_cli.methods._baselines import (
    DisparateImpactRepair,
    compute_reweighing_weights,
    fit_disparate_impact_repair,
    repair_disparate_impact,
)
from froc_cli.methods._froc_in import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    EpochProgress,
    FitOutcome,
    FrocInConfig,
    Trial,
    ValidationScore,
    fit_froc_in,
    score_validation,
)
from froc_cli.methods._froc_pre import (
    AdditionRank,
    AdditionRecord,
    FlipRecord,
    PreprocessConfig,
    PreprocessResult,
    RobustnessKind,
    RoundRecord,
    TargetReport,
    preprocess_table,
)
from froc_cli.methods._influence import (
    AdditionInfluence,
    Curvature,
    FlipInfluence,
    InfluenceParams,
    compute_addition_influence,
    compute_augment_influence,
    compute_flip_influence,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "AdditionInfluence",
    "AdditionRank",
    "AdditionRecord",
    "Curvature",
    "DisparateImpactRepair",
    "EpochProgress",
    "FitOutcome",
    "FlipInfluence",
    "FlipRecord",
    "FrocInConfig",
    "InfluenceParams",
    "PreprocessConfig",
    "PreprocessResult",
    "RobustnessKind",
    "RoundRecord",
    "TargetReport",
    "Trial",
    "ValidationScore",
    "compute_addition_influence",
    "compute_augment_influence",
    "compute_flip_influence",
    "compute_reweighing_weights",
    "fit_disparate_impact_repair",
    "fit_froc_in",
    "preprocess_table",
    "repair_disparate_impact",
    "score_validation",
]
