"""Fast gradient sign method (eq. 1)."""

from __future__ import annotations

import torch

from ._base import Attack

__all__ = ["FGSM"]


class FGSM(Attack):
    """x~ = Proj(x + eps * sign(grad_x L(theta, x, y))) (eq. 1), in the encoded space."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One signed-gradient step of size eps."""
        labels = self.attack_labels(x, y)
        grad = self.loss_gradient(x, labels)
        return self.space.project(x + self.eps * grad.sign(), x, self.eps).detach()
