"""Frozen configuration objects shared by every command (audit, train-in, preprocess, compare)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from froc_cli.core._errors import InputError

__all__ = [
    "APGD_STEPS",
    "EVAL_ATTACKS",
    "FAIRNESS_CRITERIA",
    "MAX_SEED",
    "ROBUST_METRICS",
    "AttackKind",
    "AttackSpace",
    "AttackTarget",
    "DataSpec",
    "EvalAttack",
    "FairnessCriterion",
    "FairnessSurrogate",
    "Objective",
    "RobustMetric",
    "ThreatModel",
    "TrainConfig",
    "check_fairness",
    "check_fraction",
    "check_learning_rate",
    "check_seed",
    "check_surrogate",
]

# numpy's generators take seeds below 2^32, and froc derives further seeds from the user's by
# adding small offsets (repeats, folds, twins), so the user's seed stays below 2^31.
MAX_SEED = 2**31 - 1


def check_seed(seed: int, option: str = "--seed") -> None:
    """Refuse a seed that is not a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{option} {seed}: expected a whole number from 0 to {MAX_SEED}")


# Weights are float32: Adam cannot take a step of a size float32 cannot hold.
FLOAT32_MAX = 3.4028234663852886e38


def check_learning_rate(lr: float, option: str = "--lr") -> None:
    """Refuse a learning rate that is not a positive number float32 can hold (NaN too)."""
    if isinstance(lr, bool) or not 0 < lr <= FLOAT32_MAX:
        raise InputError(f"{option} {lr}: expected a positive finite number")


def check_fraction(value: float | None, option: str) -> None:
    """Refuse a threshold or share outside [0, 1] (NaN included); None (not given) passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InputError(f"{option} {value}: expected a number in [0, 1]")


FairnessCriterion = Literal["parity", "opportunity", "odds"]
FAIRNESS_CRITERIA: tuple[str, ...] = ("parity", "opportunity", "odds")


def check_fairness(value: str, option: str = "--fairness") -> None:
    """Refuse a fairness criterion froc does not know (see :mod:`froc_cli.core._fairness`)."""
    if value not in FAIRNESS_CRITERIA:
        raise InputError(f"{option} {value}: expected one of {', '.join(FAIRNESS_CRITERIA)}")


FairnessSurrogate = Literal["smoothmax", "deviation"]


def check_surrogate(value: str, option: str = "--fairness-surrogate") -> None:
    """Refuse a fairness surrogate froc does not know."""
    if value not in ("smoothmax", "deviation"):
        raise InputError(f"{option} {value}: expected smoothmax or deviation")


AttackKind = Literal["fgsm", "pgd"]
EvalAttack = Literal["fgsm", "pgd", "apgd"]
EVAL_ATTACKS: tuple[str, ...] = ("fgsm", "pgd", "apgd")
AttackSpace = Literal["continuous", "valid"]
AttackTarget = Literal["true", "predicted"]
RobustMetric = Literal["accuracy", "balanced", "retention"]
ROBUST_METRICS: tuple[str, ...] = ("accuracy", "balanced", "retention")
# APGD iterations per restart (Croce and Hein use 100 against images; see bench/ for the
# strength this many reaches on tabular networks).
APGD_STEPS = 100


@dataclass(frozen=True)
class DataSpec:
    """Which columns play which role, how rows are cleaned, and how groups are judged.

    ``label=None`` takes the last column (as the paper's code does). ``protected`` names one
    column, or several joined by commas (``sex,race``: the groups are their combined values).
    ``protected_group`` binarises: those values (group a=0) against the rest. Without it, a
    protected attribute with two values is binary as well (a=0: the value with the lower
    favourable rate), and one with more values judges every group (see
    :mod:`froc_cli.core._fairness`). ``fairness`` is the criterion S_B measures: ``parity``
    (eq. 7), ``opportunity`` or ``odds``.
    """

    protected: str
    label: str | None = None
    positive: str | None = None
    protected_group: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    immutable: tuple[str, ...] = ()
    dropna: bool = False
    min_group_size: int = 30
    fairness: FairnessCriterion = "parity"

    def __post_init__(self) -> None:
        check_fairness(self.fairness)
        if self.min_group_size < 1:
            raise InputError(f"--min-group-size {self.min_group_size}: expected at least 1")

    def to_dict(self) -> dict[str, object]:
        """The spec as reports and model files record it: the criterion only when it is not
        parity, so a parity run records what froc recorded before criteria existed (an absent
        criterion reads as parity)."""
        saved = asdict(self)
        if saved["fairness"] == "parity":
            del saved["fairness"]
        return saved

    @property
    def protected_columns(self) -> tuple[str, ...]:
        """The protected column, or the columns an intersection is formed from."""
        return tuple(part.strip() for part in self.protected.split(","))


@dataclass(frozen=True)
class ThreatModel:
    """The evasion attacker: L-inf budget ``eps`` in the encoded [0, 1] feature space.

    ``attack_target="true"`` attacks the true labels (standard adversarial accuracy);
    ``"predicted"`` attacks the model's own predictions, as the paper's published code did, which
    pushes misclassified rows towards their true labels (most then count as robust).
    ``attack_space="valid"`` keeps every adversarial example a real record: numerics move
    within eps of their scaled range on their own grid (integers stay integers), up to
    ``cat_budget`` categorical columns switch category.

    ``attacks`` are the attacks robustness is measured with (FGSM, PGD, APGD with
    ``restarts`` random starts); a row is robust only when no attack breaks it, and S_R is
    summarised by ``robust_metric``: ``accuracy`` (eq. 8), ``balanced`` (the mean over the two
    classes of the share of rows robustly correct: a constant model scores 0.5) or
    ``retention`` (the share of correctly classified rows that stay correct).
    """

    eps: float = 0.1
    pgd_steps: int = 10
    step_size: float | None = None
    attack_target: AttackTarget = "true"
    attack_space: AttackSpace = "continuous"
    cat_budget: int = 1
    attacks: tuple[EvalAttack, ...] = ("fgsm", "pgd")
    restarts: int = 1
    robust_metric: RobustMetric = "accuracy"

    def __post_init__(self) -> None:
        if not 0.0 <= self.eps <= 1.0:
            raise InputError(f"--eps {self.eps}: expected a number in [0, 1]")
        if self.pgd_steps < 1:
            raise InputError(f"--pgd-steps {self.pgd_steps}: expected at least 1")
        if self.cat_budget < 0:
            raise InputError(f"--cat-budget {self.cat_budget}: expected 0 or more")
        if self.attack_target not in ("true", "predicted"):
            raise InputError(f"--attack-target {self.attack_target}: expected true or predicted")
        if self.attack_space not in ("continuous", "valid"):
            raise InputError(f"--attack-space {self.attack_space}: expected continuous or valid")
        unknown = [a for a in self.attacks if a not in EVAL_ATTACKS]
        if unknown or not self.attacks or len(set(self.attacks)) < len(self.attacks):
            raise InputError(
                f"--attack {','.join(self.attacks)}: expected a comma-separated set of "
                f"{', '.join(EVAL_ATTACKS)}"
            )
        if self.restarts < 1:
            raise InputError(f"--restarts {self.restarts}: expected at least 1")
        if self.robust_metric not in ROBUST_METRICS:
            raise InputError(
                f"--robust-metric {self.robust_metric}: expected one of {', '.join(ROBUST_METRICS)}"
            )

    @property
    def pgd_step_size(self) -> float:
        """PGD step: eps/4 unless set."""
        return self.eps / 4 if self.step_size is None else self.step_size

    def describe(self) -> str:
        """One line naming the threat model, for tables and reports."""
        return (
            f"L-inf eps={self.eps:g} on [0,1]-scaled features, PGD {self.pgd_steps} steps of "
            f"{self.pgd_step_size:g}, {self.attack_space} space"
            + (f" (cat budget {self.cat_budget})" if self.attack_space == "valid" else "")
            + f", attacking {self.attack_target} labels"
            + (
                ""
                if self.attacks == ("fgsm", "pgd") and self.restarts == 1
                else f"; measured with {self.describe_attacks()}"
            )
        )

    def describe_attacks(self) -> str:
        """The attacks S_R is measured with, e.g. ``FGSM, PGD-10 and APGD-100 x 5 restarts``."""
        names = {
            "fgsm": "FGSM",
            "pgd": f"PGD-{self.pgd_steps}",
            "apgd": f"APGD-{APGD_STEPS}"
            + (f" x {self.restarts} restarts" if self.restarts > 1 else ""),
        }
        listed = [names[a] for a in self.attacks]
        return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: architecture, optimiser, epochs, seed and device."""

    model: str = "mlp:128"
    epochs: int = 300
    lr: float = 0.01
    batch_size: int | None = None
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"--epochs {self.epochs}: expected at least 1")
        check_learning_rate(self.lr)
        if not self.weight_decay >= 0:  # NaN too
            raise InputError(f"weight_decay {self.weight_decay}: expected 0 or more")
        check_seed(self.seed)
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size}: expected at least 1")


@dataclass(frozen=True)
class Objective:
    """The training loss of eq. 10: BCE + lambda_F * F (eq. 13) + lambda_R * R (eq. 15).

    lambda_F = lambda_R = 0 is plain training; lambda_R > 0 regenerates FGSM or PGD examples
    from the current parameters at every step. ``fairness`` is the criterion F relaxes;
    over more than two groups F is ``fairness_surrogate``: ``smoothmax`` (a soft largest gap)
    or ``deviation`` (the sum of each group's gap to the overall rate); see
    :func:`froc_cli.models.fairness_term`.
    """

    lambda_f: float = 0.0
    lambda_r: float = 0.0
    attack: AttackKind = "pgd"
    threat: ThreatModel = field(default_factory=ThreatModel)
    fairness: FairnessCriterion = "parity"
    fairness_surrogate: FairnessSurrogate = "smoothmax"

    def __post_init__(self) -> None:
        if not (self.lambda_f >= 0 and self.lambda_r >= 0):  # NaN too
            raise InputError(
                f"lambda_F={self.lambda_f}, lambda_R={self.lambda_r}: expected non-negative values"
            )
        if self.attack not in ("fgsm", "pgd"):
            raise InputError(f"--attack {self.attack}: expected fgsm or pgd")
        check_fairness(self.fairness)
        check_surrogate(self.fairness_surrogate)
