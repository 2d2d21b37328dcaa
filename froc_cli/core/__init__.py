"""Errors and exit codes, configuration dataclasses, file I/O, devices, progress and versions: the
floor every other layer stands on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from froc_cli.core._config import (
    AttackKind,
    AttackSpace,
    AttackTarget,
    DataSpec,
    Objective,
    ThreatModel,
    TrainConfig,
)
from froc_cli.core._errors import (
    EXIT_CONSTRAINTS_NOT_MET,
    EXIT_INPUT_ERROR,
    EXIT_INSUFFICIENT_DATA,
    EXIT_OK,
    FrocError,
    InputError,
    InsufficientDataError,
    ModelFileError,
    NumericError,
)
from froc_cli.core._paths import check_output_paths, default_output_path
from froc_cli.core._progress import (
    ProgressCallback,
    silent,
)
from froc_cli.core._version import (
    __version__,
    environment_versions,
)

# torch and pandas load only when these are first used, so the command line's help and the
# errors it finds before any work answer at once.
_LAZY: dict[str, str] = {
    "TABLE_SUFFIXES": "froc_cli.core._io",
    "Dataset": "froc_cli.core._shards",
    "denormals_flushed": "froc_cli.core._device",
    "distributed_session": "froc_cli.core._distributed",
    "is_writer": "froc_cli.core._distributed",
    "open_dataset": "froc_cli.core._shards",
    "flushing_denormals": "froc_cli.core._device",
    "numeric_failures": "froc_cli.core._device",
    "frame_fingerprint": "froc_cli.core._io",
    "hash_file": "froc_cli.core._io",
    "read_table": "froc_cli.core._io",
    "resolve_device": "froc_cli.core._device",
    "to_jsonable": "froc_cli.core._io",
    "to_python": "froc_cli.core._io",
    "torch_threads": "froc_cli.core._device",
    "write_bytes_atomic": "froc_cli.core._io",
    "write_table_atomic": "froc_cli.core._io",
    "write_text_atomic": "froc_cli.core._io",
}

if TYPE_CHECKING:
    from froc_cli.core._device import (
        denormals_flushed,
        flushing_denormals,
        numeric_failures,
        resolve_device,
        torch_threads,
    )
    from froc_cli.core._distributed import distributed_session, is_writer
    from froc_cli.core._io import (
        TABLE_SUFFIXES,
        frame_fingerprint,
        hash_file,
        read_table,
        to_jsonable,
        to_python,
        write_bytes_atomic,
        write_table_atomic,
        write_text_atomic,
    )
    from froc_cli.core._shards import Dataset, open_dataset

__all__ = [
    "EXIT_CONSTRAINTS_NOT_MET",
    "EXIT_INPUT_ERROR",
    "EXIT_INSUFFICIENT_DATA",
    "EXIT_OK",
    "TABLE_SUFFIXES",
    "AttackKind",
    "AttackSpace",
    "AttackTarget",
    "DataSpec",
    "Dataset",
    "FrocError",
    "InputError",
    "InsufficientDataError",
    "ModelFileError",
    "NumericError",
    "Objective",
    "ProgressCallback",
    "ThreatModel",
    "TrainConfig",
    "__version__",
    "check_output_paths",
    "default_output_path",
    "denormals_flushed",
    "distributed_session",
    "environment_versions",
    "flushing_denormals",
    "frame_fingerprint",
    "hash_file",
    "is_writer",
    "numeric_failures",
    "open_dataset",
    "read_table",
    "resolve_device",
    "silent",
    "to_jsonable",
    "to_python",
    "torch_threads",
    "write_bytes_atomic",
    "write_table_atomic",
    "write_text_atomic",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'froc_cli.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
