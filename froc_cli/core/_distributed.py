"""torch.distributed for froc: the process group torchrun describes, this process's rank, who
writes, and the sums every process needs.

``torchrun --nproc-per-node N -m froc_cli train-in ...`` (``--nnodes`` and a rendezvous for
several machines) starts N copies of froc, each with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in its environment. :func:`distributed_session` joins them
into one process group: NCCL when the run is on CUDA, gloo on CPU. Training then splits every
global batch between the processes (:func:`froc_cli.models.train_model`); only rank 0 writes
files or prints results (:func:`is_writer`). Outside torchrun nothing changes: world size 1,
rank 0, no process group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from froc_cli.core._errors import InputError

__all__ = [
    "agreed_elapsed",
    "all_reduce_sum",
    "backend_for",
    "distributed_session",
    "is_distributed",
    "is_writer",
    "launched_distributed",
    "process_rank",
    "shard_bounds",
    "world_size",
]

_ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_distributed() -> bool:
    """True when torchrun (or an equivalent launcher) started this process as one of several:
    its environment names a rank, a world size above 1 and a rendezvous address."""
    if any(name not in os.environ for name in _ENVIRONMENT):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the group (1 without one)."""
    return dist.get_world_size() if is_distributed() else 1


def process_rank() -> int:
    """This process's rank (0 without a group)."""
    return dist.get_rank() if is_distributed() else 0


def is_writer() -> bool:
    """True for the one process that writes files and prints results: rank 0, or the only
    process."""
    return process_rank() == 0


def backend_for(device: str) -> str:
    """``nccl`` when the run is on CUDA (``--device cuda`` or ``auto`` with a GPU), else
    ``gloo``."""
    choice = device.strip().lower()
    on_cuda = choice.startswith("cuda") or (choice == "auto" and torch.cuda.is_available())
    return "nccl" if on_cuda and dist.is_nccl_available() else "gloo"


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[bool]:
    """Join the process group torchrun describes for the block (yields True), or do nothing
    outside torchrun (yields False). On CUDA each process takes the GPU of its ``LOCAL_RANK``,
    so ``cuda`` means that GPU. A group started by the caller is used as it is and left open."""
    if is_distributed() or not launched_distributed():
        yield is_distributed()
        return
    if not dist.is_available():
        raise InputError("torch.distributed is not available in this torch build")
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    try:
        yield True
        # Every process finishes before any leaves: rank 0 hosts the rendezvous store, and a
        # process whose peers' store vanishes under gloo's threads aborts ("terminate called
        # without an active exception"). Not after an error, which would leave the rest waiting.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over every process (a new tensor; ``values`` itself
    without a group). Every process gets the same bits."""
    if not is_distributed():
        return values
    total = values.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def shard_bounds(n: int, world: int | None = None, rank: int | None = None) -> tuple[int, int]:
    """The contiguous slice ``[start, stop)`` of ``n`` rows that process ``rank`` of ``world``
    owns (default: this process): the first ``n % world`` processes take one row more."""
    world = world_size() if world is None else world
    rank = process_rank() if rank is None else rank
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def agreed_elapsed(started: float) -> float:
    """Seconds since ``started`` (a ``time.perf_counter()`` reading), the largest over the
    processes of the group: a time budget then stops every process at the same step (one
    stopping alone would leave the others waiting in a collective)."""
    elapsed = time.perf_counter() - started
    if not is_distributed():
        return elapsed
    value = torch.tensor([elapsed], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value.item())
