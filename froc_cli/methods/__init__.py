"""The paper's methods: FRoC-IN (eq. 10, 13-15), the influence scores (eqs. 17-22), FRoC-PRE
(Algorithm 1 with one surrogate, and the whole-file edit plan judged by a cross-fitted panel of
outside trainers), the pre-processing baselines, and the sequential baselines (RbF, FbR) with
the deployed pipelines on ``[x, a]`` they are evaluated as.
"""

from __future__ import annotations

from froc_cli.methods._baselines import (
    DisparateImpactRepair,
    compute_reweighing_weights,
    fit_disparate_impact_repair,
    massage_labels,
    massaging_scores,
    repair_disparate_impact,
)
from froc_cli.methods._crossfit import (
    PanelEstimate,
    crossfit_panel,
    fold_ids,
)
from froc_cli.methods._edit_plan import (
    AddedRow,
    EditPlan,
    EditSettings,
    FlippedLabel,
    apply_edits,
    plan_edits,
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
    measure_target,
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
    fairness_accuracy_score,
)
from froc_cli.methods._panel import (
    DEFAULT_PANEL,
    PanelMember,
    fit_panel_member,
    measure_panel_member,
    parse_panel,
)
from froc_cli.methods._pipelines import (
    GroupBlind,
    RepairedPipeline,
    apply_repair,
    extended_input,
    with_group_column,
)
from froc_cli.methods._sequential import (
    Fairness,
    GridFit,
    SequentialConfig,
    Trainer,
    fairness_before_robustness,
    robustness_before_fairness,
    select_on_validation,
    validation_shortfall,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "DEFAULT_PANEL",
    "AddedRow",
    "AdditionInfluence",
    "AdditionRank",
    "AdditionRecord",
    "Curvature",
    "DisparateImpactRepair",
    "EditPlan",
    "EditSettings",
    "EpochProgress",
    "Fairness",
    "FitOutcome",
    "FlipInfluence",
    "FlipRecord",
    "FlippedLabel",
    "FrocInConfig",
    "GridFit",
    "GroupBlind",
    "InfluenceParams",
    "PanelEstimate",
    "PanelMember",
    "PreprocessConfig",
    "PreprocessResult",
    "RepairedPipeline",
    "RobustnessKind",
    "RoundRecord",
    "SequentialConfig",
    "TargetReport",
    "Trainer",
    "Trial",
    "ValidationScore",
    "apply_edits",
    "apply_repair",
    "compute_addition_influence",
    "compute_augment_influence",
    "compute_flip_influence",
    "compute_reweighing_weights",
    "crossfit_panel",
    "extended_input",
    "fairness_accuracy_score",
    "fairness_before_robustness",
    "fit_disparate_impact_repair",
    "fit_froc_in",
    "fit_panel_member",
    "fold_ids",
    "massage_labels",
    "massaging_scores",
    "measure_panel_member",
    "measure_target",
    "parse_panel",
    "plan_edits",
    "preprocess_table",
    "repair_disparate_impact",
    "robustness_before_fairness",
    "score_validation",
    "select_on_validation",
    "validation_shortfall",
    "with_group_column",
]
