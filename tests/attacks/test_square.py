"""The Square-style query attack: against closed forms and brute force, inside the valid space,
within its query budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_biased_frame

from froc_cli.attacks import (
    FeatureSpace,
    QueryFunction,
    SquareAttack,
    query_loss,
    square_fraction,
)
from froc_cli.data import fit_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear_query(w: torch.Tensor, b: float) -> QueryFunction:
    def query(rows: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        margin = (x.double() @ w.double()) + b
        return margin >= 0, margin

    return query


def test_square_fraction_halves_at_the_milestones() -> None:
    assert square_fraction(0.5, 0, 1000) == 0.5
    assert square_fraction(0.5, 2, 1000) == 0.25  # 20 of 10,000
    assert square_fraction(0.5, 999, 1000) == 0.5 / 2**9


def test_linear_model_matches_the_closed_form() -> None:
    """A linear score in the box [0, 1]: the worst point of each row is the vertex that moves
    every feature by eps against its label (clipped to the bounds), so the rows that can be
    broken are known exactly."""
    generator = torch.Generator().manual_seed(0)
    n, d, eps = 400, 6, 0.1
    x = torch.rand(n, d, generator=generator)
    w = torch.randn(d, generator=generator)
    b = -float(x.mean(0) @ w)
    y = ((x @ w + b) >= 0).float()
    flip = torch.rand(n, generator=generator) < 0.1
    y = torch.where(flip, 1 - y, y)  # some rows misclassified from the start
    space = FeatureSpace.unconstrained(d)
    attack = SquareAttack(_linear_query(w, b), space, eps=eps, queries=300, seed=1)
    attack(x, y)
    toward = torch.where(y[:, None] > 0, -torch.sign(w), torch.sign(w))
    worst = (x + eps * toward).clamp(0, 1)
    breakable = ((worst.double() @ w.double() + b) >= 0) != y.bool()
    assert torch.equal(attack.broken, breakable)


def test_category_switches_match_brute_force() -> None:
    """eps 0 and one switch: the rows a switch breaks, enumerated against a random network,
    are exactly the rows the search breaks (every switch is a few queries away)."""
    frame = make_biased_frame(150, seed=4)
    encoder = fit_encoder(frame, ("age", "income", "education", "region"))
    space = FeatureSpace.from_encoder(encoder)
    x = torch.as_tensor(encoder.encode(frame))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            margin = net(candidates)[:, 0].double()
        return margin >= 0, margin

    with torch.no_grad():
        y = (net(x)[:, 0] >= 0).float()  # attack the model's own decisions
    attack = SquareAttack(query, space, eps=0.0, queries=200, cat_budget=1, seed=0)
    adversarial = attack(x, y)
    broken = torch.zeros(len(x), dtype=torch.bool)
    for column in encoder.columns:
        if column.name not in ("education", "region"):
            continue
        for k in range(column.width):
            variant = x.clone()
            variant[:, column.start : column.start + column.width] = 0
            variant[:, column.start + k] = 1
            with torch.no_grad():
                broken |= (net(variant)[:, 0] >= 0) != y.bool()
    assert torch.equal(attack.broken, broken)
    assert torch.equal(adversarial[:, space.numeric], x[:, space.numeric])


def _valid_space_case() -> tuple[FeatureSpace, torch.Tensor, torch.Tensor, torch.nn.Module]:
    frame = make_biased_frame(200, seed=2)
    encoder = fit_encoder(frame, ("age", "income", "education", "region"), immutable=("region",))
    space = FeatureSpace.from_encoder(encoder)
    x = torch.as_tensor(encoder.encode(frame))
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
    )
    y = torch.as_tensor(frame["approved"].to_numpy(np.float32))
    return space, x, y, net


def test_examples_stay_in_the_valid_space_and_the_budget() -> None:
    space, x, y, net = _valid_space_case()
    counts = torch.zeros(len(x), dtype=torch.long)

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        counts.index_add_(0, rows, torch.ones_like(rows))
        with torch.no_grad():
            margin = net(candidates)[:, 0].double()
        return margin >= 0, margin

    eps, budget = 0.15, 120
    attack = SquareAttack(query, space, eps=eps, queries=budget, cat_budget=1, seed=5)
    adversarial = attack(x, y)
    assert torch.equal(counts, attack.queries_used)
    assert int(counts.max()) <= budget
    # Broken rows stop at once; unbroken rows spend the whole budget.
    assert bool((counts[~attack.broken] == budget).all())
    with torch.no_grad():
        decided = net(adversarial)[:, 0] >= 0
    assert torch.equal(decided != y.bool(), attack.broken)
    assert 0 < int(attack.broken.sum()) < len(x)
    # Immutable (region) and non-moving entries are the row's own.
    assert torch.equal(adversarial[:, ~space.mutable], x[:, ~space.mutable])
    numeric = space.numeric
    moved = adversarial[:, numeric] - x[:, numeric]
    assert float(moved.abs().max()) <= eps + 1e-6
    assert float(adversarial[:, numeric].min()) >= -1e-6
    assert float(adversarial[:, numeric].max()) <= 1 + 1e-6
    grid = space.grid[numeric]
    steps = moved / grid
    assert torch.allclose(steps, steps.round(), atol=1e-3)  # on each column's grid
    # One-hot blocks stay one-hot; at most one column switched.
    switched = torch.zeros(len(x), dtype=torch.long)
    for block in range(space.n_blocks):
        features = space.blocks == block
        assert torch.equal(adversarial[:, features].sum(1), torch.ones(len(x)))
        switched += (adversarial[:, features] != x[:, features]).any(1).long()
    assert int(switched.max()) <= 1 and int(switched.sum()) > 0


def test_rows_misclassified_from_the_start_cost_one_query_and_runs_repeat() -> None:
    space, x, _, net = _valid_space_case()
    with torch.no_grad():
        predicted = (net(x)[:, 0] >= 0).float()
    wrong = 1 - predicted

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            margin = net(candidates)[:, 0].double()
        return margin >= 0, margin

    attack = SquareAttack(query, space, eps=0.1, queries=50, seed=0)
    attack(x, wrong)
    assert bool(attack.broken.all()) and bool((attack.queries_used == 1).all())
    first = SquareAttack(query, space, eps=0.1, queries=50, seed=7)
    second = SquareAttack(query, space, eps=0.1, queries=50, seed=7)
    torch.testing.assert_close(first(x, predicted), second(x, predicted), rtol=0, atol=0)


def test_start_points_are_used_and_loss_orders_them() -> None:
    w = torch.tensor([1.0, -1.0])
    x = torch.tensor([[0.5, 0.4], [0.5, 0.45]])
    y = torch.tensor([1.0, 1.0])
    start = torch.tensor([[0.4, 0.5], [0.5, 0.45]])  # breaks row 0 (margin -0.1)
    attack = SquareAttack(_linear_query(w, 0.0), FeatureSpace.unconstrained(2), eps=0.0,
                          queries=10)  # fmt: skip
    out = attack.forward(x, y, start=start)
    assert attack.broken.tolist() == [True, False]
    torch.testing.assert_close(out[0], start[0])
    loss = query_loss(torch.tensor([0.3, -0.2]), torch.tensor([1.0, 0.0]))
    assert loss.tolist() == pytest.approx([-0.3, -0.2])


def test_no_possible_move_spends_no_search() -> None:
    space, x, y, net = _valid_space_case()

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            margin = net(candidates)[:, 0].double()
        return margin >= 0, margin

    attack = SquareAttack(query, space, eps=0.0, queries=100, cat_budget=0)
    out = attack(x, y)
    assert torch.equal(out, x) and int(attack.queries_used.max()) == 1


def test_many_switches_respect_the_budget() -> None:
    space, x, y, net = _valid_space_case()
    space = FeatureSpace(
        lower=space.lower, upper=space.upper, mutable=torch.ones_like(space.mutable),
        numeric=space.numeric, grid=space.grid, blocks=space.blocks, n_blocks=space.n_blocks,
    )  # fmt: skip

    def query(rows: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            margin = net(candidates)[:, 0].double()
        return margin >= 0, margin

    for budget in (1, 2):
        attack = SquareAttack(query, space, eps=0.0, queries=80, cat_budget=budget, seed=3)
        out = attack(x, y)
        switched = sum(
            (out[:, space.blocks == b] != x[:, space.blocks == b]).any(1).long()
            for b in range(space.n_blocks)
        )
        assert isinstance(switched, torch.Tensor)
        assert int(switched.max()) <= budget
