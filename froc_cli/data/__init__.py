"""Tables as the engine sees them: the prepared data roles, the reversible encoder, encoded rows,
and the one split recipe.
"""

from __future__ import annotations

from froc_cli.data._dataset import (
    GroupCoding,
    PreparedData,
    matches_value,
    prepare_data,
    protected_series,
    resolve_group_coding,
    value_text,
    value_texts,
)
from froc_cli.data._encoder import (
    CategoricalColumn,
    EncoderFit,
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
    too_small_groups,
)

__all__ = [
    "CategoricalColumn",
    "EncodedRows",
    "EncoderFit",
    "GroupCoding",
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
    "protected_series",
    "resolve_group_coding",
    "split_indices",
    "split_prepared",
    "too_small_groups",
    "value_text",
    "value_texts",
]
