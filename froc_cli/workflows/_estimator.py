"""``FairRobustClassifier``: FRoC-IN as a scikit-learn estimator (fit / predict).

It follows scikit-learn's conventions and passes its estimator checks
(``tests/workflows/test_estimator.py`` runs them): ``__init__`` only stores the parameters,
``fit`` validates them and the data, every error it raises names Python parameters (never a
command-line flag) and is both a :class:`~froc_cli.core.InputError` (or
:class:`~froc_cli.core.InsufficientDataError`) and a :class:`ValueError`.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from torch.func import functional_call

from froc_cli.core._config import DataSpec, ThreatModel, TrainConfig
from froc_cli.core._errors import InputError, InsufficientDataError
from froc_cli.core._io import to_jsonable
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import group_membership, matches_value, value_text
from froc_cli.data._encoder import TabularEncoder, fit_encoder
from froc_cli.data._rows import EncodedRows
from froc_cli.data._splits import split_indices
from froc_cli.methods._froc_in import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    FitOutcome,
    FrocInConfig,
    fit_froc_in,
)
from froc_cli.models._artifact import ModelArtifact, load_model, save_model
from froc_cli.models._nets import parse_model_spec

__all__ = ["FairRobustClassifier"]

_LABEL = "__froc_label__"
_GROUP = "__froc_protected__"
# A text column whose values are nearly all numbers is a numeric column with a typo in it,
# not a categorical column (the rule of froc_cli.data._dataset).
_NUMERIC_TEXT_SHARE = 0.9
_MAX_SEED = 2**32 - 1
_CHUNK = 262_144  # rows per forward pass at predict time (bounded memory)
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class _InputValueError(InputError, ValueError):
    """Bad input or parameter: an :class:`InputError` and, for scikit-learn, a ValueError."""


class _InputTypeError(InputError, TypeError):
    """A cell of X that is neither a number nor a string (for scikit-learn, a TypeError)."""


class _InsufficientDataValueError(InsufficientDataError, ValueError):
    """Too few rows of a group to validate on: an :class:`InsufficientDataError` and a
    ValueError."""


def _listed(values: Iterable[Any], limit: int = 8) -> str:
    items = list(values)
    shown = ", ".join(repr(v) for v in items[:limit])
    return shown + (f", ... ({len(items)} values)" if len(items) > limit else "")


def _check_column(series: pd.Series, name: str) -> None:
    """Refuse missing, infinite and complex values and cells that are neither numbers nor
    strings; refuse a text column of numbers with a stray non-number in it."""
    dtype = series.dtype
    if pd.api.types.is_complex_dtype(dtype):
        raise _InputValueError(f"Complex data not supported: X column {name!r} is complex")
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise _InputValueError(
            f"Input X contains NaN: column {name!r} has {len(rows)} missing value(s) at row(s) "
            f"{_listed(rows.tolist())}"
        )
    if pd.api.types.is_bool_dtype(dtype):
        return
    if pd.api.types.is_numeric_dtype(dtype):
        infinite = ~np.isfinite(series.to_numpy(dtype=np.float64))
        if infinite.any():
            raise _InputValueError(
                f"Input X contains infinity: column {name!r} at row(s) "
                f"{_listed(np.flatnonzero(infinite).tolist())}"
            )
        return
    if pd.api.types.is_object_dtype(dtype):
        for value in series.to_numpy(dtype=object):
            if not isinstance(value, str | numbers.Number | np.bool_):
                raise _InputTypeError(
                    f"X column {name!r} holds a {type(value).__name__} value; argument must be "
                    "a string or a number"
                )
    elif not isinstance(dtype, pd.StringDtype):
        return  # category, datetime: one-hot encoded as they are
    row_codes, uniques = pd.factorize(series)
    parses = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").notna().to_numpy()
    parsed = parses[row_codes]
    if _NUMERIC_TEXT_SHARE <= float(parsed.mean()) < 1.0:
        row = int(np.flatnonzero(~parsed)[0])
        raise _InputValueError(
            f"X column {name!r} holds numbers and the non-numeric text {series.iloc[row]!r} "
            f"(row {row}); expected a number"
        )


def _check_frame(frame: pd.DataFrame) -> None:
    rows, columns = frame.shape
    if rows < 1:
        raise _InputValueError(
            f"Found array with 0 sample(s) (shape={frame.shape}) while a minimum of 1 is required."
        )
    if columns < 1:
        raise _InputValueError(
            f"Found array with 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required."
        )
    for position in range(columns):
        _check_column(frame.iloc[:, position], str(frame.columns[position]))


class FairRobustClassifier(ClassifierMixin, BaseEstimator):
    """FRoC-IN (eq. 10) as an estimator: BCE + lambda_f * F + lambda_r * R.

    Give ``lambda_f`` / ``lambda_r`` to use them, or ``delta_f`` / ``delta_r`` (S_B <= delta_f,
    S_R(PGD) >= delta_r) to search them on a validation split of the data passed to ``fit``
    (see :mod:`froc_cli.methods._froc_in`). A term with neither its lambda nor its delta weighs
    0, so ``FairRobustClassifier()`` trains the network plainly (BCE only): set ``lambda_r``
    (or ``delta_r``) for robustness and ``lambda_f`` (or ``delta_f``) for fairness.

    The protected attribute comes from ``fit(X, y, sensitive_features=a)`` or from the column
    of a DataFrame ``X`` named by ``protected``; it is never a feature (a DataFrame passed to
    ``predict`` may still hold that column: it is left out). Without a protected attribute
    there is no fairness term: the model trains plainly or robustly as ``lambda_r`` /
    ``delta_r`` say, and ``lambda_f`` > 0 or ``delta_f`` is an error.

    ``y`` holds any two labels (strings, ints, -1/1, booleans); ``classes_`` lists them sorted
    and ``predict_proba`` has one column per class in that order. ``positive`` is the
    favourable label (default: ``classes_[1]``, i.e. 1 for 0/1 labels, True for booleans);
    ``protected_group`` the value(s) of the protected group (default: the group with the lowest
    favourable rate). X is a numeric array or a DataFrame whose text, boolean and categorical
    columns are one-hot encoded; ``immutable`` names features (or their positions) that the
    attacker may not change. ``seed`` makes fitting deterministic (same seed, data, device and
    torch thread count: the same model).

    ``fit`` holds out ``val_size`` of the rows (stratified by label and group; at random when a
    class is too small for that) to pick the checkpoint and, with deltas, the lambdas.
    ``predict`` takes the features of ``fit``: a DataFrame with the same columns in the same
    order (plus, if it likes, the protected column), or an array with as many columns; rows
    are scored in float64, so a row's answer does not depend on the rows passed with it.
    Errors name the Python parameters and are :class:`~froc_cli.core.InputError` (or
    :class:`~froc_cli.core.InsufficientDataError`) and :class:`ValueError` at once; a cell of X
    that is neither a number nor a string is also a :class:`TypeError`.

    Fitted attributes: ``classes_``, ``model_``, ``encoder_``, ``lambda_f_``, ``lambda_r_``,
    ``feasible_`` (thresholds met on validation), ``search_`` (the trials),
    ``protected_values_`` (the protected group; empty without a protected attribute),
    ``positive_value_``, ``n_features_in_`` and, when X is a DataFrame with string column
    names, ``feature_names_in_``.

    Example::

        clf = FairRobustClassifier(delta_f=0.05, delta_r=0.6, protected="sex", positive=">50K")
        clf.fit(X_train, y_train)
        clf.predict_proba(X_test)[:, list(clf.classes_).index(">50K")]
    """

    def __init__(
        self,
        *,
        lambda_f: float | None = None,
        lambda_r: float | None = None,
        delta_f: float | None = None,
        delta_r: float | None = None,
        protected: str | None = None,
        protected_group: tuple[Any, ...] | str | None = None,
        positive: Any = None,
        attack: str = "pgd",
        eps: float = 0.1,
        pgd_steps: int = 10,
        attack_space: str = "continuous",
        attack_target: str = "true",
        immutable: tuple[str | int, ...] = (),
        model: str = "mlp:128",
        epochs: int = DEFAULT_EPOCHS,
        lr: float = 0.01,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        val_size: float = 0.2,
        search_budget_s: float | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.lambda_f = lambda_f
        self.lambda_r = lambda_r
        self.delta_f = delta_f
        self.delta_r = delta_r
        self.protected = protected
        self.protected_group = protected_group
        self.positive = positive
        self.attack = attack
        self.eps = eps
        self.pgd_steps = pgd_steps
        self.attack_space = attack_space
        self.attack_target = attack_target
        self.immutable = immutable
        self.model = model
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.val_size = val_size
        self.search_budget_s = search_budget_s
        self.seed = seed
        self.device = device

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        assert tags.classifier_tags is not None  # set by ClassifierMixin
        tags.classifier_tags.multi_class = False
        tags.input_tags.categorical = True
        return tags

    # -- parameters -------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Validate every parameter (scikit-learn validates in fit, not in __init__)."""

        def number(name: str, low: float, high: float = math.inf, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            ok = (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool | np.bool_)
                and math.isfinite(float(value))
                and low <= float(value) <= high
            )
            if not ok:
                span = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
                raise _InputValueError(
                    f"{name}={value!r}: expected a number {span}" + (" or None" if optional else "")
                )

        def integer(name: str, low: int, high: float = math.inf, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            if (
                not isinstance(value, numbers.Integral)
                or isinstance(value, bool | np.bool_)
                or not low <= int(value) <= high
            ):
                span = f">= {low}" if high == math.inf else f"in [{low}, {high:g}]"
                raise _InputValueError(
                    f"{name}={value!r}: expected an integer {span}"
                    + (" or None" if optional else "")
                )

        def choice(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                raise _InputValueError(f"{name}={value!r}: expected one of {_listed(options)}")

        for name in ("lambda_f", "lambda_r"):
            number(name, 0.0, optional=True)
        for name in ("delta_f", "delta_r"):
            number(name, 0.0, 1.0, optional=True)
        if self.protected is not None and not isinstance(self.protected, str):
            raise _InputValueError(
                f"protected={self.protected!r}: expected the name of a column of X (a str) or "
                "None; pass other protected attributes as fit(..., sensitive_features=...)"
            )
        choice("attack", ("fgsm", "pgd"))
        number("eps", 0.0, 1.0)
        integer("pgd_steps", 1)
        choice("attack_space", ("continuous", "valid"))
        choice("attack_target", ("true", "predicted"))
        try:
            parse_model_spec(self.model if isinstance(self.model, str) else "?")
        except InputError:
            raise _InputValueError(
                f"model={self.model!r}: expected 'lr', 'mlp:H' or 'mlp:HxH...' (e.g. 'mlp:128')"
            ) from None
        integer("epochs", 1)
        number("lr", 0.0)
        if self.lr == 0:
            raise _InputValueError(f"lr={self.lr!r}: expected a positive number")
        integer("batch_size", 1, optional=True)
        number("val_size", 0.0, 1.0)
        if self.val_size in (0, 1):
            raise _InputValueError(f"val_size={self.val_size!r}: expected a fraction in (0, 1)")
        number("search_budget_s", 0.0, optional=True)
        if self.search_budget_s == 0:
            raise _InputValueError("search_budget_s=0: expected seconds > 0 or None")
        integer("seed", 0, _MAX_SEED)
        device = self.device.strip().lower() if isinstance(self.device, str) else None
        if device is None or not _DEVICE.fullmatch(device):
            raise _InputValueError(
                f"device={self.device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
            )
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise _InputValueError(f"device={self.device!r}: CUDA is not available")

    def _torch_device(self) -> torch.device:
        device = self.device.strip().lower()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.device(device)

    def _froc_config(self, *, has_groups: bool) -> FrocInConfig:
        lambda_f, lambda_r = self.lambda_f, self.lambda_r
        if not has_groups and ((lambda_f or 0.0) > 0 or self.delta_f is not None):
            given = f"lambda_f={lambda_f!r}" if lambda_f else f"delta_f={self.delta_f!r}"
            raise _InputValueError(
                f"{given} asks for fairness, which needs the protected attribute: pass "
                "fit(X, y, sensitive_features=...) or name a column of X with protected=..."
            )
        if all(v is None for v in (lambda_f, lambda_r, self.delta_f, self.delta_r)):
            lambda_f = lambda_r = 0.0  # nothing asked for: plain training
        threat = ThreatModel(
            eps=float(self.eps),
            pgd_steps=int(self.pgd_steps),
            attack_space=self.attack_space,  # type: ignore[arg-type]  # validated above
            attack_target=self.attack_target,  # type: ignore[arg-type]
        )
        train = TrainConfig(
            model=self.model,
            epochs=int(self.epochs),
            lr=float(self.lr),
            batch_size=None if self.batch_size is None else int(self.batch_size),
            seed=int(self.seed),
            device=self.device,
        )
        return FrocInConfig(
            lambda_f=None if lambda_f is None else float(lambda_f),
            lambda_r=None if lambda_r is None else float(lambda_r),
            delta_f=None if self.delta_f is None else float(self.delta_f),
            delta_r=None if self.delta_r is None else float(self.delta_r),
            attack=self.attack,  # type: ignore[arg-type]
            threat=threat,
            train=train,
            val_size=float(self.val_size),
            search_budget_s=None if self.search_budget_s is None else float(self.search_budget_s),
        )

    # -- data -------------------------------------------------------------------------------

    def _features(self, X: Any, *, fitting: bool) -> tuple[pd.DataFrame, pd.Series | None]:
        """Validated features of ``X`` with the encoder's column names, and the protected
        column of a DataFrame ``X`` (when fitting); sets or checks ``n_features_in_`` and
        ``feature_names_in_``."""
        protected_column: pd.Series | None = None
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            if fitting:
                drop = [self.protected] if self.protected in names else []
            else:
                features = set(self.encoder_.column_names) if self._named_features else set()
                drop = [
                    name
                    for name in (self.protected, self._sensitive_name)
                    if name is not None and name in names and name not in features
                ]
            positions = [i for i, name in enumerate(names) if name not in drop]
            if fitting and drop:
                protected_column = X.iloc[:, names.index(drop[0])]
            frame = X.iloc[:, positions]
            self._validate_names(frame, fitting=fitting)
            _check_frame(frame)
        else:
            if fitting and self.protected is not None:
                raise _InputValueError(
                    f"protected={self.protected!r} names a column, but X is an array without "
                    "column names; pass a DataFrame, or the attribute as "
                    "fit(X, y, sensitive_features=...)"
                )
            try:
                array = check_array(
                    X, dtype=None, ensure_all_finite=True, input_name="X", estimator=self
                )
            except ValueError as exc:
                raise _InputValueError(str(exc)) from exc
            self._validate_names(array, fitting=fitting)
            frame = pd.DataFrame(array).infer_objects()
            _check_frame(frame)
        frame = frame.copy()
        if fitting:
            if hasattr(self, "feature_names_in_"):
                frame.columns = [str(c) for c in self.feature_names_in_]
            else:
                frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        else:
            frame.columns = list(self.encoder_.column_names)
        return frame.reset_index(drop=True), protected_column

    def _validate_names(self, X: Any, *, fitting: bool) -> None:
        try:
            validate_data(self, X, reset=fitting, skip_check_array=True)
        except ValueError as exc:
            raise _InputValueError(str(exc)) from exc

    def _labels(self, y: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The labels as a 1-D array, ``classes_`` and the favourable class's index."""
        if y is None:
            raise _InputValueError(
                "FairRobustClassifier requires y to be passed, but the target y is None."
            )
        try:
            labels = column_or_1d(y, warn=True)
            check_classification_targets(labels)
        except ValueError as exc:
            raise _InputValueError(str(exc)) from exc
        if len(labels) != n_rows:
            raise _InputValueError(
                f"X has {n_rows} rows but y has {len(labels)} labels; expected one label per row"
            )
        classes = np.unique(labels)
        if len(classes) < 2:
            raise _InputValueError(
                f"y has 1 class ({value_text(classes[0])!r}); a classifier needs two classes"
            )
        if len(classes) > 2:
            raise _InputValueError(
                "Only binary classification is supported. The type of the target is "
                f"multiclass: y has {len(classes)} classes, expected 2"
            )
        if self.positive is None:
            return labels, classes, 1
        hits = matches_value(pd.Series(classes), value_text(self.positive))
        if hits.sum() != 1:
            raise _InputValueError(
                f"positive={self.positive!r} is not one of the classes in y: "
                f"{_listed(value_text(c) for c in classes)}"
            )
        return labels, classes, int(np.flatnonzero(hits)[0])

    def _groups(self, sensitive: Any, y01: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """Group per row (0: protected, 1: the rest) and the protected group's values."""
        if isinstance(sensitive, pd.DataFrame) and sensitive.shape[1] == 1:
            sensitive = sensitive.iloc[:, 0]
        series: pd.Series | None
        if isinstance(sensitive, pd.Series):  # keeps its dtype
            series = sensitive.reset_index(drop=True)
        else:
            values = np.asarray(sensitive)
            if values.ndim == 2 and values.shape[1] == 1:
                values = values[:, 0]
            series = pd.Series(values) if values.ndim == 1 else None
        if series is None or len(series) != len(y01):
            raise _InputValueError(
                f"sensitive_features has shape {np.shape(sensitive)}; expected one value per row "
                f"of X ({len(y01)} rows)"
            )
        missing = series.isna().to_numpy()
        if missing.any():
            raise _InputValueError(
                f"sensitive_features has {int(missing.sum())} missing value(s) at row(s) "
                f"{_listed(np.flatnonzero(missing).tolist())}"
            )
        row_codes, uniques = pd.factorize(series)
        unique_texts = np.asarray([value_text(u) for u in uniques], dtype=object)
        texts = unique_texts[row_codes]
        distinct = sorted(set(unique_texts))
        if len(distinct) < 2:
            raise _InputValueError(
                f"sensitive_features has a single group {distinct[0]!r}; expected at least two"
            )
        requested = self.protected_group
        if requested is not None:
            wanted = (requested,) if isinstance(requested, str) else tuple(requested)
            if not wanted:
                raise _InputValueError(
                    "protected_group=(): expected the value(s) of the protected group, or None"
                )
            in_group, absent = group_membership(series, [value_text(v) for v in wanted])
            if absent is not None:
                raise _InputValueError(
                    f"protected_group={requested!r}: {absent!r} is not a value of the "
                    f"protected attribute; its values are {_listed(distinct)}"
                )
            if in_group.all():
                raise _InputValueError(
                    f"protected_group={requested!r} covers every row; expected a group and the rest"
                )
            return (~in_group).astype(np.float32), tuple(value_text(v) for v in wanted)
        rates = pd.Series(y01).groupby(texts).mean()
        lowest = str(rates.idxmin())
        return (texts != lowest).astype(np.float32), (lowest,)

    def _immutable_columns(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        entries = (self.immutable,) if isinstance(self.immutable, str | int) else self.immutable
        resolved: list[str] = []
        for entry in entries:
            if isinstance(entry, numbers.Integral) and not isinstance(entry, bool | np.bool_):
                if not 0 <= int(entry) < len(columns):
                    raise _InputValueError(
                        f"immutable={self.immutable!r}: position {entry} is out of range for "
                        f"{len(columns)} feature(s)"
                    )
                resolved.append(columns[int(entry)])
            elif isinstance(entry, str) and self._named_features and entry in columns:
                resolved.append(entry)
            elif isinstance(entry, str) and entry == self.protected:
                continue  # the protected attribute is no feature: nothing to hold fixed
            else:
                where = (
                    f"features are {_listed(columns)}"
                    if self._named_features
                    else "X has no column names: give positions (ints)"
                )
                raise _InputValueError(
                    f"immutable={self.immutable!r}: {entry!r} is not a feature of X; {where}"
                )
        return tuple(dict.fromkeys(resolved))

    def _split(
        self, y01: np.ndarray, a: np.ndarray, val_size: float, has_groups: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit and validation rows: seeded, stratified by label and group where the data
        allow it (else plainly random), the validation rows holding both groups."""
        try:
            fit_pos, val_pos = split_indices(y01, a, test_size=val_size, seed=int(self.seed))
        except InsufficientDataError:
            fit_pos, val_pos = train_test_split(
                np.arange(len(y01)), test_size=val_size, random_state=int(self.seed)
            )
            fit_pos, val_pos = np.sort(fit_pos), np.sort(val_pos)
        if has_groups:
            for group, what in ((0, "protected group"), (1, "rest of the rows")):
                if not (a[val_pos] == group).any():
                    raise _InsufficientDataValueError(
                        f"the validation split (val_size={self.val_size!r}, "
                        f"{len(val_pos)} rows) has no row of the {what}; pass more rows or a "
                        "larger val_size"
                    )
        return fit_pos, val_pos

    # -- fit / predict ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sensitive_features: Any = None) -> FairRobustClassifier:
        """Train on (X, y); the protected attribute from ``sensitive_features`` or X's column
        ``protected`` (optional: without it there is no fairness term). Returns self."""
        self._check_params()
        frame, protected_column = self._features(X, fitting=True)
        self._named_features = hasattr(self, "feature_names_in_")
        labels, classes, favourable = self._labels(y, len(frame))
        y01 = (labels == classes[favourable]).astype(np.float32)
        if sensitive_features is None:
            sensitive_features = protected_column
        if sensitive_features is None and self.protected is not None:
            raise _InputValueError(
                f"protected={self.protected!r} is not a column of X; name a column of X or pass "
                "fit(X, y, sensitive_features=...)"
            )
        has_groups = sensitive_features is not None
        froc = self._froc_config(has_groups=has_groups)
        if has_groups:
            a, protected_values = self._groups(sensitive_features, y01)
        else:
            a, protected_values = np.ones(len(y01), dtype=np.float32), ()
        sensitive_name = getattr(sensitive_features, "name", None)
        fit_pos, val_pos = self._split(y01, a, froc.val_size, has_groups)
        columns = tuple(str(c) for c in frame.columns)
        encoder = fit_encoder(frame, columns, self._immutable_columns(columns))
        device = self._torch_device()
        x = torch.as_tensor(encoder.encode(frame), device=device)

        def rows(positions: np.ndarray) -> EncodedRows:
            index = torch.as_tensor(positions, device=device)
            return EncodedRows(
                x=x[index],
                y=torch.as_tensor(y01[positions], device=device),
                a=torch.as_tensor(a[positions], device=device),
                positions=positions,
            )

        outcome = fit_froc_in(rows(fit_pos), rows(val_pos), encoder, froc, device=device)
        self.classes_ = classes
        self._favourable_index = favourable
        self._sensitive_name = sensitive_name if isinstance(sensitive_name, str) else None
        self.model_ = outcome.model
        self.encoder_: TabularEncoder = encoder
        self.lambda_f_ = outcome.lambda_f
        self.lambda_r_ = outcome.lambda_r
        self.feasible_ = outcome.feasible
        self.search_: FitOutcome = outcome
        self.protected_values_ = protected_values
        self.positive_value_ = value_text(classes[favourable])
        return self

    def _favourable_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        frame, _ = self._features(X, fitting=False)
        try:
            encoded = self.encoder_.encode(frame)
        except InputError as exc:
            raise _InputValueError(f"X: {exc}") from exc
        # In float64: a float32 matrix product rounds a row differently depending on how many
        # rows share the batch, so a row's probability would move (by ~1e-7) with the other rows
        # passed along; in float64 that noise is ~1e-16 and each row's answer is its own.
        device = next(self.model_.parameters()).device
        x = torch.as_tensor(encoded, dtype=torch.float64, device=device)
        self.model_.eval()
        with torch.no_grad():
            params = {
                name: tensor.to(torch.float64) for name, tensor in self.model_.state_dict().items()
            }
            logits = [
                functional_call(self.model_, params, (x[start : start + _CHUNK],))
                for start in range(0, max(len(x), 1), _CHUNK)
            ]
            return torch.sigmoid(torch.cat(logits)).cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        favourable = self._favourable_proba(X)
        out = np.empty((len(favourable), 2), dtype=np.float64)
        out[:, self._favourable_index] = favourable
        out[:, 1 - self._favourable_index] = 1.0 - favourable
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (the favourable one where its probability exceeds 1/2)."""
        favourable = self._favourable_proba(X) > 0.5
        index = np.where(favourable, self._favourable_index, 1 - self._favourable_index)
        return np.asarray(self.classes_[index])

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model as a ``.froc`` file (safetensors + JSON)."""
        check_is_fitted(self, "model_")
        return save_model(
            path,
            self.model_,
            self.encoder_,
            model_spec=self.model,
            data_spec=DataSpec(protected=_GROUP, label=_LABEL, positive=self.positive_value_),
            label_column=_LABEL,
            positive_value=self.positive_value_,
            protected_column=_GROUP,
            protected_values=self.protected_values_,
            info={
                "objective": {
                    "lambda_f": self.lambda_f_,
                    "lambda_r": self.lambda_r_,
                    "attack": self.attack,
                },
                "estimator": {
                    "params": {k: to_jsonable(v) for k, v in self.get_params().items()},
                    "classes": [to_jsonable(c) for c in self.classes_],
                    "favourable_index": self._favourable_index,
                    "feature_names_in": self._named_features,
                    "sensitive_name": self._sensitive_name,
                },
                "seed": self.seed,
                "versions": environment_versions(),
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FairRobustClassifier:
        """A fitted estimator from a ``.froc`` file written by :meth:`save`."""
        artifact: ModelArtifact = load_model(path)
        estimator_info = artifact.info.get("estimator")
        if not isinstance(estimator_info, dict) or "favourable_index" not in estimator_info:
            raise _InputValueError(f"{path}: not written by FairRobustClassifier.save")
        params = dict(estimator_info.get("params", {}))
        for key in ("immutable", "protected_group"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        estimator = cls(**params)
        estimator.classes_ = np.asarray(estimator_info["classes"])
        estimator.model_ = artifact.model
        estimator.encoder_ = artifact.encoder
        estimator.lambda_f_ = float(artifact.info["objective"]["lambda_f"])
        estimator.lambda_r_ = float(artifact.info["objective"]["lambda_r"])
        estimator.protected_values_ = artifact.protected_values
        estimator.positive_value_ = artifact.positive_value
        estimator._favourable_index = int(estimator_info["favourable_index"])
        estimator._named_features = bool(estimator_info.get("feature_names_in", True))
        sensitive_name = estimator_info.get("sensitive_name")
        estimator._sensitive_name = sensitive_name if isinstance(sensitive_name, str) else None
        if estimator._named_features:
            names = artifact.encoder.column_names
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        estimator.n_features_in_ = len(artifact.encoder.column_names)
        return estimator
