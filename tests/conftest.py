"""Shared fixtures: the bundled sample data and a tiny seeded frame with a planted bias."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import Result

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"

FrameFactory = Callable[..., pd.DataFrame]


def make_biased_frame(n: int = 200, *, seed: int = 0, gap: float = 0.3) -> pd.DataFrame:
    """A small credit-approval table whose label favours ``gender == "male"`` by ``gap``.

    Columns (label last): age (int), income (float, 2 decimals), education, region (text),
    gender (text, the protected attribute), approved (int 0/1, 1 favourable).
    """
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.45, "female", "male")
    age = rng.integers(18, 76, size=n)
    income = np.round(rng.uniform(10.0, 200.0, size=n), 2)
    education = rng.choice(["highschool", "bachelor", "master"], size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    score = 0.25 + 0.3 * (income - 10.0) / 190.0 + 0.1 * (education == "master")
    score = score + np.where(gender == "male", gap / 2, -gap / 2)
    approved = (rng.random(n) < np.clip(score, 0.02, 0.98)).astype(np.int64)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "education": education,
            "region": region,
            "gender": gender,
            "approved": approved,
        }
    )


def make_frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Credit approvals that the features predict well (accuracy ~0.85), with a gender gap
    of ~0.35 in approval rates, partly through income. Label ``approved`` (0/1) last."""
    rng = np.random.default_rng(seed)
    gender = np.where(rng.random(n) < 0.45, "female", "male")
    age = rng.integers(18, 76, size=n)
    shift = np.where(gender == "male", 25.0, -25.0)
    income = np.round(np.clip(rng.uniform(10.0, 200.0, size=n) + shift, 10.0, 200.0), 2)
    education = rng.choice(["highschool", "bachelor", "master"], size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    logit = (
        0.05 * (income - 105.0)
        + 1.2 * (education == "master")
        - 0.8 * (education == "highschool")
        + 0.02 * (age - 45)
        + np.where(gender == "male", 0.7, -0.7)
    )
    approved = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "education": education,
            "region": region,
            "gender": gender,
            "approved": approved,
        }
    )


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    """sample_data/synthetic.csv: 4000 rows, label ``approved`` (last), protected ``gender``."""
    path = SAMPLE_DATA / "synthetic.csv"
    assert path.is_file(), path
    return path


@pytest.fixture
def biased_frame() -> FrameFactory:
    """Factory of tiny planted-bias frames: ``biased_frame(n=200, seed=0, gap=0.3)``."""
    return make_biased_frame


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a module on one torch thread, restoring the setting afterwards: its thousands of
    small steps on tiny problems are dominated by thread-pool synchronisation (one thread is
    ~10x faster, and steadiest on a busy machine), and one thread gives the same bits every
    run. Modules use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def assert_one_line_error(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``, nothing on stdout, exactly one 'froc: error:' line on stderr holding
    every needle, and no traceback; the line."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("froc: error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
