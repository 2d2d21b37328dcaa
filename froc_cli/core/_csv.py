"""What a CSV header says about the file's delimiter (standard library only, so the command
line can check before pandas loads)."""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["foreign_delimiter_message"]

_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def foreign_delimiter_message(path: str | os.PathLike[str], header: Sequence[str]) -> str | None:
    """The one-line error for a file read as comma-separated whose header came out as one
    column holding another delimiter (a semicolon-separated export, say); None otherwise."""
    if len(header) != 1:
        return None
    for delimiter, name in _DELIMITERS.items():
        if delimiter in str(header[0]):
            return (
                f"{path}: the header reads as one column {str(header[0])!r}: the file looks "
                f"{name}-delimited, and froc reads comma-separated CSV; convert it first, e.g. "
                f"python -c \"import pandas as p; p.read_csv('IN', sep={delimiter!r})"
                ".to_csv('OUT.csv', index=False)\""
            )
    return None
