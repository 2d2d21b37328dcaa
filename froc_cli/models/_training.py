"""The one training loop: plain, fair, robust and fair+robust training differ only in the loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core._config import Objective, TrainConfig
from froc_cli.core._device import flushing_denormals
from froc_cli.core._fairness import criterion_conditions

__all__ = [
    "EpochStats",
    "LossTerms",
    "compute_loss_terms",
    "fairness_gap",
    "fairness_term",
    "predict_logits",
    "train_model",
]


@dataclass(frozen=True)
class EpochStats:
    """Loss terms of eq. 10 averaged over one epoch's steps.

    ``grad_angle`` (degrees) is the angle between the epoch's summed parameter gradients of F
    and R (the paper's Fig. 4); set only when training with ``trace_gradients`` (NaN when either
    gradient is zero, e.g. lambda_R = 0 leaves R unmeasured).
    """

    epoch: int
    loss: float
    bce: float
    fairness: float
    robustness: float
    grad_angle: float | None = None


@dataclass(frozen=True)
class LossTerms:
    """The three terms of eq. 10 for one batch, and their weighted total."""

    total: torch.Tensor
    bce: torch.Tensor
    fairness: torch.Tensor
    robustness: torch.Tensor


EpochCallback = Callable[[EpochStats, nn.Module], bool | None]


def fairness_gap(probs: torch.Tensor, a: torch.Tensor, signed: bool = False) -> torch.Tensor:
    """Relaxed statistical-parity gap F (eqs. 13-14): |sum_i c_i M_c(x_i)| with
    c_i = C_0 (1 - a_i) - C_1 a_i, C_0 = 1/#(a=0), C_1 = 1/#(a=1).

    Equals the difference of the mean probability of the protected (a=0) and unprotected (a=1)
    groups; 0 when a batch lacks either group.
    """
    n_protected = (1 - a).sum()
    n_unprotected = a.sum()
    if float(n_protected) == 0 or float(n_unprotected) == 0:
        return probs.sum() * 0.0
    c = (1 - a) / n_protected - a / n_unprotected
    gap = (c * probs).sum()
    return gap if signed else gap.abs()


# Sharpness of the soft largest gap: group rates are probabilities and gaps of interest are a
# few hundredths, so weights exp(50 * gap) single out the extreme groups without the kinks
# of a hard max.
SMOOTHMAX_TEMPERATURE = 50.0


def _soft_range(means: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted mean minus softmin-weighted mean: 0 when all are equal, never above
    max - min, and max - min as the temperature grows."""
    high = torch.softmax(SMOOTHMAX_TEMPERATURE * means, dim=0)
    low = torch.softmax(-SMOOTHMAX_TEMPERATURE * means, dim=0)
    return ((high - low) * means).sum()


def fairness_term(
    probs: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    criterion: str = "parity",
    surrogate: str = "smoothmax",
) -> torch.Tensor:
    """F (eq. 13) for a criterion over the judged groups (codes >= 0) present in the batch.

    With the binary coding (codes 0 and 1 only) and parity this is :func:`fairness_gap`, the
    paper's F. Otherwise, for each rate the criterion compares (the favourable rate, the TPR
    on rows with y = 1, the FPR on rows with y = 0), the groups' mean probabilities m_g give
    |m_g - m_h| for two groups and, for more, ``smoothmax`` (a soft max_g m_g - min_g m_g) or
    ``deviation`` (sum_g |m_g - mean of the rows|); odds adds its two rates' terms.
    """
    if criterion == "parity" and bool(((a == 0) | (a == 1)).all()):
        return fairness_gap(probs, a)
    total = probs.sum() * 0.0
    for _, label in criterion_conditions(criterion):
        rows = a >= 0 if label is None else (a >= 0) & (y == label)
        codes, p = a[rows].long(), probs[rows]
        if codes.numel() == 0:
            continue
        counts = torch.bincount(codes).to(p.dtype)
        sums = torch.zeros(counts.numel(), dtype=p.dtype, device=p.device).index_add(0, codes, p)
        present = counts > 0
        if int(present.sum()) < 2:
            continue
        means = sums[present] / counts[present]
        if means.numel() == 2:
            total = total + (means[0] - means[1]).abs()
        elif surrogate == "deviation":
            total = total + (means - p.mean()).abs().sum()
        else:
            total = total + _soft_range(means)
    return total


def _weighted_bce(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return F.binary_cross_entropy_with_logits(logits, y)
    losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (w * losses).sum() / w.sum()


def compute_loss_terms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    objective: Objective,
    space: FeatureSpace,
    sample_weight: torch.Tensor | None = None,
    measure_fairness: bool = False,
) -> LossTerms:
    """Eq. 10: L_U (eq. 5) + lambda_F F (eq. 13) + lambda_R R (eq. 15) on one batch.

    R is the BCE on adversarial examples regenerated from the current parameters. F is computed
    when lambda_F > 0 or ``measure_fairness`` (then it is reported but weighs nothing).
    """
    logits = model(x)
    bce = _weighted_bce(logits, y, sample_weight)
    zero = bce * 0.0
    fairness = (
        fairness_term(torch.sigmoid(logits), y, a, objective.fairness, objective.fairness_surrogate)
        if objective.lambda_f > 0 or measure_fairness
        else zero
    )
    robustness = zero
    if objective.lambda_r > 0:
        attack = make_attack(objective.attack, model, space, objective.threat)
        x_adv = attack(x, y)
        robustness = _weighted_bce(model(x_adv), y, sample_weight)
    total = bce + objective.lambda_f * fairness + objective.lambda_r * robustness
    return LossTerms(total=total, bce=bce, fairness=fairness, robustness=robustness)


@flushing_denormals
def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    *,
    objective: Objective | Callable[[], Objective],
    config: TrainConfig,
    space: FeatureSpace,
    sample_weight: torch.Tensor | None = None,
    epochs: int | None = None,
    callback: EpochCallback | None = None,
    trace_gradients: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    on_step: Callable[[nn.Module], None] | None = None,
) -> list[EpochStats]:
    """Train ``model`` in place with Adam on the loss of eq. 10; returns per-epoch statistics.

    Full batch unless ``config.batch_size`` is set; mini-batches are shuffled by a generator
    seeded from ``config.seed``. ``epochs`` overrides ``config.epochs`` (e.g. for warm starts).
    ``callback`` runs after each epoch and may return True to stop early. ``trace_gradients``
    also measures F (even at lambda_F = 0) and the angle between the parameter gradients of F
    and R (``EpochStats.grad_angle``), from the same graph as the step, so the parameter updates
    are the same as without tracing. ``optimizer`` continues an optimizer of ``model``'s
    parameters, state included (a warm start without Adam's restart jolt), instead of a new Adam
    at ``config.lr``. ``objective`` may be a function returning the objective, asked at the
    start of every epoch: constrained training moves its lambdas (Lagrange multipliers) between
    epochs. ``on_step`` runs after every optimiser step (e.g. to update an average of the
    weights).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    n = x.shape[0]
    batch = n if config.batch_size is None else min(config.batch_size, n)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[EpochStats] = []
    model.train()
    for epoch in range(config.epochs if epochs is None else epochs):
        epoch_objective = objective() if callable(objective) else objective
        order = torch.randperm(n, generator=generator).to(x.device) if batch < n else None
        sums = torch.zeros(4, device=x.device)
        grad_sums: list[torch.Tensor] | None = None
        steps = 0
        for start in range(0, n, batch):
            if order is None:
                xb, yb, ab, wb = x, y, a, sample_weight
            else:
                idx = order[start : start + batch]
                xb, yb, ab = x[idx], y[idx], a[idx]
                wb = None if sample_weight is None else sample_weight[idx]
            terms = compute_loss_terms(
                model, xb, yb, ab, epoch_objective, space, wb, measure_fairness=trace_gradients
            )
            if trace_gradients:
                step_grads = _term_gradients(terms, params)
                grad_sums = (
                    step_grads
                    if grad_sums is None
                    else [s + g for s, g in zip(grad_sums, step_grads, strict=True)]
                )
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            if on_step is not None:
                on_step(model)
            sums += torch.stack([terms.total, terms.bce, terms.fairness, terms.robustness]).detach()
            steps += 1
        means = (sums / steps).tolist()
        angle = None if grad_sums is None else _angle_degrees(grad_sums[0], grad_sums[1])
        stats = EpochStats(epoch, means[0], means[1], means[2], means[3], angle)
        history.append(stats)
        if callback is not None and callback(stats, model):
            break
    model.eval()
    return history


def _term_gradients(terms: LossTerms, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Flattened parameter gradients of F and of R (zeros where a term is not measured)."""
    flat: list[torch.Tensor] = []
    for term in (terms.fairness, terms.robustness):
        if term.requires_grad:
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            flat.append(
                torch.cat(
                    [
                        (torch.zeros_like(p) if g is None else g).reshape(-1)
                        for p, g in zip(params, grads, strict=True)
                    ]
                )
            )
        else:
            flat.append(torch.cat([torch.zeros_like(p).reshape(-1) for p in params]))
    return flat


def _angle_degrees(u: torch.Tensor, v: torch.Tensor) -> float:
    """Angle between two vectors in degrees; NaN when either is zero."""
    norms = float(u.norm()) * float(v.norm())
    if norms == 0.0:
        return math.nan
    cosine = max(-1.0, min(1.0, float(torch.dot(u, v)) / norms))
    return math.degrees(math.acos(cosine))


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, chunk: int = 262_144) -> torch.Tensor:
    """Logits for ``x`` in chunks (bounded memory on large files)."""
    model.eval()
    if x.shape[0] == 0:
        return model(x)  # no rows, no chunks: torch.cat refuses an empty list
    return torch.cat([model(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])
