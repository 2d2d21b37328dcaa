"""The check every valid-space attack must pass: its examples are real records of the schema."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from froc_cli.data import CategoricalColumn, NumericColumn, TabularEncoder

TOL = 1e-6


def assert_real_records(
    encoder: TabularEncoder,
    frame: pd.DataFrame,
    features: Sequence[str],
    x: torch.Tensor,
    x_adv: torch.Tensor,
    *,
    eps: float,
    cat_budget: int,
) -> None:
    """``x_adv`` (attacked encodings of ``frame``'s rows ``x``) keeps the immutable columns,
    moves numerics within eps and the [0, 1] box, switches at most ``cat_budget`` categorical
    blocks per row (each still one-hot), and decodes to records of the schema: values of the
    column's dtype within its range and on its grid, within eps of the original in the column's
    units, that encode back to ``x_adv``."""
    mutable = torch.as_tensor(encoder.mutable_mask())
    numeric = torch.as_tensor(encoder.numeric_features())
    assert torch.equal(x_adv[:, ~mutable], x[:, ~mutable])
    moved = (x_adv - x)[:, numeric].abs()
    assert torch.all(moved <= eps + TOL)
    assert torch.all((x_adv[:, numeric] >= -TOL) & (x_adv[:, numeric] <= 1 + TOL))
    changed = torch.zeros(len(frame), dtype=torch.long)
    for column in encoder.columns:
        if not isinstance(column, CategoricalColumn):
            continue
        block = slice(column.start, column.start + column.width)
        values = x_adv[:, block]
        assert torch.all((values == 0) | (values == 1))
        assert torch.all(values.sum(dim=1) == 1)
        changed += (values.argmax(dim=1) != x[:, block].argmax(dim=1)).long()
    assert torch.all(changed <= cat_budget)

    decoded = encoder.decode(x_adv.numpy())
    original = frame[list(features)].reset_index(drop=True)
    for column in encoder.columns:
        if isinstance(column, NumericColumn):
            values = decoded[column.name].to_numpy(dtype=np.float64)
            assert decoded[column.name].dtype == original[column.name].dtype
            assert np.all((values >= column.minimum) & (values <= column.maximum))
            gap = np.abs(values - original[column.name].to_numpy(dtype=np.float64))
            assert np.all(gap <= eps * column.scale * (1 + 1e-5) + 1e-9), column.name
            # on the column's grid: the record the model saw is the record decoded
            assert column.grid is not None
            steps_taken = (values - column.minimum) / column.grid
            np.testing.assert_allclose(steps_taken, np.round(steps_taken), atol=1e-6)
        else:
            assert set(decoded[column.name]) <= set(column.categories)
    np.testing.assert_allclose(encoder.encode(decoded), x_adv.numpy(), atol=1e-5)
