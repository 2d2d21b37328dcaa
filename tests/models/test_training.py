"""Tests of froc_cli.models._training: the one training loop and its loss (eq. 10).

Closed forms on a logistic model f(x) = w.x + b with labels y and groups a:

* BCE = mean_i [log(1 + exp(-z_i)) if y_i = 1 else log(1 + exp(z_i))], z = f(x), weighted as
  sum_i w_i l_i / sum_i w_i;
* F = |mean_{a=0} sigmoid(z) - mean_{a=1} sigmoid(z)| (eqs. 13-14);
* R under FGSM with L-inf eps, every feature mutable and at least eps inside [0, 1]: each feature
  moves by eps against the label, so z_adv = z - (2y - 1) * eps * ||w||_1;
* Adam's first step moves every parameter by lr * sign(gradient) (up to its epsilon), and the
  BCE gradient is X^T (sigmoid(z) - y) / n.

Behavioural checks (seeded, tiny problems, one thread): determinism, that plain training fits,
that lambda_F closes the gap of mean scores between groups, that lambda_R with PGD raises the
robustness score, and that a zero sample weight is the same as dropping the row.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_biased_frame

from froc_cli.attacks import FeatureSpace
from froc_cli.core import Objective, ThreatModel, TrainConfig
from froc_cli.data import fit_encoder
from froc_cli.metrics import attack_decisions, evaluate_decisions
from froc_cli.models import (
    EpochStats,
    TabularNet,
    build_model,
    compute_loss_terms,
    fairness_gap,
    predict_logits,
    train_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------------
# helpers


def _separable(n: int = 120, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """x0 decides the label with a gap around 0.5; the other features are noise; a is random."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    x0 = np.where(y == 1, rng.uniform(0.6, 0.95, n), rng.uniform(0.05, 0.4, n))
    x = np.column_stack([x0, rng.uniform(0, 1, (n, d - 1))])
    a = (rng.random(n) < 0.5).astype(np.float32)
    return (
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(y),
        torch.tensor(a),
    )


def _weakly_informative(n: int = 200, d: int = 11, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """x0 separates the classes with a margin; ten further features are weakly informative.

    Plain training spreads weight over the weak features, which an L-inf attacker exploits;
    adversarial training leans on x0.
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    x0 = np.where(y == 1, rng.uniform(0.6, 0.9, n), rng.uniform(0.1, 0.4, n))
    rest = np.clip(0.5 + 0.1 * (2 * y[:, None] - 1) + rng.normal(0, 0.15, (n, d - 1)), 0, 1)
    x = np.column_stack([x0, rest])
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y), torch.zeros(n)


def _set_linear(model: TabularNet, weight: list[float], bias: float) -> None:
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([weight]))
        model.layers[0].bias.fill_(bias)


def _bce64(z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    losses = np.where(y == 1, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))
    return float(losses.mean() if w is None else (w * losses).sum() / w.sum())


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _train(
    spec: str,
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    *,
    model_seed: int = 0,
    objective: Objective | None = None,
    sample_weight: torch.Tensor | None = None,
    trace_gradients: bool = False,
    **config: object,
) -> tuple[TabularNet, list[EpochStats]]:
    model = build_model(spec, x.shape[1], seed=model_seed)
    settings: dict[str, object] = {"model": spec, "epochs": 30, "lr": 0.05, **config}
    history = train_model(
        model,
        x,
        y,
        a,
        objective=objective or Objective(),
        config=TrainConfig(**settings),
        space=FeatureSpace.unconstrained(x.shape[1]),
        sample_weight=sample_weight,
        trace_gradients=trace_gradients,
    )
    return model, history


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 32])
def test_same_seed_gives_bit_identical_weights_and_history(batch_size: int | None) -> None:
    x, y, a = _separable()
    objective = Objective(lambda_f=0.5, lambda_r=0.5, threat=ThreatModel(eps=0.1, pgd_steps=3))
    first, h1 = _train("mlp:8", x, y, a, objective=objective, batch_size=batch_size, seed=3)
    again, h2 = _train("mlp:8", x, y, a, objective=objective, batch_size=batch_size, seed=3)
    for p, q in zip(_params(first), _params(again), strict=True):
        assert torch.equal(p, q)
    assert h1 == h2


def test_different_seeds_give_different_weights() -> None:
    x, y, a = _separable()
    base, _ = _train("mlp:8", x, y, a, model_seed=0, batch_size=32, seed=0)
    other_init, _ = _train("mlp:8", x, y, a, model_seed=1, batch_size=32, seed=0)
    other_order, _ = _train("mlp:8", x, y, a, model_seed=0, batch_size=32, seed=1)
    for model in (other_init, other_order):
        assert all(
            not torch.equal(p, q) for p, q in zip(_params(base), _params(model), strict=True)
        )
    # full batch: the shuffling seed is unused, only the initialisation matters
    full_a, _ = _train("mlp:8", x, y, a, model_seed=0, seed=0)
    full_b, _ = _train("mlp:8", x, y, a, model_seed=0, seed=7)
    for p, q in zip(_params(full_a), _params(full_b), strict=True):
        assert torch.equal(p, q)


def test_training_leaves_the_global_rng_alone() -> None:
    x, y, a = _separable(n=64)
    model = build_model("mlp:4", x.shape[1], seed=0)
    state = torch.random.get_rng_state()
    train_model(
        model,
        x,
        y,
        a,
        objective=Objective(lambda_r=0.5, threat=ThreatModel(eps=0.1, pgd_steps=2)),
        config=TrainConfig(model="mlp:4", epochs=3, batch_size=16),
        space=FeatureSpace.unconstrained(x.shape[1]),
    )
    assert torch.equal(torch.random.get_rng_state(), state)


# --------------------------------------------------------------------------------------------
# closed forms of the loss terms and of the first step
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_first_epoch_loss_terms_match_the_closed_form(weighted: bool) -> None:
    """Epoch 0's statistics are the loss of the initial parameters (one full-batch step)."""
    rng = np.random.default_rng(5)
    n, eps = 40, 0.1
    w, b = [1.5, -2.0, 0.75], 0.3
    x = rng.uniform(eps + 0.01, 1 - eps - 0.01, size=(n, 3))  # every move stays in the box
    y = np.tile([0.0, 1.0], n // 2)
    a = np.repeat([0.0, 1.0], n // 2)
    sw = rng.uniform(0.2, 3.0, n) if weighted else None
    model = build_model("lr", 3, seed=0)
    _set_linear(model, w, b)
    lambda_f, lambda_r = 0.7, 0.4
    objective = Objective(
        lambda_f=lambda_f, lambda_r=lambda_r, attack="fgsm", threat=ThreatModel(eps=eps)
    )
    (stats,) = train_model(
        model,
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(y, dtype=torch.float32),
        torch.tensor(a, dtype=torch.float32),
        objective=objective,
        config=TrainConfig(model="lr", epochs=1),
        space=FeatureSpace.unconstrained(3),
        sample_weight=None if sw is None else torch.tensor(sw, dtype=torch.float32),
    )
    x32 = x.astype(np.float32).astype(np.float64)
    z = x32 @ np.array(w) + b
    bce = _bce64(z, y, sw)
    p = 1 / (1 + np.exp(-z))
    fairness = abs(p[a == 0].mean() - p[a == 1].mean())  # F ignores sample weights
    z_adv = z - (2 * y - 1) * eps * np.abs(w).sum()
    robustness = _bce64(z_adv, y, sw)
    assert stats.epoch == 0 and stats.grad_angle is None
    assert stats.bce == pytest.approx(bce, rel=1e-5)
    assert stats.fairness == pytest.approx(fairness, rel=1e-5)
    assert stats.robustness == pytest.approx(robustness, rel=1e-5)
    assert stats.loss == pytest.approx(bce + lambda_f * fairness + lambda_r * robustness, rel=1e-5)
    assert robustness > bce  # the attack raises the loss


def test_first_adam_step_moves_each_parameter_by_lr_against_the_bce_gradient() -> None:
    x, y, a = _separable(n=50, d=3, seed=2)
    model = build_model("lr", 3, seed=4)
    w0 = model.layers[0].weight.detach().double()[0].numpy().copy()
    b0 = float(model.layers[0].bias.detach()[0])
    lr = 0.01
    train_model(
        model,
        x,
        y,
        a,
        objective=Objective(),
        config=TrainConfig(model="lr", epochs=1, lr=lr),
        space=FeatureSpace.unconstrained(3),
    )
    x64, y64 = x.double().numpy(), y.double().numpy()
    residual = 1 / (1 + np.exp(-(x64 @ w0 + b0))) - y64
    grad_w, grad_b = x64.T @ residual / len(y64), residual.mean()
    assert np.abs(grad_w).min() > 1e-3 and abs(grad_b) > 1e-3  # signs are unambiguous
    w1 = model.layers[0].weight.detach().double()[0].numpy()
    b1 = float(model.layers[0].bias.detach()[0])
    np.testing.assert_allclose(w1 - w0, -lr * np.sign(grad_w), rtol=0, atol=1e-6)
    assert b1 - b0 == pytest.approx(-lr * np.sign(grad_b), abs=1e-6)


def test_fairness_gap_closed_form() -> None:
    probs = torch.tensor([0.2, 0.4, 0.9, 0.7, 0.5])
    a = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    # mean(a=0) = 0.3, mean(a=1) = 0.7
    assert float(fairness_gap(probs, a)) == pytest.approx(0.4)
    assert float(fairness_gap(probs, a, signed=True)) == pytest.approx(-0.4)
    assert float(fairness_gap(probs, 1 - a, signed=True)) == pytest.approx(0.4)
    for one_group in (torch.zeros(5), torch.ones(5)):
        gap = fairness_gap(probs.clone().requires_grad_(True), one_group)
        assert float(gap.detach()) == 0.0 and gap.requires_grad  # keeps the graph, weighs nothing


def test_fairness_is_measured_only_when_asked() -> None:
    x, y, a = _separable(n=30, d=3)
    model = build_model("lr", 3, seed=0)
    space = FeatureSpace.unconstrained(3)
    plain = compute_loss_terms(model, x, y, a, Objective(), space)
    measured = compute_loss_terms(model, x, y, a, Objective(), space, measure_fairness=True)
    with torch.no_grad():
        expected = fairness_gap(torch.sigmoid(model(x)), a)
    assert float(plain.fairness.detach()) == 0.0 and float(plain.robustness.detach()) == 0.0
    assert float(measured.fairness.detach()) == pytest.approx(float(expected))
    assert float(expected) > 0
    assert torch.equal(plain.total, plain.bce) and torch.equal(measured.total, measured.bce)


# --------------------------------------------------------------------------------------------
# what each term does
# --------------------------------------------------------------------------------------------


def test_plain_training_fits_a_separable_problem() -> None:
    x, y, a = _separable()
    model, history = _train("lr", x, y, a, epochs=150, lr=0.1)
    assert [s.epoch for s in history] == list(range(150))
    assert history[0].bce > 0.6 and history[-1].bce < 0.5 * history[0].bce
    assert all(s.fairness == 0.0 and s.robustness == 0.0 for s in history)
    assert all(s.loss == s.bce for s in history)
    accuracy = float(((predict_logits(model, x) > 0).float() == y).float().mean())
    assert accuracy == 1.0
    assert not model.training  # left in eval mode


@pytest.mark.parametrize("spec", ["lr", "mlp:16"])
def test_fairness_term_closes_the_gap_of_mean_scores(spec: str) -> None:
    frame = make_biased_frame(300, seed=1, gap=0.5)
    encoder = fit_encoder(frame, ("age", "income", "education", "region", "gender"))
    x = torch.tensor(encoder.encode(frame))
    y = torch.tensor(frame["approved"].to_numpy(np.float32))
    a = torch.tensor((frame["gender"] == "male").to_numpy(np.float32))

    def score_gap(model: TabularNet) -> float:
        p = torch.sigmoid(predict_logits(model, x))
        return float(p[a == 1].mean() - p[a == 0].mean())

    plain, plain_history = _train(spec, x, y, a, epochs=100)
    fair, fair_history = _train(spec, x, y, a, epochs=100, objective=Objective(lambda_f=3.0))
    assert score_gap(plain) > 0.4  # the planted bias, learnt from the gender feature
    assert abs(score_gap(fair)) < 0.05
    assert abs(score_gap(fair)) < 0.1 * score_gap(plain)
    assert fair_history[-1].fairness < fair_history[0].fairness
    assert fair_history[-1].bce > plain_history[-1].bce  # fairness costs fit


@pytest.mark.parametrize("spec", ["lr", "mlp:16"])
def test_pgd_robust_training_raises_the_robustness_score(spec: str) -> None:
    x, y, a = _weakly_informative()
    threat = ThreatModel(eps=0.12, pgd_steps=5)
    space = FeatureSpace.unconstrained(x.shape[1])

    def robustness(model: TabularNet) -> tuple[float, float]:
        metrics = evaluate_decisions(
            attack_decisions(model, x, y, a.numpy(), space, threat)
        ).metrics
        return metrics["accuracy"], metrics["robustness_pgd"]

    plain, _ = _train(spec, x, y, a, epochs=100)
    robust, history = _train(
        spec, x, y, a, epochs=100, objective=Objective(lambda_r=1.0, attack="pgd", threat=threat)
    )
    plain_acc, plain_rob = robustness(plain)
    robust_acc, robust_rob = robustness(robust)
    assert plain_acc == robust_acc == 1.0
    assert robust_rob >= plain_rob + 0.1
    assert all(s.robustness > s.bce for s in history)  # R is the loss under attack


# --------------------------------------------------------------------------------------------
# sample weights
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "objective",
    [
        Objective(),
        Objective(lambda_r=0.5, attack="fgsm", threat=ThreatModel(eps=0.1)),
    ],
    ids=["plain", "fgsm"],
)
def test_zero_weight_equals_dropping_the_row(objective: Objective) -> None:
    x, y, a = _separable(n=60)
    dropped = 17
    keep = torch.arange(60) != dropped
    weights = keep.float()
    weighted, h1 = _train("mlp:6", x, y, a, objective=objective, sample_weight=weights)
    without, h2 = _train("mlp:6", x[keep], y[keep], a[keep], objective=objective)
    for p, q in zip(_params(weighted), _params(without), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=2e-6)
    np.testing.assert_allclose([s.loss for s in h1], [s.loss for s in h2], rtol=1e-5)


def test_integer_weight_equals_duplicating_the_row() -> None:
    x, y, a = _separable(n=40)
    weights = torch.ones(40)
    weights[[3, 8]] = 2.0
    order = torch.tensor([*range(40), 3, 8])
    weighted, _ = _train("lr", x, y, a, sample_weight=weights)
    duplicated, _ = _train("lr", x[order], y[order], a[order])
    for p, q in zip(_params(weighted), _params(duplicated), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=2e-6)


# --------------------------------------------------------------------------------------------
# loop options
# --------------------------------------------------------------------------------------------


def test_callback_stops_early_and_epochs_overrides_the_config() -> None:
    x, y, a = _separable(n=40)
    seen: list[int] = []

    def stop_at_three(stats: EpochStats, model: torch.nn.Module) -> bool:
        seen.append(stats.epoch)
        assert model.training  # called inside the loop, before eval()
        return stats.epoch == 3

    model = build_model("lr", x.shape[1], seed=0)
    config = TrainConfig(model="lr", epochs=50)
    space = FeatureSpace.unconstrained(x.shape[1])
    history = train_model(
        model, x, y, a, objective=Objective(), config=config, space=space, callback=stop_at_three
    )
    assert seen == [0, 1, 2, 3] and len(history) == 4 and not model.training
    short = train_model(model, x, y, a, objective=Objective(), config=config, space=space, epochs=2)
    assert [s.epoch for s in short] == [0, 1]


def test_continuing_the_optimizer_equals_one_long_run() -> None:
    """A warm start with the same Adam (state included) equals training without a pause."""
    x, y, a = _separable(n=50)
    config = TrainConfig(model="mlp:6", epochs=10, lr=0.05)
    space = FeatureSpace.unconstrained(x.shape[1])
    whole = build_model("mlp:6", x.shape[1], seed=2)
    train_model(whole, x, y, a, objective=Objective(), config=config, space=space)

    paused = build_model("mlp:6", x.shape[1], seed=2)
    adam = torch.optim.Adam(paused.parameters(), lr=config.lr)
    for epochs in (4, 6):
        train_model(
            paused,
            x,
            y,
            a,
            objective=Objective(),
            config=config,
            space=space,
            epochs=epochs,
            optimizer=adam,
        )
    for p, q in zip(_params(whole), _params(paused), strict=True):
        assert torch.equal(p, q)


def test_trace_gradients_measures_without_changing_the_updates() -> None:
    x, y, a = _separable(n=60)
    threat = ThreatModel(eps=0.1, pgd_steps=3)
    both = Objective(lambda_f=0.5, lambda_r=0.5, threat=threat)
    plain, h_plain = _train("mlp:6", x, y, a, objective=both, epochs=5)
    traced, h_traced = _train("mlp:6", x, y, a, objective=both, epochs=5, trace_gradients=True)
    for p, q in zip(_params(plain), _params(traced), strict=True):
        assert torch.equal(p, q)
    assert [s.loss for s in h_plain] == [s.loss for s in h_traced]
    assert all(s.grad_angle is None for s in h_plain)
    angles = [s.grad_angle for s in h_traced]
    assert all(angle is not None and 0.0 <= angle <= 180.0 for angle in angles)

    # lambda_F = 0: F is measured (reported) but weighs nothing; R's angle is defined
    robust_only = Objective(lambda_r=0.5, threat=threat)
    _, h_untraced = _train("mlp:6", x, y, a, objective=robust_only, epochs=3)
    _, h_fr = _train("mlp:6", x, y, a, objective=robust_only, epochs=3, trace_gradients=True)
    assert [s.loss for s in h_untraced] == [s.loss for s in h_fr]
    assert all(s.fairness == 0.0 for s in h_untraced)
    assert all(s.fairness > 0.0 for s in h_fr)
    # lambda_R = 0: R is unmeasured, so the angle is NaN
    _, h_f = _train("mlp:6", x, y, a, objective=Objective(lambda_f=0.5), trace_gradients=True)
    assert all(s.grad_angle is not None and math.isnan(s.grad_angle) for s in h_f)


# --------------------------------------------------------------------------------------------
# predict_logits
# --------------------------------------------------------------------------------------------


def test_predict_logits_in_chunks_equals_the_forward_pass() -> None:
    model = build_model("mlp:5", 3, seed=0)
    model.train()
    x = torch.rand(23, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
    for chunk in (1, 4, 23, 1000):
        out = predict_logits(model, x, chunk=chunk)
        assert out.shape == (23,) and not out.requires_grad
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert not model.training


def test_predict_logits_of_no_rows_is_empty() -> None:
    model = build_model("lr", 3, seed=0)
    assert predict_logits(model, torch.zeros(0, 3)).shape == (0,)
