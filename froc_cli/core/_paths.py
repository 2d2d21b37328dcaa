"""One rule for every file a command writes: never one of its inputs, never another output.

Standard library only, so the command line checks its output paths with its other input
checks, before any work and before torch or pandas load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from froc_cli.core._errors import InputError

__all__ = ["check_output_paths", "default_output_path", "same_file"]


def default_output_path(input_path: str | os.PathLike[str]) -> Path:
    """``data.csv`` -> ``data.froc.csv`` beside the input (``froc preprocess``'s default)."""
    path = Path(input_path)
    return path.with_name(f"{path.stem}.froc{path.suffix}")


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return None


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file: the same path once resolved (symlinks
    followed, ``..`` and relative spellings removed), or, when both exist, the same file on
    disk (a hard link, a case-insensitive file system)."""
    first, second = Path(a), Path(b)
    resolved = _resolved(first)
    if resolved is not None and resolved == _resolved(second):
        return True
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:
        return False


def check_output_paths(
    inputs: Mapping[str, str | os.PathLike[str] | None],
    outputs: Mapping[str, str | os.PathLike[str] | None],
) -> list[tuple[str, Path]]:
    """Refuse an output that is an input file, the same file as another output, or a path
    that cannot be written; return the outputs that exist already (a run replaces them, and
    the command line says so).

    ``inputs`` and ``outputs`` map the option (``"DATA"``, ``"--model"``, ``"--report"``) to
    the path given; None (not given) is skipped. Outputs are checked in order, each against
    every input and then every earlier output; the first collision raises an
    :class:`InputError` with one line naming the option, the path and what it collides with.
    """
    given_inputs = [(name, Path(path)) for name, path in inputs.items() if path is not None]
    seen: list[tuple[str, Path]] = []
    for option, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        for name, source in given_inputs:
            if same_file(path, source):
                raise InputError(
                    f"{option} {path}: is the input file ({name}); froc never overwrites its input"
                )
        for other, earlier in seen:
            if same_file(path, earlier):
                raise InputError(f"{option} {path}: is also the {other} file")
        _check_writable(option, path)
        seen.append((option, path))
    return [(option, path) for option, path in seen if path.exists()]


def _check_writable(option: str, path: Path) -> None:
    """Refuse, before any work, an output that cannot be written: a folder, a read-only file,
    a place whose nearest existing folder is not a writable folder."""
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory, expected a file name to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: the file is read-only; froc will not replace it")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: cannot write in {parent} (permission denied)")
