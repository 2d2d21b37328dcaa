"""Transfer attack: examples crafted on a surrogate, replayed against the model by queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._query import QueryAttack, QueryFunction, query_loss

__all__ = ["TransferAttack"]


class TransferAttack(QueryAttack):
    """Replays white-box examples of a surrogate against the model (black-box).

    ``crafters`` are attacks on a surrogate network (trained to imitate the model's decisions,
    e.g. valid-space PGD and APGD): each maps ``(x, y)`` to examples. The model is queried on
    each row itself, then on each crafter's example of the rows not yet broken; a row returns
    the first example that breaks it, else its highest-loss point (:func:`query_loss`), so
    the examples are a good start for a query attack. ``queries_used`` is at most
    ``1 + len(crafters)`` per row.
    """

    def __init__(
        self,
        query: QueryFunction,
        crafters: Sequence[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
    ) -> None:
        super().__init__(query)
        self.crafters = tuple(crafters)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The best example of each row (the row itself when none does better)."""
        x = x.detach()
        n = x.shape[0]
        labels = y.bool()
        rows = torch.arange(n, device=x.device)
        decided, margins = self.query(rows, x)
        used = torch.ones(n, dtype=torch.long, device=x.device)
        best, best_loss = x.clone(), query_loss(margins, labels)
        broken = decided != labels
        for craft in self.crafters:
            rows = torch.nonzero(~broken).squeeze(1)
            if rows.numel() == 0:
                break
            examples = craft(x[rows], y[rows]).detach()
            decided, margins = self.query(rows, examples)
            used[rows] += 1
            loss = query_loss(margins, labels[rows])
            breaks = decided != labels[rows]
            better = breaks | (loss > best_loss[rows])
            kept = rows[better]
            best[kept] = examples[better]
            best_loss[kept] = loss[better]
            broken[kept] = breaks[better]
        self.queries_used = used
        self.broken = broken
        return best
