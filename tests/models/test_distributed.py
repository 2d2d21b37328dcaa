"""Distributed training on torch.distributed (froc_cli.core._distributed and the sharing in
froc_cli.models._training): two gloo processes on CPU against one process.

* The loss trajectory of a few epochs (every term of eq. 10) and the parameters trained by
  two processes equal one process's on the same global batches, to 1e-5 (float sums differ
  only in their order).
* F is taken on the all-reduced group sums: with shards whose groups are unevenly split (one
  process holds nearly all of the protected group) each process gets the global batch's F,
  which neither shard's own F nor their mean equals, and the processes' gradients add up to
  F's gradient on the whole batch.
* ``torchrun --nproc-per-node 2 -m froc_cli train-in`` writes its model, trace and results
  once, from rank 0, and the model is the one process's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from froc_cli.attacks import FeatureSpace
from froc_cli.core import Objective, ThreatModel, TrainConfig
from froc_cli.core._distributed import shard_bounds
from froc_cli.models import build_model, fairness_term, summed_across_processes, train_model

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVE = Objective(lambda_f=1.0, lambda_r=0.5, threat=ThreatModel(eps=0.1, pgd_steps=2))
CONFIG = TrainConfig(model="mlp:8", epochs=4, lr=0.02, batch_size=64, seed=3, device="cpu")


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """203 rows (an odd count: uneven slices); the protected group (a = 0) is rows 0-59, so
    process 0's slice (rows 0-101) holds all of it and process 1's none."""
    generator = torch.Generator().manual_seed(1)
    n = 203
    x = torch.rand(n, 5, generator=generator)
    a = (torch.arange(n) >= 60).float()
    noise = 0.1 * torch.randn(n, generator=generator)
    y = ((x[:, 0] + 0.3 * a + noise) > 0.6).float()
    return x, y, a


def _train() -> tuple[list[list[float]], list[float]]:
    x, y, a = _data()
    model = build_model(CONFIG.model, x.shape[1], seed=0, device=torch.device("cpu"))
    history = train_model(
        model, x, y, a, objective=OBJECTIVE, config=CONFIG,
        space=FeatureSpace.unconstrained(x.shape[1]),
    )  # fmt: skip
    trajectory = [[h.loss, h.bce, h.fairness, h.robustness] for h in history]
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).tolist()
    return trajectory, params


def _scores(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Scores whose unprotected rows score higher in process 1's slice than in process 0's:
    the group rates of either slice differ from the whole batch's."""
    later = (torch.arange(len(x)) >= 102).float()
    return torch.sigmoid(3 * x[:, 0] - 1 + 0.5 * a + 1.5 * later)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        trajectory, params = _train()
        x, y, a = _data()
        start, stop = shard_bounds(len(x))
        probs = _scores(x, a)[start:stop].clone().requires_grad_(True)
        results = {}
        for criterion in ("parity", "odds"):
            shared = fairness_term(
                probs, y[start:stop], a[start:stop], criterion,
                reduce=summed_across_processes, groups=2,
            )  # fmt: skip
            (grad,) = torch.autograd.grad(shared, probs)
            own = fairness_term(probs.detach(), y[start:stop], a[start:stop], criterion)
            results[criterion] = {
                "F": float(shared.detach()),
                "own": float(own),
                "grad": grad.tolist(),
            }
        Path(out, f"rank{rank}.json").write_text(
            json.dumps({"trajectory": trajectory, "params": params, "fairness": results})
        )
        dist.barrier()  # both done before rank 0's store goes away (see distributed_session)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.fixture(scope="module")
def one_process() -> tuple[list[list[float]], list[float]]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train()
    finally:
        torch.set_num_threads(previous)


def test_two_processes_follow_the_single_process_loss_trajectory(
    two_processes: list[dict], one_process: tuple[list[list[float]], list[float]]
) -> None:
    trajectory, params = one_process
    assert len(trajectory) == CONFIG.epochs
    assert min(t[2] for t in trajectory) > 1e-3 and trajectory[0][3] > 0  # F and R weigh in
    for rank in two_processes:
        np.testing.assert_allclose(rank["trajectory"], trajectory, rtol=0, atol=1e-5)
        np.testing.assert_allclose(rank["params"], params, rtol=0, atol=1e-5)
    # Every process holds the very same model (DDP applies the same averaged gradient).
    assert two_processes[0]["params"] == two_processes[1]["params"]


@pytest.mark.parametrize("criterion", ["parity", "odds"])
def test_fairness_uses_the_all_reduced_group_sums(
    two_processes: list[dict], criterion: str
) -> None:
    x, y, a = _data()
    probs = _scores(x, a).clone().requires_grad_(True)
    term = fairness_term(probs, y, a, criterion)
    (grad,) = torch.autograd.grad(term, probs)
    whole = term.detach()
    first, second = (rank["fairness"][criterion] for rank in two_processes)
    # Each process gets the global batch's F...
    assert first["F"] == pytest.approx(float(whole), abs=1e-6)
    assert second["F"] == pytest.approx(float(whole), abs=1e-6)
    # ...which per-shard F would miss: process 1 holds no protected row (its own F is 0),
    # process 0 nearly all of them.
    assert second["own"] == 0.0
    assert abs(first["own"] - float(whole)) > 0.02
    assert abs((first["own"] + second["own"]) / 2 - float(whole)) > 0.02
    # The processes' gradients are the slices of F's gradient on the whole batch.
    start, stop = shard_bounds(len(x), 2, 0)
    assert (start, stop) == (0, 102)
    np.testing.assert_allclose(first["grad"] + second["grad"], grad.tolist(), atol=1e-7)


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name(
    "torchrun").exists(), reason="torchrun not installed")  # fmt: skip
def test_torchrun_train_in_writes_once_from_rank_zero(sample_csv: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    common = [
        "train-in", str(sample_csv), "--protected", "gender", "--lambda-f", "0.5",
        "--lambda-r", "0.2", "--epochs", "6", "--batch-size", "512", "--pgd-steps", "2",
        "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [str(torchrun if torchrun.exists() else "torchrun"), "--standalone",
         "--nproc-per-node", "2", "-m", "froc_cli", *common,
         "-o", str(tmp_path / "m2.froc"), "--trace", str(tmp_path / "t2.csv")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    # One JSON document on stdout (rank 1 printed nothing), one model, one trace.
    payload = json.loads(launched.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2.froc", "t2.csv"]
    single = subprocess.run(
        [sys.executable, "-m", "froc_cli", *common, "-o", str(tmp_path / "m1.froc")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    alone = json.loads(single.stdout)
    for key in ("accuracy", "bias_score", "robustness"):
        assert payload["test"]["metrics"][key] == pytest.approx(
            alone["test"]["metrics"][key], abs=0.01
        ), key
    trials = payload["trials"][0], alone["trials"][0]
    assert trials[0]["epochs_run"] == trials[1]["epochs_run"]
