"""The sequential baselines (paper 7.1-7.2) and how their lambda grid is chosen on validation.

Each is trained over the lambda grid (by default {0, 0.01, 0.05, 0.1, 0.5, 1}):

* robustness before fairness (RbF, :func:`robustness_before_fairness`): one PGD adversarial
  example (in the threat model's continuous or valid space) per training row, crafted on the
  plainly trained target and labelled with its source row's label, is added to the training
  data with weight lambda (so the loss is eq. 3 up to the constant 1/(1 + lambda)); then the
  fairness pre-processing is applied to the augmented data and the model is trained plainly on
  it: Reweighing (Kamiran-Calders weights of the augmented data multiply the row weights) or
  the Disparate Impact Remover (full repair of the numeric features, fitted on the augmented
  training rows, applied to validation and test rows with their groups).
* fairness before robustness (FbR, :func:`fairness_before_robustness`): the fairness
  pre-processing of the training data, a model trained plainly on it, then PGD adversarial
  training (eq. 3 via ``Objective(lambda_r=lambda)``). With DIR, adversarial training works on
  the repaired features (the paper repairs the data, then trains).

Both train the lambda = 0 model for the full epochs (for RbF on the training rows alone: the
added rows weigh 0) and obtain every lambda > 0 model by continuing from it for ``adv_epochs``
epochs on the lambda-weighted objective: the same objective as a fit from scratch, at a fraction
of the cost of a full fit per grid point.

Every grid point is yielded as a deployed pipeline on ``[x, a]`` (see
:mod:`froc_cli.methods._pipelines`), one at a time, so the caller can evaluate each before the
next is trained. The setting to report is chosen on the VALIDATION split by
:func:`select_on_validation`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core._config import Objective, ThreatModel
from froc_cli.core._errors import InputError
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.data._rows import EncodedRows
from froc_cli.methods._baselines import (
    DisparateImpactRepair,
    compute_reweighing_weights,
    fit_disparate_impact_repair,
)
from froc_cli.methods._pipelines import GroupBlind, RepairedPipeline, apply_repair
from froc_cli.metrics._evaluate import attack_in_chunks
from froc_cli.metrics._rules import is_degenerate, shortfall

__all__ = [
    "Fairness",
    "GridFit",
    "SequentialConfig",
    "Trainer",
    "fairness_before_robustness",
    "robustness_before_fairness",
    "select_on_validation",
    "validation_shortfall",
]

Fairness = Literal["rw", "dir"]


class Trainer(Protocol):
    """THE training loop as the caller runs it: trains a copy of ``model`` (or a fresh target)
    on ``x, y, a`` and returns it."""

    def __call__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        a: torch.Tensor,
        *,
        objective: Objective | None = None,
        sample_weight: torch.Tensor | None = None,
        model: nn.Module | None = None,
        epochs: int | None = None,
    ) -> nn.Module: ...


@dataclass(frozen=True)
class SequentialConfig:
    """A sequential baseline's settings.

    ``fairness``: ``rw`` (Reweighing) or ``dir`` (Disparate Impact Remover at ``repair_level``
    on the features flagged in ``numeric_columns``); ``lambdas``: the adversarial weight grid;
    ``adv_epochs``: epochs each lambda > 0 continues from the lambda = 0 model.
    """

    fairness: Fairness
    lambdas: tuple[float, ...]
    adv_epochs: int
    threat: ThreatModel
    numeric_columns: np.ndarray
    repair_level: float = 1.0


class GridFit(NamedTuple):
    """One grid point: its setting text, its parameters and the deployed pipeline."""

    setting: str
    params: dict[str, float]
    model: nn.Module


# --------------------------------------------------------------------------------------------
# The fairness pre-processing
# --------------------------------------------------------------------------------------------


def _reweighing(y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    try:
        weights = compute_reweighing_weights(y.cpu().numpy(), a.cpu().numpy())
    except ValueError as exc:
        raise InputError(f"reweighing: {exc}") from exc
    return torch.as_tensor(weights, dtype=torch.float32, device=y.device)


def _fit_repair(
    config: SequentialConfig, x: torch.Tensor, a: torch.Tensor
) -> DisparateImpactRepair:
    try:
        return fit_disparate_impact_repair(
            x.cpu().double().numpy(),
            a.cpu().numpy(),
            repair_level=config.repair_level,
            columns=config.numeric_columns,
        )
    except ValueError as exc:
        raise InputError(f"disparate impact remover: {exc}") from exc


def _deployed(model: nn.Module, repair: DisparateImpactRepair | None) -> nn.Module:
    return RepairedPipeline(model, repair) if repair is not None else GroupBlind(model)


def _setting(lam: float) -> str:
    return f"lambda={lam:g}"


# --------------------------------------------------------------------------------------------
# The two orders
# --------------------------------------------------------------------------------------------


def robustness_before_fairness(
    fit: EncodedRows,
    plain: nn.Module,
    train: Trainer,
    config: SequentialConfig,
    *,
    space: FeatureSpace,
    progress: ProgressCallback = silent,
) -> Iterator[GridFit]:
    """RbF over ``config.lambdas``: PGD examples crafted on the plainly trained ``plain`` (in
    ``space``), then the fairness pre-processing of the augmented rows, then plain training."""
    progress("crafting PGD examples on the plain target")
    attack = make_attack("pgd", plain, space, config.threat)
    plain.eval()
    x_adv = attack_in_chunks(attack, fit.x, fit.y)
    x_aug = torch.cat([fit.x, x_adv])
    y_aug = torch.cat([fit.y, fit.y])
    a_aug = torch.cat([fit.a, fit.a])
    repair = _fit_repair(config, x_aug, a_aug) if config.fairness == "dir" else None
    x_train = apply_repair(repair, x_aug, a_aug) if repair is not None else x_aug
    fair_weights = _reweighing(y_aug, a_aug) if config.fairness == "rw" else torch.ones_like(y_aug)
    n = len(fit)
    # lambda = 0: the added rows weigh nothing, so train on the training rows alone (the same
    # loss, half the work); every lambda > 0 continues from that model.
    progress("fairness pre-processing of the augmented data, plain training")
    base = train(x_train[:n], fit.y, fit.a, sample_weight=fair_weights[:n])
    for lam in config.lambdas:
        progress(_setting(lam))
        if lam == 0:
            model = base
        else:
            weights = fair_weights * torch.cat(
                [torch.ones_like(fit.y), torch.full_like(fit.y, lam)]
            )
            model = train(
                x_train,
                y_aug,
                a_aug,
                sample_weight=weights,
                model=base,
                epochs=config.adv_epochs,
            )
        yield GridFit(_setting(lam), {"lambda": lam}, _deployed(model, repair))


def fairness_before_robustness(
    fit: EncodedRows,
    train: Trainer,
    config: SequentialConfig,
    *,
    progress: ProgressCallback = silent,
) -> Iterator[GridFit]:
    """FbR over ``config.lambdas``: the fairness pre-processing, plain training, then PGD
    adversarial training continued from the fair model."""
    repair = _fit_repair(config, fit.x, fit.a) if config.fairness == "dir" else None
    x_train = apply_repair(repair, fit.x, fit.a) if repair is not None else fit.x
    weights = _reweighing(fit.y, fit.a) if config.fairness == "rw" else None
    progress("fairness pre-processing, plain training")
    base = train(x_train, fit.y, fit.a, sample_weight=weights)
    for lam in config.lambdas:
        progress(_setting(lam))
        if lam == 0:
            model = base
        else:
            model = train(
                x_train,
                fit.y,
                fit.a,
                objective=Objective(lambda_r=lam, attack="pgd", threat=config.threat),
                sample_weight=weights,
                model=base,
                epochs=config.adv_epochs,
            )
        yield GridFit(_setting(lam), {"lambda": lam}, _deployed(model, repair))


# --------------------------------------------------------------------------------------------
# Selection on validation
# --------------------------------------------------------------------------------------------


def validation_shortfall(metrics: Mapping[str, float], delta_f: float, delta_r: float) -> float:
    """:func:`froc_cli.metrics.shortfall` of reported figures (S_B, S_R(PGD)), degenerate
    judged by :func:`froc_cli.metrics.is_degenerate`."""
    return shortfall(
        metrics.get("bias_score", math.nan),
        metrics.get("robustness_pgd", math.nan),
        delta_f,
        delta_r,
        degenerate=is_degenerate(metrics),
    )


def select_on_validation(
    points: Sequence[Mapping[str, float]], delta_f: float, delta_r: float
) -> int:
    """Index of the setting to report, judged on validation figures only.

    The most accurate setting meeting both constraints (S_B <= delta_F, S_R(PGD) >= delta_R)
    that is not degenerate (:func:`froc_cli.metrics.is_degenerate`); when none does, the one
    with the smallest total shortfall ``max(0, S_B - delta_F) + max(0, delta_R - S_R)`` (plus 1
    when degenerate), ties broken by accuracy, then order.
    """
    if not points:
        raise InputError("nothing to select from: the grid is empty")

    def key(i: int) -> tuple[float, float, int]:
        accuracy = points[i].get("accuracy", math.nan)
        accuracy = accuracy if math.isfinite(accuracy) else -math.inf
        return (validation_shortfall(points[i], delta_f, delta_r), -accuracy, i)

    return min(range(len(points)), key=key)
