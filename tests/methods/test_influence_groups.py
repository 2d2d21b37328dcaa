"""Flip influence for many groups and the opportunity / odds criteria (FRoC-PRE, Section 6).

With group codes 0..K-1 (-1: not judged) the soft bias F is the largest gap between two judged
groups' mean probabilities on the criterion's rows (all rows, y = 1, or the worse of y = 1 and
y = 0). Its gradient is that of the active pair, so where a flip leaves that pair in place the
first-order prediction must match retraining. The reference here is independent of froc: a
logistic regression trained to tight convergence with the L2 penalty ``damping/2 ||theta||^2``
(so the Hessian the influence code inverts is exact), and F recomputed from the retrained
probabilities by a small helper.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf
from torch import nn

from froc_cli.methods import FlipInfluence, compute_flip_influence

DAMPING = 1e-2
CRITERIA = ("parity", "opportunity", "odds")
# The labels each criterion conditions on (None: every row), as the docstring defines them.
_CONDITIONS: dict[str, tuple[int | None, ...]] = {
    "parity": (None,),
    "opportunity": (1,),
    "odds": (1, 0),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------------
# helpers


class _GroupProblem:
    """A seeded tabular problem with K groups whose favourable rate rises with the code.

    Group g shifts feature 0 (and the label's logit) by ``shift[g]``, so the lowest and highest
    codes are the active pair by a clear margin and the middle groups sit in between. Training
    rows carry their group too (only to pick rows of every group); a share of the evaluation
    rows is coded -1 (not judged).
    """

    def __init__(
        self,
        n_groups: int,
        seed: int,
        n_train: int = 300,
        n_eval: int = 600,
        d: int = 4,
        not_judged: float = 0.1,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.n_groups = n_groups
        self.shift = np.linspace(0.0, 2.0, n_groups)
        self.X, self.y, self.a = self._draw(rng, n_train, d)
        self.X_eval, self.y_eval, a_eval = self._draw(rng, n_eval, d)
        if not_judged > 0:
            a_eval[rng.random(n_eval) < not_judged] = -1
        self.a_eval = a_eval
        self.model = _logistic(d, seed=seed)
        _fit(self.model, self.X, self.y)
        self._retrained: dict[int, np.ndarray] = {}

    def _draw(
        self, rng: np.random.Generator, n: int, d: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = rng.integers(0, self.n_groups, size=n)
        shift = self.shift[a]
        X = rng.normal(size=(n, d))
        X[:, 0] += shift
        logit = 1.2 * X[:, 0] + 0.8 * X[:, 1] - 0.5 * X[:, 2] + 0.4 * shift - 0.7
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
        return (
            torch.tensor(X, dtype=torch.float32),
            torch.tensor(y, dtype=torch.float32),
            torch.tensor(a, dtype=torch.int64),
        )

    def probs(self, model: nn.Module | None = None) -> np.ndarray:
        """Evaluation-set probabilities of ``model`` (the fitted one when None)."""
        with torch.no_grad():
            return torch.sigmoid((model or self.model)(self.X_eval.double())).numpy()

    def retrained_probs(self, row: int) -> np.ndarray:
        """Evaluation-set probabilities after flipping ``row``'s label and retraining (cached:
        the retrained model does not depend on the criterion)."""
        if row not in self._retrained:
            model = _logistic(self.X.shape[1], seed=0)
            model.load_state_dict(self.model.state_dict())  # retrain from the optimum
            y_flip = self.y.clone()
            y_flip[row] = 1.0 - y_flip[row]
            _fit(model, self.X, y_flip)
            self._retrained[row] = self.probs(model)
        return self._retrained[row]

    def flip(self, criterion: str, **kwargs: object) -> FlipInfluence:
        return compute_flip_influence(
            self.model,
            self.X,
            self.y,
            self.X_eval,
            self.y_eval,
            self.a_eval,
            damping=DAMPING,
            criterion=criterion,
            **kwargs,  # type: ignore[arg-type]
        )


def _logistic(d: int, seed: int) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 1), nn.Flatten(0)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def _fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> None:
    """Minimise mean BCE + DAMPING/2 ||theta||^2 with LBFGS to tight convergence.

    The L2 term's Hessian is exactly the damping the influence code adds, so the first-order
    prediction is checked against the objective it models.
    """
    params = list(model.parameters())
    x64, y64 = X.double(), y.double()
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=2000,
        history_size=50,
        tolerance_grad=1e-12,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nnf.binary_cross_entropy_with_logits(model(x64), y64)
        loss = loss + 0.5 * DAMPING * sum(p.square().sum() for p in params)
        loss.backward()
        return loss

    opt.step(closure)


def _soft_gap(
    p: np.ndarray, y: np.ndarray, a: np.ndarray, criterion: str
) -> tuple[float, tuple[int | None, int, int]]:
    """Soft F of the criterion and its active (label, highest group, lowest group).

    The largest max-min gap of the judged groups' mean probabilities over the criterion's
    rows; rows coded -1 are left out.
    """
    best: tuple[float, tuple[int | None, int, int]] = (-np.inf, (None, -1, -1))
    for label in _CONDITIONS[criterion]:
        rows = a >= 0 if label is None else (a >= 0) & (y == label)
        rates = {int(g): float(p[rows & (a == g)].mean()) for g in np.unique(a[rows])}
        high = max(rates, key=lambda g: rates[g])
        low = min(rates, key=lambda g: rates[g])
        gap = rates[high] - rates[low]
        if gap > best[0]:
            best = (gap, (label, high, low))
    return best


def _eval_arrays(prob: _GroupProblem) -> tuple[np.ndarray, np.ndarray]:
    return prob.y_eval.numpy(), prob.a_eval.numpy()


def _pick_rows(prob: _GroupProblem, pred: torch.Tensor, seed: int) -> list[int]:
    """The 6 rows of largest predicted |change| and two random rows of each (group, label)."""
    rows = torch.argsort(pred.abs(), descending=True)[:6].tolist()
    rng = np.random.default_rng(seed)
    a, y = prob.a.numpy(), prob.y.numpy()
    for g in range(prob.n_groups):
        for label in (0.0, 1.0):
            cell = [int(i) for i in rng.permutation(np.flatnonzero((a == g) & (y == label)))]
            rows += [i for i in cell if i not in rows][:2]
    return rows


def _spearman(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(u)), np.argsort(np.argsort(v)))[0, 1])


def _brute_force_prediction(prob: _GroupProblem, criterion: str) -> torch.Tensor:
    """First-order Delta-F of every flip by autograd on the logistic model's own parameters.

    ``Delta-theta_j = -(1/n) H^-1 (2 y_j - 1) grad f(x_j)`` with H the exact Hessian of the
    penalised objective, and ``Delta-F_j = grad F . Delta-theta_j`` for F the active pair's
    gap (the pair fixed at the current optimum, as Danskin's theorem gives).
    """
    lin = prob.model[0]
    assert isinstance(lin, nn.Linear)
    theta0 = torch.cat([lin.weight.detach().reshape(-1), lin.bias.detach()])
    x, y = prob.X.double(), prob.y.double()
    xe = prob.X_eval.double()
    y_np, a_np = _eval_arrays(prob)
    _, (label, high, low) = _soft_gap(prob.probs(), y_np, a_np, criterion)
    rows = a_np >= 0 if label is None else (a_np >= 0) & (y_np == label)
    in_high = torch.as_tensor(rows & (a_np == high))
    in_low = torch.as_tensor(rows & (a_np == low))

    def train_obj(theta: torch.Tensor) -> torch.Tensor:
        loss = nnf.binary_cross_entropy_with_logits(x @ theta[:-1] + theta[-1], y)
        return loss + 0.5 * DAMPING * theta.square().sum()

    def gap(theta: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(xe @ theta[:-1] + theta[-1])
        return p[in_high].mean() - p[in_low].mean()

    hessian = torch.autograd.functional.hessian(train_obj, theta0)
    grad_f = torch.autograd.functional.jacobian(gap, theta0)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)  # grad f(x_j)
    delta_theta = -torch.linalg.solve(hessian, design.T) * (2 * y - 1) / len(y)
    return grad_f @ delta_theta


@pytest.fixture(scope="module", params=[3, 4], ids=["3groups", "4groups"])
def problem(request: pytest.FixtureRequest) -> _GroupProblem:
    return _GroupProblem(n_groups=request.param, seed=20 + request.param)


# --------------------------------------------------------------------------------------------
# the soft F and its first-order change


def test_problem_has_a_clear_active_pair(problem: _GroupProblem) -> None:
    """The planted groups order their rates by code, and -1 rows are present in the eval set."""
    y, a = _eval_arrays(problem)
    assert (a == -1).sum() > 0.05 * len(a)
    assert set(np.unique(a[a >= 0])) == set(range(problem.n_groups))
    for criterion in CRITERIA:
        gap, (_, high, low) = _soft_gap(problem.probs(), y, a, criterion)
        assert (high, low) == (problem.n_groups - 1, 0)
        assert gap > 0.15


@pytest.mark.parametrize("criterion", CRITERIA)
def test_reported_fairness_is_the_soft_gap(problem: _GroupProblem, criterion: str) -> None:
    y, a = _eval_arrays(problem)
    gap, _ = _soft_gap(problem.probs(), y, a, criterion)
    assert problem.flip(criterion).fairness == pytest.approx(gap, rel=1e-10)


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("params", ["last", "all"])
def test_prediction_is_the_first_order_change_of_the_active_gap(
    problem: _GroupProblem, criterion: str, params: str
) -> None:
    """Both solver paths equal the textbook formula, with F's gradient that of the pair."""
    infl = problem.flip(criterion, params=params, cg_tol=1e-12)
    expected = _brute_force_prediction(problem, criterion)
    torch.testing.assert_close(infl.delta_fairness, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_flip_influence_matches_retraining(problem: _GroupProblem, criterion: str) -> None:
    infl = problem.flip(criterion)
    y, a = _eval_arrays(problem)
    base, pair = _soft_gap(problem.probs(), y, a, criterion)
    rows = _pick_rows(problem, infl.delta_fairness, seed=problem.n_groups)
    assert len(rows) >= 18

    kept, pred, actual = [], [], []
    for j in rows:
        after, pair_after = _soft_gap(problem.retrained_probs(j), y, a, criterion)
        if pair_after != pair:  # first order holds only while the pair stays
            continue
        kept.append(j)
        pred.append(float(infl.delta_fairness[j]))
        actual.append(after - base)
    assert len(kept) >= 0.8 * len(rows)
    pred_a, actual_a = np.array(pred), np.array(actual)

    scale = np.abs(actual_a).max()
    assert scale > 1e-4  # single flips of 300 rows move F measurably
    assert np.corrcoef(pred_a, actual_a)[0, 1] > 0.99
    assert _spearman(pred_a, actual_a) > 0.95
    np.testing.assert_array_less(np.abs(pred_a - actual_a), 0.15 * np.abs(actual_a) + 0.02 * scale)
    clear = np.abs(actual_a) > 0.1 * scale
    assert clear.sum() >= 8
    assert np.all(np.sign(pred_a[clear]) == np.sign(actual_a[clear]))

    # Training rows of the groups outside the active pair move F too (through the shared
    # parameters), and the prediction tracks that.
    outside = np.isin(problem.a.numpy()[kept], pair[1:], invert=True)
    assert outside.sum() >= 2
    assert np.all(pred_a[outside] != 0.0)
    assert np.abs(actual_a[outside]).max() > 0.1 * scale


# --------------------------------------------------------------------------------------------
# rows not judged


@pytest.mark.parametrize("criterion", CRITERIA)
def test_rows_not_judged_do_not_enter_the_bias(problem: _GroupProblem, criterion: str) -> None:
    infl = problem.flip(criterion)
    judged = problem.a_eval >= 0
    dropped = compute_flip_influence(
        problem.model,
        problem.X,
        problem.y,
        problem.X_eval[judged],
        problem.y_eval[judged],
        problem.a_eval[judged],
        damping=DAMPING,
        criterion=criterion,
    )
    torch.testing.assert_close(dropped.delta_fairness, infl.delta_fairness, rtol=1e-9, atol=0.0)
    assert dropped.fairness == pytest.approx(infl.fairness, rel=1e-12)

    # New features and labels on the -1 rows: F and its influence stay, the loss (which
    # counts every row) moves.
    gen = torch.Generator().manual_seed(3)
    X_other, y_other = problem.X_eval.clone(), problem.y_eval.clone()
    n_out = int((~judged).sum())
    X_other[~judged] = 3.0 * torch.randn(n_out, X_other.shape[1], generator=gen)
    y_other[~judged] = 1.0 - y_other[~judged]
    moved = compute_flip_influence(
        problem.model,
        problem.X,
        problem.y,
        X_other,
        y_other,
        problem.a_eval,
        damping=DAMPING,
        criterion=criterion,
    )
    torch.testing.assert_close(moved.delta_fairness, infl.delta_fairness, rtol=1e-9, atol=0.0)
    assert moved.fairness == pytest.approx(infl.fairness, rel=1e-12)
    assert not torch.allclose(moved.delta_loss, infl.delta_loss, rtol=1e-3)


# --------------------------------------------------------------------------------------------
# binary codes


@pytest.fixture(scope="module")
def binary() -> _GroupProblem:
    return _GroupProblem(n_groups=2, seed=5, not_judged=0.0)


def test_binary_parity_fairness_is_the_gap_of_the_two_means(binary: _GroupProblem) -> None:
    infl = binary.flip("parity")
    p, a = binary.probs(), binary.a_eval.numpy()
    # The binary path builds c = +-1/n_group in torch's default dtype (float32, as before the
    # many-group change; pinned binary runs keep their bytes), so F matches the float64 means
    # to float32's rounding of 1/n_group (relative 6e-8), not bit for bit.
    assert infl.fairness == pytest.approx(abs(p[a == 0].mean() - p[a == 1].mean()), rel=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_binary_codes_of_any_dtype_give_identical_results(
    binary: _GroupProblem, dtype: torch.dtype
) -> None:
    ref = binary.flip("parity")
    other = compute_flip_influence(
        binary.model,
        binary.X,
        binary.y,
        binary.X_eval,
        binary.y_eval,
        binary.a_eval.to(dtype),
        damping=DAMPING,
    )
    assert torch.equal(other.delta_fairness, ref.delta_fairness)
    assert torch.equal(other.delta_loss, ref.delta_loss)
    assert torch.equal(other.score, ref.score)
    assert other.fairness == ref.fairness


@pytest.mark.parametrize("recode", [(0, 2), (1, 0), (3, 1)])
def test_binary_parity_agrees_with_the_many_group_path(
    binary: _GroupProblem, recode: tuple[int, int]
) -> None:
    """Binary parity's c = +-1/n_group is the two-group case of the active pair: recoding the
    groups (which takes the general path, or swaps the sign of D) changes nothing beyond the
    binary path's float32 rounding of 1/n_group (see the test above)."""
    ref = binary.flip("parity")
    codes = torch.where(binary.a_eval == 0, recode[0], recode[1])
    other = compute_flip_influence(
        binary.model,
        binary.X,
        binary.y,
        binary.X_eval,
        binary.y_eval,
        codes,
        damping=DAMPING,
    )
    torch.testing.assert_close(other.delta_fairness, ref.delta_fairness, rtol=1e-7, atol=0.0)
    assert other.fairness == pytest.approx(ref.fairness, rel=1e-7)


# --------------------------------------------------------------------------------------------
# invalid group codes


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        ([0, 1, 2, -2], "group codes 0, 1, ..."),
        ([0, 1, 2.5, 1], "group codes 0, 1, ..."),
        ([0.5, 1, 0, 1], "group codes 0, 1, ..."),
        ([0, 0, -1, -1], "at least two judged groups"),
        ([2, 2, 2, -1], "at least two judged groups"),
        ([-1, -1, -1, -1], "at least two judged groups"),
        ([0, 0, 0, 0], "both groups"),
        ([1, 1, 1, 1], "both groups"),
    ],
)
@pytest.mark.parametrize("criterion", CRITERIA)
def test_invalid_group_codes_raise(
    binary: _GroupProblem, codes: list[float], match: str, criterion: str
) -> None:
    if match == "both groups" and criterion != "parity":
        match = "at least two judged groups"  # only binary parity takes the two-group path
    a_eval = torch.tensor(codes * (len(binary.y_eval) // len(codes)), dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        compute_flip_influence(
            binary.model,
            binary.X,
            binary.y,
            binary.X_eval,
            binary.y_eval,
            a_eval,
            damping=DAMPING,
            criterion=criterion,
        )


@pytest.mark.parametrize(
    ("a_eval", "match"),
    [
        (torch.zeros(7, dtype=torch.int64), "1-D tensor of length 600"),
        (torch.zeros(600, 2, dtype=torch.int64), "1-D tensor of length 600"),
    ],
)
def test_malformed_group_vector_raises(
    binary: _GroupProblem, a_eval: torch.Tensor, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        compute_flip_influence(
            binary.model,
            binary.X,
            binary.y,
            binary.X_eval,
            binary.y_eval,
            a_eval,
            damping=DAMPING,
            criterion="opportunity",
        )


def test_unknown_criterion_raises(binary: _GroupProblem) -> None:
    with pytest.raises(ValueError, match="unknown fairness criterion"):
        binary.flip("equal_parity")
