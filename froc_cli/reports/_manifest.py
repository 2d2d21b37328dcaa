"""Writing FRoC-PRE's output table and its JSON manifest.

The manifest records what was done to the data owner's file so that anyone can check it:

* ``input`` / ``output``: path, sha256 of the bytes, rows, columns (``output`` is null when
  the output was not written: the promise not met without ``--allow-partial``);
* ``settings`` (every option, the seed, the device) and ``versions``;
* ``met``, ``reason``, ``targets`` (the thresholds tightened by ``margin`` standard errors)
  and ``verdicts``: per panel model, the figures judged and whether it meets both;
* ``panel``: per panel model, the cross-fitted figures (mean, sd and each fold's): fitted
  plainly without a fold's rows and their copies, measured on the fold's original rows;
* ``flips``: each flipped row's input row position (``index``, 0-based, header excluded), old
  and new label value, the fairness-accuracy score that picked it (``influence``: eq. 21
  with first-principles signs, negative = predicted to lower the bias) and its predicted
  change of the soft bias ``delta_fairness``;
* ``additions``: each added row's position in the output (``output_row``), its source row's
  input position (``source_index``), the attack that made it, eps, its round and its
  accuracy influence I_U (eq. 22).

Every input row is in the output, in order (flips applied), then the added rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from froc_cli.core._errors import InputError
from froc_cli.core._io import (
    TABLE_SUFFIXES,
    StagedFile,
    commit_files,
    hash_file,
    render_like_file,
    stage_file,
    table_writer,
    to_jsonable,
)
from froc_cli.core._paths import check_output_paths, default_output_path
from froc_cli.workflows._preprocess import TrainerFileResult

__all__ = [
    "MANIFEST_FORMAT",
    "ORIGIN_COLUMN",
    "WrittenFiles",
    "build_manifest",
    "check_output_path",
    "default_output_path",
    "origin_column",
    "write_preprocess_outputs",
]

MANIFEST_FORMAT = "froc-preprocess-manifest/2"
ORIGIN_COLUMN = "froc_origin"


@dataclass(frozen=True)
class WrittenFiles:
    """Paths written (None: not written) and the output's sha256."""

    output: Path | None
    manifest: Path | None
    output_sha256: str | None


def check_output_path(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse an unknown table suffix, or an output (or manifest) that is the input itself or
    the other output (the rule of :func:`froc_cli.core._paths.check_output_paths`)."""
    target = Path(output_path)
    if target.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"--output {target}: expected a .csv or .parquet file name")
    check_output_paths({"DATA": input_path}, {"--output": target, "--manifest": manifest_path})


def origin_column(result: TrainerFileResult) -> pd.Series:
    """``original``, ``flipped`` or ``adversarial:<source row>`` for every output row."""
    n_input = result.rows["input"]
    origin = ["original"] * n_input
    for flip in result.flips:
        origin[flip.index] = "flipped"
    origin += [f"adversarial:{added.source_index}" for added in result.additions]
    return pd.Series(origin, name=ORIGIN_COLUMN, dtype=object)


def build_manifest(
    result: TrainerFileResult,
    *,
    input_path: str | os.PathLike[str],
    input_sha256: str,
    output_path: str | os.PathLike[str] | None,
    output_sha256: str | None,
    annotate: bool,
) -> dict[str, Any]:
    """The manifest dictionary (see the module docstring)."""
    summary = result.to_dict()
    columns = [str(c) for c in result.output.columns]
    n_input = result.rows["input"]
    output = None
    if output_path is not None:
        output = {
            "path": str(output_path),
            "sha256": output_sha256,
            "rows": len(result.output),
            "columns": [*columns, ORIGIN_COLUMN] if annotate else columns,
        }
    return {
        "format": MANIFEST_FORMAT,
        "input": {
            "path": str(input_path),
            "sha256": input_sha256,
            "rows": n_input,
            "columns": columns,
        },
        "output": output,
        "met": result.met,
        "reason": result.reason,
        "seed": result.settings["seed"],
        "settings": summary["settings"],
        "versions": result.settings["versions"],
        "label": {"column": result.label_column, "favourable": result.positive_value},
        "protected": {
            "column": result.protected_column,
            "group": result.protected_values,
            **result.judging_extras,
        },
        "rows": summary["rows"],
        "flip_fraction": result.flip_fraction,
        "augment_fraction": result.augment_fraction,
        "targets": summary["targets"],
        "verdicts": summary["verdicts"],
        "panel": summary["panel"],
        "flips": [asdict(flip) for flip in result.flips],
        "additions": [asdict(added) for added in result.additions],
        "seconds": summary["seconds"],
    }


def write_preprocess_outputs(
    result: TrainerFileResult,
    *,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None,
    manifest_path: str | os.PathLike[str] | None,
    annotate: bool = False,
    input_as_written: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> WrittenFiles:
    """Write the output table (when ``output_path``) and the manifest (when
    ``manifest_path``) together. With ``input_as_written`` (the input's typed frame and its
    cells as text, :func:`froc_cli.core._io.read_csv_text`) a CSV output keeps the input's own
    text for every unchanged value (leading zeros, trailing decimals, spellings). Both
    files are written in full to temporary files, then renamed into place at once (an
    interrupt waits for both); the input is never overwritten.

    When the table cannot be written (a full disk, a folder that went away), the manifest is
    still written, recording the error (``output_error``), and then the error is raised.
    """
    if output_path is not None:
        check_output_path(input_path, output_path, manifest_path)
    else:
        check_output_paths({"DATA": input_path}, {"--manifest": manifest_path})
    staged: list[StagedFile] = []
    output_error: InputError | None = None
    digest: str | None = None
    try:
        if output_path is not None:
            table = result.output
            if input_as_written is not None and Path(output_path).suffix.lower() == ".csv":
                typed, cells = input_as_written
                sources = np.concatenate(
                    [
                        np.arange(result.rows["input"]),
                        [added.source_index for added in result.additions],
                    ]
                ).astype(np.int64)
                table = render_like_file(table, typed, cells, sources)
            if annotate:
                table = table.assign(**{ORIGIN_COLUMN: origin_column(result).to_numpy()})
            try:
                staged.append(stage_file(output_path, table_writer(table, output_path)))
                digest = hash_file(staged[0].temp)
            except InputError as error:
                output_error = error
        if manifest_path is not None:
            manifest = build_manifest(
                result,
                input_path=input_path,
                input_sha256=hash_file(input_path),
                output_path=output_path if output_error is None else None,
                output_sha256=digest,
                annotate=annotate,
            )
            if output_error is not None:
                manifest["output_error"] = str(output_error)
            text = json.dumps(to_jsonable(manifest), indent=2, allow_nan=False) + "\n"
            staged.append(
                stage_file(manifest_path, lambda temp: temp.write_text(text, encoding="utf-8"))
            )
    except BaseException:
        for item in staged:
            item.discard()
        raise
    commit_files(staged)
    if output_error is not None:
        raise output_error
    written = Path(output_path) if output_path is not None else None
    return WrittenFiles(
        output=written,
        manifest=Path(manifest_path) if manifest_path is not None else None,
        output_sha256=digest,
    )
