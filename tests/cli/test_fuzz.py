"""A fuzzer of the command line (hypothesis): random small tables and random option sets
through the typer app, for every command (audit, train-in, preprocess, compare, predict).

Tables: 0-5 feature columns of mixed types (ints, floats with NaN, infinities and 1e308,
text with numeric-looking values, leading zeros, empty strings and unicode, booleans, an
all-empty column), odd column names (spaces, commas, quotes, newlines, unicode, empty,
repeated), a label that is binary, constant, multi-valued, partly missing or absent, a
protected column of 1-5 groups; written as CSV (sometimes semicolon-delimited), parquet or an
empty file. Each table is clean, clean but for one defect, or wild. Options: valid, odd
(legal but unusual) and invalid values, output paths that are fresh, the input itself, a
link to it, a folder, another output or an existing file, --json; all valid, valid and odd,
exactly one invalid, or any mix.
Most cases are refused by the input checks; a bounded minority (tiny tables, one or two
epochs, one or two fits, one augmentation round) runs a whole command.

Every run must (README, "Exit codes"):

- end with exit 0, 1, 2 or 3 and no uncaught exception: no traceback, no other code (the
  README's exit 4, an internal error, is a bug: the failure shows the traceback froc saved);
- on exit 2 or 3: print nothing on stdout, and end stderr with the error, one
  ``froc: error: ...`` line (the lines before it, if any, are ``froc: ...`` progress lines);
- on exit 0 or 1 with --json: print one JSON object on stdout, its ``exit_code`` the exit code;
- exit 2 when an option value, a path, or a column or value it names is invalid (the failure
  lists them), and never print a Python warning;
- never pass (exit 0 or 1) when a feature column of numbers holds an infinity or a magnitude
  beyond 2^53 (README, "Bad numbers are bad input"; unless --dropna drops that row), nor when
  the file has fewer rows than twice --min-group-size (a group then has too few rows: exit 3,
  or 2);
- leave the input files' bytes unchanged;
- leave in the folder the input files and only the outputs the options named, when the exit
  code says they are written (an audit or compare report on 0 or 1; a train-in model on 0, or
  on 1 with --allow-infeasible; a train-in trace on 0 or 1; a preprocess output on 0, or on 1
  with --allow-partial; a preprocess manifest on 0 or 1; a predict output on 0), each of them
  then written: no other file, no temporary file; a new output with mode 0666 less the umask,
  an output that existed keeping its mode, and rewritten only when the exit code says so.

Each example runs in its own temporary folder, which is also the working directory. The five
tests run 600 examples, about 25 s on two cores (a third of it loading torch).

Reproducing a failure: every run uses one seed, printed with each failing example (hypothesis
also prints the falsifying example and, with print_blob, a ``@reproduce_failure`` line).
Rerun with the same seed::

    python -m pytest tests/cli/test_fuzz.py --hypothesis-seed=SEED

FROC_FUZZ_SCALE=4 runs four times as many examples (FROC_FUZZ_SCALE=0.25 a quarter);
FROC_FUZZ_NO_SHRINK=1 reports a failing example as found, without shrinking it (shrinking
reruns the command hundreds of times: minutes when whole runs are involved).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import random
import re
import shlex
import stat
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import hypothesis.core
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer.main
import typer.testing
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from froc_cli.cli import app

# --------------------------------------------------------------------------------------------
# the seed, printed on failure
# --------------------------------------------------------------------------------------------

_FORCED_SEED = hypothesis.core.global_force_seed  # pytest --hypothesis-seed=N
SEED: Any = _FORCED_SEED if _FORCED_SEED is not None else random.SystemRandom().randrange(2**32)
RERUN = (
    f"fuzz seed {SEED}: rerun with "
    f"`python -m pytest tests/cli/test_fuzz.py --hypothesis-seed={SEED}`"
)
SCALE = float(os.environ.get("FROC_FUZZ_SCALE", "1"))
# Shrinking a failure reruns the command hundreds of times (minutes when whole runs are
# involved): FROC_FUZZ_NO_SHRINK=1 reports the first failing example as found.
PHASES = tuple(
    phase
    for phase in Phase
    if not (os.environ.get("FROC_FUZZ_NO_SHRINK") and phase in (Phase.shrink, Phase.explain))
)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        derandomize=False,
        print_blob=True,
        phases=PHASES,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


EXIT_CODES = (0, 1, 2, 3)
UNKNOWN = "no such column ✗"  # never a column name nor a cell the strategies make
ABS = "\x00ABS\x00"  # replaced by the example's folder (an absolute path) when it runs
Draw = Callable[[st.SearchStrategy[Any]], Any]

# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------

Cell = None | bool | int | float | str

KINDS = ("int", "float", "text", "numeric_text", "bool", "mixed", "empty")
NUMERIC_SPECIALS: tuple[Cell, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    5e-324,
    -0.0,
    2**53 + 1,
    2**64,
)
TEXT_SPECIALS: tuple[Cell, ...] = (
    "",
    " ",
    "NA",
    "nan",
    "inf",
    "-inf",
    "007",
    "0042",
    "1,5",
    "1e3",
    'say "hi"',
    "x;y",
    "Ünïcødé ✓",
    "TRUE",
    "\t",
)
ODD_NAMES = (
    "a b",
    " padded ",
    "a,b",
    'q"uote',
    "semi;colon",
    "ünï ✓",
    "1",
    "007",
    "",
    "Unnamed: 0",
    "x\ny",
    "#",
    "-dash",
    "--protected",
    "label",
)
NAMES = st.one_of(st.sampled_from(ODD_NAMES), st.sampled_from(ODD_NAMES), st.text(max_size=4))
GROUP_POOLS: tuple[tuple[Cell, ...], ...] = (
    ("m", "f", "x", "nb", "Ünï"),
    (0, 1, 2, 3, 4),
    ("0", "00", "1", "01", "2"),
    (True, False),
    ("a b", "c,d", 'e"f', "l\nm", " "),
)
LABELS: dict[str, tuple[Cell, ...]] = {
    "binary01": (0, 1),
    "binary_text": ("no", "yes"),
    "binary_odd": ("<=50K", ">50K"),
    "bool": (False, True),
    "float01": (0.0, 1.0),
    "constant": (1,),
    "multi": (0, 1, 2),
    "multi_text": ("a", "b", "c", "d"),
}
# pandas.read_csv's default missing-value texts.
NA_TEXTS = frozenset(
    [
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)
FORMATS = ("csv", "csv", "csv", "csv;", "parquet", "parquet", "empty")
# One thing wrong with an otherwise well-formed table.
DEFECTS = (
    "inf",
    "huge",
    "nan",
    "missing",
    "text_in_numeric",
    "numeric_text",
    "big_int",
    "bool_feature",
    "constant_feature",
    "unicode_values",
    "empty_column",
    "odd_names",
    "duplicate_name",
    "no_features",
    "label_first",
    "label_absent",
    "label_missing",
    "one_group",
    "five_groups",
    "numeric_groups",
    "group_missing",
    "tiny",
    "header_only",
    "semicolon",
    "empty_file",
    *(f"label_{kind}" for kind in LABELS if kind != "binary01"),
)


@dataclass(frozen=True)
class Column:
    name: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    fmt: str  # csv, csv; (semicolon-delimited), parquet, empty (a file of no bytes)
    label: str | None  # the label column's name; None when there is none
    protected: str
    groups: tuple[str, ...]  # the protected values, as text
    label_values: tuple[str, ...]  # the label values, as text
    n_rows: int
    how: str = ""  # clean, the defect, or wild

    @property
    def suffix(self) -> str:
        return ".parquet" if self.fmt == "parquet" else ".csv"

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def preview(self, rows: int = 12) -> str:
        """The table as CSV text (its first rows), for failure reports."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.names)
        for row in range(min(rows, self.n_rows)):
            writer.writerow([_text(column.cells[row]) for column in self.columns])
        more = f"... ({self.n_rows} rows)\n" if self.n_rows > rows else ""
        return (
            f"table ({self.how}; written as {self.fmt}; label {self.label!r}, protected "
            f"{self.protected!r}):\n{buffer.getvalue()}{more}"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's report
        printer.text(self.preview())

    def bad_numbers(self) -> dict[str, list[tuple[int, str]]]:
        """The cells of number-only columns that hold an infinity or a magnitude beyond 2^53
        (README, "Bad numbers are bad input": exit 2), by column: (row, what is wrong)."""
        if self.fmt not in ("csv", "parquet"):  # a semicolon file reads as one text column
            return {}
        found: dict[str, list[tuple[int, str]]] = {}
        for column in self.columns:
            present = [c for c in column.cells if c is not None]
            if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in present):
                continue
            for row, c in enumerate(column.cells):
                if isinstance(c, float) and math.isinf(c):
                    found.setdefault(column.name, []).append((row, "infinite"))
                elif isinstance(c, int | float) and abs(c) > 2**53:
                    found.setdefault(column.name, []).append((row, "beyond 2^53"))
        return found

    def dropna_rows(self, columns: set[str]) -> set[int]:
        """The rows --dropna may drop: a missing or infinite cell in one of ``columns``
        (counting every text pandas may read as missing)."""
        rows = set()
        for column in self.columns:
            if column.name in columns:
                for row, c in enumerate(column.cells):
                    missing = c is None or (isinstance(c, str) and c in NA_TEXTS)
                    if missing or (isinstance(c, float) and not math.isfinite(c)):
                        rows.add(row)
        return rows


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return repr(cell)  # nan, inf, -inf, 1e+308
    return str(cell)


def _arrow(cells: tuple[Cell, ...]) -> pa.Array:
    present = [c for c in cells if c is not None]
    if not present:
        return pa.array(list(cells), pa.null())
    if all(isinstance(c, bool) for c in present):
        return pa.array(list(cells), pa.bool_())
    if all(isinstance(c, int) and not isinstance(c, bool) and abs(c) < 2**63 for c in present):
        return pa.array(list(cells), pa.int64())
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in present):
        return pa.array([None if c is None else float(c) for c in cells], pa.float64())
    return pa.array([None if c is None else _text(c) for c in cells], pa.string())


def write_table(table: Table, path: Path) -> None:
    if table.fmt == "empty":
        path.write_bytes(b"")
    elif table.fmt == "parquet":
        arrays = [_arrow(column.cells) for column in table.columns]
        pq.write_table(pa.Table.from_arrays(arrays, names=table.names), path)
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(
                handle, delimiter=";" if table.fmt == "csv;" else ",", lineterminator="\n"
            )
            writer.writerow(table.names)
            for row in range(table.n_rows):
                writer.writerow([_text(column.cells[row]) for column in table.columns])


def _cell(kind: str, rng: random.Random) -> Cell:
    if kind == "int":
        return rng.randint(-50, 50)
    if kind == "float":
        return round(rng.uniform(-10.0, 10.0), 3)
    if kind == "text":
        return rng.choice(("a", "b", "c d", "Ünï"))
    if kind == "numeric_text":
        return rng.choice(("007", "0042", "12", "0", "1e3"))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "mixed":
        return _cell(rng.choice(("int", "float", "text", "numeric_text", "bool")), rng)
    return None  # empty


def _spread(values: Sequence[Cell], n: int, rng: random.Random) -> list[Cell]:
    """n cells of ``values``, each value at least once when n allows, in random order."""
    cells = [values[i] if i < len(values) else rng.choice(values) for i in range(n)]
    rng.shuffle(cells)
    return cells


def _texts(values: Sequence[Cell]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_text(v) for v in values))


@dataclass
class Draft:
    """A table being built: features, then the protected column, then the label."""

    n: int
    features: list[tuple[str, list[Cell]]]
    groups: tuple[Cell, ...]
    group_cells: list[Cell]
    label_values: tuple[Cell, ...] | None
    label_cells: list[Cell]
    protected: str = "group"
    label: str = "y"
    fmt: str = "csv"
    label_first: bool = False

    def numeric_feature(self, rng: random.Random) -> list[Cell]:
        """A numeric feature's cells (one is added when there is none)."""
        numeric = [cells for _, cells in self.features if isinstance(cells[0], int | float)]
        if numeric:
            return rng.choice(numeric)
        cells: list[Cell] = [_cell("float", rng) for _ in range(self.n)]
        self.features.append(("score", cells))
        return cells

    def freeze(self, how: str) -> Table:
        columns = [Column(name, tuple(cells)) for name, cells in self.features]
        columns.append(Column(self.protected, tuple(self.group_cells)))
        label: str | None = None
        if self.label_values is not None:
            label = self.label
            at = 0 if self.label_first else len(columns)
            columns.insert(at, Column(self.label, tuple(self.label_cells)))
        return Table(
            tuple(columns),
            self.fmt,
            label,
            self.protected,
            _texts(self.groups),
            _texts(self.label_values or ()),
            self.n,
            how,
        )


def _clean_draft(draw: Draw, rng: random.Random, n: int) -> Draft:
    kinds = draw(st.lists(st.sampled_from(("int", "float", "text")), min_size=1, max_size=3))
    names = ("age", "income", "region")
    features = [
        (nm, [_cell(k, rng) for _ in range(n)]) for nm, k in zip(names, kinds, strict=False)
    ]
    groups: tuple[Cell, ...] = ("f", "m", "x")[: draw(st.integers(2, 3))]
    # Each (group, label) cell gets rows, so a whole run can split the table.
    group_cells = [groups[i % len(groups)] for i in range(n)]
    label_cells: list[Cell] = [(i // len(groups)) % 2 for i in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    fmt = draw(st.sampled_from(("csv", "parquet")))
    return Draft(
        n,
        features,
        groups,
        [group_cells[i] for i in order],
        (0, 1),
        [label_cells[i] for i in order],
        fmt=fmt,
    )


def _apply_defect(draw: Draw, rng: random.Random, d: Draft, defect: str) -> None:
    row = rng.randrange(d.n) if d.n else 0
    if defect in ("inf", "huge", "nan", "big_int", "text_in_numeric"):
        cells = d.numeric_feature(rng)
        if defect == "inf":
            cells[row] = draw(st.sampled_from((math.inf, -math.inf)))
        elif defect == "huge":
            cells[row], cells[(row + 1) % d.n] = 1e308, -1e308
        elif defect == "nan":
            cells[row] = math.nan
        elif defect == "big_int":
            cells[row] = draw(st.sampled_from((2**63 + 5, -(2**63) - 5, 10**30)))
        else:
            cells[row] = draw(st.sampled_from(("x", " ", "1,5", "n/a", "Ünï")))
    elif defect == "missing":
        d.features[rng.randrange(len(d.features))][1][row] = None
    elif defect == "numeric_text":
        d.features.append(("zip", [rng.choice(("007", "0042", "0100", "10")) for _ in range(d.n)]))
    elif defect == "bool_feature":
        d.features.append(("flag", [rng.random() < 0.5 for _ in range(d.n)]))
    elif defect == "constant_feature":
        d.features.append(("const", [1] * d.n))
    elif defect == "unicode_values":
        values = ("Ünïcødé ✓", "", " ", 'q"t', "a,b", "x;y", "\t")
        d.features.append(("text", [rng.choice(values) for _ in range(d.n)]))
    elif defect == "empty_column":
        d.features.insert(rng.randrange(len(d.features) + 1), ("empty", [None] * d.n))
    elif defect == "odd_names":
        names = draw(
            st.lists(NAMES, min_size=len(d.features) + 2, max_size=len(d.features) + 2, unique=True)
        )
        d.features = [(names[i], cells) for i, (_, cells) in enumerate(d.features)]
        d.protected, d.label = names[-2], names[-1]
    elif defect == "duplicate_name":
        name = draw(st.sampled_from([*(nm for nm, _ in d.features), d.protected, d.label]))
        at = rng.randrange(len(d.features))
        if d.features[at][0] == name:
            d.features.append((name, [_cell("int", rng) for _ in range(d.n)]))
        else:
            d.features[at] = (name, d.features[at][1])
    elif defect == "no_features":
        d.features = []
    elif defect == "label_first":
        d.label_first = True
    elif defect == "label_absent":
        d.label_values = None
    elif defect == "label_missing":
        d.label_cells[row] = None
    elif defect.startswith("label_"):
        d.label_values = LABELS[defect.removeprefix("label_")]
        d.label_cells = _spread(d.label_values, d.n, rng)
    elif defect in ("one_group", "five_groups", "numeric_groups"):
        d.groups = {"one_group": ("f",), "five_groups": ("f", "m", "x", "nb", "u")}.get(
            defect, (0, 1, 2)
        )
        d.group_cells = _spread(d.groups, d.n, rng)
    elif defect == "group_missing":
        d.group_cells[row] = None
    elif defect == "semicolon":
        d.fmt = "csv;"
    elif defect == "empty_file":
        d.fmt = "empty"
    elif defect not in ("tiny", "header_only"):  # those two are row counts
        raise AssertionError(defect)


def _wild_table(draw: Draw, rng: random.Random) -> Table:
    """Anything: random kinds, names, specials, missing cells, groups and labels."""
    n = draw(st.one_of(st.integers(0, 4), st.integers(5, 40)))
    n_features = draw(st.integers(0, 5))
    names = draw(st.lists(NAMES, min_size=n_features + 2, max_size=n_features + 2, unique=True))
    if draw(st.sampled_from((False, False, True))):
        names[draw(st.integers(1, len(names) - 1))] = names[0]  # a repeated column name
    columns = []
    for name in names[:n_features]:
        kind = draw(st.sampled_from(KINDS))
        cells: list[Cell] = [_cell(kind, rng) for _ in range(n)]
        if n:
            missing = draw(st.sampled_from((0.0, 0.0, 0.1, 0.5)))
            cells = [None if rng.random() < missing else c for c in cells]
            pool = (
                NUMERIC_SPECIALS if kind in ("int", "float") else NUMERIC_SPECIALS + TEXT_SPECIALS
            )
            for row, value in draw(
                st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(pool)), max_size=3)
            ):
                cells[row] = value
        columns.append(Column(name, tuple(cells)))
    pool = draw(st.sampled_from(GROUP_POOLS))
    groups = pool[: draw(st.integers(1, len(pool)))]
    group_cells: list[Cell] = _spread(groups, n, rng)
    if n and draw(st.sampled_from((False, False, True))):
        group_cells[rng.randrange(n)] = None
    columns.insert(draw(st.integers(0, len(columns))), Column(names[-2], tuple(group_cells)))
    label_kind = draw(st.sampled_from((*LABELS, "absent")))
    label: str | None = None
    label_values: tuple[Cell, ...] = ()
    if label_kind != "absent":
        label, label_values = names[-1], LABELS[label_kind]
        label_cells = _spread(label_values, n, rng)
        if n and draw(st.sampled_from((False, False, True))):
            label_cells[rng.randrange(n)] = None
        at = len(columns) if draw(st.sampled_from((True, True, False))) else 0
        columns.insert(at, Column(label, tuple(label_cells)))
    return Table(
        tuple(columns),
        draw(st.sampled_from(FORMATS)),
        label,
        names[-2],
        _texts(groups),
        _texts(label_values),
        n,
        "wild",
    )


@st.composite
def tables(draw: Draw) -> Table:
    """A small table: clean (a whole run is possible), clean but for one defect, or wild."""
    how = draw(st.sampled_from(("clean", "defect", "defect", "wild")))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    if how == "wild":
        return _wild_table(draw, rng)
    defect = draw(st.sampled_from(DEFECTS)) if how == "defect" else "clean"
    if defect == "tiny":
        n = draw(st.integers(1, 8))
    else:
        n = 0 if defect == "header_only" else draw(st.integers(24, 48))
    draft = _clean_draft(draw, rng, n)
    if defect != "clean":
        _apply_defect(draw, rng, draft, defect)
    return draft.freeze(defect)


# The columns of the table predict's model was trained on (see the model_file fixture).
MODEL_NAMES = ("x", "c", "g", "y")
PREDICT_DEFECTS = (
    "inf",
    "huge",
    "nan",
    "missing",
    "text_in_numeric",
    "x_kind",
    "unseen",
    "drop_x",
    "drop_c",
    "drop_labels",
    "extra",
    "duplicate_name",
    "header_only",
    "semicolon",
    "empty_file",
)


def _model_draft(rng: random.Random, n: int) -> Draft:
    return Draft(
        n,
        [("x", [_cell("float", rng) for _ in range(n)]), ("c", _spread("abc", n, rng))],
        ("m", "f"),
        _spread("mf", n, rng),
        (0, 1),
        _spread((0, 1), n, rng),
        protected="g",
        label="y",
        fmt="csv",
    )


@st.composite
def predict_tables(draw: Draw) -> Table:
    """Tables near the saved model's schema (x float, c text, g protected, y label)."""
    how = draw(st.sampled_from(("clean", "defect", "defect", "wild")))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 20))
    if how == "wild":
        table = _wild_table(draw, rng)
        names = draw(
            st.lists(
                st.sampled_from((*MODEL_NAMES, "x", "c")),
                min_size=len(table.columns),
                max_size=len(table.columns),
            )
        )
        columns = tuple(Column(nm, col.cells) for nm, col in zip(names, table.columns, strict=True))
        return Table(columns, table.fmt, None, "g", ("m", "f"), ("0", "1"), table.n_rows, "wild")
    d = _model_draft(rng, n)
    d.fmt = draw(st.sampled_from(("csv", "parquet")))
    defect = draw(st.sampled_from(PREDICT_DEFECTS)) if how == "defect" else "clean"
    if defect == "header_only":
        d = _model_draft(rng, 0)
    elif defect == "missing":
        d.features[0][1][rng.randrange(n)] = None
    elif defect in ("inf", "huge", "nan", "text_in_numeric", "semicolon", "empty_file"):
        _apply_defect(draw, rng, d, defect)  # on x, the one numeric column
    elif defect == "x_kind":
        d.features[0] = ("x", [_cell(draw(st.sampled_from(KINDS)), rng) for _ in range(n)])
    elif defect == "unseen":
        d.features[1][1][rng.randrange(n)] = draw(st.sampled_from(("unseen ✓", "", "A", 1)))
    elif defect in ("drop_x", "drop_c"):
        del d.features[defect == "drop_c"]
    elif defect == "drop_labels":
        d.label_values = None
        d.group_cells = [] if draw(st.booleans()) else d.group_cells
    elif defect == "extra":
        d.features.insert(
            rng.randrange(3),
            (draw(NAMES), [_cell(draw(st.sampled_from(KINDS)), rng) for _ in range(n)]),
        )
    elif defect == "duplicate_name":
        d.features.append(
            (draw(st.sampled_from(MODEL_NAMES)), [_cell("int", rng) for _ in range(n)])
        )
    table = d.freeze(defect)
    if defect == "drop_labels" and not d.group_cells:
        table = Table(
            tuple(c for c in table.columns if c.name != "g"),
            table.fmt,
            None,
            "g",
            table.groups,
            table.label_values,
            table.n_rows,
            defect,
        )
    return table


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One command line, what it must do, and where it may write."""

    command: str
    mode: str  # clean, odd, one or wild: see Options
    data_name: str
    argv: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # any: the run must exit 2
    outputs: list[tuple[str, frozenset[int]]] = field(default_factory=list)  # (path, on exits)
    json: bool = False
    dropna: bool = False  # --dropna: rows with missing or infinite values are dropped
    min_group_size: int | None = 30  # None: not checked (predict; an unparseable value)
    features: set[str] = field(default_factory=set)  # the columns the run reads as features
    roles: set[str] = field(default_factory=set)  # the label and protected columns it reads
    existing: list[str] = field(default_factory=list)  # outputs that exist before the run

    def add(self, *tokens: str) -> None:
        self.argv.extend(tokens)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's report
        printer.text(f"froc {shlex.join(self.argv)}  (must exit 2: {self.invalid or 'no'})")


class Options:
    """Draws option values: omitted, valid, invalid (the run must exit 2) or odd (legal but
    unusual: anything but a crash). Mode clean draws valid values only; odd valid and odd
    ones; one valid values and exactly one invalid value (at the slot-th chance to be
    invalid), so that the run gets as far as that value lets it; wild every kind, each
    value invalid with chance 1/5."""

    def __init__(self, draw: Draw, case: Case, chances: int) -> None:
        """``chances``: the most chances to be invalid the command's options give (checked
        by :meth:`done`); mode one's slot is drawn uniformly among them."""
        self.draw = draw
        self.case = case
        self.total = chances
        # A wide integer modulo the count: hypothesis draws small ranges far from uniformly.
        self.slot = draw(st.integers(0, 2**32 - 1)) % chances if case.mode == "one" else -1
        self.chances = 0

    def done(self) -> None:
        assert self.chances <= self.total, f"{self.case.command}: {self.chances} chances"

    def invalid(self) -> bool:
        """Whether this choice is to be an invalid one."""
        if self.case.mode in ("clean", "odd"):
            return False
        self.chances += 1
        if self.case.mode == "one":
            return self.chances - 1 == self.slot
        bad: bool = self.draw(st.sampled_from((False, False, False, False, True)))
        return bad

    def value(
        self,
        flag: str,
        valid: Sequence[str],
        invalid: Sequence[str] = (),
        odd: Sequence[str] = (),
        *,
        omit: int = 2,
        given: bool = False,
    ) -> str | None:
        """The value given to ``flag``, or None when omitted; ``omit``: the odds of omitting
        it against 2 for a valid value; ``given``: shrink towards a valid value."""
        if invalid and self.invalid():
            chosen: str = self.draw(st.sampled_from(invalid))
            self.case.invalid.append(f"{flag} {chosen!r}")
        else:
            kinds = ["omit"] * omit + ["valid"] * 2 * bool(valid)
            if given:
                kinds.reverse()
            kinds += ["odd"] * bool(odd and self.case.mode in ("odd", "wild"))
            kind = self.draw(st.sampled_from(kinds))
            if kind == "omit":
                return None
            chosen = self.draw(st.sampled_from(valid if kind == "valid" else odd))
        self.case.add(flag, chosen)
        return chosen

    def flag(self, flag: str) -> bool:
        on: bool = self.draw(st.sampled_from((False, True)))
        if on:
            self.case.add(flag)
        return on

    def output(
        self,
        flag: str,
        fresh: Sequence[str],
        exits: frozenset[int],
        *,
        inputs: Sequence[str],
        bad_suffix: str | None = None,
        omit: int = 2,
    ) -> None:
        if self.invalid():
            kinds = ["input", "link", "folder"] + ["other"] * bool(self.case.outputs)
            kind = self.draw(st.sampled_from(kinds + ["suffix"] * bool(bad_suffix)))
        else:
            kind = self.draw(st.sampled_from(["omit"] * omit + ["fresh"] * 2 + ["existing"]))
        if kind == "omit":
            return
        if kind in ("fresh", "existing"):
            path = self.draw(st.sampled_from(fresh))
            self.case.outputs.append((path, exits))
            if kind == "existing":  # a file of that name is there before the run
                self.case.existing.append(path)
        elif kind == "input":
            name = self.draw(st.sampled_from(inputs))
            path = self.draw(st.sampled_from((name, f"./{name}", f"{ABS}/{name}")))
            self.case.invalid.append(f"{flag} {path!r} is an input")
        elif kind == "link":
            path = self.draw(st.sampled_from(LINKS)) + Path(self.case.data_name).suffix
            self.case.invalid.append(f"{flag} {path!r} is a link to the input")
        elif kind == "folder":
            path = self.draw(st.sampled_from((".", "adir", f"{ABS}/adir")))
            self.case.invalid.append(f"{flag} {path!r} is a folder")
        elif kind == "other":
            path = self.draw(st.sampled_from([p for p, _ in self.case.outputs]))
            self.case.invalid.append(f"{flag} {path!r} is another output")
        else:
            assert bad_suffix is not None
            path = bad_suffix
            self.case.invalid.append(f"{flag} {path!r}: not a table suffix")
        self.case.add(flag, path)

    def device(self) -> None:
        """--device: cpu or auto; cuda[:N], valid only where this machine has that GPU."""
        value = self.value("--device", ["cpu", "auto", "CPU"], ["gpu", "", "tpu:0"], CUDA)
        if value in CUDA and int(value.partition(":")[2] or 0) >= _cuda_devices():
            self.case.invalid.append(f"--device {value!r}: no such GPU here")

    def data(self) -> str:
        """The DATA argument: the table's name, spelled ./name or absolute, or a bad path."""
        if self.invalid():
            if self.draw(st.booleans()):
                self.case.invalid.append("DATA is a folder")
                return "adir"
            self.case.invalid.append("DATA is missing")
            return "missing" + Path(self.case.data_name).suffix
        return self.draw(st.sampled_from(("", "", "./", f"{ABS}/"))) + self.case.data_name

    def unknown_option(self) -> None:
        if self.case.mode == "wild" and self.draw(st.sampled_from((False,) * 9 + (True,))):
            self.case.add("--no-such-option")
            self.case.invalid.append("--no-such-option")


def _table_options(options: Options, table: Table) -> None:
    """--protected, --label, --positive, --protected-group, --drop, --dropna,
    --min-group-size; records the feature columns."""
    case = options.case
    others = [n for n in table.names if n not in (table.protected, table.label)]
    protected: str | None = None
    if options.invalid():
        if options.draw(st.booleans()):
            case.invalid.append("no --protected")
        else:
            protected = UNKNOWN
            case.invalid.append(f"--protected {UNKNOWN!r}")
    else:
        odd = [n for n in table.names if n != table.protected]
        protected = options.draw(
            st.sampled_from([table.protected] * 3 + (odd if case.mode in ("odd", "wild") else []))
        )
    if protected is not None:
        case.add("--protected", protected)
    label = options.value(
        "--label",
        [table.label] if table.label is not None else table.names or [UNKNOWN],
        [UNKNOWN],
        others or table.names or [UNKNOWN],
        omit=3,
    )
    if label is not None and label == protected:
        case.invalid.append("--label is --protected")
    options.value(
        "--positive",
        list(table.label_values) or ["1"],
        [UNKNOWN],
        ["1", "1.0", "True", "yes", ""],
        omit=4,
    )
    groups = list(table.groups)
    options.value(
        "--protected-group",
        groups + [",".join(groups[:2])] * (len(groups) > 2),  # not all: a group and the rest
        [UNKNOWN],
        [",".join(groups), "", ","],
        omit=4,
    )
    drop = options.value(
        "--drop", others if len(others) > 1 else [], [UNKNOWN], [",".join(others)], omit=6
    )
    case.dropna = options.flag("--dropna")
    mgs = options.value(
        "--min-group-size",
        ["1", "2", "3", "5"],
        ["0", "-5", "-1", "1.5", "few"],
        ["30", "100000"],
        omit=1,
        given=True,  # the default, 30, leaves the small tables too little data for a whole run
    )
    try:
        case.min_group_size = 30 if mgs is None else int(mgs)
    except ValueError:
        case.min_group_size = None
    used_label = label if label is not None else (table.names[-1] if table.names else None)
    dropped = {p.strip() for p in (drop or "").split(",") if p.strip()}
    case.roles = {n for n in (used_label, protected) if n is not None}
    case.features = {n for n in table.names if n not in (*case.roles, *dropped)}


def _common_options(options: Options) -> None:
    """Options audit, train-in, preprocess and compare share."""
    options.value(
        "--seed",
        ["0", "1", "7", "2147483647"],
        ["-1", "-5", "2147483648", "18446744073709551616", "seven"],
    )
    options.value(
        "--lr",
        ["0.01", "0.1", "0.5"],
        ["0", "-0.1", "nan", "inf", "-inf", "fast"],
        ["1e39", "1e-30"],
    )
    options.value("--eps", ["0", "0.05", "0.1", "1"], ["-0.1", "1.5", "nan", "inf"], omit=3)
    options.device()
    options.value("--threads", ["1"], ["0", "-1"], omit=4)  # more: slow on a busy machine
    options.value("--cat-budget", ["0", "1", "2"], ["-1"], omit=4)
    options.unknown_option()
    options.case.json = options.flag("--json")
    options.flag("-q")


CUDA = ("cuda", "cuda:0", "cuda:7")
LINKS = ("alias", "hard")  # a symbolic and a hard link to the input, beside it


@functools.cache
def _cuda_devices() -> int:
    import torch  # the engine loads it anyway

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


DELTAS = (["0", "0.05", "0.1", "0.5", "1"], ["-0.1", "1.5", "nan", "inf", "-inf", "1e308"])
TRAIN = ("lr", "mlp:4")
MODES = ("clean", "one", "one", "one", "odd", "wild")


# The most chances to be invalid each command's options give (Options.done checks it).
CHANCES = {"audit": 22, "train-in": 24, "preprocess": 22, "compare": 23, "predict": 7}


def _case(draw: Draw, command: str, table: Table) -> tuple[Case, Options]:
    stem = draw(st.sampled_from(("data", "my data", "d,ata;1", "dätä")))
    case = Case(command, draw(st.sampled_from(MODES)), stem + table.suffix)
    options = Options(draw, case, CHANCES[command])
    case.add(command, options.data())
    return case, options


@st.composite
def audit_cases(draw: Draw) -> tuple[Case, Table]:
    table = draw(tables())
    case, options = _case(draw, "audit", table)
    case.add(
        "--target-model", draw(st.sampled_from(TRAIN)), "--epochs", draw(st.sampled_from("12"))
    )
    case.add("--pgd-steps", draw(st.sampled_from("12")))
    _table_options(options, table)
    _common_options(options)
    options.value("--epochs", ["1", "2"], ["0", "-1", "1.5"], omit=5)
    options.value("--pgd-steps", ["1", "2"], ["0", "-3"], omit=5)
    options.value("--test-size", ["0.3", "0.5"], ["0", "1", "1.5", "nan", "-0.2"], omit=4)
    options.value("--attack-space", ["continuous", "valid"], ["discrete", ""], omit=4)
    options.value("--attack-target", ["true", "predicted"], ["false", ""], omit=4)
    options.value("--delta-f", *DELTAS)
    options.value("--delta-r", *DELTAS)
    ci = options.flag("--ci")
    options.value("--bootstrap", ["5", "20"], ["0", "-1"], omit=1 + 2 * (not ci))
    options.output(
        "--report",
        ["report.md", "my report.md", "nested/dir/r.md"],
        frozenset({0, 1}),
        inputs=[case.data_name],
    )
    options.done()
    return case, table


@st.composite
def train_in_cases(draw: Draw) -> tuple[Case, Table]:
    table = draw(tables())
    case, options = _case(draw, "train-in", table)
    case.add(
        "--target-model",
        draw(st.sampled_from(TRAIN)),
        "--epochs",
        draw(st.sampled_from("12")),
        "--max-fits",
        draw(st.sampled_from("12")),
        "--patience",
        "0",
        "--pgd-steps",
        "1",
    )
    _table_options(options, table)
    _common_options(options)
    if options.invalid():
        case.invalid.append("neither --lambda-f/--lambda-r nor --delta-f/--delta-r")
    else:
        weights = draw(st.sampled_from(("lambdas", "deltas", "both")))
        if weights in ("lambdas", "both"):
            lambdas = (["0", "0.5", "1", "2"], ["-1", "nan", "inf"])
            options.value("--lambda-f", *lambdas, omit=0)
            options.value("--lambda-r", *lambdas, omit=1)
        if weights in ("deltas", "both"):
            options.value("--delta-f", *DELTAS, omit=0)
            options.value("--delta-r", *DELTAS, omit=1)
    options.value("--val-size", ["0.2", "0.4"], ["0", "1", "nan"], omit=4)
    options.value("--max-fits", ["1", "2"], ["0", "-1"], omit=5)
    options.value("--margin", ["0", "1"], ["-1", "nan"], omit=5)
    options.value("--attack", ["fgsm", "pgd"], ["cw"], omit=4)
    infeasible = options.flag("--allow-infeasible")
    options.output(
        "-o",
        ["model.froc", "my model.froc", "nested/m.froc"],
        frozenset({0, 1}) if infeasible else frozenset({0}),
        inputs=[case.data_name],
    )
    options.output(
        "--trace",
        ["trace.csv", "trace.parquet"],
        frozenset({0, 1}),
        inputs=[case.data_name],
        bad_suffix="trace.txt",
        omit=4,
    )
    options.done()
    return case, table


@st.composite
def preprocess_cases(draw: Draw) -> tuple[Case, Table]:
    table = draw(tables())
    case, options = _case(draw, "preprocess", table)
    case.add(
        "--target-models",
        "lr",
        "--folds",
        "2",
        "--augment-rounds",
        "1",
        "--epochs",
        "1",
        "--warm-epochs",
        "1",
        "--surrogate",
        "mlp:2",
        "--transfer-source",
        "mlp:2",
        "--pgd-steps",
        "1",
    )
    _table_options(options, table)
    _common_options(options)
    options.value("--delta-f", *DELTAS, omit=3)
    options.value("--delta-r", *DELTAS, omit=3)
    options.value("--folds", ["2", "3"], ["0", "1", "21"], omit=4)
    options.value("--flip-scale", ["0", "0.93", "2"], ["-1", "3", "nan"], omit=4)
    options.value("--augment-share", ["0", "0.4", "1"], ["-0.1", "1.5", "nan"], omit=4)
    options.value("--margin", ["0", "1"], ["-1", "nan"], omit=5)
    options.value("--robustness", ["whitebox", "transfer"], ["blackbox"], omit=5)
    options.flag("--annotate")
    partial = options.flag("--allow-partial")
    written = frozenset({0, 1}) if partial else frozenset({0})
    options.output(
        "-o",
        ["out.csv", "out.parquet", "nested/out.csv"],
        written,
        inputs=[case.data_name],
        bad_suffix="out.txt",
    )
    if "-o" not in case.argv:  # the default output beside the input
        default = Path(case.data_name)
        case.outputs.append((f"{default.stem}.froc{default.suffix}", written))
    options.output(
        "--manifest",
        ["manifest.json", "nested/m.json"],
        frozenset({0, 1}),
        inputs=[case.data_name],
    )
    options.done()
    return case, table


@st.composite
def compare_cases(draw: Draw) -> tuple[Case, Table]:
    table = draw(tables())
    case, options = _case(draw, "compare", table)
    case.add(
        "--target-model",
        "lr",
        "--epochs",
        draw(st.sampled_from("12")),
        "--adv-epochs",
        "1",
        "--froc-in-budget",
        "0.5",
        "--froc-pre-rounds",
        "1",
        "--lambdas",
        "0",
        "--pgd-steps",
        "1",
    )
    _table_options(options, table)
    _common_options(options)
    for flag in ("--delta-f", "--delta-r"):
        if options.invalid():
            case.invalid.append(f"no {flag}")
        else:
            options.value(flag, *DELTAS, omit=0)
    options.value(
        "--methods",
        ["plain", "plain,massaging", "froc-in", "rbf-rw,froc-pre"],
        ["nosuch", ","],
    )
    options.value("--lambdas", ["0", "0,0.1"], ["x", "-1", "nan", ""], omit=4)
    options.value("--repeats", ["1", "2"], ["0", "-1"], omit=5)
    options.value("--val-size", ["0.2", "0.4"], ["0", "1", "nan"], omit=5)
    options.output(
        "--report", ["report.md", "nested/r.md"], frozenset({0, 1}), inputs=[case.data_name]
    )
    options.output(
        "--plot",
        ["plot.png", "plot.svg"],
        frozenset({0, 1}),
        inputs=[case.data_name],
        bad_suffix="plot.txt",
        omit=10,
    )
    options.done()
    return case, table


@st.composite
def predict_cases(draw: Draw) -> tuple[Case, Table]:
    table = draw(predict_tables())
    stem = draw(st.sampled_from(("data", "my data", "d,ata;1", "dätä")))
    case = Case("predict", draw(st.sampled_from(MODES)), stem + table.suffix)
    case.min_group_size = None
    case.features = {"x", "c"}  # the columns the model reads, whatever --drop says
    options = Options(draw, case, CHANCES["predict"])
    model = "model.froc"
    if options.invalid():
        model = draw(st.sampled_from(("missing.froc", case.data_name, "adir")))
        case.invalid.append(f"MODEL_FILE {model!r} is not a model file")
    case.add("predict", model, options.data())
    if options.invalid():
        case.invalid.append("no -o")
    else:
        options.output(
            "-o",
            ["pred.csv", "pred.parquet", "nested/p.csv"],
            frozenset({0}),
            inputs=[case.data_name, "model.froc"],
            omit=0,
        )
    options.value("--drop", ["y", "g", "y,g"], [UNKNOWN], table.names or ["y"], omit=3)
    options.device()
    options.value("--threads", ["1"], ["0", "-1"], omit=4)  # more: slow on a busy machine
    options.unknown_option()
    case.json = options.flag("--json")
    options.flag("-q")
    options.done()
    return case, table


# --------------------------------------------------------------------------------------------
# running a case and checking what it did
# --------------------------------------------------------------------------------------------

RUNNER = CliRunner()
# typer's CliRunner builds the click command from the app at every call (~50 ms): once is enough.
COMMAND = typer.main.get_command(app)


def invoke(argv: list[str]) -> Result:
    if not hasattr(typer.testing, "_get_command"):  # another typer: build it at every call
        return RUNNER.invoke(app, argv)
    with mock.patch.object(typer.testing, "_get_command", lambda _app: COMMAND):
        return RUNNER.invoke(app, argv)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, relative, hidden ones included."""
    found: set[str] = set()
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def _inside(folder: Path, path: str) -> str:
    return os.path.relpath(os.path.normpath(os.path.join(folder, path)), folder)


def _show(text: str, limit: int = 3000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


@contextlib.contextmanager
def _example_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="froc-fuzz-") as name:
        folder = Path(name).resolve()
        with contextlib.chdir(folder):
            yield folder


# An output file there before the run: its content and its mode, which a rewrite keeps.
EXISTING = b"an existing output\n"
EXISTING_MODE = 0o640
_UMASK = os.umask(0o022)
os.umask(_UMASK)
NEW_MODE = 0o666 & ~_UMASK  # README, "Normal permissions"

# The warnings Python's default filters hide from a user (outside __main__).
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_case(case: Case, table: Table, model: bytes | None = None) -> Result:
    """Write the inputs into a fresh folder, run the command there and check it."""
    with _example_folder() as folder:
        data = folder / case.data_name
        write_table(table, data)
        suffix = data.suffix
        (folder / f"alias{suffix}").symlink_to(data.name)
        os.link(data, folder / f"hard{suffix}")
        (folder / "adir").mkdir()
        if model is not None:
            (folder / "model.froc").write_bytes(model)
        inputs = {name: _digest(folder / name) for name in _entries(folder) if name != "adir"}
        for path in case.existing:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(EXISTING)
            (folder / path).chmod(EXISTING_MODE)
        before = _entries(folder)
        argv = [token.replace(ABS, str(folder)) for token in case.argv]
        command = "froc " + shlex.join(argv)
        note(RERUN)
        note(command)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = invoke(argv)
        check(case, table, result, folder, inputs, before, command)
        shown = [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
        assert not shown, (
            f"exit {result.exit_code} and Python warning(s) a user would see on stderr: "
            + "; ".join(
                f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in shown
            )
            + f"\n{RERUN}\ncommand: {command}\n{table.preview()}"
        )
        return result


def _internal_error(stderr: str) -> str:
    """What an exit code outside 0-3 says: for froc's internal error (exit 4, a bug), the
    traceback it saved (read, then removed: the failure report carries it)."""
    found = re.search(r"traceback saved in (\S+)$", stderr.strip())
    if found is None:
        return "not an exit code froc may end with here (0, 1, 2 or 3)"
    saved = Path(found.group(1))
    try:
        trace = saved.read_text(encoding="utf-8")
        saved.unlink()
    except OSError:
        trace = f"(cannot read {saved})"
    return f"an internal error (a bug in froc); its traceback:\n{trace}"


def check(
    case: Case,
    table: Table,
    result: Result,
    folder: Path,
    inputs: dict[str, str],
    before: set[str],
    command: str,
) -> None:
    code = result.exit_code
    stdout, stderr = result.stdout, result.stderr
    seen = (
        f"\n{RERUN}\ncommand: {command}\nexit: {code}\nstdout: {_show(stdout)!r}\n"
        f"stderr: {_show(stderr)!r}\n{table.preview()}"
    )
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        assert result.exc_info is not None
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"uncaught {type(error).__name__}: {error}\n{trace}{seen}")
    assert code in EXIT_CODES, f"exit {code}: {_internal_error(stderr)}{seen}"
    assert "Traceback" not in result.output, f"a traceback in the output{seen}"
    errors = [line for line in stderr.splitlines() if line.startswith("froc: error: ")]
    if code in (2, 3):
        assert stdout == "", f"exit {code} with output on stdout{seen}"
        lines = stderr.splitlines()
        assert (
            len(errors) == 1
            and lines[-1] == errors[0]
            and all(line.startswith("froc: ") for line in lines)
        ), f"exit {code}: the error is not one 'froc: error:' line ending stderr{seen}"
    else:
        assert not errors, f"exit {code} with an error line{seen}"
        if case.json:
            try:
                payload = json.loads(stdout)
            except ValueError as exc:
                raise AssertionError(
                    f"--json: stdout is not one JSON object ({exc}){seen}"
                ) from None
            assert isinstance(payload, dict), f"--json: stdout is not a JSON object{seen}"
            assert payload.get("exit_code", code) == code, f"--json: exit_code differs{seen}"
    if case.invalid:
        assert code == 2, f"exit {code}, expected 2 for {'; '.join(case.invalid)}{seen}"
    dropped = table.dropna_rows(case.features | case.roles) if case.dropna else set()
    bad = {
        (name, what)
        for name, cells in table.bad_numbers().items()
        for row, what in cells
        if name in case.features and row not in dropped
    }
    if bad:
        assert code in (2, 3), (
            f"exit {code} with a bad number in feature column(s) {bad}; expected 2 (or 3){seen}"
        )
    if case.min_group_size is not None and table.n_rows < 2 * case.min_group_size:
        assert code in (2, 3), (
            f"exit {code} with {table.n_rows} rows in the file and --min-group-size "
            f"{case.min_group_size}: a group has too few rows; expected 3 (or 2){seen}"
        )
    for name, digest in inputs.items():
        assert (folder / name).is_file() and _digest(folder / name) == digest, (
            f"input {name!r} changed{seen}"
        )
    written = {_inside(folder, path) for path, exits in case.outputs if code in exits}
    allowed = before | written
    for path in written:
        parent = os.path.dirname(path)
        while parent:
            allowed.add(parent)
            parent = os.path.dirname(parent)
    stray = sorted(_entries(folder) - allowed)
    assert not stray, f"exit {code} left file(s) the options did not name: {stray}{seen}"
    missing = sorted(path for path in written if not (folder / path).is_file())
    assert not missing, f"exit {code} without writing {missing}{seen}"
    existing = {_inside(folder, path) for path in case.existing}
    for path in sorted(existing):
        mode = stat.S_IMODE((folder / path).stat().st_mode)
        assert mode == EXISTING_MODE, (
            f"exit {code}: the existing output {path!r} did not keep its mode "
            f"({EXISTING_MODE:o}, now {mode:o}){seen}"
        )
        replaced = (folder / path).read_bytes() != EXISTING
        assert replaced == (path in written), (
            f"exit {code}: the existing output {path!r} was "
            f"{'replaced' if replaced else 'not replaced'}{seen}"
        )
    for path in sorted(written - existing):
        mode = stat.S_IMODE((folder / path).stat().st_mode)
        assert mode == NEW_MODE, (
            f"exit {code}: new output {path!r} has mode {mode:o}, expected {NEW_MODE:o} "
            f"(0666 less the umask){seen}"
        )


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------


@seed(SEED)
@fuzz_settings(180)
@given(audit_cases())
def test_fuzz_audit(drawn: tuple[Case, Table]) -> None:
    run_case(*drawn)


@seed(SEED)
@fuzz_settings(120)
@given(train_in_cases())
def test_fuzz_train_in(drawn: tuple[Case, Table]) -> None:
    run_case(*drawn)


@seed(SEED)
@fuzz_settings(70)
@given(preprocess_cases())
def test_fuzz_preprocess(drawn: tuple[Case, Table]) -> None:
    run_case(*drawn)


@seed(SEED)
@fuzz_settings(110)
@given(compare_cases())
def test_fuzz_compare(drawn: tuple[Case, Table]) -> None:
    run_case(*drawn)


@dataclass(frozen=True, repr=False)
class ModelFile:
    content: bytes

    def __repr__(self) -> str:
        return f"<model.froc: {len(self.content)} bytes; x, c -> y, protected g>"


@pytest.fixture(scope="module")
def model_file() -> ModelFile:
    """A small saved model: x (float), c (a/b/c) -> y (0/1), protected g (m/f)."""
    rng = random.Random(0)
    n = 60
    table = Table(
        (
            Column("x", tuple(round(rng.uniform(0, 10), 2) for _ in range(n))),
            Column("c", tuple(rng.choice("abc") for _ in range(n))),
            Column("g", tuple("mf"[i % 2] for i in range(n))),
            Column("y", tuple(i // 2 % 2 for i in range(n))),
        ),
        "csv",
        "y",
        "g",
        ("m", "f"),
        ("0", "1"),
        n,
    )
    with _example_folder() as folder:
        write_table(table, folder / "train.csv")
        args = ["train-in", "train.csv", "--protected", "g", "--lambda-f", "0", "--lambda-r", "0"]
        args += ["--target-model", "lr", "--epochs", "2", "--min-group-size", "1", "-q"]
        result = invoke([*args, "--allow-infeasible", "-o", "model.froc"])
        assert result.exit_code in (0, 1), (result.output, result.exception)
        return ModelFile((folder / "model.froc").read_bytes())


@seed(SEED)
@fuzz_settings(120)
@given(drawn=predict_cases())
def test_fuzz_predict(model_file: ModelFile, drawn: tuple[Case, Table]) -> None:
    run_case(*drawn, model=model_file.content)
