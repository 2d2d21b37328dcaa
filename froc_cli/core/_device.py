"""Device selection (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import torch

from froc_cli.core._errors import FrocError, InputError, NumericError

__all__ = [
    "denormals_flushed",
    "flushing_denormals",
    "numeric_failures",
    "resolve_device",
    "torch_threads",
]

P = ParamSpec("P")
R = TypeVar("R")


def _denormals_flushed_now() -> bool:
    # torch has no getter: a denormal survives a multiplication only when not flushed.
    return bool((torch.tensor([1e-39]) * 1.0).item() == 0.0)


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush denormal floats to zero on CPU inside the block, then restore the previous mode.

    A model whose outputs saturate toward a constant otherwise spends most of its time in
    denormal arithmetic (measured 9x slower); restoring the mode keeps the process's floating
    point behaviour as the caller left it.
    """
    before = _denormals_flushed_now()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def flushing_denormals(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`denormals_flushed`."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with denormals_flushed():
            return function(*args, **kwargs)

    return wrapper


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an input error."""
    choice = name.strip().lower()
    if choice not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:[0-9]+", choice):
        raise InputError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name!r}: CUDA is not available on this machine")
    if choice.startswith("cuda:"):
        count = torch.cuda.device_count()
        if int(choice.split(":")[1]) >= count:
            raise InputError(
                f"--device {name!r}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    return torch.device(choice)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, then restore the caller's count."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def numeric_failures(method: str, hint: str) -> Iterator[None]:
    """Turn a numeric failure inside ``method`` into one :class:`NumericError` line ending in
    ``hint`` (what to change).

    NaN or infinite numbers (a diverging loss, an extreme input value) surface from torch,
    numpy, scikit-learn or the influence functions as ValueError, ArithmeticError or
    RuntimeError (e.g. "value cannot be converted to type float without overflow" from Adam at
    a huge --lr). froc errors pass through unchanged, and so do out-of-memory, recursion and
    not-implemented errors, which are not about the numbers.
    """
    try:
        yield
    except FrocError:
        raise
    except (ValueError, ArithmeticError, RuntimeError) as error:
        if isinstance(error, torch.OutOfMemoryError | RecursionError | NotImplementedError):
            raise
        what = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise NumericError(
            f"{method} failed on non-finite or overflowing numbers ({what}): the training "
            f"diverged or the input holds extreme values; {hint}"
        ) from error
