"""Attack in the space of valid records (real rows of the original schema)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._base import Attack
from ._space import FeatureSpace

__all__ = ["ValidRecordAttack"]

_GRID_SLACK = 1e-7


class ValidRecordAttack(Attack):
    """Adversarial examples that decode to real records.

    1. Up to ``cat_budget`` categorical columns switch to another category, one at a time, each
       time the switch with the largest first-order loss gain ``g_k - g_current`` over all
       mutable blocks (a greedy step on the loss, as in the paper's reference [39]); a switch is
       made only when its gain is positive.
    2. PGD (``steps`` steps of ``step_size``; FGSM is one step of eps) on the mutable numeric
       features only, within eps of the original scaled value and the bounds.
    3. Each numeric move is snapped to its column's value grid (integers stay integers), rounding
       toward the original value whenever rounding to nearest would leave the eps-ball.

    Immutable columns (the protected column is never a feature) are left unchanged.
    """

    def __init__(
        self,
        model: nn.Module,
        space: FeatureSpace,
        *,
        eps: float,
        steps: int = 10,
        step_size: float | None = None,
        cat_budget: int = 1,
        target: Literal["true", "predicted"] = "true",
    ) -> None:
        super().__init__(model, space, eps=eps, target=target)
        self.steps = steps
        self.step_size = eps / 4 if step_size is None else step_size
        self.cat_budget = cat_budget

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Categorical switches, then numeric PGD, then grid snapping."""
        labels = self.attack_labels(x, y)
        x_adv = self._switch_categories(x.clone(), labels)
        numeric = self.space.numeric & self.space.mutable
        if bool(numeric.any()) and self.eps > 0:
            start = x_adv
            for _ in range(self.steps):
                grad = self.loss_gradient(x_adv, labels)
                moved = self.space.project(x_adv + self.step_size * grad.sign(), x, self.eps)
                x_adv = torch.where(numeric, moved, start)
            x_adv = self._snap_to_grid(x_adv, x)
        return x_adv.detach()

    def _switch_categories(self, x_adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        space = self.space
        categorical = (space.blocks >= 0) & space.mutable
        if self.cat_budget == 0 or not bool(categorical.any()):
            return x_adv
        n = x_adv.shape[0]
        rows = torch.arange(n, device=x_adv.device)
        block_index = space.blocks.clamp(min=0)
        switched = torch.zeros(n, space.n_blocks, dtype=torch.bool, device=x_adv.device)
        for _ in range(self.cat_budget):
            grad = self.loss_gradient(x_adv, labels)
            # Gradient at each block's current category: sum over the block of x * g.
            current = torch.zeros(n, space.n_blocks, device=x_adv.device, dtype=grad.dtype)
            current.index_add_(1, block_index[categorical], (x_adv * grad)[:, categorical])
            gain = grad - current[:, block_index]
            allowed = categorical & (x_adv < 0.5) & ~switched[:, block_index]
            gain = torch.where(allowed, gain, torch.full_like(gain, -torch.inf))
            best_gain, best_feature = gain.max(dim=1)
            chosen = best_gain > 0
            if not bool(chosen.any()):
                break
            chosen_block = space.blocks[best_feature]
            in_block = (space.blocks[None, :] == chosen_block[:, None]) & chosen[:, None]
            x_adv = torch.where(in_block, torch.zeros_like(x_adv), x_adv)
            x_adv[rows[chosen], best_feature[chosen]] = 1.0
            switched[rows[chosen], chosen_block[chosen]] = True
        return x_adv

    def _snap_to_grid(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        grid = self.space.grid
        on_grid = (grid > 0) & self.space.numeric & self.space.mutable
        if not bool(on_grid.any()):
            return x_adv
        safe_grid = torch.where(on_grid, grid, torch.ones_like(grid))
        units = (x_adv - x) / safe_grid
        nearest = torch.round(units)
        # Rounding to nearest can step past eps; rounding toward x never does. The slack only
        # absorbs float32 error in k * grid (values <= 1): a relative one (eps * 1e-5) let a fine
        # grid step past eps (eps 0.238 on a 0.01 grid over a range of 188: 44.75 > 44.7495).
        too_far = nearest.abs() * safe_grid > self.eps + _GRID_SLACK
        steps = torch.where(too_far, torch.trunc(units), nearest)
        snapped = x + steps * safe_grid
        return torch.where(on_grid, snapped, x_adv)
