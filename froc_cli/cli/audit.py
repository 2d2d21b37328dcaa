"""``froc audit``: bias and robustness scores, optionally as a CI gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from froc_cli.core._errors import EXIT_CONSTRAINTS_NOT_MET, EXIT_OK, InputError

from ._common import (
    Attacks,
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
    ProtectedGroup,
    Quiet,
    ReportPath,
    Restarts,
    RobustMetricOpt,
    Seed,
    TargetModel,
    Threads,
    check_outputs,
    check_threads,
    data_spec,
    guarded,
    process_group,
    progress_printer,
    split_list,
    stdout_console,
    threat_model,
    train_config,
    warn,
)
from ._precheck import check_csv_columns, check_model_file, check_table_file, safe_model_and_device

if TYPE_CHECKING:
    from froc_cli.workflows._audit import AuditConfig, AuditResult
    from froc_cli.workflows._audit_onnx import OnnxAuditOptions

__all__ = ["audit_command"]


def _audit_saved(
    model_file: Path,
    data: Path,
    config: AuditConfig,
    protected: str | None,
    protected_group: str | None,
    fairness: str | None,
    progress: Callable[[str], None],
) -> AuditResult:
    """``--model``: audit a saved model on DATA (no training); the protected group and the
    criterion default to the model's."""
    from froc_cli.core._io import read_table
    from froc_cli.core._shards import is_dataset_path, open_dataset
    from froc_cli.models._artifact import load_model
    from froc_cli.workflows._predict import audit_saved_model
    from froc_cli.workflows._stream import audit_saved_dataset

    artifact = load_model(model_file)
    same_column = protected is None or protected == artifact.protected_column
    group = split_list(protected_group) or (artifact.protected_values if same_column else None)
    spec = replace(
        config.data,
        protected=protected or artifact.protected_column,
        protected_group=group,
        fairness=fairness or artifact.data_spec.fairness,  # type: ignore[arg-type]  # validated
    )
    config = replace(config, data=spec)
    if is_dataset_path(data):  # streamed in record batches: memory bounded whatever the rows
        return audit_saved_dataset(
            open_dataset(data), artifact, config, model_name=str(model_file), progress=progress
        )
    frame = read_table(data)
    return audit_saved_model(
        frame,
        artifact,
        config,
        source=str(data),
        model_name=str(model_file),
        progress=progress,
    )


def _audit_onnx(
    model_file: Path,
    data: Path,
    config: AuditConfig,
    options: OnnxAuditOptions,
    progress: Callable[[str], None],
) -> AuditResult:
    """``--model MODEL.onnx``: audit a model from another stack on every row of DATA."""
    from froc_cli.core._io import read_table
    from froc_cli.models._onnx import load_onnx_model
    from froc_cli.workflows._audit_onnx import audit_onnx_model

    model = load_onnx_model(model_file, features=options.features, threads=config.threads or 1)
    frame = read_table(data)
    return audit_onnx_model(
        frame, model, config, options, source=str(data), model_name=str(model_file),
        progress=progress,
    )  # fmt: skip


def audit_command(
    data: DataPath,
    protected: Annotated[
        str | None,
        typer.Option(
            help="Protected attribute column, or several comma-separated (sex,race: their "
            "combined values are the groups); with --model, default the model's.",
            show_default=False,
        ),
    ] = None,
    label: Label = None,
    positive: Positive = None,
    protected_group: ProtectedGroup = None,
    drop: Drop = None,
    immutable: Immutable = None,
    dropna: DropNa = False,
    min_group_size: MinGroupSize = 30,
    fairness: Annotated[
        str | None,
        typer.Option(
            help="Criterion S_B measures: parity (favourable rate, eq. 7), opportunity (true-"
            "positive rate) or odds (true- and false-positive rates); the largest gap between "
            "two judged groups (default: parity; with --model, the model's).",
            show_default=False,
        ),
    ] = None,
    predictions: Annotated[
        str | None,
        typer.Option(help="Audit this column of decisions instead (fairness only, no model)."),
    ] = None,
    model_file: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Audit a saved model instead of training one: a .froc file from froc train-in "
            "(on the table it was trained on, only its held-out test split is audited; on a "
            "dataset of parquet shards the audit is streamed: bounded memory, every row), or an "
            ".onnx binary classifier from another stack (scikit-learn via skl2onnx, XGBoost or "
            'LightGBM via onnxmltools, torch.onnx; needs pip install "froc\\[onnx]"), audited '
            "on every row with black-box attacks (and white-box ones when the graph is a plain "
            "network).",
        ),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            help="ONNX model with one 2-D float input: the table columns it reads, in order, "
            "comma-separated (when the graph does not name them).",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="ONNX model: decide favourable when its favourable-class probability is >= "
            "this (default: its label output; 0.5 when it has none).",
            show_default=False,
        ),
    ] = None,
    queries: Annotated[
        int | None,
        typer.Option(
            help="ONNX model: queries per row of the black-box query attack (a Square-style "
            "random search in the valid space; 0: transfer attack only; default 1000).",
            show_default=False,
        ),
    ] = None,
    target_model: TargetModel = "mlp:128",
    epochs: Epochs = 300,
    lr: LearningRate = 0.01,
    batch_size: BatchSize = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction audited.")] = 0.3,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = 1,
    eps: Eps = 0.1,
    pgd_steps: PgdSteps = 10,
    attack_target: AttackTargetOpt = "true",
    attack_space: Annotated[
        str | None,
        typer.Option(
            "--attack-space",
            help="continuous: encoded space (the paper's; the default); valid: real records "
            "only (the only space an ONNX model is attacked in, its default).",
            show_default=False,
        ),
    ] = None,
    cat_budget: CatBudget = 1,
    attack: Attacks = "fgsm,pgd",
    restarts: Restarts = 1,
    certify: Annotated[
        bool,
        typer.Option(
            "--certify",
            help="Also certify robustness (froc's own models): the share of rows whose decision "
            "provably cannot change within the threat model (a lower bound on S_R).",
            metavar="",
        ),
    ] = False,
    robust_metric: RobustMetricOpt = "accuracy",
    ci: Annotated[
        bool, typer.Option("--ci", help="Add seeded bootstrap 95% intervals.", metavar="")
    ] = False,
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
    --model audits a saved .froc model, or an ONNX classifier from another stack (every row,
    attacked black-box in the valid space: transfer and query attacks).

    Example: froc audit sample_data/synthetic.csv --protected gender --delta-f 0.1 --delta-r 0.5
    """

    def run() -> int:
        if model_file is not None and predictions is not None:
            raise InputError("--model and --predictions: audit one or the other")
        onnx = model_file is not None and model_file.suffix.lower() == ".onnx"
        if (model_file is None or onnx) and protected is None:
            raise InputError("missing option --protected: name the protected attribute column")
        if not onnx:
            given = [
                option
                for option, value in (
                    ("--features", features), ("--threshold", threshold), ("--queries", queries)
                )
                if value is not None
            ]  # fmt: skip
            if given:
                raise InputError(f"{given[0]} applies to an ONNX model: --model MODEL.onnx")
        if onnx and attack_space == "continuous":
            raise InputError(
                "--attack-space continuous: an ONNX model reads records, so it is attacked in "
                "the valid space; leave the option out or pass valid"
            )
        space = attack_space if attack_space is not None else ("valid" if onnx else "continuous")
        spec = data_spec(
            protected=protected or "",
            label=label,
            positive=positive,
            protected_group=protected_group,
            drop=drop,
            immutable=immutable,
            dropna=dropna,
            min_group_size=min_group_size,
            fairness=fairness or "parity",
        )
        threat = threat_model(
            eps=eps,
            pgd_steps=pgd_steps,
            attack_target=attack_target,
            attack_space=space,
            cat_budget=cat_budget,
            attacks=attack,
            restarts=restarts,
            robust_metric=robust_metric,
        )
        train = train_config(
            model=target_model,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            device=device,
        )
        if 0.0 < test_size < 1.0:  # else AuditConfig's own message comes first, as it did
            check_threads(threads)
            # Before torch and pandas load: the errors the engine would find first.
            if onnx:
                check_table_file(data)
            elif model_file is not None:
                check_model_file(model_file)
            else:
                check_table_file(data)
                if predictions is not None or safe_model_and_device(target_model, device):
                    check_csv_columns(data, spec, (predictions,) if predictions else ())
        check_outputs({"DATA": data, "--model": model_file}, {"--report": report}, quiet=quiet)
        from froc_cli.core._io import write_text_atomic
        from froc_cli.metrics._rules import check_gate, floor_warning
        from froc_cli.reports._markdown import render_audit_markdown, too_small_warning
        from froc_cli.workflows._audit import AuditConfig, audit_file

        from ._render import print_audit, print_gate

        config = AuditConfig(
            data=spec,
            threat=threat,
            train=train,
            test_size=test_size,
            ci=ci,
            n_resamples=bootstrap,
            predictions=predictions,
            threads=threads,
            delta_f=delta_f,
            delta_r=delta_r,
            certify=certify,
        )
        with process_group(device) as speaking:
            mute = quiet or not speaking
            progress = progress_printer(mute or json_output)
            if onnx:
                from froc_cli.workflows._audit_onnx import DEFAULT_QUERIES, OnnxAuditOptions

                assert model_file is not None
                options = OnnxAuditOptions(
                    features=split_list(features),
                    threshold=threshold,
                    queries=DEFAULT_QUERIES if queries is None else queries,
                )
                result = _audit_onnx(model_file, data, config, options, progress)
            elif model_file is not None:
                result = _audit_saved(
                    model_file, data, config, protected, protected_group, fairness, progress
                )
            else:
                result = audit_file(data, config, progress=progress)
            warn(too_small_warning(result.protected, min_group_size), mute)
            gate = check_gate(
                result.metrics,
                delta_f=config.delta_f,
                delta_r=config.delta_r,
                robust_metric=threat.robust_metric,
            )
            floor_note = floor_warning(config.delta_r, result.metrics, threat.robust_metric)
            warn(floor_note and f"warning: {floor_note}", mute)
            exit_code = EXIT_OK if gate.passed else EXIT_CONSTRAINTS_NOT_MET
            if not speaking:  # under torchrun only rank 0 writes and prints
                return exit_code
            if report is not None:
                write_text_atomic(render_audit_markdown(result, gate, floor_note), report)
            if json_output:
                payload = result.to_dict()
                payload["gate"] = {
                    "passed": gate.passed,
                    "checks": [vars(check) for check in gate.checks],
                }
                if floor_note:
                    payload["warnings"] = [floor_note]
                payload["exit_code"] = exit_code
                typer.echo(json.dumps(payload, indent=2, allow_nan=False))
            else:
                console = stdout_console()
                print_audit(console, result)
                print_gate(console, gate, result.fairness, floor_note)
            return exit_code

    code = guarded(run)
    if code:
        raise typer.Exit(code)
