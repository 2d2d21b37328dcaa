"""Tables as the engine sees them: the prepared data roles, the reversible encoder, encoded rows,
and the one split recipe.
"""

from __future__ import annotations

from froc_cli.data._dataset import (
    PreparedData,
    matches_value,
    prepare_data,
    value_text,
    value_texts,
)
from froc_cli.data._encoder import (
    CategoricalColumn,
    NumericColumn,
    TabularEncoder,
    fit_encoder,
)
from froc_cli.data._rows import (
    EncodedRows,
    encode_rows,
)
from froc_cli.data._splits import (
    SplitData,
    carve_validation,
    check_group_sizes,
    judge_groups,
    split_indices,
    split_prepared,
)

__all__ = [
    "CategoricalColumn",
    "EncodedRows",
    "NumericColumn",
    "PreparedData",
    "SplitData",
    "TabularEncoder",
    "carve_validation",
    "check_group_sizes",
    "encode_rows",
    "fit_encoder",
    "judge_groups",
    "matches_value",
    "prepare_data",
    "split_indices",
    "split_prepared",
    "value_text",
    "value_texts",
]
