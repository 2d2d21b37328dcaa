"""Shared machinery of the attacks: labels to attack, loss gradient, projection."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

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
        """Input gradient of the summed margin loss ``-(2y - 1) * logit``.

        Per row it is the BCE loss gradient of eqs. 1-2 divided by ``|sigmoid(logit) - y|`` > 0,
        so its sign (all the attacks use) and each row's ranking of moves are the BCE's. Unlike
        the BCE's, it does not vanish when the sigmoid saturates in float32 (|logit| > ~17),
        which would leave confidently classified rows unattacked and count them as robust.
        """
        input_gradient = getattr(self.model, "input_gradient", None)
        if input_gradient is not None:
            # froc's own networks: the same gradient computed by hand (no graph), faster.
            result: torch.Tensor = input_gradient(x_adv.detach(), 1.0 - 2.0 * labels)
            return result
        with torch.enable_grad():
            x_adv = x_adv.detach().requires_grad_(True)
            loss = -((2.0 * labels - 1.0) * self.model(x_adv)).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
        return grad
