"""The import contracts in pyproject.toml ([tool.importlinter]) hold: the sub-packages are
layered (cli > reports > workflows > methods > metrics > models > attacks > data > core, imports
only pointing down) and only froc_cli.cli imports typer and rich. .ci/run runs lint-imports too;
this test keeps a plain ``pytest`` run honest where import-linter is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter")
    script = Path(sys.executable).parent / "lint-imports"
    if not script.is_file():
        pytest.skip("lint-imports is not installed beside this interpreter")
    done = subprocess.run(
        [str(script), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
