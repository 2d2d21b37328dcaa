"""Influence estimates that drive FRoC-PRE's data edits (paper Section 6, eqs. 17-22).

Two scores are computed for a trained surrogate model (Algorithm 1, lines 12 and 20):

* :func:`compute_flip_influence` -- the first-order change of the soft bias score F (eqs. 13-14)
  and of the utility loss L_U (eq. 5) when one training label is flipped (eqs. 17-20), and
  their fairness-accuracy score (eq. 21, :func:`fairness_accuracy_score`, the one place it is
  computed).
* :func:`compute_addition_influence` -- the same first-order changes for an added row (not
  in the paper; FRoC-PRE's ``addition_rank="balanced"``).
* :func:`compute_augment_influence` -- the accuracy influence of adding an adversarial row,
  the norm of its loss gradient (eq. 22).

Sign convention (why this module does not transcribe eqs. 18-19 literally)
--------------------------------------------------------------------------
With L_U the mean binary cross-entropy (the negative log-likelihood, minimised in training),
eq. 17 gives ``I_theta = -H^-1 [g(x, 1-y) - g(x, y)] = n * Delta-theta``, the parameter change
of the flip scaled by the number of rows. Eq. 18 then sets ``I_f = -grad F`` and eq. 19 takes
``I_F = I_f . I_theta = -n * Delta-F``: the printed score is the NEGATIVE of the change in
bias. Picking "the smallest negative I_F" as the paper prescribes therefore selects the flips
that INCREASE the bias the most. Here every quantity is derived from first principles and
reported as the actual predicted change (``delta_fairness < 0`` means the bias drops); the
rows to flip are those with the most negative :attr:`FlipInfluence.score`.
(The same sign slip affects eq. 20's I_U, but eq. 21 only uses its absolute value.)

Flip influence from first principles (:func:`compute_flip_influence`)
---------------------------------------------------------------------
The model minimises the weighted mean BCE
``R(theta) = sum_i w_i l(x_i, y_i; theta) / W`` with ``W = sum_i w_i``. Flipping row j
removes ``(x_j, y_j)`` and adds ``(x_j, 1 - y_j)`` with the same weight, i.e. adds
``(w_j / W) [l(x_j, 1 - y_j) - l(x_j, y_j)]`` to R. One Newton step from the optimum
gives (eq. 17, scaled by ``w_j / W`` instead of ``1/n``)::

    Delta-theta_j = -(w_j / W) H^-1 [g(x_j, 1 - y_j) - g(x_j, y_j)]

For BCE on a logit f, ``g(x, y) = (sigmoid(f(x)) - y) grad_theta f(x)``, so the bracket
is ``(2 y_j - 1) grad_theta f(x_j)``. Chaining with the gradients of F (eq. 14) and of
the evaluation loss L_U (eq. 5)::

    Delta-F_j = -(2 y_j - 1) (w_j / W) <grad_theta f(x_j), v_F>,   v_F = H^-1 grad F
    Delta-L_j = -(2 y_j - 1) (w_j / W) <grad_theta f(x_j), v_L>,   v_L = H^-1 grad L_U

so the two linear systems are solved once and every row costs one inner product.
``F = |mean_{a=0} sigmoid(f) - mean_{a=1} sigmoid(f)|`` on ``(X_eval, a_eval)``; its
gradient is ``sign(D) grad D`` for the signed gap D (zero when D is exactly zero).

Other criteria and many groups
------------------------------
With a criterion (parity, opportunity, odds; :mod:`froc_cli.core._fairness`) over many
groups, F is the largest gap between two judged groups' mean probabilities on the criterion's
rows (all rows, y = 1, or the worse of y = 1 and y = 0). Where one pair (g, h) and one rate
give that largest gap strictly, F equals that pair's difference in a neighbourhood of the
parameters, so its gradient (Danskin) is that of ``D = sum_i c_i sigmoid(f(x_i))`` with
``c_i = 1/n_g`` on g's rows of that rate, ``-1/n_h`` on h's and 0 elsewhere
(:func:`froc_cli.core._fairness.gap_coefficients`, the active pair chosen on the current
probabilities). Everything above then holds with that c: eq. 14 is the binary parity case.
A flip that changes which pair is largest is predicted to first order only up to that change;
the tests check the prediction against retraining where the pair stays.

Numerics: all returned tensors are float64 on the device of the model's parameters. The
last-layer paths run the model in its own dtype and do the algebra in float64 (the Hessian
solve can be ill-conditioned, and at h+1 unknowns float64 costs little); the all-parameter
flip path evaluates the model functionally with float64 copies of its parameters for the
same reason, while the all-parameter eq. 22 path (a plain norm, memory bound) stays in the
model's dtype. For all parameters the inverted curvature is the damped Hessian, or its
Gauss-Newton part where the Hessian is indefinite (see :func:`_flip_all_params`).
No path modifies the model's parameters or their ``requires_grad`` flags;
the model is put in eval mode for the duration of a call and its previous train/eval flags
are restored.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from froc_cli.core._fairness import gap_coefficients

__all__ = [
    "AdditionInfluence",
    "Curvature",
    "FlipInfluence",
    "InfluenceParams",
    "compute_addition_influence",
    "compute_augment_influence",
    "compute_flip_influence",
    "fairness_accuracy_score",
]

InfluenceParams = Literal["last", "all"]
Curvature = Literal["auto", "hessian", "gauss-newton"]
# eq. 21 is scored on torch tensors here and on numpy arrays by FRoC-PRE.
ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

# Upper bound on the number of per-row gradient entries materialised at once by the
# all-parameter path of eq. 22, which sets the chunk size: 2**22 values (16 MiB in float32)
# bounds memory while keeping chunks large enough that per-chunk overhead is negligible.
_PER_SAMPLE_GRAD_BUDGET = 1 << 22


@dataclass(frozen=True)
class FlipInfluence:
    """Predicted first-order effect of flipping each training label (eqs. 17-21).

    Attributes:
        delta_fairness: shape ``(n_train,)``; predicted change of the soft bias score F
            (eq. 13) on the evaluation set if that single label is flipped and the model is
            retrained. Negative means the model becomes fairer.
        delta_loss: shape ``(n_train,)``; predicted change of the evaluation-set utility loss
            L_U (mean BCE, eq. 5). Positive means the model gets less accurate.
        score: shape ``(n_train,)``; the fairness-accuracy score of eq. 21
            (:func:`fairness_accuracy_score`). Flip the rows with the most
            negative scores; rows with a score >= 0 would not reduce the bias.
        fairness: the current soft bias score F of the model on the evaluation set.
        loss_scale: the root mean square of ``delta_loss`` over the rows that normalises the
            exponent of eq. 21 (0.0 when every ``delta_loss`` is zero, then no penalty applies).
        curvature: the matrix H that was inverted: ``"hessian"`` (the damped Hessian of the
            training loss) or ``"gauss-newton"`` (its damped Gauss-Newton part).
        cg_residual: the larger relative residual ``||H v - g|| / ||g||`` of the two
            conjugate-gradient solves (``params="all"``), None for the direct last-layer solve.
            A value well above ``cg_tol`` means ``cg_iters`` ran out first.
    """

    delta_fairness: torch.Tensor
    delta_loss: torch.Tensor
    score: torch.Tensor
    fairness: float
    loss_scale: float
    curvature: str = "hessian"
    cg_residual: float | None = None

    def select(self, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """Indices of at most ``k`` rows to flip: the most negative scores, best first.

        Only rows with a strictly negative score are returned (Algorithm 1, line 13), so the
        result may hold fewer than ``k`` indices. ``exclude`` is an optional boolean mask of
        shape ``(n_train,)`` of rows that must not be picked, e.g. labels already flipped in an
        earlier iteration (Algorithm 1, line 10).
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        score = self.score
        if exclude is not None:
            if exclude.shape != score.shape:
                raise ValueError(
                    f"exclude must have shape {tuple(score.shape)}, got {tuple(exclude.shape)}"
                )
            score = score.masked_fill(exclude.to(device=score.device, dtype=torch.bool), 0.0)
        # A stable sort keeps ties in row order so the selection is reproducible.
        order = torch.sort(score, stable=True).indices
        n_negative = int((score < 0).sum().item())
        return order[: min(k, n_negative)]


def compute_flip_influence(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_eval: torch.Tensor,
    y_eval: torch.Tensor,
    a_eval: torch.Tensor,
    *,
    sample_weight: torch.Tensor | None = None,
    params: InfluenceParams = "last",
    damping: float = 1e-3,
    cg_iters: int = 50,
    cg_tol: float = 1e-6,
    curvature: Curvature = "auto",
    criterion: str = "parity",
) -> FlipInfluence:
    """Predict how flipping each training label changes bias and loss (eqs. 17-21).

    The derivation (first principles; the signs differ from the paper's printed eqs. 18-19)
    is in the module docstring. ``F`` is measured on ``(X_eval, a_eval)``, ``L_U`` on
    ``(X_eval, y_eval)``. First-order effects add, so the effect of flipping several rows
    together (e.g. a row and its adversarial copy, Algorithm 1 line 16) is the sum of their
    entries. The combined score is eq. 21 (:func:`fairness_accuracy_score`).

    Args:
        model: trained surrogate mapping ``(n, d)`` features to ``(n,)`` logits.
        X_train: training features ``(n, d)``; the rows whose labels could be flipped.
        y_train: training labels ``(n,)`` of 0/1 (1 = favourable).
        X_eval: evaluation features ``(m, d)`` on which F and L_U are measured.
        y_eval: evaluation labels ``(m,)`` of 0/1.
        a_eval: evaluation group codes ``(m,)``: 0/1 (0 = protected; both must occur), or
            one code per group with -1 for rows not judged (at least two judged groups).
        sample_weight: optional non-negative training weights ``(n,)``.
        params: ``"last"`` uses the parameters of the last ``nn.Linear`` only (closed-form
            Hessian ``H = sum_i (w_i/W) p_i (1 - p_i) z_i z_i^T + damping I`` with
            ``z_i = [phi(x_i), 1]`` the input of that layer plus the bias entry, solved by a
            Cholesky factorisation); ``"all"`` uses every parameter (Hessian-vector products
            and conjugate gradient).
        damping: added to the Hessian's diagonal; equal to the Hessian of an L2 penalty
            ``damping/2 ||theta||^2``, so training the surrogate with that penalty makes H
            exact. It also keeps H positive definite (see :func:`_flip_all_params`).
        cg_iters: maximum conjugate-gradient iterations per solve (``params="all"``).
        cg_tol: CG stops when the residual norm is below ``cg_tol`` times the right-hand
            side's norm (``params="all"``).
        curvature: which H to invert with ``params="all"`` (:func:`_flip_all_params`):
            ``"hessian"``, ``"gauss-newton"``, or ``"auto"`` (the Hessian, falling back to
            Gauss-Newton if the damped Hessian turns out not to be positive definite).
        criterion: what F measures (see "Other criteria and many groups" above); with
            binary groups and ``"parity"`` it is eq. 14's gap.

    Returns:
        A :class:`FlipInfluence` of float64 tensors on the model's device.

    Raises:
        ValueError: on malformed inputs, a model without a usable last ``nn.Linear``, or a
            Hessian that is not positive definite even after damping (``params="last"``, or
            ``curvature="hessian"``).
    """
    u_f, u_l, gap, used, residual, y_tr, w_norm = _row_directions(
        model,
        X_train,
        y_train,
        X_eval,
        y_eval,
        a_eval,
        sample_weight=sample_weight,
        params=params,
        damping=damping,
        cg_iters=cg_iters,
        cg_tol=cg_tol,
        curvature=curvature,
        criterion=criterion,
    )
    # u_f[j] = <grad f(x_j), v_F> already carries sign(D); the flip direction and weight
    # turn it into the predicted change (see the derivation above).
    coef = -(2.0 * y_tr - 1.0) * w_norm
    delta_f = coef * u_f
    delta_l = coef * u_l
    _require_finite(delta_f, "fairness influence")
    _require_finite(delta_l, "loss influence")
    loss_scale = float(delta_l.square().mean().sqrt().item())
    return FlipInfluence(
        delta_fairness=delta_f,
        delta_loss=delta_l,
        score=fairness_accuracy_score(delta_f, delta_l, loss_scale),
        fairness=abs(gap),
        loss_scale=loss_scale,
        curvature=used,
        cg_residual=residual,
    )


def fairness_accuracy_score(
    delta_fairness: ArrayT, delta_loss: ArrayT, loss_scale: float
) -> ArrayT:
    """The fairness-accuracy influence score I_FU of eq. 21, one home for every caller.

    ``score = delta_fairness * exp(-|delta_loss| / loss_scale)``: the predicted change of the
    soft bias F damped by the predicted change of the loss L_U (negative: the flip lowers the
    bias; the most negative scores are the best flips). ``loss_scale`` departs from the paper:
    the exponent of eq. 21 has no natural unit (``Delta-L`` is O(1/n) and the paper's
    ``I_U = -n Delta-L`` has a data- and model-dependent scale), so an unscaled exponent makes
    the accuracy term either negligible or dominant. :func:`compute_flip_influence` passes the
    root mean square of ``delta_loss`` over the rows: a row whose loss change is typical keeps
    ~1/e of its fairness effect, a row that barely moves the loss keeps all of it. With
    ``loss_scale`` <= 0 (every ``delta_loss`` zero) no penalty applies and a copy of
    ``delta_fairness`` is returned.

    Works on float64 torch tensors and on numpy arrays alike, each with its own library's
    ``exp`` (the two can differ in the last bit, and FRoC-PRE, which sums a row's effects with
    its adversarial copy's in numpy before scoring, keeps its seeded outputs bit for bit).
    """
    if not loss_scale > 0.0:
        if isinstance(delta_fairness, torch.Tensor):
            return delta_fairness.clone()
        return delta_fairness.copy()
    if isinstance(delta_fairness, torch.Tensor):
        return delta_fairness * torch.exp(-delta_loss.abs() / loss_scale)
    return delta_fairness * np.exp(-np.abs(delta_loss) / loss_scale)


@dataclass(frozen=True)
class AdditionInfluence:
    """Predicted first-order effect of adding each candidate row to the training set.

    Attributes:
        delta_fairness: shape ``(k,)``; predicted change of the soft bias score F (eq. 13) on
            the evaluation set if that row alone is added and the model retrained.
        delta_loss: shape ``(k,)``; predicted change of the evaluation loss L_U (eq. 5).
        fairness: the current soft bias score F on the evaluation set.
    """

    delta_fairness: torch.Tensor
    delta_loss: torch.Tensor
    fairness: float


def compute_addition_influence(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_add: torch.Tensor,
    y_add: torch.Tensor,
    X_eval: torch.Tensor,
    y_eval: torch.Tensor,
    a_eval: torch.Tensor,
    *,
    sample_weight: torch.Tensor | None = None,
    params: InfluenceParams = "last",
    damping: float = 1e-3,
    cg_iters: int = 50,
    cg_tol: float = 1e-6,
    curvature: Curvature = "auto",
    criterion: str = "parity",
) -> AdditionInfluence:
    """Predict how adding each row ``(X_add[j], y_add[j])`` changes bias and loss.

    The same derivation as :func:`compute_flip_influence` (eq. 17) for an up-weighted row
    instead of a flipped one: adding row j with the training rows' mean weight adds
    ``w_j l(x_j, y_j)`` to the normalised loss, ``w_j = 1 / (n + 1)`` of the new total, so::

        Delta-theta_j = -w_j H^-1 g(x_j, y_j),   g(x, y) = (sigmoid(f(x)) - y) grad_theta f(x)
        Delta-F_j = -w_j (p_j - y_j) <grad_theta f(x_j), H^-1 grad F>

    with H the Hessian of the current training rows only (the candidates enter the solve
    with weight zero). Algorithm 1 adds adversarial rows for robustness and ranks them by
    accuracy (eq. 22) alone; their effect on F tells which of them would undo the flips.
    Arguments are those of :func:`compute_flip_influence`; ``X_add``/``y_add`` are the
    candidates. Returns float64 tensors on the model's device; raises ValueError as it does.
    """
    k = _check_features(X_add, "X_add")
    n = _check_features(X_train, "X_train")
    if X_add.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_add has {X_add.shape[1]} columns but X_train has {X_train.shape[1]}")
    device, dtype = _model_device_dtype(model)
    weights = (
        torch.ones(n, dtype=torch.float64, device=device)
        if sample_weight is None
        else sample_weight.to(device=device, dtype=torch.float64)
    )
    if weights.ndim != 1 or weights.shape[0] != n:
        raise ValueError(f"sample_weight must be a 1-D tensor of length {n}")
    rows = torch.cat([X_train.to(device=device), X_add.to(device=device, dtype=X_train.dtype)])
    labels = torch.cat(
        [
            y_train.to(device=device, dtype=torch.float64),
            y_add.to(device=device, dtype=torch.float64),
        ]
    )
    u_f, u_l, gap, _, _, y_all, _ = _row_directions(
        model,
        rows,
        labels,
        X_eval,
        y_eval,
        a_eval,
        sample_weight=torch.cat([weights, weights.new_zeros(k)]),
        params=params,
        damping=damping,
        cg_iters=cg_iters,
        cg_tol=cg_tol,
        curvature=curvature,
        criterion=criterion,
    )
    with _eval_mode(model), torch.no_grad():
        logits = model(X_add.to(device=device, dtype=dtype)).reshape(-1).to(torch.float64)
    coef = -(torch.sigmoid(logits) - y_all[n:]) / (n + 1)
    delta_f = coef * u_f[n:]
    delta_l = coef * u_l[n:]
    _require_finite(delta_f, "fairness influence")
    _require_finite(delta_l, "loss influence")
    return AdditionInfluence(delta_fairness=delta_f, delta_loss=delta_l, fairness=abs(gap))


def _row_directions(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_eval: torch.Tensor,
    y_eval: torch.Tensor,
    a_eval: torch.Tensor,
    *,
    sample_weight: torch.Tensor | None,
    params: InfluenceParams,
    damping: float,
    cg_iters: int,
    cg_tol: float,
    curvature: Curvature,
    criterion: str = "parity",
) -> tuple[torch.Tensor, torch.Tensor, float, str, float | None, torch.Tensor, torch.Tensor]:
    """Validate the inputs and solve for ``u[j] = <grad f(x_j), H^-1 grad F>`` (and L_U).

    Returns ``(u_F, u_L, D, curvature_used, cg_residual, y_train, w_norm)`` with D the signed
    gap on the evaluation rows and the labels and normalised weights as float64 tensors.
    """
    if params not in ("last", "all"):
        raise ValueError(f"params must be 'last' or 'all', got {params!r}")
    if not (math.isfinite(damping) and damping >= 0.0):
        raise ValueError(f"damping must be a finite number >= 0, got {damping}")
    if curvature not in ("auto", "hessian", "gauss-newton"):
        raise ValueError(
            f"curvature must be 'auto', 'hessian' or 'gauss-newton', got {curvature!r}"
        )
    if cg_iters < 1:
        raise ValueError(f"cg_iters must be >= 1, got {cg_iters}")
    if not (math.isfinite(cg_tol) and cg_tol >= 0.0):
        raise ValueError(f"cg_tol must be a finite number >= 0, got {cg_tol}")

    device, _ = _model_device_dtype(model)
    n = _check_features(X_train, "X_train")
    m = _check_features(X_eval, "X_eval")
    if X_eval.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_eval has {X_eval.shape[1]} columns but X_train has {X_train.shape[1]}")
    y_tr = _binary_vector(y_train, n, "y_train", device)
    y_ev = _binary_vector(y_eval, m, "y_eval", device)
    w_norm = _normalised_weights(sample_weight, n, device)
    c = _gap_coefficients(model, X_eval, y_ev, a_eval, m, criterion, device)

    with _eval_mode(model), torch.no_grad():
        if params == "last":
            u_f, u_l, gap = _flip_last_layer(
                model, X_train, w_norm, X_eval, y_ev, c, damping=damping
            )
            # BCE's logit is linear in the last layer, so its Hessian is exact and solved
            # directly.
            return u_f, u_l, gap, "hessian", None, y_tr, w_norm
        u_f, u_l, gap, used, residual = _flip_all_params(
            model,
            X_train,
            y_tr,
            w_norm,
            X_eval,
            y_ev,
            c,
            damping=damping,
            curvature=curvature,
            cg_iters=cg_iters,
            cg_tol=cg_tol,
        )
        return u_f, u_l, gap, used, residual, y_tr, w_norm


def compute_augment_influence(
    model: nn.Module,
    X_adv: torch.Tensor,
    y_adv: torch.Tensor,
    *,
    params: InfluenceParams = "last",
) -> torch.Tensor:
    """Accuracy influence of adding each candidate adversarial row (eq. 22).

    Returns ``||grad_theta BCE(f(x~_j), y_j)||_2`` per row as a float64 tensor of shape
    ``(n,)`` on the model's device; FRoC-PRE augments with the rows of the smallest values
    (Algorithm 1, line 21). With ``params="last"`` theta is the last ``nn.Linear`` (weight and
    bias) and the norm has the closed form ``|p_j - y_j| * ||[phi(x~_j), 1]||``; with
    ``params="all"`` it covers every parameter and is computed with batched per-row
    gradients (``vmap`` over ``grad``, in the model's dtype) in chunks that bound memory.

    Raises:
        ValueError: on malformed inputs or a model without a usable last ``nn.Linear``.
    """
    if params not in ("last", "all"):
        raise ValueError(f"params must be 'last' or 'all', got {params!r}")
    device, _ = _model_device_dtype(model)
    n = _check_features(X_adv, "X_adv")
    y = _binary_vector(y_adv, n, "y_adv", device)
    with _eval_mode(model), torch.no_grad():
        if params == "last":
            design = _LastLayerDesign.capture(model, _last_linear(model), X_adv)
            norms = (torch.sigmoid(design.logits) - y).abs() * design.row_norms()
        else:
            norms = _per_row_grad_norm_all(model, X_adv, y)
        _require_finite(norms, "influence")
        return norms


# --------------------------------------------------------------------------------------------
# last-layer closed form


def _flip_last_layer(
    model: nn.Module,
    X_train: torch.Tensor,
    w_norm: torch.Tensor,
    X_eval: torch.Tensor,
    y_ev: torch.Tensor,
    c: torch.Tensor,
    *,
    damping: float,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Row inner products with ``H^-1 grad F`` and ``H^-1 grad L_U`` for the last layer.

    Returns ``(u_F, u_L, D)`` with ``u[j] = <z_j, H^-1 grad>`` and D the signed gap.
    """
    last = _last_linear(model)
    train = _LastLayerDesign.capture(model, last, X_train)
    evals = _LastLayerDesign.capture(model, last, X_eval)
    p_tr = torch.sigmoid(train.logits)
    p_ev = torch.sigmoid(evals.logits)
    # BCE's Hessian in the logit is p(1-p); the logit is linear in (weight, bias).
    hessian = train.gram(w_norm * p_tr * (1.0 - p_tr))
    hessian.diagonal().add_(damping)
    gap = float((c * p_ev).sum().item())
    # grad |D| = sign(D) grad D; at D == 0 exactly the bias cannot be lowered to first order.
    sign = math.copysign(1.0, gap) if gap != 0.0 else 0.0
    grad_f = sign * evals.t_matvec(c * p_ev * (1.0 - p_ev))
    grad_l = evals.t_matvec(p_ev - y_ev) / y_ev.numel()
    rhs = torch.stack([grad_f, grad_l], dim=1)
    chol, info = torch.linalg.cholesky_ex(hessian)
    if int(info.item()) != 0:
        raise ValueError(
            f"last-layer Hessian is not positive definite; increase damping (currently {damping})"
        )
    u = train.matmul(torch.cholesky_solve(rhs, chol))
    return u[:, 0], u[:, 1], gap


@dataclass(frozen=True)
class _LastLayerDesign:
    """Rows ``z = [phi(x), 1]`` of the last layer's design matrix, kept as phi plus a flag.

    The constant bias column is handled in each product instead of being concatenated,
    which would copy the whole (n, h) matrix for nothing. All tensors are float64.
    """

    phi: torch.Tensor
    has_bias: bool
    logits: torch.Tensor

    @classmethod
    def capture(cls, model: nn.Module, last: nn.Linear, X: torch.Tensor) -> _LastLayerDesign:
        """Run the model once and capture ``phi(x)``, the input of ``last``, with a hook.

        The logits are recomputed in float64 from ``phi`` after checking that they are what
        the model itself outputs: the closed form is only valid if the last ``nn.Linear``
        produces the logit. The hook is removed before returning.
        """
        device, dtype = _model_device_dtype(model)
        captured: list[tuple[torch.Tensor, torch.Tensor]] = []

        def hook(
            _module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> None:
            captured.append((inputs[0].detach(), output.detach()))

        handle = last.register_forward_hook(hook)
        try:
            out = model(X.to(device=device, dtype=dtype))
        finally:
            handle.remove()
        n = X.shape[0]
        if len(captured) != 1:
            raise ValueError(
                f"the last nn.Linear ran {len(captured)} times in one forward pass; expected once"
            )
        phi, layer_out = captured[0]
        if not isinstance(out, torch.Tensor) or out.numel() != n or layer_out.numel() != n:
            raise ValueError(
                "the model must map (n, d) features to n logits from its last nn.Linear"
            )
        same = torch.allclose(out.reshape(-1), layer_out.reshape(-1), 1e-5, 1e-6, equal_nan=True)
        if not same:
            raise ValueError("the model's output is not the output of its last nn.Linear")
        phi64 = phi.reshape(n, -1).to(torch.float64)
        logits = phi64 @ last.weight.detach().to(torch.float64).reshape(-1)
        if last.bias is not None:
            logits = logits + last.bias.detach().to(torch.float64).reshape(())
        _require_finite(logits, "model output")
        return cls(phi=phi64, has_bias=last.bias is not None, logits=logits)

    def t_matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``Z^T v`` for a vector v of shape (n,)."""
        out = self.phi.T @ v
        return torch.cat([out, v.sum().reshape(1)]) if self.has_bias else out

    def matmul(self, m: torch.Tensor) -> torch.Tensor:
        """``Z M`` for a matrix M of shape (k, r), k the number of last-layer parameters."""
        h = self.phi.shape[1]
        out = self.phi @ m[:h]
        return out + m[h] if self.has_bias else out

    def gram(self, c: torch.Tensor) -> torch.Tensor:
        """``Z^T diag(c) Z`` (k, k) for non-negative row weights c of shape (n,)."""
        weighted = self.phi * c[:, None]
        block = self.phi.T @ weighted
        if not self.has_bias:
            return block
        col = weighted.sum(dim=0)
        top = torch.cat([block, col[:, None]], dim=1)
        bottom = torch.cat([col, c.sum().reshape(1)]).reshape(1, -1)
        return torch.cat([top, bottom], dim=0)

    def row_norms(self) -> torch.Tensor:
        """``||z_j||`` per row."""
        sq = self.phi.square().sum(dim=1)
        return (sq + 1.0 if self.has_bias else sq).sqrt()


def _last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` in ``model.modules()`` order; it must have one output."""
    last: nn.Linear | None = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError("params='last' needs a model containing an nn.Linear layer")
    if last.out_features != 1:
        raise ValueError(
            f"the last nn.Linear must have out_features=1 (one logit), got {last.out_features}"
        )
    return last


# --------------------------------------------------------------------------------------------
# all-parameter path


class _Functional:
    """The model as a function of one flat parameter vector of one dtype (for torch.func)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float64) -> None:
        self.model = model
        named = list(model.named_parameters())
        if not named:
            raise ValueError("the model has no parameters")
        self.names = [name for name, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.theta = torch.cat([p.detach().reshape(-1).to(dtype) for _, p in named])
        # Buffers are passed explicitly so that floating ones match the parameters' dtype.
        self.buffers = {
            name: b.detach().to(dtype) if b.is_floating_point() else b.detach()
            for name, b in model.named_buffers()
        }

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split the flat vector into named views with the parameters' shapes."""
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = shape.numel()
            out[name] = theta[start : start + size].view(shape)
            start += size
        return out

    def logits(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Logits ``(n,)`` of rows X (theta's dtype, on the model's device) at theta."""
        out = functional_call(self.model, {**self.buffers, **self.unflatten(theta)}, (X,))
        if not isinstance(out, torch.Tensor) or out.numel() != X.shape[0]:
            raise ValueError("the model must map (n, d) features to n logits")
        return out.reshape(-1)


class _NonPositiveCurvature(Exception):
    """Internal: CG met a direction p with ``p^T A p <= 0`` (A is not positive definite)."""


def _flip_all_params(
    model: nn.Module,
    X_train: torch.Tensor,
    y_tr: torch.Tensor,
    w_norm: torch.Tensor,
    X_eval: torch.Tensor,
    y_ev: torch.Tensor,
    c: torch.Tensor,
    *,
    damping: float,
    curvature: Curvature,
    cg_iters: int,
    cg_tol: float,
) -> tuple[torch.Tensor, torch.Tensor, float, str, float]:
    """Row inner products with ``H^-1 grad F`` and ``H^-1 grad L_U`` over all parameters.

    The Hessian of a network is the Gauss-Newton term
    ``G = sum_i (w_i/W) p_i (1 - p_i) grad f(x_i) grad f(x_i)^T`` plus
    ``sum_i (w_i/W)(p_i - y_i) grad^2 f(x_i)``. ReLU kills the curvature within a layer but
    products of consecutive weight matrices still give non-zero cross terms, and a surrogate
    trained for a fixed number of epochs is rarely at an exact minimum, so the second term
    can make H indefinite even after damping. CG detects this as a search direction of
    non-positive curvature; continuing, or returning the iterate reached so far, gives
    arbitrarily wrong answers (observed on a 1x128 ReLU MLP trained with Adam: residuals
    larger than the right-hand side). ``"auto"`` then re-solves with the damped G, which is
    positive definite by construction and is the usual influence-function curvature for
    networks not trained to convergence; :attr:`FlipInfluence.curvature` records which one
    was used. On a logistic regression G equals the Hessian. CG stops on ``cg_tol`` or after
    ``cg_iters``; the achieved residual is :attr:`FlipInfluence.cg_residual` (a partial CG
    solution is still the best approximation in its Krylov space, good enough to rank rows).

    Returns ``(u_F, u_L, D, curvature_used, cg_residual)``.
    """
    device, _ = _model_device_dtype(model)
    fn = _Functional(model)
    x_tr = X_train.to(device=device, dtype=torch.float64)
    x_ev = X_eval.to(device=device, dtype=torch.float64)
    theta = fn.theta

    def signed_gap(t: torch.Tensor) -> torch.Tensor:
        return (c * torch.sigmoid(fn.logits(t, x_ev))).sum()

    def eval_loss(t: torch.Tensor) -> torch.Tensor:
        return nnf.binary_cross_entropy_with_logits(fn.logits(t, x_ev), y_ev)

    gap = float(signed_gap(theta).item())
    # torch.func.grad ignores the surrounding no_grad, so these stay graph-free.
    sign = math.copysign(1.0, gap) if gap != 0.0 else 0.0
    grad_f = sign * grad(signed_gap)(theta)
    grad_l = grad(eval_loss)(theta)
    products = _TrainingCurvature(fn, x_tr, y_tr, w_norm, damping)

    def solve_both(
        matvec: Callable[[torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        v_f, res_f = _conjugate_gradient(matvec, grad_f, max_iter=cg_iters, rtol=cg_tol)
        v_l, res_l = _conjugate_gradient(matvec, grad_l, max_iter=cg_iters, rtol=cg_tol)
        return v_f, v_l, max(res_f, res_l)

    if curvature == "gauss-newton":
        used = "gauss-newton"
        v_f, v_l, residual = solve_both(products.gauss_newton())
    else:
        try:
            used = "hessian"
            v_f, v_l, residual = solve_both(products.hessian())
        except _NonPositiveCurvature:
            if curvature == "hessian":
                raise ValueError(
                    "the damped Hessian is not positive definite (the model is not at a "
                    "minimum of its training loss, or damping is too small); increase damping "
                    "or use curvature='gauss-newton'"
                ) from None
            used = "gauss-newton"
            v_f, v_l, residual = solve_both(products.gauss_newton())

    def row_products(v: torch.Tensor) -> torch.Tensor:
        # <grad_theta f(x_j), v> for every row at once: one forward-mode JVP of the logits.
        return _jvp(lambda t: fn.logits(t, x_tr), theta, v)

    return row_products(v_f), row_products(v_l), gap, used, residual


class _TrainingCurvature:
    """Damped curvature-vector products of the weighted training loss at ``fn.theta``.

    The training logits are built once with a graph (and, per curvature, one derived graph);
    each curvature product is then one or two backward passes through it, cheaper than
    recomputing a forward-over-reverse product from scratch at every CG iteration.
    """

    def __init__(
        self,
        fn: _Functional,
        x_tr: torch.Tensor,
        y_tr: torch.Tensor,
        w_norm: torch.Tensor,
        damping: float,
    ) -> None:
        self.y_tr = y_tr
        self.w_norm = w_norm
        self.damping = damping
        with torch.enable_grad():
            self.theta = fn.theta.clone().requires_grad_(True)
            self.logits = fn.logits(self.theta, x_tr)

    @staticmethod
    def _backward(out: torch.Tensor, wrt: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if not out.requires_grad:  # the output does not depend on wrt at all
            return torch.zeros_like(wrt)
        with torch.enable_grad():
            (res,) = torch.autograd.grad(out, wrt, v, retain_graph=True)
        return res.detach()

    def hessian(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v -> (H + damping I) v`` with H the Hessian of the weighted mean BCE."""
        with torch.enable_grad():
            losses = nnf.binary_cross_entropy_with_logits(self.logits, self.y_tr, reduction="none")
            (train_grad,) = torch.autograd.grad(
                (self.w_norm * losses).sum(), self.theta, create_graph=True
            )
        return lambda v: self._backward(train_grad, self.theta, v) + self.damping * v

    def gauss_newton(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v -> (G + damping I) v`` with ``G = J^T diag(w p (1-p) / W) J``.

        G is the Hessian without the (p - y) grad^2 f term, positive semi-definite by
        construction. J v comes from the cached graph too: J^T u is linear in u, so
        differentiating the graph of J^T u (built once, for a dummy u) with respect to u along
        v gives J v without the fresh forward pass a forward-mode JVP would need.
        """
        p = torch.sigmoid(self.logits.detach())
        gn_weight = self.w_norm * p * (1.0 - p)
        with torch.enable_grad():
            u_dummy = torch.zeros_like(self.logits, requires_grad=True)
            (jt_u,) = torch.autograd.grad(self.logits, self.theta, u_dummy, create_graph=True)

        def product(v: torch.Tensor) -> torch.Tensor:
            jv = self._backward(jt_u, u_dummy, v)
            return self._backward(self.logits, self.theta, gn_weight * jv) + self.damping * v

        return product


def _jvp(
    f: Callable[[torch.Tensor], torch.Tensor], primal: torch.Tensor, tangent: torch.Tensor
) -> torch.Tensor:
    """Forward-mode directional derivative of f at primal along tangent."""
    # The first forward-mode call makes torch script-compile its JVP decompositions, which
    # emits a torch-internal DeprecationWarning that says nothing about this code.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*torch\.jit\.script.*", DeprecationWarning)
        # jvp returns (primal output, tangent output); only the tangent is needed.
        out: torch.Tensor = jvp(f, (primal,), (tangent,))[1]
    return out


def _conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    max_iter: int,
    rtol: float,
) -> tuple[torch.Tensor, float]:
    """Approximately solve ``A x = b`` for a symmetric A given as a matrix-vector product.

    Stops when ``||r|| <= rtol ||b||`` or after ``max_iter`` iterations and returns the
    iterate with its relative residual ``||r|| / ||b||`` (CG's recursively updated one).
    Raises :class:`_NonPositiveCurvature` when a search direction has ``p^T A p <= 0``: A is
    then not positive definite, ``A^-1 b`` is not the minimiser influence functions assume,
    and the iterates can be arbitrarily wrong (steps along near-zero curvature blow up).
    """
    x = torch.zeros_like(b)
    b_norm = float(torch.linalg.vector_norm(b).item())
    if b_norm == 0.0:
        return x, 0.0
    r = b.clone()
    p = r.clone()
    rs = float((r @ r).item())
    for _ in range(max_iter):
        ap = matvec(p)
        curvature = float((p @ ap).item())
        if not curvature > 0.0:
            raise _NonPositiveCurvature
        alpha = rs / curvature
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = float((r @ r).item())
        if math.sqrt(rs_new) <= rtol * b_norm:
            rs = rs_new
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x, math.sqrt(rs) / b_norm


def _per_row_grad_norm_all(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||grad_theta BCE(f(x_j), y_j)||`` over all parameters, per row, in chunks (eq. 22).

    Runs in the model's own dtype: a norm is well conditioned, and materialising per-row
    gradients is memory bound, so float32 models get float32 speed. Returns float64.
    """
    device, dtype = _model_device_dtype(model)
    fn = _Functional(model, dtype)
    x = X.to(device=device, dtype=dtype)
    y = y.to(dtype)
    n = x.shape[0]
    params = fn.unflatten(fn.theta)

    def row_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logit = functional_call(fn.model, {**fn.buffers, **p}, (xi.unsqueeze(0),))
        return nnf.binary_cross_entropy_with_logits(logit.reshape(()), yi)

    # Check the output shape on a normal batched call first: inside vmap a wrong shape would
    # surface as an obscure reshape error.
    fn.logits(fn.theta, x[:1])
    per_row = vmap(grad(row_loss), in_dims=(None, 0, 0))
    chunk = max(1, _PER_SAMPLE_GRAD_BUDGET // fn.theta.numel())
    norms = torch.empty(n, dtype=torch.float64, device=device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        grads = per_row(params, x[start:stop], y[start:stop])
        # Norm of the per-layer norms = norm over all parameters; vector_norm avoids
        # materialising the squared gradients.
        per_tensor = [
            torch.linalg.vector_norm(g.reshape(stop - start, -1), dim=1) for g in grads.values()
        ]
        norms[start:stop] = torch.linalg.vector_norm(torch.stack(per_tensor), dim=0).to(
            torch.float64
        )
    return norms


# --------------------------------------------------------------------------------------------
# validation and model state


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the model's first parameter (the model must have parameters)."""
    for p in model.parameters():
        return p.device, p.dtype
    raise ValueError("the model has no parameters")


def _require_finite(t: torch.Tensor, what: str) -> None:
    """Raise if t holds NaN or infinity.

    Checking the model's outputs and results instead of every input feature costs one pass
    over n values rather than n * d, and still catches non-finite features, which propagate.
    """
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{what} contains NaN or infinite values; check the inputs and model")


def _check_features(X: torch.Tensor, name: str) -> int:
    """Validate a 2-D, non-empty, floating-point feature matrix; return its number of rows."""
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor (n, d)")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if not X.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {X.dtype}")
    return int(X.shape[0])


def _gap_coefficients(
    model: nn.Module,
    X_eval: torch.Tensor,
    y_ev: torch.Tensor,
    a_eval: torch.Tensor,
    m: int,
    criterion: str,
    device: torch.device,
) -> torch.Tensor:
    """The c_i of the signed gap D = sum_i c_i sigmoid(f(x_i)) whose gradient is F's."""
    if criterion == "parity" and bool(((a_eval == 0) | (a_eval == 1)).all()):
        a_ev = _binary_vector(a_eval, m, "a_eval", device)
        n_protected = int((a_ev == 0).sum().item())
        if n_protected == 0 or n_protected == m:
            raise ValueError("a_eval must contain rows of both groups (a=0 and a=1)")
        # D = mean_{a=0} p - mean_{a=1} p (the c_i of eq. 14).
        return torch.where(a_ev == 0, 1.0 / n_protected, -1.0 / (m - n_protected))
    if not isinstance(a_eval, torch.Tensor) or a_eval.ndim != 1 or a_eval.shape[0] != m:
        raise ValueError(f"a_eval must be a 1-D tensor of length {m}")
    codes = a_eval.detach().cpu().numpy()
    if not (np.equal(np.mod(codes, 1), 0).all() and (codes >= -1).all()):
        raise ValueError("a_eval must hold group codes 0, 1, ... (and -1 for rows not judged)")
    if len(np.unique(codes[codes >= 0])) < 2:
        raise ValueError("a_eval must contain rows of at least two judged groups")
    with _eval_mode(model), torch.no_grad():
        _, dtype = _model_device_dtype(model)
        probs = torch.sigmoid(model(X_eval.to(device=device, dtype=dtype)).reshape(-1))
    c = gap_coefficients(probs.double().cpu().numpy(), y_ev.cpu().numpy(), codes, criterion)
    return torch.as_tensor(c, dtype=torch.float64, device=device)


def _binary_vector(v: torch.Tensor, n: int, name: str, device: torch.device) -> torch.Tensor:
    """Validate a length-n vector of 0/1 values (bool or numeric); return it as float64."""
    if not isinstance(v, torch.Tensor) or v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D tensor of length {n}")
    out = v.to(device=device, dtype=torch.float64)
    if not bool(((out == 0) | (out == 1)).all()):
        raise ValueError(f"{name} must contain only 0 and 1")
    return out


def _normalised_weights(
    sample_weight: torch.Tensor | None, n: int, device: torch.device
) -> torch.Tensor:
    """Training weights divided by their sum (``w_i / W``; ``1/n`` when none are given)."""
    if sample_weight is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
    if not isinstance(sample_weight, torch.Tensor) or sample_weight.ndim != 1:
        raise ValueError(f"sample_weight must be a 1-D tensor of length {n}")
    if sample_weight.shape[0] != n:
        raise ValueError(f"sample_weight must be a 1-D tensor of length {n}")
    w = sample_weight.to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("sample_weight must be finite and non-negative")
    total = float(w.sum().item())
    if total <= 0.0:
        raise ValueError("sample_weight must have a positive sum")
    return w / total


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode and restore each one's previous flag afterwards.

    Influence is a property of the deterministic predictor (no dropout noise, batch-norm
    running statistics rather than batch statistics).
    """
    previous = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in previous:
            module.training = training
