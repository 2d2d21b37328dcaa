"""An honest estimate of what outside trainers get from an edited file: K-fold cross-fitting.

For each fold, every panel model is fitted plainly to the edited file minus that fold's rows
and minus every row derived from them (their adversarial copies), and measured on the fold's
*original* rows (original labels, unedited features). No model ever measures a row it, or a
copy of it, was trained on. The figures are the mean over the folds, with their spread; they
estimate a model fitted to the whole file, since the file has no row kept out of editing.

Transfer robustness is measured with PGD examples crafted on an independent network (the
``transfer_source`` architecture) fitted plainly to the fold's training rows *before* any
edit: the attacker of an outside trainer's model knows the population, not the edits.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import ThreatModel
from froc_cli.core._errors import InsufficientDataError
from froc_cli.core._fairness import group_cells
from froc_cli.methods._edit_plan import EditPlan, refit_flips
from froc_cli.methods._panel import fit_panel_member, measure_panel_member
from froc_cli.metrics._evaluate import attack_examples, threat_variants

__all__ = ["PanelEstimate", "crossfit_panel", "fold_ids"]

# The transfer source is seeded apart from the panel so the two never share an initialisation.
_TRANSFER_SEED_OFFSET = 1000


def fold_ids(y: np.ndarray, a: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of every row (0..folds-1): seeded, stratified by label x group (group codes as
    :class:`froc_cli.data.PreparedData` has them; -1, the groups too small to judge, is one
    more cell)."""
    codes = np.asarray(a).astype(int)
    width = int(codes.max(initial=1)) + 2  # binary: cells y * 3 + a + 1, in y * 2 + a's order
    strata = np.asarray(y).astype(int) * width + codes + 1
    # Every (label, group) cell, an empty one too (binary: both groups always).
    groups = group_cells(codes)
    present = np.array([label * width + g + 1 for label in (0, 1) for g in groups])
    counts = np.array([int((strata == cell).sum()) for cell in present])
    if (counts < folds).any():
        cell = int(present[int(np.argmin(counts))])
        group = cell % width - 1
        where = "the groups too small to judge" if group < 0 else f"group a={group}"
        raise InsufficientDataError(
            f"the rows with label {cell // width} in {where} number {int(counts.min())}, "
            f"fewer than --folds {folds}; too little data to cross-fit"
        )
    ids = np.zeros(len(strata), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        ids[held] = fold
    return ids


@dataclass(frozen=True)
class PanelEstimate:
    """Per panel model, its figures on each fold (``folds[name][k]``), their mean and sample
    standard deviation across folds (``mean[name]``, ``sd[name]``), and their ``spread``.

    ``spread`` is the standard deviation of what *one* model fitted once and measured on
    about a fold's count of new rows shows: the larger of the folds' sample sd and the
    root-mean-square sampling error within a fold (binomial, for accuracy, S_B and S_R). Three
    folds estimate an sd poorly (two degrees of freedom: a true 0.008 often shows as 0.003), so
    the sampling error is its floor. An outside trainer's figure lies within ``mean +- 2 *
    spread`` about 95% of the time when the estimate is unbiased.
    """

    folds: dict[str, list[dict[str, Any]]]
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    sd: dict[str, dict[str, float]] = field(default_factory=dict)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_folds(cls, folds: dict[str, list[dict[str, Any]]]) -> PanelEstimate:
        """Summarise fold figures into means, sds and spreads."""
        mean: dict[str, dict[str, float]] = {}
        sd: dict[str, dict[str, float]] = {}
        spread: dict[str, dict[str, float]] = {}
        for name, figures in folds.items():
            keys = [k for k in figures[0] if isinstance(figures[0][k], int | float)]
            mean[name] = {k: statistics.fmean(float(f[k]) for f in figures) for k in keys}
            sd[name] = {
                k: statistics.stdev(float(f[k]) for f in figures) if len(figures) > 1 else 0.0
                for k in keys
            }
            spread[name] = {}
            for k in keys:
                errors = [f.get("standard_errors", {}).get(k) for f in figures]
                if any(e is None for e in errors):
                    continue
                within = math.sqrt(statistics.fmean(float(e) ** 2 for e in errors))
                spread[name][k] = max(sd[name][k], within)
        return cls(folds=folds, mean=mean, sd=sd, spread=spread)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: per model, its mean, sd, spread and per-fold figures."""
        return {
            name: {
                "mean": self.mean[name],
                "sd": self.sd[name],
                "spread": self.spread.get(name, {}),
                "folds": self.folds[name],
            }
            for name in self.folds
        }


def _transfer_rows(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_held: torch.Tensor,
    y_held: torch.Tensor,
    *,
    source: str,
    space: FeatureSpace,
    threat: ThreatModel,
    seed: int,
) -> dict[str, list[torch.Tensor]]:
    """Each attack's examples of the held-out rows, per attack space, crafted on ``source``
    fitted to unedited rows."""
    network = fit_panel_member(source, x_train, y_train, seed=seed + _TRANSFER_SEED_OFFSET)
    assert network.network is not None
    return {
        name: attack_examples(network.network, x_held, y_held, space, variant, seed=seed)
        for name, variant in threat_variants(threat).items()
    }


def crossfit_panel(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    plan: EditPlan,
    *,
    panel: Sequence[str],
    folds: int,
    space: FeatureSpace,
    threat: ThreatModel,
    seed: int,
    transfer_source: str = "mlp:64",
    flip_scale: float | None = None,
    progress: Callable[[str], None] | None = None,
    criterion: str = "parity",
) -> PanelEstimate:
    """Cross-fitted figures of every panel model trained plainly on ``plan``'s edited rows
    (see the module docstring). ``y`` are the original labels. With ``flip_scale``, each
    fold's flips are chosen again from the fold's training rows alone
    (:func:`froc_cli.methods.refit_flips`), so no held-out row informs them; without it the
    plan's flips are used as they are."""
    ids = fold_ids(y.cpu().numpy(), a.cpu().numpy(), folds, seed)
    groups = a.cpu().numpy()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in panel}
    for fold in range(folds):
        keep = ids != fold
        held = torch.as_tensor(np.flatnonzero(~keep), device=x.device)
        kept = torch.as_tensor(np.flatnonzero(keep), device=x.device)
        transfer = _transfer_rows(
            x[kept], y[kept], x[held], y[held],
            source=transfer_source, space=space, threat=threat, seed=seed + fold,
        )  # fmt: skip
        labels = (
            None
            if flip_scale is None
            else refit_flips(
                x, y, a, plan, keep, flip_scale=flip_scale, seed=seed + fold, criterion=criterion
            )
        )
        train_x, train_y, _ = plan.training_rows(x, a, keep, labels)
        for name in panel:
            member = fit_panel_member(name, train_x, train_y, seed=seed + fold)
            figures = measure_panel_member(
                member, x[held], y[held], groups[~keep],
                space=space, threat=threat, transfer_x=transfer, criterion=criterion,
                seed=seed + fold,
            )  # fmt: skip
            results[name].append(figures)
            if progress is not None:
                progress(
                    f"fold {fold + 1}/{folds}, {name}: accuracy {figures['accuracy']:.3f}, "
                    f"S_B {figures['bias_score']:.3f}"
                )
    return PanelEstimate.from_folds(results)
