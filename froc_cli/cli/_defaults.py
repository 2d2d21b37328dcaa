"""Engine defaults the command line's help and option defaults show, without importing the
engine (torch, pandas): copies that tests/cli/test_fast_cli.py holds equal to the engine's."""

from __future__ import annotations

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_EPOCHS", "DEFAULT_LAMBDAS", "METHOD_NAMES"]

# froc_cli.workflows._compare
METHOD_NAMES: tuple[str, ...] = (
    "plain",
    "rbf-rw",
    "rbf-dir",
    "fbr-rw",
    "fbr-dir",
    "massaging",
    "froc-in",
    "froc-pre",
)
DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0)

# froc_cli.methods._froc_in
DEFAULT_EPOCHS = 120
DEFAULT_BATCH_SIZE = 1024
