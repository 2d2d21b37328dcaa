"""Decisions summed as they stream by: every audit figure from mergeable counts.

Every figure an audit reports (accuracy, the floor, S_B under each criterion, S_R in each
summary, the per-group figures) is a function of how many rows fall in each cell of
(group, label, decision, decision under each attack, certified). :class:`DecisionCounts` adds
those counts up batch by batch, in memory that does not grow with the rows, and
:meth:`DecisionCounts.evaluate` hands them to :func:`froc_cli.metrics.evaluate_decisions`'s own
statistics as one weighted row per cell: the same definitions, not a second copy.

Bootstrap intervals use a Poisson bootstrap, which works in one pass: each row gets, in each
resample, an independent Poisson(1) weight. The statistics depend on the weights only through
the weighted count of each cell, and a sum of independent Poisson(1) weights is Poisson(k):
each block of ``BOOTSTRAP_BLOCK_ROWS`` consecutive rows of the table draws, per resample, a
Poisson(count) weight for each of its cells, from a generator seeded with (seed, block). The
intervals therefore depend on the seed and on the rows' positions in the table, not on how the
rows were batched or sharded. (An in-memory audit resamples rows with replacement: the two
bootstraps estimate the same intervals, with different draws.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from froc_cli.metrics._evaluate import Decisions, Evaluation, _evaluation, _statistics
from froc_cli.metrics._scores import percentile_interval

__all__ = ["BOOTSTRAP_BLOCK_ROWS", "DecisionCounts"]

BOOTSTRAP_BLOCK_ROWS = 65_536
_ATTACKS = ("fgsm", "pgd", "apgd")


class DecisionCounts:
    """Rows per decision cell, added up batch by batch (see the module docstring).

    ``attacks``: the attacks whose decisions are counted (in ``threat.attacks`` order);
    ``certified``: whether certificates are; ``criterion`` and ``group_names`` as
    :class:`Decisions`. With ``n_resamples`` > 0, Poisson bootstrap weights are drawn from
    ``seed``.
    """

    def __init__(
        self,
        *,
        attacks: tuple[str, ...] = (),
        certified: bool = False,
        criterion: str = "parity",
        group_names: tuple[str, ...] | None = None,
        n_resamples: int = 0,
        seed: int = 0,
    ) -> None:
        self.attacks = tuple(kind for kind in _ATTACKS if kind in attacks)
        self.certified = certified
        self.criterion = criterion
        self.group_names = group_names
        self.n_resamples = n_resamples
        self.seed = seed
        self.counts: Counter[int] = Counter()
        self.resampled: dict[int, np.ndarray] = {}
        self._pending_block = -1
        self._pending: Counter[int] = Counter()

    @property
    def _bits(self) -> int:
        return 2 + len(self.attacks) + int(self.certified)

    def _keys(self, d: Decisions) -> np.ndarray:
        """One integer per row naming its cell: (group + 1), then one bit per 0/1 column."""
        columns = [d.y, d.pred]
        attacked = d.attacked
        columns += [attacked[kind] for kind in self.attacks]
        if self.certified:
            if d.certified is None:
                raise ValueError("DecisionCounts(certified=True) needs certified decisions")
            columns.append(d.certified)
        keys = np.asarray(d.a).astype(np.int64) + 1
        for column in columns:
            keys = keys * 2 + np.asarray(column).astype(np.int64)
        return keys

    def add(self, d: Decisions, positions: np.ndarray) -> None:
        """Count the rows of ``d``, which are the table's rows at ``positions`` (increasing,
        and beyond every position added before: the table is read in order)."""
        keys = self._keys(d)
        cells, counts = np.unique(keys, return_counts=True)
        self.counts.update(dict(zip(cells.tolist(), counts.tolist(), strict=True)))
        if self.n_resamples <= 0 or not len(keys):
            return
        blocks = np.asarray(positions, dtype=np.int64) // BOOTSTRAP_BLOCK_ROWS
        edges = np.flatnonzero(np.diff(blocks)) + 1
        for part_keys, block in zip(
            np.split(keys, edges), blocks[np.r_[0, edges]].tolist(), strict=True
        ):
            if block != self._pending_block:
                self._draw_pending()
                self._pending_block = block
            cells, counts = np.unique(part_keys, return_counts=True)
            self._pending.update(dict(zip(cells.tolist(), counts.tolist(), strict=True)))

    def _draw_pending(self) -> None:
        """Draw the finished block's Poisson weights (each cell's in the order of its key)."""
        if not self._pending:
            return
        cells = sorted(self._pending)
        rng = np.random.default_rng([self.seed, self._pending_block])
        lam = np.array([self._pending[c] for c in cells], dtype=np.float64)
        draws = rng.poisson(lam, size=(self.n_resamples, len(cells)))
        for j, cell in enumerate(cells):
            if cell in self.resampled:
                self.resampled[cell] += draws[:, j]
            else:
                self.resampled[cell] = draws[:, j].astype(np.int64)
        self._pending = Counter()

    def merge(self, other: DecisionCounts) -> None:
        """Add the counts (and bootstrap weights) of ``other``, of disjoint rows."""
        self._draw_pending()
        other._draw_pending()
        self.counts.update(other.counts)
        for cell, weights in other.resampled.items():
            if cell in self.resampled:
                self.resampled[cell] = self.resampled[cell] + weights
            else:
                self.resampled[cell] = weights.copy()

    @property
    def rows(self) -> int:
        """Rows counted."""
        return int(sum(self.counts.values()))

    def group_rows(self) -> dict[int, int]:
        """Rows counted per group code."""
        rows: Counter[int] = Counter()
        for cell, count in self.counts.items():
            rows[(cell >> self._bits) - 1] += count
        return dict(rows)

    def without_groups(self, codes: set[int] | list[int]) -> None:
        """Count the rows of the groups ``codes`` as not judged (code -1), as too-small groups
        are."""
        dropped = set(codes)
        self._draw_pending()

        def moved(cell: int) -> int:
            code = (cell >> self._bits) - 1
            return cell & ((1 << self._bits) - 1) if code in dropped else cell

        counts: Counter[int] = Counter()
        for cell, count in self.counts.items():
            counts[moved(cell)] += count
        resampled: dict[int, np.ndarray] = {}
        for cell, weights in self.resampled.items():
            key = moved(cell)
            resampled[key] = resampled[key] + weights if key in resampled else weights.copy()
        self.counts, self.resampled = counts, resampled

    def decisions(self, weight: np.ndarray | None = None) -> Decisions:
        """One row per cell counted, weighted by its count (or by ``weight``, in cell order)."""
        cells = np.array(sorted(self.counts), dtype=np.int64)
        columns = []
        rest = cells
        for _ in range(self._bits):
            columns.append((rest & 1).astype(np.int8))
            rest = rest >> 1
        columns.reverse()  # y, pred, each attack, certified
        attacked = dict(zip(self.attacks, columns[2 : 2 + len(self.attacks)], strict=True))
        return Decisions(
            y=columns[0],
            a=(rest - 1).astype(np.int8),
            pred=columns[1],
            pred_fgsm=attacked.get("fgsm"),
            pred_pgd=attacked.get("pgd"),
            pred_apgd=attacked.get("apgd"),
            certified=columns[-1].astype(bool) if self.certified else None,
            criterion=self.criterion,
            group_names=self.group_names,
            weight=(
                np.array([self.counts[c] for c in cells.tolist()], dtype=np.float64)
                if weight is None
                else weight
            ),
        )

    def evaluate(self, level: float = 0.95) -> Evaluation:
        """Every audit metric and group figure of the rows counted, with Poisson bootstrap
        intervals when resamples were drawn."""
        self._draw_pending()
        d = self.decisions()
        stats = _statistics(d)
        intervals: dict[str, tuple[float, float]] = {}
        if self.n_resamples > 0:
            cells = sorted(self.counts)
            zeros = np.zeros(self.n_resamples, dtype=np.int64)
            weights = np.stack([self.resampled.get(c, zeros) for c in cells], axis=1)
            everything = np.arange(len(cells))
            values: dict[str, list[float]] = {n: [] for n in stats if n != "majority_floor"}
            for row in weights.astype(np.float64):
                resampled = _statistics(replace(d, weight=row))
                for name in values:
                    values[name].append(resampled[name](everything))
            intervals = {
                name: percentile_interval(np.array(found), level) for name, found in values.items()
            }
        return _evaluation(d, stats, intervals)
