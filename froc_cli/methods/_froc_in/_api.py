"""fit_froc_in: FRoC-IN with given lambdas, or the search for given thresholds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from froc_cli.attacks import FeatureSpace
from froc_cli.core._device import flushing_denormals
from froc_cli.data._encoder import TabularEncoder
from froc_cli.data._rows import EncodedRows
from froc_cli.models._nets import TabularNet, build_model

from ._config import FrocInConfig
from ._dual import DualAscent
from ._fit import EpochProgress, FitContext, Trial, choose_trial, run_fit, validation_targets
from ._frontier import Frontier, Relaxation, smallest_relaxation, trace_frontier
from ._grid import GridSearch

__all__ = ["FitOutcome", "fit_froc_in"]


@dataclass
class FitOutcome:
    """The chosen model, its lambdas, the search path and the trace; with thresholds, the
    smallest relaxation the search's iterates meet, and the frontier when asked for."""

    model: TabularNet
    lambda_f: float
    lambda_r: float
    mode: Literal["given", "search"]
    chosen: Trial
    trials: list[Trial]
    feasible: bool
    targets: dict[str, float | None]
    trace: list[dict[str, float]]
    seconds: float
    search: str = "given"
    relaxation: Relaxation | None = None
    frontier: Frontier | None = None


@flushing_denormals
def fit_froc_in(
    fit: EncodedRows,
    val: EncodedRows,
    encoder: TabularEncoder,
    config: FrocInConfig,
    *,
    device: torch.device,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> FitOutcome:
    """Train a FRoC-IN model on ``fit`` choosing on ``val``: one fit with the given lambdas, or
    the lambda search of the module docstring. Never looks at any test rows."""
    started = time.perf_counter()
    space = FeatureSpace.from_encoder(encoder, device)
    model = build_model(
        config.train.model, encoder.n_features, seed=config.train.seed, device=device
    )
    target_f, target_r = validation_targets(config, val)
    ctx = FitContext(
        config=config,
        fit=fit,
        val=val,
        space=space,
        target_f=target_f,
        target_r=target_r,
        on_epoch=on_epoch,
        started=started,
    )
    dual: DualAscent | None = None
    if config.searching and config.search == "constrained":
        dual = DualAscent(ctx, model)
        dual.run()
        index = choose_trial(ctx)
        mode: Literal["given", "search"] = "search"
    elif config.searching:
        GridSearch(ctx, model).run()
        index = choose_trial(ctx)
        mode = "search"
    else:
        run_fit(
            ctx,
            model,
            float(config.lambda_f or 0.0),
            float(config.lambda_r or 0.0),
            config.train.epochs,
            warm_start=False,
        )
        index = 0
        mode = "given"
    targets = {"bias_score": target_f, "robustness": target_r}
    chosen = ctx.trials[index]
    model.load_state_dict(ctx.states[index])
    model.eval()
    frontier = None
    if config.frontier and config.searching:
        # From the chosen model and the multipliers the main run ended with (the grid's: the
        # chosen fit's lambdas).
        start = (
            (dual.lambda_f, dual.lambda_r)
            if dual is not None
            else (chosen.lambda_f, chosen.lambda_r)
        )
        frontier = trace_frontier(ctx, model, start, epochs=config.frontier_epochs)
    return FitOutcome(
        model=model,
        lambda_f=chosen.lambda_f,
        lambda_r=chosen.lambda_r,
        mode=mode,
        chosen=chosen,
        trials=list(ctx.trials),
        feasible=chosen.meets_thresholds and not chosen.score.degenerate,
        targets=targets,
        trace=list(ctx.trace),
        seconds=time.perf_counter() - started,
        search=config.search if config.searching else "given",
        relaxation=(
            smallest_relaxation(ctx.trials, config, targets) if config.constrained else None
        ),
        frontier=frontier,
    )
