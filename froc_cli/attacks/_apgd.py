"""Auto-PGD (Croce & Hein, ICML 2020, Algorithm 1) for L-inf and a one-logit binary model."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ._base import Attack
from ._space import FeatureSpace
from ._valid import ValidRecordAttack

__all__ = ["APGD", "apgd_checkpoints"]


def apgd_checkpoints(steps: int) -> list[int]:
    """The iterations ``w_j = ceil(p_j * steps)`` at which APGD may halve its step size.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` while
    ``p_j <= 1``: for 100 steps, 0, 22, 41, 57, 70, 80, 87, 93, 99. Duplicates (few steps) are
    dropped.
    """
    fractions = [0.0, 0.22]
    while True:
        following = fractions[-1] + max(fractions[-1] - fractions[-2] - 0.03, 0.06)
        if following > 1.0 + 1e-9:
            break
        fractions.append(following)
    # The 1e-9 absorbs float error in the sums (0.41 * 100 = 41.00000000000001).
    points = sorted({math.ceil(p * steps - 1e-9) for p in fractions})
    return [w for w in points if w <= steps]


class APGD(Attack):
    """Auto-PGD: a budget-aware step size, momentum and restarts from the best point.

    Each run (Algorithm 1 of Croce & Hein, 2020) takes ``steps`` signed-gradient iterations of
    ``z = P(x_k + eta_k sign(grad))``, ``x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)
    (x_k - x_{k-1}))`` (the first one a plain step of ``eta_0 = 2 eps``), where ``P`` clamps to
    the eps-ball around ``x`` intersected with the bounds (immutable columns fixed). At each
    checkpoint ``w_j`` (:func:`apgd_checkpoints`) a row halves its step size and goes back to its
    best point when fewer than ``rho * (w_j - w_{j-1})`` of its iterations since the last
    checkpoint raised the loss (condition 1), or when neither its step size nor its best loss
    changed since the last checkpoint (condition 2). Each row keeps its best (highest-loss)
    point. All of it is per row, batched.

    Loss: the base class's margin ``-(2y - 1) * logit``. The paper's two losses do not carry
    over as such to one logit. DLR divides the logit margin by ``z_pi1 - z_pi3``, which needs a
    third class; its numerator is this margin. The cross-entropy of a binary logit is
    ``softplus(margin)``, a strictly increasing function of it, so its gradient has the same
    sign and its values the same order per row. APGD uses only the gradient's sign and per-row
    comparisons of losses (best point, counts of increases, an unchanged best), so APGD-CE and
    APGD-margin take the same iterates in exact arithmetic. The margin's gradient does not
    vanish where the sigmoid saturates in float32, which would stall APGD-CE on confident rows.

    Restarts: restart 0 starts at ``x`` itself, so ``restarts=1`` is deterministic without a
    seed. Restarts 1, 2, ... start uniformly at random in the eps-ball and bounds (drawn from a
    ``torch.Generator`` seeded with ``seed``) and attack only the rows that no earlier restart
    broke, as AutoAttack does. Rows misclassified before any step are returned as they are. A
    broken row returns the best point of the run that first broke it; an unbroken row returns
    its highest-loss point over all runs. Since a misclassified point has a higher margin than
    any correctly classified one, the returned point is misclassified whenever a run found
    any misclassified point.

    ``valid=True`` attacks in the space of valid records, as :class:`ValidRecordAttack` does:
    its greedy switches of up to ``cat_budget`` categorical columns (once, from ``x``), then
    APGD on the mutable numeric features only, within eps of ``x`` and the bounds, then each
    run's best point snapped to the value grid (toward ``x`` where rounding would leave the
    ball). Each run's candidate is its snapped point, compared by its own margin.
    """

    def __init__(
        self,
        model: nn.Module,
        space: FeatureSpace,
        *,
        eps: float,
        steps: int = 100,
        restarts: int = 1,
        seed: int = 0,
        rho: float = 0.75,
        alpha: float = 0.75,
        valid: bool = False,
        cat_budget: int = 1,
        target: Literal["true", "predicted"] = "true",
    ) -> None:
        super().__init__(model, space, eps=eps, target=target)
        if steps < 1:
            raise ValueError(f"APGD steps {steps}: expected at least 1")
        if restarts < 1:
            raise ValueError(f"APGD restarts {restarts}: expected at least 1")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"APGD alpha {alpha}: expected in (0, 1]")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"APGD rho {rho}: expected in [0, 1]")
        if cat_budget < 0:
            raise ValueError(f"APGD cat_budget {cat_budget}: expected 0 or more")
        self.steps = steps
        self.restarts = restarts
        self.seed = seed
        self.rho = rho
        self.alpha = alpha
        self.valid = valid
        self.cat_budget = cat_budget
        self.checkpoints = apgd_checkpoints(steps)
        # Valid records: the category switches and the grid snapping are ValidRecordAttack's.
        self._records = ValidRecordAttack(
            model, space, eps=eps, steps=0, cat_budget=cat_budget, target=target
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial rows (same shape), in the eps-ball, the bounds and the attack space."""
        return self.forward_with_success(x, y)[0]

    def forward_with_success(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_adv, broken)``: the adversarial rows and, per row, whether the model
        misclassifies ``x_adv`` (against the attacked labels, see ``target``), i.e. whether the
        row was misclassified already or any restart broke it."""
        x = x.detach()
        labels = self.attack_labels(x, y)
        if self.valid:
            start = self._records._switch_categories(x.clone(), labels)
            free = self.space.numeric & self.space.mutable
        else:
            start = x.clone()
            free = self.space.mutable
        low, high = self.space.box(x, self.eps)
        low = torch.where(free, low, start)
        high = torch.where(free, high, start)

        best = start
        best_loss = self._margin(best, labels)
        if self.eps > 0 and bool(free.any()):
            generator = torch.Generator(device=x.device).manual_seed(self.seed)
            for restart in range(self.restarts):
                # Drawn for every row, so a row's start does not depend on the others' fate.
                if restart == 0:
                    begin = start
                else:
                    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    begin = torch.lerp(low, high, noise).clamp_(min=low, max=high)
                rows = torch.nonzero(~_misclassified(best_loss, labels)).squeeze(1)
                if rows.numel() == 0:
                    break
                found, found_loss = self._run(begin[rows], low[rows], high[rows], labels[rows])
                if self.valid:
                    found = self._records._snap_to_grid(found, x[rows])
                    found_loss = self._margin(found, labels[rows])
                better = found_loss > best_loss[rows]
                best = best.index_copy(0, rows[better], found[better])
                best_loss = best_loss.index_copy(0, rows[better], found_loss[better])
        x_adv = best.detach()
        with torch.no_grad():
            broken = (self.model(x_adv) > 0) != labels.bool()
        return x_adv, broken

    def _margin(self, x_adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits: torch.Tensor = self.model(x_adv)
        return (1.0 - 2.0 * labels) * logits

    def _run(
        self, begin: torch.Tensor, low: torch.Tensor, high: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One run of Algorithm 1 from ``begin`` within ``[low, high]``: the best point of each
        row and its margin."""
        n = begin.shape[0]
        last = self.steps - 1
        checkpoints = set(self.checkpoints[1:])
        eta = torch.full((n, 1), 2.0 * self.eps, dtype=begin.dtype, device=begin.device)
        x_prev = x_cur = begin
        loss_cur = self._margin(x_cur, labels)
        grad = self.loss_gradient(x_cur, labels)
        best, best_loss = x_cur, loss_cur
        # Per row since the last checkpoint: the number of iterations that raised the loss,
        # whether the step size was halved there, and the best loss then.
        increases = torch.zeros(n, dtype=begin.dtype, device=begin.device)
        halved = torch.zeros(n, dtype=torch.bool, device=begin.device)
        best_loss_at_check = best_loss
        previous_check = 0
        for k in range(self.steps):
            # Iteration k computes x_{k+1}; iteration 0 is the plain first step (alpha = 1).
            z = torch.addcmul(x_cur, eta, grad.sign_()).clamp_(min=low, max=high)
            if k == 0:
                x_new = z
            else:
                # x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}) = lerp(2 x_k - x_{k-1}, z,
                # alpha), and 2 x_k - x_{k-1} = lerp(x_{k-1}, x_k, 2): two passes over the rows.
                ahead = torch.lerp(x_prev, x_cur, 2.0)
                x_new = torch.lerp(ahead, z, self.alpha).clamp_(min=low, max=high)
            loss_new = self._margin(x_new, labels)
            if k < last:
                grad = self.loss_gradient(x_new, labels)
            raised = loss_new > loss_cur
            improved = loss_new > best_loss
            best = torch.where(improved[:, None], x_new, best)
            best_loss = torch.where(improved, loss_new, best_loss)
            x_prev, x_cur, loss_cur = x_cur, x_new, loss_new
            if k in checkpoints and k < last:
                # Condition 1 counts the increases of iterations w_{j-1} .. w_j - 1.
                too_few = increases < self.rho * (k - previous_check)
                stalled = ~halved & (best_loss <= best_loss_at_check)
                halved = too_few | stalled
                if bool(halved.any()):
                    eta = torch.where(halved[:, None], eta / 2.0, eta)
                    x_cur = torch.where(halved[:, None], best, x_cur)
                    loss_cur = torch.where(halved, best_loss, loss_cur)
                    grad[halved] = self.loss_gradient(best[halved], labels[halved])
                best_loss_at_check = best_loss
                previous_check = k
                increases = raised.to(increases.dtype)
            else:
                increases = increases + raised.to(increases.dtype)
        return best, best_loss


def _misclassified(margin: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Whether the model's decision ``logit > 0`` differs from ``labels``, from the margin
    ``(1 - 2 labels) * logit``: a zero logit is decided 0, so it breaks label 1 only."""
    return (margin > 0) | ((margin == 0) & (labels > 0.5))
