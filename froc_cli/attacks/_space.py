"""The feature space an attacker works in, taken from the encoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from froc_cli.data._encoder import TabularEncoder

__all__ = ["FeatureSpace"]


@dataclass(frozen=True)
class FeatureSpace:
    """Per encoded feature: bounds, whether an attacker may change it, its value grid and its
    categorical block (-1 for numerics). All tensors live on the attack's device."""

    lower: torch.Tensor
    upper: torch.Tensor
    mutable: torch.Tensor
    numeric: torch.Tensor
    grid: torch.Tensor
    blocks: torch.Tensor
    n_blocks: int

    @classmethod
    def from_encoder(
        cls, encoder: TabularEncoder, device: torch.device | str = "cpu"
    ) -> FeatureSpace:
        """Bounds [0, 1] (the scaled training range and one-hot values); immutable columns fixed."""
        n = encoder.n_features
        blocks = torch.as_tensor(encoder.categorical_blocks(), device=device)
        return cls(
            lower=torch.zeros(n, device=device),
            upper=torch.ones(n, device=device),
            mutable=torch.as_tensor(encoder.mutable_mask(), device=device),
            numeric=torch.as_tensor(encoder.numeric_features(), device=device),
            grid=torch.as_tensor(encoder.numeric_grid(), device=device),
            blocks=blocks,
            n_blocks=int(blocks.max().item()) + 1 if n else 0,
        )

    @classmethod
    def unconstrained(cls, n_features: int, device: torch.device | str = "cpu") -> FeatureSpace:
        """All features numeric, mutable and continuous in [0, 1] (for tests and raw matrices)."""
        return cls(
            lower=torch.zeros(n_features, device=device),
            upper=torch.ones(n_features, device=device),
            mutable=torch.ones(n_features, dtype=torch.bool, device=device),
            numeric=torch.ones(n_features, dtype=torch.bool, device=device),
            grid=torch.zeros(n_features, device=device),
            blocks=torch.full((n_features,), -1, dtype=torch.long, device=device),
            n_blocks=0,
        )

    def box(self, x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry bounds ``(low, high)`` of :meth:`project` around ``x``: clamping to them is
        the same projection, computed once per attack instead of once per step."""
        low = torch.maximum(x - eps, torch.minimum(self.lower, x))
        high = torch.minimum(x + eps, torch.maximum(self.upper, x))
        return torch.where(self.mutable, low, x), torch.where(self.mutable, high, x)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
        """Project onto the eps-ball around ``x`` intersected with the bounds, immutables fixed.

        Bounds widen to include ``x`` itself, so a test row outside the training range is never
        moved by the projection alone.
        """
        lower = torch.minimum(self.lower, x)
        upper = torch.maximum(self.upper, x)
        x_adv = torch.clamp(x_adv, min=torch.maximum(x - eps, lower))
        x_adv = torch.clamp(x_adv, max=torch.minimum(x + eps, upper))
        return torch.where(self.mutable, x_adv, x)
