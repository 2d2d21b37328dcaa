"""One exception hierarchy for the engine; the CLI maps each class to a documented exit code.

The engine never prints or exits: it raises one of these with a one-line message that names the
file, column or value at fault and what was expected.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CONSTRAINTS_NOT_MET",
    "EXIT_INPUT_ERROR",
    "EXIT_INSUFFICIENT_DATA",
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "FrocError",
    "InputError",
    "InsufficientDataError",
    "ModelFileError",
    "NumericError",
]

EXIT_OK = 0
EXIT_CONSTRAINTS_NOT_MET = 1
EXIT_INPUT_ERROR = 2
EXIT_INSUFFICIENT_DATA = 3
# A bug in froc, never a verdict: a CI gate must be able to tell the two apart.
EXIT_INTERNAL_ERROR = 4
# Ctrl-C, as the shell reports a SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# The reader of stdout closed the pipe, as the shell reports a SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


class FrocError(Exception):
    """Base class of every error froc reports to a user."""

    exit_code: int = EXIT_INPUT_ERROR


class InputError(FrocError):
    """Bad input: a missing or malformed file, an unknown column, an impossible value."""

    exit_code = EXIT_INPUT_ERROR


class ModelFileError(InputError):
    """A model file that is missing, truncated, tampered with or of an unknown format."""


class InsufficientDataError(FrocError):
    """A group has too few rows to judge: too little data is never a pass."""

    exit_code = EXIT_INSUFFICIENT_DATA


class NumericError(InputError):
    """A computation failed on NaN or infinite numbers: a loss that diverged, a value that
    overflowed.

    A subclass of :class:`InputError` (exit code 2): in froc the numbers go non-finite because
    of what the user passed, a learning rate too large for the data (``--lr 1e39``) or a column
    with extreme values, and the message names the setting to change. (``--lr nan`` itself is
    refused up front as a plain InputError.)
    """
