"""A Square-attack-style random search in the space of valid records, with queries only."""

from __future__ import annotations

import torch

from ._query import QueryAttack, QueryFunction, query_loss
from ._space import FeatureSpace

__all__ = ["SquareAttack", "square_fraction"]

# Slack on a count of grid steps (a float32 ratio 9.99999 is 10 steps).
_STEP_SLACK = 1e-4


def square_fraction(p_init: float, iteration: int, iterations: int) -> float:
    """The share of numeric features a step changes: ``p_init`` halved at the Square
    attack's milestones (Andriushchenko et al., 2020), 10, 50, 200, 500, 1000, 2000, 4000, 6000
    and 8000 of 10,000 iterations, scaled to ``iterations``."""
    scaled = int(iteration / max(iterations, 1) * 10_000)
    milestones = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
    halvings = sum(scaled > m for m in milestones)
    return p_init / 2**halvings


class SquareAttack(QueryAttack):
    """Random search for a valid record the model decides otherwise (score-based, black-box).

    The Square attack (Andriushchenko et al., ECCV 2020) for L-inf, moved to froc's space of
    valid records (:class:`froc_cli.attacks.FeatureSpace`): immutable columns (the protected
    column is never a feature) stay as they are; a numeric feature takes values within eps of
    its row's own value and the bounds, on its column's grid (rounded toward the row's value);
    at most ``cat_budget`` categorical columns hold another category than the row's.

    Each row starts from the best (highest :func:`query_loss`) of itself, ``start`` (the
    transfer attack's examples, when given) and a random vertex of its numeric box. Then each
    iteration proposes one candidate per row still unbroken and queries them all in one batch:

    - with probability ``switch_share`` (when categories may switch), one categorical column
      takes a random other category; past the budget, another switched column returns to the
      row's own category;
    - else ``k = max(1, round(p * n_numeric))`` random numeric features move (``p`` by
      :func:`square_fraction`): to the opposite vertex of their box (a random vertex from
      inside), or with probability ``interior_share`` to a random grid point of the box.

    A candidate replaces the row's point when its loss is not lower (ties move the search
    across a tree's flat scores). A row stops as soon as the model's decision differs from its
    label, or when ``queries`` queries are spent on it (the starting points count). All
    randomness comes from a generator seeded with ``seed``.
    """

    def __init__(
        self,
        query: QueryFunction,
        space: FeatureSpace,
        *,
        eps: float,
        queries: int = 1000,
        cat_budget: int = 1,
        seed: int = 0,
        p_init: float = 0.5,
        switch_share: float = 0.5,
        interior_share: float = 0.2,
    ) -> None:
        super().__init__(query)
        if queries < 1:
            raise ValueError(f"SquareAttack queries {queries}: expected at least 1")
        self.space = space
        self.eps = eps
        self.budget = queries
        self.cat_budget = cat_budget
        self.seed = seed
        self.p_init = p_init
        self.switch_share = switch_share
        self.interior_share = interior_share

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Adversarial rows (same shape): the breaking candidate of each broken row, the
        highest-loss point found of the others."""
        x = x.detach()
        n = x.shape[0]
        device = x.device
        labels = y.bool()
        generator = torch.Generator(device=device).manual_seed(self.seed)
        space = self.space
        numeric = torch.nonzero(space.numeric & space.mutable).squeeze(1)
        numeric = numeric if self.eps > 0 else numeric[:0]
        block_ids = torch.unique(space.blocks[(space.blocks >= 0) & space.mutable])
        switching = self.cat_budget > 0 and block_ids.numel() > 0
        used = torch.zeros(n, dtype=torch.long, device=device)
        everyone = torch.arange(n, device=device)

        decided, margins = self.query(everyone, x)
        used += 1
        best, best_loss = x.clone(), query_loss(margins, labels)
        broken = decided != labels
        candidates = [start] if start is not None else []
        low = high = torch.empty(0)
        if numeric.numel():
            low, high = self._numeric_box(x, numeric)
            pick = torch.rand(n, numeric.numel(), generator=generator, device=device) < 0.5
            vertex = x.clone()
            vertex[:, numeric] = torch.where(pick, low, high)
            candidates.append(vertex)
        for candidate in candidates:
            rows = torch.nonzero(~broken & (used < self.budget)).squeeze(1)
            if rows.numel():
                self._offer(rows, candidate[rows], labels, best, best_loss, broken, used)

        if switching:
            blocks = space.blocks
            first = torch.stack([torch.nonzero(blocks == b)[0, 0] for b in block_ids])
            # Per feature, the index of its block in block_ids (-1: not a mutable category).
            self._feature_block = torch.full_like(blocks, -1)
            for index, b in enumerate(block_ids):
                self._feature_block[blocks == b] = index
            widths = torch.stack([(blocks == b).sum() for b in block_ids])
            pairs = list(zip(block_ids, first, strict=True))
            # (n, blocks): the feature of each row's own category, and of its current one.
            own = torch.stack([x[:, blocks == b].argmax(dim=1) + f for b, f in pairs], dim=1)
            current = torch.stack([best[:, blocks == b].argmax(dim=1) + f for b, f in pairs], dim=1)
        # Nothing may move (eps 0 and no switches, or every column immutable): no search.
        iterations = self.budget if numeric.numel() or switching else 0
        for iteration in range(iterations):
            rows = torch.nonzero(~broken & (used < self.budget)).squeeze(1)
            if rows.numel() == 0:
                break
            candidate = best[rows].clone()
            switch = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
            if switching:
                if numeric.numel():
                    switch = (
                        torch.rand(rows.numel(), generator=generator, device=device)
                        < self.switch_share
                    )
                else:
                    switch[:] = True
            if numeric.numel():
                moved = ~switch
                if bool(moved.any()):
                    p = square_fraction(self.p_init, iteration, iterations)
                    count = max(1, min(numeric.numel(), round(p * numeric.numel())))
                    candidate[moved] = self._numeric_move(
                        candidate[moved], rows[moved], numeric, low, high, count, generator
                    )
            if bool(switch.any()):
                chosen = torch.nonzero(switch).squeeze(1)
                candidate[chosen], new_current = self._switch(
                    candidate[chosen], own[rows[chosen]], current[rows[chosen]], block_ids,
                    first, widths, generator,
                )  # fmt: skip
            accepted = self._offer(rows, candidate, labels, best, best_loss, broken, used)
            if switching and bool(switch.any()):
                take = accepted[chosen]
                current[rows[chosen[take]]] = new_current[take]
        self.queries_used = used
        self.broken = broken
        return best

    def _offer(
        self,
        rows: torch.Tensor,
        candidate: torch.Tensor,
        labels: torch.Tensor,
        best: torch.Tensor,
        best_loss: torch.Tensor,
        broken: torch.Tensor,
        used: torch.Tensor,
    ) -> torch.Tensor:
        """Query ``candidate`` for ``rows``; keep each that breaks its row or does not lower its
        loss (in place). Returns which were kept."""
        decided, margins = self.query(rows, candidate)
        used[rows] += 1
        loss = query_loss(margins, labels[rows])
        breaks = decided != labels[rows]
        accepted = breaks | (loss >= best_loss[rows])
        kept = rows[accepted]
        best[kept] = candidate[accepted]
        best_loss[kept] = loss[accepted]
        broken[kept] = breaks[accepted]
        return accepted

    def _numeric_box(
        self, x: torch.Tensor, numeric: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, the lowest and highest value each mutable numeric feature may take: within
        eps and the bounds, on the grid (rounded toward the row's value)."""
        low, high = self.space.box(x, self.eps)
        values, low, high = x[:, numeric], low[:, numeric], high[:, numeric]
        grid = self.space.grid[numeric]
        on_grid = grid > 0
        step = torch.where(on_grid, grid, torch.ones_like(grid))
        up = torch.floor((high - values) / step + _STEP_SLACK)
        down = torch.floor((values - low) / step + _STEP_SLACK)
        return (
            torch.where(on_grid, values - down * step, low),
            torch.where(on_grid, values + up * step, high),
        )

    def _numeric_move(
        self,
        candidate: torch.Tensor,
        rows: torch.Tensor,
        numeric: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        count: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """``candidate`` with ``count`` random numeric features per row moved in their box."""
        m, k = candidate.shape[0], numeric.numel()
        device = candidate.device
        low, high = low[rows], high[rows]
        chosen = torch.rand(m, k, generator=generator, device=device).topk(count, dim=1).indices
        mask = torch.zeros(m, k, dtype=torch.bool, device=device).scatter_(1, chosen, True)
        values = candidate[:, numeric]
        at_high = values >= high
        at_low = values <= low
        coin = torch.rand(m, k, generator=generator, device=device) < 0.5
        vertex = torch.where(at_high, low, torch.where(at_low, high, torch.where(coin, low, high)))
        # Interior: a uniform point of the box, on the grid when the column has one.
        grid = self.space.grid[numeric]
        draw = torch.rand(m, k, generator=generator, device=device)
        inside = low + draw * (high - low)
        on_grid = grid > 0
        step = torch.where(on_grid, grid, torch.ones_like(grid))
        inside = torch.where(on_grid, low + torch.round((inside - low) / step) * step, inside)
        inside = torch.minimum(torch.maximum(inside, low), high)
        interior = torch.rand(m, k, generator=generator, device=device) < self.interior_share
        moved = torch.where(interior, inside, vertex)
        candidate[:, numeric] = torch.where(mask, moved, values)
        return candidate

    def _switch(
        self,
        candidate: torch.Tensor,
        own: torch.Tensor,
        current: torch.Tensor,
        block_ids: torch.Tensor,
        first: torch.Tensor,
        widths: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``candidate`` with one random block set to a random other category (another block
        returned to the row's own when the budget would be exceeded), and the new per-block
        category features."""
        m = candidate.shape[0]
        device = candidate.device
        n_blocks = block_ids.numel()
        rows = torch.arange(m, device=device)
        block = torch.randint(n_blocks, (m,), generator=generator, device=device)
        width = widths[block]
        offset = (torch.rand(m, generator=generator, device=device) * (width - 1)).long() + 1
        # A category other than the current one: the current plus 1 .. width - 1, cyclically.
        now = current[rows, block] - first[block]
        feature = first[block] + (now + offset) % width
        feature = torch.where(width > 1, feature, current[rows, block])
        new = current.clone()
        new[rows, block] = feature
        switched = new != own
        over = switched.sum(dim=1) > self.cat_budget
        if bool(over.any()):
            # Return one of the other switched blocks, at random, to the row's own category.
            weights = torch.rand(m, n_blocks, generator=generator, device=device)
            others = switched.clone()
            others[rows, block] = False
            weights = torch.where(others, weights, torch.full_like(weights, -1.0))
            back = weights.argmax(dim=1)
            restore = rows[over]
            new[restore, back[over]] = own[restore, back[over]]
        # Rewrite the changed blocks: zeros, then a one at each changed block's new category.
        changed = new != current
        in_changed = changed[:, self._feature_block.clamp(min=0)] & (self._feature_block >= 0)
        candidate = candidate.masked_fill(in_changed, 0.0)
        row, column = torch.nonzero(changed, as_tuple=True)
        candidate[row, new[row, column]] = 1.0
        return candidate, new
