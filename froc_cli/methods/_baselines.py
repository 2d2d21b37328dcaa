"""Fairness pre-processing baselines of the sequential methods (paper, Section 7.1-7.2).

The paper's sequential baselines (RbF and FbR) take their fairness step from IBM's AIF360:

* **Reweighing (RW)**, paper ref. [44]: F. Kamiran and T. Calders, "Data preprocessing
  techniques for classification without discrimination", *Knowledge and Information Systems*
  33(1):1-33, 2012. Every training row gets the weight ``P(a) P(y) / P(a, y)`` of its
  (group, label) cell, so that in the weighted data the label is independent of the group.
* **Massaging**, from the same Kamiran and Calders paper (Section 4.1): a ranker (a logistic
  regression on the features, without the group) scores every training row; the ``pairs``
  highest-ranked unfavourable rows of the protected group are promoted and the ``pairs``
  lowest-ranked favourable rows of the other group demoted, ``pairs`` being the count that
  equalises the two groups' favourable label rates. With many groups each judged group gets its
  own quota of promotions or demotions that moves its rate to the rate of all judged rows. Not
  one of the paper's sequential baselines: ``froc compare`` runs it on its own (massaged
  labels, then the plain target).
* **Disparate Impact Remover (DIR)**, paper ref. [5]: M. Feldman, S. A. Friedler, J. Moeller,
  C. Scheidegger and S. Venkatasubramanian, "Certifying and removing disparate impact",
  *KDD 2015*, pp. 259-268. Each repaired feature is moved, within each group, towards the
  "median distribution" of the groups while keeping the rank order inside every group.

All are re-implemented here in plain numpy (the massaging ranker is scikit-learn's),
functionally, for a binary label ``y`` and integer group codes ``a``: either the paper's binary
coding (``0`` = protected group, ``1`` = the other group) or one code per group ``0..K-1``, with
``-1`` marking rows of a group too small to judge (see :mod:`froc_cli.core._fairness`). Group
codes may come as floats holding whole numbers (froc keeps ``a`` as float32). With binary codes
every result is the paper's two-group one; with many groups reweighing treats ``-1`` as one more
cell, massaging never flips a ``-1`` row and the repair leaves ``-1`` rows as they are. Nothing
here prints; bad input raises :class:`ValueError` with a message naming the problem.

Differences from AIF360 (``aif360.algorithms.preprocessing``), on purpose:

* Massaging has no AIF360 pre-processor; it follows Kamiran and Calders' Section 4.1 (their
  ranker is a naive Bayes classifier, ours a logistic regression). Ties in the ranking go to
  the earlier row, so the flips are reproducible.
* Reweighing is the same formula as AIF360's ``Reweighing`` with unit instance weights. AIF360
  divides by zero (``inf``/``nan`` weights) when a (group, label) cell is empty; we raise.
* AIF360's ``DisparateImpactRemover`` delegates to BlackBoxAuditing's ``Repairer``, which for a
  float feature (a) takes quantiles over the *distinct* values of each group, not over the rows,
  so frequencies are ignored and ties are bucketed; (b) uses the *lower* median, which for two
  groups is the minimum of the two groups' quantiles; and (c) interpolates a partial repair in
  the index space of the column's sorted distinct values, rounding to an existing value. We
  follow the paper's definition instead: row-based mid-rank quantiles, the ordinary median
  (for two groups the midpoint, i.e. the 1-D Wasserstein barycentre), and the geometric
  partial repair ``(1 - repair_level) * x + repair_level * repaired`` in value space.
* AIF360 repairs each dataset it is given on its own (train and test separately, and its
  docstring asks the two to have the same group-conditional distributions). We fit the group
  distributions on the training rows and repair any later row against them
  (:func:`fit_disparate_impact_repair` then :meth:`DisparateImpactRepair.apply`): the repair of
  a test row then does not depend on which other rows share its batch, a single row can be
  repaired, no test statistics leak into the transformation, and train and test features go
  through one and the same map. Like AIF360, repairing a row needs its group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from froc_cli.metrics._rules import parity_flip_count, parity_flip_quotas

__all__ = [
    "DisparateImpactRepair",
    "compute_reweighing_weights",
    "fit_disparate_impact_repair",
    "massage_labels",
    "massaging_scores",
    "repair_disparate_impact",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_GROUPS = (0, 1)  # the binary coding: 0 = protected group, 1 = the other group
_NOT_JUDGED = -1  # froc_cli.core._fairness.NOT_JUDGED: rows of a group too small to judge
_MAX_CODE = int(np.iinfo(np.int32).max)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _vector(name: str, values: npt.ArrayLike, n: int | None) -> np.ndarray:
    """``values`` as a 1-D array of ``n`` entries (any when None), or ValueError naming it."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one row is needed")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {n} rows were expected")
    return arr


def _binary_vector(name: str, values: npt.ArrayLike, n: int | None = None) -> IntArray:
    """Return ``values`` as a 1-D int64 array of 0/1, or raise ValueError naming ``name``."""
    arr = _vector(name, values, n)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric 0/1 values, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        first = arr[np.flatnonzero(bad)[0]].item()
        raise ValueError(f"{name} must contain only 0 and 1, found {first!r}")
    return arr.astype(np.int64)


def _group_codes(name: str, values: npt.ArrayLike, n: int | None = None) -> IntArray:
    """Return ``values`` as a 1-D int64 array of group codes >= -1, or raise ValueError.

    Bool, integer and float input is accepted; floats must hold whole numbers (froc keeps the
    codes as float32).
    """
    arr = _vector(name, values, n)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric group codes, got dtype {arr.dtype}")
    with np.errstate(invalid="ignore"):
        ok = (arr >= _NOT_JUDGED) & (arr <= _MAX_CODE)
        if np.issubdtype(arr.dtype, np.floating):
            ok &= np.isfinite(arr) & (arr == np.round(arr))
    if not ok.all():
        first = arr[np.flatnonzero(~ok)[0]].item()
        raise ValueError(
            f"{name} must contain only 0 and 1 (binary groups) or whole-number group codes "
            f">= -1 (-1: a group too small to judge), found {first!r}"
        )
    return arr.astype(np.int64)


def _is_binary_coding(codes: IntArray) -> bool:
    """True when every group code is 0 or 1: the paper's protected-group-vs-rest coding."""
    return bool(((codes == 0) | (codes == 1)).all())


def _name_codes(codes: tuple[int, ...]) -> str:
    """``(0, 1)`` -> ``"0 and 1"``, ``(0, 1, 2)`` -> ``"0, 1 and 2"``."""
    if len(codes) == 1:
        return str(codes[0])
    return ", ".join(str(g) for g in codes[:-1]) + f" and {codes[-1]}"


def _feature_matrix(values: npt.ArrayLike, n_features: int | None = None) -> FloatArray:
    """Return ``values`` as a finite 2-D float64 array, or raise ValueError."""
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-D array (rows, features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("X has no rows")
    if not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"X must hold real numbers, got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.float64)  # always a fresh copy: callers' data is never touched
    if not np.isfinite(out).all():
        row, col = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(
            f"X has a non-finite value {float(out[row, col])} at row {row}, column {col}"
        )
    if n_features is not None and out.shape[1] != n_features:
        raise ValueError(f"X has {out.shape[1]} columns but the repair was fitted on {n_features}")
    return out


def _repair_level(value: float) -> float:
    """Return ``value`` as a float in [0, 1], or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"repair_level must be a number in [0, 1], got {value!r}")
    level = float(value)
    if not 0.0 <= level <= 1.0:  # also rejects nan
        raise ValueError(f"repair_level must be in [0, 1], got {level!r}")
    return level


def _is_binary_column(column: FloatArray) -> bool:
    """True when every value of ``column`` is exactly 0 or 1 (a one-hot or indicator feature)."""
    return bool(((column == 0.0) | (column == 1.0)).all())


def _resolve_columns(columns: npt.ArrayLike | None, X: FloatArray) -> tuple[int, ...]:
    """Turn a mask, an index list or ``None`` (= every non-binary column) into sorted indices."""
    d = X.shape[1]
    if columns is None:
        return tuple(j for j in range(d) if not _is_binary_column(X[:, j]))
    sel = np.asarray(columns)
    if sel.ndim != 1:
        raise ValueError(f"columns must be a 1-D mask or index list, got shape {sel.shape}")
    if sel.size == 0:
        return ()
    if sel.dtype == np.bool_:
        if sel.shape[0] != d:
            raise ValueError(f"columns mask has {sel.shape[0]} entries but X has {d} columns")
        return tuple(int(j) for j in np.flatnonzero(sel))
    if not np.issubdtype(sel.dtype, np.integer):
        raise ValueError(
            f"columns must be a boolean mask or integer indices, got dtype {sel.dtype}"
        )
    out_of_range = (sel < -d) | (sel >= d)
    if out_of_range.any():
        bad = int(sel[np.flatnonzero(out_of_range)[0]])
        raise ValueError(f"columns index {bad} is out of range for X with {d} columns")
    idx = np.where(sel < 0, sel + d, sel)
    if np.unique(idx).size != idx.size:
        raise ValueError("columns lists the same column more than once")
    return tuple(sorted(int(j) for j in idx))


# --------------------------------------------------------------------------------------------
# Reweighing (Kamiran & Calders, 2012)
# --------------------------------------------------------------------------------------------


def compute_reweighing_weights(y: npt.ArrayLike, a: npt.ArrayLike) -> FloatArray:
    """Kamiran-Calders reweighing weights, one per row.

    Kamiran, F. and Calders, T. (2012), "Data preprocessing techniques for classification
    without discrimination", Knowledge and Information Systems 33(1):1-33, Section 4.2; the
    "Reweighing" pre-processor of AIF360 (paper ref. [44]).

    Every row of the (group, label) cell ``(a, y)`` gets the empirical weight::

        w(a, y) = P(a) P(y) / P(a, y) = (n_a * n_y) / (n * n_ay)

    the ratio of the cell's expected frequency if ``y`` were independent of ``a`` to its observed
    frequency. In the weighted data the joint distribution then factorises exactly,
    ``P_w(a, y) = P(a) P(y)`` with the weighted marginals equal to the unweighted ones, so the
    weighted favourable label rate is the overall one in every group (statistical-parity
    difference 0). The weights sum to ``n``.

    The groups are the two of the binary coding (``0`` and ``1``, both needed) when every code
    is 0 or 1, otherwise every group code present in ``a``; rows coded ``-1`` (groups too small
    to judge) form one more group, so they too get weights and the weighted label is independent
    of every group, that one included.

    Args:
        y: binary labels, shape (n,), values 0/1 (bool, int or float).
        a: group codes, shape (n,): ``0`` = protected group, ``1`` = other, or one code per
            group ``0..K-1`` with ``-1`` for rows not judged (ints or whole-number floats).

    Returns:
        float64 weights, shape (n,), all positive.

    Raises:
        ValueError: on non-1-D, empty or length-mismatched input, a ``y`` that is not 0/1, an
            ``a`` that is not whole numbers >= -1, or when a (group, label) cell has no rows
            (its weight would be undefined: AIF360 yields ``inf``/``nan`` there).
    """
    y_arr = _binary_vector("y", y)
    codes = _group_codes("a", a, n=y_arr.shape[0])
    n = y_arr.shape[0]
    if _is_binary_coding(codes):
        groups, index = np.asarray(_GROUPS, dtype=np.int64), codes
    else:
        groups, index = np.unique(codes, return_inverse=True)
        index = index.reshape(-1).astype(np.int64)
    k = groups.shape[0]
    counts = np.bincount(2 * index + y_arr, minlength=2 * k).reshape(k, 2)  # counts[g, y]
    empty = np.argwhere(counts == 0)
    if empty.size:
        cells = ", ".join(f"(a={int(groups[g])}, y={int(lab)})" for g, lab in empty)
        raise ValueError(
            f"reweighing needs rows in every (group, label) cell; no rows in {cells}: "
            "the weight P(a)P(y)/P(a,y) is undefined there"
        )
    n_a = counts.sum(axis=1)
    n_y = counts.sum(axis=0)
    table = np.outer(n_a, n_y).astype(np.float64) / (float(n) * counts.astype(np.float64))
    weights: FloatArray = table[index, y_arr]
    return weights


# --------------------------------------------------------------------------------------------
# Massaging (Kamiran & Calders, 2012)
# --------------------------------------------------------------------------------------------


def massaging_scores(
    X: npt.ArrayLike, y: npt.ArrayLike, *, threads: int | None = None
) -> FloatArray:
    """The massaging ranker's probability of the favourable label, one per row.

    A logistic regression (scikit-learn's ``LogisticRegression``, lbfgs, default L2 strength,
    ``max_iter=1000``: deterministic) is fitted to ``(X, y)`` and scores the same rows. ``X``
    holds the features only: the group is *not* one of them, as in Kamiran and Calders.

    Args:
        X: training features, shape (n, d), finite.
        y: binary labels, shape (n,), values 0/1; both labels must be present.
        threads: cap on scikit-learn's native (BLAS/OpenMP) threads while fitting;
            ``None`` leaves them alone.

    Returns:
        float64 probabilities of ``y = 1``, shape (n,).

    Raises:
        ValueError: on bad shapes, non-finite ``X``, non-0/1 ``y`` or a single label.
    """
    X_arr = _feature_matrix(X)
    y_arr = _binary_vector("y", y, n=X_arr.shape[0])
    if np.unique(y_arr).size < 2:
        raise ValueError("the massaging ranker needs rows of both labels")
    ranker = LogisticRegression(max_iter=1000)
    with threadpool_limits(limits=threads):
        ranker.fit(X_arr, y_arr)
        proba = ranker.predict_proba(X_arr)
    scores: FloatArray = np.asarray(proba[:, 1], dtype=np.float64)
    return scores


def _whole_count(name: str, value: object) -> int:
    """``value`` as an int >= 0 (a Python or numpy integer, not a bool), or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    count = int(value)
    if count < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {count}")
    return count


def _checked_quotas(quotas: object) -> dict[int, tuple[int, int]]:
    """Validate a ``{group code: (promotions, demotions)}`` mapping; return it with plain ints."""
    if not isinstance(quotas, Mapping):
        raise ValueError(
            f"quotas must map group codes to (promotions, demotions), got {type(quotas).__name__}"
        )
    out: dict[int, tuple[int, int]] = {}
    for key, value in quotas.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or int(key) < 0:
            raise ValueError(
                f"quotas keys must be group codes >= 0 (rows coded -1 never flip), got {key!r}"
            )
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise ValueError(
                f"quotas[{int(key)}] must be a pair (promotions, demotions), got {value!r}"
            )
        out[int(key)] = (
            _whole_count(f"quotas[{int(key)}] promotions", value[0]),
            _whole_count(f"quotas[{int(key)}] demotions", value[1]),
        )
    return out


def massage_labels(
    scores: npt.ArrayLike,
    y: npt.ArrayLike,
    a: npt.ArrayLike,
    pairs: int | None = None,
    quotas: Mapping[int, tuple[int, int]] | None = None,
) -> IntArray:
    """Kamiran-Calders massaging: the labels after the promotions and demotions asked for.

    Kamiran, F. and Calders, T. (2012), "Data preprocessing techniques for classification
    without discrimination", Knowledge and Information Systems 33(1):1-33, Section 4.1.
    Rows are ranked by ``scores``, a ranker's probability of the favourable
    label (see :func:`massaging_scores`). Ties in ``scores`` go to the earlier row. No label
    changes but the promoted (0 -> 1) and demoted (1 -> 0) ones; rows coded ``-1`` never flip.

    Binary groups (every code 0 or 1), ``pairs``: the ``pairs`` highest-ranked unfavourable
    rows of the protected group (``a = 0, y = 0``) are promoted to ``y = 1`` and the ``pairs``
    lowest-ranked favourable rows of the other group (``a = 1, y = 1``) demoted to ``y = 0``, so
    the overall favourable rate stays as it was. By default ``pairs`` is
    :func:`froc_cli.methods.parity_flip_count` -- the rounded ``(P1 n0 - P0 n1) / n`` that
    makes both groups' favourable label rates equal (up to the rounding to whole rows); 0 when
    the protected group's rate is already the higher one.

    Any groups, ``quotas``: ``{group code: (promotions, demotions)}``; in group ``g`` the
    ``promotions`` highest-ranked rows with ``y = 0`` are promoted and the ``demotions``
    lowest-ranked rows with ``y = 1`` demoted; groups not listed keep their labels. When ``a``
    is not binary and neither ``pairs`` nor ``quotas`` is given, the quotas are
    :func:`froc_cli.metrics.parity_flip_quotas`: each judged group's rate moved to the rate of
    all judged rows (to within one row). For binary ``a`` the quotas
    ``{0: (pairs, 0), 1: (0, pairs)}`` give exactly the ``pairs`` result.

    Args:
        scores: ranker scores, shape (n,), finite; higher = more likely favourable.
        y: binary labels, shape (n,), values 0/1.
        a: group codes, shape (n,): ``0`` = protected group, ``1`` = other, or one code per
            group ``0..K-1`` with ``-1`` for rows not judged (ints or whole-number floats).
        pairs: binary groups only: promotions in group 0 (= demotions in group 1) to make;
            ``None`` = the parity count.
        quotas: per group code ``>= 0``, ``(promotions, demotions)``; not with ``pairs``.

    Returns:
        a new int64 array of labels, shape (n,).

    Raises:
        ValueError: on non-1-D, empty, length-mismatched, non-0/1 ``y``, bad group codes or
            non-finite input; a negative or non-integer ``pairs`` or quota; ``pairs`` and
            ``quotas`` together, or ``pairs`` with non-binary ``a``; more ``pairs`` than either
            group has rows to flip, or a quota beyond its group's rows (naming the group).
    """
    y_arr = _binary_vector("y", y)
    n = y_arr.shape[0]
    a_arr = _group_codes("a", a, n=n)
    score_arr = np.asarray(scores)
    if score_arr.ndim != 1 or score_arr.shape[0] != n:
        raise ValueError(f"scores must be a 1-D array of {n} entries, got shape {score_arr.shape}")
    if not (
        np.issubdtype(score_arr.dtype, np.integer) or np.issubdtype(score_arr.dtype, np.floating)
    ):
        raise ValueError(f"scores must be real numbers, got dtype {score_arr.dtype}")
    score_arr = score_arr.astype(np.float64)
    if not np.isfinite(score_arr).all():
        raise ValueError("scores must be finite")
    if pairs is not None and quotas is not None:
        raise ValueError("give pairs (binary groups) or quotas (any groups), not both")
    if quotas is None and _is_binary_coding(a_arr):
        count = parity_flip_count(y_arr, a_arr) if pairs is None else _whole_count("pairs", pairs)
        promotable = np.flatnonzero((a_arr == 0) & (y_arr == 0))
        demotable = np.flatnonzero((a_arr == 1) & (y_arr == 1))
        if count > min(promotable.size, demotable.size):
            raise ValueError(
                f"{count} pairs asked for, but there are only {promotable.size} unfavourable "
                f"rows of group a=0 and {demotable.size} favourable rows of group a=1"
            )
        flips = {0: (count, 0), 1: (0, count)}
    elif quotas is None:
        if pairs is not None:
            raise ValueError(
                "pairs applies to binary groups (codes 0 and 1 only); a holds other group "
                "codes: give quotas, or neither for the parity quotas"
            )
        flips = parity_flip_quotas(y_arr, a_arr)
    else:
        flips = _checked_quotas(quotas)
    out = y_arr.copy()
    for group, (promotions, demotions) in sorted(flips.items()):
        promotable = np.flatnonzero((a_arr == group) & (y_arr == 0))
        demotable = np.flatnonzero((a_arr == group) & (y_arr == 1))
        if promotions > promotable.size:
            raise ValueError(
                f"{promotions} promotions asked for in group a={group}, but it has only "
                f"{promotable.size} unfavourable rows"
            )
        if demotions > demotable.size:
            raise ValueError(
                f"{demotions} demotions asked for in group a={group}, but it has only "
                f"{demotable.size} favourable rows"
            )
        # stable sorts: among equal scores the earlier row comes first
        promote = promotable[np.argsort(-score_arr[promotable], kind="stable")[:promotions]]
        demote = demotable[np.argsort(score_arr[demotable], kind="stable")[:demotions]]
        out[promote] = 1
        out[demote] = 0
    return out


# --------------------------------------------------------------------------------------------
# Disparate Impact Remover (Feldman et al., 2015)
# --------------------------------------------------------------------------------------------


def _mid_cdf(sorted_values: FloatArray, x: FloatArray) -> FloatArray:
    """Within-group quantile of each ``x`` against one group's sorted training values.

    A training value ``v`` gets the mid-point of its empirical CDF jump,
    ``(F(v-) + F(v)) / 2``: with no ties the ``k``-th smallest of ``n`` values (0-based) gets
    ``(k + 0.5) / n``, and tied values share the average of their positions, so ties are never
    broken arbitrarily. Values between training values are interpolated linearly; values
    outside the training range are clamped to the extreme quantiles.
    """
    uniq, counts = np.unique(sorted_values, return_counts=True)
    cum = np.cumsum(counts).astype(np.float64)
    u_at_uniq = (cum - 0.5 * counts) / float(sorted_values.shape[0])
    out: FloatArray = np.interp(x, uniq, u_at_uniq)
    return out


def _quantile(sorted_values: FloatArray, u: FloatArray) -> FloatArray:
    """One group's empirical quantile function at levels ``u``.

    Piecewise linear through ``((k + 0.5) / n, v_k)``, clamped outside, i.e. numpy's
    ``np.quantile(..., method="hazen")``; it inverts :func:`_mid_cdf` on the training values.
    """
    n = sorted_values.shape[0]
    positions = (np.arange(n, dtype=np.float64) + 0.5) / float(n)
    out: FloatArray = np.interp(u, positions, sorted_values)
    return out


@dataclass(frozen=True, eq=False)
class DisparateImpactRepair:
    """A fitted Feldman et al. (2015) geometric repair; build it with
    :func:`fit_disparate_impact_repair` and apply it with :meth:`apply`.

    Attributes:
        repair_level: ``lambda`` in [0, 1]; 0 leaves the data unchanged, 1 is a full repair.
        n_features: number of columns of the ``X`` it was fitted on (and accepts).
        columns: sorted indices of the repaired columns; every other column passes through.
        group_sorted_values: for each entry of ``columns``, one array per entry of
            ``group_codes`` -- for binary groups the pair ``(values of group 0, values of group
            1)`` -- holding that group's values of the column in the training rows, sorted
            ascending and read-only. These are the training group distributions every later
            row is repaired against.
        group_codes: the group codes repaired, sorted, at least two: ``(0, 1)`` for binary
            groups (the default), ``(0, ..., K-1)`` for ``K`` groups. Rows with any other code
            (``-1``: a group too small to judge) pass through unchanged.
    """

    repair_level: float
    n_features: int
    columns: tuple[int, ...]
    group_sorted_values: tuple[tuple[FloatArray, ...], ...]
    group_codes: tuple[int, ...] = _GROUPS

    def __post_init__(self) -> None:
        _repair_level(self.repair_level)
        codes = self.group_codes
        if any(isinstance(g, bool) or not isinstance(g, int | np.integer) for g in codes):
            raise ValueError(f"group_codes must be whole numbers, got {codes!r}")
        if len(codes) < 2 or list(codes) != sorted(set(codes)) or codes[0] < 0:
            raise ValueError(
                f"group_codes must be at least two distinct codes >= 0, sorted; got {codes!r}"
            )
        if len(self.columns) != len(self.group_sorted_values):
            raise ValueError(
                f"{len(self.columns)} repaired columns but "
                f"{len(self.group_sorted_values)} sets of group values"
            )
        if any(not 0 <= j < self.n_features for j in self.columns):
            raise ValueError(f"a repaired column index is outside 0..{self.n_features - 1}")
        if list(self.columns) != sorted(set(self.columns)):
            raise ValueError("columns must be sorted and distinct")
        for j, per_group in zip(self.columns, self.group_sorted_values, strict=True):
            if len(per_group) != len(codes):
                raise ValueError(
                    f"column {j}: expected sorted values for groups {_name_codes(codes)}"
                )
            for g, vals in zip(codes, per_group, strict=True):
                if vals.ndim != 1 or vals.shape[0] == 0:
                    raise ValueError(f"column {j}: group {g} has no training values")
                if not np.isfinite(vals).all() or (vals[1:] < vals[:-1]).any():
                    raise ValueError(f"column {j}: group {g} values must be finite and sorted")

    def apply(self, X: npt.ArrayLike, a: npt.ArrayLike) -> FloatArray:
        """Repair rows ``X`` of groups ``a`` against the training group distributions.

        For each repaired column, a value ``x`` of a row in group ``g`` is mapped to its
        within-group quantile ``u = F_g(x)`` (mid-rank against group ``g``'s training values,
        interpolated between them), the fully repaired value is the median over the groups
        ``h`` of ``F_h^{-1}(u)`` -- Feldman et al.'s "median distribution"; for two groups the
        midpoint -- and the output is ``(1 - repair_level) * x + repair_level * repaired``
        (clipped to ``[x, repaired]`` so rounding never leaves that interval).

        Within each group the map is non-decreasing in ``x`` (strictly increasing inside the
        range of the group's training values when those are distinct; values beyond that range
        are clamped to it), so rank order inside a group is preserved; on the
        training rows with ``repair_level=1`` all groups end up with (nearly) the same
        distribution of every repaired column. Rows whose code is not in ``group_codes`` --
        ``-1`` (a group too small to judge) or a group without training rows -- have no
        training distribution to be repaired against and are returned unchanged.

        Args:
            X: features, shape (m, n_features); any m >= 1, a group may be absent.
            a: group codes of those rows, shape (m,): 0/1 for binary groups, ``0..K-1`` for
                many, ``-1`` for rows not judged (ints or whole-number floats).

        Returns:
            a new float64 array, shape (m, n_features); unrepaired columns are copied as is.

        Raises:
            ValueError: on a shape mismatch, non-finite ``X`` or codes that are not whole
                numbers >= -1.
        """
        out = _feature_matrix(X, n_features=self.n_features)
        groups = _group_codes("a", a, n=out.shape[0])
        level = self.repair_level
        if level == 0.0 or not self.columns:
            return out
        masks = [groups == g for g in self.group_codes]
        for j, per_group in zip(self.columns, self.group_sorted_values, strict=True):
            x = out[:, j].copy()
            for mask, own in zip(masks, per_group, strict=True):
                if not mask.any():
                    continue
                u = _mid_cdf(own, x[mask])
                per_group_quantiles = np.stack([_quantile(vals, u) for vals in per_group])
                repaired = np.median(per_group_quantiles, axis=0)
                mixed = (1.0 - level) * x[mask] + level * repaired
                # a convex combination: clip away the last-ulp rounding outside [x, repaired]
                lo, hi = np.minimum(x[mask], repaired), np.maximum(x[mask], repaired)
                out[mask, j] = np.clip(mixed, lo, hi)
        return out


def fit_disparate_impact_repair(
    X: npt.ArrayLike,
    a: npt.ArrayLike,
    *,
    repair_level: float = 1.0,
    columns: npt.ArrayLike | None = None,
) -> DisparateImpactRepair:
    """Fit Feldman et al.'s geometric disparate-impact repair on training rows.

    Feldman, M., Friedler, S. A., Moeller, J., Scheidegger, C. and Venkatasubramanian, S.
    (2015), "Certifying and removing disparate impact", KDD 2015, pp. 259-268, Section 5
    ("geometric repair" towards the median distribution); AIF360's
    ``DisparateImpactRemover`` (paper ref. [5]). The fit only records each group's sorted
    values of each repaired column, in O(n log n) per column.

    Groups: the codes ``0..K-1`` (``K >= 2``; ``K = 2`` is the binary coding), each with at
    least one row. Rows coded ``-1`` (groups too small to judge) take no part in the fit and
    are left unchanged by :meth:`DisparateImpactRepair.apply`.

    Which columns are repaired: ``columns`` is a boolean mask of length ``d`` or a list of
    column indices (negative indices allowed). The default ``None`` repairs every column that is
    not binary in ``X`` -- i.e. the min-max scaled numerics -- and leaves one-hot / indicator
    columns (values only 0 and 1) alone, because the quantile repair is meaningless for them:
    it would turn a 0/1 feature into fractional values (two groups' quantiles 0 and 1 meet at
    0.5) and the row would no longer be a valid one-hot encoding; Feldman et al. treat
    categorical features with a separate, proportion-based repair. AIF360 nominally repairs
    every feature, but since BlackBoxAuditing takes quantiles over *distinct* values, a 0/1
    column in which both groups have both values comes back unchanged there too (only a column
    that is constant inside one group gets collapsed to one value).

    Args:
        X: training features, shape (n, d), finite floats (encoded, typically in [0, 1]).
        a: group codes, shape (n,): 0/1 for binary groups, ``0..K-1`` for many, ``-1`` for
            rows not judged (ints or whole-number floats); at least two groups need rows.
        repair_level: ``lambda`` in [0, 1]; 0 = no change, 1 = full repair.
        columns: mask or indices of the columns to repair; ``None`` = every non-binary column.

    Returns:
        the frozen :class:`DisparateImpactRepair`; call ``.apply(X, a)`` on any rows.

    Raises:
        ValueError: on bad shapes, non-finite ``X``, codes that are not whole numbers >= -1,
            fewer than two groups with rows, a ``repair_level`` outside [0, 1], or a bad
            ``columns`` selection.
    """
    level = _repair_level(repair_level)
    X_arr = _feature_matrix(X)
    groups = _group_codes("a", a, n=X_arr.shape[0])
    present = {int(g) for g in np.unique(groups[groups >= 0])}
    if len(present) < 2:
        absent = next(g for g in range(len(present) + 1) if g not in present)
        raise ValueError(f"group a={absent} has no rows: the repair needs at least two groups")
    # The groups with rows: a judged group absent from these rows is repaired to nothing and
    # its rows, if any come later, pass unchanged (as rows coded -1 do).
    codes = tuple(sorted(present))
    selected = _resolve_columns(columns, X_arr)
    per_column: list[tuple[FloatArray, ...]] = []
    for j in selected:
        per_group: list[FloatArray] = []
        for g in codes:
            values = np.sort(X_arr[groups == g, j])
            values.flags.writeable = False
            per_group.append(values)
        per_column.append(tuple(per_group))
    return DisparateImpactRepair(
        repair_level=level,
        n_features=X_arr.shape[1],
        columns=selected,
        group_sorted_values=tuple(per_column),
        group_codes=codes,
    )


def repair_disparate_impact(
    X: npt.ArrayLike,
    a: npt.ArrayLike,
    *,
    repair_level: float = 1.0,
    columns: npt.ArrayLike | None = None,
) -> FloatArray:
    """One-shot Feldman et al. (2015) repair: fit on ``(X, a)`` and repair the same rows.

    Equivalent to ``fit_disparate_impact_repair(X, a, ...).apply(X, a)``; see those for the
    definition, the groups (binary, many, ``-1`` rows left unchanged), the column selection and
    the differences from AIF360. Returns a new array.
    """
    repair = fit_disparate_impact_repair(X, a, repair_level=repair_level, columns=columns)
    return repair.apply(X, a)
