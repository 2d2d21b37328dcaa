"""The one training loop: plain, fair, robust and fair+robust training differ only in the loss."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from froc_cli.attacks import FeatureSpace, make_attack
from froc_cli.core._config import Objective, TrainConfig
from froc_cli.core._device import flushing_denormals
from froc_cli.core._distributed import all_reduce_sum, is_distributed, shard_bounds, world_size
from froc_cli.core._fairness import criterion_conditions

__all__ = [
    "BatchShare",
    "EpochStats",
    "LossTerms",
    "compute_loss_terms",
    "fairness_gap",
    "fairness_term",
    "predict_logits",
    "summed_across_processes",
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
    *,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    groups: int | None = None,
) -> torch.Tensor:
    """F (eq. 13) for a criterion over the judged groups (codes >= 0) present in the batch.

    With the binary coding (codes 0 and 1 only) and parity this is :func:`fairness_gap`, the
    paper's F. Otherwise, for each rate the criterion compares (the favourable rate, the TPR
    on rows with y = 1, the FPR on rows with y = 0), the groups' mean probabilities m_g give
    |m_g - m_h| for two groups and, for more, ``smoothmax`` (a soft max_g m_g - min_g m_g) or
    ``deviation`` (sum_g |m_g - mean of the rows|); odds adds its two rates' terms.

    ``reduce`` (with ``groups``, the number of group codes of the whole table) makes F the
    figure of a batch split between processes: each process's per-group sums of
    probabilities and row counts are summed over the processes (e.g.
    :func:`summed_across_processes`) before the group means are taken, so every process gets
    the F of the whole batch (an F per shard would be biased: group rates are ratios). The
    gradient reaching ``probs`` is then this process's share of F's gradient.
    """
    if reduce is not None:
        return _fairness_from_sums(probs, y, a, criterion, surrogate, reduce, groups or 2)
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
        total = total + _gap_term(sums[present] / counts[present], p.mean(), surrogate)
    return total


def _gap_term(means: torch.Tensor, overall: torch.Tensor, surrogate: str) -> torch.Tensor:
    """F's term for one rate from the groups' mean probabilities ``means`` (``overall``: the
    mean over their rows): the gap of two groups, else the surrogate over more."""
    if means.numel() == 2:
        return (means[0] - means[1]).abs()
    if surrogate == "deviation":
        return (means - overall).abs().sum()
    return _soft_range(means)


def _fairness_from_sums(
    probs: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    criterion: str,
    surrogate: str,
    reduce: Callable[[torch.Tensor], torch.Tensor],
    groups: int,
) -> torch.Tensor:
    """:func:`fairness_term` from per-group sums and counts summed by ``reduce``: one sum of
    ``(conditions, 2, groups)`` values (sums of probabilities, then row counts) per batch."""
    conditions = criterion_conditions(criterion)
    parts = []
    for _, label in conditions:
        rows = a >= 0 if label is None else (a >= 0) & (y == label)
        codes, p = a[rows].long(), probs[rows]
        sums = torch.zeros(groups, dtype=probs.dtype, device=probs.device).index_add(0, codes, p)
        counts = torch.bincount(codes, minlength=groups).to(probs.dtype)
        parts.append(torch.stack([sums, counts]))
    totals = reduce(torch.stack(parts))
    total = probs.sum() * 0.0
    for sums, counts in totals:
        present = counts > 0
        if int(present.sum()) < 2:
            continue
        overall = sums.sum() / counts.sum()
        total = total + _gap_term(sums[present] / counts[present], overall, surrogate)
    return total


class _SumAcrossProcesses(torch.autograd.Function):
    """All-reduce sum whose backward passes the gradient through unchanged: each process's
    share of the gradient of a function of the global sums (DistributedDataParallel then
    sums the shares)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, local: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(local)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def summed_across_processes(local: torch.Tensor) -> torch.Tensor:
    """``local`` summed over the processes of the torch.distributed group (itself without
    one); differentiable, each process's gradient being its own share."""
    summed: torch.Tensor = _SumAcrossProcesses.apply(local)
    return summed


@dataclass(frozen=True)
class BatchShare:
    """This process's share of a global batch split between ``world`` processes: the global
    batch has ``rows`` rows (``weight``: their total sample weight, None without weights) over
    ``groups`` group codes; ``forward`` is the model as DistributedDataParallel wraps it."""

    world: int
    rows: int
    weight: float | None
    groups: int
    forward: nn.Module


def _summed_bce(
    logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, share: BatchShare
) -> torch.Tensor:
    """This process's part of the global batch's (weighted) mean BCE: its rows' sum over the
    global count (or weight), so the parts of every process add up to the mean."""
    losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    if w is None or share.weight is None:
        return losses.sum() / share.rows
    return (w * losses).sum() / share.weight


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
    share: BatchShare | None = None,
) -> LossTerms:
    """Eq. 10: L_U (eq. 5) + lambda_F F (eq. 13) + lambda_R R (eq. 15) on one batch.

    R is the BCE on adversarial examples regenerated from the current parameters. F is computed
    when lambda_F > 0 or ``measure_fairness`` (then it is reported but weighs nothing).

    With ``share`` the rows are this process's part of a global batch (see
    :func:`train_model`): ``bce`` and ``robustness`` are this process's parts of the global
    means, ``fairness`` is the global batch's F (all-reduced group sums), and ``total`` is
    ``world`` times this process's part of eq. 10, so that DistributedDataParallel's mean of
    the processes' gradients is the gradient of eq. 10 on the global batch.
    """
    if share is not None:
        return _shared_loss_terms(model, x, y, a, objective, space, sample_weight,
                                  measure_fairness, share)  # fmt: skip
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


def _shared_loss_terms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor,
    objective: Objective,
    space: FeatureSpace,
    sample_weight: torch.Tensor | None,
    measure_fairness: bool,
    share: BatchShare,
) -> LossTerms:
    """:func:`compute_loss_terms` on this process's part of a global batch."""
    logits = share.forward(x)
    bce = _summed_bce(logits, y, sample_weight, share)
    zero = bce * 0.0
    fairness = zero
    if objective.lambda_f > 0 or measure_fairness:
        fairness = fairness_term(
            torch.sigmoid(logits), y, a, objective.fairness, objective.fairness_surrogate,
            reduce=summed_across_processes, groups=share.groups,
        )  # fmt: skip
    robustness = zero
    if objective.lambda_r > 0 and x.shape[0] > 0:
        # Adversarial examples are crafted locally, on the unwrapped model: each row's attack
        # depends on that row and the (shared) parameters only.
        attack = make_attack(objective.attack, model, space, objective.threat)
        robustness = _summed_bce(share.forward(attack(x, y)), y, sample_weight, share)
    total = share.world * (bce + objective.lambda_f * fairness + objective.lambda_r * robustness)
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

    Inside a torch.distributed group of several processes (``torchrun``; see
    :mod:`froc_cli.core._distributed`) every process is given the same rows and draws the same
    batches; each computes only its contiguous slice of the rows (:func:`shard_bounds`) in each
    global batch, through DistributedDataParallel, with F taken on the all-reduced group sums
    (:class:`BatchShare`). The model is then the one a single process trains on the same global
    batches, up to the order of float sums; the statistics are the global batch's.
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
    sharing = _Sharing.begin(model, x, a) if is_distributed() else None
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
            share = None
            if sharing is not None:
                share = sharing.share(xb.shape[0], wb)
                mine = sharing.mine(order, start, xb.shape[0]).to(xb.device)
                xb, yb, ab = xb[mine], yb[mine], ab[mine]
                wb = None if wb is None else wb[mine]
            terms = compute_loss_terms(
                model, xb, yb, ab, epoch_objective, space, wb, measure_fairness=trace_gradients,
                share=share,
            )  # fmt: skip
            if trace_gradients:
                step_grads = _term_gradients(terms, params)
                if sharing is not None:
                    step_grads = [all_reduce_sum(g) for g in step_grads]
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
        if sharing is not None:
            sums = sharing.epoch_sums(sums, epoch_objective)
        means = (sums / steps).tolist()
        angle = None if grad_sums is None else _angle_degrees(grad_sums[0], grad_sums[1])
        stats = EpochStats(epoch, means[0], means[1], means[2], means[3], angle)
        history.append(stats)
        if callback is not None and callback(stats, model):
            break
    model.eval()
    return history


@dataclass(frozen=True)
class _Sharing:
    """How :func:`train_model` splits each global batch between the processes of a
    torch.distributed group: this process's row slice and the model wrapped by
    DistributedDataParallel."""

    world: int
    start: int
    stop: int
    groups: int
    forward: nn.Module

    @classmethod
    def begin(cls, model: nn.Module, x: torch.Tensor, a: torch.Tensor) -> _Sharing:
        from torch.nn.parallel import DistributedDataParallel

        # Whole-table facts, the same on every process (each is given every row).
        groups = max(int(a.max().item()) + 1 if a.numel() else 0, 2)
        device_ids = [x.device.index] if x.device.type == "cuda" else None
        # No buffers to broadcast (froc's networks have none): no collective in a forward,
        # so a process may skip its adversarial forward on a batch that has none of its rows.
        with warnings.catch_warnings():
            # torch 2.13 renames the flag; the old name is the one every supported torch reads.
            warnings.simplefilter("ignore", FutureWarning)
            forward = DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
        start, stop = shard_bounds(x.shape[0])
        return cls(world_size(), start, stop, groups, forward)

    def share(self, rows: int, weight: torch.Tensor | None) -> BatchShare:
        """The global batch's facts (every process holds its rows: no communication)."""
        total = None if weight is None else float(weight.sum())
        return BatchShare(self.world, rows, total, self.groups, self.forward)

    def mine(self, order: torch.Tensor | None, start: int, rows: int) -> torch.Tensor:
        """Positions within the global batch of the rows in this process's slice."""
        positions = (
            torch.arange(start, start + rows)
            if order is None
            else order[start : start + rows].cpu()
        )
        keep = (positions >= self.start) & (positions < self.stop)
        return torch.nonzero(keep).squeeze(1)

    def epoch_sums(self, sums: torch.Tensor, objective: Objective) -> torch.Tensor:
        """The epoch's sums of (total, BCE, F, R) over the steps of the global batches: the
        processes' parts of BCE and R added up (F is already the global batch's)."""
        parts = all_reduce_sum(sums[[1, 3]])
        fairness = sums[2]
        total = parts[0] + objective.lambda_f * fairness + objective.lambda_r * parts[1]
        return torch.stack([total, parts[0], fairness, parts[1]])


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
