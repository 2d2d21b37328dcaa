"""Projected gradient descent (eq. 2)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._base import Attack
from ._space import FeatureSpace

__all__ = ["PGD"]


class PGD(Attack):
    """x~_{t+1} = Proj_{x+S}(x~_t + step * sign(grad_x L(theta, x~_t, y))) (eq. 2).

    Starts at ``x`` (no random start, so results are deterministic), ``steps`` iterations.
    """

    def __init__(
        self,
        model: nn.Module,
        space: FeatureSpace,
        *,
        eps: float,
        steps: int = 10,
        step_size: float | None = None,
        target: Literal["true", "predicted"] = "true",
    ) -> None:
        super().__init__(model, space, eps=eps, target=target)
        self.steps = steps
        self.step_size = eps / 4 if step_size is None else step_size

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``steps`` signed-gradient steps, each projected back onto the eps-ball and bounds."""
        labels = self.attack_labels(x, y)
        # The projection box is fixed for the whole attack; updating in place avoids the
        # temporaries of a full-size projection per step (the attack dominates training time).
        low, high = self.space.box(x.detach(), self.eps)
        x_adv = x.detach().clone()
        for _ in range(self.steps):
            grad = self.loss_gradient(x_adv, labels)
            x_adv.add_(grad.sign_(), alpha=self.step_size).clamp_(min=low, max=high)
        return x_adv
