"""Reproduce ``adult_sample.csv``: a 5,000-row random sample of the cleaned UCI Adult file.

The source is the cleaned 45,222-row ``adult.csv`` (adult.data + adult.test, rows with
'?' removed) described in ``shared/data/README.md``. Rows are drawn with
``DataFrame.sample(n=5000, random_state=0)`` and then put back in their original file
order. All 15 columns are kept as they are (every value is read and written as text),
with the label ``income`` (``<=50K`` / ``>50K``) last.

Usage (from the repository root)::

    python sample_data/make_adult_sample.py [SOURCE] [-o OUTPUT]

``SOURCE`` defaults to ``../shared/data/adult.csv`` relative to the repository root;
``OUTPUT`` defaults to ``adult_sample.csv`` next to this script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent
DEFAULT_SOURCE = Path("../shared/data/adult.csv")
DEFAULT_OUTPUT = SCRIPT_DIR / "adult_sample.csv"
SAMPLE_ROWS = 5000
SEED = 0
LABEL = "income"
EXPECTED_COLUMNS = 15


def _umask() -> int:
    """Return the process umask (reading it requires setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_sample(source: Path, rows: int = SAMPLE_ROWS, seed: int = SEED) -> pd.DataFrame:
    """Read ``source`` as text and return ``rows`` rows sampled with ``seed``, in file order."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    if frame.shape[1] != EXPECTED_COLUMNS or frame.columns[-1] != LABEL:
        raise ValueError(
            f"{source}: expected {EXPECTED_COLUMNS} columns ending with {LABEL!r}, "
            f"got {list(frame.columns)}"
        )
    if len(frame) < rows:
        raise ValueError(f"{source}: has {len(frame)} rows, fewer than {rows}")
    return frame.sample(n=rows, random_state=seed).sort_index()


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file as 0600; give it the usual permissions.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=None,
        help=f"cleaned Adult CSV (default: {DEFAULT_SOURCE} relative to the repository root)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="output CSV path (default: adult_sample.csv next to this script)",
    )
    args = parser.parse_args(argv)
    source: Path = args.source if args.source is not None else REPO_ROOT / DEFAULT_SOURCE
    if not source.is_file():
        print(f"error: Adult CSV not found: {source}", file=sys.stderr)
        return 1
    try:
        sample = make_sample(source)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_csv_atomic(sample, args.output)
    print(f"wrote {len(sample)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
