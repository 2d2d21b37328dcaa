"""Tests of froc_cli.metrics._evaluate: decisions of a model under attack, and the metrics built
on them.

Closed form: for a logistic model z = w.x + b and rows whose mutable features all lie at least
eps inside [0, 1], FGSM and PGD (L-inf eps, continuous space) both move every mutable feature by
eps against the attacked label l, so the attacked logit is

    z_adv = z - (2 l - 1) * eps * sum_{i mutable} |w_i|

and S_R is the fraction of rows with (z_adv > 0) == y. With ``attack_target="true"`` l = y;
with ``"predicted"`` l = (z > 0), so a misclassified row is pushed towards its true label and
counts as robust exactly when |z| < the shift.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core import ThreatModel
from froc_cli.metrics import Decisions, attack_decisions, evaluate_decisions
from froc_cli.metrics import _scores as m
from froc_cli.models import TabularNet, build_model

W = [2.0, -1.0, 0.5]  # ||w||_1 = 3.5
B = -0.75


def _lr(weight: list[float], bias: float) -> TabularNet:
    model = build_model("lr", len(weight), seed=0)
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([weight]))
        model.layers[0].bias.fill_(bias)
    return model


def _space(mutable: list[bool]) -> FeatureSpace:
    space = FeatureSpace.unconstrained(len(mutable))
    return dataclasses.replace(space, mutable=torch.tensor(mutable))


# Six rows, features inside [0.25, 0.75]; logits z = 2 x0 - x1 + 0.5 x2 - 0.75:
#   y=1: z = 0.7 (robust), 0.2 (flipped by a shift of 0.35, not by 0.15), -0.3 (misclassified)
#   y=0: z = -0.5 (robust), -0.1 (flipped by both shifts), 0.4 (misclassified)
X = torch.tensor(
    [
        [0.75, 0.3, 0.5],
        [0.6, 0.5, 0.5],
        [0.35, 0.5, 0.5],
        [0.25, 0.5, 0.5],
        [0.45, 0.5, 0.5],
        [0.7, 0.5, 0.5],
    ]
)
Y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
A = np.array([0, 0, 1, 0, 1, 1])


def test_literal_logits() -> None:
    with torch.no_grad():
        z = _lr(W, B)(X)
    torch.testing.assert_close(z, torch.tensor([0.7, 0.2, -0.3, -0.5, -0.1, 0.4]))


@pytest.mark.parametrize(
    ("mutable", "robust_rows"),
    [
        ([True, True, True], [1, 0, 0, 1, 0, 0]),  # shift 0.35: rows 0 and 3 keep their label
        ([False, True, True], [1, 1, 0, 1, 0, 0]),  # shift 0.15: row 1 (z=0.2) survives too
        ([False, False, False], [1, 1, 0, 1, 1, 0]),  # nothing moves: S_R = accuracy
    ],
)
def test_robustness_on_literal_rows(mutable: list[bool], robust_rows: list[int]) -> None:
    model = _lr(W, B)
    threat = ThreatModel(eps=0.1, pgd_steps=10)
    d = attack_decisions(model, X, Y, A, _space(mutable), threat)
    assert d.pred.tolist() == [1, 1, 0, 0, 0, 1]
    correct = np.array(robust_rows)
    for adv in (d.pred_fgsm, d.pred_pgd):
        assert adv is not None
        assert (adv == d.y).astype(int).tolist() == robust_rows
    metrics = evaluate_decisions(d).metrics
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["robustness_fgsm"] == metrics["robustness_pgd"] == pytest.approx(correct.mean())
    # per group: a=0 are rows 0, 1, 3; a=1 rows 2, 4, 5
    groups = evaluate_decisions(d).groups
    assert groups["protected"]["robust_accuracy_pgd"] == pytest.approx(correct[[0, 1, 3]].mean())
    assert groups["unprotected"]["robust_accuracy_fgsm"] == pytest.approx(correct[[2, 4, 5]].mean())


def test_predicted_target_on_literal_rows() -> None:
    """Attacking predictions pushes the misclassified rows towards their true label: row 2
    (z=-0.3, y=1) and row 5 (z=0.4, y=0) flip to correct when the shift (0.35) exceeds |z|."""
    model = _lr(W, B)
    threat = ThreatModel(eps=0.1, attack_target="predicted")
    d = attack_decisions(model, X, Y, A, _space([True, True, True]), threat)
    # row 2: -0.3 + 0.35 > 0 -> 1 == y (robust); row 5: 0.4 - 0.35 > 0 -> 1 != y (not robust)
    assert d.pred_pgd is not None and d.pred_fgsm is not None
    assert (d.pred_pgd == d.y).astype(int).tolist() == [1, 0, 1, 1, 0, 0]
    assert np.array_equal(d.pred_fgsm, d.pred_pgd)


@pytest.mark.parametrize("target", ["true", "predicted"])
@pytest.mark.parametrize("seed", [0, 1])
def test_robustness_equals_the_closed_form_across_chunks(target: str, seed: int) -> None:
    """9,000 rows: more than one attack chunk (8,192) and every row checked by hand."""
    rng = np.random.default_rng(seed)
    n, d, eps = 9_000, 5, 0.08
    weight = rng.choice([-1.0, 1.0], size=d) * rng.uniform(0.5, 3.0, size=d)
    mutable = np.array([True, False, True, True, False])
    x = rng.uniform(eps + 0.01, 1 - eps - 0.01, size=(n, d)).astype(np.float32)
    bias = -float(x.mean(axis=0) @ weight)
    y = (x @ weight + bias + rng.normal(0.0, 0.4, size=n) > 0).astype(np.float32)
    a = (rng.random(n) < 0.4).astype(np.int64)
    model = _lr(list(weight), bias)

    w32 = model.layers[0].weight.detach().double()[0].numpy()
    z = x.astype(np.float64) @ w32 + float(model.layers[0].bias.detach()[0])
    shift = eps * np.abs(w32[mutable]).sum()
    labels = y if target == "true" else (z > 0).astype(np.float32)
    z_adv = z - (2 * labels - 1) * shift
    stable = (np.abs(z) > 1e-4) & (np.abs(z_adv) > 1e-4)  # no row on the boundary

    threat = ThreatModel(eps=eps, pgd_steps=10, attack_target=target)
    dec = attack_decisions(
        model, torch.tensor(x), torch.tensor(y), a, _space(list(mutable)), threat
    )
    expected_adv = (z_adv > 0).astype(np.int8)
    assert dec.pred_fgsm is not None and dec.pred_pgd is not None
    assert np.array_equal(dec.pred[stable], (z[stable] > 0).astype(np.int8))
    assert np.array_equal(dec.pred_fgsm[stable], expected_adv[stable])
    assert np.array_equal(dec.pred_pgd[stable], expected_adv[stable])
    assert stable.mean() > 0.99

    metrics = evaluate_decisions(dec).metrics
    robust = (expected_adv == y.astype(np.int8))[stable]
    unstable = int((~stable).sum())
    for kind in ("fgsm", "pgd"):
        # every unstable row can move the score by at most 1/n
        assert abs(metrics[f"robustness_{kind}"] - robust.sum() / n) <= unstable / n + 1e-12
        assert metrics[f"bias_score_{kind}"] == pytest.approx(
            m.bias_score(expected_adv, a), abs=2 * unstable / n + 1e-12
        )
    if target == "true":
        assert metrics["robustness_pgd"] < metrics["accuracy"]


def test_decisions_types_and_no_side_effects() -> None:
    model = _lr(W, B)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    a = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0], dtype=np.float32)
    d = attack_decisions(model, X, Y, a, _space([True, True, True]), ThreatModel(eps=0.1))
    assert isinstance(d, Decisions)
    for array in (d.y, d.a, d.pred, d.pred_fgsm, d.pred_pgd):
        assert array is not None and array.dtype == np.int8 and array.shape == (6,)
    assert d.y.tolist() == [1, 1, 1, 0, 0, 0] and d.a.tolist() == [0, 0, 1, 0, 1, 1]
    assert not model.training
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q) and p.grad is None


def test_zero_budget_changes_no_decision() -> None:
    model = build_model("mlp:8", 3, seed=1)
    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0.5).float()
    d = attack_decisions(
        model, x, y, np.zeros(50), FeatureSpace.unconstrained(3), ThreatModel(eps=0.0)
    )
    assert np.array_equal(d.pred, d.pred_fgsm) and np.array_equal(d.pred, d.pred_pgd)
    metrics = evaluate_decisions(d).metrics
    assert metrics["robustness_fgsm"] == metrics["robustness_pgd"] == metrics["accuracy"]


def test_evaluate_decisions_metric_names_and_group_figures() -> None:
    d = Decisions(
        y=np.array([1, 0, 1, 1, 0, 0], dtype=np.int8),
        a=np.array([0, 0, 0, 1, 1, 1], dtype=np.int8),
        pred=np.array([1, 1, 0, 1, 1, 1], dtype=np.int8),
        pred_pgd=np.array([0, 1, 0, 1, 0, 1], dtype=np.int8),
    )
    ev = evaluate_decisions(d)
    assert set(ev.metrics) == {
        "accuracy",
        "majority_floor",
        "bias_score",
        "disparate_impact",
        "equal_opportunity_difference",
        "robustness_pgd",
        "bias_score_pgd",
        "robustness",
        "robustness_balanced",
        "robustness_retention",
        "bias_score_attacked",
        "rows",
        "rarer_decision_share",
    }
    assert ev.metrics["rows"] == 6.0
    # PGD alone ran: rows 3 and 4 robust; balanced (1/3 + 1/3) / 2; retention: of the correct
    # rows 0 and 3, row 3 stays correct.
    assert ev.metrics["robustness"] == pytest.approx(2 / 6)
    assert ev.metrics["robustness_balanced"] == pytest.approx(1 / 3)
    assert ev.metrics["robustness_retention"] == pytest.approx(1 / 2)
    assert ev.metrics["bias_score_attacked"] == pytest.approx(1 / 3)
    assert ev.metrics["rarer_decision_share"] == pytest.approx(1 / 6)
    # favourable rates 2/3 (a=0) and 3/3 (a=1); under PGD 1/3 and 2/3
    assert ev.metrics["bias_score"] == pytest.approx(1 / 3)
    assert ev.metrics["bias_score_pgd"] == pytest.approx(1 / 3)
    assert ev.metrics["disparate_impact"] == pytest.approx(2 / 3)
    assert ev.metrics["robustness_pgd"] == pytest.approx(2 / 6)  # rows 3 and 4
    assert ev.metrics["accuracy"] == pytest.approx(2 / 6)  # rows 0 and 3
    # TPR: a=0 positives rows 0, 2 -> 1/2; a=1 positive row 3 -> 1
    assert ev.metrics["equal_opportunity_difference"] == pytest.approx(-0.5)
    assert ev.groups["protected"] == {
        "rows": 3.0,
        "base_rate": pytest.approx(2 / 3),
        "favourable_rate": pytest.approx(2 / 3),
        "accuracy": pytest.approx(1 / 3),
        "robust_accuracy_pgd": pytest.approx(0.0),
        "robust_accuracy": pytest.approx(0.0),
    }
    assert ev.groups["unprotected"]["robust_accuracy_pgd"] == pytest.approx(2 / 3)
    assert "robust_accuracy_fgsm" not in ev.groups["unprotected"]
