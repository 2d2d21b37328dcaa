"""Model files (``.froc``): one safetensors file whose header metadata holds the JSON description.

Layout (the safetensors format: an 8-byte little-endian header length, a JSON header, raw
tensor bytes). The weights are the model's ``state_dict`` in float32. The header's
``__metadata__`` (string to string) holds:

- ``format``: ``"froc-model"``; ``format_version``: ``"1"``;
- ``froc``: the JSON description: model spec and input width, the encoder schema
  (:meth:`TabularEncoder.to_dict`), label and protected-group specification, the data spec,
  threat model, attack and lambdas, thresholds and verdict, validation and test metrics, the
  split (seed, fractions, the training table's fingerprint), seed and versions;
- ``froc_sha256``: SHA-256 of the ``froc`` text; ``weights_sha256``: SHA-256 over the tensors
  (name, dtype, shape and bytes, in name order).

Loading reads bytes and parses JSON and raw tensors only: no pickle, no code from the file. It
checks the format and version, both digests, and that every tensor has the name and shape the
model spec implies; anything else is a :class:`ModelFileError` (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from froc_cli.core._config import DataSpec, ThreatModel
from froc_cli.core._errors import InputError, ModelFileError
from froc_cli.core._io import to_jsonable, write_bytes_atomic
from froc_cli.data._encoder import TabularEncoder
from froc_cli.models._nets import TabularNet, build_model, parse_model_spec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelArtifact",
    "load_model",
    "save_model",
]

FORMAT_NAME = "froc-model"
FORMAT_VERSION = 1
_MAX_HEADER = 64 * 1024 * 1024
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class ModelArtifact:
    """A saved FRoC model: the network, its encoder and its JSON description.

    ``info`` is the JSON description (see the module docstring); the typed accessors below read
    the parts every consumer needs.
    """

    model: TabularNet
    encoder: TabularEncoder
    model_spec: str
    data_spec: DataSpec
    label_column: str
    positive_value: str
    protected_column: str
    protected_values: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def threat(self) -> ThreatModel | None:
        """The threat model the model was trained and scored with, if recorded."""
        data = self.info.get("threat_model")
        if not isinstance(data, dict):
            return None
        fields = {k: v for k, v in data.items() if k in ThreatModel.__dataclass_fields__}
        return ThreatModel(**fields)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Input columns the model reads, in encoded order."""
        return self.encoder.column_names

    def describe(self) -> str:
        """One line: spec, lambdas and what it predicts."""
        lambdas = self.info.get("objective", {})
        return (
            f"{self.model_spec} (lambda_F={lambdas.get('lambda_f', 0):g}, "
            f"lambda_R={lambdas.get('lambda_r', 0):g}) predicting "
            f"{self.label_column}={self.positive_value!r}"
        )


def _weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_model(
    path: str | os.PathLike[str],
    model: TabularNet,
    encoder: TabularEncoder,
    *,
    model_spec: str,
    data_spec: DataSpec,
    label_column: str,
    positive_value: str,
    protected_column: str,
    protected_values: tuple[str, ...],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write a ``.froc`` model file atomically (see the module docstring); returns its path."""
    if parse_model_spec(model_spec) != model.hidden or model.n_features != encoder.n_features:
        raise InputError(
            f"model spec {model_spec!r} with {encoder.n_features} inputs does not match the "
            f"network ({model.n_features} inputs, hidden {model.hidden})"
        )
    tensors = {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in model.state_dict().items()
    }
    description = to_jsonable(
        {
            **(info or {}),
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model": {"spec": model_spec, "n_features": encoder.n_features},
            "encoder": encoder.to_dict(),
            "data_spec": data_spec.to_dict(),
            "label": {"column": label_column, "favourable": positive_value},
            "protected": {"column": protected_column, "group_a0": list(protected_values)},
        }
    )
    text = json.dumps(description, sort_keys=True, allow_nan=False)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "froc": text,
        "froc_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "weights_sha256": _weights_digest(tensors),
    }
    return write_bytes_atomic(_serialize(tensors, metadata), path)


def _serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors encoding of float32 ``tensors`` with ``metadata``, byte for byte
    deterministic (tensors and keys in name order; the reference writer orders metadata by
    hash, so two saves of one model would differ)."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        blob = tensors[name].numpy().astype("<f4", copy=False).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    if data[:2] in _PICKLE_MAGIC or data[:4] == _ZIP_MAGIC:
        raise ModelFileError(
            f"{path}: looks like a pickle or torch.save file; froc model files are safetensors "
            "and froc never loads pickles (they can run code)"
        )
    if len(data) < 8:
        raise ModelFileError(f"{path}: truncated ({len(data)} bytes); not a froc model file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > _MAX_HEADER or 8 + length > len(data):
        raise ModelFileError(
            f"{path}: truncated or not a froc model file (header of {length} bytes, file of "
            f"{len(data)} bytes)"
        )
    try:
        header = json.loads(data[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable header ({exc}); not a froc model file") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: unreadable header; not a froc model file")
    return header


def _metadata(path: Path, header: dict[str, Any]) -> dict[str, str]:
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: a safetensors file, but not a froc model (no froc metadata)")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{path}: froc model format version {version!r}; this froc reads version "
            f"{FORMAT_VERSION} (upgrade froc or retrain the model)"
        )
    for key in ("froc", "froc_sha256", "weights_sha256"):
        if not isinstance(metadata.get(key), str):
            raise ModelFileError(f"{path}: froc metadata lacks {key!r}; the file is damaged")
    return metadata


def _load_tensors(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: damaged tensor data ({exc})") from exc


def load_model(path: str | os.PathLike[str]) -> ModelArtifact:
    """Read and validate a ``.froc`` model file (never runs code from it).

    Raises :class:`ModelFileError` for a missing, truncated, tampered or foreign file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a .froc model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    metadata = _metadata(path, _read_header(path, data))
    text = metadata["froc"]
    if hashlib.sha256(text.encode()).hexdigest() != metadata["froc_sha256"]:
        raise ModelFileError(f"{path}: the model description fails its checksum (tampered?)")
    tensors = _load_tensors(path, data)
    if _weights_digest(tensors) != metadata["weights_sha256"]:
        raise ModelFileError(f"{path}: the weights fail their checksum (tampered or damaged)")
    try:
        info = json.loads(text)
        spec = str(info["model"]["spec"])
        n_features = int(info["model"]["n_features"])
        encoder = TabularEncoder.from_dict(info["encoder"])
        data_spec = _data_spec(info["data_spec"])
        label, protected = info["label"], info["protected"]
        label_column, positive_value = str(label["column"]), str(label["favourable"])
        protected_column = str(protected["column"])
        protected_values = tuple(str(v) for v in protected["group_a0"])
    except (KeyError, TypeError, ValueError, json.JSONDecodeError, InputError) as exc:
        raise ModelFileError(f"{path}: invalid model description: {exc}") from exc
    if encoder.n_features != n_features:
        raise ModelFileError(
            f"{path}: the encoder gives {encoder.n_features} features, the model expects "
            f"{n_features}"
        )
    try:
        model = build_model(spec, n_features, seed=0)
    except InputError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if expected != found:
        raise ModelFileError(
            f"{path}: tensors {sorted(found.items())} do not match model {spec!r} with "
            f"{n_features} inputs"
        )
    if any(t.dtype != torch.float32 for t in tensors.values()):
        raise ModelFileError(f"{path}: expected float32 weights")
    model.load_state_dict(tensors)
    model.eval()
    return ModelArtifact(
        model=model,
        encoder=encoder,
        model_spec=spec,
        data_spec=data_spec,
        label_column=label_column,
        positive_value=positive_value,
        protected_column=protected_column,
        protected_values=protected_values,
        info=info,
    )


def _data_spec(data: dict[str, Any]) -> DataSpec:
    fields = dict(data)
    for key in ("drop", "immutable"):
        fields[key] = tuple(fields.get(key) or ())
    group = fields.get("protected_group")
    fields["protected_group"] = None if group is None else tuple(group)
    return DataSpec(**fields)
