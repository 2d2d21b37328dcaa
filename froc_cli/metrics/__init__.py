"""The scores (S_B eq. 7, S_R eq. 8, accuracy, floor), evaluation under attack, and the shared
rules of judgement (degenerate, shortfall, tightened thresholds, gate).
"""

from __future__ import annotations

from froc_cli.metrics._evaluate import (
    ATTACK_CHUNK,
    Decisions,
    Evaluation,
    attack_decisions,
    attack_in_chunks,
    evaluate_decisions,
    pgd_examples,
    threat_variants,
)
from froc_cli.metrics._rules import (
    FLOOR_Z,
    NEAR_CONSTANT_SHARE,
    GateCheck,
    GateResult,
    above_floor,
    check_gate,
    is_degenerate,
    is_degenerate_decisions,
    is_near_constant,
    near_constant_limit,
    parity_flip_count,
    parity_flip_quotas,
    shortfall,
    tightened_bias_threshold,
    tightened_robustness_threshold,
)
from froc_cli.metrics._scores import (
    accuracy,
    bias_score,
    bootstrap_interval,
    criterion_score,
    disparate_impact_ratio,
    equal_opportunity_difference,
    favourable_rate,
    majority_floor,
    robustness_score,
)

__all__ = [
    "ATTACK_CHUNK",
    "FLOOR_Z",
    "NEAR_CONSTANT_SHARE",
    "Decisions",
    "Evaluation",
    "GateCheck",
    "GateResult",
    "above_floor",
    "accuracy",
    "attack_decisions",
    "attack_in_chunks",
    "bias_score",
    "bootstrap_interval",
    "check_gate",
    "criterion_score",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "evaluate_decisions",
    "favourable_rate",
    "is_degenerate",
    "is_degenerate_decisions",
    "is_near_constant",
    "majority_floor",
    "near_constant_limit",
    "parity_flip_count",
    "parity_flip_quotas",
    "pgd_examples",
    "robustness_score",
    "shortfall",
    "threat_variants",
    "tightened_bias_threshold",
    "tightened_robustness_threshold",
]
