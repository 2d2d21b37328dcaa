"""Evasion attacks in the encoded feature space: one small class per file, ``forward(x, y)``;
white-box (gradients of a torch model) and black-box (queries only: transfer, Square)."""

from __future__ import annotations

import torch
from torch import nn

from froc_cli.core._config import APGD_STEPS, ThreatModel

from ._apgd import APGD
from ._base import Attack
from ._certify import certify, logit_bounds
from ._fgsm import FGSM
from ._pgd import PGD
from ._query import QueryAttack, QueryFunction, query_loss
from ._space import FeatureSpace
from ._square import SquareAttack, square_fraction
from ._transfer import TransferAttack
from ._valid import ValidRecordAttack

__all__ = [
    "APGD",
    "FGSM",
    "PGD",
    "Attack",
    "FeatureSpace",
    "QueryAttack",
    "QueryFunction",
    "SquareAttack",
    "TransferAttack",
    "ValidRecordAttack",
    "certify",
    "certify_rows",
    "logit_bounds",
    "make_attack",
    "query_loss",
    "square_fraction",
]


def certify_rows(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, space: FeatureSpace, threat: ThreatModel
) -> torch.Tensor:
    """Rows whose (correct) decision provably holds anywhere in ``threat`` (CROWN bounds in
    its continuous or valid space): a lower bound on S_R."""
    return certify(
        model,
        x,
        y,
        space,
        eps=threat.eps,
        attack_space=threat.attack_space,
        cat_budget=threat.cat_budget,
    )


def make_attack(
    kind: str, model: nn.Module, space: FeatureSpace, threat: ThreatModel, *, seed: int = 0
) -> Attack:
    """The ``fgsm``, ``pgd`` or ``apgd`` attack of ``threat``, in its continuous or valid
    space; APGD draws its ``threat.restarts`` random starts from ``seed``."""
    if kind == "apgd":
        return APGD(
            model,
            space,
            eps=threat.eps,
            steps=APGD_STEPS,
            restarts=threat.restarts,
            seed=seed,
            valid=threat.attack_space == "valid",
            cat_budget=threat.cat_budget,
            target=threat.attack_target,
        )
    if threat.attack_space == "valid":
        steps, step = (1, threat.eps) if kind == "fgsm" else (threat.pgd_steps, None)
        return ValidRecordAttack(
            model,
            space,
            eps=threat.eps,
            steps=steps,
            step_size=step if step is not None else threat.pgd_step_size,
            cat_budget=threat.cat_budget,
            target=threat.attack_target,
        )
    if kind == "fgsm":
        return FGSM(model, space, eps=threat.eps, target=threat.attack_target)
    return PGD(
        model,
        space,
        eps=threat.eps,
        steps=threat.pgd_steps,
        step_size=threat.pgd_step_size,
        target=threat.attack_target,
    )
