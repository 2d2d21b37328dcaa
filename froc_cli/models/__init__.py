"""froc's networks, the one training loop (plain, fair, robust and fair+robust through the loss),
and model files that never run code when loaded.
"""

from __future__ import annotations

from froc_cli.models._artifact import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelArtifact,
    load_model,
    save_model,
)
from froc_cli.models._nets import (
    TabularNet,
    build_model,
    parse_model_spec,
)
from froc_cli.models._training import (
    BatchShare,
    EpochStats,
    LossTerms,
    compute_loss_terms,
    fairness_gap,
    fairness_term,
    predict_logits,
    summed_across_processes,
    train_model,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "BatchShare",
    "EpochStats",
    "LossTerms",
    "ModelArtifact",
    "TabularNet",
    "build_model",
    "compute_loss_terms",
    "fairness_gap",
    "fairness_term",
    "load_model",
    "parse_model_spec",
    "predict_logits",
    "save_model",
    "summed_across_processes",
    "train_model",
]
