"""Device selection (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import torch

from froc_cli.core._errors import InputError

__all__ = ["denormals_flushed", "flushing_denormals", "resolve_device", "torch_threads"]

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
