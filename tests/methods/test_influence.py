"""Tests of the FRoC-PRE influence estimates (paper Section 6, eqs. 17-22).

The flip-influence tests compare the first-order predictions against the ground truth they
approximate: flip one label, retrain from the same optimum to convergence, and measure the
actual change of the soft bias score F (eq. 13) on a validation set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf
from torch import nn

from froc_cli.methods import (
    Curvature,
    FlipInfluence,
    InfluenceParams,
    compute_addition_influence,
    compute_augment_influence,
    compute_flip_influence,
    fairness_accuracy_score,
)

DAMPING = 1e-2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------------
# helpers


class _Problem:
    """A small tabular problem with a planted bias: group a=1 has higher x0 and more y=1."""

    def __init__(self, seed: int, n_train: int = 200, n_eval: int = 400, d: int = 4) -> None:
        rng = np.random.default_rng(seed)
        self.X, self.y, self.a = self._draw(rng, n_train, d)
        self.X_eval, self.y_eval, self.a_eval = self._draw(rng, n_eval, d)

    @staticmethod
    def _draw(
        rng: np.random.Generator, n: int, d: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = (rng.random(n) < 0.5).astype(np.float64)
        X = rng.normal(size=(n, d))
        X[:, 0] += 1.5 * a  # the protected attribute leaks through feature 0
        logit = 1.2 * X[:, 0] + 0.8 * X[:, 1] - 0.5 * X[:, 2] + 0.6 * a - 0.7
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
        # Features are float32 by the engine's convention; y and a are 0./1. floats.
        return (
            torch.tensor(X, dtype=torch.float32),
            torch.tensor(y, dtype=torch.float32),
            torch.tensor(a, dtype=torch.float32),
        )


def _logistic(d: int, seed: int) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 1), nn.Flatten(0)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def _mlp(
    d: int,
    hidden: int,
    seed: int,
    dtype: torch.dtype = torch.float64,
    activation: nn.Module | None = None,
) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    act = nn.ReLU() if activation is None else activation
    model = nn.Sequential(nn.Linear(d, hidden), act, nn.Linear(hidden, 1), nn.Flatten(0)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            scale = 1.0 / np.sqrt(p.shape[-1]) if p.ndim == 2 else 0.1
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=dtype))
    return model


def _fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    params: Sequence[nn.Parameter],
    weight: torch.Tensor | None = None,
    l2: float = DAMPING,
    max_iter: int = 2000,
) -> None:
    """Minimise weighted-mean BCE + l2/2 ||params||^2 over ``params`` to high precision.

    The L2 term's Hessian is exactly the damping the influence code adds, so the influence
    approximation is evaluated against the objective it models.
    """
    x64, y64 = X.double(), y.double()
    w = torch.ones_like(y64) if weight is None else weight.double()
    opt = torch.optim.LBFGS(
        list(params),
        lr=1.0,
        max_iter=max_iter,
        history_size=50,
        tolerance_grad=1e-11,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        losses = nnf.binary_cross_entropy_with_logits(model(x64), y64, reduction="none")
        loss = (w * losses).sum() / w.sum()
        loss = loss + 0.5 * l2 * sum(p.square().sum() for p in params)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]


def _bias(model: nn.Module, X: torch.Tensor, a: torch.Tensor) -> float:
    """Soft bias score F of eq. 13 (statistical-parity gap of the mean posteriors)."""
    with torch.no_grad():
        p = torch.sigmoid(model(X.double()))
    return float((p[a == 0].mean() - p[a == 1].mean()).abs())


def _actual_changes(
    model: nn.Module,
    prob: _Problem,
    rows: Sequence[int],
    trainable: str,
    weight: torch.Tensor | None = None,
    max_iter: int = 2000,
) -> np.ndarray:
    """Change of F on the eval set after flipping each row's label and retraining."""
    base = _bias(model, prob.X_eval, prob.a_eval)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = []
    for j in rows:
        model.load_state_dict(state)  # retrain from the same optimum
        y_flip = prob.y.clone()
        y_flip[j] = 1.0 - y_flip[j]
        params = list(model.parameters())
        if trainable == "last":
            params = list(_last(model).parameters())
        _fit(model, prob.X, y_flip, params, weight, max_iter=max_iter)
        out.append(_bias(model, prob.X_eval, prob.a_eval) - base)
    model.load_state_dict(state)
    return np.array(out)


def _last(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def _pick_rows(pred: torch.Tensor, seed: int, n_top: int = 5, n_bottom: int = 3) -> list[int]:
    """The top predicted bias-reducing rows, a few bias-increasing ones, and random others."""
    order = torch.argsort(pred).tolist()
    rows = order[:n_top] + order[-n_bottom:]
    rng = np.random.default_rng(seed)
    others = [int(i) for i in rng.permutation(len(pred)) if int(i) not in rows]
    return rows + others[: 15 - len(rows)]


def _spearman(u: np.ndarray, v: np.ndarray) -> float:
    ru = np.argsort(np.argsort(u))
    rv = np.argsort(np.argsort(v))
    return float(np.corrcoef(ru, rv)[0, 1])


def _paper_literal_if(model: nn.Module, prob: _Problem) -> torch.Tensor:
    """The paper's printed I_F (eqs. 17-19), by brute-force autograd, for a logistic model.

    ``I_theta = -H^-1 [grad L(x, 1-y) - grad L(x, y)]``, ``I_f = -grad F``,
    ``I_F = I_f . I_theta``.
    """
    lin = _last(model)
    theta0 = torch.cat([lin.weight.detach().reshape(-1), lin.bias.detach()])
    x, y = prob.X.double(), prob.y.double()
    xe, ae = prob.X_eval.double(), prob.a_eval.double()

    def logits(theta: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return xx @ theta[:-1] + theta[-1]

    def train_obj(theta: torch.Tensor) -> torch.Tensor:
        loss = nnf.binary_cross_entropy_with_logits(logits(theta, x), y)
        return loss + 0.5 * DAMPING * theta.square().sum()

    def bias(theta: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits(theta, xe))
        return (p[ae == 0].mean() - p[ae == 1].mean()).abs()

    hessian = torch.autograd.functional.hessian(train_obj, theta0)  # type: ignore[no-untyped-call]
    grad_bias = torch.autograd.functional.jacobian(bias, theta0)  # type: ignore[no-untyped-call]
    scores = []

    def row_grad(xj: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        theta = theta0.clone().requires_grad_(True)
        loss = nnf.binary_cross_entropy_with_logits(logits(theta, xj), label)
        return torch.autograd.grad(loss, theta)[0]

    for j in range(x.shape[0]):
        g = row_grad(x[j : j + 1], y[j : j + 1])
        g_flip = row_grad(x[j : j + 1], 1.0 - y[j : j + 1])
        i_theta = -torch.linalg.solve(hessian, g_flip - g)  # eq. 17
        i_f = -grad_bias  # eq. 18
        scores.append(i_f @ i_theta)  # eq. 19
    return torch.stack(scores)


@pytest.fixture(scope="module")
def problem() -> _Problem:
    return _Problem(seed=7)


@pytest.fixture(scope="module")
def logistic(problem: _Problem) -> nn.Sequential:
    model = _logistic(problem.X.shape[1], seed=1)
    _fit(model, problem.X, problem.y, list(model.parameters()))
    return model


@pytest.fixture(scope="module")
def mlp(problem: _Problem) -> nn.Sequential:
    model = _mlp(problem.X.shape[1], hidden=8, seed=3)
    _fit(model, problem.X, problem.y, list(model.parameters()))
    return model


def _flip(model: nn.Module, prob: _Problem, **kwargs: object) -> FlipInfluence:
    return compute_flip_influence(
        model,
        prob.X,
        prob.y,
        prob.X_eval,
        prob.y_eval,
        prob.a_eval,
        damping=DAMPING,
        **kwargs,  # type: ignore[arg-type]
    )


def _check_against_retraining(
    pred_all: torch.Tensor, actual: np.ndarray, rows: list[int], min_corr: float
) -> None:
    pred = pred_all[rows].cpu().numpy()
    assert np.corrcoef(pred, actual)[0, 1] > min_corr
    assert _spearman(pred, actual) > min_corr - 0.1
    clear = np.abs(actual) > 0.1 * np.abs(actual).max()
    assert clear.sum() >= 8
    assert np.all(np.sign(pred[clear]) == np.sign(actual[clear]))
    # rows[0] is the top predicted bias reducer: it must be among the top 3 actual reducers.
    assert 0 in np.argsort(actual)[:3]
    # The top picks do lower the bias for real.
    assert np.all(actual[:5] < 0)


# --------------------------------------------------------------------------------------------
# addition influence vs retraining


def _actual_addition_changes(
    model: nn.Module, prob: _Problem, X_add: torch.Tensor, y_add: torch.Tensor, trainable: str
) -> np.ndarray:
    """Change of F on the eval set after adding each candidate row and retraining."""
    base = _bias(model, prob.X_eval, prob.a_eval)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = []
    for j in range(len(y_add)):
        model.load_state_dict(state)
        params = list(model.parameters()) if trainable == "all" else list(_last(model).parameters())
        X = torch.cat([prob.X, X_add[j : j + 1]])
        y = torch.cat([prob.y, y_add[j : j + 1]])
        _fit(model, X, y, params)
        out.append(_bias(model, prob.X_eval, prob.a_eval) - base)
    model.load_state_dict(state)
    return np.array(out)


@pytest.mark.parametrize(("kind", "params"), [("logistic", "all"), ("mlp", "last")])
def test_addition_influence_matches_retraining(
    problem: _Problem,
    logistic: nn.Sequential,
    mlp: nn.Sequential,
    kind: str,
    params: InfluenceParams,
) -> None:
    model = logistic if kind == "logistic" else mlp
    # Candidates: evaluation rows (some with labels the model gets wrong, which move it most).
    X_add, y_add = problem.X_eval[:15], problem.y_eval[:15]
    infl = compute_addition_influence(
        model,
        problem.X,
        problem.y,
        X_add,
        y_add,
        problem.X_eval,
        problem.y_eval,
        problem.a_eval,
        params=params,
        damping=DAMPING,
    )
    assert infl.fairness == pytest.approx(_bias(model, problem.X_eval, problem.a_eval), rel=1e-6)
    actual = _actual_addition_changes(
        model, problem, X_add, y_add, trainable="all" if params == "all" else "last"
    )
    pred = infl.delta_fairness.cpu().numpy()
    assert np.corrcoef(pred, actual)[0, 1] > 0.95
    clear = np.abs(actual) > 0.1 * np.abs(actual).max()
    assert clear.sum() >= 5
    assert np.all(np.sign(pred[clear]) == np.sign(actual[clear]))


def test_addition_influence_of_a_training_duplicate_scales_the_flip_influence(
    problem: _Problem, logistic: nn.Sequential
) -> None:
    # Closed form: duplicating row j adds (p_j - y_j) grad f(x_j) / (n + 1) to the gradient;
    # flipping it adds (2 y_j - 1) grad f(x_j) / n. Both move theta along -H^-1 grad f(x_j), so
    # the two predictions differ by the factor (p_j - y_j) n / ((2 y_j - 1)(n + 1)).
    flip = _flip(logistic, problem, params="last")
    rows = [0, 1, 2, 3, 4]
    X_add, y_add = problem.X[rows], problem.y[rows]
    add = compute_addition_influence(
        logistic,
        problem.X,
        problem.y,
        X_add,
        y_add,
        problem.X_eval,
        problem.y_eval,
        problem.a_eval,
        damping=DAMPING,
    )
    n = len(problem.y)
    with torch.no_grad():
        p = torch.sigmoid(logistic(X_add.double()))
    y = y_add.double()
    factor = (p - y) * n / ((2 * y - 1) * (n + 1))
    expected = flip.delta_fairness[rows] * factor
    assert torch.allclose(add.delta_fairness, expected, rtol=1e-8, atol=1e-14)


# --------------------------------------------------------------------------------------------
# flip influence vs retraining


def test_planted_problem_is_biased(problem: _Problem, logistic: nn.Sequential) -> None:
    assert _bias(logistic, problem.X_eval, problem.a_eval) > 0.15


@pytest.mark.parametrize("params", ["last", "all"])
def test_logistic_flip_influence_matches_retraining(
    problem: _Problem, logistic: nn.Sequential, params: InfluenceParams
) -> None:
    infl = _flip(logistic, problem, params=params)
    rows = _pick_rows(infl.delta_fairness, seed=11)
    actual = _actual_changes(logistic, problem, rows, trainable="all")
    _check_against_retraining(infl.delta_fairness, actual, rows, min_corr=0.95)


def test_weighted_flip_influence_matches_weighted_retraining(problem: _Problem) -> None:
    gen = torch.Generator().manual_seed(5)
    weight = 0.5 + 1.5 * torch.rand(problem.X.shape[0], generator=gen, dtype=torch.float64)
    model = _logistic(problem.X.shape[1], seed=2)
    _fit(model, problem.X, problem.y, list(model.parameters()), weight)
    infl = _flip(model, problem, params="last", sample_weight=weight.float())
    rows = _pick_rows(infl.delta_fairness, seed=12)
    actual = _actual_changes(model, problem, rows, trainable="all", weight=weight)
    _check_against_retraining(infl.delta_fairness, actual, rows, min_corr=0.95)


def test_mlp_last_layer_influence_matches_last_layer_retraining(
    problem: _Problem, mlp: nn.Sequential
) -> None:
    # params="last" models retraining of the last layer on fixed features.
    infl = _flip(mlp, problem, params="last")
    rows = _pick_rows(infl.delta_fairness, seed=13)
    actual = _actual_changes(mlp, problem, rows, trainable="last")
    _check_against_retraining(infl.delta_fairness, actual, rows, min_corr=0.95)


def test_smooth_mlp_all_params_influence_matches_full_retraining(problem: _Problem) -> None:
    # A smooth activation makes the loss twice differentiable, so retraining has a well-defined
    # nearby optimum and the first-order prediction can be checked tightly.
    model = _mlp(problem.X.shape[1], hidden=8, seed=3, activation=nn.Tanh())
    _fit(model, problem.X, problem.y, list(model.parameters()))
    infl = _flip(model, problem, params="all")
    assert infl.curvature == "hessian"  # at a strict minimum "auto" keeps the exact Hessian
    assert infl.cg_residual is not None and infl.cg_residual < 1e-6
    rows = _pick_rows(infl.delta_fairness, seed=14)
    actual = _actual_changes(model, problem, rows, trainable="all")
    _check_against_retraining(infl.delta_fairness, actual, rows, min_corr=0.97)


def test_relu_mlp_all_params_influence_gets_the_clear_rows_right(
    problem: _Problem, mlp: nn.Sequential
) -> None:
    # With ReLU the loss has kinks: L-BFGS stalls near them (the fixture's gradient stays
    # ~1e-3) and never reaches a crisp optimum, so the retraining is capped at 100 iterations
    # and only the rows of the largest predicted effect (the 5 best bias reducers and the
    # 3 worst increasers) are compared, and more loosely than for smooth models. At this
    # stalled point the damped Hessian is indefinite, so "auto" inverts Gauss-Newton.
    infl = _flip(mlp, problem, params="all")
    assert infl.curvature == "gauss-newton"
    rows = _pick_rows(infl.delta_fairness, seed=0)[:8]
    actual = _actual_changes(mlp, problem, rows, trainable="all", max_iter=100)
    pred = infl.delta_fairness[rows].numpy()
    assert np.all(np.sign(pred) == np.sign(actual))
    assert np.corrcoef(pred, actual)[0, 1] > 0.8


def test_paper_literal_sign_picks_the_wrong_rows(
    problem: _Problem, logistic: nn.Sequential
) -> None:
    """Eqs. 18-19 as printed give I_F = -n * Delta-F: the opposite of the bias change."""
    paper = _paper_literal_if(logistic, problem)
    infl = _flip(logistic, problem, params="last")
    n = problem.X.shape[0]
    torch.testing.assert_close(infl.delta_fairness, -paper / n, rtol=1e-6, atol=1e-9)

    rows = _pick_rows(infl.delta_fairness, seed=11)
    actual = _actual_changes(logistic, problem, rows, trainable="all")
    assert np.corrcoef(paper[rows].numpy(), actual)[0, 1] < -0.95
    # The paper's pick (its most negative I_F) actually increases the bias.
    paper_pick = int(torch.argmin(paper))
    assert _actual_changes(logistic, problem, [paper_pick], trainable="all")[0] > 0


def test_delta_loss_matches_retraining(problem: _Problem, logistic: nn.Sequential) -> None:
    infl = _flip(logistic, problem, params="last")
    rows = _pick_rows(infl.delta_loss, seed=15)
    x_ev, y_ev = problem.X_eval.double(), problem.y_eval.double()

    def eval_loss() -> float:
        with torch.no_grad():
            return float(nnf.binary_cross_entropy_with_logits(logistic(x_ev), y_ev))

    base = eval_loss()
    state = {k: v.clone() for k, v in logistic.state_dict().items()}
    actual = []
    for j in rows:
        logistic.load_state_dict(state)
        y_flip = problem.y.clone()
        y_flip[j] = 1.0 - y_flip[j]
        _fit(logistic, problem.X, y_flip, list(logistic.parameters()))
        actual.append(eval_loss() - base)
    logistic.load_state_dict(state)
    assert np.corrcoef(infl.delta_loss[rows].numpy(), np.array(actual))[0, 1] > 0.95


# --------------------------------------------------------------------------------------------
# consistency of the two paths, score and selection


def test_last_and_all_agree_on_logistic_regression(
    problem: _Problem, logistic: nn.Sequential
) -> None:
    last = _flip(logistic, problem, params="last")
    assert last.curvature == "hessian" and last.cg_residual is None
    # On a logistic regression the Gauss-Newton matrix is the Hessian, so all three agree.
    for curvature in ("hessian", "gauss-newton", "auto"):
        full = _flip(logistic, problem, params="all", curvature=curvature)
        assert full.curvature == ("hessian" if curvature == "auto" else curvature)
        for name in ("delta_fairness", "delta_loss", "score"):
            torch.testing.assert_close(
                getattr(full, name), getattr(last, name), rtol=1e-7, atol=1e-12
            )
        assert full.fairness == pytest.approx(last.fairness, rel=1e-12)
    assert last.fairness == pytest.approx(_bias(logistic, problem.X_eval, problem.a_eval))


def _dense_prediction(
    model: nn.Module, prob: _Problem, curvature: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Delta-F, Delta-L) from explicitly built Jacobians and curvature matrices."""
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def logits(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = theta[start : start + shape.numel()].view(shape)
            start += shape.numel()
        out: torch.Tensor = torch.func.functional_call(model, params, (X.double(),))
        return out

    x, y = prob.X.double(), prob.y.double()
    jac = torch.func.jacrev(lambda t: logits(t, x))(theta0)  # (n, P)
    p = torch.sigmoid(logits(theta0, x))
    if curvature == "hessian":

        def train_loss(t: torch.Tensor) -> torch.Tensor:
            return nnf.binary_cross_entropy_with_logits(logits(t, x), y)

        h = torch.func.hessian(train_loss)(theta0)
    else:
        h = jac.T @ (jac * (p * (1 - p))[:, None]) / x.shape[0]
    h = h + DAMPING * torch.eye(theta0.numel(), dtype=torch.float64)

    xe, ye, ae = prob.X_eval.double(), prob.y_eval.double(), prob.a_eval

    def bias(t: torch.Tensor) -> torch.Tensor:
        pe = torch.sigmoid(logits(t, xe))
        return (pe[ae == 0].mean() - pe[ae == 1].mean()).abs()

    def eval_loss(t: torch.Tensor) -> torch.Tensor:
        return nnf.binary_cross_entropy_with_logits(logits(t, xe), ye)

    coef = -(2 * y - 1) / x.shape[0]
    delta_f = coef * (jac @ torch.linalg.solve(h, torch.func.grad(bias)(theta0)))
    delta_l = coef * (jac @ torch.linalg.solve(h, torch.func.grad(eval_loss)(theta0)))
    return delta_f, delta_l


@pytest.mark.parametrize("curvature", ["hessian", "gauss-newton"])
def test_all_params_solve_matches_dense_linear_algebra(
    problem: _Problem, curvature: Curvature
) -> None:
    # A smooth MLP at a minimum, so that its damped Hessian is positive definite.
    model = _mlp(problem.X.shape[1], hidden=5, seed=6, activation=nn.Tanh())
    _fit(model, problem.X, problem.y, list(model.parameters()))
    infl = _flip(model, problem, params="all", curvature=curvature, cg_iters=500, cg_tol=1e-12)
    assert infl.curvature == curvature
    delta_f, delta_l = _dense_prediction(model, problem, curvature)
    for got, want in ((infl.delta_fairness, delta_f), (infl.delta_loss, delta_l)):
        atol = 1e-8 * float(want.abs().max())
        torch.testing.assert_close(got, want, rtol=1e-6, atol=atol)


def test_indefinite_hessian_falls_back_to_gauss_newton(problem: _Problem) -> None:
    # An untrained ReLU MLP is far from a minimum: its damped Hessian is indefinite.
    model = _mlp(problem.X.shape[1], hidden=8, seed=0)
    with pytest.raises(ValueError, match="not positive definite"):
        _flip(model, problem, params="all", curvature="hessian")
    auto = _flip(model, problem, params="all")
    gn = _flip(model, problem, params="all", curvature="gauss-newton")
    assert auto.curvature == "gauss-newton"
    torch.testing.assert_close(auto.delta_fairness, gn.delta_fairness)
    delta_f, _ = _dense_prediction(model, problem, "gauss-newton")
    # cg_iters=50 on 49 unknowns: converged up to rounding.
    assert gn.cg_residual is not None and gn.cg_residual < 1e-4
    assert np.corrcoef(gn.delta_fairness.numpy(), delta_f.numpy())[0, 1] > 0.9999


def test_score_combines_fairness_and_loss_as_documented(
    problem: _Problem, logistic: nn.Sequential
) -> None:
    infl = _flip(logistic, problem)
    scale = float(infl.delta_loss.square().mean().sqrt())
    assert infl.loss_scale == pytest.approx(scale)
    expected = infl.delta_fairness * torch.exp(-infl.delta_loss.abs() / scale)
    torch.testing.assert_close(infl.score, expected)
    picked = infl.select(10)
    assert len(picked) == 10 and bool((infl.delta_fairness[picked] < 0).all())
    assert infl.delta_fairness.dtype == torch.float64
    assert infl.delta_fairness.shape == (problem.X.shape[0],)
    assert not infl.score.requires_grad


def test_uniform_weights_equal_no_weights(problem: _Problem, logistic: nn.Sequential) -> None:
    plain = _flip(logistic, problem)
    weighted = _flip(logistic, problem, sample_weight=torch.full((problem.X.shape[0],), 3.0))
    torch.testing.assert_close(weighted.delta_fairness, plain.delta_fairness)
    torch.testing.assert_close(weighted.delta_loss, plain.delta_loss)


def test_select_returns_most_negative_scores_only() -> None:
    score = torch.tensor([0.3, -0.1, -0.5, 0.0, -0.2, -0.5], dtype=torch.float64)
    infl = FlipInfluence(score, torch.zeros(6), score, fairness=0.2, loss_scale=0.0)
    assert infl.select(3).tolist() == [2, 5, 4]
    assert infl.select(10).tolist() == [2, 5, 4, 1]
    exclude = torch.tensor([False, False, True, False, False, False])
    assert infl.select(2, exclude=exclude).tolist() == [5, 4]
    assert infl.select(0).tolist() == []
    with pytest.raises(ValueError):
        infl.select(-1)
    with pytest.raises(ValueError):
        infl.select(1, exclude=torch.zeros(3, dtype=torch.bool))


def test_model_state_is_left_untouched(problem: _Problem) -> None:
    model = _mlp(problem.X.shape[1], hidden=5, seed=4, dtype=torch.float32)
    model.train()
    model[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for params in ("last", "all"):
        infl = _flip(model, problem, params=params)
        aug = compute_augment_influence(model, problem.X, problem.y, params=params)
        assert not infl.delta_fairness.requires_grad and not aug.requires_grad
    assert model.training and all(m.training for m in model.modules())
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
        assert v.grad is None


# --------------------------------------------------------------------------------------------
# augment influence (eq. 22)


@pytest.mark.parametrize("params", ["last", "all"])
def test_augment_influence_equals_per_row_autograd(
    problem: _Problem, params: InfluenceParams
) -> None:
    model = _mlp(problem.X.shape[1], hidden=6, seed=8, dtype=torch.float32)
    gen = torch.Generator().manual_seed(9)
    X_adv = problem.X + 0.1 * torch.randn(problem.X.shape, generator=gen)
    got = compute_augment_influence(model, X_adv, problem.y, params=params)

    model64 = _mlp(problem.X.shape[1], hidden=6, seed=8, dtype=torch.float64)
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    wrt = list(model64.parameters()) if params == "all" else list(_last(model64).parameters())
    expected = []
    for j in range(X_adv.shape[0]):
        loss = nnf.binary_cross_entropy_with_logits(
            model64(X_adv[j : j + 1].double()), problem.y[j : j + 1].double()
        )
        grads = torch.autograd.grad(loss, wrt)
        expected.append(torch.stack([g.square().sum() for g in grads]).sum().sqrt())
    assert got.dtype == torch.float64 and got.shape == (X_adv.shape[0],)
    # params="last" runs the float32 model itself for phi(x), hence float32-level agreement.
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-7)


def test_augment_influence_all_chunks_consistently(
    problem: _Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    import froc_cli.methods._influence as influence

    model = _mlp(problem.X.shape[1], hidden=6, seed=8, dtype=torch.float32)
    whole = compute_augment_influence(model, problem.X, problem.y, params="all")
    # A tiny budget forces one row per chunk (and a ragged last chunk for other sizes).
    monkeypatch.setattr(influence, "_PER_SAMPLE_GRAD_BUDGET", 7 * 37)
    chunked = compute_augment_influence(model, problem.X, problem.y, params="all")
    torch.testing.assert_close(chunked, whole)


# --------------------------------------------------------------------------------------------
# input validation


class _Scaled(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x


def test_invalid_inputs_raise_value_error(problem: _Problem, logistic: nn.Sequential) -> None:
    p = problem
    base = (p.X, p.y, p.X_eval, p.y_eval, p.a_eval)
    with pytest.raises(ValueError, match="params"):
        compute_flip_influence(logistic, *base, params="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both groups"):
        compute_flip_influence(logistic, p.X, p.y, p.X_eval, p.y_eval, torch.ones_like(p.a_eval))
    with pytest.raises(ValueError, match="0 and 1"):
        compute_flip_influence(logistic, p.X, 0.5 * p.y, p.X_eval, p.y_eval, p.a_eval)
    with pytest.raises(ValueError, match="length"):
        compute_flip_influence(logistic, p.X, p.y[:-1], p.X_eval, p.y_eval, p.a_eval)
    with pytest.raises(ValueError, match="columns"):
        compute_flip_influence(logistic, p.X, p.y, p.X_eval[:, :2], p.y_eval, p.a_eval)
    with pytest.raises(ValueError, match="non-negative"):
        compute_flip_influence(logistic, *base, sample_weight=-torch.ones_like(p.y))
    with pytest.raises(ValueError, match="damping"):
        compute_flip_influence(logistic, *base, damping=-1.0)
    bad_x = p.X.clone()
    bad_x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        compute_flip_influence(logistic, bad_x, p.y, p.X_eval, p.y_eval, p.a_eval)

    two_logits = nn.Sequential(nn.Linear(p.X.shape[1], 2))
    with pytest.raises(ValueError, match="out_features"):
        compute_flip_influence(two_logits, *base)
    scaled = nn.Sequential(nn.Linear(p.X.shape[1], 1), nn.Flatten(0), _Scaled())
    with pytest.raises(ValueError, match="output"):
        compute_augment_influence(scaled, p.X, p.y)
    with pytest.raises(ValueError, match="params"):
        compute_augment_influence(logistic, p.X, p.y, params="first")  # type: ignore[arg-type]


def test_zero_damping_singular_hessian_is_reported(problem: _Problem) -> None:
    # An all-zero feature column makes the last-layer Hessian singular without damping.
    X = torch.cat([problem.X, torch.zeros_like(problem.X[:, :1])], dim=1)
    Xe = torch.cat([problem.X_eval, torch.zeros_like(problem.X_eval[:, :1])], dim=1)
    model = nn.Sequential(nn.Linear(X.shape[1], 1), nn.Flatten(0)).double()
    with pytest.raises(ValueError, match="damping"):
        compute_flip_influence(model, X, problem.y, Xe, problem.y_eval, problem.a_eval, damping=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(problem: _Problem, mlp: nn.Sequential) -> None:
    gpu = _mlp(problem.X.shape[1], hidden=8, seed=3).cuda()
    gpu.load_state_dict(mlp.state_dict())
    for params in ("last", "all"):
        cpu_infl = _flip(mlp, problem, params=params)
        gpu_infl = _flip(gpu, problem, params=params)
        assert gpu_infl.delta_fairness.device.type == "cuda"
        torch.testing.assert_close(gpu_infl.delta_fairness.cpu(), cpu_infl.delta_fairness)
        cpu_aug = compute_augment_influence(mlp, problem.X, problem.y, params=params)
        gpu_aug = compute_augment_influence(gpu, problem.X, problem.y, params=params)
        torch.testing.assert_close(gpu_aug.cpu(), cpu_aug)


def test_eq21_score_is_the_same_on_numpy_and_torch() -> None:
    rng = np.random.default_rng(0)
    delta_f = rng.normal(size=50)
    delta_l = rng.normal(size=50) * 1e-3
    scale = float(np.sqrt(np.mean(delta_l**2)))
    from_numpy = fairness_accuracy_score(delta_f, delta_l, scale)
    from_torch = fairness_accuracy_score(torch.as_tensor(delta_f), torch.as_tensor(delta_l), scale)
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), rtol=1e-15)
    np.testing.assert_array_equal(from_numpy, delta_f * np.exp(-np.abs(delta_l) / scale))
    # No loss change at all: no penalty, and a copy (never the caller's array).
    unscaled = fairness_accuracy_score(delta_f, np.zeros(50), 0.0)
    np.testing.assert_array_equal(unscaled, delta_f)
    assert unscaled is not delta_f
