"""``FairRobustClassifier``: FRoC-IN as a scikit-learn style estimator (fit / predict)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from froc_cli.core._config import DataSpec, ThreatModel, TrainConfig
from froc_cli.core._device import resolve_device
from froc_cli.core._errors import InputError
from froc_cli.core._io import to_jsonable
from froc_cli.core._version import environment_versions
from froc_cli.data._dataset import prepare_data
from froc_cli.data._encoder import fit_encoder
from froc_cli.data._rows import encode_rows
from froc_cli.data._splits import carve_validation
from froc_cli.methods._froc_in import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    FitOutcome,
    FrocInConfig,
    fit_froc_in,
)
from froc_cli.models._artifact import ModelArtifact, load_model, save_model
from froc_cli.models._training import predict_logits

__all__ = ["FairRobustClassifier"]

_LABEL = "__froc_label__"
_GROUP = "__froc_protected__"


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True)
    array = np.asarray(X)
    if array.ndim != 2:
        raise InputError(f"X: expected a 2-D table, got an array of shape {array.shape}")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


class FairRobustClassifier(ClassifierMixin, BaseEstimator):
    """FRoC-IN (eq. 10) as an estimator: BCE + lambda_f * F + lambda_r * R.

    Give ``lambda_f`` / ``lambda_r`` to use them, or ``delta_f`` / ``delta_r`` (S_B <= delta_f,
    S_R(PGD) >= delta_r) to search them on a validation split of the data passed to ``fit``
    (see :mod:`froc_cli.methods._froc_in`). ``fit(X, y, sensitive_features=a)`` takes the protected
    attribute separately, or from the column ``protected`` of ``X``; it is never a feature.
    ``positive`` is the favourable label (default: 1 or True) and ``protected_group`` the
    value(s) of the protected group (default: the lowest favourable rate).

    Fitted attributes: ``classes_``, ``model_``, ``encoder_``, ``lambda_f_``, ``lambda_r_``,
    ``feasible_`` (thresholds met on validation), ``search_`` (the trials),
    ``feature_names_in_``, ``n_features_in_``.

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
        protected_group: tuple[str, ...] | None = None,
        positive: str | None = None,
        attack: str = "pgd",
        eps: float = 0.1,
        pgd_steps: int = 10,
        attack_space: str = "continuous",
        attack_target: str = "true",
        immutable: tuple[str, ...] = (),
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

    def _froc_config(self) -> FrocInConfig:
        threat = ThreatModel(
            eps=self.eps,
            pgd_steps=self.pgd_steps,
            attack_space=self.attack_space,  # type: ignore[arg-type]  # validated there
            attack_target=self.attack_target,  # type: ignore[arg-type]
        )
        train = TrainConfig(
            model=self.model,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
        )
        return FrocInConfig(
            lambda_f=self.lambda_f,
            lambda_r=self.lambda_r,
            delta_f=self.delta_f,
            delta_r=self.delta_r,
            attack=self.attack,  # type: ignore[arg-type]
            threat=threat,
            train=train,
            val_size=self.val_size,
            search_budget_s=self.search_budget_s,
        )

    def fit(self, X: Any, y: Any, sensitive_features: Any = None) -> FairRobustClassifier:
        """Train on (X, y); the protected attribute from ``sensitive_features`` or X's column
        ``protected``. Returns self."""
        froc = self._froc_config()
        frame = _as_frame(X)
        if self.protected is not None and self.protected in frame.columns:
            group_values = frame.pop(self.protected)
            if sensitive_features is None:
                sensitive_features = group_values
        if sensitive_features is None:
            raise InputError(
                "fit: pass sensitive_features=... or name a column of X with protected=..."
            )
        labels = np.asarray(y)
        groups = np.asarray(sensitive_features)
        if labels.ndim != 1 or len(labels) != len(frame) or groups.shape != labels.shape:
            raise InputError(
                f"fit: X has {len(frame)} rows, y {labels.shape}, sensitive_features "
                f"{groups.shape}; expected one label and one group per row"
            )
        classes = np.unique(labels)
        if len(classes) != 2:
            raise InputError(f"fit: y has {len(classes)} classes; expected 2 (binary)")
        for name in (_LABEL, _GROUP):
            if name in frame.columns:
                raise InputError(f"fit: X has a reserved column name {name!r}")
        frame[_LABEL] = labels
        frame[_GROUP] = groups
        spec = DataSpec(
            protected=_GROUP,
            label=_LABEL,
            positive=None if self.positive is None else str(self.positive),
            protected_group=None if self.protected_group is None else tuple(self.protected_group),
            immutable=tuple(self.immutable),
            min_group_size=1,
        )
        prepared = prepare_data(frame, spec, source="fit data")
        positions = np.arange(prepared.n_rows)
        fit_pos, val_pos = carve_validation(
            prepared, positions, val_size=froc.val_size, seed=self.seed
        )
        encoder = fit_encoder(prepared.frame, prepared.feature_columns, prepared.immutable_columns)
        device = resolve_device(self.device)
        outcome = fit_froc_in(
            encode_rows(prepared, encoder, fit_pos, device),
            encode_rows(prepared, encoder, val_pos, device),
            encoder,
            froc,
            device=device,
        )
        favourable = labels[prepared.y.astype(bool)][0]
        self.classes_ = classes
        self._favourable_index = int(np.flatnonzero(classes == favourable)[0])
        self.model_ = outcome.model
        self.encoder_ = encoder
        self.lambda_f_ = outcome.lambda_f
        self.lambda_r_ = outcome.lambda_r
        self.feasible_ = outcome.feasible
        self.search_: FitOutcome = outcome
        self.protected_values_ = prepared.protected_values
        self.positive_value_ = prepared.positive_value
        self.feature_names_in_ = np.asarray(encoder.column_names, dtype=object)
        self.n_features_in_ = len(encoder.column_names)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("FairRobustClassifier is not fitted yet; call fit first")

    def _favourable_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        frame = _as_frame(X)
        lacking = [c for c in self.encoder_.column_names if c not in frame.columns]
        if lacking:
            raise InputError(f"X lacks column(s) {', '.join(map(repr, lacking))} seen in fit")
        device = next(self.model_.parameters()).device
        x = torch.as_tensor(self.encoder_.encode(frame), device=device)
        return torch.sigmoid(predict_logits(self.model_, x)).cpu().numpy().astype(np.float64)

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

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model as a ``.froc`` file (safetensors + JSON)."""
        self._check_fitted()
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
            raise InputError(f"{path}: not written by FairRobustClassifier.save")
        params = dict(estimator_info.get("params", {}))
        for key in ("immutable", "protected_group"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        estimator = cls(**params)
        classes = np.asarray(estimator_info["classes"])
        estimator.classes_ = classes
        estimator.model_ = artifact.model
        estimator.encoder_ = artifact.encoder
        estimator.lambda_f_ = float(artifact.info["objective"]["lambda_f"])
        estimator.lambda_r_ = float(artifact.info["objective"]["lambda_r"])
        estimator.protected_values_ = artifact.protected_values
        estimator.positive_value_ = artifact.positive_value
        estimator._favourable_index = int(estimator_info["favourable_index"])
        estimator.feature_names_in_ = np.asarray(artifact.encoder.column_names, dtype=object)
        estimator.n_features_in_ = len(artifact.encoder.column_names)
        return estimator
