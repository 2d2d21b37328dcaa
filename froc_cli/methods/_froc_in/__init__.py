"""FRoC-IN (Section 5): train with the loss of eq. 10, with given lambdas or searched for deltas.

The loss is BCE + lambda_F * F + lambda_R * R (eq. 10), where F is the relaxed statistical-parity
gap |sum_i c_i M_c(x_i)| with the constants c_i of eq. 14 (over each batch; full batch by
default) and R is the BCE on FGSM or PGD examples regenerated from the current parameters at
every step (eq. 15). Training is :func:`froc_cli.models._training.train_model`, the one loop; this
package adds the validation split, checkpoint selection, early stopping and the lambda search.

Modules: ``_config`` (the settings), ``_scoring`` (a model scored on validation), ``_fit`` (one
fit and the search's record), ``_dual`` (the constrained search), ``_grid`` (the grid search),
``_frontier`` (the frontier and the smallest relaxation), ``_api`` (:func:`fit_froc_in`).

Constrained search (``search="constrained"``, the default)
-----------------------------------------------------------
The thresholds are constraints of one training run: minimise the BCE subject to S_B <= target_F
and S_R >= target_R on validation (the targets of step 1 below), with lambda_F and lambda_R as
the constraints' Lagrange multipliers. After every epoch the iterate is scored on validation
(S_R with the gate's attacks) and each free multiplier takes a dual-ascent step of
``dual_step`` x its violation, within [0, cap] (halved instead when the iterate is degenerate);
the next epoch trains at the new multipliers (the proxy-Lagrangian of Cotter et al., 2019).
The iterates are an exponential moving average of the weights; the chosen one is the most
accurate non-degenerate iterate meeting both targets (else, as below, the closest), and the run
stops ``dual_patience`` epochs after that one last improved. See :mod:`._dual`.

Grid search (``search="grid"``; ``delta_f`` / ``delta_r`` given, the lambda not given)
-------------------------------------------------------------------------------------
All choices use a validation split carved from the training part (never the test split).

1. *Targets.* The search aims at ``S_B <= delta_F - m_F`` and ``S_R(PGD) >= delta_R + m_R``
   on validation, where the margins are ``margin`` binomial standard errors of the validation
   estimates (:mod:`froc_cli.metrics` tightened thresholds: S_B's at the groups' label
   rates, S_R's at delta_R), so that a choice made at the edge of a threshold on validation
   still tends to meet it on unseen rows.
2. *Start.* One fit from scratch with the free lambdas at 0 (``epochs`` epochs; a plain fit is
   cheap because no attack runs).
3. *Fairness, then robustness, alternating.* While a target is missed, the lambda of that
   target is raised geometrically (x2 from 0.25 for lambda_F and 0.1 for lambda_R, up to 16 and
   8, giving up after three steps without progress) until the target is met, then bisected
   (geometric mean) between the last missing and the first meeting value, ``bisect_steps``
   times; the other lambda stays fixed meanwhile. Fairness goes first because fits without the
   attack are cheap and adversarial training hardly moves S_B; raising lambda_R can push S_B up
   again, so the two are revisited in turn (at most ``rounds`` rounds) until one setting meets
   both. A target met only by degenerate models (step 5) is unreachable: the search goes on
   from the closest non-degenerate fit, tries the other target there, and stops.
4. *Warm starts and early stopping.* Every fit after the first starts from the previous fit's
   selected model and runs at most ``warm_epochs`` epochs. Every ``eval_every`` epochs the model
   is scored on validation (accuracy, S_B, S_R under PGD, and the loss of eq. 10 at the fit's
   lambdas); the checkpoint with the smallest validation loss is kept, and a fit stops after
   ``patience`` scorings without a smaller one. Thresholds are compared once per fit, on its
   kept checkpoint: S_B swings from checkpoint to checkpoint, and picking the checkpoint that
   happens to meet a threshold on validation would mostly pick noise.
5. *Choice.* Among all fits, the most accurate model meeting both targets (then: both
   thresholds) on validation is returned with its lambdas. A degenerate model never counts as
   meeting anything: one whose rarer decision goes to fewer than 5% of rows, or whose accuracy
   is not above the majority-class floor by 2 binomial standard errors (a constant model has
   S_B = 0 and S_R = the floor, so it would "meet" many thresholds). When no fit meets both
   thresholds, the result is infeasible and carries the closest point (smallest total
   violation, non-degenerate first). The search runs at most ``max_trials`` fits (16), so its
   result depends on the seed and not on how busy the machine is; ``search_budget_s`` can also
   stop it from starting fits after that many seconds, at the price of that dependence.
"""

from __future__ import annotations

from ._api import FitOutcome, fit_froc_in
from ._config import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, SEARCH_KINDS, FrocInConfig, SearchKind
from ._fit import EpochProgress, Trial
from ._frontier import Frontier, FrontierPoint, Relaxation
from ._scoring import ValidationScore, score_validation

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "SEARCH_KINDS",
    "EpochProgress",
    "FitOutcome",
    "FrocInConfig",
    "Frontier",
    "FrontierPoint",
    "Relaxation",
    "SearchKind",
    "Trial",
    "ValidationScore",
    "fit_froc_in",
    "score_validation",
]
