"""The order an auditor relies on: certified <= APGD with restarts <= PGD-10, on random networks.

Robust accuracy under an attack is an upper bound on the true robust accuracy; the certificate
is a lower bound. So, always: the certified share <= the share APGD (5 restarts) leaves
unbroken <= the share PGD-10 leaves unbroken; every certified row resists both attacks; and the
gated figure (no attack broke the row) is at most each attack's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from froc_cli.attacks import APGD, PGD, FeatureSpace, certify
from froc_cli.core import ThreatModel
from froc_cli.metrics import Decisions, evaluate_decisions
from froc_cli.models import build_model, predict_logits

SPECS = ("lr", "mlp:8", "mlp:16", "mlp:8x8")


def _network_and_rows(seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, int]:
    rng = np.random.default_rng(seed)
    n_features = int(rng.integers(2, 7))
    model = build_model(SPECS[seed % len(SPECS)], n_features, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(120, n_features, generator=generator)
    with torch.no_grad():
        # Labels from the model itself, with a fifth flipped: correct and wrong rows both.
        y = (predict_logits(model, x) > 0).float()
        flip = torch.rand(120, generator=generator) < 0.2
        y = torch.where(flip, 1 - y, y)
    return model, x, y, n_features


@pytest.mark.parametrize("seed", range(24))
def test_certified_below_apgd_below_pgd(seed: int) -> None:
    model, x, y, n_features = _network_and_rows(seed)
    space = FeatureSpace.unconstrained(n_features)
    eps = [0.03, 0.08, 0.15][seed % 3]
    labels = y.bool().numpy()

    def unbroken(x_adv: torch.Tensor) -> np.ndarray:
        return (predict_logits(model, x_adv) > 0).numpy() == labels

    pgd = unbroken(PGD(model, space, eps=eps, steps=10)(x, y))
    apgd = unbroken(APGD(model, space, eps=eps, restarts=5, seed=seed)(x, y))
    certified = certify(model, x, y, space, eps=eps).numpy()

    assert certified.sum() <= apgd.sum() <= pgd.sum()
    assert not (certified & ~apgd).any() and not (certified & ~pgd).any()
    # The gated figure: no attack broke the row.
    d = Decisions(
        y=labels.astype(np.int8),
        a=np.zeros(len(labels), dtype=np.int8),
        pred=((predict_logits(model, x) > 0).numpy()).astype(np.int8),
        pred_pgd=np.where(pgd, labels, ~labels).astype(np.int8),
        pred_apgd=np.where(apgd, labels, ~labels).astype(np.int8),
        certified=certified,
    )
    metrics = evaluate_decisions(d).metrics
    assert metrics["robustness_certified"] <= metrics["robustness"]
    assert metrics["robustness"] <= min(metrics["robustness_apgd"], metrics["robustness_pgd"])
    assert metrics["robustness"] == pytest.approx(float((pgd & apgd).mean()))


def test_threat_model_names_the_attacks_and_refuses_unknown_ones() -> None:
    threat = ThreatModel(attacks=("pgd", "apgd"), restarts=5)
    assert threat.describe_attacks() == "PGD-10 and APGD-100 x 5 restarts"
    assert "measured with PGD-10 and APGD-100 x 5 restarts" in threat.describe()
    assert "measured with" not in ThreatModel().describe()  # the default reads as before
    for bad in ({"attacks": ("cw",)}, {"attacks": ()}, {"attacks": ("pgd", "pgd")}):
        with pytest.raises(Exception, match="--attack"):
            ThreatModel(**bad)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="--restarts 0"):
        ThreatModel(restarts=0)
    with pytest.raises(Exception, match="--robust-metric"):
        ThreatModel(robust_metric="median")  # type: ignore[arg-type]
