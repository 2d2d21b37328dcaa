"""Tests of froc_cli.core._device: device selection, the thread-count context and denormal flushing.

Every context manager must leave the process as the caller left it, also when the block
raises. Denormal flushing has no torch getter: it is observed the way the module does, by
whether a float32 denormal (1e-39) survives a multiplication by one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from froc_cli.core import (
    InputError,
    denormals_flushed,
    flushing_denormals,
    resolve_device,
    torch_threads,
)

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="asserts CPU-only behaviour")


def _flushed() -> bool:
    return bool((torch.tensor([1e-39]) * 1.0).item() == 0.0)


@pytest.fixture
def restore_flush_mode() -> Iterator[None]:
    before = _flushed()
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


@pytest.fixture
def restore_threads() -> Iterator[int]:
    before = torch.get_num_threads()
    try:
        yield before
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# resolve_device
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu ", "Cpu"])
def test_cpu_is_always_available(name: str) -> None:
    device = resolve_device(name)
    assert device == torch.device("cpu") and device.type == "cpu"


@needs_no_cuda
@pytest.mark.parametrize("name", ["auto", "AUTO", " auto"])
def test_auto_is_cpu_without_cuda(name: str) -> None:
    assert resolve_device(name) == torch.device("cpu")


@needs_no_cuda
@pytest.mark.parametrize("name", ["cuda", "CUDA", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_one_clear_input_error(name: str) -> None:
    with pytest.raises(InputError) as excinfo:
        resolve_device(name)
    message = str(excinfo.value)
    assert message == f"--device {name!r}: CUDA is not available on this machine"
    assert excinfo.value.exit_code == 2


@pytest.mark.parametrize("name", ["gpu", "mps", "", "cudaa", "cpu:0", "0", "cuda:x", "cuda:"])
def test_unknown_device_is_an_input_error_naming_the_value(name: str) -> None:
    with pytest.raises(InputError) as excinfo:
        resolve_device(name)
    assert str(excinfo.value) == f"--device {name!r}: expected auto, cpu, cuda or cuda:N"


# --------------------------------------------------------------------------------------------
# torch_threads
# --------------------------------------------------------------------------------------------


def test_torch_threads_sets_and_restores(restore_threads: int) -> None:
    torch.set_num_threads(2)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(3):  # nests
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_torch_threads_restores_on_exception(restore_threads: int) -> None:
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [None, 2])
def test_torch_threads_none_or_same_count_changes_nothing(
    restore_threads: int, threads: int | None
) -> None:
    torch.set_num_threads(2)
    with torch_threads(threads):
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="inner"), torch_threads(threads):
        raise ValueError("inner")
    assert torch.get_num_threads() == 2


# --------------------------------------------------------------------------------------------
# denormal flushing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("initially", [False, True])
def test_denormals_flushed_restores_the_previous_mode(
    restore_flush_mode: None, initially: bool
) -> None:
    if not torch.set_flush_denormal(initially):
        pytest.skip("this CPU cannot flush denormals")
    assert _flushed() is initially
    with denormals_flushed():
        assert _flushed()
        assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
    assert _flushed() is initially
    with pytest.raises(KeyError), denormals_flushed():
        raise KeyError("x")
    assert _flushed() is initially


@pytest.mark.parametrize("initially", [False, True])
def test_flushing_denormals_decorator(restore_flush_mode: None, initially: bool) -> None:
    if not torch.set_flush_denormal(initially):
        pytest.skip("this CPU cannot flush denormals")
    seen: list[bool] = []

    @flushing_denormals
    def work(value: float, *, scale: float = 1.0) -> float:
        """Multiply."""
        seen.append(_flushed())
        if value < 0:
            raise ArithmeticError("negative")
        return float((torch.tensor([value]) * scale).item())

    assert work(1e-39) == 0.0  # flushed inside
    assert work(2.0, scale=3.0) == 6.0  # arguments pass through
    assert seen == [True, True] and _flushed() is initially
    with pytest.raises(ArithmeticError, match="negative"):
        work(-1.0)
    assert _flushed() is initially
    assert work.__name__ == "work" and work.__doc__ == "Multiply."  # functools.wraps
