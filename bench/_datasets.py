"""Loaders of the shared benchmark datasets (../shared/data, relative to the repository root).

Small, stable API used by every bench script:

- :func:`shared_data_dir` -> the data folder, or ``None`` when it is absent (scripts then print
  one line and exit 0, so a checkout without the shared data still runs ``bench/`` cleanly).
- :func:`load_adult` / :func:`load_compas` / :func:`load_dataset` -> ``(frame, spec_fields)``:
  the table ready for ``audit_table`` and the suggested :class:`froc_cli.DataSpec` fields
  (``DataSpec(**spec_fields)``).

Adult: label ``income``, favourable ``>50K``; protected ``sex`` (group ``Female``) or ``race``
(group: every value but ``White``). COMPAS: ProPublica filter (-30 <= days_b_screening_arrest
<= 30, is_recid != -1, c_charge_degree != 'O', score_text != 'N/A'; 6,172 rows), features age,
c_charge_degree, race, age_cat, sex, priors_count, juv_fel_count, juv_misd_count,
juv_other_count (no identifiers, label leaks or COMPAS scores), label ``two_year_recid`` with
favourable ``0`` (did not re-offend); protected ``race`` (group ``African-American``) or ``sex``
(group ``Male``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "ADULT_FILE",
    "COMPAS_FEATURES",
    "COMPAS_FILE",
    "COMPAS_LABEL",
    "COMPAS_ROWS",
    "load_adult",
    "load_compas",
    "load_dataset",
    "repo_root",
    "shared_data_dir",
]

ADULT_FILE = "adult.csv"
COMPAS_FILE = "compas-scores-two-years.csv"
COMPAS_FEATURES = (
    "age",
    "c_charge_degree",
    "race",
    "age_cat",
    "sex",
    "priors_count",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
)
COMPAS_LABEL = "two_year_recid"
COMPAS_ROWS = 6172


def repo_root() -> Path:
    """The repository root (the folder above ``bench/``)."""
    return Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """``../shared/data`` relative to the repository root when it holds both files, else None."""
    folder = (repo_root().parent / "shared" / "data").resolve()
    if (folder / ADULT_FILE).is_file() and (folder / COMPAS_FILE).is_file():
        return folder
    return None


def _data_file(name: str, data_dir: Path | None) -> Path:
    folder = data_dir if data_dir is not None else shared_data_dir()
    if folder is None:
        raise FileNotFoundError(f"shared data folder not found (expected {name} in ../shared/data)")
    return folder / name


def load_adult(
    protected: str = "sex", data_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Adult (45,222 rows) and the DataSpec fields for ``protected`` = ``sex`` or ``race``."""
    frame = pd.read_csv(_data_file(ADULT_FILE, data_dir))
    if protected == "sex":
        group: tuple[str, ...] = ("Female",)
    elif protected == "race":
        group = tuple(sorted(str(v) for v in frame["race"].unique() if v != "White"))
    else:
        raise ValueError(f"Adult protected attribute {protected!r}: expected sex or race")
    fields: dict[str, Any] = {
        "protected": protected,
        "label": "income",
        "positive": ">50K",
        "protected_group": group,
    }
    return frame, fields


def load_compas(
    protected: str = "race", data_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """COMPAS after the ProPublica filter (6,172 rows), leak-free features, label last."""
    raw = pd.read_csv(_data_file(COMPAS_FILE, data_dir))
    days = raw["days_b_screening_arrest"]
    keep = (
        days.between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & raw["score_text"].notna()
        & (raw["score_text"] != "N/A")
    )
    frame = raw.loc[keep, [*COMPAS_FEATURES, COMPAS_LABEL]].reset_index(drop=True)
    if len(frame) != COMPAS_ROWS:
        raise ValueError(f"COMPAS filter kept {len(frame)} rows, expected {COMPAS_ROWS}")
    if protected == "race":
        group: tuple[str, ...] = ("African-American",)
    elif protected == "sex":
        group = ("Male",)
    else:
        raise ValueError(f"COMPAS protected attribute {protected!r}: expected race or sex")
    fields: dict[str, Any] = {
        "protected": protected,
        "label": COMPAS_LABEL,
        "positive": "0",
        "protected_group": group,
    }
    return frame, fields


def load_dataset(
    dataset: str, protected: str, data_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``load_dataset("adult", "sex")`` or ``load_dataset("compas", "race")``."""
    if dataset == "adult":
        return load_adult(protected, data_dir)
    if dataset == "compas":
        return load_compas(protected, data_dir)
    raise ValueError(f"dataset {dataset!r}: expected adult or compas")
