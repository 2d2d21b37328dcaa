"""Shared machinery of the attacks: labels to attack, loss gradient, projection."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ._space import FeatureSpace

__all__ = ["Attack"]


class Attack:
    """Base class: an L-inf evasion attack on a model that outputs one logit per row.

    ``target="true"`` maximises the loss against the true labels; ``"predicted"`` against the
    model's own predictions (the paper's published code). Subclasses implement ``forward``.
    """

    def __init__(
        self,
        model: nn.Module,
        space: FeatureSpace,
        *,
        eps: float,
        target: Literal["true", "predicted"] = "true",
    ) -> None:
        self.model = model
        self.space = space
        self.eps = eps
        self.target = target

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.forward(x, y)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial version of ``x`` (same shape), never leaving the feature space."""
        raise NotImplementedError

    def attack_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The labels whose loss the attacker increases."""
        if self.target == "true":
            return y.float()
        with torch.no_grad():
            return (self.model(x) > 0).float()

    def loss_gradient(self, x_adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Gradient of the summed BCE loss with respect to the inputs (not the parameters)."""
        with torch.enable_grad():
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.binary_cross_entropy_with_logits(self.model(x_adv), labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
        return grad
