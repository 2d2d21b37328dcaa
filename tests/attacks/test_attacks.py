"""Tests of froc_cli.attacks (FGSM, PGD, ValidRecordAttack) and froc_cli.models._nets.

Closed forms: for a linear model f(x) = w.x + b the worst case in the L-inf ball of radius eps
intersected with the box [min(0, x), max(1, x)] moves every mutable feature to the end of its
interval that lowers the margin of the attacked label, x_i -> x_i - eps * sign(w_i) * (2y - 1)
clipped to the box. FGSM (one step of eps) and PGD (enough steps) must both reach it.
Bounds, immutables and record validity are property-tested with hypothesis.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_biased_frame
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from valid_records import assert_real_records

from froc_cli.attacks import FGSM, PGD, FeatureSpace, ValidRecordAttack, make_attack
from froc_cli.core import InputError, ThreatModel
from froc_cli.data import fit_encoder
from froc_cli.metrics import attack_decisions, evaluate_decisions
from froc_cli.models import TabularNet, build_model, parse_model_spec

FEATURES = ("age", "income", "education", "region")
TOL = 1e-6


def _linear_model(d: int, seed: int, scale: float) -> TabularNet:
    model = build_model("lr", d, seed=seed)
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=d) * scale
    weight[np.abs(weight) < 0.05 * scale] = 0.5 * scale  # no (near-)zero weights
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor(weight[None, :], dtype=torch.float32))
        model.layers[0].bias.fill_(float(-weight.sum() / 2))  # the boundary through x = 0.5
    return model


def _closed_form(
    model: TabularNet, x: torch.Tensor, labels: torch.Tensor, eps: float, space: FeatureSpace
) -> torch.Tensor:
    """The exact worst case of a linear model in the eps-ball and box (module docstring)."""
    w = model.layers[0].weight.detach()[0]
    direction = -(2 * labels - 1)[:, None] * torch.sign(w)[None, :]
    low = torch.maximum(x - eps, torch.minimum(space.lower, x))
    high = torch.minimum(x + eps, torch.maximum(space.upper, x))
    worst = torch.where(direction > 0, high, torch.where(direction < 0, low, x))
    return torch.where(space.mutable, worst, x)


def _logits64(model: TabularNet, x: torch.Tensor) -> np.ndarray:
    w = model.layers[0].weight.detach().double()[0].numpy()
    b = float(model.layers[0].bias.detach().double()[0])
    return x.double().numpy() @ w + b


# --------------------------------------------------------------------------------------------
# closed forms on a linear model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["true", "predicted"])
@pytest.mark.parametrize("scale", [1.0, 40.0])  # 40: |logit| far beyond float32 sigmoid range
@pytest.mark.parametrize("seed", [0, 1])
def test_fgsm_and_pgd_reach_the_closed_form_on_lr(target: str, scale: float, seed: int) -> None:
    n, d, eps = 400, 7, 0.15
    model = _linear_model(d, seed, scale)
    rng = np.random.default_rng(100 + seed)
    x = torch.tensor(rng.uniform(-0.2, 1.2, size=(n, d)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, size=n), dtype=torch.float32)
    mutable = torch.tensor([True, True, False, True, True, True, False])
    space = dataclasses.replace(FeatureSpace.unconstrained(d), mutable=mutable)
    with torch.no_grad():
        labels = y if target == "true" else (model(x) > 0).float()
    worst = _closed_form(model, x, labels, eps, space)
    worst_logits = _logits64(model, worst)
    assert np.abs(worst_logits).min() > 1e-4  # no row on the boundary: decisions are stable

    fgsm = FGSM(model, space, eps=eps, target=target)
    pgd = PGD(model, space, eps=eps, steps=10, target=target)
    for attack in (fgsm, pgd):
        x_adv = attack(x, y)
        torch.testing.assert_close(x_adv, worst, atol=TOL, rtol=0)
        np.testing.assert_allclose(_logits64(model, x_adv), worst_logits, atol=1e-5, rtol=0)

    threat = ThreatModel(eps=eps, pgd_steps=10, attack_target=target)
    decisions = attack_decisions(model, x, y, np.zeros(n), space, threat)
    robust = float(((worst_logits > 0) == y.numpy().astype(bool)).mean())
    metrics = evaluate_decisions(decisions).metrics
    assert metrics["robustness_fgsm"] == robust
    assert metrics["robustness_pgd"] == robust
    if target == "true":
        assert robust < metrics["accuracy"]


def test_confident_rows_are_attacked() -> None:
    """A logit of 18 saturates sigmoid in float32; the attack must still move the row."""
    model = build_model("lr", 4, seed=0)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[30.0, -30.0, 30.0, -30.0]]))
        model.layers[0].bias.zero_()
    x = torch.tensor([[0.8, 0.2, 0.5, 0.5]])
    y = torch.tensor([1.0])
    assert float(model(x).detach()) == pytest.approx(18.0)
    space = FeatureSpace.unconstrained(4)
    for attack in (FGSM(model, space, eps=0.3), PGD(model, space, eps=0.3, steps=10)):
        x_adv = attack(x, y)
        torch.testing.assert_close(x_adv, torch.tensor([[0.5, 0.5, 0.2, 0.8]]))
        assert float(model(x_adv).detach()) == pytest.approx(-18.0, abs=1e-4)


def test_pgd_on_mlp_is_at_least_as_strong_as_fgsm_and_hurts() -> None:
    frame = make_biased_frame(300, seed=4)
    encoder = fit_encoder(frame, FEATURES)
    x = torch.tensor(encoder.encode(frame))
    y = torch.tensor(frame["approved"].to_numpy(np.float32))
    model = build_model("mlp:16", encoder.n_features, seed=0)
    space = FeatureSpace.from_encoder(encoder)
    threat = ThreatModel(eps=0.2, pgd_steps=20)
    metrics = evaluate_decisions(
        attack_decisions(model, x, y, np.zeros(300), space, threat)
    ).metrics
    assert metrics["robustness_pgd"] <= metrics["robustness_fgsm"] + 0.02
    assert metrics["robustness_pgd"] < metrics["accuracy"]


def test_valid_attack_on_lr_makes_the_best_single_switch() -> None:
    """With eps=0 and cat_budget=1, a linear model's best switch is known in closed form."""
    frame = make_biased_frame(200, seed=5)
    encoder = fit_encoder(frame, FEATURES, immutable=("region",))
    model = _linear_model(encoder.n_features, 3, 2.0)
    x = torch.tensor(encoder.encode(frame))
    y = torch.tensor(frame["approved"].to_numpy(np.float32))
    space = FeatureSpace.from_encoder(encoder)
    x_adv = ValidRecordAttack(model, space, eps=0.0, cat_budget=1)(x, y)

    w = model.layers[0].weight.detach()[0].double().numpy()
    education = slice(2, 5)  # the only mutable block (region is immutable)
    sign = -(2 * y.double().numpy() - 1)
    current = (x[:, education].double().numpy() * w[education]).sum(axis=1)
    gains = sign[:, None] * (w[education][None, :] - current[:, None])
    best = np.maximum(gains.max(axis=1), 0.0)
    np.testing.assert_allclose(
        _logits64(model, x_adv) - _logits64(model, x), -(2 * y.numpy() - 1) * best, atol=1e-5
    )
    torch.testing.assert_close(x_adv[:, 5:], x[:, 5:], atol=0, rtol=0)
    torch.testing.assert_close(x_adv[:, :2], x[:, :2], atol=0, rtol=0)


# --------------------------------------------------------------------------------------------
# properties: bounds and immutables
# --------------------------------------------------------------------------------------------

# No subnormal draws: resolve_device() (run by any audit earlier in the session) flushes
# denormals to zero process-wide, and hypothesis refuses subnormal strategies then.
_values = st.one_of(
    st.sampled_from([0.0, 1.0, -0.25, 1.25]),
    st.floats(-0.5, 1.5, width=32, allow_nan=False, allow_subnormal=False),
)


@st.composite
def _attack_cases(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 5))
    x = draw(hnp.arrays(np.float32, (n, d), elements=_values))
    y = draw(hnp.arrays(np.float32, (n,), elements=st.sampled_from([0.0, 1.0])))
    mutable = draw(hnp.arrays(np.bool_, (d,)))
    seed = draw(st.integers(0, 1000))
    return torch.tensor(x), torch.tensor(y), torch.tensor(mutable), seed


@settings(max_examples=60, deadline=None)
@given(
    case=_attack_cases(),
    eps=st.floats(0.0, 0.6, allow_subnormal=False),
    steps=st.integers(1, 6),
    kind=st.sampled_from(["fgsm", "pgd"]),
    target=st.sampled_from(["true", "predicted"]),
    spec=st.sampled_from(["lr", "mlp:8"]),
)
def test_continuous_attacks_stay_in_the_ball_box_and_keep_immutables(
    case: tuple[torch.Tensor, torch.Tensor, torch.Tensor, int],
    eps: float,
    steps: int,
    kind: str,
    target: str,
    spec: str,
) -> None:
    x, y, mutable, seed = case
    model = build_model(spec, x.shape[1], seed=seed)
    space = dataclasses.replace(FeatureSpace.unconstrained(x.shape[1]), mutable=mutable)
    threat = ThreatModel(eps=eps, pgd_steps=steps, attack_target=target)
    attack = make_attack(kind, model, space, threat)
    x_adv = attack(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert not x_adv.requires_grad
    assert torch.all((x_adv - x).abs() <= eps + TOL)
    assert torch.all(x_adv >= torch.minimum(torch.zeros_like(x), x) - TOL)
    assert torch.all(x_adv <= torch.maximum(torch.ones_like(x), x) + TOL)
    assert torch.equal(x_adv[:, ~mutable], x[:, ~mutable])


# --------------------------------------------------------------------------------------------
# properties: valid records
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@example(  # a 0.01 grid over a range of 188 once rounded one cent past eps (44.75 > 44.7495)
    frame_seed=32,
    model_seed=0,
    spec="lr",
    eps=0.23828356219557173,
    steps=1,
    cat_budget=0,
    immutable=set(),
    target="true",
    kind="fgsm",
)
@given(
    frame_seed=st.integers(0, 50),
    model_seed=st.integers(0, 1000),
    spec=st.sampled_from(["lr", "mlp:8"]),
    eps=st.floats(0.0, 0.5, allow_subnormal=False),
    steps=st.integers(1, 5),
    cat_budget=st.integers(0, 2),
    immutable=st.sets(st.sampled_from(FEATURES)),
    target=st.sampled_from(["true", "predicted"]),
    kind=st.sampled_from(["fgsm", "pgd"]),
)
def test_valid_record_attack_outputs_decode_to_valid_records(
    frame_seed: int,
    model_seed: int,
    spec: str,
    eps: float,
    steps: int,
    cat_budget: int,
    immutable: set[str],
    target: str,
    kind: str,
) -> None:
    frame = make_biased_frame(30, seed=frame_seed)
    encoder = fit_encoder(frame, FEATURES, immutable=tuple(sorted(immutable)))
    x = torch.tensor(encoder.encode(frame))
    y = torch.tensor(frame["approved"].to_numpy(np.float32))
    space = FeatureSpace.from_encoder(encoder)
    threat = ThreatModel(
        eps=eps,
        pgd_steps=steps,
        attack_space="valid",
        cat_budget=cat_budget,
        attack_target=target,
    )
    attack = make_attack(
        kind, build_model(spec, encoder.n_features, seed=model_seed), space, threat
    )
    assert isinstance(attack, ValidRecordAttack)
    x_adv = attack(x, y)

    assert_real_records(encoder, frame, FEATURES, x, x_adv, eps=eps, cat_budget=cat_budget)


def test_valid_attack_without_budget_changes_only_numerics() -> None:
    frame = make_biased_frame(80, seed=6)
    encoder = fit_encoder(frame, FEATURES)
    x = torch.tensor(encoder.encode(frame))
    y = torch.tensor(frame["approved"].to_numpy(np.float32))
    model = build_model("mlp:8", encoder.n_features, seed=1)
    space = FeatureSpace.from_encoder(encoder)
    x_adv = ValidRecordAttack(model, space, eps=0.3, cat_budget=0)(x, y)
    assert torch.equal(x_adv[:, 2:], x[:, 2:])
    assert not torch.equal(x_adv[:, :2], x[:, :2])
    # eps = 0 and no budget: nothing moves at all
    assert torch.equal(ValidRecordAttack(model, space, eps=0.0, cat_budget=0)(x, y), x)


def test_make_attack_dispatch() -> None:
    model = build_model("lr", 3, seed=0)
    space = FeatureSpace.unconstrained(3)
    threat = ThreatModel(eps=0.2, pgd_steps=7)
    assert type(make_attack("fgsm", model, space, threat)) is FGSM
    pgd = make_attack("pgd", model, space, threat)
    assert isinstance(pgd, PGD) and pgd.steps == 7 and pgd.step_size == pytest.approx(0.05)
    valid = dataclasses.replace(threat, attack_space="valid", cat_budget=2)
    fgsm_valid = make_attack("fgsm", model, space, valid)
    assert isinstance(fgsm_valid, ValidRecordAttack)
    assert (fgsm_valid.steps, fgsm_valid.step_size, fgsm_valid.cat_budget) == (1, 0.2, 2)
    pgd_valid = make_attack("pgd", model, space, valid)
    assert isinstance(pgd_valid, ValidRecordAttack) and pgd_valid.steps == 7


def test_attacks_do_not_touch_model_gradients_or_global_rng() -> None:
    model = build_model("mlp:4", 3, seed=0)
    space = FeatureSpace.unconstrained(3)
    x, y = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)), torch.ones(5)
    state = torch.random.get_rng_state()
    PGD(model, space, eps=0.1)(x, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "hidden"),
    [
        ("lr", ()),
        ("LR", ()),
        (" mlp:128 ", (128,)),
        ("mlp:64x32", (64, 32)),
        ("mlp:1x1x1", (1, 1, 1)),
    ],
)
def test_parse_model_spec(spec: str, hidden: tuple[int, ...]) -> None:
    assert parse_model_spec(spec) == hidden


@pytest.mark.parametrize(
    "spec", ["", "mlp", "mlp:", "mlp:0", "mlp:12x", "mlp:x12", "mlp:-3", "mlp:1.5", "cnn", "lr:3"]
)
def test_parse_model_spec_errors(spec: str) -> None:
    with pytest.raises(InputError) as excinfo:
        parse_model_spec(spec)
    message = str(excinfo.value)
    assert repr(spec) in message and "mlp:H" in message and "\n" not in message


def test_build_model_is_seeded_and_shaped() -> None:
    first = build_model("mlp:8x4", 5, seed=3)
    again = build_model("mlp:8x4", 5, seed=3)
    other = build_model("mlp:8x4", 5, seed=4)
    for p, q in zip(first.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))
    assert first(torch.zeros(7, 5)).shape == (7,)
    assert first.hidden == (8, 4)


def test_model_spec_error_reaches_the_audit() -> None:
    frame = pd.DataFrame({"x": range(4), "g": list("abab"), "y": [0, 1, 1, 0]})
    del frame  # parse errors surface before any data is touched
    with pytest.raises(InputError, match="'rnn'"):
        build_model("rnn", 3, seed=0)
