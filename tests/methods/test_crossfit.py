"""Tests of the cross-fitted panel estimate (froc_cli/methods/_crossfit.py): the folds, the
isolation of every fold's rows (and their copies) from the models measured on it, and the
summary of the fold figures.

The fitting and measuring calls are intercepted; every row, original or copy, is a unique
feature vector, so a training set says exactly which rows it holds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch

import froc_cli.methods._crossfit as crossfit
from froc_cli.attacks import FeatureSpace
from froc_cli.core import ThreatModel
from froc_cli.methods import (
    EditPlan,
    PanelEstimate,
    crossfit_panel,
    fit_panel_member,
    fold_ids,
    measure_panel_member,
)

THREAT = ThreatModel(eps=0.1, pgd_steps=2, attack_space="valid", cat_budget=0)
TRANSFER_SOURCE = "mlp:4"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- fold_ids ---------------------------------------------------------------------------------


def test_fold_ids_are_seeded_and_stratified_by_label_and_group() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(203) < 0.4).astype(np.float32)
    a = (rng.random(203) < 0.6).astype(np.float32)
    ids = fold_ids(y, a, 4, seed=5)
    assert ids.dtype == np.int64 and set(ids.tolist()) == {0, 1, 2, 3}
    np.testing.assert_array_equal(ids, fold_ids(y, a, 4, seed=5))
    assert not np.array_equal(ids, fold_ids(y, a, 4, seed=6))
    for label in (0, 1):
        for group in (0, 1):
            counts = np.bincount(ids[(y == label) & (a == group)], minlength=4)
            assert counts.max() - counts.min() <= 1, (label, group, counts)


# --- isolation --------------------------------------------------------------------------------


def _problem(n: int = 72, features: int = 4, seed: int = 0) -> tuple[Any, ...]:
    """Unique random rows, labels, groups, and a hand-built plan with flips and copies."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((n, features)), dtype=torch.float32)
    a = torch.as_tensor((rng.random(n) < 0.5).astype(np.float32))
    score = x[:, 0] + 0.5 * x[:, 1] - 0.75 + 0.3 * (a - 0.5)
    y = (score + 0.2 * torch.as_tensor(rng.standard_normal(n), dtype=torch.float32) > 0).float()
    labels = y.numpy().astype(np.int8).copy()
    flipped = rng.choice(n, size=8, replace=False)
    labels[flipped] = 1 - labels[flipped]
    sources = rng.choice(n, size=40, replace=False)
    # Copies: small moves of their source, still unique and in [0, 1].
    moves = torch.as_tensor(0.01 + 0.02 * rng.random((40, features)), dtype=torch.float32)
    added_x = torch.clamp(x[torch.as_tensor(sources)] + moves, 0, 1)
    plan = EditPlan(
        labels=labels,
        flipped=flipped,
        flip_score=np.zeros(8),
        flip_delta=np.zeros(8),
        added_x=added_x,
        added_source=sources,
        added_round=np.ones(40, dtype=np.int64),
        added_influence=np.zeros(40),
    )
    return x, y, a, plan


def _row_ids(x: torch.Tensor, added_x: torch.Tensor) -> dict[bytes, tuple[str, int]]:
    ids = {row.numpy().tobytes(): ("row", i) for i, row in enumerate(x)}
    ids.update({row.numpy().tobytes(): ("copy", j) for j, row in enumerate(added_x)})
    assert len(ids) == len(x) + len(added_x)  # every row and copy is identifiable
    return ids


def test_crossfit_never_measures_a_model_on_rows_it_or_their_copies_trained_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y, a, plan = _problem()
    ids = _row_ids(x, plan.added_x)
    folds, seed = 3, 7
    fold = fold_ids(y.numpy(), a.numpy(), folds, seed)

    fits: list[dict[str, Any]] = []
    measures: list[dict[str, Any]] = []

    def recording_fit(name: str, xs: torch.Tensor, ys: torch.Tensor, *, seed: int, **kw: Any):
        member = fit_panel_member(name, xs, ys, seed=seed, epochs=10)
        fits.append(
            {"name": name, "seed": seed, "x": xs.clone(), "y": ys.clone(), "member": member}
        )
        return member

    def recording_measure(member, xs, ys, groups, **kw: Any) -> dict[str, Any]:
        figures = measure_panel_member(member, xs, ys, groups, **kw)
        measures.append(
            {"member": member, "x": xs.clone(), "y": ys.clone(), "a": groups.copy(), **kw}
        )
        return figures

    monkeypatch.setattr(crossfit, "fit_panel_member", recording_fit)
    monkeypatch.setattr(crossfit, "measure_panel_member", recording_measure)
    estimate = crossfit_panel(
        x, y, a, plan, panel=("lr", "hgb", "mlp:4"), folds=folds,
        space=FeatureSpace.unconstrained(x.shape[1]), threat=THREAT, seed=seed,
        transfer_source=TRANSFER_SOURCE,
    )  # fmt: skip

    def identify(xs: torch.Tensor) -> list[tuple[str, int]]:
        return [ids[row.numpy().tobytes()] for row in xs]

    # One transfer source and three panel members per fold.
    assert len(fits) == folds * 4 and len(measures) == folds * 3
    assert [f["name"] for f in fits] == [TRANSFER_SOURCE, "lr", "hgb", "mlp:4"] * folds
    sources = plan.added_source
    for k in range(folds):
        held = set(np.flatnonzero(fold == k).tolist())
        kept_rows = Counter(("row", i) for i in range(len(x)) if i not in held)
        kept_copies = Counter(("copy", j) for j, s in enumerate(sources) if s not in held)

        # The transfer source: the fold's complement, unedited (original labels, no copies).
        transfer = fits[4 * k]
        assert transfer["seed"] == seed + k + 1000
        assert Counter(identify(transfer["x"])) == kept_rows
        np.testing.assert_array_equal(
            transfer["y"].numpy(), y.numpy()[[i for _, i in identify(transfer["x"])]]
        )

        for m in measures[3 * k : 3 * k + 3]:
            # Measured on exactly the fold's original rows, original labels and groups.
            measured = identify(m["x"])
            assert {kind for kind, _ in measured} == {"row"}
            rows = [i for _, i in measured]
            assert set(rows) == held and len(rows) == len(held)
            np.testing.assert_array_equal(m["y"].numpy(), y.numpy()[rows])
            np.testing.assert_array_equal(m["a"], a.numpy()[rows])
            # Transfer examples of the fold's rows, crafted on this fold's transfer source.
            assert set(m["transfer_x"]) == {"valid", "continuous"}
            for per_attack in m["transfer_x"].values():
                for crafted in per_attack:  # one set per attack of the threat
                    assert crafted.shape == m["x"].shape
                    assert float((crafted - m["x"]).abs().max()) <= THREAT.eps + 1e-6

            # The model measured: trained on every other row and copy, and nothing else.
            (fit,) = [f for f in fits if f["member"] is m["member"]]
            assert fit["seed"] == seed + k
            trained = identify(fit["x"])
            assert Counter(t for t in trained if t[0] == "row") == kept_rows
            assert Counter(t for t in trained if t[0] == "copy") == kept_copies
            assert not {i for kind, i in trained if kind == "row"} & held
            assert not {sources[j] for kind, j in trained if kind == "copy"} & held
            # Labels after the flips, for originals and (via their source) for copies.
            expected = [plan.labels[i] if kind == "row" else plan.labels[sources[i]]
                        for kind, i in trained]  # fmt: skip
            np.testing.assert_array_equal(fit["y"].numpy(), np.asarray(expected, np.float32))

    # Every row was measured exactly once over the folds.
    measured_rows = Counter(i for m in measures[::3] for _, i in identify(m["x"]))
    assert measured_rows == Counter(range(len(x)))
    assert [len(estimate.folds[name]) for name in ("lr", "hgb", "mlp:4")] == [folds] * 3


def test_crossfit_figures_are_the_members_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate holds, per fold, what measure_panel_member returned for that model."""
    x, y, a, plan = _problem(n=60, seed=1)
    returned: list[dict[str, Any]] = []

    def recording_measure(member, xs, ys, groups, **kw: Any) -> dict[str, Any]:
        figures = measure_panel_member(member, xs, ys, groups, **kw)
        returned.append(figures)
        return figures

    monkeypatch.setattr(crossfit, "measure_panel_member", recording_measure)
    messages: list[str] = []
    estimate = crossfit_panel(
        x, y, a, plan, panel=("lr", "hgb"), folds=2,
        space=FeatureSpace.unconstrained(x.shape[1]), threat=THREAT, seed=0,
        transfer_source=TRANSFER_SOURCE, progress=messages.append,
    )  # fmt: skip
    assert estimate.folds == {"lr": returned[0::2], "hgb": returned[1::2]}
    for name in ("lr", "hgb"):
        accuracies = [f["accuracy"] for f in estimate.folds[name]]
        assert estimate.mean[name]["accuracy"] == pytest.approx(statistics.fmean(accuracies))
        assert estimate.sd[name]["accuracy"] == pytest.approx(statistics.stdev(accuracies))
    assert "robustness_whitebox_valid" in estimate.mean["lr"]
    assert "robustness_whitebox_valid" not in estimate.mean["hgb"]
    assert "robustness_transfer_valid" in estimate.mean["hgb"]
    assert len(messages) == 4 and messages[0].startswith("fold 1/2, lr: accuracy ")


# --- PanelEstimate ----------------------------------------------------------------------------


def test_panel_estimate_from_folds_means_and_sample_sds() -> None:
    folds = {
        "lr": [
            {"rows": 10, "accuracy": 0.8, "bias_score": 0.1, "note": "text"},
            {"rows": 12, "accuracy": 0.9, "bias_score": 0.3, "note": "text"},
            {"rows": 11, "accuracy": 0.7, "bias_score": 0.2, "note": "text"},
        ],
        "hgb": [{"rows": 33, "accuracy": 0.75, "bias_score": 0.05}],
    }
    estimate = PanelEstimate.from_folds(folds)
    assert set(estimate.mean["lr"]) == {"rows", "accuracy", "bias_score"}  # numbers only
    assert estimate.mean["lr"]["accuracy"] == pytest.approx(0.8)
    assert estimate.mean["lr"]["bias_score"] == pytest.approx(0.2)
    assert estimate.mean["lr"]["rows"] == pytest.approx(11.0)
    assert estimate.sd["lr"]["accuracy"] == pytest.approx(0.1)
    assert estimate.sd["lr"]["rows"] == pytest.approx(1.0)
    assert estimate.sd["hgb"] == {"rows": 0.0, "accuracy": 0.0, "bias_score": 0.0}
    assert estimate.to_dict()["lr"] == {
        "mean": estimate.mean["lr"],
        "sd": estimate.sd["lr"],
        "spread": {},  # no fold reports standard errors
        "folds": folds["lr"],
    }


def test_panel_estimate_spread_is_the_fold_sd_floored_at_the_sampling_error() -> None:
    def fold(accuracy: float, bias: float, errors: dict[str, float]) -> dict[str, object]:
        return {"accuracy": accuracy, "bias_score": bias, "standard_errors": errors}

    # Accuracy: folds agree closely (sd 0.001) but each is measured with error 0.02 -> 0.02.
    # S_B: folds differ (sd 0.1) more than their errors (0.03, 0.04) -> the sd, 0.1.
    folds = {
        "lr": [
            fold(0.801, 0.1, {"accuracy": 0.02, "bias_score": 0.03}),
            fold(0.800, 0.3, {"accuracy": 0.02, "bias_score": 0.04}),
            fold(0.799, 0.2, {"accuracy": 0.02, "bias_score": 0.03}),
        ]
    }
    estimate = PanelEstimate.from_folds(folds)
    assert estimate.sd["lr"]["accuracy"] == pytest.approx(0.001)
    assert estimate.spread["lr"]["accuracy"] == pytest.approx(0.02)
    assert estimate.spread["lr"]["bias_score"] == pytest.approx(0.1)
    # A figure without errors in some fold gets no spread rather than a guessed one.
    folds["lr"][0] = fold(0.801, 0.1, {"accuracy": 0.02})
    assert "bias_score" not in PanelEstimate.from_folds(folds).spread["lr"]
