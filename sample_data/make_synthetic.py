"""Generate a small synthetic credit-approval dataset with a planted gender bias.

The output is a CSV with one row per applicant and these columns, in order:

    age, income, hours_per_week, education, occupation, region, gender, zip_area, approved

``approved`` (0/1, last column) is the label and ``approved=1`` is the favourable
outcome. ``gender`` ("female"/"male", about 45/55) is the protected attribute.

How the bias is planted
-----------------------
Women receive ``approved=1`` far less often than men (about 0.20 against 0.45).
The gap has two sources:

1. *Through features that differ by group.* Women are drawn more often into
   lower-paid occupations, work fewer hours per week and earn less for the same
   profile. Income, hours, education, occupation and age all enter the label
   logit, so part of the gap is carried by features a model can see.
2. *Directly.* The label logit also contains a negative term for ``gender ==
   "female"`` that no legitimate feature explains.

``zip_area`` is a proxy for gender: applicants in ``riverside`` and ``hillcrest``
are 80% female and those in ``lakeside`` and ``oakwood`` are 80% male. It has no
effect of its own on the label. Because of this proxy and the group differences in
occupation, hours and income, a model trained *without* the ``gender`` column still
shows a statistical-parity gap of roughly 0.15-0.25 between the groups.

The labels remain learnable: a logistic regression on one-hot features reaches
about 0.8 accuracy, well above the majority-class rate.

The same ``--seed`` and ``--rows`` always produce a byte-identical file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

DEFAULT_ROWS = 4000
DEFAULT_SEED = 0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "synthetic.csv"

COLUMNS = [
    "age",
    "income",
    "hours_per_week",
    "education",
    "occupation",
    "region",
    "gender",
    "zip_area",
    "approved",
]

# zip_area -> (share of all applicants, share of women in the area).
# Overall share of women: (5/24 + 5/24) * 0.8 + (7/24 + 7/24) * 0.2 = 0.45.
ZIP_AREAS: dict[str, tuple[float, float]] = {
    "riverside": (5 / 24, 0.8),
    "hillcrest": (5 / 24, 0.8),
    "lakeside": (7 / 24, 0.2),
    "oakwood": (7 / 24, 0.2),
}

# education -> (probability, effect on log income, effect on the label logit).
EDUCATION: dict[str, tuple[float, float, float]] = {
    "none": (0.10, -0.35, -0.6),
    "highschool": (0.40, -0.10, -0.2),
    "bachelor": (0.30, 0.15, 0.2),
    "master": (0.15, 0.30, 0.4),
    "phd": (0.05, 0.40, 0.5),
}

# occupation -> (probability for women, probability for men, effect on log income).
OCCUPATION: dict[str, tuple[float, float, float]] = {
    "service": (0.30, 0.12, -0.30),
    "clerical": (0.27, 0.10, -0.15),
    "sales": (0.15, 0.16, 0.00),
    "craft": (0.05, 0.24, 0.05),
    "technical": (0.11, 0.20, 0.25),
    "management": (0.12, 0.18, 0.40),
}

# region -> (probability, effect on the label logit).
REGION: dict[str, tuple[float, float]] = {
    "north": (0.25, 0.10),
    "south": (0.30, -0.10),
    "east": (0.20, 0.05),
    "west": (0.25, 0.00),
}

# Label-logit coefficients.
INTERCEPT = -1.05
INCOME_COEF = 1.5  # per unit of standardised log income
HOURS_COEF = 0.3  # per 10 hours above 40
AGE_COEF = 0.3  # per 10 years above 40 (capped at 55)
FEMALE_COEF = -0.8  # the direct, unjustified gender term

# Income gap for women with an otherwise identical profile (log scale).
FEMALE_INCOME_PENALTY = -0.08

# Mean weekly hours (normal, sd 9, clipped to 10-80).
HOURS_MEAN_FEMALE = 38.0
HOURS_MEAN_MALE = 42.0


def _choice(
    rng: np.random.Generator, options: Mapping[str, tuple[float, ...]], size: int
) -> npt.NDArray[np.int64]:
    """Draw ``size`` indices into ``options`` using the first tuple field as weight."""
    weights = np.array([values[0] for values in options.values()])
    return rng.choice(len(options), size=size, p=weights / weights.sum())


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Return ``rows`` synthetic applicants drawn with ``numpy.random.default_rng(seed)``."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)

    # Proxy first, then gender conditional on it.
    zip_names = list(ZIP_AREAS)
    zip_idx = _choice(rng, ZIP_AREAS, rows)
    female_share = np.array([ZIP_AREAS[name][1] for name in zip_names])[zip_idx]
    female = rng.random(rows) < female_share

    age = np.clip(np.rint(rng.normal(41.0, 12.0, rows)), 18, 75).astype(np.int64)

    edu_names = list(EDUCATION)
    edu_idx = _choice(rng, EDUCATION, rows)
    edu_income = np.array([EDUCATION[name][1] for name in edu_names])[edu_idx]
    edu_logit = np.array([EDUCATION[name][2] for name in edu_names])[edu_idx]

    occ_names = list(OCCUPATION)
    p_women = np.array([OCCUPATION[name][0] for name in occ_names])
    p_men = np.array([OCCUPATION[name][1] for name in occ_names])
    occ_idx = np.where(
        female,
        rng.choice(len(occ_names), size=rows, p=p_women / p_women.sum()),
        rng.choice(len(occ_names), size=rows, p=p_men / p_men.sum()),
    )
    occ_income = np.array([OCCUPATION[name][2] for name in occ_names])[occ_idx]

    hours_mean = np.where(female, HOURS_MEAN_FEMALE, HOURS_MEAN_MALE)
    hours = np.clip(np.rint(rng.normal(hours_mean, 9.0)), 10, 80).astype(np.int64)

    region_names = list(REGION)
    region_idx = _choice(rng, REGION, rows)
    region_logit = np.array([REGION[name][1] for name in region_names])[region_idx]

    # Income in thousands: log-normal around 45k, shaped by the profile.
    age_years = np.minimum(age, 55) - 40
    log_income = (
        np.log(45.0)
        + edu_income
        + occ_income
        + 0.012 * age_years
        + 0.008 * (hours - 40)
        + FEMALE_INCOME_PENALTY * female
        + rng.normal(0.0, 0.25, rows)
    )
    income = np.round(np.exp(log_income), 2)

    z_income = (log_income - np.log(45.0)) / 0.35
    logit = (
        INTERCEPT
        + INCOME_COEF * z_income
        + HOURS_COEF * (hours - 40) / 10
        + AGE_COEF * age_years / 10
        + edu_logit
        + region_logit
        + FEMALE_COEF * female
    )
    approved = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "hours_per_week": hours,
            "education": np.array(edu_names)[edu_idx],
            "occupation": np.array(occ_names)[occ_idx],
            "region": np.array(region_names)[region_idx],
            "gender": np.where(female, "female", "male"),
            "zip_area": np.array(zip_names)[zip_idx],
            "approved": approved,
        }
    )
    return frame[COLUMNS]


def _umask() -> int:
    """Return the process umask (reading it requires setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file as 0600; give it the usual permissions.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, float_format="%.2f", lineterminator="\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="number of rows")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="output CSV path (default: synthetic.csv next to this script)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    frame = generate(args.rows, args.seed)
    write_csv_atomic(frame, args.output)
    rate = frame.groupby("gender")["approved"].mean()
    print(
        f"wrote {len(frame)} rows to {args.output} "
        f"(approved rate: female {rate.get('female', float('nan')):.3f}, "
        f"male {rate.get('male', float('nan')):.3f})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
