"""Encoded tensors of a prepared table's rows, on a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from froc_cli.data._dataset import PreparedData
from froc_cli.data._encoder import TabularEncoder

__all__ = ["EncodedRows", "encode_rows"]


@dataclass(frozen=True)
class EncodedRows:
    """Features, labels (1 = favourable) and groups (0 = protected) of some rows, on a device.

    ``positions`` are row positions within ``PreparedData.frame``.
    """

    x: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    positions: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def a_numpy(self) -> np.ndarray:
        """Groups as a numpy array."""
        return self.a.cpu().numpy()

    @property
    def y_numpy(self) -> np.ndarray:
        """Labels as a numpy array of 0/1 integers (exact, and means are taken in float64)."""
        return self.y.cpu().numpy().astype(np.int8)

    def take(self, within: np.ndarray) -> EncodedRows:
        """The rows at positions ``within`` this set (not within the table)."""
        index = torch.as_tensor(within, device=self.x.device)
        return EncodedRows(
            x=self.x[index], y=self.y[index], a=self.a[index], positions=self.positions[within]
        )


def encode_rows(
    prepared: PreparedData,
    encoder: TabularEncoder,
    positions: np.ndarray,
    device: torch.device,
) -> EncodedRows:
    """Encode the rows at ``positions`` of ``prepared.frame`` onto ``device``."""
    rows = prepared.frame.iloc[positions]
    return EncodedRows(
        x=torch.as_tensor(encoder.encode(rows), device=device),
        y=torch.as_tensor(prepared.y[positions], device=device),
        a=torch.as_tensor(prepared.a[positions], device=device),
        positions=np.asarray(positions),
    )
