"""bench/bench_gpu.py's streamed and distributed cases cannot be measured without a GPU here;
this checks, on CPU and tiny, that the script imports and that their logic runs: the streamed
audit counts every generated row, and the torchrun command is the one the README documents."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_gpu() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench_gpu")
    finally:
        sys.path.remove(str(BENCH))


def test_streamed_case_audits_every_generated_row(bench_gpu: ModuleType, tmp_path: Path) -> None:
    work = bench_gpu.streamed_audit_work("cpu", rows=30_000, shards=3, workdir=tmp_path)
    figures = work()
    assert figures["rows"] == 30_000
    assert 0.5 < figures["accuracy"] <= 1.0 and 0.0 <= figures["robustness"] <= 1.0
    assert len(list((tmp_path / "shards_30000_3").glob("*.parquet"))) == 3


def test_distributed_case_is_torchrun_train_in(bench_gpu: ModuleType) -> None:
    command = bench_gpu.distributed_command("cuda", 4, Path("/data/adult.csv"), 80)
    assert Path(command[0]).name == "torchrun"
    assert command[1:6] == ["--standalone", "--nproc-per-node", "4", "-m", "froc_cli"]
    assert command[6:8] == ["train-in", "/data/adult.csv"]
    assert command[command.index("--device") + 1] == "cuda"
    assert "--protected-group" in command and "--json" in command
    sample = bench_gpu.distributed_command("cpu", 2, Path("synthetic.csv"), 3)
    assert sample[sample.index("--protected") + 1] == "gender"
