"""``froc audit``: bias and robustness scores, optionally as a CI gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .._audit import AuditConfig, audit_file, check_gate
from .._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK, InputError
from .._io import write_text_atomic
from .._report import render_audit_markdown
from ._common import (
    AttackSpaceOpt,
    AttackTargetOpt,
    BatchSize,
    CatBudget,
    DataPath,
    DeltaF,
    DeltaR,
    Device,
    Drop,
    DropNa,
    Epochs,
    Eps,
    Immutable,
    JsonFlag,
    Label,
    LearningRate,
    MinGroupSize,
    PgdSteps,
    Positive,
    Protected,
    ProtectedGroup,
    Quiet,
    ReportPath,
    Seed,
    TargetModel,
    data_spec,
    guarded,
    progress_printer,
    stdout_console,
    threat_model,
    train_config,
)
from ._render import print_audit, print_gate

__all__ = ["audit_command"]


def audit_command(
    data: DataPath,
    protected: Protected,
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    predictions: Annotated[
        str | None,
        typer.Option(help="Audit this column of decisions instead (fairness only, no model)."),
    ] = None,
    model_file: Annotated[
        Path | None,
        typer.Option("--model", help="Audit a saved model (.froc) instead of training one."),
    ] = None,
    target_model: TargetModel = "mlp:128",
    epochs: Epochs = 300,
    lr: LearningRate = 0.01,
    batch_size: BatchSize = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction audited.")] = 0.3,
    seed: Seed = 0,
    device: Device = "auto",
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    attack_target: AttackTargetOpt = "true",
    attack_space: AttackSpaceOpt = "continuous",
    cat_budget: CatBudget = 1,
    ci: Annotated[bool, typer.Option("--ci", help="Add seeded bootstrap 95% intervals.")] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for --ci.")] = 1000,
    delta_f: DeltaF = None,
    delta_r: DeltaR = None,
    json_output: JsonFlag = False,
    report: ReportPath = None,
    quiet: Quiet = False,
) -> None:
    """Audit a model's bias score S_B (eq. 7) and robustness score S_R (eq. 8).

    Trains the default target on a seeded 70/30 split stratified by label and group and
    attacks the held-out part with FGSM and PGD; with --delta-f/--delta-r it is a CI gate.

    Example: froc audit sample_data/synthetic.csv --protected gender --delta-f 0.1 --delta-r 0.5
    """

    def run() -> int:
        if model_file is not None:
            raise InputError(f"{model_file}: --model needs saved-model support (froc train-in)")
        config = AuditConfig(
            data=data_spec(
                protected=protected,
                label=label,
                positive=positive,
                protected_group=protected_group,
                drop=drop,
                immutable=immutable,
                dropna=dropna,
                min_group_size=min_group_size,
            ),
            threat=threat_model(
                eps=eps,
                pgd_steps=pgd_steps,
                attack_target=attack_target,
                attack_space=attack_space,
                cat_budget=cat_budget,
            ),
            train=train_config(
                model=target_model,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                device=device,
            ),
            test_size=test_size,
            ci=ci,
            n_resamples=bootstrap,
            predictions=predictions,
        )
        result = audit_file(data, config, progress=progress_printer(quiet or json_output))
        gate = check_gate(result.metrics, delta_f=delta_f, delta_r=delta_r)
        exit_code = EXIT_OK if gate.passed else EXIT_CONSTRAINTS_NOT_MET
        if report is not None:
            write_text_atomic(render_audit_markdown(result, gate), report)
        if json_output:
            payload = result.to_dict()
            payload["gate"] = {
                "passed": gate.passed,
                "checks": [vars(check) for check in gate.checks],
            }
            payload["exit_code"] = exit_code
            typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        else:
            console = stdout_console()
            print_audit(console, result)
            print_gate(console, gate)
        return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
