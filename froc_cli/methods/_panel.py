"""A panel of outside trainers: the model families a data owner's counterpart fits plainly to
the file FRoC-PRE writes, and what each of them reaches.

FRoC-PRE's promise is about a model froc did not train: each panel member is fitted with
plain training, as an outside trainer would, and judged on rows it never saw. Members:

* ``mlp:H`` (or ``mlp:HxH``): froc's ReLU network, full-batch Adam, plain BCE;
* ``lr``: scikit-learn's ``LogisticRegression`` (lbfgs), copied into a linear network so
  that white-box attacks can take its gradient;
* ``hgb``: scikit-learn's ``HistGradientBoostingClassifier`` with its defaults (seeded). Trees
  have no gradient: only transfer attacks apply to them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from torch import nn

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import Objective, ThreatModel, TrainConfig
from froc_cli.core._errors import InputError
from froc_cli.core._fairness import active_pair, gap_standard_error
from froc_cli.metrics import _scores as m
from froc_cli.metrics._evaluate import attack_examples, threat_variants
from froc_cli.models._nets import build_model, parse_model_spec
from froc_cli.models._training import predict_logits, train_model

__all__ = [
    "DEFAULT_PANEL",
    "PanelMember",
    "fit_panel_member",
    "measure_panel_member",
    "parse_panel",
]

DEFAULT_PANEL = ("mlp:64", "lr", "hgb")


def parse_panel(spec: str) -> tuple[str, ...]:
    """The members of a comma-separated panel spec such as ``mlp:64,lr,hgb``."""
    members = tuple(part.strip().lower() for part in spec.split(",") if part.strip())
    if not members:
        raise InputError(f"--target-models {spec!r}: expected a comma-separated list")
    for member in members:
        if member == "hgb":
            continue
        try:
            parse_model_spec(member)
        except InputError:
            raise InputError(
                f"--target-models {spec!r}: {member!r} is not lr, hgb or mlp:H (e.g. mlp:64)"
            ) from None
    if len(set(members)) != len(members):
        raise InputError(f"--target-models {spec!r}: a model is named twice")
    return members


def _native_threads() -> threadpool_limits:
    """Hold scikit-learn's OpenMP and BLAS pools to torch's thread count (``--threads``):
    unlimited, the trees' OpenMP pool oversubscribes a small machine many times over."""
    return threadpool_limits(limits=torch.get_num_threads())


@dataclass(frozen=True)
class PanelMember:
    """One fitted outside trainer. ``network`` is its differentiable form (None for trees)."""

    name: str
    network: nn.Module | None
    trees: HistGradientBoostingClassifier | None = None

    def decisions(self, x: torch.Tensor) -> np.ndarray:
        """0/1 decisions on encoded rows."""
        if self.network is not None:
            return (predict_logits(self.network, x) > 0).cpu().numpy().astype(np.int8)
        assert self.trees is not None
        with _native_threads():
            return np.asarray(self.trees.predict(x.cpu().numpy()), dtype=np.int8)


def _fit_linear(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    classifier = LogisticRegression(max_iter=1000)
    with _native_threads():
        classifier.fit(x.cpu().numpy(), y.cpu().numpy().astype(np.int8))
    network = build_model("lr", x.shape[1], seed=seed, device=x.device)
    (linear,) = (module for module in network.modules() if isinstance(module, nn.Linear))
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(classifier.coef_, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(classifier.intercept_, dtype=linear.bias.dtype))
    network.eval()
    return network


def fit_panel_member(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    epochs: int = 300,
    lr: float = 0.01,
) -> PanelMember:
    """Fit panel member ``name`` plainly to the rows ``(x, y)`` (on ``x``'s device)."""
    if name == "hgb":
        trees = HistGradientBoostingClassifier(random_state=seed)
        with _native_threads():
            trees.fit(x.cpu().numpy(), y.cpu().numpy().astype(np.int8))
        return PanelMember(name, None, trees)
    if name == "lr":
        return PanelMember(name, _fit_linear(x, y, seed))
    network = build_model(name, x.shape[1], seed=seed, device=x.device)
    config = TrainConfig(model=name, epochs=epochs, lr=lr, seed=seed)
    space = FeatureSpace.unconstrained(x.shape[1], x.device)  # plain training attacks nothing
    groups = torch.zeros_like(y)
    train_model(network, x, y, groups, objective=Objective(), config=config, space=space)
    network.eval()
    return PanelMember(name, network)


def measure_panel_member(
    member: PanelMember,
    x: torch.Tensor,
    y: torch.Tensor,
    a: np.ndarray,
    *,
    space: FeatureSpace,
    threat: ThreatModel,
    transfer_x: Mapping[str, torch.Tensor | Sequence[torch.Tensor]],
    criterion: str = "parity",
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, majority floor, S_B (eq. 7; ``criterion`` over the judged groups of ``a``)
    and S_R (eq. 8) of ``member`` on ``(x, y, a)``.

    White-box S_R (``robustness_whitebox_<space>``) attacks the member's own gradient in each
    space of :func:`threat_variants` with every attack of ``threat`` (a row is robust when
    none breaks it; APGD's restarts drawn from ``seed``); transfer S_R
    (``robustness_transfer_<space>``) replays the rows of ``transfer_x`` (each attack's,
    crafted on an independent model) against it. Both are summarised by the threat's robust
    metric.
    """
    labels = y.cpu().numpy().astype(np.int8)
    pred = member.decisions(x)
    share = float(pred.mean()) if len(pred) else 0.0
    figures: dict[str, Any] = {
        "rows": len(labels),
        "accuracy": m.accuracy(pred, labels),
        "majority_floor": m.majority_floor(labels),
        "bias_score": m.criterion_score(pred, labels, a, criterion),
        "rarer_decision_share": min(share, 1.0 - share),
    }
    errors = {
        "accuracy": _share_error(figures["accuracy"], len(labels)),
        "bias_score": gap_standard_error(*active_pair(pred, labels, a, criterion)),
    }
    for variant, variant_threat in threat_variants(threat).items():
        keys = []
        if member.network is not None:
            examples = attack_examples(member.network, x, y, space, variant_threat, seed=seed)
            keys.append(f"robustness_whitebox_{variant}")
            figures[keys[-1]] = _robustness(member, examples, labels, pred, threat.robust_metric)
        if variant in transfer_x:
            keys.append(f"robustness_transfer_{variant}")
            figures[keys[-1]] = _robustness(
                member, transfer_x[variant], labels, pred, threat.robust_metric
            )
        for key in keys:
            errors[key] = _share_error(figures[key], len(labels))
    figures["standard_errors"] = errors
    return figures


def _robustness(
    member: PanelMember,
    examples: torch.Tensor | Sequence[torch.Tensor],
    labels: np.ndarray,
    pred: np.ndarray,
    robust_metric: str,
) -> float:
    """S_R of ``member`` against every set of adversarial ``examples`` (one tensor: one set; a
    row is robust when none breaks it), summarised by ``robust_metric``."""
    if isinstance(examples, torch.Tensor):
        examples = [examples]
    robust = m.unbroken_rows((member.decisions(x_adv) for x_adv in examples), labels)
    return m.robust_summary(robust, labels, pred, robust_metric)


def _share_error(share: float, rows: int) -> float:
    """Binomial standard error of a share of ``rows`` rows (accuracy, S_R)."""
    return math.sqrt(max(share * (1.0 - share), 0.0) / max(rows, 1))
