"""Tests of the panel of outside trainers (froc_cli/methods/_panel.py): the panel spec, the
members as fitted by an outside trainer, and the figures each is measured by.

The ``lr`` member is checked against scikit-learn itself, and the figures against fairlearn and
direct numpy computations on the member's own decisions. Tiny frames, one thread.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_frame
from fairlearn.metrics import demographic_parity_difference
from sklearn.linear_model import LogisticRegression

from froc_cli.attacks import FeatureSpace
from froc_cli.core import DataSpec, InputError, ThreatModel
from froc_cli.data import EncodedRows, encode_rows, fit_encoder, prepare_data
from froc_cli.methods import (
    DEFAULT_PANEL,
    PanelMember,
    fit_panel_member,
    measure_panel_member,
    parse_panel,
)
from froc_cli.metrics import threat_variants

SPEC = DataSpec(protected="gender", min_group_size=5)
THREAT = ThreatModel(eps=0.1, pgd_steps=3, attack_space="valid", cat_budget=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoded() -> tuple[EncodedRows, EncodedRows, FeatureSpace]:
    """Training rows (make_frame(300)) and other rows (another seed) on one encoder."""
    train = prepare_data(make_frame(300, seed=1), SPEC, source="train")
    other = prepare_data(make_frame(200, seed=2), SPEC, source="other")
    encoder = fit_encoder(train.frame, train.feature_columns)
    device = torch.device("cpu")
    return (
        encode_rows(train, encoder, np.arange(train.n_rows), device),
        encode_rows(other, encoder, np.arange(other.n_rows), device),
        FeatureSpace.from_encoder(encoder),
    )


# --- parse_panel ------------------------------------------------------------------------------


def test_parse_panel_accepts_the_three_families() -> None:
    assert parse_panel("mlp:64,lr,hgb") == ("mlp:64", "lr", "hgb")
    assert parse_panel(" MLP:8x4 , LR ") == ("mlp:8x4", "lr")
    assert parse_panel("hgb,") == ("hgb",)
    assert parse_panel(",".join(DEFAULT_PANEL)) == DEFAULT_PANEL


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("svm", "'svm' is not lr, hgb or mlp:H"),
        ("mlp:64,svm", "'svm' is not lr, hgb or mlp:H"),
        ("mlp:0", "'mlp:0' is not lr, hgb or mlp:H"),
        ("lr,hgb,lr", "a model is named twice"),
        ("mlp:8,MLP:8", "a model is named twice"),
        ("", "expected a comma-separated list"),
        (" , ", "expected a comma-separated list"),
    ],
)
def test_parse_panel_rejects_bad_specs(spec: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_panel(spec)
    message = str(caught.value)
    assert message.startswith(f"--target-models {spec!r}")
    assert fragment in message


# --- threat_variants --------------------------------------------------------------------------


def test_threat_variants_without_category_budget() -> None:
    threat = ThreatModel(eps=0.2, pgd_steps=4, attack_space="continuous", cat_budget=0)
    variants = threat_variants(threat)
    assert list(variants) == ["valid", "continuous"]
    assert variants["valid"] == replace(threat, attack_space="valid")
    assert variants["continuous"] == threat


def test_threat_variants_with_category_budget_add_numeric_moves_only() -> None:
    threat = ThreatModel(eps=0.2, pgd_steps=4, attack_space="valid", cat_budget=2)
    variants = threat_variants(threat)
    assert list(variants) == ["valid", "numeric", "continuous"]
    assert variants["valid"] == threat
    assert variants["numeric"] == replace(threat, cat_budget=0)
    assert variants["continuous"] == replace(threat, attack_space="continuous")


# --- fit_panel_member -------------------------------------------------------------------------


def test_lr_member_decides_exactly_as_scikit_learn(
    encoded: tuple[EncodedRows, EncodedRows, FeatureSpace],
) -> None:
    train, other, _ = encoded
    member = fit_panel_member("lr", train.x, train.y, seed=0)
    assert member.name == "lr" and member.trees is None and member.network is not None
    reference = LogisticRegression(max_iter=1000).fit(train.x.numpy(), train.y_numpy)
    for rows in (train, other):
        expected = reference.predict(rows.x.numpy())
        decisions = member.decisions(rows.x)
        assert decisions.dtype == np.int8
        np.testing.assert_array_equal(decisions, expected)
    # Not a constant model: both decisions occur, so the match above says something.
    assert 0 < member.decisions(other.x).mean() < 1


def test_hgb_member_is_trees_with_seeded_defaults(
    encoded: tuple[EncodedRows, EncodedRows, FeatureSpace],
) -> None:
    train, other, _ = encoded
    first = fit_panel_member("hgb", train.x, train.y, seed=4)
    second = fit_panel_member("hgb", train.x, train.y, seed=4)
    assert first.network is None and first.trees is not None
    assert first.trees.random_state == 4
    np.testing.assert_array_equal(
        first.decisions(other.x), first.trees.predict(other.x.numpy()).astype(np.int8)
    )
    np.testing.assert_array_equal(first.decisions(other.x), second.decisions(other.x))


def test_mlp_member_learns_and_is_seeded(
    encoded: tuple[EncodedRows, EncodedRows, FeatureSpace],
) -> None:
    train, other, _ = encoded
    member = fit_panel_member("mlp:8", train.x, train.y, seed=1, epochs=80)
    again = fit_panel_member("mlp:8", train.x, train.y, seed=1, epochs=80)
    assert member.trees is None and not member.network.training  # type: ignore[union-attr]
    np.testing.assert_array_equal(member.decisions(other.x), again.decisions(other.x))
    # Plain training on predictable labels beats the majority floor clearly.
    labels = other.y_numpy
    floor = max(labels.mean(), 1 - labels.mean())
    assert (member.decisions(other.x) == labels).mean() > floor + 0.1


# --- measure_panel_member ---------------------------------------------------------------------


def _measure(member: PanelMember, rows: EncodedRows, space: FeatureSpace, transfer: dict):
    return measure_panel_member(
        member, rows.x, rows.y, rows.a_numpy, space=space, threat=THREAT, transfer_x=transfer
    )


@pytest.mark.parametrize("name", ["lr", "hgb", "mlp:4"])
def test_measure_matches_fairlearn_and_numpy(
    name: str, encoded: tuple[EncodedRows, EncodedRows, FeatureSpace]
) -> None:
    train, other, space = encoded
    member = fit_panel_member(name, train.x, train.y, seed=0, epochs=40)
    # Transfer rows: any rows of the same shape; here the rows shifted within the box.
    shifted = torch.clamp(other.x + 0.05, 0.0, 1.0)
    transfer = {"valid": shifted, "continuous": other.x.flip(0)}
    figures = _measure(member, other, space, transfer)

    pred = member.decisions(other.x)
    labels, groups = other.y_numpy, other.a_numpy
    assert figures["rows"] == len(labels)
    assert figures["accuracy"] == pytest.approx(float((pred == labels).mean()), abs=1e-12)
    assert figures["bias_score"] == pytest.approx(
        demographic_parity_difference(labels, pred, sensitive_features=groups), abs=1e-12
    )
    assert figures["majority_floor"] == pytest.approx(max(labels.mean(), 1 - labels.mean()))
    share = pred.mean()
    assert figures["rarer_decision_share"] == pytest.approx(min(share, 1 - share))
    assert figures["robustness_transfer_valid"] == pytest.approx(
        float((member.decisions(shifted) == labels).mean())
    )
    assert figures["robustness_transfer_continuous"] == pytest.approx(
        float((member.decisions(other.x.flip(0)) == labels).mean())
    )
    whitebox = {k for k in figures if k.startswith("robustness_whitebox_")}
    if name == "hgb":
        assert whitebox == set()  # trees have no gradient
    else:
        assert whitebox == {"robustness_whitebox_valid", "robustness_whitebox_continuous"}
        for key in whitebox:
            # PGD on the true labels: the attack can only cost accuracy here.
            assert 0.0 <= figures[key] <= figures["accuracy"] + 1e-12
        # A real attack: the network loses some rows under eps 0.1 in the continuous space.
        assert figures["robustness_whitebox_continuous"] < figures["accuracy"]


def test_measure_skips_transfer_variants_it_was_not_given(
    encoded: tuple[EncodedRows, EncodedRows, FeatureSpace],
) -> None:
    train, other, space = encoded
    member = fit_panel_member("hgb", train.x, train.y, seed=0)
    figures = _measure(member, other, space, {"valid": other.x})
    robustness = {k: v for k, v in figures.items() if k.startswith("robustness_")}
    # Unattacked transfer rows: robustness is the clean accuracy.
    assert robustness == {"robustness_transfer_valid": figures["accuracy"]}
    assert figures["bias_score"] == pytest.approx(
        demographic_parity_difference(
            other.y_numpy, member.decisions(other.x), sensitive_features=other.a_numpy
        )
    )
