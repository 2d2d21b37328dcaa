"""Tests of froc_cli.attacks._certify: certified robustness of lr and ReLU MLPs by IBP and CROWN.

Ground truth comes from brute force on tiny problems: a dense grid over each row's eps-box
(101 x 101 points in 2-D, 31^3 in 3-D, corners included), and in the valid space every category
switch crossed with a dense grid of the numerics. Grid logits are computed in float64 and in the
model's own float32. A certified row must never change prediction anywhere on the grid, the
bounds must enclose every grid logit, and for ``lr`` the bounds are the analytic min and max.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from froc_cli.attacks import PGD, FeatureSpace, ValidRecordAttack
from froc_cli.attacks._certify import certify, logit_bounds, threat_bounds
from froc_cli.core import InputError
from froc_cli.models import TabularNet, build_model

METHODS = ("ibp", "crown-ibp", "crown")
TOL = 1e-9


def _grid(low: torch.Tensor, high: torch.Tensor, points: int) -> torch.Tensor:
    """(rows, points ** d, d): a dense grid over each row's box, corners included."""
    d = low.shape[1]
    steps = torch.linspace(0, 1, points, dtype=torch.float64)
    unit = torch.cartesian_prod(*([steps] * d)).reshape(-1, d)
    low64, high64 = low.double(), high.double()
    return low64[:, None, :] + (high64 - low64)[:, None, :] * unit[None]


def _logits(model: TabularNet, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at ``points`` in float64 and in the model's float32."""
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(points)
        single = model(points.float())
    return exact, single


def _flips(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per row: some point is predicted otherwise than ``y``."""
    return ((logits > 0) != (y[:, None] > 0.5)).any(1)


def _problem(spec: str, d: int, seed: int, n: int = 40) -> tuple[TabularNet, torch.Tensor, float]:
    """A random network whose decision boundary runs through the middle of random rows."""
    model = build_model(spec, d, seed=seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.uniform(-0.1, 1.1, size=(n, d)), dtype=torch.float32)
    eps = float(rng.choice([0.02, 0.05, 0.1, 0.2]))
    return _centred(model, x), x, eps


def _centred(model: TabularNet, x: torch.Tensor) -> TabularNet:
    """Shift the output bias so that half of ``x`` is predicted positive."""
    with torch.no_grad():
        model.layers[-1].bias -= model(x).median()
    return model


def _space(d: int) -> FeatureSpace:
    space = FeatureSpace.unconstrained(d)
    if d == 3:  # one immutable feature
        return dataclasses.replace(space, mutable=torch.tensor([True, False, True]))
    return space


def _predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x) > 0).float()


# --------------------------------------------------------------------------------------------
# continuous space: soundness and bounds against a dense grid
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "d"), [("lr", 2), ("mlp:8", 2), ("mlp:6x6", 2), ("mlp:8", 3)])
def test_certified_rows_never_flip_on_a_dense_grid(spec: str, d: int) -> None:
    seeds = range(10) if d == 2 else range(4)
    points = 101 if d == 2 else 31
    certified_total = {method: 0 for method in METHODS}
    broken_total = 0
    for seed in seeds:
        model, x, eps = _problem(spec, d, seed, n=25)
        space = _space(d)
        # Labels: the prediction, flipped on a few rows (never certified: misclassified).
        y = _predictions(model, x)
        y[:4] = 1 - y[:4]
        low, high = space.box(x, eps)
        exact, single = _logits(model, _grid(low, high, points))
        broken = _flips(exact, y) | _flips(single, y)
        broken_total += int(broken[4:].sum())
        for method in METHODS:
            certified = certify(model, x, y, space, eps=eps, method=method)
            assert not bool((certified & broken).any()), (spec, seed, method)
            assert not bool(certified[:4].any())
            certified_total[method] += int(certified.sum())
    # The test has teeth: many rows certified, many correctly classified ones broken on the grid.
    assert min(certified_total.values()) > 10
    assert broken_total > 10
    assert certified_total["crown"] >= certified_total["crown-ibp"] >= certified_total["ibp"]


@pytest.mark.parametrize(("spec", "d"), [("mlp:8", 2), ("mlp:6x6", 2), ("mlp:8x8x8", 2)])
def test_bounds_enclose_the_grid_and_crown_is_tighter(spec: str, d: int) -> None:
    counts = {method: 0 for method in METHODS}
    gap = {method: 0.0 for method in METHODS}
    for seed in range(6):
        model, x, eps = _problem(spec, d, seed, n=25)
        y = _predictions(model, x)
        space = _space(d)
        low, high = space.box(x, eps)
        exact, _ = _logits(model, _grid(low, high, 101))
        bounds = {method: logit_bounds(model, low, high, method=method) for method in METHODS}
        for method, (lower, upper) in bounds.items():
            assert lower.dtype == torch.float64 and lower.shape == (x.shape[0],)
            assert bool((lower <= exact.min(1).values + TOL).all()), (seed, method)
            assert bool((upper >= exact.max(1).values - TOL).all()), (seed, method)
            counts[method] += int(certify(model, x, y, space, eps=eps, method=method).sum())
            gap[method] += float((upper - lower).sum())
        # Per row, "crown" is never looser than "crown-ibp", and that never looser than IBP.
        for tight, loose in [("crown", "crown-ibp"), ("crown-ibp", "ibp")]:
            assert bool((bounds[tight][0] >= bounds[loose][0] - TOL).all())
            assert bool((bounds[tight][1] <= bounds[loose][1] + TOL).all())
    assert counts["crown"] >= counts["crown-ibp"] > counts["ibp"]
    assert gap["crown"] <= gap["crown-ibp"] < gap["ibp"]


def test_one_hidden_layer_crown_and_crown_ibp_agree() -> None:
    model, x, eps = _problem("mlp:16", 5, 3, n=200)
    low, high = FeatureSpace.unconstrained(5).box(x, eps)
    crown = logit_bounds(model, low, high, method="crown")
    crown_ibp = logit_bounds(model, low, high, method="crown-ibp")
    torch.testing.assert_close(crown, crown_ibp, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(5))
def test_lr_bounds_are_exact(seed: int) -> None:
    d = 4
    model, x, eps = _problem("lr", d, seed, n=100)
    space = dataclasses.replace(
        FeatureSpace.unconstrained(d), mutable=torch.tensor([True, False, True, True])
    )
    low, high = space.box(x, eps)
    w = model.layers[0].weight.detach().double()[0]
    b = float(model.layers[0].bias.detach().double()[0])
    at_min = torch.where(w > 0, low.double(), high.double())
    at_max = torch.where(w > 0, high.double(), low.double())
    for method in METHODS:
        lower, upper = logit_bounds(model, low, high, method=method)
        torch.testing.assert_close(lower, at_min @ w + b, rtol=0, atol=1e-12)
        torch.testing.assert_close(upper, at_max @ w + b, rtol=0, atol=1e-12)


def test_zero_eps_certifies_exactly_the_correct_rows() -> None:
    model, x, _ = _problem("mlp:8x8", 4, 0, n=300)
    y = torch.tensor(np.random.default_rng(0).integers(0, 2, size=300), dtype=torch.float32)
    correct = _predictions(model, x) == y
    for method in METHODS:
        certified = certify(model, x, y, FeatureSpace.unconstrained(4), eps=0.0, method=method)
        assert torch.equal(certified, correct)


# --------------------------------------------------------------------------------------------
# certified <= not broken by PGD
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["mlp:16", "mlp:8x8"])
def test_certified_rows_resist_pgd(spec: str) -> None:
    d, n = 6, 200
    certified_total = robust_total = 0
    for seed in range(30):
        model, x, _ = _problem(spec, d, seed, n=n)
        y = _predictions(model, x)
        space = FeatureSpace.unconstrained(d)
        eps = 0.1
        x_adv = PGD(model, space, eps=eps, steps=100, step_size=eps / 20)(x, y)
        robust = _predictions(model, x_adv) == y
        for method in METHODS:
            certified = certify(model, x, y, space, eps=eps, method=method)
            assert bool((robust | ~certified).all()), (seed, method)
        certified_total += int(certified.sum())
        robust_total += int(robust.sum())
    assert 0 < certified_total <= robust_total < 30 * n


# --------------------------------------------------------------------------------------------
# the valid-record space
# --------------------------------------------------------------------------------------------

# Two numerics (the first on a 0.1 grid), a categorical block of 3 and one of 2.
BLOCKS = ((2, 3, 4), (5, 6))


def _valid_space(grid: float = 0.1, mutable_b: bool = True) -> FeatureSpace:
    return FeatureSpace(
        lower=torch.zeros(7),
        upper=torch.ones(7),
        mutable=torch.tensor([True, True, True, True, True, mutable_b, mutable_b]),
        numeric=torch.tensor([True, True, False, False, False, False, False]),
        grid=torch.tensor([grid, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        blocks=torch.tensor([-1, -1, 0, 0, 0, 1, 1]),
        n_blocks=2,
    )


def _valid_model(spec: str, seed: int, x: torch.Tensor) -> TabularNet:
    """A random network on the valid space's 7 features; the categorical weights shrunk so
    that some rows survive every switch and others do not."""
    model = build_model(spec, 7, seed=seed)
    with torch.no_grad():
        model.layers[0].weight[:, 2:] *= 0.1
    return _centred(model, x)


def _valid_rows(seed: int, n: int = 30) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 7), dtype=np.float32)
    x[:, 0] = rng.integers(0, 11, size=n) / 10
    x[:, 1] = rng.uniform(0, 1, size=n)
    x[np.arange(n), 2 + rng.integers(0, 3, size=n)] = 1
    x[np.arange(n), 5 + rng.integers(0, 2, size=n)] = 1
    return torch.tensor(x)


def _valid_records(
    x: torch.Tensor, budget: int, blocks: tuple[tuple[int, ...], ...]
) -> torch.Tensor:
    """(n, K, d): per row, every record with at most ``budget`` blocks switched to another
    category (one-hot rows: the same number K of records per row)."""
    records = []
    for row in x:
        options = [row.clone()]
        current = {block: next(j for j in block if row[j] > 0.5) for block in blocks}
        for r in range(1, budget + 1):
            for subset in itertools.combinations(blocks, r):
                others = [[j for j in block if j != current[block]] for block in subset]
                for choice in itertools.product(*others):
                    option = row.clone()
                    for block, j in zip(subset, choice, strict=True):
                        option[list(block)] = 0.0
                        option[j] = 1.0
                    options.append(option)
        records.append(torch.stack(options))
    return torch.stack(records)


def _valid_grid_logits(
    model: TabularNet, x: torch.Tensor, eps: float, budget: int, space: FeatureSpace
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, points): float64 and float32 logits over every switch x a 61 x 61 numeric grid."""
    low, high = space.box(x, eps)
    mutable_blocks = tuple(b for b in BLOCKS if bool(space.mutable[b[0]]))
    records = _valid_records(x, budget, mutable_blocks).double()  # (n, K, 7)
    numeric = _grid(low[:, :2], high[:, :2], 61)  # (n, P, 2)
    n, k, p = records.shape[0], records.shape[1], numeric.shape[1]
    points = records[:, :, None, :].repeat(1, 1, p, 1)
    points[..., :2] = numeric[:, None]
    return _logits(model, points.reshape(n, k * p, 7))


@pytest.mark.parametrize("spec", ["lr", "mlp:8", "mlp:6x6"])
@pytest.mark.parametrize("budget", [1, 2])
def test_valid_space_is_sound_against_exhaustive_enumeration(spec: str, budget: int) -> None:
    space = _valid_space()
    certified_total = hull_total = broken_total = 0
    widths = {method: 0.0 for method in METHODS}
    relaxed_widths = {method: 0.0 for method in METHODS}
    for seed in range(3):
        x = _valid_rows(seed)
        model = _valid_model(spec, seed, x)
        y = _predictions(model, x)
        eps = (0.05, 0.1, 0.2)[seed % 3]
        exact, single = _valid_grid_logits(model, x, eps, budget, space)
        low, high = exact.min(1).values, exact.max(1).values
        broken = _flips(exact, y) | _flips(single, y)
        broken_total += int(broken.sum())
        for max_options in (4096, 0):  # enumerated, then the relaxation of the switches
            for method in METHODS:
                kwargs = dict(eps=eps, method=method, attack_space="valid", cat_budget=budget)
                lower, upper = threat_bounds(model, x, space, max_options=max_options, **kwargs)
                assert bool((lower <= low + TOL).all() and (upper >= high - TOL).all())
                certified = certify(model, x, y, space, max_options=max_options, **kwargs)
                assert not bool((certified & broken).any()), (seed, method, max_options)
                if max_options:
                    certified_total += int(certified.sum())
                else:
                    hull_total += int(certified.sum())
        # Enumeration is tighter than the relaxation: per row for IBP (monotone in the
        # intervals); CROWN's adaptive slopes are not, so for CROWN in aggregate only.
        for method in METHODS:
            kwargs = dict(eps=eps, method=method, attack_space="valid", cat_budget=budget)
            lower, upper = threat_bounds(model, x, space, **kwargs)
            relaxed = threat_bounds(model, x, space, max_options=0, **kwargs)
            if method == "ibp":
                assert bool((lower >= relaxed[0] - TOL).all() and (upper <= relaxed[1] + TOL).all())
            widths[method] += float((upper - lower).sum())
            relaxed_widths[method] += float((relaxed[1] - relaxed[0]).sum())
    assert certified_total > 0 and broken_total > 0
    assert certified_total >= hull_total
    for method in METHODS:
        assert widths[method] <= relaxed_widths[method] + TOL
    if spec == "lr":  # linear: the relaxation is exact too
        assert certified_total == hull_total


def test_valid_bounds_of_lr_are_exact() -> None:
    space = _valid_space(grid=0.0)
    x = _valid_rows(1)
    model = _valid_model("lr", 1, x)
    exact, _ = _valid_grid_logits(model, x, 0.1, 1, space)
    for max_options in (4096, 0):
        lower, upper = threat_bounds(
            model, x, space, eps=0.1, attack_space="valid", max_options=max_options
        )
        # The extremes of a linear function sit at the box corners: on the grid.
        torch.testing.assert_close(lower, exact.min(1).values, rtol=0, atol=1e-9)
        torch.testing.assert_close(upper, exact.max(1).values, rtol=0, atol=1e-9)


def test_immutable_blocks_never_switch() -> None:
    space = _valid_space(mutable_b=False)
    for seed in range(4):
        x = _valid_rows(seed)
        model = _valid_model("mlp:8", seed, x)
        exact, _ = _valid_grid_logits(model, x, 0.1, 2, space)
        lower, upper = threat_bounds(model, x, space, eps=0.1, attack_space="valid", cat_budget=2)
        assert bool((lower <= exact.min(1).values + TOL).all())
        assert bool((upper >= exact.max(1).values - TOL).all())
        both = threat_bounds(model, x, _valid_space(), eps=0.1, attack_space="valid", cat_budget=2)
        assert bool((lower >= both[0] - TOL).all() and (upper <= both[1] + TOL).all())


@pytest.mark.parametrize("method", METHODS)
def test_zero_cat_budget_is_the_numeric_box(method: str) -> None:
    space = _valid_space(grid=0.0)
    for seed in range(4):
        x = _valid_rows(seed)
        model = _valid_model("mlp:6x6", seed, x)
        low, high = space.box(x, 0.1)
        numeric = space.numeric & space.mutable
        box = logit_bounds(
            model, torch.where(numeric, low, x), torch.where(numeric, high, x), method=method
        )
        valid = threat_bounds(
            model, x, space, eps=0.1, method=method, attack_space="valid", cat_budget=0
        )
        torch.testing.assert_close(valid, box, rtol=0, atol=1e-12)


def test_budget_past_the_blocks_is_every_combination() -> None:
    space = _valid_space()
    x = _valid_rows(2)
    model = _valid_model("mlp:8", 2, x)
    two = threat_bounds(model, x, space, eps=0.1, attack_space="valid", cat_budget=2)
    five = threat_bounds(model, x, space, eps=0.1, attack_space="valid", cat_budget=5)
    torch.testing.assert_close(two, five, rtol=0, atol=0)


@pytest.mark.parametrize("budget", [1, 2])
def test_valid_certified_rows_resist_the_valid_attack(budget: int) -> None:
    space = _valid_space()
    certified_total = 0
    for seed in range(10):
        x = _valid_rows(seed, n=200)
        model = _valid_model("mlp:16", seed, x)
        y = _predictions(model, x)
        attack = ValidRecordAttack(model, space, eps=0.1, steps=50, cat_budget=budget)
        robust = _predictions(model, attack(x, y)) == y
        certified = certify(model, x, y, space, eps=0.1, attack_space="valid", cat_budget=budget)
        assert bool((robust | ~certified).all()), seed
        certified_total += int(certified.sum())
    assert certified_total > 0


# --------------------------------------------------------------------------------------------
# chunking, inputs
# --------------------------------------------------------------------------------------------


def test_chunking_changes_nothing() -> None:
    space = _valid_space()
    x = _valid_rows(4, n=50)
    model = _valid_model("mlp:6x6", 4, x)
    y = _predictions(model, x)
    for attack_space, budget in [("continuous", 1), ("valid", 1), ("valid", 2)]:
        kwargs = dict(eps=0.1, attack_space=attack_space, cat_budget=budget)
        whole = threat_bounds(model, x, space, **kwargs)
        # chunk 3 splits rows and, in the valid space, each row's options (6 or 12).
        torch.testing.assert_close(threat_bounds(model, x, space, chunk=3, **kwargs), whole)
        assert torch.equal(
            certify(model, x, y, space, chunk=3, **kwargs), certify(model, x, y, space, **kwargs)
        )


def test_labels_may_be_bool_or_float_and_misclassified_rows_are_not_certified() -> None:
    model, x, _ = _problem("mlp:8", 3, 1, n=100)
    space = FeatureSpace.unconstrained(3)
    y = _predictions(model, x)
    as_float = certify(model, x, y, space, eps=0.01)
    assert torch.equal(as_float, certify(model, x, y.bool(), space, eps=0.01))
    assert as_float.dtype == torch.bool and int(as_float.sum()) > 50
    assert not bool(certify(model, x, 1 - y, space, eps=0.01).any())


def test_no_rows() -> None:
    model = build_model("mlp:8", 7, seed=0)
    x, y = torch.zeros(0, 7), torch.zeros(0)
    for attack_space in ("continuous", "valid"):
        kwargs = dict(eps=0.1, attack_space=attack_space)
        assert certify(model, x, y, _valid_space(), **kwargs).shape == (0,)
        lower, upper = threat_bounds(model, x, _valid_space(), **kwargs)
        assert lower.shape == upper.shape == (0,)


def test_bad_inputs_are_refused() -> None:
    model, x, _ = _problem("mlp:8", 3, 0, n=5)
    space = FeatureSpace.unconstrained(3)
    y = _predictions(model, x)
    with pytest.raises(InputError, match="method"):
        certify(model, x, y, space, eps=0.1, method="lp")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="attack space"):
        certify(model, x, y, space, eps=0.1, attack_space="discrete")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cat_budget"):
        certify(model, x, y, space, eps=0.1, cat_budget=-1)
    for net in [
        nn.Sequential(nn.Linear(3, 2)),
        nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)),
        nn.Sequential(),
    ]:
        with pytest.raises(InputError, match="Linear-ReLU"):
            logit_bounds(net, x, x + 0.1)
