"""What the black-box attacks share: the query function they call, per-row query counts and
success, and the loss they raise."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["QueryAttack", "QueryFunction", "query_loss"]

QueryFunction = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``query(rows, candidates)``: the model's decisions (bool, True = favourable) and score
margins (float, > 0 leans favourable) on ``candidates`` (m, n_features), encoded variants of
the attacked rows at positions ``rows`` (m,) of the batch given to ``forward``."""


def query_loss(margins: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What an attacker on ``labels`` raises: the margin towards the other decision."""
    return torch.where(labels.bool(), -margins, margins)


class QueryAttack:
    """Base class of the black-box attacks: they see the model only through ``query``.

    After ``forward(x, y)``, ``queries_used`` holds the queries spent on each row and
    ``broken`` whether the returned row's decision differs from ``y`` (as the model decided
    when queried).
    """

    def __init__(self, query: QueryFunction) -> None:
        self.query = query
        self.queries_used = torch.zeros(0, dtype=torch.long)
        self.broken = torch.zeros(0, dtype=torch.bool)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.forward(x, y)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial version of ``x`` (same shape) in the attack's space."""
        raise NotImplementedError
