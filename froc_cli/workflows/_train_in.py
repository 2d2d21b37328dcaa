"""``froc train-in`` as a workflow: split the table as ``froc audit`` does, carve a validation
split, run FRoC-IN (:func:`froc_cli.methods.fit_froc_in`), score the chosen model on the held-out
test split, judge it, and save it as a model file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core._config import DataSpec
from froc_cli.core._device import torch_threads
from froc_cli.core._errors import InputError
from froc_cli.core._io import frame_fingerprint, pack_row_hashes, row_hashes, to_jsonable
from froc_cli.core._progress import ProgressCallback, silent
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import PreparedData, prepare_data
from froc_cli.data._encoder import TabularEncoder
from froc_cli.data._splits import carve_validation, split_prepared
from froc_cli.methods._froc_in import EpochProgress, FitOutcome, FrocInConfig, fit_froc_in
from froc_cli.metrics._evaluate import Evaluation, attack_decisions, evaluate_decisions
from froc_cli.metrics._rules import above_floor, check_gate, is_near_constant
from froc_cli.models._artifact import save_model
from froc_cli.models._nets import TabularNet

__all__ = [
    "TrainInConfig",
    "TrainInResult",
    "Verdict",
    "save_train_in_model",
    "train_in_table",
]

Verdict = Literal["met", "test_failed", "infeasible", "degenerate", "unconstrained"]


@dataclass(frozen=True)
class TrainInConfig:
    """``froc train-in``: data roles, FRoC-IN settings, the held-out test fraction and the
    torch CPU threads of the run (the caller's count is restored afterwards)."""

    data: DataSpec
    froc: FrocInConfig
    test_size: float = 0.3
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.test_size < 1.0:
            raise InputError(f"--test-size {self.test_size}: expected a fraction in (0, 1)")
        if self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected at least 1")


@dataclass
class TrainInResult:
    """Everything ``froc train-in`` found, with what is needed to save and reproduce it."""

    source: str
    prepared: PreparedData
    encoder: TabularEncoder
    config: TrainInConfig
    outcome: FitOutcome
    validation: Evaluation
    test: Evaluation
    test_near_constant: bool
    verdict: Verdict
    rows: dict[str, int]
    fingerprint: str
    settings: dict[str, Any]
    seconds: dict[str, float]
    training_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def model(self) -> TabularNet:
        """The chosen model."""
        return self.outcome.model

    @property
    def passed(self) -> bool:
        """True when the verdict is a success (exit 0)."""
        return self.verdict in ("met", "unconstrained")

    def gates(self) -> dict[str, Any]:
        """Threshold checks on validation and test."""
        froc = self.config.froc
        out = {}
        for name, evaluation in (("validation", self.validation), ("test", self.test)):
            gate = check_gate(
                evaluation.metrics,
                delta_f=froc.delta_f,
                delta_r=froc.delta_r,
                robust_metric=froc.threat.robust_metric,
            )
            out[name] = {"passed": gate.passed, "checks": [vars(c) for c in gate.checks]}
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (NaN becomes None)."""
        froc = self.config.froc
        outcome = self.outcome
        return to_jsonable(
            {
                "source": self.source,
                "verdict": self.verdict,
                "passed": self.passed,
                "mode": outcome.mode,
                "search": outcome.search,
                "lambda_f": outcome.lambda_f,
                "lambda_r": outcome.lambda_r,
                "attack": froc.attack,
                "thresholds": {"delta_f": froc.delta_f, "delta_r": froc.delta_r},
                "validation_targets": outcome.targets,
                "label": {
                    "column": self.prepared.label_column,
                    "favourable": self.prepared.positive_value,
                },
                "protected": self.prepared.protected_summary(),
                "rows": self.rows,
                "threat_model": {**asdict(froc.threat), "pgd_step_size": froc.threat.pgd_step_size},
                "validation": {
                    "metrics": self.validation.metrics,
                    "near_constant": outcome.chosen.score.near_constant,
                },
                "test": {
                    "metrics": self.test.metrics,
                    "groups": self.test.groups,
                    "near_constant": self.test_near_constant,
                },
                "gates": self.gates(),
                "trials": [trial.to_dict() for trial in outcome.trials],
                "chosen_trial": outcome.chosen.index,
                "relaxation": None if outcome.relaxation is None else outcome.relaxation.to_dict(),
                **({} if outcome.frontier is None else {"frontier": outcome.frontier.to_dict()}),
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )


def _verdict(
    config: FrocInConfig, outcome: FitOutcome, test: Evaluation, test_near_constant: bool
) -> Verdict:
    metrics = test.metrics
    n_test = int(metrics["rows"])
    degenerate = (
        outcome.chosen.score.degenerate
        or test_near_constant
        or not above_floor(metrics["accuracy"], metrics["majority_floor"], n_test)
    )
    if degenerate:
        return "degenerate"
    if not config.constrained:
        return "unconstrained"
    if not outcome.feasible:
        return "infeasible"
    gate = check_gate(
        metrics,
        delta_f=config.delta_f,
        delta_r=config.delta_r,
        robust_metric=config.threat.robust_metric,
    )
    return "met" if gate.passed else "test_failed"


def train_in_table(
    frame: pd.DataFrame,
    config: TrainInConfig,
    *,
    source: str,
    progress: ProgressCallback = silent,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> TrainInResult:
    """FRoC-IN on a table: seeded train/test split (as ``froc audit``), a validation split
    carved from the training part, the fit or search on it, then the held-out test scores, on
    ``config.threads`` torch threads."""
    with torch_threads(config.threads):
        return _train_in_table(frame, config, source=source, progress=progress, on_epoch=on_epoch)


def _train_in_table(
    frame: pd.DataFrame,
    config: TrainInConfig,
    *,
    source: str,
    progress: ProgressCallback,
    on_epoch: Callable[[EpochProgress], None] | None,
) -> TrainInResult:
    started = time.perf_counter()
    # The criterion is the data spec's (one source for the search, the gate and the report).
    froc = replace(config.froc, fairness=config.data.fairness)
    config = replace(config, froc=froc)
    seed = froc.train.seed
    prepared = prepare_data(frame, config.data, source=source)
    split = split_prepared(
        prepared,
        test_size=config.test_size,
        seed=seed,
        device=froc.train.device,
        min_group_size=config.data.min_group_size,
    )
    prepared = split.prepared  # with the groups too small to judge left out
    train_pos = split.train.positions
    fit_pos, val_pos = carve_validation(prepared, train_pos, val_size=froc.val_size, seed=seed)
    within = np.searchsorted(train_pos, fit_pos), np.searchsorted(train_pos, val_pos)
    fit, val = split.train.take(within[0]), split.train.take(within[1])
    seconds = {"prepare": time.perf_counter() - started}
    progress(
        f"{source}: {prepared.n_rows} rows, label {prepared.label_column!r} (favourable "
        f"{prepared.positive_value!r}), {prepared.describe_groups()}; "
        f"fit {len(fit)}, validation {len(val)}, test {len(split.test)} rows"
    )
    progress(
        (
            "searching lambda_F/lambda_R on the validation split"
            if froc.searching
            else f"training with lambda_F={froc.lambda_f or 0:g}, lambda_R={froc.lambda_r or 0:g}"
        )
        + f" ({froc.attack.upper()} examples, {froc.train.model}, {split.device})"
    )
    outcome = fit_froc_in(fit, val, split.encoder, froc, device=split.device, on_epoch=on_epoch)
    seconds["fit"] = outcome.seconds

    progress("scoring the chosen model on validation and the held-out test split (FGSM, PGD)")
    mark = time.perf_counter()
    space = FeatureSpace.from_encoder(split.encoder, split.device)
    judging = prepared.judging
    val_decisions = attack_decisions(
        outcome.model, val.x, val.y, val.a_numpy, space, froc.threat, **judging, seed=seed
    )
    test_rows = split.test
    test_decisions = attack_decisions(
        outcome.model, test_rows.x, test_rows.y, test_rows.a_numpy, space, froc.threat,
        **judging, seed=seed,
    )  # fmt: skip
    validation = evaluate_decisions(val_decisions, seed=seed)
    test = evaluate_decisions(test_decisions, seed=seed)
    near_constant_test = is_near_constant(test_decisions.pred, test_decisions.y)
    seconds["evaluate"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    train_settings = asdict(froc.train)
    train_settings["device"] = str(split.device)
    train_settings["threads"] = torch.get_num_threads()
    return TrainInResult(
        source=source,
        prepared=prepared,
        encoder=split.encoder,
        config=config,
        outcome=outcome,
        validation=validation,
        test=test,
        test_near_constant=near_constant_test,
        verdict=_verdict(froc, outcome, test, near_constant_test),
        rows={
            "total": prepared.n_rows,
            "fit": len(fit),
            "validation": len(val),
            "test": len(split.test),
            "dropped": prepared.dropped_rows,
            "features": split.encoder.n_features,
        },
        fingerprint=frame_fingerprint(frame),
        training_positions=np.asarray(train_pos, dtype=np.int64),
        settings={
            "seed": seed,
            "test_size": config.test_size,
            "val_size": froc.val_size,
            "train": train_settings,
            "search": {
                "search_margin": froc.search_margin,
                **{
                    key: getattr(froc, key)
                    for key in (
                        "search",
                        "dual_step_f",
                        "dual_step_r",
                        "dual_patience",
                        "dual_average_epochs",
                        "frontier_epochs",
                        "eval_every",
                        "patience",
                        "warm_epochs",
                        "margin",
                        "bisect_steps",
                        "rounds",
                        "max_trials",
                        "search_budget_s",
                    )
                },
            },
            "versions": environment_versions(),
        },
        seconds=seconds,
    )


def save_train_in_model(result: TrainInResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result``'s model as one ``.froc`` file (see :mod:`froc_cli.models._artifact`)."""
    froc = result.config.froc
    outcome = result.outcome
    prepared = result.prepared
    training = asdict(froc.train)
    training["device"] = result.settings["train"]["device"]
    info = {
        "objective": {
            "lambda_f": outcome.lambda_f,
            "lambda_r": outcome.lambda_r,
            "attack": froc.attack,
            "mode": outcome.mode,
            **(
                {}
                if prepared.binary and froc.fairness == "parity"
                else {"fairness": froc.fairness, "fairness_surrogate": froc.fairness_surrogate}
            ),
        },
        "threat_model": asdict(froc.threat),
        "thresholds": {"delta_f": froc.delta_f, "delta_r": froc.delta_r},
        "verdict": result.verdict,
        "metrics": {"validation": result.validation.metrics, "test": result.test.metrics},
        "protected_group_chosen_by_default": prepared.protected_group_defaulted,
        "split": {
            "seed": froc.train.seed,
            "test_size": result.config.test_size,
            "val_size": froc.val_size,
            "fingerprint": result.fingerprint,
            "source": result.source,
            "rows": result.rows,
            # What lets an audit of this model see that a table holds its training rows.
            "training_rows": pack_row_hashes(
                row_hashes(
                    prepared.frame.iloc[result.training_positions],
                    [*result.encoder.column_names, prepared.label_column],
                ),
                seed=froc.train.seed,
            ),
        },
        "training": {
            **training,
            "epochs_run": outcome.chosen.epochs_run,
            "best_epoch": outcome.chosen.best_epoch,
            "warm_start": outcome.chosen.warm_start,
            "trials": len(outcome.trials),
        },
        "seed": froc.train.seed,
        "versions": result.settings["versions"],
    }
    return save_model(
        path,
        outcome.model,
        result.encoder,
        model_spec=froc.train.model,
        data_spec=result.config.data,
        label_column=prepared.label_column,
        positive_value=prepared.positive_value,
        protected_column=prepared.protected_column,
        protected_values=prepared.protected_values,
        info=info,
    )
