"""Deployed pipelines that take the encoded record with the row's group appended: ``[x, a]``.

Attackers perturb ``x`` (within the threat model's eps-ball; the group never changes); the
pipeline may use ``a`` (the Disparate Impact Remover repairs a row against its own group's
distribution, as AIF360 does). Models that do not use the group simply ignore the column.
"""

from __future__ import annotations

import torch
from torch import nn

from froc_cli.attacks import FeatureSpace
from froc_cli.core._errors import InputError
from froc_cli.data._rows import EncodedRows
from froc_cli.methods._baselines import DisparateImpactRepair

__all__ = [
    "GroupBlind",
    "RepairedPipeline",
    "apply_repair",
    "extended_input",
    "with_group_column",
]


class GroupBlind(nn.Module):
    """A deployed model that ignores the appended group column."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_ext: torch.Tensor) -> torch.Tensor:
        """Logits of ``model`` on the features."""
        out: torch.Tensor = self.model(x_ext[:, :-1])
        return out


class RepairedPipeline(nn.Module):
    """Disparate Impact Remover, then the model: ``model(repair(x, a))``.

    The repair is computed exactly (numpy) and its gradient passed straight through; the repair
    is non-decreasing in every feature, so gradient signs are exact wherever it moves at all.
    """

    def __init__(self, model: nn.Module, repair: DisparateImpactRepair) -> None:
        super().__init__()
        self.model = model
        self.repair = repair

    def forward(self, x_ext: torch.Tensor) -> torch.Tensor:
        """Logits of ``model`` on the repaired features."""
        x, a = x_ext[:, :-1], x_ext[:, -1]
        repaired = apply_repair(self.repair, x.detach(), a.detach())
        straight_through = x + (repaired - x).detach()
        out: torch.Tensor = self.model(straight_through)
        return out


def apply_repair(repair: DisparateImpactRepair, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``repair`` applied to features ``x`` of rows in groups ``a``, as a tensor like ``x``."""
    try:
        out = repair.apply(x.cpu().double().numpy(), a.cpu().numpy().round())
    except ValueError as exc:
        raise InputError(f"disparate impact repair: {exc}") from exc
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)


def extended_input(rows: EncodedRows) -> torch.Tensor:
    """The deployed pipelines' input ``[x, a]`` of ``rows``."""
    return torch.cat([rows.x, rows.a[:, None]], dim=1)


def with_group_column(space: FeatureSpace) -> FeatureSpace:
    """``space`` with one more feature, the group: in [0, 1], immutable, not numeric."""

    def extend(t: torch.Tensor, value: float | bool | int) -> torch.Tensor:
        return torch.cat([t, torch.tensor([value], dtype=t.dtype, device=t.device)])

    return FeatureSpace(
        lower=extend(space.lower, 0.0),
        upper=extend(space.upper, 1.0),
        mutable=extend(space.mutable, False),
        numeric=extend(space.numeric, False),
        grid=extend(space.grid, 0.0),
        blocks=extend(space.blocks, -1),
        n_blocks=space.n_blocks,
    )
