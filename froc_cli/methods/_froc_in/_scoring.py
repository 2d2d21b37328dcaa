"""A model scored on the validation rows: the figures every FRoC-IN choice is made on."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from froc_cli.attacks import Attack, FeatureSpace, make_attack
from froc_cli.core._config import (
    Objective,
    ThreatModel,
)
from froc_cli.core._fairness import active_pair, gap_standard_error
from froc_cli.data._rows import EncodedRows
from froc_cli.metrics import _scores as m
from froc_cli.metrics._evaluate import attack_in_chunks
from froc_cli.metrics._rules import (
    above_floor,
    near_constant_limit,
)
from froc_cli.models._training import fairness_term, predict_logits

__all__ = ["ValidationScore", "score_validation"]


@dataclass(frozen=True)
class ValidationScore:
    """A model scored on the validation rows (decisions at logit > 0, PGD of the threat model).

    ``rarer_share`` is the share of rows given the rarer decision; ``objective`` is eq. 10 on
    the validation rows with the lambdas of the fit that produced the model. ``bias_score`` is
    the fit's criterion; the ``*_protected`` and ``*_unprotected`` figures are the two groups
    whose gap it is (binary parity: the protected group and the rest; otherwise the highest
    and the lowest group of the rate that differs most), which give its standard error.
    """

    accuracy: float
    majority_floor: float
    bias_score: float
    robustness_pgd: float
    robustness: float
    rarer_share: float
    bce: float
    fairness: float
    robustness_loss: float
    objective: float
    n_rows: int
    n_protected: int
    n_unprotected: int
    favourable_rate_protected: float
    favourable_rate_unprotected: float

    @property
    def near_constant(self) -> bool:
        """Decisions (almost) all one class: the rarer decision goes to fewer than 5% of rows
        (or half the rarer label's share, when that is smaller)."""
        return self.rarer_share < near_constant_limit(1.0 - self.majority_floor)

    @property
    def below_floor(self) -> bool:
        """Accuracy not clearly above the majority-class floor (see :func:`above_floor`)."""
        return not above_floor(self.accuracy, self.majority_floor, self.n_rows)

    @property
    def degenerate(self) -> bool:
        """Near constant or no better than the majority floor: never a success."""
        return self.near_constant or self.below_floor

    def bias_se(self) -> float:
        """Binomial standard error of S_B."""
        return gap_standard_error(
            self.favourable_rate_protected,
            self.n_protected,
            self.favourable_rate_unprotected,
            self.n_unprotected,
        )

    def robustness_se(self) -> float:
        """Binomial standard error of S_R."""
        r = self.robustness
        return math.sqrt(r * (1 - r) / max(self.n_rows, 1))

    def to_dict(self) -> dict[str, Any]:
        """Metrics and flags as a JSON-friendly dictionary."""
        return {
            **asdict(self),
            "near_constant": self.near_constant,
            "below_floor": self.below_floor,
        }


def score_validation(
    model: nn.Module,
    rows: EncodedRows,
    space: FeatureSpace,
    threat: ThreatModel,
    objective: Objective,
    seed: int = 0,
) -> ValidationScore:
    """Score ``model`` on ``rows``: accuracy, S_B, S_R under PGD, S_R as the gate measures it
    (``robustness``: every attack of ``threat``, APGD's restarts drawn from ``seed``, summarised
    by its robust metric) and eq. 10's terms.

    R uses the training attack of ``objective`` (the PGD examples when it is PGD).
    """
    was_training = model.training
    model.eval()
    logits = predict_logits(model, rows.x)
    pgd = make_attack("pgd", model, space, threat)
    x_pgd = attack_in_chunks(pgd, rows.x, rows.y)
    if objective.attack == "pgd":
        x_train_attack = x_pgd
    else:
        x_train_attack = attack_in_chunks(
            make_attack(objective.attack, model, space, objective.threat), rows.x, rows.y
        )
    logits_pgd = predict_logits(model, x_pgd)
    logits_adv = logits_pgd if x_train_attack is x_pgd else predict_logits(model, x_train_attack)
    with torch.no_grad():
        bce = float(F.binary_cross_entropy_with_logits(logits, rows.y))
        fairness = float(
            fairness_term(
                torch.sigmoid(logits),
                rows.y,
                rows.a,
                objective.fairness,
                objective.fairness_surrogate,
            )
        )
        robustness_loss = float(F.binary_cross_entropy_with_logits(logits_adv, rows.y))
    y = rows.y.cpu().numpy().astype(np.int8)
    a = rows.a_numpy.astype(np.int8)
    pred = (logits > 0).cpu().numpy().astype(np.int8)
    pred_pgd = (logits_pgd > 0).cpu().numpy().astype(np.int8)
    # The PGD examples above serve the gate too; the other attacks are crafted here.
    robust = m.unbroken_rows(
        (
            pred_pgd
            if kind == "pgd"
            else _decisions(model, make_attack(kind, model, space, threat, seed=seed), rows)
            for kind in threat.attacks
        ),
        y,
    )
    model.train(was_training)
    positive_share = float(pred.mean()) if len(pred) else 0.0
    bias = m.criterion_score(pred, y, a, objective.fairness)
    pair = active_pair(pred, y, a, objective.fairness)
    return ValidationScore(
        accuracy=m.accuracy(pred, y),
        majority_floor=m.majority_floor(y),
        bias_score=bias,
        robustness_pgd=m.robustness_score(pred_pgd, y),
        robustness=m.robust_summary(robust, y, pred, threat.robust_metric),
        rarer_share=min(positive_share, 1.0 - positive_share),
        bce=bce,
        fairness=fairness,
        robustness_loss=robustness_loss,
        objective=bce + objective.lambda_f * fairness + objective.lambda_r * robustness_loss,
        n_rows=len(y),
        n_protected=pair[1],
        n_unprotected=pair[3],
        favourable_rate_protected=pair[0],
        favourable_rate_unprotected=pair[2],
    )


def _decisions(model: nn.Module, attack: Attack, rows: EncodedRows) -> np.ndarray:
    """The model's decisions on ``attack``'s examples of ``rows``."""
    return (predict_logits(model, attack_in_chunks(attack, rows.x, rows.y)) > 0).cpu().numpy()
