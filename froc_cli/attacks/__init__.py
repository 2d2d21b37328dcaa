"""Evasion attacks in the encoded feature space: one small class per file, ``forward(x, y)``."""

from __future__ import annotations

from torch import nn

from froc_cli.core._config import AttackKind, ThreatModel

from ._base import Attack
from ._fgsm import FGSM
from ._pgd import PGD
from ._space import FeatureSpace
from ._valid import ValidRecordAttack

__all__ = ["FGSM", "PGD", "Attack", "FeatureSpace", "ValidRecordAttack", "make_attack"]


def make_attack(
    kind: AttackKind, model: nn.Module, space: FeatureSpace, threat: ThreatModel
) -> Attack:
    """The ``fgsm`` or ``pgd`` attack of ``threat``, in its continuous or valid space."""
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
