"""The one progress style of the engine: a callable that takes one line of text.

The engine never prints; a command passes a callback that writes to stderr (the CLI), a
logger, or nothing (:func:`silent`, the default everywhere).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback", "silent"]

ProgressCallback = Callable[[str], None]


def silent(_: str) -> None:
    """A progress callback that discards every line."""
